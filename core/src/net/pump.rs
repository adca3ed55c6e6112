//! The pump: feeds the engine what happened and performs what it decides.
//!
//! The engine and the socket's transports live behind one mutex. Whoever has news — the app
//! calling [`Socket`](crate::Socket), a transport task with frames, the app's own wait with
//! frames it read itself ([`Reading`]), the timer task — takes the lock for one synchronous
//! step: hand the input to the engine, perform its transmits (queue frames, and write a lone one
//! straight to the socket, neither of which blocks; spawn tasks), forward its events, and wake
//! the app once the lock is released. No hop through a central task, so a message costs no
//! extra wake-up on the way out or in. The only task of its own is the timer, which sleeps until
//! the engine's `poll_timeout`.
//!
//! Events go to the socket's [`Inbox`], bounded with backpressure; acks and state also feed the
//! callers waiting on the side ([`Waiters`], the state watch), so waiting takes nothing from the
//! app's stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::runtime::Handle;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::AbortHandle;

use super::connection::{self, Report, Reports};
use super::dial::TransportOptions;
use super::inbox::Inbox;
use super::reading::{AppTurn, Reading};
use super::redact;
use super::waiters::{Delivery, Waiters};
use super::write_queue::{Overflow, WriteQueue};
use crate::engine::{
    ConnId, ConnectionError, Engine, Event, Instant, MessageId, Mode, Payload, SendError, State,
    Transmit,
};

/// The engine's timeline starts this long before the socket, so messages restored from an
/// earlier run keep their age on it.
const PAST: std::time::Duration = std::time::Duration::from_secs(10 * 365 * 24 * 3600);

/// A message `send` queued.
pub struct Queued {
    /// Its id.
    pub id: MessageId,
    /// Settles when it does, if asked for.
    pub outcome: Option<oneshot::Receiver<Delivery>>,
}

/// The pump's hook for a durable store: told of every step in the engine's order, under the
/// pump's lock, so the store sees changes as the engine made them. Calls must not block (a
/// store queues its writes). Nothing in `net` knows what the hook does with them.
pub trait Journal: Send + Sync {
    /// `send` queued `payload` as `id`, to expire after `ttl`.
    fn queued(&self, id: &MessageId, payload: &Payload, ttl: Option<std::time::Duration>);
    /// The engine reported `event`.
    fn event(&self, event: &Event);
    /// A step ended; `engine` is as it left it.
    fn stepped(&self, engine: &Engine);
}

/// What side watchers see: the state, and how many messages wait for their acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The socket's state.
    pub state: State,
    /// Messages not acknowledged yet.
    pub outbox_len: usize,
}

impl Status {
    fn of(engine: &Engine) -> Self {
        Status {
            state: engine.state().clone(),
            outbox_len: engine.outbox_len(),
        }
    }
}

struct Transport {
    queue: Arc<WriteQueue>,
    task: AbortHandle,
    /// Once open: its read half, which the app reads while it waits.
    reading: Option<Arc<Reading>>,
}

impl Drop for Transport {
    fn drop(&mut self) {
        if let Some(reading) = &self.reading {
            reading.retire();
        }
    }
}

struct Inner {
    engine: Engine,
    transports: HashMap<ConnId, Transport>,
    waiters: Waiters,
    /// The deadline the timer task sleeps until.
    armed: Option<Instant>,
}

/// One socket's engine, transports and timer, shared by the handle and the tasks.
pub struct Shared {
    inner: Mutex<Inner>,
    /// Events for the app.
    pub inbox: Inbox,
    /// The durable store's hook, if the socket has one.
    journal: Option<Arc<dyn Journal>>,
    /// The current state and outbox length, for callers waiting or watching on the side.
    status: watch::Sender<Status>,
    options: Arc<TransportOptions>,
    runtime: Handle,
    /// Origin of the engine's timeline.
    epoch: std::time::Instant,
    stopped: AtomicBool,
    /// Wakes the timer task when a deadline moved earlier or the socket stopped.
    rearm: Notify,
}

impl Shared {
    /// Start driving `engine` on `runtime`; events go to `inbox`, steps to `journal`.
    pub fn start(
        engine: Engine,
        options: Arc<TransportOptions>,
        runtime: Handle,
        inbox: Inbox,
        journal: Option<Arc<dyn Journal>>,
    ) -> Arc<Self> {
        let status = watch::Sender::new(Status::of(&engine));
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                engine,
                transports: HashMap::new(),
                waiters: Waiters::default(),
                armed: None,
            }),
            inbox,
            journal,
            status,
            options,
            runtime: runtime.clone(),
            epoch: std::time::Instant::now(),
            stopped: AtomicBool::new(false),
            rearm: Notify::new(),
        });
        runtime.spawn(timer(Arc::clone(&shared)));
        shared
    }

    /// Now, on the engine's timeline.
    pub fn now(&self) -> Instant {
        Instant::from_offset(self.epoch.elapsed() + PAST)
    }

    /// One step: give the engine an input, then act on everything it decided.
    pub fn with_engine<T>(self: &Arc<Self>, f: impl FnOnce(&mut Engine, Instant) -> T) -> T {
        let mut inner = self.lock();
        let result = f(&mut inner.engine, self.now());
        self.flush(&mut inner);
        result
    }

    /// Read the engine.
    pub fn inspect<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        f(&self.lock().engine)
    }

    /// Queue `payload`, tell the journal, and (with `watch`) start waiting for its outcome, in
    /// one step, so the journal gets changes in the engine's order and no ack slips in between.
    pub fn send(
        self: &Arc<Self>,
        payload: Payload,
        ttl: Option<std::time::Duration>,
        watch: bool,
    ) -> Result<Queued, SendError> {
        let mut inner = self.lock();
        // A writer busy with a slow peer reports nothing until it catches up: what it took
        // already frees room in the outbox now.
        collect_written(&mut inner);
        let journaled = self.journal.as_ref().map(|_| payload.clone());
        let now = self.now();
        let ttl = ttl.or(inner.engine.default_ttl());
        let id = inner.engine.send_with_ttl(now, payload, ttl)?;
        if let (Some(journal), Some(payload)) = (&self.journal, &journaled) {
            journal.queued(&id, payload, ttl);
        }
        let outcome = watch.then(|| inner.waiters.register(id.clone()));
        if self.stopped.load(Ordering::Acquire) {
            inner.waiters.close();
        }
        self.flush(&mut inner);
        Ok(Queued { id, outcome })
    }

    /// `send` could not make `id` durable: take it back, as if it had never been queued.
    pub fn withdraw(self: &Arc<Self>, id: &MessageId) {
        let mut inner = self.lock();
        inner.engine.withdraw(id);
        inner.waiters.forget(id);
        self.flush(&mut inner);
    }

    /// Start waiting for the outcome of a message sent earlier; settled at once when it is
    /// known already (or the message is unknown).
    pub fn watch_delivery(&self, id: &MessageId) -> oneshot::Receiver<Delivery> {
        let mut inner = self.lock();
        let settled = if self.stopped.load(Ordering::Acquire) {
            Some(Delivery::Closed)
        } else if let Some(outcome) = inner.waiters.recent(id) {
            Some(outcome)
        } else if !inner.engine.is_queued(id) {
            Some(Delivery::Unknown)
        } else {
            None
        };
        match settled {
            Some(outcome) => {
                let (tx, rx) = oneshot::channel();
                let _ = tx.send(outcome);
                rx
            }
            None => inner.waiters.register(id.clone()),
        }
    }

    /// Run `future` on the socket's runtime and await it from any executor: its timers need a
    /// tokio runtime, while the caller may be a host's event loop (UniFFI polls futures on the
    /// host's threads). Dropping the returned future cancels the task. `None` if the task ended
    /// without an answer (the runtime shutting down).
    pub fn on_runtime<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = Option<T>> + Send + 'static {
        let task = AbortOnDrop(self.runtime.spawn(future));
        async move {
            let mut task = task;
            (&mut task.0).await.ok()
        }
    }

    /// Up to `max` events: waits for the first, then takes what is already queued. Empty once
    /// the socket is closed and its events taken. While it waits with none queued and at most
    /// one message awaits its ack, it reads the socket itself (see [`Reading`]).
    pub async fn next_events(self: &Arc<Self>, max: usize) -> Vec<Event> {
        // The turn is claimed at the first wait, not before (a call that finds events queued
        // reads nothing), and claimed anew if its transport is let go of during the wait.
        let (mut turn, mut claimed) = (None::<AppTurn>, false);
        self.inbox
            .next(max, |cx| {
                if !claimed || turn.as_ref().is_some_and(AppTurn::is_retired) {
                    claimed = true;
                    turn = self.app_reading().and_then(|reading| reading.app_turn());
                }
                match &turn {
                    Some(turn) => turn.poll(cx, |batch| self.report_batch(turn.conn(), batch)),
                    None => std::task::Poll::Pending,
                }
            })
            .await
    }

    /// What the app reads while it waits: the current transport, once open, when the exchange
    /// is a lone one. As with writing, a burst in flight is left to the transport's task, whose
    /// reads gather its answers into batches while the app handles the previous ones.
    fn app_reading(&self) -> Option<Arc<Reading>> {
        let inner = self.lock();
        if !lone_exchange(&inner.engine) {
            return None;
        }
        let current = inner.engine.current_transport()?;
        inner.transports.get(&current)?.reading.clone()
    }

    /// The state and outbox length, watched.
    pub fn status(&self) -> watch::Receiver<Status> {
        // Steps skip the update while nobody watches: bring it up to date first.
        let inner = self.lock();
        update_status(&self.status, &inner.engine);
        self.status.subscribe()
    }

    /// Whether the socket was closed.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// The app took `events`: messages among them are committed.
    pub fn commit(&self, events: &[Event]) {
        let mut messages = events
            .iter()
            .filter_map(|event| match event {
                Event::Message(message) => Some(message),
                _ => None,
            })
            .peekable();
        // Batches of acks and state changes need not take the lock.
        if messages.peek().is_none() {
            return;
        }
        let mut inner = self.lock();
        for message in messages {
            inner.engine.handle_taken(message);
        }
    }

    /// Close every transport, end the event stream and the timer.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        let mut inner = self.lock();
        for (_, transport) in inner.transports.drain() {
            // The engine is done with: what the writer took needs no telling.
            let _ = transport.queue.close(1001, "socket released".into());
            self.abort_later(transport.task.clone());
        }
        inner.waiters.close();
        drop(inner);
        self.inbox.close();
        self.rearm.notify_one();
    }

    fn flush(self: &Arc<Self>, inner: &mut Inner) {
        while let Some(transmit) = inner.engine.poll_transmit() {
            let Inner {
                engine, transports, ..
            } = &mut *inner;
            match self.perform(transmit, transports) {
                Performed::Done => {}
                Performed::Closed { conn, written } => engine.handle_written(conn, written),
                Performed::Overflow(conn, overflow) => {
                    // A peer that stops reading while we keep writing would grow this queue
                    // without end: give the transport up, and let the engine reconnect and
                    // resend.
                    if let Some(transport) = transports.remove(&conn) {
                        transport.task.abort();
                        engine.handle_written(conn, transport.queue.take_written());
                    }
                    let detail = format!(
                        "the server stopped reading: {} frames ({} bytes) wait to be written; reconnecting",
                        overflow.frames, overflow.bytes
                    );
                    log::warn!("transport {}: {detail}", conn.0);
                    let error = ConnectionError::Io { detail };
                    engine.handle_transport_failed(self.now(), conn, error);
                }
            }
        }
        // A lone message (nothing else awaits an ack) is written here, on the thread that
        // queued it: no hand-off to the writer task on a round trip. While earlier ones are in
        // flight, the writer task takes them, so a burst leaves in batches, one flush each.
        let at_once = lone_exchange(&inner.engine);
        for transport in inner.transports.values() {
            transport.queue.write(at_once);
        }
        collect_written(inner);
        let mut arrived = Vec::new();
        while let Some(event) = inner.engine.poll_event() {
            if let Some(journal) = &self.journal {
                journal.event(&event);
            }
            match &event {
                Event::Acked(id) => inner.waiters.settle(id, Delivery::Acked),
                Event::SendFailed { id, reason, .. } => {
                    inner.waiters.settle(id, Delivery::Failed(reason.clone()))
                }
                _ => {}
            }
            arrived.push(event);
        }
        // After close the stream has ended: what follows is for nobody.
        if !self.stopped.load(Ordering::Acquire) {
            self.inbox.extend_unannounced(arrived);
        }
        if let Some(journal) = &self.journal {
            journal.stepped(&inner.engine);
        }
        // Nobody watches unless the app asked to (`status()` catches up): a change notifies
        // every waiter slot of the watch, twice per message sent.
        if self.status.receiver_count() > 0 {
            update_status(&self.status, &inner.engine);
        }
        // A later deadline only makes the timer wake early, which is harmless; an earlier one
        // must re-arm it.
        let next = inner.engine.poll_timeout();
        if next.is_some_and(|at| inner.armed.is_none_or(|armed| at < armed)) {
            inner.armed = next;
            self.rearm.notify_one();
        }
    }

    /// Carry out one instruction, saying what the engine must hear of it.
    fn perform(
        self: &Arc<Self>,
        transmit: Transmit,
        transports: &mut HashMap<ConnId, Transport>,
    ) -> Performed {
        if self.stopped.load(Ordering::Acquire) {
            return Performed::Done;
        }
        match transmit {
            Transmit::Open {
                conn,
                url,
                refresh_credentials,
            } => {
                log::info!("connecting to {} (transport {})", redact::url(&url), conn.0);
                let queue = Arc::new(WriteQueue::new(self.options.write_queue));
                let task = self.runtime.spawn(connection::guarded(
                    conn,
                    Arc::clone(self),
                    connection::run(
                        conn,
                        url,
                        refresh_credentials,
                        Arc::clone(&self.options),
                        Arc::clone(&queue),
                        Arc::clone(self),
                    ),
                ));
                transports.insert(
                    conn,
                    Transport {
                        queue,
                        task: task.abort_handle(),
                        reading: None,
                    },
                );
            }
            Transmit::Send {
                conn,
                frame,
                message,
            } => {
                if let Some(transport) = transports.get(&conn)
                    && let Err(overflow) = transport.queue.push(frame, message)
                {
                    return Performed::Overflow(conn, overflow);
                }
            }
            Transmit::Pong { conn, frame } => {
                if let Some(transport) = transports.get(&conn) {
                    transport.queue.push_pong(frame);
                }
            }
            Transmit::Close { conn, code, reason } => {
                // An open transport gets its close handshake (the engine may wait for it); one
                // still dialling is abandoned on the spot.
                match transports.get(&conn) {
                    Some(transport) if transport.reading.is_some() => {
                        log::debug!("closing transport {} ({code} {reason})", conn.0);
                        let written = transport.queue.close(code, reason);
                        self.abort_later(transport.task.clone());
                        return Performed::Closed { conn, written };
                    }
                    Some(transport) => {
                        transport.task.abort();
                        transports.remove(&conn);
                    }
                    None => {}
                }
            }
        }
        Performed::Done
    }

    /// A closing transport gets its close handshake, but a dead link (a blackhole) could stall
    /// its writes forever: end its task for sure once the grace period is over.
    fn abort_later(&self, task: AbortHandle) {
        self.runtime.spawn(async move {
            tokio::time::sleep(connection::CLOSE_GRACE * 2).await;
            task.abort();
        });
    }

    fn lock(&self) -> Locked<'_> {
        // Engine steps do not panic by design; if one ever did, its state is still the last
        // consistent one, and a socket that keeps working beats one that poisons every call.
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Locked {
            inner: Some(inner),
            inbox: &self.inbox,
        }
    }
}

/// The pump's lock, held for one step. The app hears of the events a step queued only once the
/// lock is released: woken before, it would take them, block on the lock to commit them, and
/// cost two more context switches per batch.
struct Locked<'a> {
    inner: Option<MutexGuard<'a, Inner>>,
    inbox: &'a Inbox,
}

impl std::ops::Deref for Locked<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        self.inner.as_ref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        self.inner.as_mut().expect("held until dropped")
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        drop(self.inner.take());
        self.inbox.announce();
    }
}

impl Reports for Shared {
    fn reading_paused(self: &Arc<Self>, conn: ConnId, paused: bool) {
        log::debug!(
            "transport {}: reading {}",
            conn.0,
            if paused {
                "paused, the app is behind"
            } else {
                "resumed"
            }
        );
        self.with_engine(|engine, now| engine.handle_reading_paused(now, conn, paused));
    }

    fn writing_blocked(self: &Arc<Self>, conn: ConnId, blocked: bool) {
        self.with_engine(|engine, now| engine.handle_writing_blocked(now, conn, blocked));
    }

    fn report(self: &Arc<Self>, conn: ConnId, report: Report) {
        let mut inner = self.lock();
        let now = self.now();
        let Inner {
            engine, transports, ..
        } = &mut *inner;
        match report {
            Report::Opened(reading) => {
                if let Some(transport) = transports.get_mut(&conn) {
                    transport.reading = Some(reading);
                }
                log::debug!("transport {} open", conn.0);
                engine.handle_transport_opened(now, conn);
            }
            Report::Failed(error) => {
                log::info!("transport {} failed: {error}", conn.0);
                if let Some(transport) = transports.remove(&conn) {
                    engine.handle_written(conn, transport.queue.take_written());
                }
                engine.handle_transport_failed(now, conn, error);
            }
            Report::Closed(code, reason) => {
                log::info!("transport {} closed (code {code:?})", conn.0);
                if let Some(transport) = transports.remove(&conn) {
                    engine.handle_written(conn, transport.queue.take_written());
                }
                engine.handle_transport_closed(now, conn, code, &reason);
            }
            Report::Frames(frames) => {
                for frame in frames {
                    engine.handle_frame(now, conn, frame);
                }
            }
            Report::Written => {
                if let Some(transport) = transports.get(&conn) {
                    engine.handle_written(conn, transport.queue.take_written());
                }
            }
        }
        self.flush(&mut inner);
    }

    fn inbox(&self) -> &Inbox {
        &self.inbox
    }
}

/// What carrying out a transmit means for the engine.
enum Performed {
    /// Nothing to report.
    Done,
    /// The transport was closed; the writer had taken these raw-mode messages.
    Closed {
        conn: ConnId,
        written: Vec<MessageId>,
    },
    /// The transport's write queue is past its bounds.
    Overflow(ConnId, Overflow),
}

/// Nothing else awaits an ack (or raw mode, where nothing does): a message's frame is written,
/// and its answer read, on the thread that waits for it.
fn lone_exchange(engine: &Engine) -> bool {
    engine.mode() == Mode::Raw || engine.outbox_len() <= 1
}

/// Publish the engine's status to its watchers, if it changed.
fn update_status(status: &watch::Sender<Status>, engine: &Engine) {
    status.send_if_modified(|status| {
        let same = status.state == *engine.state() && status.outbox_len == engine.outbox_len();
        if !same {
            *status = Status::of(engine);
        }
        !same
    });
}

/// Tell the engine which raw-mode messages the writers took since it last heard.
fn collect_written(inner: &mut Inner) {
    if inner.engine.mode() != Mode::Raw {
        return;
    }
    for (conn, transport) in &inner.transports {
        let written = transport.queue.take_written();
        if !written.is_empty() {
            inner.engine.handle_written(*conn, written);
        }
    }
}

/// A task aborted when whoever awaits it goes away.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sleeps until the engine's next deadline and runs its timers.
async fn timer(shared: Arc<Shared>) {
    while !shared.stopped.load(Ordering::Acquire) {
        let deadline = {
            let mut inner = shared.lock();
            inner.armed = inner.engine.poll_timeout();
            inner.armed
        };
        let sleep = deadline.map(|at| {
            tokio::time::Instant::from_std(shared.epoch + at.offset().saturating_sub(PAST))
        });
        tokio::select! {
            _ = shared.rearm.notified() => {}
            _ = sleep_until(sleep) => shared.with_engine(|engine, now| engine.handle_timeout(now)),
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

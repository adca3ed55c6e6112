//! The sans-IO reliability engine: every rule that keeps a WebSocket's messages intact across a
//! bad network, and nothing that touches one.
//!
//! The caller feeds it what happened (`connect`, `send`, `handle_transport_*`, `handle_frame`,
//! `handle_timeout`, lifecycle hints), each with the current time, then drains what to do:
//! [`Engine::poll_transmit`] for transports, [`Engine::poll_event`] for the application, and
//! [`Engine::poll_timeout`] for when to call `handle_timeout` next. No clock is read and no IO is
//! done here, so tests run it on a simulated clock, deterministically, thousands of times a second.
//!
//! ```
//! use steadyws::engine::{Config, Engine, Event, Frame, Instant, Payload, SplitMix64, Transmit};
//!
//! let mut engine = Engine::new(Config::new("ws://127.0.0.1:8080/ws"), Box::new(SplitMix64::new(7)))?;
//! let t0 = Instant::ZERO;
//! // Sending never fails because the socket is down: the message waits in the outbox.
//! let id = engine.send(t0, Payload::Json(r#"{"text":"hi"}"#.into()))?;
//! engine.connect(t0);
//! let Some(Transmit::Open { conn, url, .. }) = engine.poll_transmit() else { unreachable!() };
//! // Every attempt names this client, so the server can scope its dedup of message ids to it.
//! assert!(url.starts_with("ws://127.0.0.1:8080/ws?client_id="));
//!
//! // The driver opened the socket: the queued message is written.
//! engine.handle_transport_opened(t0, conn);
//! assert!(matches!(engine.poll_transmit(), Some(Transmit::Send { frame: Frame::Text(_), .. })));
//!
//! // The server acknowledges it.
//! let ack = format!(r#"{{"type":"ack","id":"{id}"}}"#);
//! engine.handle_frame(t0, conn, Frame::Text(ack));
//! let events: Vec<Event> = std::iter::from_fn(|| engine.poll_event()).collect();
//! assert!(events.contains(&Event::Acked(id)));
//!
//! // Nothing arrives for a while: the engine asks to be woken to send a heartbeat ping.
//! let wake = engine.poll_timeout().expect("heartbeat timer");
//! engine.handle_timeout(wake);
//! assert!(matches!(engine.poll_transmit(), Some(Transmit::Send { conn: c, .. }) if c == conn));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backoff;
mod close_policy;
mod config;
mod dedup;
mod endpoint;
mod envelope;
mod error;
mod event;
mod heartbeat;
mod incoming;
mod lifecycle;
mod outbox;
mod outgoing;
mod random;
mod resume;
mod state;
mod switchover;
mod time;
mod transmit;

use std::collections::VecDeque;
use std::time::Duration;

pub use config::{
    BackgroundPolicy, BackoffConfig, ClosePolicy, Config, DedupConfig, HeartbeatMode, Mode,
    OutboxConfig, OverflowPolicy,
};
pub use error::{ConfigError, ConnectionError, SendError, UrlError};
pub use event::{Cause, Event, InboundMessage, MessageId, Payload, SendFailure};
pub use lifecycle::{AppState, NetworkStatus};
pub use outbox::{OutboundMessage, OutboxEntry};
pub use random::{Random, SplitMix64};
pub use resume::{ResumeConfig, ResumeCursor};
pub use state::{FailReason, State};
pub use time::Instant;
pub use transmit::{ConnId, Frame, Transmit};

/// The wire decoders, for the fuzz targets (`tests/fuzz`) alone: not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    pub use super::envelope::{decode_server_frame, validate_json};
}

use backoff::Backoff;
use close_policy::Verdict;
use dedup::DedupWindow;
use endpoint::Endpoint;
use heartbeat::{Beat, Heartbeat};
use lifecycle::{Lifecycle, NetworkChange};
use outbox::Outbox;

/// The engine's timers; [`Engine::deadline`] says when each is due, [`Engine::fire`] what it
/// does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    /// An attempt that has not opened within `connect_timeout`.
    Connect,
    /// A connection racing the current one after a network change.
    Candidate,
    /// The next ping, or the end of the wait for an answer.
    Heartbeat,
    /// The next reconnect attempt.
    Retry,
    /// The end of the background grace period.
    Suspend,
    /// The end of the wait for the server's close.
    Close,
    /// The first queued message whose time-to-live runs out.
    Expiry,
}

impl Timer {
    /// Every timer, in the order a step handles the due ones.
    const ALL: [Timer; 7] = [
        Timer::Connect,
        Timer::Candidate,
        Timer::Heartbeat,
        Timer::Retry,
        Timer::Suspend,
        Timer::Close,
        Timer::Expiry,
    ];
}

/// Close code the engine uses when it abandons a connection it judged dead.
pub const CLOSE_DEAD_CONNECTION: u16 = 4000;

/// Counters and gauges for dashboards and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Current state.
    pub state: State,
    /// Connection attempts made since the last stable connection (or the last fresh start).
    pub attempt: u32,
    /// Connections opened after the first one.
    pub reconnects: u64,
    /// Round-trip time of the last answered ping.
    pub last_rtt: Option<Duration>,
    /// Server messages the app took (see [`Engine::handle_taken`]).
    pub messages_in: u64,
    /// Server messages received and handed to the driver for the app, taken or not.
    pub messages_received: u64,
    /// Client messages written to a transport, resends included.
    pub messages_written: u64,
    /// Client messages acknowledged by the server.
    pub messages_acked: u64,
    /// Inbound messages dropped as already delivered.
    pub duplicates_dropped: u64,
    /// Messages in the outbox.
    pub outbox_len: usize,
    /// Bytes in the outbox.
    pub outbox_bytes: usize,
    /// Inbound ids remembered for dedup.
    pub dedup_len: usize,
    /// When the last inbound frame arrived.
    pub last_inbound_at: Option<Instant>,
    /// Resume position of the last message the app took: what to persist and pass back as
    /// `resume.initial` after a restart.
    pub cursor: ResumeCursor,
}

/// The transport the engine is using or opening.
#[derive(Clone, Copy, Debug)]
struct Transport {
    id: ConnId,
    phase: Phase,
    /// It proved useful: it acknowledged a message written on it, or delivered a new one.
    proven: bool,
    /// Unanswered writes already raced a candidate against it; later checks only ping.
    raced: bool,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    Opening { deadline: Instant },
    Open { since: Instant },
}

/// One socket's reliability state machine. See the module docs for how to drive it.
pub struct Engine {
    config: Config,
    endpoint: Endpoint,
    /// Sent with every envelope-mode attempt; `None` in raw mode.
    client_id: Option<String>,
    random: Box<dyn Random>,
    state: State,
    transport: Option<Transport>,
    /// A second connection racing the current one (make-before-break, see `switchover`).
    candidate: Option<Transport>,
    /// When the probe the candidate races was sent.
    racing_since: Option<Instant>,
    next_conn: u64,
    attempt: u32,
    backoff: Backoff,
    retry_at: Option<Instant>,
    close_deadline: Option<Instant>,
    credentials_refreshed: bool,
    opened_before: bool,
    heartbeat: Heartbeat,
    outbox: Outbox,
    dedup: DedupWindow,
    /// Position of the last message received: what the next attempt asks to resume after (the
    /// messages received but not yet taken still wait in the driver).
    cursor: ResumeCursor,
    /// Position of the last message the app took.
    committed: ResumeCursor,
    lifecycle: Lifecycle,
    stats: Stats,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl Engine {
    /// An idle engine with an empty outbox. Fails if the URL or a setting is unusable.
    pub fn new(config: Config, mut random: Box<dyn Random>) -> Result<Self, ConfigError> {
        config::validate(&config)?;
        let endpoint = Endpoint::parse(&config.url)?;
        let cursor = config.resume.initial;
        let client_id = (config.mode == Mode::Envelope).then(|| {
            config
                .client_id
                .clone()
                .unwrap_or_else(|| random_uuid(random.as_mut()))
        });
        Ok(Engine {
            endpoint,
            client_id,
            random,
            state: State::Idle,
            transport: None,
            candidate: None,
            racing_since: None,
            next_conn: 0,
            attempt: 0,
            backoff: Backoff::new(config.backoff.clone()),
            retry_at: None,
            close_deadline: None,
            credentials_refreshed: false,
            opened_before: false,
            heartbeat: Heartbeat::new(config.heartbeat, config.ack_probe_after),
            outbox: Outbox::new(config.outbox.clone()),
            dedup: DedupWindow::new(config.dedup.clone()),
            cursor,
            committed: cursor,
            lifecycle: Lifecycle::default(),
            stats: Stats {
                state: State::Idle,
                attempt: 0,
                reconnects: 0,
                last_rtt: None,
                messages_in: 0,
                messages_received: 0,
                messages_written: 0,
                messages_acked: 0,
                duplicates_dropped: 0,
                outbox_len: 0,
                outbox_bytes: 0,
                dedup_len: 0,
                last_inbound_at: None,
                cursor,
            },
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            config,
        })
    }

    // ----- what the application does -----

    /// Start connecting. From `Idle`, `Closed`, `Failed` or `Suspended` this begins a fresh
    /// schedule; while already connecting, connected or waiting it does nothing.
    pub fn connect(&mut self, now: Instant) {
        match self.state {
            State::Idle
            | State::Closing
            | State::Closed
            | State::Failed { .. }
            | State::Suspended => {
                self.abandon_transport("reconnect requested");
                self.close_deadline = None;
                self.restart_schedule(now, Cause::App);
            }
            State::Connecting { .. }
            | State::Open
            | State::Reconnecting { .. }
            | State::WaitingForNetwork => {}
        }
    }

    /// Close gracefully and stop reconnecting. Queued messages stay queued for a later `connect`.
    pub fn disconnect(&mut self, now: Instant) {
        self.retry_at = None;
        self.abandon_candidate("client disconnect");
        self.heartbeat.stop();
        match self.state {
            State::Open => {
                if let Some(transport) = self.transport {
                    self.transmits.push_back(Transmit::Close {
                        conn: transport.id,
                        code: 1000,
                        reason: "client disconnect".into(),
                    });
                }
                self.close_deadline = Some(now + self.config.close_timeout);
                self.set_state(State::Closing, Cause::App);
            }
            State::Idle | State::Closing | State::Closed => {}
            _ => {
                self.abandon_transport("client disconnect");
                self.set_state(State::Closed, Cause::App);
            }
        }
    }

    /// Stop at once, without waiting for the close handshake: the transport (if any) is closed
    /// with 1000 and the state is `Closed` (even if it never connected). For releasing a socket;
    /// `connect` still starts over.
    pub fn close(&mut self, _now: Instant) {
        self.retry_at = None;
        self.abandon_candidate("client shutdown");
        self.close_deadline = None;
        self.heartbeat.stop();
        if let Some(transport) = self.transport.take() {
            self.transmits.push_back(Transmit::Close {
                conn: transport.id,
                code: 1000,
                reason: "client shutdown".into(),
            });
        }
        self.set_state(State::Closed, Cause::App);
    }

    /// The app moved to the foreground or background.
    pub fn set_app_state(&mut self, now: Instant, app: AppState) {
        if !self
            .lifecycle
            .set_app_state(now, app, self.config.background)
        {
            return;
        }
        match app {
            AppState::Background => {
                self.heartbeat.stop();
                self.abandon_candidate("app in background");
            }
            AppState::Foreground => match self.state {
                State::Open => self.probe(now),
                State::Suspended
                | State::Reconnecting { .. }
                | State::Failed {
                    reason: FailReason::GaveUp { .. },
                } => self.restart_schedule(now, Cause::Lifecycle),
                _ => {}
            },
        }
    }

    /// The OS reported a network change.
    pub fn set_network(&mut self, now: Instant, network: NetworkStatus) {
        match self.lifecycle.set_network(network) {
            NetworkChange::None => {}
            NetworkChange::Lost => match self.state {
                State::Open => self.abandon_candidate("network lost"),
                State::Connecting { .. } => {
                    // The attempt cannot succeed; it is not counted against the budget.
                    self.abandon_transport("network lost");
                    self.attempt = self.attempt.saturating_sub(1);
                    self.wait_for_network(Cause::Lifecycle);
                }
                State::Reconnecting { .. } => self.wait_for_network(Cause::Lifecycle),
                // An open socket may survive a brief loss; the heartbeat decides.
                _ => {}
            },
            NetworkChange::Returned | NetworkChange::InterfaceChanged => match self.state {
                State::Open if !self.lifecycle.in_background() => self.probe(now),
                State::WaitingForNetwork
                | State::Reconnecting { .. }
                | State::Failed {
                    reason: FailReason::GaveUp { .. },
                } => self.restart_schedule(now, Cause::Lifecycle),
                _ => {}
            },
        }
    }

    // ----- what the driver reports -----

    /// The driver stopped (`true`) or resumed (`false`) reading `conn` because the app's queue
    /// is full. While paused, silence is not a sign of a dead link.
    pub fn handle_reading_paused(&mut self, now: Instant, conn: ConnId, paused: bool) {
        if self.is_current(conn) {
            self.heartbeat.set_paused(now, paused);
        }
    }

    /// The transport `conn` could not write (`true`: the socket's send buffer is full) or wrote
    /// again (`false`). While it cannot, what waits behind cannot be answered, so unanswered
    /// writes do not count against the link: a large message on a slow uplink is not mistaken
    /// for a dead one. The idle heartbeat still runs.
    pub fn handle_writing_blocked(&mut self, now: Instant, conn: ConnId, blocked: bool) {
        if self.is_current(conn) {
            self.heartbeat.set_write_blocked(now, blocked);
        }
    }

    /// The transport `conn` completed its WebSocket handshake.
    pub fn handle_transport_opened(&mut self, now: Instant, conn: ConnId) {
        if self.is_candidate(conn) {
            self.candidate_opened(now);
            return;
        }
        let Some(transport) = self.transport.as_mut().filter(|t| t.id == conn) else {
            return;
        };
        if !matches!(transport.phase, Phase::Opening { .. }) {
            return;
        }
        transport.phase = Phase::Open { since: now };
        if self.opened_before {
            self.stats.reconnects += 1;
        }
        self.opened_before = true;
        if !self.lifecycle.in_background() {
            self.heartbeat.start(now);
        }
        self.set_state(State::Open, Cause::Opened);
        self.outbox.rewind();
        self.write_outbox(now);
    }

    /// The transport `conn` failed to open, or failed while open.
    pub fn handle_transport_failed(&mut self, now: Instant, conn: ConnId, error: ConnectionError) {
        if self.is_candidate(conn) {
            self.candidate_ended();
        } else if self.is_current(conn) {
            self.transport_ended(now, error);
        }
    }

    /// The transport `conn` closed; `code` is `None` when no close frame arrived (1006).
    pub fn handle_transport_closed(
        &mut self,
        now: Instant,
        conn: ConnId,
        code: Option<u16>,
        reason: &str,
    ) {
        if self.is_candidate(conn) {
            self.candidate_ended();
        } else if self.is_current(conn) {
            let code = code.unwrap_or(1006);
            self.transport_ended(
                now,
                ConnectionError::Closed {
                    code,
                    reason: reason.into(),
                },
            );
        }
    }

    /// A frame arrived on `conn`.
    pub fn handle_frame(&mut self, now: Instant, conn: ConnId, frame: Frame) {
        if self.is_candidate(conn) && !self.candidate_spoke(now) {
            return;
        }
        if !self.is_current(conn) || !matches!(self.state, State::Open | State::Closing) {
            return;
        }
        self.heartbeat.on_inbound(now);
        self.stats.last_inbound_at = Some(now);
        match (frame, self.config.mode) {
            // Transports answer WebSocket pings themselves (RFC 6455 §5.5.2).
            (Frame::Ping(_), _) => {}
            (Frame::Pong(payload), _) => {
                if let Some(ts) = heartbeat::ws_pong_ts(&payload) {
                    self.record_rtt(now, ts);
                }
            }
            (Frame::Text(text), Mode::Envelope) => self.handle_envelope(now, conn, &text),
            (Frame::Binary(bytes), Mode::Envelope) => {
                self.events.push_back(Event::MalformedFrame {
                    reason: format!("binary frame of {} bytes in envelope mode", bytes.len()),
                    preview: envelope::preview(&String::from_utf8_lossy(&bytes)),
                })
            }
            (Frame::Text(text), Mode::Raw) => self.deliver_raw(Payload::Text(text)),
            (Frame::Binary(bytes), Mode::Raw) => self.deliver_raw(Payload::Binary(bytes)),
        }
    }

    /// Run the timers due at `now`. Call it at [`Engine::poll_timeout`] (early calls are harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        // In `Timer::ALL` order, each timer judged after the ones before it acted (a connect
        // timeout that starts a retry leaves no stale heartbeat to fire).
        for timer in Timer::ALL {
            if self.deadline(timer).is_some_and(|at| at <= now) {
                self.fire(timer, now);
            }
        }
    }

    /// When `timer` is due, if it is armed. The one place a deadline is read, for
    /// [`Engine::poll_timeout`] and [`Engine::handle_timeout`] alike.
    fn deadline(&self, timer: Timer) -> Option<Instant> {
        match timer {
            Timer::Connect => match self.transport {
                Some(Transport {
                    phase: Phase::Opening { deadline },
                    ..
                }) => Some(deadline),
                _ => None,
            },
            Timer::Candidate => self.candidate_deadline(),
            Timer::Heartbeat if self.state == State::Open => self.heartbeat.poll_timeout(),
            Timer::Heartbeat => None,
            Timer::Retry => self.retry_at,
            Timer::Suspend => self.lifecycle.suspend_at(),
            Timer::Close => self.close_deadline,
            Timer::Expiry => self.outbox.next_expiry(),
        }
    }

    /// `timer` is due at `now`: act on it.
    fn fire(&mut self, timer: Timer, now: Instant) {
        match timer {
            Timer::Connect => {
                self.abandon_transport("connect timeout");
                let after = self.config.connect_timeout;
                let error = ConnectionError::ConnectTimeout { after };
                self.connection_failed(now, Cause::AttemptFailed(error), false);
            }
            Timer::Candidate => self.expire_candidate(now),
            Timer::Heartbeat => match self.heartbeat.on_timeout(now) {
                Some(Beat::Ping(frame)) => self.write(frame),
                Some(Beat::Unanswered { .. }) => self.check_unanswered(now),
                Some(Beat::Dead { after }) => {
                    let ended = self.transport;
                    self.abandon_transport("heartbeat timeout");
                    self.forgive(now, ended);
                    let cause =
                        Cause::ConnectionDropped(ConnectionError::HeartbeatTimeout { after });
                    // The old connection died, not an attempt: the candidate racing it takes
                    // over, or a new one is tried at once.
                    let taken_over = self.candidate_takes_over(now, cause.clone());
                    if !taken_over && self.lifecycle.network_available() {
                        self.start_attempt(now, false, cause);
                    } else if !taken_over {
                        self.wait_for_network(cause);
                    }
                }
                None => {}
            },
            Timer::Retry => self.start_attempt(now, false, Cause::RetryDue),
            Timer::Suspend => {
                if self.lifecycle.take_suspend_due(now)
                    && matches!(
                        self.state,
                        State::Open | State::Connecting { .. } | State::Reconnecting { .. }
                    )
                {
                    self.suspend();
                }
            }
            Timer::Close => {
                self.close_deadline = None;
                self.transport = None;
                self.set_state(State::Closed, Cause::App);
            }
            Timer::Expiry => {
                for expired in self.outbox.expire(now) {
                    self.report_failed_message(expired, SendFailure::Expired);
                }
            }
        }
    }

    // ----- what the engine asks for -----

    /// The next transport instruction, in order.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next application event, in order.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Engine::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Timer::ALL
            .into_iter()
            .filter_map(|timer| self.deadline(timer))
            .min()
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        Stats {
            state: self.state.clone(),
            attempt: self.attempt,
            outbox_len: self.outbox.len(),
            outbox_bytes: self.outbox.bytes(),
            dedup_len: self.dedup.len(),
            cursor: self.committed,
            ..self.stats.clone()
        }
    }

    /// How many messages wait for their acknowledgement.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// How frames are framed on the wire.
    pub fn mode(&self) -> Mode {
        self.config.mode
    }

    /// The transport carrying the socket now (open or opening), not a candidate racing it.
    pub fn current_transport(&self) -> Option<ConnId> {
        self.transport.map(|transport| transport.id)
    }

    /// The validated server URL.
    pub fn url(&self) -> &str {
        self.endpoint.as_str()
    }

    /// Whether the message `id` is still queued (not yet acknowledged, failed or, in raw mode,
    /// taken by a transport to write).
    pub fn is_queued(&self, id: &MessageId) -> bool {
        self.outbox.contains(&id.0)
    }

    /// Position of the last message the app took (or where a first connection started).
    pub fn committed(&self) -> ResumeCursor {
        self.committed
    }

    /// How many server messages the app took.
    pub fn messages_taken(&self) -> u64 {
        self.stats.messages_in
    }

    /// The time-to-live of messages sent without one.
    pub fn default_ttl(&self) -> Option<Duration> {
        self.config.outbox.default_ttl
    }

    /// The identity sent to the server with every attempt (envelope mode only).
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    // ----- connection lifecycle -----

    fn is_current(&self, conn: ConnId) -> bool {
        self.transport.is_some_and(|t| t.id == conn)
    }

    /// A fresh schedule: forget past failures and attempt now (or wait for the network).
    fn restart_schedule(&mut self, now: Instant, cause: Cause) {
        self.backoff.reset();
        self.attempt = 0;
        self.credentials_refreshed = false;
        if self.lifecycle.network_available() {
            self.start_attempt(now, false, cause);
        } else {
            self.wait_for_network(cause);
        }
    }

    fn start_attempt(&mut self, now: Instant, refresh_credentials: bool, cause: Cause) {
        self.abandon_transport("superseded");
        self.abandon_candidate("superseded");
        self.retry_at = None;
        self.attempt = self.attempt.saturating_add(1);
        self.transport = Some(self.open_transport(now, refresh_credentials));
        let attempt = self.attempt;
        self.set_state(State::Connecting { attempt }, cause);
    }

    /// Ask the driver for a new transport, resuming from the cursor.
    fn open_transport(&mut self, now: Instant, refresh_credentials: bool) -> Transport {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let url = self.endpoint.url_for_attempt(
            self.client_id.as_deref(),
            &self.cursor,
            &self.config.resume,
        );
        self.transmits.push_back(Transmit::Open {
            conn,
            url,
            refresh_credentials,
        });
        Transport {
            id: conn,
            phase: Phase::Opening {
                deadline: now + self.config.connect_timeout,
            },
            proven: false,
            raced: false,
        }
    }

    /// A connection that stayed open for `stable_after`, or proved useful (an ack for a message
    /// written on it, or a new message received on it), earns a fresh backoff schedule; one that
    /// dropped sooner without either does not, so accept-then-drop and hello-only servers cannot
    /// cause a tight loop. Returns whether it proved useful: then the first retry comes quickly.
    fn forgive(&mut self, now: Instant, ended: Option<Transport>) -> bool {
        let Some(ended) = ended else { return false };
        let stable_after = self.config.backoff.stable_after;
        let stable = matches!(ended.phase, Phase::Open { since } if now.saturating_since(since) >= stable_after);
        if stable || ended.proven {
            self.backoff.reset();
            self.attempt = 0;
            // Credentials that held a good connection earn another refresh when they expire.
            self.credentials_refreshed = false;
        }
        ended.proven
    }

    /// The current transport failed or closed without the app asking.
    fn transport_ended(&mut self, now: Instant, error: ConnectionError) {
        let ended = self.transport.take();
        self.heartbeat.stop();
        if self.state == State::Closing {
            self.close_deadline = None;
            self.set_state(State::Closed, Cause::App);
            return;
        }
        let was_open = matches!(
            ended,
            Some(Transport {
                phase: Phase::Open { .. },
                ..
            })
        );
        let quick = self.forgive(now, ended);
        let cause = if was_open {
            Cause::ConnectionDropped(error)
        } else {
            Cause::AttemptFailed(error)
        };
        if self.candidate_takes_over(now, cause.clone()) {
            return;
        }
        self.connection_failed(now, cause, quick);
    }

    /// Note that the current transport made progress (acknowledged what was written on it, or
    /// delivered a message not seen before): it proved useful. A `hello` alone does not count,
    /// nor is one needed.
    fn note_progress(&mut self) {
        if let Some(transport) = self.transport.as_mut() {
            transport.proven = true;
        }
    }

    /// Decide what follows a failed attempt or a lost connection; `cause` carries the problem.
    /// After a connection that proved useful (`quick`), the first retry comes within
    /// `backoff.after_useful_drop` instead of the schedule's delay.
    fn connection_failed(&mut self, now: Instant, cause: Cause, quick: bool) {
        let Some(error) = cause.problem().cloned() else {
            return;
        };
        let verdict = close_policy::verdict(&self.config, self.credentials_refreshed, &error);
        match verdict {
            Verdict::Fatal => {
                let reason = FailReason::Rejected(error);
                self.set_state(State::Failed { reason }, cause);
            }
            Verdict::RetryWithFreshCredentials => {
                self.credentials_refreshed = true;
                self.start_attempt(now, true, cause);
            }
            Verdict::Retry { .. } if !self.lifecycle.network_available() => {
                self.wait_for_network(cause)
            }
            Verdict::Retry { server_delay } => {
                if let Some(delay) = server_delay {
                    self.backoff.honour_server_hint(delay);
                }
                match self.backoff.next_delay(self.random.as_mut()) {
                    Some(scheduled) => {
                        // A server's delay is honoured as scheduled; otherwise a link that was
                        // working is retried at once, give or take jitter.
                        let retry_in = if quick && server_delay.is_none() {
                            let quickly = self.config.backoff.after_useful_drop;
                            let jitter = self.config.backoff.jitter * self.random.next_unit();
                            quickly.saturating_sub(quickly.mul_f64(jitter))
                        } else {
                            scheduled
                        };
                        self.retry_at = Some(now + retry_in);
                        let attempt = self.attempt.saturating_add(1);
                        self.set_state(State::Reconnecting { attempt, retry_in }, cause);
                    }
                    None => {
                        let attempts = self.attempt;
                        let reason = FailReason::GaveUp {
                            attempts,
                            last: error,
                        };
                        self.set_state(State::Failed { reason }, cause);
                    }
                }
            }
        }
    }

    /// Check an open connection now, when it may be stale (foreground, network change): ping
    /// it, and race a new connection against the answer (make-before-break, see
    /// `switchover`). Nothing arriving within `probe_timeout` still ends it.
    fn probe(&mut self, now: Instant) {
        let frame = self.heartbeat.probe(now, self.config.probe_timeout);
        self.write(frame);
        self.open_candidate(now);
    }

    /// What was written on the current connection met silence for `ack_probe_after`: ping it
    /// now rather than at the idle heartbeat. The first such check on a connection also races a
    /// candidate (envelope mode), so a dead link is replaced within `probe_timeout`. A server
    /// that answers the ping is alive, only slow to acknowledge: later checks on that connection
    /// ping without a candidate. Raw mode never races one: a server need not answer messages
    /// there, and a candidate would win at its handshake and replace a quiet but live
    /// connection; the pong decides.
    fn check_unanswered(&mut self, now: Instant) {
        let frame = self.heartbeat.probe(now, self.config.probe_timeout);
        self.write(frame);
        let envelope = self.config.mode == Mode::Envelope;
        if let Some(transport) = self.transport.as_mut()
            && envelope
            && !std::mem::replace(&mut transport.raced, true)
        {
            self.open_candidate(now);
        }
    }

    fn wait_for_network(&mut self, cause: Cause) {
        self.retry_at = None;
        self.set_state(State::WaitingForNetwork, cause);
    }

    fn suspend(&mut self) {
        self.abandon_candidate("app in background");
        if let Some(transport) = self.transport.take() {
            self.transmits.push_back(Transmit::Close {
                conn: transport.id,
                code: 1001,
                reason: "app in background".into(),
            });
        }
        self.heartbeat.stop();
        self.retry_at = None;
        self.set_state(State::Suspended, Cause::Lifecycle);
    }

    /// Tell the driver to drop the current transport, if any; reports about it are ignored from now.
    fn abandon_transport(&mut self, reason: &str) {
        if let Some(transport) = self.transport.take() {
            self.heartbeat.stop();
            self.transmits.push_back(Transmit::Close {
                conn: transport.id,
                code: CLOSE_DEAD_CONNECTION,
                reason: reason.into(),
            });
        }
    }

    fn set_state(&mut self, state: State, cause: Cause) {
        if self.state != state {
            self.state = state.clone();
            self.events.push_back(Event::StateChanged { state, cause });
        }
    }
}

/// A UUID v4 from `random`: unpredictable when `random` is the operating system's generator, as
/// a live socket's is.
fn random_uuid(random: &mut dyn Random) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&random.next_u64().to_le_bytes());
    bytes[8..].copy_from_slice(&random.next_u64().to_le_bytes());
    let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
    // Straight into the text, without the formatting machinery: one per message sent.
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid.hyphenated().encode_lower(&mut text).to_owned()
}

//! The pump: one task per socket that performs the engine's transmits, feeds it transport reports
//! and timer expiries, and forwards its events to the application.
//!
//! The engine lives behind a mutex that is only ever held for a synchronous step, so the public
//! methods on [`Socket`](crate::Socket) can call into it directly (returning ids and typed errors
//! at once) and then wake the pump.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;

use super::connection::{self, Command, Report};
use super::dial::TransportOptions;
use super::redact;
use crate::engine::{ConnId, Engine, Event, Instant, Transmit};

/// State shared by the public handle and the pump task.
pub struct Shared {
    engine: Mutex<Engine>,
    /// Origin of the engine's timeline.
    epoch: std::time::Instant,
    /// Set when the handle is gone; the pump closes everything and ends.
    stopped: AtomicBool,
    wake: Notify,
}

impl Shared {
    /// Wrap an engine.
    pub fn new(engine: Engine) -> Arc<Self> {
        Arc::new(Shared {
            engine: Mutex::new(engine),
            epoch: std::time::Instant::now(),
            stopped: AtomicBool::new(false),
            wake: Notify::new(),
        })
    }

    /// Now, on the engine's timeline.
    pub fn now(&self) -> Instant {
        Instant::from_offset(self.epoch.elapsed())
    }

    /// Run `f` on the engine, then let the pump act on what it decided.
    pub fn with_engine<T>(&self, f: impl FnOnce(&mut Engine, Instant) -> T) -> T {
        let result = f(&mut self.lock(), self.now());
        self.wake.notify_one();
        result
    }

    /// Read the engine without waking the pump.
    pub fn inspect<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        f(&self.lock())
    }

    /// Ask the pump to close every transport and end.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    fn lock(&self) -> MutexGuard<'_, Engine> {
        // Engine steps do not panic by design; if one ever did, its state is still the last
        // consistent one, and a socket that keeps working beats one that poisons every call.
        self.engine
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct Transport {
    commands: mpsc::UnboundedSender<Command>,
    task: AbortHandle,
    opened: bool,
}

/// The pump task.
pub async fn run(
    shared: Arc<Shared>,
    options: Arc<TransportOptions>,
    events: mpsc::UnboundedSender<Event>,
) {
    let (reports_tx, mut reports) = mpsc::unbounded_channel::<(ConnId, Report)>();
    let mut transports: HashMap<ConnId, Transport> = HashMap::new();
    loop {
        let (transmits, deadline) = {
            let mut engine = shared.lock();
            let transmits: Vec<Transmit> = std::iter::from_fn(|| engine.poll_transmit()).collect();
            for event in std::iter::from_fn(|| engine.poll_event()) {
                // The application may have stopped listening; the socket keeps working.
                let _ = events.send(event);
            }
            (transmits, engine.poll_timeout())
        };
        for transmit in transmits {
            perform(transmit, &mut transports, &options, &reports_tx);
        }
        if shared.stopped.load(Ordering::Acquire) {
            break;
        }
        let sleep = deadline.map(|at| tokio::time::Instant::from_std(shared.epoch + at.offset()));
        tokio::select! {
            _ = shared.wake.notified() => {}
            Some((conn, report)) = reports.recv() => {
                let mut engine = shared.lock();
                apply(&mut engine, shared.now(), conn, report, &mut transports);
                // Take whatever else already arrived in the same step.
                while let Ok((conn, report)) = reports.try_recv() {
                    apply(&mut engine, shared.now(), conn, report, &mut transports);
                }
            }
            _ = sleep_until(sleep) => shared.lock().handle_timeout(shared.now()),
        }
    }
    for (_, transport) in transports {
        let _ = transport
            .commands
            .send(Command::Close(1001, "socket released".into()));
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn apply(
    engine: &mut Engine,
    now: Instant,
    conn: ConnId,
    report: Report,
    transports: &mut HashMap<ConnId, Transport>,
) {
    match report {
        Report::Opened => {
            if let Some(transport) = transports.get_mut(&conn) {
                transport.opened = true;
            }
            log::debug!("transport {} open", conn.0);
            engine.handle_transport_opened(now, conn);
        }
        Report::Failed(error) => {
            log::info!("transport {} failed: {error}", conn.0);
            transports.remove(&conn);
            engine.handle_transport_failed(now, conn, error);
        }
        Report::Closed(code, reason) => {
            log::info!("transport {} closed by peer (code {:?})", conn.0, code);
            transports.remove(&conn);
            engine.handle_transport_closed(now, conn, code, &reason);
        }
        Report::Frame(frame) => engine.handle_frame(now, conn, frame),
    }
}

fn perform(
    transmit: Transmit,
    transports: &mut HashMap<ConnId, Transport>,
    options: &Arc<TransportOptions>,
    reports: &mpsc::UnboundedSender<(ConnId, Report)>,
) {
    match transmit {
        Transmit::Open {
            conn,
            url,
            refresh_credentials,
        } => {
            log::info!("connecting to {} (transport {})", redact::url(&url), conn.0);
            let (commands, commands_rx) = mpsc::unbounded_channel();
            let task = tokio::spawn(connection::run(
                conn,
                url,
                refresh_credentials,
                Arc::clone(options),
                commands_rx,
                reports.clone(),
            ));
            transports.insert(
                conn,
                Transport {
                    commands,
                    task: task.abort_handle(),
                    opened: false,
                },
            );
        }
        Transmit::Send { conn, frame } => {
            if let Some(transport) = transports.get(&conn) {
                let _ = transport.commands.send(Command::Send(frame));
            }
        }
        Transmit::Close { conn, code, reason } => {
            // Closing an open transport keeps its task for the close handshake (the engine may
            // wait for it); one still dialling is abandoned on the spot.
            match transports.get(&conn) {
                Some(transport) if transport.opened => {
                    log::debug!("closing transport {} ({code} {reason})", conn.0);
                    let _ = transport.commands.send(Command::Close(code, reason));
                }
                Some(transport) => {
                    transport.task.abort();
                    transports.remove(&conn);
                }
                None => {}
            }
        }
    }
}

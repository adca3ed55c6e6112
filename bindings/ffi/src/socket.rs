//! `NativeSocket`: the object the host layers hold (each language wraps it in its own
//! `SteadySocket` / `Socket`). Every method forwards to [`steadyws::Socket`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use steadyws::{AppState, Network, Payload, Socket};
use tokio::sync::watch;

use crate::error::SteadyError;
use crate::event::{OpenOutcome, SendOutcome, SocketEvent, SocketState, SocketStats};
use crate::listener::SocketListener;
use crate::options::SocketOptions;
use crate::packed::PackedEvents;
use crate::wait::{WaitCancellation, unless_cancelled};

/// How many `NativeSocket` objects exist in this process.
static LIVE_SOCKETS: AtomicU64 = AtomicU64::new(0);

/// How many native sockets exist in this process: made and not yet released by the host. For leak
/// checks: a host that drops every socket it made brings this back to where it was.
#[uniffi::export]
pub fn live_native_sockets() -> u64 {
    LIVE_SOCKETS.load(Ordering::Relaxed)
}

/// Whether the app is visible.
#[derive(Clone, Copy, Debug, uniffi::Enum)]
pub enum AppLifecycle {
    /// Visible and running.
    Foreground,
    /// In the background; the OS may suspend it.
    Background,
}

/// What the OS reachability API reports.
#[derive(Clone, Debug, uniffi::Enum)]
pub enum NetworkStatus {
    /// A route exists, over `interface` (e.g. "wifi", "cellular") if known.
    Available {
        /// The interface name, if known.
        interface: Option<String>,
    },
    /// No route.
    Unavailable,
}

/// A message waiting for the server's acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct PendingMessage {
    /// Its id, as `send` returned it.
    pub id: String,
    /// Its JSON content, as given to `send`.
    pub json: String,
    /// When it was sent: milliseconds since the Unix epoch (from an earlier run for messages
    /// a store kept).
    pub created_at_ms: u64,
}

/// A WebSocket that stays connected, resends what the server has not acknowledged, drops
/// duplicates and resumes where it left off. Methods never wait for the network (with a store,
/// `send`, `cancel` and taking events wait for the disk).
#[derive(uniffi::Object)]
pub struct NativeSocket {
    socket: Arc<Socket>,
    /// Stops the listener thread when replaced or when this object is released.
    listener_stop: Mutex<Option<watch::Sender<bool>>>,
}

#[uniffi::export]
impl NativeSocket {
    /// Validate `options` and create the socket (idle until `connect`).
    #[uniffi::constructor]
    pub fn new(options: SocketOptions) -> Result<Arc<Self>, SteadyError> {
        let socket = Socket::new(options.to_socket_config())?;
        LIVE_SOCKETS.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(NativeSocket {
            socket: Arc::new(socket),
            listener_stop: Mutex::new(None),
        }))
    }

    /// Start connecting, and keep reconnecting.
    pub fn connect(&self) {
        self.socket.connect();
    }

    /// Close gracefully and stop reconnecting; queued messages wait for the next `connect`.
    pub fn disconnect(&self) {
        self.socket.disconnect();
    }

    /// Queue a JSON message; returns its id. An `Acked` event follows once the server stored it.
    pub fn send(&self, json: String) -> Result<String, SteadyError> {
        Ok(self.socket.send(&json)?.0)
    }

    /// Queue a JSON message and wait until it settles, or `timeout_ms` passes (`None`: until
    /// it settles or the socket is closed). The event stream still gets its `Acked` or
    /// `SendFailed`; a timeout ends the wait, not the message.
    pub async fn send_and_wait(
        &self,
        json: String,
        timeout_ms: Option<u64>,
    ) -> Result<SendOutcome, SteadyError> {
        let timeout = timeout_ms.map(std::time::Duration::from_millis);
        let (id, delivery) = self.socket.send_and_wait(&json, timeout).await?;
        Ok(SendOutcome::new(id.0, delivery))
    }

    /// Wait until the message `id` (from `send`) settles or `timeout_ms` passes. Answers at
    /// once when its outcome is already known; takes nothing from the event stream. A cancelled
    /// `cancellation` ends the wait as `TimedOut`.
    #[uniffi::method(default(cancellation = None))]
    pub async fn wait_acked(
        &self,
        id: String,
        timeout_ms: Option<u64>,
        cancellation: Option<Arc<WaitCancellation>>,
    ) -> SendOutcome {
        let timeout = timeout_ms.map(std::time::Duration::from_millis);
        let message = steadyws::MessageId(id.clone());
        let delivery = unless_cancelled(cancellation, self.socket.wait_acked(&message, timeout))
            .await
            .unwrap_or(steadyws::Delivery::TimedOut);
        SendOutcome::new(id, delivery)
    }

    /// Wait until the socket is open, has given up or is closed, or `timeout_ms` passes. Takes
    /// nothing from the event stream. A cancelled `cancellation` ends the wait as `TimedOut`.
    #[uniffi::method(default(cancellation = None))]
    pub async fn wait_open(
        &self,
        timeout_ms: Option<u64>,
        cancellation: Option<Arc<WaitCancellation>>,
    ) -> OpenOutcome {
        let timeout = timeout_ms.map(std::time::Duration::from_millis);
        unless_cancelled(cancellation, self.socket.wait_open(timeout))
            .await
            .map_or(OpenOutcome::TimedOut, Into::into)
    }

    /// `send` that gives up after `ttl_ms` (a `SendFailed` event with reason `expired`).
    pub fn send_with_ttl(&self, json: String, ttl_ms: u64) -> Result<String, SteadyError> {
        Ok(self
            .socket
            .send_with_ttl(&json, std::time::Duration::from_millis(ttl_ms))?
            .0)
    }

    /// Send a text frame unchanged (raw mode).
    pub fn send_text(&self, text: String) -> Result<String, SteadyError> {
        Ok(self.socket.send_text(&text)?.0)
    }

    /// Send a binary frame unchanged (raw mode).
    pub fn send_binary(&self, bytes: Vec<u8>) -> Result<String, SteadyError> {
        Ok(self.socket.send_binary(&bytes)?.0)
    }

    /// The messages still waiting for the server's acknowledgement, oldest first (after a
    /// restart with a store, also those an earlier run sent).
    pub fn pending(&self) -> Vec<PendingMessage> {
        self.socket
            .pending()
            .into_iter()
            .map(|message| PendingMessage {
                id: message.id.0,
                json: match message.payload {
                    Payload::Json(json) | Payload::Text(json) => json,
                    Payload::Binary(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                },
                created_at_ms: message
                    .sent_at
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            })
            .collect()
    }

    /// Stop sending the message `id`: true if it was pending (a `SendFailed` event with reason
    /// `Cancelled` follows; with a store it is gone from the file when this returns), false if
    /// it was not. A copy written before may still reach the server.
    pub fn cancel(&self, id: String) -> Result<bool, SteadyError> {
        Ok(self.socket.cancel(&steadyws::MessageId(id))?)
    }

    /// Report the app's lifecycle (call from the platform's foreground/background callbacks).
    pub fn set_app_state(&self, state: AppLifecycle) {
        self.socket.set_app_state(match state {
            AppLifecycle::Foreground => AppState::Foreground,
            AppLifecycle::Background => AppState::Background,
        });
    }

    /// Report reachability (call from NWPathMonitor / ConnectivityManager callbacks).
    pub fn set_network(&self, status: NetworkStatus) {
        self.socket.set_network(match status {
            NetworkStatus::Available { interface } => Network::Available { interface },
            NetworkStatus::Unavailable => Network::Unavailable,
        });
    }

    /// The current state.
    pub fn state(&self) -> SocketState {
        self.socket.state().into()
    }

    /// Counters.
    pub fn stats(&self) -> SocketStats {
        self.socket.stats().into()
    }

    /// The next event, waiting for it; `None` once the socket is gone.
    pub async fn next_event(&self) -> Option<SocketEvent> {
        self.socket.next_event().await.map(Into::into)
    }

    /// Up to `max` events: waits for the first, then takes what is already queued; empty once
    /// the socket is gone. One call per burst: cheaper than `next_event` when events pour in.
    pub async fn next_events(&self, max: u32) -> Vec<SocketEvent> {
        self.socket
            .next_events(max as usize)
            .await
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// Up to `max` events that are ready now, without waiting.
    pub fn try_next_events(&self, max: u32) -> Vec<SocketEvent> {
        self.socket
            .try_next_events(max as usize)
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// [`next_events`](Self::next_events) in packed form: one JSON document for the messages,
    /// the other events typed (see [`PackedEvents`]). For hosts whose per-record lifting costs
    /// more than decoding one document.
    pub async fn next_events_packed(&self, max: u32) -> PackedEvents {
        self.socket.next_events(max as usize).await.into()
    }

    /// [`try_next_events`](Self::try_next_events) in packed form.
    pub fn try_next_events_packed(&self, max: u32) -> PackedEvents {
        self.socket.try_next_events(max as usize).into()
    }

    /// The next event if one is ready, without waiting.
    pub fn try_next_event(&self) -> Option<SocketEvent> {
        self.socket.try_next_event().map(Into::into)
    }

    /// Stop for good: close the connection, stop reconnecting, and end the event stream (a
    /// pending `next_event` returns `None` once the remaining events are read; with a store,
    /// messages among them are left to the server for the next socket on the store); the state
    /// becomes `Closed` and every pending wait ends with `Closed`. Hosts call it before releasing
    /// the object, since a pending call keeps the native socket alive.
    pub fn shutdown(&self) {
        self.socket.shutdown();
    }

    /// Deliver every event to `listener` (on a steadyws thread) instead of `next_event`;
    /// `None` stops it. An exception thrown by the listener is logged and delivery goes on.
    pub fn set_listener(&self, listener: Option<Arc<dyn SocketListener>>) {
        let mut current = self.listener_stop.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(stop) = current.take() {
            let _ = stop.send(true);
        }
        let Some(listener) = listener else { return };
        let (stop, stopped) = watch::channel(false);
        *current = Some(stop);
        let socket = Arc::clone(&self.socket);
        let spawned = std::thread::Builder::new()
            .name("steadyws-listener".into())
            .spawn(move || deliver(&socket, listener.as_ref(), stopped));
        if let Err(err) = spawned {
            log::error!("cannot start the listener thread: {err}");
        }
    }
}

/// Pull events and hand them to the listener, holding no lock while the host code runs.
fn deliver(socket: &Socket, listener: &dyn SocketListener, mut stopped: watch::Receiver<bool>) {
    let runtime = steadyws::runtime::handle();
    loop {
        let next = runtime.block_on(async {
            tokio::select! {
                event = socket.next_event() => event,
                _ = stopped.wait_for(|stop| *stop) => None,
            }
        });
        let Some(event) = next else { return };
        if let Err(err) = listener.on_event(event.into()) {
            log::warn!("{err}");
        }
    }
}

impl Drop for NativeSocket {
    fn drop(&mut self) {
        LIVE_SOCKETS.fetch_sub(1, Ordering::Relaxed);
        if let Some(stop) = self
            .listener_stop
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = stop.send(true);
        }
    }
}

//! `NativeSocket`: the object each host wraps in its `Socket`. Every method forwards to
//! [`steadyws::Socket`]; waits end with `Ok` or a [`NativeError`] whose kind says why.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use steadyws::{AppState, MessageId, NetworkStatus, Payload, Socket};

use crate::config::SocketConfig;
use crate::error::NativeError;
use crate::event::{PendingMessage, SocketEvent, SocketState, SocketStats};
use crate::packed::PackedEvents;
use crate::reading::{Reading, batch_size};
use crate::wait::{WaitCancellation, unless_cancelled};
use crate::watch::StatusWatch;

/// How many `NativeSocket` objects exist in this process.
static LIVE_SOCKETS: AtomicU64 = AtomicU64::new(0);

/// How many native sockets exist in this process: made and not yet released by the host. For leak
/// checks: a host that drops every socket it made brings this back to where it was.
#[uniffi::export]
pub fn live_native_sockets() -> u64 {
    LIVE_SOCKETS.load(Ordering::Relaxed)
}

fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}

/// A WebSocket that stays connected, resends what the server has not acknowledged, drops
/// duplicates and resumes where it left off. Methods never wait for the network (with a store,
/// `send`, `cancel` and taking events wait for the disk).
#[derive(uniffi::Object)]
pub struct NativeSocket {
    socket: Arc<Socket>,
    reading: Reading,
}

#[uniffi::export]
impl NativeSocket {
    /// Validate `config` and create the socket (idle until `connect`).
    #[uniffi::constructor]
    pub fn new(config: SocketConfig) -> Result<Arc<Self>, NativeError> {
        let socket = Socket::new(config.to_socket_config())?;
        LIVE_SOCKETS.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(NativeSocket {
            socket: Arc::new(socket),
            reading: Reading::default(),
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

    /// Queue a JSON message; returns its id. An `Acked` event follows once the server stored it;
    /// with `ttl_ms`, a `SendFailed` event with reason `Expired` if it is not acknowledged
    /// within that time.
    #[uniffi::method(default(ttl_ms = None))]
    pub fn send(&self, json: String, ttl_ms: Option<u64>) -> Result<String, NativeError> {
        let id = match ttl_ms {
            Some(ttl) => self.socket.send_with_ttl(&json, ms(ttl))?,
            None => self.socket.send(&json)?,
        };
        Ok(id.0)
    }

    /// Queue a JSON message (with an optional `ttl_ms`, as `send`) and wait until the server
    /// acknowledges it: returns its id. Fails with `SendFailed`, `TimedOut` (`timeout_ms`
    /// passed), `Cancelled` (`cancellation` was cancelled) or `Closed`; after `TimedOut` and
    /// `Cancelled` the message stays queued. The event stream still gets its `Acked` or
    /// `SendFailed`.
    #[uniffi::method(default(ttl_ms = None, timeout_ms = None, cancellation = None))]
    pub async fn send_and_wait(
        &self,
        json: String,
        ttl_ms: Option<u64>,
        timeout_ms: Option<u64>,
        cancellation: Option<Arc<WaitCancellation>>,
    ) -> Result<String, NativeError> {
        // Queued first, so that a cancelled wait still tells the host the id of the message it
        // leaves queued; an ack that arrives before the wait starts is among the recent outcomes
        // `wait_acked` answers from.
        let id = self.send(json, ttl_ms)?;
        self.wait_acked(id.clone(), timeout_ms, cancellation)
            .await
            .map(|()| id)
    }

    /// Wait until the message `id` (from `send`) is acknowledged. Answers at once when its
    /// outcome is already known; takes nothing from the event stream. Fails as `send_and_wait`
    /// does, or with `UnknownMessage`.
    #[uniffi::method(default(timeout_ms = None, cancellation = None))]
    pub async fn wait_acked(
        &self,
        id: String,
        timeout_ms: Option<u64>,
        cancellation: Option<Arc<WaitCancellation>>,
    ) -> Result<(), NativeError> {
        let message = MessageId(id.clone());
        let delivery = unless_cancelled(
            cancellation,
            self.socket.wait_acked(&message, timeout_ms.map(ms)),
        )
        .await
        .ok_or_else(|| NativeError::cancelled(Some(&id)))?;
        NativeError::undelivered(&id, delivery).map_or(Ok(()), Err)
    }

    /// Wait until the socket is open. Fails with `ConnectionFailed` (it gave up), `Closed`,
    /// `TimedOut` or `Cancelled`; takes nothing from the event stream.
    #[uniffi::method(default(timeout_ms = None, cancellation = None))]
    pub async fn wait_open(
        &self,
        timeout_ms: Option<u64>,
        cancellation: Option<Arc<WaitCancellation>>,
    ) -> Result<(), NativeError> {
        let opening = unless_cancelled(cancellation, self.socket.wait_open(timeout_ms.map(ms)))
            .await
            .ok_or_else(|| NativeError::cancelled(None))?;
        NativeError::not_open(opening).map_or(Ok(()), Err)
    }

    /// Send a text frame unchanged (raw mode).
    pub fn send_text(&self, text: String) -> Result<String, NativeError> {
        Ok(self.socket.send_text(&text)?.0)
    }

    /// Send a binary frame unchanged (raw mode).
    pub fn send_binary(&self, bytes: Vec<u8>) -> Result<String, NativeError> {
        Ok(self.socket.send_binary(&bytes)?.0)
    }

    /// The messages still waiting for the server's acknowledgement, oldest first (after a
    /// restart with a store, also those an earlier run sent).
    pub fn pending(&self) -> Vec<PendingMessage> {
        self.socket
            .pending()
            .into_iter()
            .map(PendingMessage::from)
            .collect()
    }

    /// Stop sending the message `id`: true if it was pending (a `SendFailed` event with reason
    /// `Cancelled` follows; with a store it is gone from the file when this returns), false if
    /// it was not. A copy written before may still reach the server.
    pub fn cancel(&self, id: String) -> Result<bool, NativeError> {
        Ok(self.socket.cancel(&MessageId(id))?)
    }

    /// Report the app's lifecycle (call from the platform's foreground/background callbacks).
    pub fn set_app_state(&self, state: AppState) {
        self.socket.set_app_state(state);
    }

    /// Report reachability (call from NWPathMonitor / ConnectivityManager callbacks). A route
    /// without an interface name keeps the name known before.
    pub fn set_network(&self, status: NetworkStatus) {
        self.socket.set_network(status);
    }

    /// The current state.
    pub fn state(&self) -> SocketState {
        self.socket.state().into()
    }

    /// Counters.
    pub fn stats(&self) -> SocketStats {
        self.socket.stats().into()
    }

    /// Follow the state and the outbox length from the side (takes no event). Any number of
    /// watches may run; drop one to stop it.
    pub fn watch(&self) -> Arc<StatusWatch> {
        StatusWatch::new(self.socket.watch())
    }

    /// The next events, in order: waits for the first, then takes what is already queued, up
    /// to the batch the socket allows (one with a store, where taking the next batch commits
    /// this one). Empty once the socket is closed and its events are read. Fails with
    /// `AlreadyReading` while another reader takes events, and with `Cancelled` once
    /// `cancellation` is cancelled (for hosts that cannot drop a native call: the reader's
    /// claim ends with it, and nothing taken is lost).
    #[uniffi::method(default(cancellation = None))]
    pub async fn next_events(
        &self,
        cancellation: Option<Arc<WaitCancellation>>,
    ) -> Result<Vec<SocketEvent>, NativeError> {
        let events = self.take(cancellation).await?;
        Ok(events.into_iter().map(Into::into).collect())
    }

    /// The events ready now, without waiting (the same batch and reader rules).
    pub fn try_next_events(&self) -> Result<Vec<SocketEvent>, NativeError> {
        let _claim = self.reading.claim()?;
        let events = self.socket.try_next_events(batch_size(&self.socket));
        Ok(events.into_iter().map(Into::into).collect())
    }

    /// [`next_events`](Self::next_events) in packed form: one JSON document for the messages,
    /// the other events typed (see [`PackedEvents`]). For hosts whose per-record lifting costs
    /// more than decoding one document.
    #[uniffi::method(default(cancellation = None))]
    pub async fn next_events_packed(
        &self,
        cancellation: Option<Arc<WaitCancellation>>,
    ) -> Result<PackedEvents, NativeError> {
        Ok(self.take(cancellation).await?.into())
    }

    /// [`try_next_events`](Self::try_next_events) in packed form.
    pub fn try_next_events_packed(&self) -> Result<PackedEvents, NativeError> {
        let _claim = self.reading.claim()?;
        Ok(self.socket.try_next_events(batch_size(&self.socket)).into())
    }

    /// Stop for good: close the connection, stop reconnecting, and end the event stream
    /// (`next_events` returns empty once the remaining events are read; with a store, messages
    /// among them are left to the server for the next socket on the store); the state becomes
    /// `Closed` and every wait ends with `Closed`. Hosts call it before releasing the object,
    /// since a pending call keeps the native socket alive.
    pub fn close(&self) {
        self.socket.close();
    }
}

impl NativeSocket {
    /// One reader's take: the claim lasts as long as the call.
    async fn take(
        &self,
        cancellation: Option<Arc<WaitCancellation>>,
    ) -> Result<Vec<steadyws::Event>, NativeError> {
        let _claim = self.reading.claim()?;
        let take = self.socket.next_events(batch_size(&self.socket));
        unless_cancelled(cancellation, take)
            .await
            .ok_or_else(NativeError::read_cancelled)
    }
}

impl Drop for NativeSocket {
    fn drop(&mut self) {
        LIVE_SOCKETS.fetch_sub(1, Ordering::Relaxed);
    }
}

impl From<steadyws::PendingMessage> for PendingMessage {
    fn from(message: steadyws::PendingMessage) -> Self {
        PendingMessage {
            id: message.id.0,
            json: match message.payload {
                Payload::Json(json) | Payload::Text(json) => json,
                Payload::Binary(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            },
            created_at_ms: message
                .sent_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

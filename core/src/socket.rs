//! The public Rust API: a [`Socket`] that stays connected, built from a [`SocketConfig`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

use crate::engine::{
    AppState, Config, ConfigError, Engine, Event, MessageId, NetworkStatus, Payload, State, Stats,
};
use crate::error::Error;
pub use crate::net::dial::HeadersProvider;
use crate::net::dial::{Proxy, TransportOptions};
use crate::net::entropy::OsRandom;
use crate::net::inbox::{Inbox, InboxLimits};
pub use crate::net::pump::Status;
use crate::net::pump::{Journal, Shared};
pub use crate::net::waiters::Delivery;
use crate::net::write_queue::Limits;
use crate::net::{runtime, tls};
pub use crate::store::StoreConfig;
use crate::store::durable::Durable;

/// How a [`Socket`] connects and behaves. [`SocketConfig::new`] gives defaults right for phones.
#[derive(Clone)]
pub struct SocketConfig {
    /// The reliability settings: URL, mode, timeouts, heartbeat, backoff, outbox, dedup, resume,
    /// background policy, close policy.
    pub engine: Config,
    /// Headers sent on every upgrade (values are never logged).
    pub headers: Vec<(String, String)>,
    /// Called before every attempt; its headers override static ones of the same name.
    pub headers_provider: Option<Arc<dyn HeadersProvider>>,
    /// `Sec-WebSocket-Protocol` values to offer.
    pub subprotocols: Vec<String>,
    /// Extra trusted root certificates, PEM (for private CAs and test servers).
    pub extra_root_certs_pem: Vec<String>,
    /// Accept only servers whose key matches one of these SHA-256 SPKI digests (hex).
    pub pinned_spki_sha256: Vec<String>,
    /// Tunnel through this HTTP CONNECT proxy, `http://host:port`.
    pub proxy: Option<String>,
    /// Largest inbound message (and frame); larger ones end the connection with
    /// [`ConnectionError::MessageTooLarge`](crate::engine::ConnectionError::MessageTooLarge).
    pub max_message_size: usize,
    /// Most events (messages, acks, state changes…) waiting for the app to take them; at this
    /// many the socket stops reading from the network until the app has taken half of them
    /// (nothing is dropped). Acks arrive by reading too: an app that never reads its events stops hearing
    /// them, and its sends fail with `OutboxFull` once the outbox fills.
    pub inbox_max_events: usize,
    /// Most payload bytes of messages waiting for the app; the same pause applies.
    pub inbox_max_bytes: usize,
    /// Keep the outbox, the resume cursor, the dedup window and the client id in a file, so
    /// they survive the process: `send` returns once the message is durable, and a new socket
    /// on the same store resends what was pending and resumes after what the app took. Envelope
    /// mode only. See `docs/durability.md`.
    pub store: Option<StoreConfig>,
}

impl SocketConfig {
    /// Envelope mode, JSON heartbeat, 4 MiB inbound limit.
    pub fn new(url: impl Into<String>) -> Self {
        Self::with_engine(Config::new(url))
    }

    /// Raw mode: frames pass through unchanged (no ids, acks or resend).
    pub fn raw(url: impl Into<String>) -> Self {
        Self::with_engine(Config::raw(url))
    }

    /// Transport defaults around an engine configuration.
    pub fn with_engine(engine: Config) -> Self {
        SocketConfig {
            engine,
            headers: Vec::new(),
            headers_provider: None,
            subprotocols: Vec::new(),
            extra_root_certs_pem: Vec::new(),
            pinned_spki_sha256: Vec::new(),
            proxy: None,
            max_message_size: 4 * 1024 * 1024,
            inbox_max_events: 10_000,
            inbox_max_bytes: 8 * 1024 * 1024,
            store: None,
        }
    }
}

impl std::fmt::Debug for SocketConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketConfig")
            .field("engine", &self.engine)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .field("headers_provider", &self.headers_provider.is_some())
            .field("subprotocols", &self.subprotocols)
            .field("extra_root_certs_pem", &self.extra_root_certs_pem.len())
            .field("pinned_spki_sha256", &self.pinned_spki_sha256)
            .field("proxy", &self.proxy)
            .field("max_message_size", &self.max_message_size)
            .field("inbox_max_events", &self.inbox_max_events)
            .field("inbox_max_bytes", &self.inbox_max_bytes)
            .field("store", &self.store)
            .finish()
    }
}

/// A WebSocket that stays connected: it reconnects, resends what the server has not
/// acknowledged, drops duplicates, resumes where it left off, and reports everything as events.
///
/// Methods never wait for the network and need no async runtime (with a store, `send`,
/// `cancel` and taking events wait for the disk, tens of microseconds); events are read with
/// [`Socket::next_event`] from any executor, by one reader at a time (with two, each event
/// goes to one of them). Events wait for the reader, however late it starts: none is dropped.
/// Their queue is bounded ([`SocketConfig::inbox_max_events`]); when it is full the socket
/// stops reading from the network, so the server is pushed back instead of the app's memory
/// growing. Taking a message counts it: [`Stats::cursor`] and `messages_in` count what was
/// taken (with a store, taking the next batch commits it to disk). Waiting for an ack or for the connection ([`Socket::send_and_wait`],
/// [`Socket::wait_acked`], [`Socket::wait_open`]) happens on the side and takes no event.
/// Dropping the socket closes its connection.
///
/// ```
/// use steadyws::{Event, Socket, SocketConfig};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A reference server on 127.0.0.1 stands in for yours.
/// let server = steadyws_server::start(Default::default()).await?;
/// let socket = Socket::new(SocketConfig::new(server.url()))?;
/// // Queued even while offline; sent (and resent after reconnects) until the server acks it.
/// let id = socket.send(r#"{"text":"hello"}"#)?;
/// socket.connect();
/// while let Some(event) = socket.next_event().await {
///     match event {
///         Event::Acked(acked) if acked == id => break, // stored by the server
///         Event::Message(message) => println!("received {:?}", message.data),
///         Event::StateChanged { state, .. } => println!("now {state}"),
///         other => println!("{other:?}"),
///     }
/// }
/// assert_eq!(socket.stats().messages_acked, 1);
/// # Ok(()) }
/// ```
pub struct Socket {
    shared: Arc<Shared>,
    /// The durable store, if the socket has one.
    durable: Option<Arc<Durable>>,
}

/// A message still waiting for its acknowledgement, as [`Socket::pending`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingMessage {
    /// Its id, as `send` returned it.
    pub id: MessageId,
    /// Its content, as given to `send`.
    pub payload: Payload,
    /// When it was sent (wall clock; from an earlier run for restored messages).
    pub sent_at: SystemTime,
}

/// How waiting for the connection to open ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opening {
    /// The socket is open.
    Open,
    /// The socket gave up (state `Failed`, which says why).
    Failed(State),
    /// The socket was closed.
    Closed,
    /// Not open within the wait.
    TimedOut,
}

impl Socket {
    /// Validate `config`, open its store if it has one, and start the socket's task (idle until
    /// [`Socket::connect`]). With a store, messages pending from an earlier run are queued
    /// again, first, and those whose time-to-live ran out meanwhile are reported as expired.
    pub fn new(config: SocketConfig) -> Result<Socket, Error> {
        let options = Arc::new(transport_options(&config)?);
        if config.inbox_max_events == 0 || config.inbox_max_bytes == 0 {
            return Err(Error::Config(ConfigError::Invalid {
                field: "inbox",
                problem: "inbox_max_events and inbox_max_bytes must be at least 1".into(),
            }));
        }
        let inbox = Inbox::new(InboxLimits {
            events: config.inbox_max_events,
            bytes: config.inbox_max_bytes,
        });
        let mut engine_config = config.engine;
        let opened = match &config.store {
            Some(store) => {
                Durable::check(store, &engine_config)?;
                Some(Durable::open(store, &mut engine_config)?)
            }
            None => None,
        };
        let engine = Engine::new(engine_config, Box::new(OsRandom::new()))?;
        let Some((durable, mut restore)) = opened else {
            let shared = Shared::start(engine, options, runtime::handle(), inbox, None);
            return Ok(Socket {
                shared,
                durable: None,
            });
        };
        if let Some(event) = restore.recovered.take() {
            inbox.push(event);
        }
        let journal: Arc<dyn Journal> = durable.clone();
        let shared = Shared::start(engine, options, runtime::handle(), inbox, Some(journal));
        let stored_client_id = restore.client_id().map(str::to_owned);
        shared.with_engine(|engine, now| durable.restore(restore, engine, now));
        let ours = shared.inspect(|engine| engine.client_id().map(str::to_owned));
        if let Err(error) = durable.keep_client_id(stored_client_id.as_deref(), ours) {
            shared.stop();
            durable.close();
            return Err(error.into());
        }
        Ok(Socket {
            shared,
            durable: Some(durable),
        })
    }

    /// Start connecting (and keep reconnecting). Does nothing if already connecting or open,
    /// or once closed.
    pub fn connect(&self) {
        if !self.shared.is_stopped() {
            self.shared.with_engine(|engine, now| engine.connect(now));
        }
    }

    /// Close gracefully and stop reconnecting; queued messages wait for the next `connect`.
    pub fn disconnect(&self) {
        if !self.shared.is_stopped() {
            self.shared
                .with_engine(|engine, now| engine.disconnect(now));
        }
    }

    /// Send a JSON message (envelope mode). Returns its id at once; [`Event::Acked`] follows
    /// when the server stored it.
    pub fn send(&self, json: &str) -> Result<MessageId, Error> {
        self.queue(Payload::Json(json.to_owned()), None)
    }

    /// Send a JSON message and wait until it settles or `timeout` passes (`None`: until it
    /// settles or the socket is closed). With a `ttl`, the message gives up after it, as with
    /// [`Socket::send_with_ttl`]. The app's event stream still gets its `Acked` or
    /// `SendFailed`. A timeout ends the wait, not the message: it stays queued.
    pub async fn send_and_wait(
        &self,
        json: &str,
        ttl: Option<Duration>,
        timeout: Option<Duration>,
    ) -> Result<(MessageId, Delivery), Error> {
        if self.shared.is_stopped() {
            return Err(Error::Closed);
        }
        let queued = self
            .shared
            .send(Payload::Json(json.to_owned()), ttl, true)?;
        // Waiting for everything written so far also covers the removal of any message the
        // send evicted (`DropOldest`): the app was told of it and may send it again.
        if let Some(durable) = &self.durable
            && let Err(error) = durable.written_async().await
        {
            self.shared.withdraw(&queued.id);
            return Err(Error::NotStored(error));
        }
        let outcome = queued.outcome.expect("asked to watch");
        let settled = self.shared.on_runtime(settle_within(outcome, timeout));
        Ok((queued.id, settled.await.unwrap_or(Delivery::Closed)))
    }

    /// Wait until the message `id` (from [`Socket::send`]) settles or `timeout` passes. Answers
    /// at once when its outcome is known already ([`Delivery::Unknown`] when it is neither
    /// queued nor among the recently settled).
    pub async fn wait_acked(&self, id: &MessageId, timeout: Option<Duration>) -> Delivery {
        let outcome = self.shared.watch_delivery(id);
        self.shared
            .on_runtime(settle_within(outcome, timeout))
            .await
            .unwrap_or(Delivery::Closed)
    }

    /// Wait until the socket is open, has given up, or is closed, or `timeout` passes.
    pub async fn wait_open(&self, timeout: Option<Duration>) -> Opening {
        let mut status = self.shared.status();
        let shared = Arc::clone(&self.shared);
        let reached = async move {
            loop {
                if shared.is_stopped() {
                    return Opening::Closed;
                }
                let state = status.borrow_and_update().state.clone();
                match state {
                    State::Open => return Opening::Open,
                    State::Failed { .. } => return Opening::Failed(state),
                    State::Closed => return Opening::Closed,
                    _ => {}
                }
                if status.changed().await.is_err() {
                    return Opening::Closed;
                }
            }
        };
        let waited = async move {
            match timeout {
                Some(limit) => tokio::time::timeout(limit, reached)
                    .await
                    .unwrap_or(Opening::TimedOut),
                None => reached.await,
            }
        };
        self.shared
            .on_runtime(waited)
            .await
            .unwrap_or(Opening::Closed)
    }

    /// [`Socket::send`] that gives up (reporting `SendFailed { Expired }`) after `ttl`.
    pub fn send_with_ttl(&self, json: &str, ttl: Duration) -> Result<MessageId, Error> {
        self.queue(Payload::Json(json.to_owned()), Some(ttl))
    }

    /// Send a text frame unchanged (raw mode).
    pub fn send_text(&self, text: &str) -> Result<MessageId, Error> {
        self.queue(Payload::Text(text.to_owned()), None)
    }

    /// Send a binary frame unchanged (raw mode).
    pub fn send_binary(&self, bytes: &[u8]) -> Result<MessageId, Error> {
        self.queue(Payload::Binary(bytes.to_vec()), None)
    }

    /// Queue a message and, with a store, return once it is durable.
    fn queue(&self, payload: Payload, ttl: Option<Duration>) -> Result<MessageId, Error> {
        if self.shared.is_stopped() {
            return Err(Error::Closed);
        }
        let queued = self.shared.send(payload, ttl, false)?;
        if let Some(durable) = &self.durable
            && let Err(error) = durable.written()
        {
            self.shared.withdraw(&queued.id);
            return Err(Error::NotStored(error));
        }
        Ok(queued.id)
    }

    /// The messages still waiting for the server's acknowledgement, oldest first: after a
    /// restart with a store, those an earlier run sent too (for a "sending…" list).
    pub fn pending(&self) -> Vec<PendingMessage> {
        let (now, pending) = self
            .shared
            .inspect(|engine| (self.shared.now(), engine.pending()));
        let wall = SystemTime::now();
        pending
            .into_iter()
            .map(|message| PendingMessage {
                id: message.id,
                payload: message.payload,
                sent_at: wall
                    .checked_sub(now.saturating_since(message.created_at))
                    .unwrap_or(SystemTime::UNIX_EPOCH),
            })
            .collect()
    }

    /// Stop sending the message `id`: `Ok(true)` if it was pending (it is reported as
    /// `SendFailed` with [`SendFailure::Cancelled`](crate::SendFailure::Cancelled), and with a
    /// store it is gone from the file when this returns), `Ok(false)` if it was not (already
    /// acknowledged, failed, or unknown). A copy written before may still reach the server.
    ///
    /// Fails, cancelling nothing, if the socket was closed. If the store cannot
    /// write the removal, the message is cancelled here but comes back after a restart.
    pub fn cancel(&self, id: &MessageId) -> Result<bool, Error> {
        if self.shared.is_stopped() {
            return Err(Error::Closed);
        }
        let cancelled = self.shared.with_engine(|engine, _| engine.cancel(id));
        if let (true, Some(durable)) = (cancelled, &self.durable) {
            durable.written()?;
        }
        Ok(cancelled)
    }

    /// Tell the socket the app went to the foreground or background. In the background the
    /// store (if any) is closed between writes, so the app holds no file lock while the OS may
    /// suspend it; it stays open again from the foreground on.
    pub fn set_app_state(&self, app: AppState) {
        self.shared
            .with_engine(|engine, now| engine.set_app_state(now, app));
        if let Some(durable) = &self.durable {
            durable.set_app_state(app);
        }
    }

    /// Tell the socket what the OS reports about the network.
    pub fn set_network(&self, network: NetworkStatus) {
        self.shared
            .with_engine(|engine, now| engine.set_network(now, network));
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.shared.inspect(|engine| engine.state().clone())
    }

    /// The identity this socket gives the server with every attempt (envelope mode), which the
    /// server scopes its dedup of message ids to. Keep it to reuse it after a restart.
    pub fn client_id(&self) -> Option<String> {
        self.shared
            .inspect(|engine| engine.client_id().map(str::to_owned))
    }

    /// Counters: attempts, reconnects, RTT, messages in and out, outbox size, …
    pub fn stats(&self) -> Stats {
        self.shared.inspect(Engine::stats)
    }

    /// Follow the state and the outbox length from the side, for adapters that act on them (a
    /// background task held until the outbox is acknowledged, a connection indicator). Takes
    /// nothing from the event stream; any number of watches may run.
    pub fn watch(&self) -> StatusWatch {
        StatusWatch {
            status: self.shared.status(),
            first: true,
            ended: false,
        }
    }

    /// Close the connection, stop reconnecting and end the event stream, for good: the state
    /// becomes `Closed`, every wait on the side ends with `Closed`, and [`Socket::next_event`]
    /// returns `None` once the remaining events are read (with a store, messages among them are
    /// left to the server for the next socket on the store). Dropping the socket does the same.
    ///
    /// With a store, the messages the app took are committed, and the file is closed.
    pub fn close(&self) {
        self.shared.with_engine(|engine, now| engine.close(now));
        self.shared.stop();
        if let Some(durable) = &self.durable {
            durable.close();
            // Taking them now could not be recorded, so they would come back unflagged after
            // a crash: they stay on the server for the next socket on this store instead.
            self.shared.inbox.discard_messages();
        }
    }

    /// The next event, in order; `None` once the socket is closed and its events are read.
    pub async fn next_event(&self) -> Option<Event> {
        self.next_events(1).await.pop()
    }

    /// Up to `max` events in order: waits for the first, then takes what is already queued.
    /// Empty once the socket is closed and its events are read. One call per burst instead
    /// of one per event, which matters to hosts where each call is expensive.
    ///
    /// With a store, taking a batch commits the one taken before it (the app asks for more once
    /// it has dealt with it), durably, before this returns. After a crash, only the batch in
    /// hand can come again, flagged [`InboundMessage::redelivered`](crate::InboundMessage).
    ///
    /// Cancel-safe: a call dropped while its batch was being recorded leaves the batch to the
    /// next call, so nothing taken is lost.
    pub async fn next_events(&self, max: usize) -> Vec<Event> {
        if let Some(batch) = self.durable.as_ref().and_then(|d| d.interrupted()) {
            return batch;
        }
        let mut batch = self.shared.next_events(max.max(1)).await;
        self.shared.commit(&batch);
        match self.durable.as_ref().and_then(|d| d.take(&mut batch)) {
            Some(record) => record.recorded(batch).await,
            None => batch,
        }
    }

    /// Up to `max` events that are ready now, without waiting.
    pub fn try_next_events(&self, max: usize) -> Vec<Event> {
        if let Some(batch) = self.durable.as_ref().and_then(|d| d.interrupted()) {
            return batch;
        }
        let mut batch = self.shared.inbox.take(max);
        self.shared.commit(&batch);
        match self.durable.as_ref().and_then(|d| d.take(&mut batch)) {
            Some(record) => record.recorded_now(batch),
            None => batch,
        }
    }

    /// Whether the socket keeps a durable store.
    pub fn is_durable(&self) -> bool {
        self.durable.is_some()
    }

    /// The next event if one is ready now.
    pub fn try_next_event(&self) -> Option<Event> {
        self.try_next_events(1).pop()
    }
}

async fn settle_within(
    outcome: tokio::sync::oneshot::Receiver<Delivery>,
    timeout: Option<Duration>,
) -> Delivery {
    let settled = async { outcome.await.unwrap_or(Delivery::Closed) };
    match timeout {
        Some(limit) => tokio::time::timeout(limit, settled)
            .await
            .unwrap_or(Delivery::TimedOut),
        None => settled.await,
    }
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("state", &self.state())
            .field("client_id", &self.client_id())
            .field("durable", &self.durable.is_some())
            .finish()
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.close();
    }
}

/// The state and outbox length of a socket, followed from the side: [`Socket::watch`].
#[derive(Debug)]
pub struct StatusWatch {
    status: tokio::sync::watch::Receiver<Status>,
    first: bool,
    /// `Closed` was seen: nothing follows.
    ended: bool,
}

impl StatusWatch {
    /// The status now on the first call, then each change. A watcher that falls behind sees
    /// the latest status, not every step in between. `None` once `Closed` was seen, or once
    /// the socket is dropped. Works from any executor.
    pub async fn changed(&mut self) -> Option<Status> {
        if self.ended {
            return None;
        }
        if !std::mem::take(&mut self.first) {
            self.status.changed().await.ok()?;
        }
        let status = self.status.borrow_and_update().clone();
        self.ended = status.state == State::Closed;
        Some(status)
    }
}

fn transport_options(config: &SocketConfig) -> Result<TransportOptions, ConfigError> {
    let invalid = |field, problem: String| ConfigError::Invalid { field, problem };
    let headers = config
        .headers
        .iter()
        .map(|(name, value)| {
            let header_name = HeaderName::try_from(name.as_str()).map_err(|_| {
                invalid(
                    "headers",
                    format!("{name:?} is not a valid HTTP header name"),
                )
            })?;
            let header_value = HeaderValue::try_from(value.as_str()).map_err(|_| {
                invalid(
                    "headers",
                    format!("the value of {name:?} is not a valid HTTP header value"),
                )
            })?;
            Ok((header_name, header_value))
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    let proxy = config.proxy.as_deref().map(parse_proxy).transpose()?;
    let outbox = &config.engine.outbox;
    if config.max_message_size == 0 {
        return Err(invalid(
            "max_message_size",
            "must be at least 1 byte".into(),
        ));
    }
    Ok(TransportOptions {
        headers,
        subprotocols: config.subprotocols.clone(),
        headers_provider: config.headers_provider.clone(),
        tls: tls::client_config(&config.extra_root_certs_pem, &config.pinned_spki_sha256)?,
        proxy,
        max_message_size: config.max_message_size,
        max_outbound_frame: outbox.max_message_bytes.min(outbox.max_bytes),
        // Everything the outbox holds may be written at once after a reconnect, besides pings
        // and probes; more than that waiting means the peer is not reading.
        write_queue: Limits {
            frames: outbox.max_messages.saturating_add(64),
            bytes: outbox.max_bytes.saturating_add(64 * 1024),
        },
    })
}

fn parse_proxy(proxy: &str) -> Result<Proxy, ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid {
        field: "proxy",
        problem,
    };
    let url = url::Url::parse(proxy).map_err(|e| {
        invalid(format!(
            "{proxy:?} is not a URL ({e}); write it as http://host:port"
        ))
    })?;
    if url.scheme() != "http" {
        return Err(invalid(format!(
            "{proxy:?}: only HTTP CONNECT proxies (http://host:port) are supported"
        )));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid(format!("{proxy:?} has no host")))?;
    Ok(Proxy {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port: url.port_or_known_default().unwrap_or(80),
    })
}

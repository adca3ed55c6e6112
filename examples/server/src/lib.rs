//! The steadyws reference server: the server side of the envelope protocol (`docs/protocol.md`).
//!
//! It acks client messages only after storing them, dedups resends by id within each sender's
//! scope (refusing an id that belongs to another message), sequences everything into one stream,
//! replays what a reconnecting client missed (from `last_seq` or `last_ts`), fans out to every
//! connected client, answers pings, and serves a raw echo endpoint. Embedded in a test or demo it
//! keeps its history in memory; with a data directory it persists history, seq counter and acked
//! ids in SQLite, committed before each ack. Every resource a client can hold is bounded: the
//! handshakes in flight and their duration, the sessions, each session's buffers and write
//! stalls, its silence, and the history's count, age and bytes.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = steadyws_server::start(steadyws_server::ServerConfig::default()).await?;
//! println!("clients connect to {}", server.url());
//! server.publish(r#"{"text":"hello"}"#).expect("portable JSON, small enough");
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod cli;
pub mod connection;
mod handshakes;
pub mod hub;
pub mod protocol;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub use hub::{Hub, Published, Retention, StreamMessage};
pub use store::{SqliteStore, StoreError};

/// Why [`RunningServer::publish`] refused a message. A refused message is not stored, so no
/// session ever sees it.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The data is not JSON, or breaks the portable-JSON rule client messages are held to
    /// ([`protocol::check_portable`]: nesting deeper than [`protocol::MAX_DEPTH`], numbers no
    /// 64-bit float can hold). Sessions put `data` into the `msg` frame as it is, so every client
    /// would receive a frame it skips as malformed or reads changed, on every replay.
    #[error(
        "the published data {reason}, so clients could not read it (docs/protocol.md §9.2); publish JSON text nested at most {max_depth} levels deep, with numbers a 64-bit float can hold",
        max_depth = protocol::MAX_DEPTH
    )]
    NotPortable {
        /// What breaks the rule, e.g. "is nested deeper than 64 levels".
        reason: String,
    },
    /// The `msg` frame would be larger than `ServerConfig::max_message_size`. Sessions do not
    /// check what they write: stored, such a message would end every session that forwards
    /// or replays it (clients refuse it as too large, or the write buffer overflows), again after
    /// each reconnect, until it leaves the replay window.
    #[error(
        "the published message is {size} bytes framed, over the server's max_message_size of {limit}; raise --max-message-size (ServerConfig::max_message_size) and the clients' limit, or split the message"
    )]
    TooLarge {
        /// The `msg` frame's size in bytes, counted with the widest id, seq and ts.
        size: usize,
        /// `ServerConfig::max_message_size`.
        limit: usize,
    },
    /// The store failed to commit the message.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How to run the server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to bind; loopback by default.
    pub listen: SocketAddr,
    /// PEM certificate chain and private key, for wss.
    pub tls: Option<TlsFiles>,
    /// Persist the stream here (SQLite); in memory when `None`.
    pub data_dir: Option<PathBuf>,
    /// Replay window and dedup memory.
    pub retention: Retention,
    /// Largest inbound message (and frame) accepted; larger ones close the connection with 1009.
    /// Also the largest `msg` frame [`RunningServer::publish`] accepts, since clients hold what
    /// they receive to the same kind of limit.
    pub max_message_size: usize,
    /// Send `{"type":"ping"}` at this interval (server-driven heartbeat).
    pub ping_interval: Option<Duration>,
    /// Require `Authorization: Bearer <token>` on the upgrade (401 otherwise).
    pub require_token: Option<String>,
    /// Refuse (403) upgrades whose `Origin` header is present and not one of these; empty: no
    /// check.
    pub allowed_origins: Vec<String>,
    /// A connection must finish its TLS handshake and WebSocket upgrade within this time.
    pub handshake_timeout: Duration,
    /// Most connections in their handshake at once; a new one evicts the oldest beyond it.
    pub max_handshakes: usize,
    /// Most open sessions; further upgrades are answered 503 with `Retry-After`.
    pub max_connections: usize,
    /// A session that hears nothing from its client for this long is closed (pinged at half).
    pub idle_timeout: Duration,
    /// A client that reads nothing of what it is sent for this long is dropped (close 4008).
    pub send_timeout: Duration,
    /// Push each new message to every session (the chat-room stream). Off, client messages are
    /// still sequenced, stored and acked, and replayed on request, but nothing is pushed live:
    /// for load tests of many clients, where fan-out to all would measure the server instead.
    pub fanout: bool,
    /// Send the `hello` frame at session start. Off only to test clients against minimal
    /// servers that send none; acks, `seq`, replay and dedup are unchanged.
    pub hello: bool,
}

/// Paths of the PEM files for TLS.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: None,
            data_dir: None,
            retention: Retention::default(),
            max_message_size: 4 * 1024 * 1024,
            ping_interval: None,
            require_token: None,
            allowed_origins: Vec::new(),
            handshake_timeout: Duration::from_secs(10),
            max_handshakes: 256,
            max_connections: 1000,
            idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(30),
            fanout: true,
            hello: true,
        }
    }
}

/// State every connection shares.
pub struct Shared {
    config: ServerConfig,
    hub: Arc<Hub>,
    connections: AtomicUsize,
    handshakes: handshakes::Handshakes,
    overloaded_until: Mutex<Option<(Instant, Duration)>>,
    /// Frames to push to every envelope session as they are, outside the stream (fault tests).
    injected: tokio::sync::broadcast::Sender<Injected>,
}

/// A frame a test makes the server send as-is, bypassing the stream (never stored or replayed):
/// for checking that clients survive bad input.
#[derive(Clone, Debug)]
pub enum Injected {
    /// A text frame with any content (malformed JSON, unknown types, huge payloads).
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A text frame whose payload is not valid UTF-8, which RFC 6455 forbids.
    InvalidUtf8Text(Vec<u8>),
}

impl Shared {
    fn ws_config(&self) -> WebSocketConfig {
        // 8 KiB chunks instead of tungstenite's 128 KiB keep an idle session small. The write
        // buffer is unbounded unless capped, and a client flooding pings without reading would
        // pile pongs up in it: capped, it holds a chunk plus the largest message, and owes one
        // pong.
        const CHUNK: usize = 8 * 1024;
        let largest = self.config.max_message_size;
        WebSocketConfig::default()
            .read_buffer_size(CHUNK)
            .write_buffer_size(CHUNK)
            .max_write_buffer_size((CHUNK + 64 * 1024).saturating_add(largest))
            .max_message_size(Some(largest))
            .max_frame_size(Some(largest))
    }

    /// The `Retry-After` to answer with while overloaded.
    fn overloaded_retry_after(&self) -> Option<Duration> {
        let guard = self
            .overloaded_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        guard.and_then(|(until, retry_after)| (Instant::now() < until).then_some(retry_after))
    }
}

/// A running server; dropping it does not stop it, [`RunningServer::shutdown`] does.
pub struct RunningServer {
    addr: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    accept_loop: JoinHandle<()>,
}

/// Bind and start serving. Must be called inside a tokio runtime.
pub async fn start(config: ServerConfig) -> std::io::Result<RunningServer> {
    let store = match &config.data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            Some(SqliteStore::open(dir).map_err(std::io::Error::other)?)
        }
        None => None,
    };
    let hub = Arc::new(Hub::new(store, config.retention.clone()).map_err(std::io::Error::other)?);
    let acceptor = match &config.tls {
        Some(files) => Some(tls_acceptor(files)?),
        None => None,
    };
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        config,
        hub,
        connections: AtomicUsize::new(0),
        handshakes: handshakes::Handshakes::default(),
        overloaded_until: Mutex::new(None),
        injected: tokio::sync::broadcast::channel(64).0,
    });
    let (shutdown, shutdown_rx) = watch::channel(false);
    let tls = acceptor.is_some();
    let accept_loop = tokio::spawn(accept_loop(
        listener,
        acceptor,
        Arc::clone(&shared),
        shutdown_rx,
    ));
    log::info!("listening on {}://{addr}", if tls { "wss" } else { "ws" });
    Ok(RunningServer {
        addr,
        tls,
        shared,
        shutdown,
        accept_loop,
    })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    log::warn!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let ticket = shared.handshakes.admit(shared.config.max_handshakes);
        tokio::spawn(connect(
            tcp,
            peer,
            acceptor.clone(),
            ticket,
            Arc::clone(&shared),
            shutdown.clone(),
        ));
    }
}

/// A byte stream a session runs over: plain TCP or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One accepted connection: TLS and the upgrade within the handshake timeout (or until a newer
/// connection evicts it), then the session.
async fn connect(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    mut ticket: handshakes::Ticket,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let handshake = async {
        let stream: Box<dyn Io> = match acceptor {
            Some(acceptor) => match acceptor.accept(tcp).await {
                Ok(tls) => Box::new(tls),
                Err(err) => {
                    log::debug!("TLS handshake with {peer} failed: {err}");
                    return None;
                }
            },
            None => Box::new(tcp),
        };
        connection::upgrade(stream, &shared).await
    };
    let limit = shared.config.handshake_timeout;
    let upgraded = tokio::select! {
        upgraded = tokio::time::timeout(limit, handshake) => upgraded.unwrap_or_else(|_| {
            log::debug!("{peer} did not finish its handshake within {limit:?}");
            None
        }),
        () = ticket.evicted() => {
            log::debug!("{peer}'s handshake evicted by newer connections");
            None
        }
    };
    if !shared.handshakes.finish(ticket) {
        return;
    }
    if let Some((ws, route)) = upgraded {
        connection::serve(ws, route, Arc::clone(&shared), shutdown).await;
    }
}

fn tls_acceptor(files: &TlsFiles) -> std::io::Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let invalid = |what: &str, err: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what}: {err}"))
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(&format!("certificate {}", files.cert.display()), &e))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| invalid(&format!("private key {}", files.key.display()), &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("TLS versions", &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid("certificate and key", &e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl RunningServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The envelope endpoint, e.g. `ws://127.0.0.1:41234/ws`.
    pub fn url(&self) -> String {
        format!("{}://{}/ws", if self.tls { "wss" } else { "ws" }, self.addr)
    }

    /// The raw echo endpoint.
    pub fn raw_url(&self) -> String {
        format!(
            "{}://{}/raw",
            if self.tls { "wss" } else { "ws" },
            self.addr
        )
    }

    /// Publish a server message (JSON text) to the stream; returns its seq. Refuses, storing
    /// nothing, what no session could forward: data that is not portable JSON (the rule client
    /// messages are held to, protocol §9.2), and a message whose `msg` frame would be larger
    /// than `max_message_size`. Stored, such a message would fail every session that forwards
    /// it, again after each reconnect ([`PublishError`] says how).
    pub fn publish(&self, data: &str) -> Result<u64, PublishError> {
        protocol::check_portable(data).map_err(|reason| PublishError::NotPortable { reason })?;
        // The frame as sessions will write it, with the widest id, seq and ts it can carry.
        let size = protocol::msg(&format!("srv-{}", u64::MAX), u64::MAX, u64::MAX, data).len();
        let limit = self.shared.config.max_message_size;
        if size > limit {
            return Err(PublishError::TooLarge { size, limit });
        }
        Ok(self.shared.hub.publish_server(data, connection::now_ms())?)
    }

    /// The stream, for inspection.
    pub fn hub(&self) -> &Hub {
        &self.shared.hub
    }

    /// Open WebSocket sessions.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Connections still in their TLS handshake or WebSocket upgrade.
    pub fn handshakes_in_flight(&self) -> usize {
        self.shared.handshakes.len()
    }

    /// Answer upgrades with 503 and `Retry-After: retry_after` for the next `duration`.
    pub fn set_overloaded(&self, duration: Duration, retry_after: Duration) {
        let mut guard = self
            .shared
            .overloaded_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *guard = Some((Instant::now() + duration, retry_after));
    }

    /// Send `frame` on every open envelope session now (not stored, not replayed).
    pub fn inject(&self, frame: Injected) {
        let _ = self.shared.injected.send(frame);
    }

    /// Stop accepting, close every session with 1001, and wait for the accept loop to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.accept_loop.await;
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    use super::*;

    type Client = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    /// Every wait is bounded, so a broken session fails the test instead of hanging it.
    const WAIT: Duration = Duration::from_secs(5);

    async fn connect(url: String) -> Client {
        let connecting = tokio_tungstenite::connect_async(url);
        let (ws, _) = tokio::time::timeout(WAIT, connecting)
            .await
            .expect("the upgrade within 5 s")
            .expect("the upgrade");
        ws
    }

    /// The next text frame; other frames (pings) are skipped.
    async fn next_text(ws: &mut Client) -> String {
        loop {
            let next = tokio::time::timeout(WAIT, ws.next()).await;
            match next.expect("a frame within 5 s") {
                Some(Ok(Message::Text(text))) => return text.as_str().to_owned(),
                Some(Ok(_)) => {}
                other => panic!("session ended: {other:?}"),
            }
        }
    }

    async fn send_text(ws: &mut Client, frame: &str) {
        tokio::time::timeout(WAIT, ws.send(Message::text(frame)))
            .await
            .expect("sent within 5 s")
            .expect("sent");
    }

    /// The largest data whose framed `msg` fits `limit` (a JSON string of `x`s).
    fn largest_string_that_fits(limit: usize) -> String {
        let widest = protocol::msg(&format!("srv-{}", u64::MAX), u64::MAX, u64::MAX, "\"\"");
        format!("\"{}\"", "x".repeat(limit - widest.len()))
    }

    #[tokio::test]
    async fn publish_refuses_what_no_session_could_forward_and_stores_nothing() {
        let server = start(ServerConfig {
            max_message_size: 1024,
            ..ServerConfig::default()
        })
        .await
        .unwrap();
        let mut client = connect(server.url()).await;
        assert!(
            next_text(&mut client)
                .await
                .starts_with(r#"{"type":"hello""#)
        );

        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        for (data, reason) in [
            (deep.as_str(), "nested deeper than 64 levels"),
            (r#"{"n":1e400}"#, "no 64-bit float"),
            (&format!("[{}]", "9".repeat(400)), "no 64-bit float"),
            ("not json", "is not JSON"),
            (r#"{"a":1} trailing"#, "is not JSON"),
        ] {
            let refused = server.publish(data).unwrap_err();
            assert!(
                matches!(&refused, PublishError::NotPortable { reason: r } if r.contains(reason)),
                "{data}: {refused:?}"
            );
            assert!(refused.to_string().contains("nested at most 64 levels"));
        }

        let fits = largest_string_that_fits(1024);
        let over = format!("\"{}\"", "x".repeat(fits.len() - 1));
        let refused = server.publish(&over).unwrap_err();
        assert!(
            matches!(
                refused,
                PublishError::TooLarge {
                    size: 1025,
                    limit: 1024
                }
            ),
            "{refused:?}"
        );
        assert_eq!(
            refused.to_string(),
            "the published message is 1025 bytes framed, over the server's max_message_size of \
             1024; raise --max-message-size (ServerConfig::max_message_size) and the clients' \
             limit, or split the message"
        );
        assert_eq!(server.hub().head(), 0, "nothing refused was stored");

        // What passes is stored and reaches the connected client, and it is the first message
        // the client sees: nothing refused went out.
        assert_eq!(server.publish(r#"{"ok":true}"#).unwrap(), 1);
        assert_eq!(
            next_text(&mut client).await,
            protocol::msg(
                "srv-1",
                1,
                server.hub().since(0).messages[0].ts,
                r#"{"ok":true}"#
            )
        );
        assert_eq!(server.publish(&fits).unwrap(), 2, "exactly the limit fits");
        let forwarded = next_text(&mut client).await;
        assert!(
            forwarded.ends_with(&format!(r#""data":{fits}}}"#)),
            "{forwarded}"
        );
        server.shutdown().await;
    }

    /// Why publish checks the size: a stored frame the session's write buffer cannot take ends
    /// every session that replays it, without a close frame, on every reconnect.
    #[tokio::test]
    async fn an_oversized_frame_stored_past_publish_ends_each_session_replaying_it() {
        let server = start(ServerConfig {
            max_message_size: 1024,
            ..ServerConfig::default()
        })
        .await
        .unwrap();
        let data = format!("\"{}\"", "x".repeat(100 * 1024));
        server
            .hub()
            .publish_server(&data, connection::now_ms())
            .unwrap();
        for _ in 0..2 {
            let mut client = connect(format!("{}?last_seq=0", server.url())).await;
            assert!(
                next_text(&mut client)
                    .await
                    .starts_with(r#"{"type":"hello""#)
            );
            let ended = tokio::time::timeout(WAIT, client.next())
                .await
                .expect("the session ends within 5 s");
            assert!(
                matches!(ended, None | Some(Err(_))),
                "neither the message nor a close frame: {ended:?}"
            );
        }
        server.shutdown().await;
    }

    #[tokio::test]
    async fn without_hello_a_session_still_replays_acks_dedups_and_forwards() {
        let server = start(ServerConfig {
            hello: false,
            ..ServerConfig::default()
        })
        .await
        .unwrap();
        server.publish(r#"{"n":1}"#).unwrap();
        let mut ws = connect(format!("{}?client_id=c1&last_seq=0", server.url())).await;
        // The replay comes first: there is no hello before it.
        let first = next_text(&mut ws).await;
        assert!(
            first.starts_with(r#"{"type":"msg","id":"srv-1","seq":1"#),
            "{first}"
        );
        send_text(&mut ws, r#"{"type":"msg","id":"m1","data":{"n":2}}"#).await;
        let mut seen = vec![next_text(&mut ws).await, next_text(&mut ws).await];
        seen.sort();
        assert_eq!(seen[0], r#"{"type":"ack","id":"m1"}"#);
        assert!(seen[1].contains(r#""id":"m1","seq":2"#), "{seen:?}");
        // A resend is acked again and stored once.
        send_text(&mut ws, r#"{"type":"msg","id":"m1","data":{"n":2}}"#).await;
        assert_eq!(next_text(&mut ws).await, r#"{"type":"ack","id":"m1"}"#);
        assert_eq!(server.hub().head(), 2);
        // A client with no cursor hears nothing at all until it speaks.
        let mut quiet = connect(server.url()).await;
        let heard = tokio::time::timeout(Duration::from_millis(300), quiet.next()).await;
        assert!(heard.is_err(), "no frame expected: {heard:?}");
        send_text(&mut quiet, r#"{"type":"ping","ts":7}"#).await;
        assert_eq!(next_text(&mut quiet).await, r#"{"type":"pong","ts":7}"#);
        server.shutdown().await;
    }
}

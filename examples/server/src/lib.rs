//! The steadyws reference server: the server side of the envelope protocol (`docs/protocol.md`).
//!
//! It acks client messages only after storing them, dedups resends by id, sequences everything
//! into one stream, replays what a reconnecting client missed (from `last_seq` or `last_ts`), fans
//! out to every connected client, answers pings, and serves a raw echo endpoint. Embedded in a
//! test or demo it keeps its history in memory; with a data directory it persists history, seq
//! counter and acked ids in SQLite, committed before each ack.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = steadyws_server::start(steadyws_server::ServerConfig::default()).await?;
//! println!("clients connect to {}", server.url());
//! server.publish(r#"{"text":"hello"}"#).expect("in-memory store");
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod cli;
pub mod connection;
pub mod hub;
pub mod protocol;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub use hub::{Hub, Published, Retention, StreamMessage};
pub use store::{SqliteStore, StoreError};

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
    pub max_message_size: usize,
    /// Send `{"type":"ping"}` at this interval (server-driven heartbeat).
    pub ping_interval: Option<Duration>,
    /// Require `Authorization: Bearer <token>` on the upgrade (401 otherwise).
    pub require_token: Option<String>,
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
        }
    }
}

/// State every connection shares.
pub struct Shared {
    config: ServerConfig,
    hub: Arc<Hub>,
    connections: AtomicUsize,
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
        WebSocketConfig::default()
            .max_message_size(Some(self.config.max_message_size))
            .max_frame_size(Some(self.config.max_message_size))
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
        let shared = Arc::clone(&shared);
        let shutdown = shutdown.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(tls) => connection::serve(tls, shared, shutdown).await,
                    Err(err) => log::debug!("TLS handshake with {peer} failed: {err}"),
                },
                None => connection::serve(tcp, shared, shutdown).await,
            }
        });
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

    /// Publish a server message (JSON text) to the stream; returns its seq.
    pub fn publish(&self, data: &str) -> Result<u64, StoreError> {
        self.shared.hub.publish_server(data, connection::now_ms())
    }

    /// The stream, for inspection.
    pub fn hub(&self) -> &Hub {
        &self.shared.hub
    }

    /// Open WebSocket sessions.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
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

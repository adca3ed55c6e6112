//! Opening one transport: DNS, TCP (directly or through an HTTP CONNECT proxy), TLS, and the
//! WebSocket upgrade, with every failure mapped to a [`ConnectionError`] that says what to do.

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, error::ProtocolError};
use url::Url;

use super::tls;
use super::write_queue;
use crate::engine::ConnectionError;

/// A byte stream the WebSocket runs over: plain TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Supplies headers (typically a fresh auth token) before every connection attempt.
pub trait HeadersProvider: Send + Sync {
    /// Headers for the next attempt. `after_auth_failure` is true when the server refused the
    /// previous credentials (HTTP 401 or close 4401): fetch new ones rather than a cached copy.
    fn headers(&self, after_auth_failure: bool) -> Vec<(String, String)>;
}

/// An established WebSocket.
pub type Ws = WebSocketStream<Box<dyn Io>>;

/// An HTTP CONNECT proxy.
#[derive(Clone, Debug)]
pub struct Proxy {
    /// Host to dial.
    pub host: String,
    /// Port to dial.
    pub port: u16,
}

impl Proxy {
    fn name(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Everything about transports that is not the engine's business.
pub struct TransportOptions {
    /// Sent on every upgrade.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `Sec-WebSocket-Protocol` values offered.
    pub subprotocols: Vec<String>,
    /// Asked for fresh headers before every attempt.
    pub headers_provider: Option<Arc<dyn HeadersProvider>>,
    /// TLS settings for wss.
    pub tls: Arc<rustls::ClientConfig>,
    /// Tunnel through this proxy.
    pub proxy: Option<Proxy>,
    /// Inbound message and frame limit.
    pub max_message_size: usize,
    /// Largest outbound frame (the outbox's byte bound).
    pub max_outbound_frame: usize,
    /// Bounds of each transport's write queue.
    pub write_queue: write_queue::Limits,
}

/// tungstenite's read and write chunk size.
const BUFFER_SIZE: usize = 8 * 1024;

impl TransportOptions {
    fn ws_config(&self) -> WebSocketConfig {
        // tungstenite's 128 KiB read and write buffers cost a quarter megabyte per idle socket;
        // 8 KiB chunks keep an idle socket small, and messages still grow to the limit. Its write
        // buffer is unbounded unless capped: a peer flooding pings without reading would pile up
        // pongs in it. Capped, it holds one chunk plus our largest frame, and owes one pong.
        WebSocketConfig::default()
            .read_buffer_size(BUFFER_SIZE)
            .write_buffer_size(BUFFER_SIZE)
            .max_write_buffer_size(
                (BUFFER_SIZE + 64 * 1024).saturating_add(self.max_outbound_frame),
            )
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_message_size))
    }
}

/// Open a WebSocket to `url`. `refresh_credentials` tells the headers provider the last
/// credentials were refused.
pub async fn dial(
    url: &str,
    options: &TransportOptions,
    refresh_credentials: bool,
) -> Result<Ws, ConnectionError> {
    let url = Url::parse(url).map_err(|e| ConnectionError::Io {
        detail: format!("invalid URL: {e}"),
    })?;
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let tcp = match &options.proxy {
        Some(proxy) => {
            let proxy_error = |detail: String| ConnectionError::Proxy {
                proxy: proxy.name(),
                detail,
            };
            let tcp = tcp_connect(&proxy.host, proxy.port)
                .await
                .map_err(|e| proxy_error(e.to_string()))?;
            http_connect(tcp, &host, port).await.map_err(proxy_error)?
        }
        None => tcp_connect(&host, port).await?,
    };
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = if url.scheme() == "wss" {
        let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| {
            ConnectionError::Tls {
                detail: format!("{host:?} is not a valid TLS server name: {e}"),
            }
        })?;
        let tls = TlsConnector::from(Arc::clone(&options.tls))
            .connect(name, tcp)
            .await
            .map_err(tls_error)?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let request = upgrade_request(&url, options, refresh_credentials)?;
    let (ws, _response) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(options.ws_config()))
            .await
            .map_err(|e| upgrade_error(&e))?;
    Ok(ws)
}

fn upgrade_request(
    url: &Url,
    options: &TransportOptions,
    refresh_credentials: bool,
) -> Result<tungstenite::handshake::client::Request, ConnectionError> {
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| handshake_error(&e))?;
    let headers = request.headers_mut();
    for (name, value) in &options.headers {
        headers.insert(name.clone(), value.clone());
    }
    if let Some(provider) = &options.headers_provider {
        for (name, value) in provider.headers(refresh_credentials) {
            // Values are never logged: they are usually credentials.
            match (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value),
            ) {
                (Ok(name), Ok(value)) => {
                    headers.insert(name, value);
                }
                _ => log::warn!(
                    "headers provider returned an invalid header named {name:?}; skipped"
                ),
            }
        }
    }
    if !options.subprotocols.is_empty() {
        let offered = options.subprotocols.join(", ");
        if let Ok(value) = HeaderValue::try_from(offered) {
            headers.insert("sec-websocket-protocol", value);
        }
    }
    Ok(request)
}

async fn tcp_connect(host: &str, port: u16) -> Result<TcpStream, ConnectionError> {
    let addr = format!("{host}:{port}");
    let resolved: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| ConnectionError::Dns {
            host: host.to_owned(),
            detail: e.to_string(),
        })?
        .collect();
    if resolved.is_empty() {
        return Err(ConnectionError::Dns {
            host: host.to_owned(),
            detail: "no addresses".into(),
        });
    }
    let mut last = None;
    for candidate in resolved {
        match TcpStream::connect(candidate).await {
            Ok(stream) => return Ok(stream),
            Err(err) => last = Some(err),
        }
    }
    let err = last.expect("at least one address was tried");
    Err(match err.kind() {
        io::ErrorKind::ConnectionRefused => ConnectionError::Refused { addr },
        _ => ConnectionError::Io {
            detail: format!("cannot reach {addr}: {err}"),
        },
    })
}

/// Ask the proxy for a tunnel to `host:port` (RFC 9110 §9.3.6).
async fn http_connect(mut tcp: TcpStream, host: &str, port: u16) -> Result<TcpStream, String> {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let request = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nProxy-Connection: keep-alive\r\n\r\n"
    );
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(tcp);
    let mut status_line = String::new();
    let mut header_bytes = 0usize;
    reader
        .read_line(&mut status_line)
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        header_bytes += n;
        if n == 0 || header_bytes > 16 * 1024 {
            return Err("the proxy's answer to CONNECT ended early or was too long".into());
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
    }
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok());
    match status {
        Some(200..=299) if reader.buffer().is_empty() => Ok(reader.into_inner()),
        Some(200..=299) => Err("the proxy sent data before the tunnel was used".into()),
        Some(407) => Err(
            "the proxy requires authentication (407); proxy credentials are not supported yet"
                .into(),
        ),
        _ => Err(format!(
            "the proxy refused the tunnel: {}",
            status_line.trim()
        )),
    }
}

fn tls_error(err: io::Error) -> ConnectionError {
    match err.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls_error) => ConnectionError::Tls { detail: tls::describe(rustls_error) },
        None if err.kind() == io::ErrorKind::UnexpectedEof => {
            ConnectionError::Tls { detail: "the server closed the connection during the TLS handshake (is it serving plain ws:// on this port?)".into() }
        }
        None => ConnectionError::Io { detail: format!("during the TLS handshake: {err}") },
    }
}

/// Map a tungstenite error from the upgrade or an open connection.
pub fn handshake_error(err: &tungstenite::Error) -> ConnectionError {
    use tungstenite::Error as E;
    match err {
        E::Http(response) => ConnectionError::Handshake {
            status: response.status().as_u16(),
            retry_after: response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(std::time::Duration::from_secs),
        },
        E::Capacity(tungstenite::error::CapacityError::MessageTooLong { max_size, .. }) => {
            ConnectionError::MessageTooLarge { max: *max_size }
        }
        E::Protocol(ProtocolError::SecWebSocketSubProtocolError(_)) => ConnectionError::Io {
            detail: "the server accepted none of the offered subprotocols (SocketConfig::subprotocols); offer one it supports, or none".into(),
        },
        E::Protocol(ProtocolError::ResetWithoutClosingHandshake)
        | E::ConnectionClosed
        | E::AlreadyClosed => ConnectionError::abnormal(),
        E::Io(io) if is_abrupt(io) => ConnectionError::abnormal(),
        E::Io(io) => ConnectionError::Io {
            detail: io.to_string(),
        },
        other => ConnectionError::Io {
            detail: other.to_string(),
        },
    }
}

/// A failed upgrade. A connection cut before the server answered is no closed WebSocket (there
/// was none yet), so it is not reported as a 1006 close.
fn upgrade_error(err: &tungstenite::Error) -> ConnectionError {
    match handshake_error(err) {
        ConnectionError::Closed { code: 1006, .. } => ConnectionError::Io {
            detail: "the connection was cut during the WebSocket handshake, before the server answered the upgrade: the server crashed or refused it, or a proxy or firewall cut it".into(),
        },
        other => other,
    }
}

fn is_abrupt(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

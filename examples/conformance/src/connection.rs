//! One WebSocket connection of the kit to the server under test: it opens with a client id and a
//! resume cursor, writes frames, and records every frame it receives so that checks can judge
//! the order afterwards and quote them as evidence. Every wait is bounded.

use std::time::Duration;

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use url::Url;

/// A byte stream to the server: plain TCP, or TLS over it.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where a connection resumes from, as the client's query parameters say it (§2).
#[derive(Clone, Copy, Debug, Default)]
pub enum Cursor {
    /// No cursor: a fresh client.
    #[default]
    None,
    /// `last_seq=N` (and no `last_ts`).
    Seq(u64),
    /// `last_ts=N` alone.
    Ts(u64),
}

/// A frame the server sent, in arrival order.
#[derive(Clone, Debug)]
pub enum Seen {
    /// A text frame, with its JSON when it parses.
    Text(String, Option<Value>),
    /// A binary frame of this many bytes.
    Binary(usize),
    /// A WebSocket pong with its payload.
    Pong(Vec<u8>),
    /// A WebSocket ping.
    Ping,
    /// A close frame (code, reason), or the connection's end without one (`None`, and why).
    Closed(Option<u16>, String),
}

impl Seen {
    /// The frame's envelope, if it is a JSON object.
    pub fn envelope(&self) -> Option<&Value> {
        match self {
            Seen::Text(_, Some(value)) if value.is_object() => Some(value),
            _ => None,
        }
    }

    /// The envelope's `type`.
    pub fn kind(&self) -> Option<&str> {
        self.envelope()?.get("type")?.as_str()
    }

    /// A stream `msg` with this `id`.
    pub fn is_msg(&self, id: &str) -> bool {
        self.kind() == Some("msg") && self.field_str("id") == Some(id)
    }

    /// An `ack` for `id`.
    pub fn is_ack(&self, id: &str) -> bool {
        self.kind() == Some("ack") && self.field_str("id") == Some(id)
    }

    /// An `error` frame naming `id`.
    pub fn is_error_for(&self, id: &str) -> bool {
        self.kind() == Some("error") && self.field_str("id") == Some(id)
    }

    /// A string field of the envelope.
    pub fn field_str(&self, field: &str) -> Option<&str> {
        self.envelope()?.get(field)?.as_str()
    }

    /// An integer field of the envelope.
    pub fn field_u64(&self, field: &str) -> Option<u64> {
        self.envelope()?.get(field)?.as_u64()
    }

    /// The frame as evidence: short enough to read in a table.
    pub fn brief(&self) -> String {
        const MAX: usize = 160;
        let text = match self {
            Seen::Text(text, _) => text.clone(),
            Seen::Binary(len) => format!("<binary frame, {len} bytes>"),
            Seen::Pong(payload) => {
                format!("<WebSocket pong {:?}>", String::from_utf8_lossy(payload))
            }
            Seen::Ping => "<WebSocket ping>".into(),
            Seen::Closed(Some(code), reason) => format!("<close {code} {reason:?}>"),
            Seen::Closed(None, why) => format!("<connection ended: {why}>"),
        };
        match text.char_indices().nth(MAX) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text,
        }
    }
}

/// Why an upgrade did not give a WebSocket connection.
#[derive(Clone, Debug)]
pub enum OpenFailure {
    /// The server answered the upgrade with this HTTP status (and this `Retry-After`).
    Status(u16, Option<String>),
    /// Nothing listens, or the network failed.
    Unreachable(String),
    /// No answer within the wait.
    TimedOut(Duration),
    /// The TLS handshake failed.
    Tls(String),
    /// Anything else the handshake ran into.
    Other(String),
}

impl std::fmt::Display for OpenFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenFailure::Status(status, _) => {
                write!(
                    f,
                    "the upgrade was answered with HTTP {status} instead of 101"
                )
            }
            OpenFailure::Unreachable(why) => write!(f, "cannot reach the server: {why}"),
            OpenFailure::TimedOut(after) => write!(
                f,
                "no WebSocket upgrade within {} ms: is this a WebSocket endpoint?",
                after.as_millis()
            ),
            OpenFailure::Tls(why) => write!(
                f,
                "TLS handshake failed: {why} (a private CA: pass its certificate with --ca FILE)"
            ),
            OpenFailure::Other(why) => write!(f, "the WebSocket handshake failed: {why}"),
        }
    }
}

/// What every connection of a run shares: the URL, the token, the wait, the TLS settings.
#[derive(Clone)]
pub struct Dialer {
    /// The server's envelope endpoint.
    pub url: Url,
    /// Sent as `Authorization: Bearer …` on every upgrade, when set.
    pub token: Option<String>,
    /// The bound on every wait for a frame.
    pub wait: Duration,
    /// For `wss://`: the roots the server's certificate must chain to.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// A TLS configuration trusting the bundled web roots and the certificates of `extra_pem`.
pub fn tls_config(extra_pem: Option<&str>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_pem {
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("--ca holds no usable PEM certificate: {e}"))?;
        if certs.is_empty() {
            return Err("--ca holds no -----BEGIN CERTIFICATE----- block".into());
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("--ca holds an unusable certificate: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl Dialer {
    /// Open a connection as `client_id` (none: the anonymous sender) resuming from `cursor`.
    pub async fn open(
        &self,
        label: &str,
        client_id: Option<&str>,
        cursor: Cursor,
    ) -> Result<Connection, OpenFailure> {
        self.open_with(label, client_id, cursor, self.token.as_deref())
            .await
    }

    /// [`Dialer::open`] with the token given (`None`: no `Authorization` header).
    pub async fn open_with(
        &self,
        label: &str,
        client_id: Option<&str>,
        cursor: Cursor,
        token: Option<&str>,
    ) -> Result<Connection, OpenFailure> {
        let url = self.url_for(client_id, cursor);
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| OpenFailure::Other(e.to_string()))?;
        if let Some(token) = token {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| OpenFailure::Other("the token is not a valid header value".into()))?;
            request.headers_mut().insert("Authorization", value);
        }
        let connecting = async {
            let io = self.connect(&url).await?;
            tokio_tungstenite::client_async(request, io)
                .await
                .map_err(|err| match err {
                    WsError::Http(response) => {
                        let retry_after = response
                            .headers()
                            .get("retry-after")
                            .and_then(|value| value.to_str().ok())
                            .map(str::to_owned);
                        OpenFailure::Status(response.status().as_u16(), retry_after)
                    }
                    WsError::Io(err) => OpenFailure::Unreachable(err.to_string()),
                    other => OpenFailure::Other(other.to_string()),
                })
        };
        let (ws, _) = tokio::time::timeout(self.wait, connecting)
            .await
            .map_err(|_| OpenFailure::TimedOut(self.wait))??;
        Ok(Connection {
            ws,
            label: label.to_owned(),
            seen: Vec::new(),
            ended: false,
            wait: self.wait,
        })
    }

    /// TCP to the URL's host, and TLS over it for `wss://`.
    async fn connect(&self, url: &Url) -> Result<Box<dyn Io>, OpenFailure> {
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| OpenFailure::Unreachable(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
            .map_err(|e| OpenFailure::Other(format!("{host} is not a TLS server name: {e}")))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
            .connect(name, tcp)
            .await
            .map_err(|e| OpenFailure::Tls(e.to_string()))?;
        Ok(Box::new(stream))
    }

    fn url_for(&self, client_id: Option<&str>, cursor: Cursor) -> Url {
        let mut url = self.url.clone();
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(key, _)| !matches!(&**key, "client_id" | "last_seq" | "last_ts"))
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        {
            let mut query = url.query_pairs_mut();
            query.clear().extend_pairs(kept);
            if let Some(id) = client_id {
                query.append_pair("client_id", id);
            }
            match cursor {
                Cursor::None => {}
                Cursor::Seq(seq) => {
                    query.append_pair("last_seq", &seq.to_string());
                }
                Cursor::Ts(ts) => {
                    query.append_pair("last_ts", &ts.to_string());
                }
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        url
    }
}

/// An open connection and everything it received so far.
pub struct Connection {
    ws: WebSocketStream<Box<dyn Io>>,
    /// Names the connection in evidence ("A", "B" …).
    pub label: String,
    /// Every frame received, in order.
    pub seen: Vec<Seen>,
    ended: bool,
    wait: Duration,
}

impl Connection {
    /// Write a text frame; `false` if the connection is gone.
    pub async fn send_text(&mut self, text: &str) -> bool {
        self.send(Message::text(text)).await
    }

    /// Write any frame; `false` if the connection is gone.
    pub async fn send(&mut self, message: Message) -> bool {
        let sent = tokio::time::timeout(self.wait, self.ws.send(message)).await;
        matches!(sent, Ok(Ok(())))
    }

    /// Read until a frame received from now on satisfies `found`; its index in
    /// [`Connection::seen`], or `None` when the wait ends or the connection does.
    pub async fn wait_for(&mut self, mut found: impl FnMut(&Seen) -> bool) -> Option<usize> {
        let deadline = Instant::now() + self.wait;
        while let Some(index) = self.read_until(deadline).await {
            if found(&self.seen[index]) {
                return Some(index);
            }
        }
        None
    }

    /// Read until `done` holds for everything received so far, or the wait ends; whether it
    /// holds.
    pub async fn wait_until(&mut self, done: impl Fn(&[Seen]) -> bool) -> bool {
        let deadline = Instant::now() + self.wait;
        while !done(&self.seen) {
            if self.read_until(deadline).await.is_none() {
                return false;
            }
        }
        true
    }

    /// Read everything that arrives within `quiet`.
    pub async fn collect_for(&mut self, quiet: Duration) {
        let deadline = Instant::now() + quiet;
        while self.read_until(deadline).await.is_some() {}
    }

    /// Whether the connection has ended (a close frame, or the TCP stream closing).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The last frames received, as evidence.
    pub fn evidence(&self, from: usize) -> Vec<String> {
        const MAX_FRAMES: usize = 12;
        let frames = &self.seen[from.min(self.seen.len())..];
        let skipped = frames.len().saturating_sub(MAX_FRAMES);
        let mut lines: Vec<String> = frames[skipped..]
            .iter()
            .map(|frame| format!("{} received {}", self.label, frame.brief()))
            .collect();
        if skipped > 0 {
            lines.insert(
                0,
                format!("{} received {skipped} earlier frames", self.label),
            );
        }
        if lines.is_empty() {
            lines.push(format!("{} received nothing", self.label));
        }
        lines
    }

    /// Close politely; the server's answer is not awaited for long.
    pub async fn close(mut self) -> Vec<Seen> {
        if !self.ended {
            let _ = tokio::time::timeout(Duration::from_millis(200), self.ws.close(None)).await;
        }
        self.seen
    }

    async fn read_until(&mut self, deadline: Instant) -> Option<usize> {
        if self.ended {
            return None;
        }
        let next = tokio::time::timeout_at(deadline, self.ws.next())
            .await
            .ok()?;
        let seen = match next {
            Some(Ok(Message::Text(text))) => {
                let text = text.as_str().to_owned();
                let value = serde_json::from_str(&text).ok();
                Seen::Text(text, value)
            }
            Some(Ok(Message::Binary(bytes))) => Seen::Binary(bytes.len()),
            Some(Ok(Message::Pong(payload))) => Seen::Pong(payload.to_vec()),
            Some(Ok(Message::Ping(_))) => Seen::Ping,
            Some(Ok(Message::Close(frame))) => {
                self.ended = true;
                match frame {
                    Some(frame) => Seen::Closed(Some(frame.code.into()), frame.reason.to_string()),
                    None => Seen::Closed(None, "a close frame without a code".into()),
                }
            }
            Some(Ok(Message::Frame(_))) => return None,
            Some(Err(err)) => {
                self.ended = true;
                Seen::Closed(None, err.to_string())
            }
            None => {
                self.ended = true;
                Seen::Closed(None, "the server closed the TCP connection".into())
            }
        };
        self.seen.push(seen);
        Some(self.seen.len() - 1)
    }
}

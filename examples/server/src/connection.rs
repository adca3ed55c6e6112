//! One client connection: the upgrade (routing, auth, origin, capacity and overload answers, the
//! client id and resume cursor), then the envelope session (hello, replay, live fan-out, acks,
//! pings) or the raw echo. Every write has a deadline and every session an idle timeout, so a
//! client that stops reading or answering costs a bounded amount, for a bounded time.

// The upgrade callback must return tungstenite's `ErrorResponse`, a large type we do not choose.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::hub::Published;
use crate::protocol::{self, ClientFrame};
use crate::{Injected, Shared};

/// Which endpoint the client asked for.
pub enum Route {
    /// The envelope protocol.
    Envelope {
        /// Who the client says it is (`client_id`), `""` when it did not say.
        sender: String,
        /// Resume after this seq.
        last_seq: Option<u64>,
        /// Resume after this server time.
        last_ts: Option<u64>,
    },
    /// The raw echo.
    Raw,
}

type Ws<S> = WebSocketStream<S>;

/// Close code for a client dropped because it did not read what it was sent in time.
pub const CLOSE_TOO_SLOW: u16 = 4008;

/// The WebSocket upgrade on an accepted TCP (or TLS) stream; `None` if it was refused or failed.
pub async fn upgrade<S>(stream: S, shared: &Shared) -> Option<(Ws<S>, Route)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut route = None;
    let callback = |request: &Request, mut response: Response| {
        route = Some(decide(request, shared)?);
        // Accept the client's first offered subprotocol: the envelope does not depend on it,
        // and a client that offers one fails the handshake unless the server picks one.
        let offered = request
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok());
        if let Some(first) = offered
            .and_then(|list| list.split(',').next())
            .map(str::trim)
            && let Ok(value) = first.parse()
        {
            response
                .headers_mut()
                .insert("sec-websocket-protocol", value);
        }
        Ok(response)
    };
    let config = shared.ws_config();
    match tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await {
        Ok(ws) => Some((ws, route?)),
        Err(err) => {
            log::debug!("handshake not completed: {err}");
            None
        }
    }
}

/// Run an upgraded session until it closes or the server shuts down.
pub async fn serve<S>(
    mut ws: Ws<S>,
    route: Route,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    shared
        .connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut session = Session {
        shared: &shared,
        last_heard: tokio::time::Instant::now(),
    };
    let result = match route {
        Route::Envelope {
            sender,
            last_seq,
            last_ts,
        } => {
            session
                .envelope(&mut ws, &mut shutdown, &sender, last_seq, last_ts)
                .await
        }
        Route::Raw => session.raw_echo(&mut ws, &mut shutdown).await,
    };
    if let Err(err) = result {
        if is_stalled(&err) {
            log::info!("dropping a client that stopped reading: {err}");
            let reason = format!(
                "reader too slow: nothing written for {} s",
                shared.config.send_timeout.as_secs()
            );
            let close = close(&mut ws, CloseCode::from(CLOSE_TOO_SLOW), &reason);
            // Its buffers are full, so the close frame may never get through: best effort.
            let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
        } else {
            log::debug!("connection ended: {err}");
        }
    }
    shared
        .connections
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

/// Route the upgrade, or refuse it with the HTTP answer the client's close policy expects.
fn decide(request: &Request, shared: &Shared) -> Result<Route, ErrorResponse> {
    if let Some(retry_after) = shared.overloaded_retry_after() {
        return Err(unavailable("overloaded, retry later", retry_after));
    }
    let open = shared
        .connections
        .load(std::sync::atomic::Ordering::Relaxed);
    if open >= shared.config.max_connections {
        let message = format!("server full ({open} connections); retry later");
        return Err(unavailable(&message, Duration::from_secs(5)));
    }
    if !shared.config.allowed_origins.is_empty()
        && let Some(origin) = request.headers().get("origin")
        && !shared
            .config
            .allowed_origins
            .iter()
            .any(|allowed| allowed.as_bytes() == origin.as_bytes())
    {
        let message = format!(
            "origin {:?} is not allowed to connect",
            String::from_utf8_lossy(origin.as_bytes())
        );
        return Err(http_error(StatusCode::FORBIDDEN, &message));
    }
    if let Some(token) = &shared.config.require_token {
        let expected = format!("Bearer {token}");
        let given = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return Err(http_error(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token",
            ));
        }
    }
    let query = request.uri().query().unwrap_or_default();
    let param = |name: &str| {
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then_some(value)
        })
    };
    let number = |name: &str| param(name).and_then(|value| value.parse::<u64>().ok());
    match request.uri().path() {
        "/ws" | "/" => {
            let sender = param("client_id").unwrap_or_default();
            if !sender.is_empty() && !protocol::is_valid_client_id(sender) {
                return Err(http_error(
                    StatusCode::BAD_REQUEST,
                    "client_id must be 1 to 64 characters from A-Z a-z 0-9 - _ . ~",
                ));
            }
            Ok(Route::Envelope {
                sender: sender.to_owned(),
                last_seq: number("last_seq"),
                last_ts: number("last_ts"),
            })
        }
        "/raw" => Ok(Route::Raw),
        _ => Err(http_error(
            StatusCode::NOT_FOUND,
            "no WebSocket endpoint here: use /ws or /raw",
        )),
    }
}

fn http_error(status: StatusCode, body: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(body.to_owned()));
    *response.status_mut() = status;
    response
}

/// 503 with `Retry-After`, which clients honour (never below their own backoff).
fn unavailable(body: &str, retry_after: Duration) -> ErrorResponse {
    let mut refusal = http_error(StatusCode::SERVICE_UNAVAILABLE, body);
    let value = retry_after.as_secs().max(1).to_string();
    refusal.headers_mut().insert(
        "retry-after",
        value.parse().expect("digits are a valid header value"),
    );
    refusal
}

/// What handling one inbound frame left to do.
enum Answered {
    /// A reply is queued, not yet flushed.
    Queued,
    /// Nothing to send.
    Nothing,
    /// The session is over: the client closed, or a store failure closed it.
    Ended,
}

/// A session's deadlines: what it last heard, and how long a write may stall.
struct Session<'a> {
    shared: &'a Shared,
    last_heard: tokio::time::Instant,
}

impl Session<'_> {
    async fn envelope<S>(
        &mut self,
        ws: &mut Ws<S>,
        shutdown: &mut watch::Receiver<bool>,
        sender: &str,
        last_seq: Option<u64>,
        last_ts: Option<u64>,
    ) -> Result<(), WsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let shared = self.shared;
        let hub = &shared.hub;
        let mut head = hub.subscribe();
        let mut injected = shared.injected.subscribe();
        let current = *head.borrow_and_update();
        if shared.config.hello {
            self.send(ws, text(protocol::hello(current, now_ms())))
                .await?;
        }
        // Where this connection's replay starts; live fan-out continues from the same cursor.
        let mut sent = match (last_seq, last_ts) {
            (Some(seq), _) => seq,
            (None, Some(ts)) => hub.seq_before_ts(ts),
            (None, None) => current,
        };
        sent = self.forward_since(ws, sent).await?;
        let mut pings = shared
            .config
            .ping_interval
            .map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
        let mut idle = self.idle_checks();
        loop {
            tokio::select! {
                inbound = ws.next() => match inbound {
                    Some(Ok(message)) => {
                        self.last_heard = tokio::time::Instant::now();
                        match self.answer(ws, sender, message).await? {
                            Answered::Ended => return Ok(()),
                            Answered::Nothing => {}
                            // The answer leaves with whatever it published (the sender's own
                            // message among it) in one write: one segment, one wake-up for the
                            // client, where two flushes would cost it two.
                            Answered::Queued if shared.config.fanout => {
                                head.borrow_and_update();
                                sent = self.forward_since(ws, sent).await?;
                            }
                            Answered::Queued => self.within(ws.flush()).await?,
                        }
                    }
                    Some(Err(WsError::Capacity(err))) => {
                        let reason = format!("message too big: {err}");
                        return close(ws, CloseCode::Size, &reason).await;
                    }
                    Some(Err(err)) => return Err(err),
                    None => return Ok(()),
                },
                changed = head.changed(), if shared.config.fanout => {
                    if changed.is_err() {
                        return close(ws, CloseCode::Away, "server shutting down").await;
                    }
                    sent = self.forward_since(ws, sent).await?;
                }
                _ = tick(&mut pings) => self.send(ws, text(protocol::ping(now_ms()))).await?,
                _ = idle.tick() => if !self.still_there(ws).await? {
                    return Ok(());
                },
                Ok(frame) = injected.recv() => self.send(ws, injected_message(frame)).await?,
                _ = shutdown.changed() => return close(ws, CloseCode::Away, "server shutting down").await,
            }
        }
    }

    async fn raw_echo<S>(
        &mut self,
        ws: &mut Ws<S>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), WsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut idle = self.idle_checks();
        loop {
            tokio::select! {
                inbound = ws.next() => {
                    self.last_heard = tokio::time::Instant::now();
                    match inbound {
                        Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                            self.send(ws, message).await?
                        }
                        Some(Ok(Message::Close(_))) | None => return Ok(()),
                        Some(Ok(_)) => {}
                        Some(Err(WsError::Capacity(err))) => {
                            let reason = format!("message too big: {err}");
                            return close(ws, CloseCode::Size, &reason).await;
                        }
                        Some(Err(err)) => return Err(err),
                    }
                }
                _ = idle.tick() => if !self.still_there(ws).await? {
                    return Ok(());
                },
                _ = shutdown.changed() => return close(ws, CloseCode::Away, "server shutting down").await,
            }
        }
    }

    /// Handle one inbound message, queueing the reply unflushed.
    async fn answer<S>(
        &mut self,
        ws: &mut Ws<S>,
        sender: &str,
        message: Message,
    ) -> Result<Answered, WsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let reply = match message {
            Message::Text(text) => match protocol::parse_client_frame(text.as_str()) {
                Ok(ClientFrame::Msg { id, data }) => {
                    match store(self.shared, sender, id.clone(), data).await {
                        Ok(Published::New(_) | Published::Duplicate) => protocol::ack(&id),
                        Ok(Published::Conflict) => protocol::error(
                            "id_conflict",
                            &format!(
                                "message id {id:?} already belongs to another message; this one was not stored"
                            ),
                            Some(&id),
                        ),
                        Err(err) => {
                            log::error!("{err}");
                            close(ws, CloseCode::Error, "storage failure").await?;
                            return Ok(Answered::Ended);
                        }
                    }
                }
                Ok(ClientFrame::Ping { ts }) => protocol::pong(ts.as_deref()),
                Ok(ClientFrame::Pong) => return Ok(Answered::Nothing),
                Err(refusal) => {
                    protocol::error(refusal.code, &refusal.message, refusal.id.as_deref())
                }
            },
            Message::Binary(_) => protocol::error(
                "binary_unsupported",
                "the envelope endpoint takes JSON text frames; use /raw for binary",
                None,
            ),
            Message::Close(_) => return Ok(Answered::Ended),
            // tungstenite answers pings itself.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {
                return Ok(Answered::Nothing);
            }
        };
        // Flushed by the caller, with what follows it.
        self.within(ws.feed(text(reply))).await?;
        Ok(Answered::Queued)
    }

    /// Send everything after `sent`; returns the new cursor.
    async fn forward_since<S>(&mut self, ws: &mut Ws<S>, sent: u64) -> Result<u64, WsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let since = self.shared.hub.since(sent);
        if since.truncated {
            let message = format!(
                "messages after seq {sent} left the replay window; the oldest retained follow"
            );
            let notice = text(protocol::error("replay_truncated", &message, None));
            self.within(ws.feed(notice)).await?;
        }
        let mut last = sent;
        for message in &since.messages {
            let frame = protocol::msg(&message.id, message.seq, message.ts, &message.data);
            self.within(ws.feed(text(frame))).await?;
            last = message.seq;
        }
        self.within(ws.flush()).await?;
        Ok(last)
    }

    /// Checks every half idle timeout: ping a client gone quiet, so that any live WebSocket
    /// client answers with a pong.
    fn idle_checks(&self) -> tokio::time::Interval {
        let every = self.shared.config.idle_timeout / 2;
        tokio::time::interval_at(tokio::time::Instant::now() + every, every)
    }

    /// Whether the client was heard from within the idle timeout; pings it when it has gone
    /// quiet, and closes the session when it has been quiet for all of it.
    async fn still_there<S>(&mut self, ws: &mut Ws<S>) -> Result<bool, WsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let limit = self.shared.config.idle_timeout;
        let quiet = self.last_heard.elapsed();
        if quiet >= limit {
            let reason = format!("idle: no frame from the client for {} s", limit.as_secs());
            log::info!("{reason}");
            let _ =
                tokio::time::timeout(Duration::from_secs(1), close(ws, CloseCode::Away, &reason))
                    .await;
            return Ok(false);
        }
        // Checks run every half timeout, and one may fire a hair before a full half has passed:
        // a margin makes sure a quiet client is pinged at the first check, well before the
        // second one would close it.
        if quiet >= limit / 4 {
            self.send(ws, Message::Ping(Vec::new().into())).await?;
        }
        Ok(true)
    }

    async fn send<S>(&mut self, ws: &mut Ws<S>, message: Message) -> Result<(), WsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.within(ws.send(message)).await
    }

    /// A write that makes no progress within the send timeout means the client stopped
    /// reading: it fails as stalled instead of holding the session (and its buffers) forever.
    async fn within(
        &self,
        write: impl Future<Output = Result<(), WsError>>,
    ) -> Result<(), WsError> {
        tokio::time::timeout(self.shared.config.send_timeout, write)
            .await
            .unwrap_or_else(|_| {
                Err(WsError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the client read nothing within the send timeout",
                )))
            })
    }
}

fn is_stalled(err: &WsError) -> bool {
    matches!(err, WsError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

/// Store a client message; on a durable hub the disk write runs off the async threads.
async fn store(
    shared: &Shared,
    sender: &str,
    id: String,
    data: String,
) -> Result<Published, crate::store::StoreError> {
    let hub = Arc::clone(&shared.hub);
    if hub.is_durable() {
        let sender = sender.to_owned();
        tokio::task::spawn_blocking(move || hub.publish_client(&sender, &id, &data, now_ms()))
            .await
            .expect("store task does not panic")
    } else {
        hub.publish_client(sender, &id, &data, now_ms())
    }
}

async fn close<S>(ws: &mut Ws<S>, code: CloseCode, reason: &str) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    ws.close(Some(frame)).await
}

async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn injected_message(frame: Injected) -> Message {
    use tokio_tungstenite::tungstenite::protocol::frame::{
        Frame,
        coding::{Data, OpCode},
    };
    match frame {
        Injected::Text(content) => text(content),
        Injected::Binary(bytes) => Message::Binary(bytes.into()),
        Injected::InvalidUtf8Text(bytes) => {
            Message::Frame(Frame::message(bytes, OpCode::Data(Data::Text), true))
        }
    }
}

fn text(frame: String) -> Message {
    Message::Text(frame.into())
}

/// Wall clock in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

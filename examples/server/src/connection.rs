//! One client connection: the upgrade (routing, auth, overload answers, the resume cursor), then
//! the envelope session (hello, replay, live fan-out, acks, pings) or the raw echo.

// The upgrade callback must return tungstenite's `ErrorResponse`, a large type we do not choose.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

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
enum Route {
    Envelope {
        last_seq: Option<u64>,
        last_ts: Option<u64>,
    },
    Raw,
}

type Ws<S> = WebSocketStream<S>;

/// Serve one accepted TCP (or TLS) stream until it closes or the server shuts down.
pub async fn serve<S>(stream: S, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut route = None;
    let callback = |request: &Request, mut response: Response| {
        route = Some(decide(request, &shared)?);
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
    let ws = match tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config))
        .await
    {
        Ok(ws) => ws,
        Err(err) => {
            log::debug!("handshake not completed: {err}");
            return;
        }
    };
    let Some(route) = route else { return };
    shared
        .connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let result = match route {
        Route::Envelope { last_seq, last_ts } => {
            envelope(ws, &shared, &mut shutdown, last_seq, last_ts).await
        }
        Route::Raw => raw_echo(ws, &mut shutdown).await,
    };
    shared
        .connections
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    if let Err(err) = result {
        log::debug!("connection ended: {err}");
    }
}

/// Route the upgrade, or refuse it with the HTTP answer the client's close policy expects.
fn decide(request: &Request, shared: &Shared) -> Result<Route, ErrorResponse> {
    if let Some(retry_after) = shared.overloaded_retry_after() {
        let mut refusal = http_error(StatusCode::SERVICE_UNAVAILABLE, "overloaded, retry later");
        let value = retry_after.as_secs().max(1).to_string();
        refusal.headers_mut().insert(
            "retry-after",
            value.parse().expect("digits are a valid header value"),
        );
        return Err(refusal);
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
            (key == name).then(|| value.parse::<u64>().ok()).flatten()
        })
    };
    match request.uri().path() {
        "/ws" | "/" => Ok(Route::Envelope {
            last_seq: param("last_seq"),
            last_ts: param("last_ts"),
        }),
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

async fn envelope<S>(
    mut ws: Ws<S>,
    shared: &Shared,
    shutdown: &mut watch::Receiver<bool>,
    last_seq: Option<u64>,
    last_ts: Option<u64>,
) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let hub = &shared.hub;
    let mut head = hub.subscribe();
    let mut injected = shared.injected.subscribe();
    let current = *head.borrow_and_update();
    ws.send(text(protocol::hello(current, now_ms()))).await?;
    // Where this connection's replay starts; live fan-out continues from the same cursor.
    let mut sent = match (last_seq, last_ts) {
        (Some(seq), _) => seq,
        (None, Some(ts)) => hub.seq_before_ts(ts),
        (None, None) => current,
    };
    sent = forward_since(&mut ws, shared, sent).await?;
    let mut pings = shared
        .config
        .ping_interval
        .map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
    loop {
        tokio::select! {
            inbound = ws.next() => match inbound {
                Some(Ok(message)) => {
                    if !answer(&mut ws, shared, message).await? {
                        return Ok(());
                    }
                }
                Some(Err(WsError::Capacity(err))) => {
                    let reason = format!("message too big: {err}");
                    return close(&mut ws, CloseCode::Size, &reason).await;
                }
                Some(Err(err)) => return Err(err),
                None => return Ok(()),
            },
            changed = head.changed() => {
                if changed.is_err() {
                    return close(&mut ws, CloseCode::Away, "server shutting down").await;
                }
                sent = forward_since(&mut ws, shared, sent).await?;
            }
            _ = tick(&mut pings) => ws.send(text(protocol::ping(now_ms()))).await?,
            Ok(frame) = injected.recv() => ws.send(injected_message(frame)).await?,
            _ = shutdown.changed() => return close(&mut ws, CloseCode::Away, "server shutting down").await,
        }
    }
}

/// Handle one inbound message. Returns false when the client closed.
async fn answer<S>(ws: &mut Ws<S>, shared: &Shared, message: Message) -> Result<bool, WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let reply = match message {
        Message::Text(text) => match protocol::parse_client_frame(text.as_str()) {
            Ok(ClientFrame::Msg { id, data }) => match store(shared, id.clone(), data).await {
                Ok(_) => protocol::ack(&id),
                Err(err) => {
                    log::error!("{err}");
                    close(ws, CloseCode::Error, "storage failure").await?;
                    return Ok(false);
                }
            },
            Ok(ClientFrame::Ping { ts }) => protocol::pong(ts.as_deref()),
            Ok(ClientFrame::Pong) => return Ok(true),
            Err(refusal) => protocol::error(refusal.code, &refusal.message, refusal.id.as_deref()),
        },
        Message::Binary(_) => protocol::error(
            "binary_unsupported",
            "the envelope endpoint takes JSON text frames; use /raw for binary",
            None,
        ),
        Message::Close(_) => return Ok(false),
        // tungstenite answers pings itself.
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Ok(true),
    };
    ws.send(text(reply)).await?;
    Ok(true)
}

/// Store a client message; on a durable hub the disk write runs off the async threads.
async fn store(
    shared: &Shared,
    id: String,
    data: String,
) -> Result<Published, crate::store::StoreError> {
    let hub = Arc::clone(&shared.hub);
    if hub.is_durable() {
        tokio::task::spawn_blocking(move || hub.publish_client(&id, &data, now_ms()))
            .await
            .expect("store task does not panic")
    } else {
        hub.publish_client(&id, &data, now_ms())
    }
}

/// Send everything after `sent`; returns the new cursor.
async fn forward_since<S>(ws: &mut Ws<S>, shared: &Shared, sent: u64) -> Result<u64, WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let since = shared.hub.since(sent);
    if since.truncated {
        let message =
            format!("messages after seq {sent} left the replay window; the oldest retained follow");
        ws.feed(text(protocol::error("replay_truncated", &message, None)))
            .await?;
    }
    let mut last = sent;
    for message in &since.messages {
        ws.feed(text(protocol::msg(
            &message.id,
            message.seq,
            message.ts,
            &message.data,
        )))
        .await?;
        last = message.seq;
    }
    ws.flush().await?;
    Ok(last)
}

async fn raw_echo<S>(mut ws: Ws<S>, shutdown: &mut watch::Receiver<bool>) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        tokio::select! {
            inbound = ws.next() => match inbound {
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => ws.send(message).await?,
                Some(Ok(Message::Close(_))) | None => return Ok(()),
                Some(Ok(_)) => {}
                Some(Err(WsError::Capacity(err))) => {
                    return close(&mut ws, CloseCode::Size, &format!("message too big: {err}")).await;
                }
                Some(Err(err)) => return Err(err),
            },
            _ = shutdown.changed() => return close(&mut ws, CloseCode::Away, "server shutting down").await,
        }
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

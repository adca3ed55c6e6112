//! A small in-memory server of the envelope protocol for the kit's tests: conformant with
//! `Fault::None`, and with any other fault wrong in exactly one way the kit must catch. One
//! stream, no limits, no persistence: only what the kit observes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// How the server is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Conformant.
    None,
    /// Never sends `hello`.
    NoHello,
    /// Acks a new message at once and stores it 2 s later.
    AckBeforeStore,
    /// Dedups by id alone: a known id is acked again, whoever sent it with whatever data.
    GlobalDedup,
    /// No dedup: every `msg` is stored and fanned out, resends included.
    NoDedup,
    /// `ts` in seconds, not milliseconds.
    TsInSeconds,
    /// `seq` advances by 2.
    SeqGaps,
    /// Forwards live messages at once and sends the replay 500 ms after the upgrade.
    ReplayAfterLive,
    /// Answers a ping with `ts` + 1.
    PongOtherTs,
    /// Closes the connection (1003) on a bad envelope instead of answering with `error`.
    CloseOnBadEnvelope,
}

/// A stored message: the frame clients get, and what dedup compares.
#[derive(Clone)]
struct Stored {
    seq: u64,
    ts: u64,
    id: String,
    sender: String,
    data: String,
}

impl Stored {
    fn frame(&self) -> String {
        format!(
            r#"{{"type":"msg","id":"{}","seq":{},"ts":{},"data":{}}}"#,
            self.id, self.seq, self.ts, self.data
        )
    }
}

struct Stream {
    fault: Fault,
    messages: Mutex<Vec<Stored>>,
    live: broadcast::Sender<Stored>,
    /// With `AckBeforeStore`: messages acked and not stored yet, in order, each with when.
    unstored: mpsc::UnboundedSender<(Instant, String, String, String)>,
}

impl Stream {
    /// The server's clock, in the unit its `ts` uses.
    fn now(&self) -> u64 {
        if self.fault == Fault::TsInSeconds {
            now_ms() / 1000
        } else {
            now_ms()
        }
    }

    fn head(&self) -> u64 {
        self.messages.lock().unwrap().last().map_or(0, |m| m.seq)
    }

    fn append(&self, id: String, sender: String, data: String) {
        let mut messages = self.messages.lock().unwrap();
        let step = if self.fault == Fault::SeqGaps { 2 } else { 1 };
        let stored = Stored {
            seq: messages.last().map_or(0, |m| m.seq) + step,
            ts: self.now(),
            id,
            sender,
            data,
        };
        messages.push(stored.clone());
        let _ = self.live.send(stored);
    }
}

/// The running server; [`FaultyServer::shutdown`] stops it and every session.
pub struct FaultyServer {
    url: String,
    tasks: JoinSet<()>,
}

impl FaultyServer {
    /// Listen on 127.0.0.1, wrong in the way `fault` says.
    pub async fn start(fault: Fault) -> FaultyServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        let (unstored, mut to_store) = mpsc::unbounded_channel();
        let stream = Arc::new(Stream {
            fault,
            messages: Mutex::new(Vec::new()),
            live: broadcast::channel(1024).0,
            unstored,
        });
        let mut tasks = JoinSet::new();
        let storing = Arc::clone(&stream);
        tasks.spawn(async move {
            while let Some((due, id, sender, data)) = to_store.recv().await {
                tokio::time::sleep_until(due).await;
                storing.append(id, sender, data);
            }
        });
        tasks.spawn(async move {
            let mut sessions = JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                sessions.spawn(session(tcp, Arc::clone(&stream)));
            }
        });
        FaultyServer { url, tasks }
    }

    /// The envelope endpoint.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Stop accepting and end every session (dropping the accept task drops its sessions).
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

async fn session(tcp: TcpStream, stream: Arc<Stream>) {
    let mut query = String::new();
    // tungstenite's callback signature, large error and all.
    #[allow(clippy::result_large_err)]
    let capture = |request: &Request, response: Response| {
        query = request.uri().query().unwrap_or_default().to_owned();
        Ok::<_, ErrorResponse>(response)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, capture).await else {
        return;
    };
    let params: HashMap<&str, &str> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    let sender = params.get("client_id").unwrap_or(&"").to_string();
    let last_seq = params.get("last_seq").and_then(|v| v.parse::<u64>().ok());
    let last_ts = params.get("last_ts").and_then(|v| v.parse::<u64>().ok());
    let (mut out, mut inbound) = ws.split();

    // Subscribe before taking the replay, so nothing falls between them.
    let mut live = stream.live.subscribe();
    let replay: Vec<Stored> = stream
        .messages
        .lock()
        .unwrap()
        .iter()
        .filter(|m| match (last_seq, last_ts) {
            (Some(seq), _) => m.seq > seq,
            (None, Some(ts)) => m.ts > ts,
            (None, None) => false,
        })
        .cloned()
        .collect();
    if stream.fault != Fault::NoHello {
        let hello = format!(
            r#"{{"type":"hello","seq":{},"ts":{}}}"#,
            stream.head(),
            stream.now()
        );
        let _ = out.send(Message::text(hello)).await;
    }
    let mut replayed = last_seq.unwrap_or(0);
    let mut pending_replay = Some(replay);
    let replay_at = tokio::time::Instant::now()
        + if stream.fault == Fault::ReplayAfterLive {
            Duration::from_millis(500)
        } else {
            Duration::ZERO
        };
    loop {
        if pending_replay.is_some() && tokio::time::Instant::now() >= replay_at {
            for message in pending_replay.take().unwrap_or_default() {
                replayed = replayed.max(message.seq);
                let _ = out.send(Message::text(message.frame())).await;
            }
        }
        let wake = if pending_replay.is_some() {
            replay_at
        } else {
            tokio::time::Instant::now() + Duration::from_secs(3600)
        };
        tokio::select! {
            frame = inbound.next() => {
                let Some(Ok(frame)) = frame else { return };
                let answers = match frame {
                    Message::Text(text) => answer(&stream, &sender, text.as_str()),
                    Message::Binary(_) => vec![bad(&stream, "binary_unsupported", None)],
                    _ => Vec::new(),
                };
                for answer in answers {
                    let close = matches!(answer, Message::Close(_));
                    if out.send(answer).await.is_err() || close {
                        return;
                    }
                }
            }
            message = live.recv() => {
                let Ok(message) = message else { return };
                let overtakes = stream.fault == Fault::ReplayAfterLive && pending_replay.is_some();
                if overtakes || message.seq > replayed {
                    if pending_replay.is_none() {
                        replayed = message.seq;
                    }
                    let _ = out.send(Message::text(message.frame())).await;
                }
            }
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// The frames that answer one text frame from `sender`.
fn answer(stream: &Arc<Stream>, sender: &str, text: &str) -> Vec<Message> {
    // Raw fields: `data` is kept as sent, and numbers are not read until checked.
    let Ok(envelope) = serde_json::from_str::<HashMap<String, Box<RawValue>>>(text) else {
        return vec![bad(stream, "bad_json", None)];
    };
    let field = |name: &str| envelope.get(name).map(|raw| raw.get());
    let string = |name: &str| field(name).and_then(|raw| serde_json::from_str::<String>(raw).ok());
    match string("type").as_deref() {
        Some("ping") => {
            let ts = field("ts")
                .and_then(|raw| raw.parse::<u64>().ok())
                .unwrap_or(0);
            let ts = if stream.fault == Fault::PongOtherTs {
                ts + 1
            } else {
                ts
            };
            vec![Message::text(format!(r#"{{"type":"pong","ts":{ts}}}"#))]
        }
        Some("pong") => Vec::new(),
        Some("msg") => {
            let id = string("id").filter(|id| (1..=128).contains(&id.len()));
            message(stream, sender, id.as_deref(), field("data"))
        }
        Some(_) => vec![bad(stream, "unknown_type", None)],
        None => vec![bad(stream, "bad_json", None)],
    }
}

fn message(
    stream: &Arc<Stream>,
    sender: &str,
    id: Option<&str>,
    data: Option<&str>,
) -> Vec<Message> {
    let Some(id) = id else {
        return vec![bad(stream, "bad_message", None)];
    };
    let Some(data) = data else {
        return vec![bad(stream, "bad_message", Some(id))];
    };
    // serde_json refuses numbers past f64 (1e400); the depth is ours to count.
    let readable = serde_json::from_str::<Value>(data).is_ok_and(|value| depth(&value) <= 64);
    if !readable {
        return vec![bad(stream, "bad_message", Some(id))];
    }
    let data = data.to_owned();
    let ack = Message::text(format!(r#"{{"type":"ack","id":"{id}"}}"#));
    let known = stream
        .messages
        .lock()
        .unwrap()
        .iter()
        .find(|m| m.id == id)
        .map(|m| m.sender == sender && m.data == data);
    match known.filter(|_| stream.fault != Fault::NoDedup) {
        Some(_) if stream.fault == Fault::GlobalDedup => vec![ack],
        Some(true) => vec![ack],
        Some(false) => vec![Message::text(format!(
            r#"{{"type":"error","code":"id_conflict","message":"id already used by another message; not stored","id":"{id}"}}"#
        ))],
        None if stream.fault == Fault::AckBeforeStore => {
            let due = Instant::now() + Duration::from_secs(2);
            let _ = stream
                .unstored
                .send((due, id.to_owned(), sender.to_owned(), data));
            vec![ack]
        }
        None => {
            stream.append(id.to_owned(), sender.to_owned(), data);
            vec![ack]
        }
    }
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(fields) => 1 + fields.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn bad(stream: &Stream, code: &str, id: Option<&str>) -> Message {
    if stream.fault == Fault::CloseOnBadEnvelope {
        return Message::Close(Some(CloseFrame {
            code: 1003.into(),
            reason: "bad envelope".into(),
        }));
    }
    let id = id.map(|id| format!(r#","id":"{id}""#)).unwrap_or_default();
    Message::text(format!(
        r#"{{"type":"error","code":"{code}","message":"refused: {code}"{id}}}"#
    ))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

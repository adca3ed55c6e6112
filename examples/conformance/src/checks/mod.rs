//! The checklist of `docs/protocol.md` §13, as far as it shows from outside: a scripted
//! conversation over several connections (each a different client, or the same client
//! reconnecting), then a verdict per item from the frames they received.
//!
//! The kit's messages carry ids and client ids unique to the run, so a stream with other
//! traffic does not confuse it; it does assume nobody else writes with those ids.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::connection::{self, Connection, Cursor, Dialer, OpenFailure, Seen};
use crate::options::Options;
use crate::report::{Item, Outcome, Section, Verdict};

mod bad_input;
mod delivery;
mod refusals;
mod session_start;
mod stream_rules;

const fn section(number: &'static str, anchor: &'static str) -> Section {
    Section { number, anchor }
}

const CONVENTIONS: Section = section("§1", "1-conventions");
const SESSION_START: Section = section("§4", "4-session-start-hello-replay-live");
const CLIENT_PING: Section = section("§5.2", "52-ping-client-heartbeat");
const ACK: Section = section("§6.2", "62-ack");
const STREAM_MSG: Section = section("§6.3", "63-msg-stream-message");
const DEDUP: Section = section("§7.1", "71-server-side-dedup-exactly-once-in-effect");
const HEARTBEATS: Section = section("§8", "8-heartbeats");
const BAD_ENVELOPES: Section = section("§9.2", "92-bad-envelopes-from-a-client-reference-server");
const STATUSES: Section = section("§10", "10-http-statuses-and-close-codes");

/// The largest integer every JSON parser reads exactly (§1).
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
/// How far a server's `ts` may be from the kit's clock and still count as "ms since the epoch".
const CLOCK_SLACK_MS: u64 = 24 * 3600 * 1000;
/// How long the kit listens for something that must not come (a replay, a second fan-out).
const QUIET: Duration = Duration::from_millis(300);
/// How long a restarted server may take to accept connections again.
const RESTART_GRACE: Duration = Duration::from_secs(30);

/// Run every check against the server `options` names.
pub async fn run(options: &Options) -> Outcome {
    let url = match url::Url::parse(&options.url) {
        Ok(url) if matches!(url.scheme(), "ws" | "wss") && url.host_str().is_some() => url,
        Ok(url) if matches!(url.scheme(), "ws" | "wss") => {
            return Outcome::CannotRun(format!("{:?} names no host", options.url));
        }
        Ok(url) => {
            return Outcome::CannotRun(format!(
                "the URL's scheme is {}:, not ws: or wss:; give the envelope endpoint, e.g. ws://127.0.0.1:8080/ws",
                url.scheme()
            ));
        }
        Err(err) => return Outcome::CannotRun(format!("{:?} is not a URL: {err}", options.url)),
    };
    let tls = if url.scheme() == "wss" {
        let pem = match &options.ca_file {
            None => None,
            Some(path) => match std::fs::read_to_string(path) {
                Ok(pem) => Some(pem),
                Err(err) => {
                    return Outcome::CannotRun(format!(
                        "cannot read --ca {}: {err}",
                        path.display()
                    ));
                }
            },
        };
        match connection::tls_config(pem.as_deref()) {
            Ok(config) => Some(config),
            Err(why) => return Outcome::CannotRun(why),
        }
    } else {
        None
    };
    let dialer = Dialer {
        url,
        token: options.token.clone(),
        wait: options.wait,
        tls,
    };
    let tag = format!("kit{}-{}", now_ms(), std::process::id());
    let mut run = Run {
        dialer,
        options,
        tag,
        next_id: 0,
        items: Vec::new(),
        logs: Vec::new(),
        latest: 0,
    };
    match run.everything().await {
        Ok(()) => Outcome::Checked(run.items),
        Err(outcome) => outcome,
    }
}

struct Run<'a> {
    dialer: Dialer,
    options: &'a Options,
    tag: String,
    next_id: u64,
    items: Vec<Item>,
    /// Every closed connection's frames, for the rules that hold on every connection.
    logs: Vec<(String, Vec<Seen>)>,
    /// The highest seq seen so far: a cursor that asks for no replay.
    latest: u64,
}

/// A message the kit wrote: its id and its `data` text.
#[derive(Clone)]
struct Sent {
    id: String,
    data: String,
}

impl Sent {
    fn frame(&self) -> String {
        format!(
            r#"{{"type":"msg","id":"{}","data":{}}}"#,
            self.id, self.data
        )
    }
}

impl Run<'_> {
    async fn everything(&mut self) -> Result<(), Outcome> {
        let sender_a = self.client("a");
        let mut a = self.open("A", &sender_a, Cursor::None).await?;

        let hello_a = a.wait_for(|_| true).await.map(|i| a.seen[i].clone());
        let head_before = self.hello_first(&a, hello_a.as_ref());

        let pong = self.json_ping(&mut a).await;
        self.websocket_ping(&mut a).await;

        // Three messages stored through A.
        let stored: Vec<Sent> = (0..3)
            .map(|n| self.message(&format!(r#"{{"n":{n}}}"#)))
            .collect();
        let mark = a.seen.len();
        for sent in &stored {
            a.send_text(&sent.frame()).await;
        }
        let acked = wait_acks(&mut a, &stored).await;
        if hello_a.as_ref().and_then(Seen::kind) != Some("hello") && !pong && acked.is_empty() {
            let mut seen: Vec<String> = a.seen.iter().take(3).map(Seen::brief).collect();
            if seen.is_empty() {
                seen.push("nothing".into());
            }
            return Err(Outcome::NotSteadyws(format!(
                "no hello, no pong to a JSON ping and no ack for a msg within {} ms each; it sent: {}",
                self.wait_ms(),
                seen.join(", ")
            )));
        }
        let ack_evidence = a.evidence(mark);

        // B resumes from the head A saw, while A writes a live message.
        let cursor = head_before.unwrap_or(0);
        let sender_b = self.client("b");
        let mut b = self.open("B", &sender_b, Cursor::Seq(cursor)).await?;
        let live = self.message(r#"{"live":true}"#);
        a.send_text(&live.frame()).await;
        let mut wanted: Vec<&str> = acked.iter().map(|s| s.id.as_str()).collect();
        wanted.push(&live.id);
        wait_msgs(&mut b, &wanted).await;
        self.ack_after_store(&stored, &acked, &b, cursor, ack_evidence);
        self.replay_before_live(&acked, &live, &b);
        self.hello_head(&b, &acked);
        self.seq_consecutive(&b, cursor);
        // The stream as B saw it, for the checks that follow.
        let stream = stream_messages(&b.seen);
        self.latest = stream.iter().filter_map(|m| m.seq).max().unwrap_or(cursor);
        let _ = a.wait_for(|s| s.is_ack(&live.id)).await;

        self.replay_after_cursor(&b, cursor, &stream, &acked)
            .await?;

        // Dedup: the same client resends; another client and other data conflict.
        let mut e = self.open("E", &sender_a, Cursor::Seq(self.latest)).await?;
        self.dedup(&mut a, &mut e, &acked).await?;

        // Bad envelopes, unknown fields, data other parsers cannot read.
        let sender_h = self.client("h");
        let mut h = self.open("H", &sender_h, Cursor::Seq(self.latest)).await?;
        self.bad_envelopes(&mut h).await;
        if h.ended() {
            // A failure of its own: the checks that follow get a connection of their own.
            self.finish(h).await;
            h = self.open("H2", &sender_h, Cursor::Seq(self.latest)).await?;
        }
        let extra = self.unknown_fields(&mut h).await;
        let refused = self.non_portable(&mut h).await;

        // F replays everything since the cursor: what was written once is there once.
        let sender_f = self.client("f");
        let mut f = self.open("F", &sender_f, Cursor::Seq(cursor)).await?;
        let mut once: Vec<&str> = acked.iter().map(|s| s.id.as_str()).collect();
        once.extend(extra.iter().map(|s| s.id.as_str()));
        wait_msgs(&mut f, &once).await;
        f.collect_for(QUIET).await;
        self.stored_once(&f, &acked, &refused);

        for conn in [a, b, e, h, f] {
            self.finish(conn).await;
        }
        self.token_required().await;
        self.full_server().await;
        self.oversized().await?;
        self.replay_truncated().await?;
        self.restart().await?;
        self.stream_rules();
        Ok(())
    }

    async fn open(&self, label: &str, client: &str, cursor: Cursor) -> Result<Connection, Outcome> {
        self.dialer
            .open(label, Some(client), cursor)
            .await
            .map_err(|failure| match failure {
                OpenFailure::Status(401, _) if self.options.token.is_none() => Outcome::CannotRun(
                    "the upgrade was answered 401: pass the server's token with --token".into(),
                ),
                OpenFailure::Status(status @ (400 | 404 | 426 | 200), _) => Outcome::CannotRun(format!(
                    "the upgrade was answered HTTP {status} instead of 101: is this the envelope endpoint (path, ws://)?"
                )),
                other => Outcome::CannotRun(format!("connection {label}: {other}")),
            })
    }

    /// Open once the server accepts again (after a restart).
    async fn reopen(
        &self,
        label: &str,
        client: &str,
        cursor: Cursor,
    ) -> Result<Connection, Outcome> {
        let deadline = tokio::time::Instant::now() + RESTART_GRACE;
        loop {
            match self.dialer.open(label, Some(client), cursor).await {
                Ok(conn) => return Ok(conn),
                Err(failure) if tokio::time::Instant::now() >= deadline => {
                    return Err(Outcome::CannotRun(format!(
                        "the server did not accept connections within {} s of the restart: {failure}",
                        RESTART_GRACE.as_secs()
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    async fn finish(&mut self, conn: Connection) {
        let label = conn.label.clone();
        self.logs.push((label, conn.close().await));
    }

    fn item(
        &mut self,
        name: &'static str,
        section: Section,
        verdict: Verdict,
        evidence: Vec<String>,
    ) {
        let evidence = if matches!(verdict, Verdict::Fail(_)) {
            evidence
        } else {
            Vec::new()
        };
        self.items.push(Item {
            name,
            section,
            verdict,
            evidence,
        });
    }

    /// Whether item `name` was judged and passed.
    fn passed(&self, name: &str) -> bool {
        self.items
            .iter()
            .any(|i| i.name == name && i.verdict == Verdict::Pass)
    }

    /// Record `name` as not tested, saying why.
    fn untested(&mut self, name: &'static str, section: Section, why: impl Into<String>) {
        self.item(name, section, Verdict::NotTested(why.into()), Vec::new());
    }

    fn client(&self, who: &str) -> String {
        format!("{}-{who}", self.tag)
    }

    fn next_id(&mut self) -> String {
        self.next_id += 1;
        format!("{}-m{}", self.tag, self.next_id)
    }

    fn message(&mut self, data: &str) -> Sent {
        Sent {
            id: self.next_id(),
            data: data.to_owned(),
        }
    }

    fn wait_ms(&self) -> u128 {
        self.options.wait.as_millis()
    }
}

/// A stream `msg` as received.
struct StreamMessage {
    id: String,
    seq: Option<u64>,
    ts: Option<u64>,
}

fn stream_messages(seen: &[Seen]) -> Vec<StreamMessage> {
    seen.iter()
        .filter(|s| s.kind() == Some("msg"))
        .filter_map(|s| {
            Some(StreamMessage {
                id: s.field_str("id")?.to_owned(),
                seq: s.field_u64("seq"),
                ts: s.field_u64("ts"),
            })
        })
        .collect()
}

/// The stream message for `sent`, with the data it was sent with.
fn same_message(seen: &Seen, sent: &Sent) -> bool {
    seen.is_msg(&sent.id)
        && serde_json::from_str::<Value>(&sent.data).ok().as_ref()
            == seen.envelope().and_then(|e| e.get("data"))
}

/// Wait for the acks of `sent`; the ones acked, in order.
async fn wait_acks(conn: &mut Connection, sent: &[Sent]) -> Vec<Sent> {
    let start = conn.seen.len();
    let acked = |seen: &[Seen], id: &str| seen[start..].iter().any(|s| s.is_ack(id));
    conn.wait_until(|seen| sent.iter().all(|s| acked(seen, &s.id)))
        .await;
    sent.iter()
        .filter(|s| acked(&conn.seen, &s.id))
        .cloned()
        .collect()
}

/// Wait until stream messages with every id in `ids` arrived (from the connection's start).
async fn wait_msgs(conn: &mut Connection, ids: &[&str]) {
    conn.wait_until(|seen| ids.iter().all(|id| seen.iter().any(|s| s.is_msg(id))))
        .await;
}

/// Pass when nothing went wrong, else fail naming every problem.
fn verdict_from(problems: Vec<String>) -> Verdict {
    if problems.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(problems.join("; "))
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

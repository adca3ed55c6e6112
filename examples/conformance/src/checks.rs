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

use crate::connection::{Connection, Cursor, Dialer, OpenFailure, Seen};
use crate::options::Options;
use crate::report::{Item, Outcome, Section, Verdict};

const CONVENTIONS: Section = Section {
    number: "§1",
    anchor: "1-conventions",
};
const SESSION_START: Section = Section {
    number: "§4",
    anchor: "4-session-start-hello-replay-live",
};
const CLIENT_PING: Section = Section {
    number: "§5.2",
    anchor: "52-ping-client-heartbeat",
};
const ACK: Section = Section {
    number: "§6.2",
    anchor: "62-ack",
};
const STREAM_MSG: Section = Section {
    number: "§6.3",
    anchor: "63-msg-stream-message",
};
const DEDUP: Section = Section {
    number: "§7.1",
    anchor: "71-server-side-dedup-exactly-once-in-effect",
};
const HEARTBEATS: Section = Section {
    number: "§8",
    anchor: "8-heartbeats",
};
const BAD_ENVELOPES: Section = Section {
    number: "§9.2",
    anchor: "92-bad-envelopes-from-a-client-reference-server",
};
const STATUSES: Section = Section {
    number: "§10",
    anchor: "10-http-statuses-and-close-codes",
};

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
        Ok(url) if url.scheme() == "ws" => url,
        Ok(url) if url.scheme() == "wss" => {
            return Outcome::CannotRun(
                "wss:// is not supported by the kit yet: check the server over ws:// (for example on the port behind its TLS proxy)".into(),
            );
        }
        Ok(url) => {
            return Outcome::CannotRun(format!(
                "the URL's scheme is {}:, not ws:; give the envelope endpoint, e.g. ws://127.0.0.1:8080/ws",
                url.scheme()
            ));
        }
        Err(err) => return Outcome::CannotRun(format!("{:?} is not a URL: {err}", options.url)),
    };
    let dialer = Dialer {
        url,
        token: options.token.clone(),
        wait: options.wait,
    };
    let tag = format!(
        "kit{}-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
        std::process::id()
    );
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

        // hello first, with integers.
        let hello_a = a.wait_for(|_| true).await.map(|i| a.seen[i].clone());
        let head_before = match &hello_a {
            Some(seen) if seen.kind() == Some("hello") => {
                let (seq, ts) = (seen.field_u64("seq"), seen.field_u64("ts"));
                let verdict = if seq.is_some() && ts.is_some() {
                    Verdict::Pass
                } else {
                    Verdict::Fail("hello without integer seq and ts".into())
                };
                self.item("hello_first", SESSION_START, verdict, a.evidence(0));
                seq
            }
            Some(other) => {
                let why = format!("the first frame was {} instead of hello", other.brief());
                self.item(
                    "hello_first",
                    SESSION_START,
                    Verdict::Fail(why),
                    a.evidence(0),
                );
                None
            }
            None => {
                let why = format!("no frame within {} ms of the upgrade", self.wait_ms());
                self.item(
                    "hello_first",
                    SESSION_START,
                    Verdict::Fail(why),
                    a.evidence(0),
                );
                None
            }
        };

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
        let latest = stream.iter().filter_map(|m| m.seq).max().unwrap_or(cursor);
        self.latest = latest;
        let _ = a.wait_for(|s| s.is_ack(&live.id)).await;

        self.replay_after_cursor(&b, cursor, &stream, &acked)
            .await?;

        // Dedup: the same client resends; another client and other data conflict.
        let mut e = self.open("E", &sender_a, Cursor::Seq(latest)).await?;
        self.dedup(&mut a, &mut e, &acked).await?;

        // Bad envelopes, unknown fields, data other parsers cannot read.
        let sender_h = self.client("h");
        let mut h = self.open("H", &sender_h, Cursor::Seq(latest)).await?;
        self.bad_envelopes(&mut h).await;
        if h.ended() {
            // A failure of its own: the checks that follow get a connection of their own.
            self.finish(h).await;
            h = self.open("H2", &sender_h, Cursor::Seq(latest)).await?;
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

    async fn json_ping(&mut self, a: &mut Connection) -> bool {
        let mark = a.seen.len();
        a.send_text(r#"{"type":"ping","ts":4242}"#).await;
        let verdict = match a.wait_for(|s| s.kind() == Some("pong")).await {
            Some(i) if a.seen[i].field_u64("ts") == Some(4242) => Verdict::Pass,
            Some(i) => Verdict::Fail(format!(
                "ping with ts 4242 answered by {}",
                a.seen[i].brief()
            )),
            None => Verdict::Fail(format!("no pong within {} ms", self.wait_ms())),
        };
        let answered = verdict == Verdict::Pass;
        self.item("json_ping_answered", CLIENT_PING, verdict, a.evidence(mark));
        answered
    }

    async fn websocket_ping(&mut self, a: &mut Connection) {
        let mark = a.seen.len();
        a.send(Message::Ping(b"steadyws-kit".to_vec().into())).await;
        let verdict = match a.wait_for(|s| matches!(s, Seen::Pong(_))).await {
            Some(i) if matches!(&a.seen[i], Seen::Pong(p) if p == b"steadyws-kit") => Verdict::Pass,
            Some(_) => Verdict::Fail("the pong does not carry the ping's payload".into()),
            None => Verdict::Fail(format!("no WebSocket pong within {} ms", self.wait_ms())),
        };
        self.item(
            "websocket_ping_answered",
            HEARTBEATS,
            verdict,
            a.evidence(mark),
        );
    }

    fn ack_after_store(
        &mut self,
        stored: &[Sent],
        acked: &[Sent],
        b: &Connection,
        cursor: u64,
        mut evidence: Vec<String>,
    ) {
        let verdict = if acked.len() < stored.len() {
            Verdict::Fail(format!(
                "{} of {} messages acked within {} ms",
                acked.len(),
                stored.len(),
                self.wait_ms()
            ))
        } else {
            let missing: Vec<&str> = acked
                .iter()
                .filter(|sent| !b.seen.iter().any(|s| same_message(s, sent)))
                .map(|sent| sent.id.as_str())
                .collect();
            // hello is the server's own word for what it held when B connected: a message
            // acked before that must be at or below it, or it was stored after its ack.
            let head = b
                .seen
                .iter()
                .find(|s| s.kind() == Some("hello"))
                .and_then(|h| h.field_u64("seq"));
            let late: Vec<String> = acked
                .iter()
                .filter_map(|sent| {
                    let seq = b
                        .seen
                        .iter()
                        .find(|s| s.is_msg(&sent.id))?
                        .field_u64("seq")?;
                    head.filter(|head| seq > *head)
                        .map(|_| format!("{} (seq {seq})", sent.id))
                })
                .collect();
            if missing.is_empty() && late.is_empty() {
                Verdict::Pass
            } else if missing.is_empty() {
                evidence.extend(b.evidence(0));
                Verdict::Fail(format!(
                    "acked on A, yet above the head B's hello reported ({}): stored only after B connected, so after the ack: {}",
                    head.unwrap_or_default(),
                    late.join(", ")
                ))
            } else {
                evidence.extend(b.evidence(0));
                Verdict::Fail(format!(
                    "acked on A but not in the replay B got from last_seq={cursor} within {} ms (or with other data): {}",
                    self.wait_ms(),
                    missing.join(", ")
                ))
            }
        };
        self.item("ack_after_store", ACK, verdict, evidence);
    }

    fn replay_before_live(&mut self, acked: &[Sent], live: &Sent, b: &Connection) {
        let position = |id: &str| b.seen.iter().position(|s| s.is_msg(id));
        let verdict = match position(&live.id) {
            None => Verdict::NotTested(
                "B did not receive the message A wrote while B connected (fan-out to other connections is optional)".into(),
            ),
            Some(at) => match acked.iter().find(|s| position(&s.id).is_some_and(|p| p > at)) {
                Some(overtaken) => Verdict::Fail(format!(
                    "the live message {} reached B before the replayed {}",
                    live.id, overtaken.id
                )),
                None if acked.iter().any(|s| position(&s.id).is_none()) => {
                    Verdict::NotTested("the replay is incomplete (see ack_after_store)".into())
                }
                None => Verdict::Pass,
            },
        };
        self.item("replay_before_live", SESSION_START, verdict, b.evidence(0));
    }

    fn hello_head(&mut self, b: &Connection, acked: &[Sent]) {
        if self
            .items
            .iter()
            .any(|i| i.name == "ack_after_store" && i.verdict != Verdict::Pass)
        {
            let why = "needs messages known to be stored (see ack_after_store)".into();
            self.item(
                "hello_head",
                SESSION_START,
                Verdict::NotTested(why),
                Vec::new(),
            );
            return;
        }
        let hello = b.seen.iter().find(|s| s.kind() == Some("hello"));
        let last_acked = acked.last().and_then(|sent| {
            b.seen
                .iter()
                .find(|s| s.is_msg(&sent.id))
                .and_then(|s| s.field_u64("seq"))
        });
        let highest = b.seen.iter().filter_map(|s| s.field_u64("seq")).max();
        let verdict = match (hello.and_then(|h| h.field_u64("seq")), last_acked) {
            (None, _) => Verdict::NotTested("no hello with a seq (see hello_first)".into()),
            (_, None) => {
                Verdict::NotTested("the replay is incomplete (see ack_after_store)".into())
            }
            (Some(head), Some(acked)) if head >= acked && Some(head) <= highest => Verdict::Pass,
            (Some(head), Some(acked)) => Verdict::Fail(format!(
                "hello said seq {head}, but the stream held seq {acked} when B connected"
            )),
        };
        self.item("hello_head", SESSION_START, verdict, b.evidence(0));
    }

    fn seq_consecutive(&mut self, b: &Connection, cursor: u64) {
        let mut seqs: Vec<u64> = stream_messages(&b.seen)
            .iter()
            .filter_map(|m| m.seq)
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        let truncated = b
            .seen
            .iter()
            .any(|s| s.field_str("code") == Some("replay_truncated"));
        let gap = seqs.windows(2).find(|w| w[1] != w[0] + 1);
        let verdict = match (seqs.first(), gap) {
            (None, _) => Verdict::NotTested("B received no message with a seq".into()),
            (Some(_), Some(w)) => Verdict::Fail(format!(
                "seq {} follows seq {}: seq must grow by 1 per stored message",
                w[1], w[0]
            )),
            (Some(&first), None) if first != cursor + 1 && !truncated => Verdict::Fail(format!(
                "replay from last_seq={cursor} started at seq {first}, without replay_truncated"
            )),
            (Some(_), None) => Verdict::Pass,
        };
        self.item("seq_consecutive", STREAM_MSG, verdict, b.evidence(0));
    }

    /// The cursor decides the replay: `last_seq`, else `last_ts`, else nothing.
    async fn replay_after_cursor(
        &mut self,
        b: &Connection,
        cursor: u64,
        stream: &[StreamMessage],
        acked: &[Sent],
    ) -> Result<(), Outcome> {
        let mut evidence = Vec::new();
        let mut problems = Vec::new();
        if let Some(old) = stream
            .iter()
            .find(|m| m.seq.is_some_and(|seq| seq <= cursor))
        {
            problems.push(format!(
                "from last_seq={cursor}, B got {} with seq {}",
                old.id,
                old.seq.unwrap_or_default()
            ));
            evidence.extend(b.evidence(0));
        }
        // last_ts alone: everything stored after the first acked message's ts.
        let first = acked
            .first()
            .and_then(|sent| stream.iter().find(|m| m.id == sent.id));
        if let Some(ts) = first.and_then(|m| m.ts) {
            let expected: Vec<&str> = stream
                .iter()
                .filter(|m| m.ts.is_some_and(|t| t > ts))
                .map(|m| m.id.as_str())
                .collect();
            let sender = self.client("c");
            let mut c = self.open("C", &sender, Cursor::Ts(ts)).await?;
            wait_msgs(&mut c, &expected).await;
            c.collect_for(QUIET).await;
            let got = stream_messages(&c.seen);
            let missing: Vec<&&str> = expected
                .iter()
                .filter(|id| !got.iter().any(|m| &m.id == *id))
                .collect();
            let early: Vec<&StreamMessage> = got
                .iter()
                .filter(|m| m.ts.is_some_and(|t| t <= ts))
                .collect();
            if !missing.is_empty() || !early.is_empty() {
                problems.push(format!(
                    "from last_ts={ts} alone, C lacked {missing:?} and got {} at or before that ts",
                    early.len()
                ));
                evidence.extend(c.evidence(0));
            }
            self.finish(c).await;
        }
        // No cursor: no replay.
        let sender = self.client("d");
        let mut d = self.open("D", &sender, Cursor::None).await?;
        d.collect_for(QUIET.max(self.options.wait / 4)).await;
        let ours: Vec<&Sent> = acked
            .iter()
            .filter(|sent| d.seen.iter().any(|s| s.is_msg(&sent.id)))
            .collect();
        if !ours.is_empty() {
            problems.push(format!(
                "without last_seq or last_ts, D was replayed {} earlier messages",
                ours.len()
            ));
            evidence.extend(d.evidence(0));
        }
        self.finish(d).await;
        let verdict = if problems.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(problems.join("; "))
        };
        self.item("replay_after_cursor", SESSION_START, verdict, evidence);
        Ok(())
    }

    async fn dedup(
        &mut self,
        a: &mut Connection,
        e: &mut Connection,
        acked: &[Sent],
    ) -> Result<(), Outcome> {
        let [first, second, third] = acked else {
            let why = Verdict::NotTested("needs three acked messages (see ack_after_store)".into());
            for name in [
                "resend_acked_again",
                "id_conflict_other_data",
                "id_conflict_other_sender",
            ] {
                self.item(name, DEDUP, why.clone(), Vec::new());
            }
            return Ok(());
        };
        // The same sender resends, byte for byte: acked again, not fanned out again.
        let (mark_a, mark_e) = (a.seen.len(), e.seen.len());
        e.send_text(&first.frame()).await;
        let ack = e.wait_for(|s| s.is_ack(&first.id)).await;
        e.collect_for(QUIET).await;
        a.collect_for(QUIET).await;
        // A (the sender, if the server echoes) holds the message once; E resumed past it.
        let copies = |seen: &[Seen]| seen.iter().filter(|s| s.is_msg(&first.id)).count();
        let echoed = copies(&a.seen) > 1 || copies(&e.seen) > 0;
        let verdict = match (ack, echoed) {
            (None, _) => Verdict::Fail(format!(
                "the resend of {} (same client_id, same data) was not acked within {} ms",
                first.id,
                self.wait_ms()
            )),
            (Some(_), true) => Verdict::Fail(format!(
                "the resend of {} was delivered to the stream again",
                first.id
            )),
            (Some(_), false) => Verdict::Pass,
        };
        let mut evidence = e.evidence(mark_e);
        evidence.extend(a.evidence(mark_a));
        self.item("resend_acked_again", DEDUP, verdict, evidence);

        // The same sender, the same id, other data.
        let other = Sent {
            id: second.id.clone(),
            data: r#"{"other":"data"}"#.into(),
        };
        let verdict = self.conflict(e, &other, "with other data").await;
        self.item("id_conflict_other_data", DEDUP, verdict, e.evidence(mark_e));

        // Another sender, the same id and data.
        let sender_g = self.client("g");
        let mut g = self.open("G", &sender_g, Cursor::Seq(self.latest)).await?;
        let verdict = self.conflict(&mut g, third, "from another client_id").await;
        self.item("id_conflict_other_sender", DEDUP, verdict, g.evidence(0));
        self.finish(g).await;
        Ok(())
    }

    async fn conflict(&self, conn: &mut Connection, sent: &Sent, how: &str) -> Verdict {
        conn.send_text(&sent.frame()).await;
        let answer = conn
            .wait_for(|s| s.is_ack(&sent.id) || s.is_error_for(&sent.id))
            .await
            .map(|i| conn.seen[i].clone());
        match answer {
            Some(s) if s.field_str("code") == Some("id_conflict") => Verdict::Pass,
            Some(s) if s.kind() == Some("ack") => Verdict::Fail(format!(
                "an existing id {how} was acked: dedup must be per sender and check the content, or one client's message is silently dropped as another's duplicate"
            )),
            Some(s) => Verdict::Fail(format!(
                "an existing id {how} got {} instead of id_conflict",
                s.brief()
            )),
            None => Verdict::Fail(format!(
                "an existing id {how} got no answer within {} ms (expected error id_conflict with the id)",
                self.wait_ms()
            )),
        }
    }

    async fn bad_envelopes(&mut self, h: &mut Connection) {
        let no_data = self.next_id();
        let cases: Vec<(String, Message)> = vec![
            (
                "text that is not JSON".into(),
                Message::text("this is not JSON"),
            ),
            ("a JSON array".into(), Message::text("[1,2,3]")),
            (
                "an object without type".into(),
                Message::text(r#"{"kind":"msg"}"#),
            ),
            (
                "an unknown type".into(),
                Message::text(r#"{"type":"kit_unknown"}"#),
            ),
            (
                "a msg without data".into(),
                Message::text(format!(r#"{{"type":"msg","id":"{no_data}"}}"#)),
            ),
            ("a binary frame".into(), Message::binary(vec![1, 2, 3])),
        ];
        let mut problems = Vec::new();
        for (what, frame) in cases {
            if h.ended() {
                break;
            }
            h.send(frame).await;
            match h
                .wait_for(|s| s.kind() == Some("error") || matches!(s, Seen::Closed(..)))
                .await
            {
                Some(i) if matches!(h.seen[i], Seen::Closed(..)) => {
                    problems.push(format!(
                        "{what} ended the connection ({})",
                        h.seen[i].brief()
                    ));
                }
                Some(i) => {
                    let error = &h.seen[i];
                    if error.field_str("code").is_none() || error.field_str("message").is_none() {
                        problems.push(format!("{what}: error without code or message"));
                    } else if what == "a msg without data" && !error.is_error_for(&no_data) {
                        problems.push(format!(
                            "{what}: the error does not name the id, so a client would resend it forever"
                        ));
                    }
                }
                None => problems.push(format!(
                    "{what} got no error frame within {} ms (a silent drop)",
                    self.wait_ms()
                )),
            }
        }
        if !h.ended() {
            h.send(Message::Ping(b"still-open".to_vec().into())).await;
            if h.wait_for(|s| matches!(s, Seen::Pong(_))).await.is_none() && problems.is_empty() {
                problems.push("the connection stopped answering after the bad envelopes".into());
            }
        }
        let verdict = if problems.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(problems.join("; "))
        };
        self.item(
            "bad_envelopes_answered",
            BAD_ENVELOPES,
            verdict,
            h.evidence(0),
        );
    }

    async fn unknown_fields(&mut self, h: &mut Connection) -> Option<Sent> {
        let sent = self.message(r#"{"extra":"fields"}"#);
        let frame = format!(
            r#"{{"type":"msg","kit_unknown":{{"a":[1]}},"id":"{}","data":{},"also_unknown":true}}"#,
            sent.id, sent.data
        );
        let verdict = if h.ended() {
            Verdict::NotTested("the connection had ended (see bad_envelopes_answered)".into())
        } else {
            let mark = h.seen.len();
            h.send_text(&frame).await;
            match h
                .wait_for(|s| s.is_ack(&sent.id) || s.is_error_for(&sent.id))
                .await
            {
                Some(i) if h.seen[i].kind() == Some("ack") => Verdict::Pass,
                Some(i) => Verdict::Fail(format!(
                    "a msg with unknown fields got {}",
                    h.seen[i].brief()
                )),
                None => Verdict::Fail(format!(
                    "a msg with unknown fields was not acked within {} ms (evidence from frame {mark})",
                    self.wait_ms()
                )),
            }
        };
        let pass = verdict == Verdict::Pass;
        self.item(
            "unknown_fields_ignored",
            CONVENTIONS,
            verdict,
            h.evidence(0),
        );
        pass.then_some(sent)
    }

    /// Data common parsers refuse or change is refused with the id, not stored (§9.2).
    async fn non_portable(&mut self, h: &mut Connection) -> Vec<Sent> {
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        let cases = [self.message(&deep), self.message(r#"{"n":1e400}"#)];
        let mut problems = Vec::new();
        for sent in &cases {
            if h.ended() {
                problems.push("the connection ended before the check".into());
                break;
            }
            h.send_text(&sent.frame()).await;
            match h
                .wait_for(|s| s.is_ack(&sent.id) || s.is_error_for(&sent.id))
                .await
            {
                Some(i) if h.seen[i].kind() == Some("error") => {}
                Some(_) => problems.push(format!("{} was acked", describe(&sent.data))),
                None if h.ended() => {
                    problems.push(format!("{} ended the connection", describe(&sent.data)));
                    break;
                }
                None => problems.push(format!(
                    "{} got no error naming its id within {} ms",
                    describe(&sent.data),
                    self.wait_ms()
                )),
            }
        }
        let verdict = if problems.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(problems.join("; "))
        };
        self.item(
            "non_portable_data_refused",
            BAD_ENVELOPES,
            verdict,
            h.evidence(0),
        );
        cases.to_vec()
    }

    /// What F's replay says about dedup: each message once, conflicts and refusals not at all.
    fn stored_once(&mut self, f: &Connection, acked: &[Sent], refused: &[Sent]) {
        let mut counts: BTreeMap<&str, Vec<&Seen>> = BTreeMap::new();
        for seen in &f.seen {
            if seen.kind() == Some("msg")
                && let Some(id) = seen.field_str("id")
            {
                counts.entry(id).or_default().push(seen);
            }
        }
        let mut problems = Vec::new();
        for sent in acked {
            match counts.get(sent.id.as_str()).map(Vec::as_slice) {
                Some([one]) if same_message(one, sent) => {}
                Some([one]) => problems.push(format!(
                    "{} is stored with other data: {}",
                    sent.id,
                    one.brief()
                )),
                Some(many) if many.len() > 1 => {
                    problems.push(format!("{} is stored {} times", sent.id, many.len()))
                }
                _ => problems.push(format!("{} is missing from the replay", sent.id)),
            }
        }
        for sent in refused {
            if counts.contains_key(sent.id.as_str()) {
                problems.push(format!("the refused {} was stored", describe(&sent.data)));
            }
        }
        let verdict = if problems.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(problems.join("; "))
        };
        self.item("stored_once", DEDUP, verdict, f.evidence(0));
    }

    async fn token_required(&mut self) {
        let Some(_) = &self.options.token else {
            let why = "pass --token TOKEN if the server requires one".into();
            self.item(
                "token_required",
                STATUSES,
                Verdict::NotTested(why),
                Vec::new(),
            );
            return;
        };
        let sender = self.client("t");
        let opened = self
            .dialer
            .open_with("T", Some(&sender), Cursor::None, None)
            .await;
        let (verdict, evidence) = match opened {
            Err(OpenFailure::Status(401, _)) => (Verdict::Pass, Vec::new()),
            Err(other) => (
                Verdict::Fail(format!("without the token: {other} (expected 401)")),
                Vec::new(),
            ),
            Ok(mut conn) => {
                let closed = conn.wait_for(|s| matches!(s, Seen::Closed(..))).await;
                let verdict = match closed.map(|i| conn.seen[i].clone()) {
                    Some(Seen::Closed(Some(4401), _)) => Verdict::Pass,
                    _ => Verdict::Fail(
                        "an upgrade without the token was accepted (expected 401, or close 4401)"
                            .into(),
                    ),
                };
                let evidence = conn.evidence(0);
                self.finish(conn).await;
                (verdict, evidence)
            }
        };
        self.item("token_required", STATUSES, verdict, evidence);
    }

    /// Past its connection cap a server asks clients to come back later; a fatal answer
    /// would stop them for good.
    async fn full_server(&mut self) {
        const MOST: usize = 1000;
        let limit = match self.options.max_connections {
            None => {
                let why = "pass --max-connections N to check the answer past the cap".into();
                self.item(
                    "full_server_asks_to_retry",
                    STATUSES,
                    Verdict::NotTested(why),
                    Vec::new(),
                );
                return;
            }
            Some(n) if n > MOST => {
                let why =
                    format!("--max-connections {n} is over {MOST}: the kit would hold too many");
                self.item(
                    "full_server_asks_to_retry",
                    STATUSES,
                    Verdict::NotTested(why),
                    Vec::new(),
                );
                return;
            }
            Some(n) => n,
        };
        let sender = self.client("p");
        let mut held = Vec::new();
        // Connections the server has not yet released may count against the cap: the first
        // refusal at or before connection N + 1 is the one judged.
        let mut refusal = None;
        for n in 0..=limit {
            match self
                .dialer
                .open(&format!("P{n}"), Some(&sender), Cursor::Seq(self.latest))
                .await
            {
                Ok(conn) => held.push(conn),
                Err(failure) => {
                    refusal = Some(failure);
                    break;
                }
            }
        }
        let verdict = match refusal {
            Some(OpenFailure::Status(503 | 429, Some(_))) => Verdict::Pass,
            Some(OpenFailure::Status(status @ (503 | 429), None)) => Verdict::Fail(format!(
                "past the cap the upgrade got {status} without Retry-After: say when to come back"
            )),
            Some(OpenFailure::Status(status @ (401 | 403 | 404), _)) => Verdict::Fail(format!(
                "past the cap the upgrade got {status}, which stops clients for good: answer 503 with Retry-After"
            )),
            Some(other) => Verdict::Fail(format!(
                "past the cap: {other} (expected 503 with Retry-After)"
            )),
            None => {
                let last = held.last_mut().expect("limit + 1 connections");
                match last
                    .wait_for(|s| matches!(s, Seen::Closed(..)))
                    .await
                    .map(|i| last.seen[i].clone())
                {
                    Some(Seen::Closed(Some(1013), _)) => Verdict::Pass,
                    _ => Verdict::Fail(format!(
                        "{} connections were accepted and kept, with --max-connections {limit}",
                        limit + 1
                    )),
                }
            }
        };
        for conn in held {
            self.finish(conn).await;
        }
        self.item("full_server_asks_to_retry", STATUSES, verdict, Vec::new());
    }

    async fn oversized(&mut self) -> Result<(), Outcome> {
        let Some(limit) = self.options.max_message_size else {
            let why = "pass --max-message-size BYTES to check the server's limit".into();
            self.item(
                "oversized_message_refused",
                BAD_ENVELOPES,
                Verdict::NotTested(why),
                Vec::new(),
            );
            return Ok(());
        };
        let sender = self.client("s");
        let mut s = self.open("S", &sender, Cursor::Seq(self.latest)).await?;
        let big = self.message(&format!("\"{}\"", "x".repeat(limit)));
        s.send_text(&big.frame()).await;
        let answer = s
            .wait_for(|f| {
                f.is_ack(&big.id) || f.is_error_for(&big.id) || matches!(f, Seen::Closed(..))
            })
            .await
            .map(|i| s.seen[i].clone());
        let verdict = match answer {
            Some(Seen::Closed(Some(1009), _)) => Verdict::Pass,
            Some(seen) if seen.kind() == Some("error") => Verdict::Pass,
            Some(seen) if seen.kind() == Some("ack") => Verdict::Fail(format!(
                "a message of {} bytes, over the {limit}-byte limit, was acked",
                big.frame().len()
            )),
            Some(seen) => Verdict::Fail(format!(
                "expected close 1009 (or an error naming the id), got {}",
                seen.brief()
            )),
            None => Verdict::Fail(format!(
                "no answer within {} ms to a message over the limit",
                self.wait_ms()
            )),
        };
        let evidence = s.evidence(0);
        self.finish(s).await;
        self.item(
            "oversized_message_refused",
            BAD_ENVELOPES,
            verdict,
            evidence,
        );
        Ok(())
    }

    async fn replay_truncated(&mut self) -> Result<(), Outcome> {
        const MOST: usize = 100_000;
        let history = match self.options.history {
            None => {
                let why = "pass --history N (the server's replay window) to check it".into();
                self.item(
                    "replay_truncated",
                    SESSION_START,
                    Verdict::NotTested(why),
                    Vec::new(),
                );
                return Ok(());
            }
            Some(n) if n > MOST => {
                let why = format!("--history {n} is over {MOST}: the kit would write too much");
                self.item(
                    "replay_truncated",
                    SESSION_START,
                    Verdict::NotTested(why),
                    Vec::new(),
                );
                return Ok(());
            }
            Some(n) => n,
        };
        let sender = self.client("w");
        let mut w = self.open("W", &sender, Cursor::None).await?;
        let head = w
            .wait_for(|s| s.kind() == Some("hello"))
            .await
            .and_then(|i| w.seen[i].field_u64("seq"));
        let Some(head) = head else {
            let why = "needs the stream head from hello (see hello_first)".into();
            self.item(
                "replay_truncated",
                SESSION_START,
                Verdict::NotTested(why),
                Vec::new(),
            );
            self.finish(w).await;
            return Ok(());
        };
        let batch: Vec<Sent> = (0..=history)
            .map(|n| self.message(&n.to_string()))
            .collect();
        for sent in &batch {
            w.send_text(&sent.frame()).await;
        }
        let last = &batch[history].id;
        let acked = w.wait_for(|s| s.is_ack(last)).await.is_some();
        self.finish(w).await;
        if !acked {
            let why = format!(
                "the {} messages written were not all acked in time",
                history + 1
            );
            self.item(
                "replay_truncated",
                SESSION_START,
                Verdict::NotTested(why),
                Vec::new(),
            );
            return Ok(());
        }
        let sender = self.client("x");
        let mut x = self.open("X", &sender, Cursor::Seq(head)).await?;
        let first = x
            .wait_for(|s| {
                s.kind() == Some("msg") || s.field_str("code") == Some("replay_truncated")
            })
            .await
            .map(|i| x.seen[i].clone());
        let verdict = match first {
            Some(s) if s.kind() == Some("error") => Verdict::Pass,
            Some(s) => Verdict::Fail(format!(
                "{} messages written into a {history}-message history, last_seq={head} got {} before any replay_truncated",
                history + 1,
                s.brief()
            )),
            None => Verdict::Fail("neither replay_truncated nor a replay".into()),
        };
        let evidence = x.evidence(0);
        self.finish(x).await;
        self.item("replay_truncated", SESSION_START, verdict, evidence);
        Ok(())
    }

    async fn restart(&mut self) -> Result<(), Outcome> {
        let names = [
            ("acked_survive_restart", ACK),
            ("resend_after_restart_stored_once", DEDUP),
        ];
        let Some(hook) = self.options.restart.clone() else {
            for (name, section) in names {
                let why = "pass --restart-cmd CMD (kills and restarts the server) to check it";
                self.item(name, section, Verdict::NotTested(why.into()), Vec::new());
            }
            return Ok(());
        };
        let sender = self.client("r");
        let mut r = self.open("R", &sender, Cursor::None).await?;
        let head = r
            .wait_for(|s| s.kind() == Some("hello"))
            .await
            .and_then(|i| r.seen[i].field_u64("seq"))
            .unwrap_or(0);
        let before: Vec<Sent> = (0..2)
            .map(|n| self.message(&format!(r#"{{"before_restart":{n}}}"#)))
            .collect();
        for sent in &before {
            r.send_text(&sent.frame()).await;
        }
        let acked = wait_acks(&mut r, &before).await;
        self.finish(r).await;
        if acked.len() < before.len() {
            for (name, section) in names {
                let why = "the messages before the restart were not acked (see ack_after_store)";
                self.item(name, section, Verdict::NotTested(why.into()), Vec::new());
            }
            return Ok(());
        }
        if let Err(why) = hook().await {
            return Err(Outcome::CannotRun(format!("--restart-cmd: {why}")));
        }
        // The same client comes back, resumes and resends what it wrote, then one more message.
        let mut r2 = self.reopen("R2", &sender, Cursor::Seq(head)).await?;
        let after = self.message(r#"{"after_restart":true}"#);
        wait_msgs(&mut r2, &[&before[0].id, &before[1].id]).await;
        let survived = before
            .iter()
            .all(|sent| r2.seen.iter().any(|s| same_message(s, sent)));
        for sent in before.iter().chain([&after]) {
            r2.send_text(&sent.frame()).await;
        }
        let all: Vec<Sent> = before.iter().cloned().chain([after.clone()]).collect();
        let reacked = wait_acks(&mut r2, &all).await;
        let evidence = r2.evidence(0);
        self.finish(r2).await;
        let sender_check = self.client("r3");
        let mut r3 = self.open("R3", &sender_check, Cursor::Seq(head)).await?;
        let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
        wait_msgs(&mut r3, &ids).await;
        r3.collect_for(QUIET).await;
        let seq_of = |sent: &Sent| {
            r3.seen
                .iter()
                .find(|s| s.is_msg(&sent.id))
                .and_then(|s| s.field_u64("seq"))
        };
        let verdict = match (survived, seq_of(&before[1]), seq_of(&after)) {
            (false, _, _) => Verdict::Fail(
                "messages acked before the restart are not in the replay after it".into(),
            ),
            (true, Some(old), Some(new)) if new <= old => Verdict::Fail(format!(
                "after the restart a new message got seq {new}, not above the {old} stored before: the counter restarted"
            )),
            (true, _, _) => Verdict::Pass,
        };
        let mut shown = evidence.clone();
        shown.extend(r3.evidence(0));
        self.item("acked_survive_restart", ACK, verdict, shown.clone());
        let counts: Vec<usize> = all
            .iter()
            .map(|sent| r3.seen.iter().filter(|s| s.is_msg(&sent.id)).count())
            .collect();
        let verdict = if !matches!(self.items.last(), Some(i) if i.verdict == Verdict::Pass) {
            Verdict::NotTested(
                "the stream did not survive the restart (see acked_survive_restart)".into(),
            )
        } else if reacked.len() < all.len() {
            Verdict::Fail(format!(
                "{} of {} resent messages acked after the restart",
                reacked.len(),
                all.len()
            ))
        } else if counts.iter().any(|&n| n != 1) {
            Verdict::Fail(format!(
                "after resending, the replay holds the messages {counts:?} times (each should be there once)"
            ))
        } else {
            Verdict::Pass
        };
        self.item("resend_after_restart_stored_once", DEDUP, verdict, shown);
        self.finish(r3).await;
        Ok(())
    }

    /// Rules every connection of the run must have kept.
    fn stream_rules(&mut self) {
        let mut order = Vec::new();
        let mut numbers = Vec::new();
        let now = now_ms();
        for (label, seen) in &self.logs {
            let mut last: Option<u64> = None;
            for frame in seen {
                let Some(envelope) = frame.envelope() else {
                    continue;
                };
                let kind = frame.kind().unwrap_or_default();
                if kind == "msg"
                    && let Some(seq) = frame.field_u64("seq")
                {
                    if last.is_some_and(|last| seq <= last) {
                        order.push(format!(
                            "{label}: seq {seq} after seq {}",
                            last.unwrap_or_default()
                        ));
                    }
                    last = Some(seq);
                }
                if !matches!(kind, "msg" | "hello") {
                    continue;
                }
                for field in ["seq", "ts"] {
                    match envelope.get(field) {
                        None if kind == "hello" => {}
                        None => {}
                        Some(value) => match value.as_u64() {
                            Some(n) if n <= MAX_SAFE_INTEGER => {
                                if field == "ts" && now.abs_diff(n) > CLOCK_SLACK_MS {
                                    numbers.push(format!(
                                        "{label}: {kind} ts {n} is not milliseconds since the epoch near now ({now})"
                                    ));
                                }
                            }
                            _ => numbers.push(format!(
                                "{label}: {kind} {field} {value} is not an integer within 2^53 - 1"
                            )),
                        },
                    }
                }
            }
        }
        let verdict = |problems: &[String]| match problems.first() {
            None => Verdict::Pass,
            Some(first) => Verdict::Fail(format!("{first} ({} in all)", problems.len())),
        };
        self.item(
            "seq_strictly_increasing",
            SESSION_START,
            verdict(&order),
            order.clone(),
        );
        self.item(
            "numbers_in_range",
            CONVENTIONS,
            verdict(&numbers),
            numbers.clone(),
        );
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

fn describe(data: &str) -> String {
    if data.starts_with("[[") {
        "data nested 65 levels deep".into()
    } else {
        format!("data {data}")
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

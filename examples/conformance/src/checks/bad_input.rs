//! Frames a server must refuse without losing the connection (§9.2), and unknown fields it
//! must ignore (§1).

use super::*;

impl Run<'_> {
    pub(super) async fn bad_envelopes(&mut self, h: &mut Connection) {
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
        let verdict = verdict_from(problems);
        self.item(
            "bad_envelopes_answered",
            BAD_ENVELOPES,
            verdict,
            h.evidence(0),
        );
    }

    pub(super) async fn unknown_fields(&mut self, h: &mut Connection) -> Option<Sent> {
        let sent = self.message(r#"{"extra":"fields"}"#);
        let frame = format!(
            r#"{{"type":"msg","kit_unknown":{{"a":[1]}},"id":"{}","data":{},"also_unknown":true}}"#,
            sent.id, sent.data
        );
        let verdict = if h.ended() {
            Verdict::NotTested("the connection had ended (see bad_envelopes_answered)".into())
        } else {
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
                    "a msg with unknown fields was not acked within {} ms",
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

    /// Data common parsers refuse or change is refused with the id, not stored (§9.2). Returns
    /// what was sent, each with how to call it.
    pub(super) async fn non_portable(&mut self, h: &mut Connection) -> Vec<(&'static str, Sent)> {
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        let cases = vec![
            ("data nested 65 levels deep", self.message(&deep)),
            ("data {\"n\":1e400}", self.message(r#"{"n":1e400}"#)),
        ];
        let mut problems = Vec::new();
        for (what, sent) in &cases {
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
                Some(_) => problems.push(format!("{what} was acked")),
                None if h.ended() => {
                    problems.push(format!("{what} ended the connection"));
                    break;
                }
                None => problems.push(format!(
                    "{what} got no error naming its id within {} ms",
                    self.wait_ms()
                )),
            }
        }
        let verdict = verdict_from(problems);
        self.item(
            "non_portable_data_refused",
            BAD_ENVELOPES,
            verdict,
            h.evidence(0),
        );
        cases
    }

    pub(super) async fn oversized(&mut self) -> Result<(), Outcome> {
        let Some(limit) = self.options.max_message_size else {
            let why = "pass --max-message-size BYTES to check the server's limit";
            self.untested("oversized_message_refused", BAD_ENVELOPES, why);
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
}

//! What a connection gets first (§4): the head in `hello`, the replay the cursor asks for, in
//! order and before live traffic, `seq` growing by one, and `replay_truncated` past the history.

use super::*;

impl Run<'_> {
    /// `hello` first, with integers; the head it reports.
    pub(super) fn hello_first(&mut self, a: &Connection, first: Option<&Seen>) -> Option<u64> {
        let head = first.and_then(|s| s.field_u64("seq"));
        let verdict = match first {
            Some(seen) if seen.kind() == Some("hello") => {
                if head.is_some() && seen.field_u64("ts").is_some() {
                    Verdict::Pass
                } else {
                    Verdict::Fail("hello without integer seq and ts".into())
                }
            }
            Some(other) => Verdict::Fail(format!(
                "the first frame was {} instead of hello",
                other.brief()
            )),
            None => Verdict::Fail(format!(
                "no frame within {} ms of the upgrade",
                self.wait_ms()
            )),
        };
        let pass = verdict == Verdict::Pass;
        self.item("hello_first", SESSION_START, verdict, a.evidence(0));
        head.filter(|_| pass)
    }

    pub(super) fn replay_before_live(&mut self, acked: &[Sent], live: &Sent, b: &Connection) {
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

    pub(super) fn hello_head(&mut self, b: &Connection, acked: &[Sent]) {
        if !self.passed("ack_after_store") {
            let why = "needs messages known to be stored (see ack_after_store)";
            self.untested("hello_head", SESSION_START, why);
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

    pub(super) fn seq_consecutive(&mut self, b: &Connection, cursor: u64) {
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
    pub(super) async fn replay_after_cursor(
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
        let verdict = verdict_from(problems);
        self.item("replay_after_cursor", SESSION_START, verdict, evidence);
        Ok(())
    }

    pub(super) async fn replay_truncated(&mut self) -> Result<(), Outcome> {
        const MOST: usize = 100_000;
        let history = match self.options.history {
            None => {
                let why = "pass --history N (the server's replay window) to check it";
                self.untested("replay_truncated", SESSION_START, why);
                return Ok(());
            }
            Some(n) if n > MOST => {
                let why = format!("--history {n} is over {MOST}: the kit would write too much");
                self.untested("replay_truncated", SESSION_START, why);
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
            let why = "needs the stream head from hello (see hello_first)";
            self.untested("replay_truncated", SESSION_START, why);
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
            self.untested("replay_truncated", SESSION_START, why);
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
}

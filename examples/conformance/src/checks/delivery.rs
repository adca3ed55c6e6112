//! Pings answered, acks only for what is stored, dedup by sender and content (§5.2, §6.2,
//! §7.1, §8), and, with a restart hook, what survives a restart.

use super::*;

impl Run<'_> {
    pub(super) async fn json_ping(&mut self, a: &mut Connection) -> bool {
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

    pub(super) async fn websocket_ping(&mut self, a: &mut Connection) {
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

    pub(super) fn ack_after_store(
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

    pub(super) async fn dedup(
        &mut self,
        a: &mut Connection,
        e: &mut Connection,
        acked: &[Sent],
    ) -> Result<(), Outcome> {
        let [first, second, third] = acked else {
            for name in [
                "resend_acked_again",
                "id_conflict_other_data",
                "id_conflict_other_sender",
            ] {
                let why = "needs three acked messages (see ack_after_store)";
                self.untested(name, DEDUP, why);
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

    pub(super) async fn conflict(&self, conn: &mut Connection, sent: &Sent, how: &str) -> Verdict {
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

    /// What F's replay says about dedup: each message once, conflicts and refusals not at all.
    pub(super) fn stored_once(
        &mut self,
        f: &Connection,
        acked: &[Sent],
        refused: &[(&'static str, Sent)],
    ) {
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
        for (what, sent) in refused {
            if counts.contains_key(sent.id.as_str()) {
                problems.push(format!("the refused {what} was stored"));
            }
        }
        let verdict = verdict_from(problems);
        self.item("stored_once", DEDUP, verdict, f.evidence(0));
    }

    pub(super) async fn restart(&mut self) -> Result<(), Outcome> {
        let names = [
            ("acked_survive_restart", ACK),
            ("resend_after_restart_stored_once", DEDUP),
        ];
        let Some(hook) = self.options.restart.clone() else {
            for (name, section) in names {
                let why = "pass --restart-cmd CMD (kills and restarts the server) to check it";
                self.untested(name, section, why);
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
                self.untested(name, section, why);
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
        let verdict = if !self.passed("acked_survive_restart") {
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
}

//! The upgrade refusals of §10 a server can be made to show: a missing token, a full server.

use super::*;

impl Run<'_> {
    pub(super) async fn token_required(&mut self) {
        let Some(_) = &self.options.token else {
            let why = "pass --token TOKEN if the server requires one";
            self.untested("token_required", STATUSES, why);
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
    pub(super) async fn full_server(&mut self) {
        const MOST: usize = 1000;
        let limit = match self.options.max_connections {
            None => {
                let why = "pass --max-connections N to check the answer past the cap";
                self.untested("full_server_asks_to_retry", STATUSES, why);
                return;
            }
            Some(n) if n > MOST => {
                let why =
                    format!("--max-connections {n} is over {MOST}: the kit would hold too many");
                self.untested("full_server_asks_to_retry", STATUSES, why);
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
}

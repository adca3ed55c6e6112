//! The rules every connection of a run must have kept (§1, §4), judged from all their frames.

use super::*;

impl Run<'_> {
    /// Rules every connection of the run must have kept.
    pub(super) fn stream_rules(&mut self) {
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
                    let Some(value) = envelope.get(field) else {
                        continue;
                    };
                    let problem = match value.as_u64() {
                        Some(n) if n <= MAX_SAFE_INTEGER => (field == "ts"
                            && now.abs_diff(n) > CLOCK_SLACK_MS)
                            .then(|| {
                                format!(
                                    "{label}: {kind} ts {n} is not milliseconds since the epoch near now ({now})"
                                )
                            }),
                        _ => Some(format!(
                            "{label}: {kind} {field} {value} is not an integer within 2^53 - 1"
                        )),
                    };
                    numbers.extend(problem);
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
            order,
        );
        self.item("numbers_in_range", CONVENTIONS, verdict(&numbers), numbers);
    }
}

//! The kit's findings and how they are shown: a table for people, JSON for CI, and the exit
//! code (0 only when every tested item passed).

use serde_json::json;

/// What one item of the checklist came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The server did what the protocol asks.
    Pass,
    /// It did not; the text says what it did instead.
    Fail(String),
    /// The kit could not judge it; the text says why (an option missing, an item it needs
    /// failed).
    NotTested(String),
}

/// One checklist item: a stable name, the protocol section that states the rule, the verdict,
/// and on failure the frames that show it.
#[derive(Clone, Debug)]
pub struct Item {
    /// Stable name, for scripts and for reading the docs.
    pub name: &'static str,
    /// The section of `docs/protocol.md` with the rule.
    pub section: Section,
    /// What the server did.
    pub verdict: Verdict,
    /// The frames (or HTTP answers) behind a failure.
    pub evidence: Vec<String>,
}

/// A section of `docs/protocol.md`: its number and its heading's anchor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section {
    /// "§4", "§7.1" …
    pub number: &'static str,
    /// The heading's anchor in the document.
    pub anchor: &'static str,
}

impl Section {
    /// The link to the section, relative to the repository root.
    pub fn link(&self) -> String {
        format!("docs/protocol.md#{}", self.anchor)
    }
}

/// The result of a run.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The kit spoke to the server; one item each.
    Checked(Vec<Item>),
    /// The server does not answer as a steadyws server at all (a WebSocket server speaking
    /// another protocol): one line says what it did.
    NotSteadyws(String),
    /// The kit could not run: bad options, an unreachable URL, not a WebSocket endpoint.
    CannotRun(String),
}

impl Outcome {
    /// 0 when every tested item passed, 1 when one failed (or the server speaks another
    /// protocol), 2 when the kit could not run.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Checked(items)
                if items.iter().all(|i| !matches!(i.verdict, Verdict::Fail(_))) =>
            {
                0
            }
            Outcome::Checked(_) | Outcome::NotSteadyws(_) => 1,
            Outcome::CannotRun(_) => 2,
        }
    }

    /// The readable report: one line per item, then the evidence of each failure.
    pub fn table(&self, url: &str) -> String {
        let items = match self {
            Outcome::Checked(items) => items,
            Outcome::NotSteadyws(why) => {
                return format!("FAIL {url} does not speak the steadyws protocol: {why}\n");
            }
            Outcome::CannotRun(why) => return format!("cannot check {url}: {why}\n"),
        };
        let mut out = format!("steadyws conformance of {url}\n\n");
        let width = items.iter().map(|i| i.name.len()).max().unwrap_or(0);
        for item in items {
            let (verdict, why) = match &item.verdict {
                Verdict::Pass => ("pass", String::new()),
                Verdict::Fail(why) => ("FAIL", format!(": {why}")),
                Verdict::NotTested(why) => ("not tested", format!(": {why}")),
            };
            let line = format!(
                "{verdict:<10}  {:<width$}  {:<6}{why}",
                item.name, item.section.number
            );
            out += line.trim_end();
            out += "\n";
        }
        let count = |want: fn(&Verdict) -> bool| items.iter().filter(|i| want(&i.verdict)).count();
        let failed = count(|v| matches!(v, Verdict::Fail(_)));
        out += &format!(
            "\n{} passed, {failed} failed, {} not tested\n",
            count(|v| *v == Verdict::Pass),
            count(|v| matches!(v, Verdict::NotTested(_)))
        );
        for item in items
            .iter()
            .filter(|i| matches!(i.verdict, Verdict::Fail(_)))
        {
            out += &format!("\n{} ({}):\n", item.name, item.section.link());
            for line in &item.evidence {
                out += &format!("    {line}\n");
            }
        }
        out
    }

    /// The report for machines.
    pub fn json(&self, url: &str) -> serde_json::Value {
        match self {
            Outcome::Checked(items) => {
                let rows: Vec<_> = items
                    .iter()
                    .map(|item| {
                        let (verdict, detail) = match &item.verdict {
                            Verdict::Pass => ("pass", None),
                            Verdict::Fail(why) => ("fail", Some(why)),
                            Verdict::NotTested(why) => ("not_tested", Some(why)),
                        };
                        json!({
                            "name": item.name,
                            "section": item.section.number,
                            "link": item.section.link(),
                            "verdict": verdict,
                            "detail": detail,
                            "evidence": item.evidence,
                        })
                    })
                    .collect();
                let count = |v: &str| rows.iter().filter(|r| r["verdict"] == v).count();
                json!({
                    "url": url,
                    "outcome": if self.exit_code() == 0 { "pass" } else { "fail" },
                    "passed": count("pass"),
                    "failed": count("fail"),
                    "not_tested": count("not_tested"),
                    "items": rows,
                })
            }
            Outcome::NotSteadyws(why) => json!({
                "url": url, "outcome": "not_steadyws", "detail": why, "items": [],
            }),
            Outcome::CannotRun(why) => json!({
                "url": url, "outcome": "cannot_run", "detail": why, "items": [],
            }),
        }
    }
}

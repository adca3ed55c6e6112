//! The steadyws server conformance kit: connects to a running server and tells, item by item,
//! whether it keeps the envelope protocol of `docs/protocol.md` (the §13 checklist, as far as
//! it shows from outside). [`run`] does the checking; [`report`] shows the result.

mod checks;
mod connection;
pub mod options;
pub mod report;

pub use checks::run;
pub use options::{Options, RestartHook};
pub use report::{Item, Outcome, Section, Verdict};

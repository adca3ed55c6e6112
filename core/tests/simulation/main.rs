//! The engine in a simulated world: scenario tests for each rule, and randomised fault schedules
//! checked against the reliability invariants.

mod harness;
mod properties;
mod scenarios;

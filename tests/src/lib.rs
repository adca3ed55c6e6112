//! Test infrastructure shared by the end-to-end suites, the demo and (later) the chaos suite:
//! a fault-injecting TCP proxy and helpers that run real servers on 127.0.0.1.

pub mod fault_proxy;

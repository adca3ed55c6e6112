//! Test infrastructure shared by the end-to-end suites and the demo: a fault-injecting TCP proxy,
//! an HTTP CONNECT proxy, test certificates, the reference server and a durable client as
//! killable processes, nginx, and helpers to wait for socket events with a deadline.

pub mod chaos;
pub mod client_process;
pub mod connect_proxy;
pub mod durable_client;
pub mod fault_proxy;
pub mod nginx;
pub mod pki;
pub mod process;
pub mod support;

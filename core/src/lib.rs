//! steadyws: a reliability core for WebSocket connections.
//!
//! Messages survive dead sockets, suspended apps, proxies, flapping networks and server
//! restarts: never lost, never delivered twice, in order. Today the crate holds the sans-IO
//! [`engine`]; the network driver and the bindings build on it.

pub mod engine;

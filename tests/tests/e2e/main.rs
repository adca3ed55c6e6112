//! End-to-end tests over real sockets on 127.0.0.1: the public `Socket` against the reference
//! server (embedded or as a killable process), through fault, CONNECT and nginx proxies, over ws
//! and wss. Every wait is bounded.

mod basics;
mod delivery;
mod diagnostics;
mod faults;
mod proxies;
mod tls;

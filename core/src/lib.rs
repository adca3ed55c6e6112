//! steadyws: a reliability core for WebSocket connections.
//!
//! Messages survive dead sockets, suspended apps, proxies, flapping networks and server
//! restarts: never lost, never delivered twice, in order. [`Socket`] is the API; the rules live
//! in the sans-IO [`engine`], driven over real networks by a thin tokio pump in `net`.

pub mod engine;
mod error;
mod net;
mod socket;
pub(crate) mod store;

pub use engine::{
    AppState, Cause, Config, ConfigError, ConnectionError, Event, FailReason, InboundMessage,
    MessageId, NetworkStatus, Payload, ResumeCursor, SendError, SendFailure, State, Stats,
    UrlError,
};
pub use error::Error;
pub use socket::{
    Delivery, HeadersProvider, Opening, PendingMessage, Socket, SocketConfig, Status, StatusWatch,
    StoreConfig,
};
pub use store::StoreError;

/// SHA-256 of a DER certificate's public key (SubjectPublicKeyInfo), hex: the value
/// [`SocketConfig::pinned_spki_sha256`] expects. `None` if the certificate does not parse.
pub fn spki_sha256_hex(cert_der: &[u8]) -> Option<String> {
    net::tls::spki_sha256_hex(cert_der)
}

/// The README's Rust examples, compiled as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

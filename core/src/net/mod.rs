//! The network driver: a thin tokio pump that feeds real transport events and timeouts into the
//! [`Engine`](crate::engine::Engine) and performs its instructions over tokio-tungstenite and
//! rustls. No reliability rule lives here; everything decided is decided by the engine.

pub(crate) mod connection;
pub(crate) mod dial;
pub(crate) mod entropy;
pub(crate) mod inbox;
pub(crate) mod pump;
pub(crate) mod reading;
pub(crate) mod redact;
pub(crate) mod runtime;
pub(crate) mod tls;
pub(crate) mod waiters;
pub(crate) mod write_queue;

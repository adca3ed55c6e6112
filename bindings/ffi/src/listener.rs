//! The optional push-style alternative to `next_event`: a host object called for every event.

use crate::event::SocketEvent;

/// What a listener may report back; anything it throws arrives here instead of panicking Rust.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ListenerError {
    /// The host's listener threw.
    #[error("the event listener failed: {reason}")]
    Failed {
        /// The host's error text (not `message`, which Kotlin exceptions reserve).
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for ListenerError {
    fn from(err: uniffi::UnexpectedUniFFICallbackError) -> Self {
        ListenerError::Failed { reason: err.reason }
    }
}

/// Receives every event, in order, on a steadyws thread. Keep it quick: hand work to your own
/// queue. Events delivered to a listener are not also returned by `next_event`.
#[uniffi::export(foreign)]
pub trait SocketListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: SocketEvent) -> Result<(), ListenerError>;
}

//! UniFFI bindings of steadyws: thin wrappers that translate the Rust API into records, enums,
//! one object and one error type that Swift, Kotlin and Python can use. No reliability logic
//! lives here; every method forwards to [`steadyws::Socket`].
//!
//! Names per language come from the workspace's `uniffi.toml` (this crate's `uniffi.toml` is a
//! symlink to it, the file UniFFI reads from the crate root).

#[cfg(target_os = "android")]
mod android;
mod error;
mod event;
mod listener;
mod options;
mod packed;
mod socket;
mod wait;

pub use error::SteadyError;
pub use event::{
    ConnectionErrorKind, ConnectionProblem, MessageData, OpenOutcome, ResumePosition,
    SendFailureKind, SendOutcome, SocketEvent, SocketState, SocketStats, StateCause,
};
pub use listener::{ListenerError, SocketListener};
pub use options::{BackgroundMode, HeartbeatKind, SocketOptions};
pub use packed::{PackedEvents, PlacedEvent};
pub use socket::{AppLifecycle, NativeSocket, NetworkStatus, live_native_sockets};
pub use wait::WaitCancellation;

uniffi::setup_scaffolding!("steadyws");

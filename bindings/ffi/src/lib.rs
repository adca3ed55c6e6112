//! UniFFI bindings of steadyws: thin wrappers that translate the Rust API into records, enums,
//! two objects and one error that Swift, Kotlin and Python wrap in their idioms. The rules every
//! host shares (one reader, the batch a take holds, what a failed wait is called) are decided
//! here, once; every method forwards to [`steadyws::Socket`].
//!
//! Names per language come from the workspace's `uniffi.toml` (this crate's `uniffi.toml` is a
//! symlink to it, the file UniFFI reads from the crate root). `bindings/README.md` has the
//! vocabulary each host follows.

#[cfg(target_os = "android")]
mod android;
mod config;
mod error;
mod event;
mod packed;
mod reading;
mod socket;
mod wait;
mod watch;

pub use config::{BackgroundMode, HeartbeatKind, SocketConfig, background_disconnect_after_ms};
pub use error::{ErrorKind, NativeError};
pub use event::{
    ConnectionErrorKind, ConnectionProblem, MessageData, PendingMessage, SendFailureKind,
    SocketEvent, SocketState, SocketStats, StateCause,
};
pub use packed::{PackedEvents, PackedLayout, PlacedEvent, packed_layout};
pub use socket::{NativeSocket, live_native_sockets};
pub use wait::WaitCancellation;
pub use watch::{SocketStatus, StatusWatch};

uniffi::setup_scaffolding!("steadyws");

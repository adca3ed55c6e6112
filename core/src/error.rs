//! `Error`: everything the [`Socket`](crate::Socket) API can refuse, in one type: an unusable
//! configuration, a message `send` refused, or a store that cannot be used. Each variant keeps
//! the layer's own error, whose message says what is wrong and what to do.

use crate::engine::{ConfigError, SendError};
use crate::store::StoreError;

/// Why a [`Socket`](crate::Socket) call was refused. Nothing happened: no socket was made, no
/// message queued, nothing cancelled.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    /// The configuration cannot be used (`Socket::new`).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `send` refused the message.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The durable store cannot be opened or used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The socket was closed: `close` is for good.
    #[error(
        "the socket is closed: close() is final; make a new socket (with a store, on the same store to send what was pending)"
    )]
    Closed,
    /// The durable store could not keep the message `send` was given.
    #[error(
        "the message could not be stored durably, so it was not queued and will not be resent: {0}"
    )]
    NotStored(StoreError),
}

//! The one error hosts see, with one kind per situation: each language raises it as its own
//! single error type (`SteadyWsError` in Python, `SteadyWsException` in Kotlin, `SteadyWSError`
//! in Swift) carrying the same `kind`, so the same mistake reads the same everywhere.

use steadyws::{ConfigError, Delivery, Error, Opening, SendError, SendFailure, StoreError};

use crate::event::send_failure;

/// What went wrong, one kind per situation. The host error's message says the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum ErrorKind {
    /// The URL is not a usable `ws://` or `wss://` URL.
    InvalidUrl,
    /// A setting is out of range.
    InvalidOptions,
    /// The payload is not JSON, or JSON the protocol's portable-JSON rule forbids (nested
    /// deeper than 64 levels, a number no 64-bit float can hold); the message says which.
    NotJson,
    /// The payload kind needs the other mode.
    WrongMode,
    /// The message alone is larger than the outbox accepts.
    MessageTooLarge,
    /// The outbox is full (policy: reject new).
    OutboxFull,
    /// Another socket or process has the store open: one owner at a time.
    StoreInUse,
    /// A newer steadyws wrote the store; it is left untouched.
    StoreNewerFormat,
    /// The store cannot be opened or written (from `send`: the message was not queued).
    StoreFailed,
    /// The store file was damaged and rebuilt (raised by the hosts' message streams, which
    /// carry no other events).
    StoreRecovered,
    /// Another reader is taking this socket's events: one reader at a time.
    AlreadyReading,
    /// The message will not be acknowledged (see `send_failure`).
    SendFailed,
    /// The wait's time limit passed; the message stays queued, the socket keeps connecting.
    TimedOut,
    /// The wait was cancelled; the message stays queued, the socket keeps connecting.
    Cancelled,
    /// The socket was closed first (or before the call).
    Closed,
    /// The message is neither queued nor among the recently settled ones.
    UnknownMessage,
    /// The socket gave up connecting (its state says why and whether retrying may help).
    ConnectionFailed,
}

/// The FFI's error: every host turns it into its one error type.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum NativeError {
    /// A refused call or a wait that ended without success.
    #[error("{detail}")]
    Failure {
        /// What kind of failure.
        kind: ErrorKind,
        /// What is wrong and what to do (`detail`, not `message`, which Kotlin exceptions
        /// reserve).
        detail: String,
        /// The message concerned, for waits and send failures.
        message_id: Option<String>,
        /// Why the message will not be acknowledged, for `SendFailed`.
        send_failure: Option<crate::event::SendFailureKind>,
    },
}

impl NativeError {
    pub(crate) fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        NativeError::Failure {
            kind,
            detail: detail.into(),
            message_id: None,
            send_failure: None,
        }
    }

    fn about(kind: ErrorKind, detail: impl Into<String>, id: &str) -> Self {
        NativeError::Failure {
            kind,
            detail: detail.into(),
            message_id: Some(id.to_owned()),
            send_failure: None,
        }
    }

    /// A wait on the side ended without the message being acknowledged.
    pub(crate) fn undelivered(id: &str, delivery: Delivery) -> Option<Self> {
        let (kind, detail) = match delivery {
            Delivery::Acked => return None,
            Delivery::Failed(reason) => return Some(Self::send_failed(id, reason)),
            Delivery::TimedOut => (
                ErrorKind::TimedOut,
                format!(
                    "message {id} was not acknowledged within the wait; it stays queued and is still sent"
                ),
            ),
            Delivery::Closed => (
                ErrorKind::Closed,
                format!(
                    "the socket was closed before message {id} was acknowledged; with a store, the next socket on it resends the message"
                ),
            ),
            Delivery::Unknown => (
                ErrorKind::UnknownMessage,
                format!(
                    "message {id} is neither queued nor among the recently settled; check the id `send` returned"
                ),
            ),
        };
        Some(Self::about(kind, detail, id))
    }

    /// Message `id` will not be acknowledged, for `reason`.
    pub(crate) fn send_failed(id: &str, reason: SendFailure) -> Self {
        let (kind, explanation) = send_failure(reason);
        NativeError::Failure {
            kind: ErrorKind::SendFailed,
            detail: format!("message {id} will not be acknowledged: {explanation}"),
            message_id: Some(id.to_owned()),
            send_failure: Some(kind),
        }
    }

    /// Waiting for the connection ended without it opening.
    pub(crate) fn not_open(opening: Opening) -> Option<Self> {
        let (kind, detail) = match opening {
            Opening::Open => return None,
            Opening::Failed(state) => (ErrorKind::ConnectionFailed, state.to_string()),
            Opening::Closed => (
                ErrorKind::Closed,
                "the socket was closed before it opened".to_owned(),
            ),
            Opening::TimedOut => (
                ErrorKind::TimedOut,
                "the socket did not open within the wait; it keeps connecting".to_owned(),
            ),
        };
        Some(Self::new(kind, detail))
    }

    /// A take of events ended because its `WaitCancellation` was cancelled.
    pub(crate) fn read_cancelled() -> Self {
        Self::new(
            ErrorKind::Cancelled,
            "the read was cancelled; the next read gets the events it did not take",
        )
    }

    /// A wait ended because its `WaitCancellation` was cancelled.
    pub(crate) fn cancelled(id: Option<&str>) -> Self {
        match id {
            Some(id) => Self::about(
                ErrorKind::Cancelled,
                format!(
                    "the wait for message {id} was cancelled; the message stays queued and is still sent"
                ),
                id,
            ),
            None => Self::new(
                ErrorKind::Cancelled,
                "the wait for the connection was cancelled; the socket keeps connecting",
            ),
        }
    }
}

impl From<Error> for NativeError {
    fn from(err: Error) -> Self {
        let kind = match &err {
            Error::Config(ConfigError::Url(_)) => ErrorKind::InvalidUrl,
            Error::Config(ConfigError::Invalid { .. }) => ErrorKind::InvalidOptions,
            Error::Send(SendError::NotJson { .. } | SendError::NotPortable { .. }) => {
                ErrorKind::NotJson
            }
            Error::Send(SendError::WrongMode { .. }) => ErrorKind::WrongMode,
            Error::Send(SendError::TooLarge { .. }) => ErrorKind::MessageTooLarge,
            Error::Send(SendError::OutboxFull { .. }) => ErrorKind::OutboxFull,
            Error::Closed => ErrorKind::Closed,
            Error::Store(store) | Error::NotStored(store) => match store {
                StoreError::InUse { .. } => ErrorKind::StoreInUse,
                StoreError::NewerFormat { .. } => ErrorKind::StoreNewerFormat,
                StoreError::Failed { .. } => ErrorKind::StoreFailed,
            },
        };
        Self::new(kind, err.to_string())
    }
}

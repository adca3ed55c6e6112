//! The one error type hosts see: Swift `Error`, Kotlin `SteadyException`, Python exceptions.

use steadyws::{ConfigError, SendError, StoreError};

/// Why a call was refused. The message says what is wrong and what to do.
///
/// Flat: each host sees the variant plus its message as the exception text (a `message` field
/// would clash with Kotlin's `Throwable.message`).
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum SteadyError {
    /// The URL is not a usable ws:// or wss:// URL.
    #[error("{message}")]
    InvalidUrl {
        /// What is wrong and the ws/wss form to use.
        message: String,
    },
    /// A setting is out of range.
    #[error("{message}")]
    InvalidConfig {
        /// Which setting and what is accepted.
        message: String,
    },
    /// The payload is not JSON (envelope mode).
    #[error("{message}")]
    NotJson {
        /// The parser's complaint.
        message: String,
    },
    /// The payload kind needs the other mode.
    #[error("{message}")]
    WrongMode {
        /// Which mode to use.
        message: String,
    },
    /// The message alone is larger than the outbox holds.
    #[error("{message}")]
    MessageTooLarge {
        /// Sizes involved.
        message: String,
    },
    /// The outbox is full (policy: reject new).
    #[error("{message}")]
    OutboxFull {
        /// Sizes and what to do.
        message: String,
    },
    /// Another socket or process has the store open: one owner at a time.
    #[error("{message}")]
    StoreInUse {
        /// Which store, and what to do.
        message: String,
    },
    /// A newer steadyws wrote the store; it is left untouched.
    #[error("{message}")]
    StoreNewerFormat {
        /// Which store and which formats.
        message: String,
    },
    /// The store cannot be opened or written (from `send`: the message was not queued).
    #[error("{message}")]
    StoreFailed {
        /// What the system reported.
        message: String,
    },
}

impl From<StoreError> for SteadyError {
    fn from(err: StoreError) -> Self {
        let message = err.to_string();
        SteadyError::from_store(err, message)
    }
}

impl SteadyError {
    fn from_store(err: StoreError, message: String) -> Self {
        match err {
            StoreError::InUse { .. } => SteadyError::StoreInUse { message },
            StoreError::NewerFormat { .. } => SteadyError::StoreNewerFormat { message },
            StoreError::Failed { .. } => SteadyError::StoreFailed { message },
        }
    }
}

impl From<ConfigError> for SteadyError {
    fn from(err: ConfigError) -> Self {
        let message = err.to_string();
        match err {
            ConfigError::Url(_) => SteadyError::InvalidUrl { message },
            ConfigError::Invalid { .. } => SteadyError::InvalidConfig { message },
            ConfigError::Store(err) => SteadyError::from_store(err, message),
        }
    }
}

impl From<SendError> for SteadyError {
    fn from(err: SendError) -> Self {
        let message = err.to_string();
        match err {
            SendError::NotJson { .. } => SteadyError::NotJson { message },
            SendError::WrongMode { .. } => SteadyError::WrongMode { message },
            SendError::TooLarge { .. } => SteadyError::MessageTooLarge { message },
            SendError::OutboxFull { .. } => SteadyError::OutboxFull { message },
            SendError::Store(err) => SteadyError::from_store(err, message),
        }
    }
}

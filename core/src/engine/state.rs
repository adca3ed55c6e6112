//! The observable connection state.

use std::fmt;
use std::time::Duration;

use super::error::ConnectionError;

/// Where the socket is. Every change is reported as [`Event::StateChanged`](super::Event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Built, `connect` not called yet.
    Idle,
    /// A transport is being opened (attempt counts from 1 since the last stable connection).
    Connecting {
        /// Attempt number.
        attempt: u32,
    },
    /// Connected; messages flow.
    Open,
    /// Waiting before the next attempt.
    Reconnecting {
        /// The attempt that will be made.
        attempt: u32,
        /// The delay chosen.
        retry_in: Duration,
    },
    /// Disconnected because the app is in the background (policy `DisconnectAfter`).
    Suspended,
    /// The device reported no network; no attempts until it returns.
    WaitingForNetwork,
    /// `disconnect` was called; waiting for the close handshake.
    Closing,
    /// Disconnected at the app's request.
    Closed,
    /// Given up; `connect` starts over.
    Failed {
        /// Why.
        reason: FailReason,
    },
}

/// Why a socket gave up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// The server refused this client in a way retrying cannot fix (close policy).
    Rejected(ConnectionError),
    /// The attempt budget (`backoff.max_attempts`) ran out; the network may recover.
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: ConnectionError,
    },
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Idle => write!(f, "idle"),
            State::Connecting { attempt } => write!(f, "connecting (attempt {attempt})"),
            State::Open => write!(f, "open"),
            State::Reconnecting { attempt, retry_in } => {
                write!(
                    f,
                    "reconnecting (attempt {attempt} in {} ms)",
                    retry_in.as_millis()
                )
            }
            State::Suspended => write!(f, "suspended (app in background)"),
            State::WaitingForNetwork => write!(f, "waiting for network"),
            State::Closing => write!(f, "closing"),
            State::Closed => write!(f, "closed"),
            State::Failed {
                reason: FailReason::Rejected(err),
            } => write!(f, "failed: {err}"),
            State::Failed {
                reason: FailReason::GaveUp { attempts, last },
            } => {
                write!(f, "failed after {attempts} attempts: {last}")
            }
        }
    }
}

//! What the engine tells the application, and the message types it carries.

use std::fmt;

use super::error::ConnectionError;
use super::resume::ResumeCursor;
use super::state::State;

/// Id of a client message: a UUID (v4) from the injected random source, unique per client.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub String);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Message content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// JSON text (envelope mode).
    Json(String),
    /// A text frame (raw mode).
    Text(String),
    /// A binary frame (raw mode).
    Binary(Vec<u8>),
}

impl Payload {
    /// Size in bytes.
    pub fn len(&self) -> usize {
        match self {
            Payload::Json(s) | Payload::Text(s) => s.len(),
            Payload::Binary(b) => b.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A message from the server, delivered at most once and in `seq` order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundMessage {
    /// Server id (envelope mode).
    pub id: Option<String>,
    /// Stream position (envelope mode, when the server sequences).
    pub seq: Option<u64>,
    /// Server time in milliseconds (envelope mode).
    pub ts: Option<u64>,
    /// The content.
    pub data: Payload,
    /// The resume cursor right after this message. An app that must not see a message twice
    /// even across restarts stores it with the message, in one transaction, and passes it back
    /// as `resume.initial` at start.
    pub cursor: ResumeCursor,
    /// Handed to the app before a crash and never committed (it was in hand when the process
    /// died), so the app may have processed it already. Only a socket with a durable store sets
    /// it; every other message reaches the app once.
    pub redelivered: bool,
}

/// Why the state changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The app asked: `connect`, `disconnect`, `close`.
    App,
    /// A connection opened.
    Opened,
    /// A scheduled retry started.
    RetryDue,
    /// A lifecycle or network hint: background, foreground, network lost or back.
    Lifecycle,
    /// An attempt to open a connection failed.
    AttemptFailed(ConnectionError),
    /// An open connection ended.
    ConnectionDropped(ConnectionError),
}

impl Cause {
    /// The connection problem behind this change, if any.
    pub fn problem(&self) -> Option<&ConnectionError> {
        match self {
            Cause::AttemptFailed(error) | Cause::ConnectionDropped(error) => Some(error),
            _ => None,
        }
    }
}

/// Why a client message will not be acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendFailure {
    /// Its time-to-live ran out before the server acknowledged it.
    Expired,
    /// Evicted to make room (`OverflowPolicy::DropOldest`).
    Dropped,
    /// The app cancelled it.
    Cancelled,
    /// The server answered with an error frame naming it.
    Rejected {
        /// The server's error code.
        code: String,
        /// The server's explanation.
        message: String,
    },
}

/// Something the application should hear about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The state changed, and why.
    StateChanged {
        /// The new state.
        state: State,
        /// What caused the change.
        cause: Cause,
    },
    /// A server message.
    Message(InboundMessage),
    /// The server stored this client message (envelope mode). Reported once per id.
    Acked(MessageId),
    /// This client message will not be acknowledged. Reported once per id, never after `Acked`.
    SendFailed {
        /// The message.
        id: MessageId,
        /// Its content, as given to `send`.
        payload: Payload,
        /// Why.
        reason: SendFailure,
    },
    /// An inbound frame could not be understood; it was skipped.
    MalformedFrame {
        /// What is wrong.
        reason: String,
        /// The start of the frame.
        preview: String,
    },
    /// The server sent an error frame about no message in particular.
    ServerError {
        /// The server's error code.
        code: String,
        /// The server's explanation.
        message: String,
    },
    /// The durable store was damaged (a truncated or overwritten file) and was rebuilt. Reported
    /// once, first, by the socket that found it; the engine itself never emits it.
    StoreRecovered {
        /// What was wrong with it.
        problem: String,
        /// Pending messages read back from the damaged file and kept.
        recovered_messages: usize,
        /// Where the damaged file was moved, for inspection.
        moved_to: Option<String>,
    },
}

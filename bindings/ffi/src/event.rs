//! Events, states and stats as plain data for the host languages.

use steadyws::{
    AppState, Cause, ConnectionError, Event, FailReason, NetworkStatus, Payload, ResumeCursor,
    SendFailure, State, Stats,
};

/// Whether the app is visible (the Rust type, as is).
#[uniffi::remote(Enum)]
pub enum AppState {
    /// Visible and running.
    Foreground,
    /// In the background; the OS may suspend it.
    Background,
}

/// What the OS reachability API reports (the Rust type, as is).
#[uniffi::remote(Enum)]
pub enum NetworkStatus {
    /// A route exists, over `interface` (e.g. "wifi", "cellular") if known.
    Available {
        /// The interface name, if known; absent keeps the name known before.
        interface: Option<String>,
    },
    /// No route.
    Unavailable,
}

/// The resume cursor: store it with the message it came with, in one transaction, and pass it
/// back as `resume_last_seq` / `resume_last_ts` at start, for exactly-once across restarts
/// (the Rust type, as is).
#[uniffi::remote(Record)]
pub struct ResumeCursor {
    /// `seq` of the last message.
    pub last_seq: Option<u64>,
    /// `ts` (server ms) of the last message.
    pub last_ts: Option<u64>,
}

/// A message waiting for the server's acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct PendingMessage {
    /// Its id, as `send` returned it.
    pub id: String,
    /// Its JSON content, as given to `send`.
    pub json: String,
    /// When it was sent: milliseconds since the Unix epoch (from an earlier run for messages
    /// a store kept).
    pub created_at_ms: u64,
}

/// Content of a message.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum MessageData {
    /// JSON text (envelope mode).
    Json {
        /// The JSON document.
        json: String,
    },
    /// A text frame (raw mode).
    Text {
        /// The text.
        text: String,
    },
    /// A binary frame (raw mode).
    Binary {
        /// The bytes.
        bytes: Vec<u8>,
    },
}

/// Where the socket is. Prints as a sentence (`connecting (attempt 2)`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
#[uniffi::export(Display, Eq, Hash)]
pub enum SocketState {
    /// Not connected yet.
    Idle,
    /// Opening a connection.
    Connecting {
        /// Attempt number since the last stable connection.
        attempt: u32,
    },
    /// Connected.
    Open,
    /// Waiting before the next attempt.
    Reconnecting {
        /// The attempt that will be made.
        attempt: u32,
        /// The delay, in milliseconds.
        retry_in_ms: u64,
    },
    /// Disconnected while the app is in the background.
    Suspended,
    /// No network; waiting for it to return.
    WaitingForNetwork,
    /// Closing at the app's request.
    Closing,
    /// Closed at the app's request.
    Closed,
    /// Given up; `connect()` starts over.
    Failed {
        /// Why, with what to do.
        reason: String,
        /// True when retrying later may help (the attempt budget ran out), false when the server
        /// refused this client.
        retryable: bool,
    },
}

/// What kind of connection failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum ConnectionErrorKind {
    /// Nothing listens at host:port.
    Refused,
    /// The host name did not resolve.
    Dns,
    /// A TLS check failed (the message says which).
    Tls,
    /// The HTTP CONNECT proxy failed.
    Proxy,
    /// The upgrade was answered without 101 (see `http_status`).
    Handshake,
    /// No connection within the connect timeout.
    ConnectTimeout,
    /// Nothing received within the heartbeat or probe deadline.
    HeartbeatTimeout,
    /// The connection closed (see `close_code`; 1006: without a close frame).
    Closed,
    /// An inbound message exceeded the limit.
    MessageTooLarge,
    /// Any other network failure.
    Io,
}

/// Why a message will not be acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum SendFailureKind {
    /// Its time-to-live ran out.
    Expired,
    /// Evicted from the full outbox (drop-oldest policy).
    Dropped,
    /// The app cancelled it.
    Cancelled,
    /// The server refused it (see the message).
    Rejected,
}

/// Why a connection attempt failed or an open connection ended.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ConnectionProblem {
    /// The kind of failure.
    pub kind: ConnectionErrorKind,
    /// What happened and what to do.
    pub message: String,
    /// The HTTP status of a refused upgrade.
    pub http_status: Option<u16>,
    /// The WebSocket close code (1006 when the connection dropped without one).
    pub close_code: Option<u16>,
}

/// Why the state changed.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum StateCause {
    /// The app asked: connect, disconnect, close.
    App,
    /// A connection opened.
    Opened,
    /// A scheduled retry started.
    RetryDue,
    /// A background, foreground or network hint.
    Lifecycle,
    /// An attempt to open a connection failed.
    AttemptFailed {
        /// What went wrong.
        problem: ConnectionProblem,
    },
    /// An open connection ended.
    ConnectionDropped {
        /// What went wrong.
        problem: ConnectionProblem,
    },
}

/// Something the application should hear about.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum SocketEvent {
    /// The state changed, and why.
    StateChanged {
        /// The new state.
        state: SocketState,
        /// What caused it (with the connection problem, when there was one).
        cause: StateCause,
    },
    /// A message from the server, delivered once and in order.
    Message {
        /// Server id (envelope mode).
        id: Option<String>,
        /// Stream position (envelope mode).
        seq: Option<u64>,
        /// Server time in ms (envelope mode).
        ts: Option<u64>,
        /// The content.
        data: MessageData,
        /// The resume cursor right after this message.
        cursor: ResumeCursor,
        /// Taken by the app before a crash and never committed, so it may have been processed
        /// already (store only). Every other message arrives once.
        redelivered: bool,
    },
    /// The server stored this message.
    Acked {
        /// Its id, as returned by `send`.
        id: String,
    },
    /// This message will not be acknowledged.
    SendFailed {
        /// Its id.
        id: String,
        /// Why.
        reason: SendFailureKind,
        /// Details (the server's explanation for `rejected`).
        message: String,
        /// Its content, as given to `send`.
        data: MessageData,
    },
    /// An inbound frame could not be understood and was skipped.
    MalformedFrame {
        /// What is wrong.
        reason: String,
        /// The start of the frame.
        preview: String,
    },
    /// The server sent an error notice.
    ServerError {
        /// Machine-readable code.
        code: String,
        /// Explanation.
        message: String,
    },
    /// The store file was damaged and has been rebuilt; reported once, first.
    StoreRecovered {
        /// What was wrong with it.
        problem: String,
        /// Pending messages read back from it and kept.
        recovered_messages: u32,
        /// Where the damaged file was moved, for inspection.
        moved_to: Option<String>,
    },
}

/// Counters for dashboards.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SocketStats {
    /// Current state.
    pub state: SocketState,
    /// Attempts since the last stable connection.
    pub attempt: u32,
    /// Connections opened after the first.
    pub reconnects: u64,
    /// Round-trip time of the last answered ping, ms.
    pub last_rtt_ms: Option<u64>,
    /// Server messages the app took.
    pub messages_in: u64,
    /// Server messages received, taken or still waiting.
    pub messages_received: u64,
    /// Client messages written (resends included).
    pub messages_written: u64,
    /// Client messages acknowledged.
    pub messages_acked: u64,
    /// Inbound duplicates dropped.
    pub duplicates_dropped: u64,
    /// Messages queued.
    pub outbox_len: u64,
    /// Bytes queued.
    pub outbox_bytes: u64,
    /// Resume position: `seq` of the last message the app took.
    pub last_seq: Option<u64>,
    /// Resume position: `ts` of the last message the app took.
    pub last_ts: Option<u64>,
}

/// The sentences are the Rust `State`'s; a failure already carries its own.
impl std::fmt::Display for SocketState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self {
            SocketState::Failed { reason, .. } => return f.write_str(reason),
            SocketState::Idle => State::Idle,
            SocketState::Connecting { attempt } => State::Connecting { attempt: *attempt },
            SocketState::Open => State::Open,
            SocketState::Reconnecting {
                attempt,
                retry_in_ms,
            } => State::Reconnecting {
                attempt: *attempt,
                retry_in: std::time::Duration::from_millis(*retry_in_ms),
            },
            SocketState::Suspended => State::Suspended,
            SocketState::WaitingForNetwork => State::WaitingForNetwork,
            SocketState::Closing => State::Closing,
            SocketState::Closed => State::Closed,
        };
        state.fmt(f)
    }
}

impl From<State> for SocketState {
    fn from(state: State) -> Self {
        let description = state.to_string();
        match state {
            State::Idle => SocketState::Idle,
            State::Connecting { attempt } => SocketState::Connecting { attempt },
            State::Open => SocketState::Open,
            State::Reconnecting { attempt, retry_in } => SocketState::Reconnecting {
                attempt,
                retry_in_ms: retry_in.as_millis() as u64,
            },
            State::Suspended => SocketState::Suspended,
            State::WaitingForNetwork => SocketState::WaitingForNetwork,
            State::Closing => SocketState::Closing,
            State::Closed => SocketState::Closed,
            State::Failed { reason } => SocketState::Failed {
                reason: description,
                retryable: matches!(reason, FailReason::GaveUp { .. }),
            },
        }
    }
}

impl From<Payload> for MessageData {
    fn from(payload: Payload) -> Self {
        match payload {
            Payload::Json(json) => MessageData::Json { json },
            Payload::Text(text) => MessageData::Text { text },
            Payload::Binary(bytes) => MessageData::Binary { bytes },
        }
    }
}

impl From<ConnectionError> for ConnectionProblem {
    fn from(error: ConnectionError) -> Self {
        use ConnectionErrorKind as Kind;
        let message = error.to_string();
        let (kind, http_status, close_code) = match error {
            ConnectionError::Refused { .. } => (Kind::Refused, None, None),
            ConnectionError::Dns { .. } => (Kind::Dns, None, None),
            ConnectionError::Tls { .. } => (Kind::Tls, None, None),
            ConnectionError::Proxy { .. } => (Kind::Proxy, None, None),
            ConnectionError::Handshake { status, .. } => (Kind::Handshake, Some(status), None),
            ConnectionError::ConnectTimeout { .. } => (Kind::ConnectTimeout, None, None),
            ConnectionError::HeartbeatTimeout { .. } => (Kind::HeartbeatTimeout, None, None),
            ConnectionError::Closed { code, .. } => (Kind::Closed, None, Some(code)),
            ConnectionError::MessageTooLarge { .. } => (Kind::MessageTooLarge, None, None),
            ConnectionError::Io { .. } => (Kind::Io, None, None),
        };
        ConnectionProblem {
            kind,
            message,
            http_status,
            close_code,
        }
    }
}

impl From<Cause> for StateCause {
    fn from(cause: Cause) -> Self {
        match cause {
            Cause::App => StateCause::App,
            Cause::Opened => StateCause::Opened,
            Cause::RetryDue => StateCause::RetryDue,
            Cause::Lifecycle => StateCause::Lifecycle,
            Cause::AttemptFailed(error) => StateCause::AttemptFailed {
                problem: error.into(),
            },
            Cause::ConnectionDropped(error) => StateCause::ConnectionDropped {
                problem: error.into(),
            },
        }
    }
}

/// The kind of a send failure and its explanation.
pub(crate) fn send_failure(reason: SendFailure) -> (SendFailureKind, String) {
    match reason {
        SendFailure::Expired => (
            SendFailureKind::Expired,
            "not acknowledged within its time-to-live".to_owned(),
        ),
        SendFailure::Dropped => (
            SendFailureKind::Dropped,
            "evicted from the full outbox (drop-oldest policy)".to_owned(),
        ),
        SendFailure::Cancelled => (
            SendFailureKind::Cancelled,
            "cancelled by the app".to_owned(),
        ),
        SendFailure::Rejected { code, message } => {
            (SendFailureKind::Rejected, format!("{code}: {message}"))
        }
    }
}

impl From<Event> for SocketEvent {
    fn from(event: Event) -> Self {
        match event {
            Event::StateChanged { state, cause } => SocketEvent::StateChanged {
                state: state.into(),
                cause: cause.into(),
            },
            Event::Message(message) => SocketEvent::Message {
                id: message.id,
                seq: message.seq,
                ts: message.ts,
                data: message.data.into(),
                cursor: message.cursor,
                redelivered: message.redelivered,
            },
            Event::Acked(id) => SocketEvent::Acked { id: id.0 },
            Event::SendFailed {
                id,
                payload,
                reason,
            } => {
                let (reason, message) = send_failure(reason);
                SocketEvent::SendFailed {
                    id: id.0,
                    reason,
                    message,
                    data: payload.into(),
                }
            }
            Event::MalformedFrame { reason, preview } => {
                SocketEvent::MalformedFrame { reason, preview }
            }
            Event::ServerError { code, message } => SocketEvent::ServerError { code, message },
            Event::StoreRecovered {
                problem,
                recovered_messages,
                moved_to,
            } => SocketEvent::StoreRecovered {
                problem,
                recovered_messages: u32::try_from(recovered_messages).unwrap_or(u32::MAX),
                moved_to,
            },
        }
    }
}

impl From<Stats> for SocketStats {
    fn from(stats: Stats) -> Self {
        SocketStats {
            state: stats.state.into(),
            attempt: stats.attempt,
            reconnects: stats.reconnects,
            last_rtt_ms: stats.last_rtt.map(|rtt| rtt.as_millis() as u64),
            messages_in: stats.messages_in,
            messages_received: stats.messages_received,
            messages_written: stats.messages_written,
            messages_acked: stats.messages_acked,
            duplicates_dropped: stats.duplicates_dropped,
            outbox_len: stats.outbox_len as u64,
            outbox_bytes: stats.outbox_bytes as u64,
            last_seq: stats.cursor.last_seq,
            last_ts: stats.cursor.last_ts,
        }
    }
}

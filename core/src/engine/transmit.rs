//! What the engine asks the driver to do with transports.

use super::event::MessageId;

/// Identifies one transport (one TCP/TLS/WebSocket connection) so that late reports about an
/// abandoned transport cannot be mistaken for the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A WebSocket frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Text frame.
    Text(String),
    /// Binary frame.
    Binary(Vec<u8>),
    /// Ping frame; transports answer these themselves, as RFC 6455 requires.
    Ping(Vec<u8>),
    /// Pong frame.
    Pong(Vec<u8>),
}

impl Frame {
    /// Payload size in bytes.
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(s) => s.len(),
            Frame::Binary(b) | Frame::Ping(b) | Frame::Pong(b) => b.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An instruction for the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transmit {
    /// Open a transport to `url` and report `transport_opened`/`transport_failed` for `conn`.
    Open {
        /// The new transport's id.
        conn: ConnId,
        /// The URL with the current resume cursor.
        url: String,
        /// Request headers anew (the last attempt was refused with an auth error).
        refresh_credentials: bool,
    },
    /// Write a frame on `conn`.
    Send {
        /// The transport.
        conn: ConnId,
        /// The frame.
        frame: Frame,
        /// Raw mode: the app's message this frame carries. It stays queued until the driver
        /// reports, through [`Engine::handle_written`](super::Engine::handle_written), that the
        /// transport took the frame to write.
        message: Option<MessageId>,
    },
    /// Write the answer to the peer's ping on `conn`. Only the newest one still waiting to be
    /// written matters, so a driver keeps one pending pong per transport: a peer flooding pings
    /// while not reading cannot make it queue more.
    Pong {
        /// The transport.
        conn: ConnId,
        /// The pong frame.
        frame: Frame,
    },
    /// Close `conn`, sending a close frame if it is open. The engine waits for the resulting
    /// `transport_closed` only after `disconnect`; otherwise it has already moved on and ignores
    /// any further report about `conn`.
    Close {
        /// The transport.
        conn: ConnId,
        /// WebSocket close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
}

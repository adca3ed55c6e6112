//! Typed errors. Each message says what is wrong and what to do about it.

use std::time::Duration;

/// A URL the socket cannot use. Found at construction, before any attempt.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The URL is empty.
    #[error("the URL is empty: pass a ws:// or wss:// URL such as ws://127.0.0.1:8080/ws")]
    Empty,
    /// The scheme is not ws or wss.
    #[error("the URL's scheme must be ws or wss, not {scheme:?}{}", suggestion.as_ref().map(|s| format!(": use {s}")).unwrap_or_default())]
    WrongScheme {
        /// The scheme given.
        scheme: String,
        /// The same URL with the WebSocket scheme, when there is an obvious one.
        suggestion: Option<String>,
    },
    /// The URL does not parse.
    #[error("the URL {url:?} is malformed: {reason}")]
    Malformed {
        /// The URL given.
        url: String,
        /// What the parser objected to.
        reason: String,
    },
}

/// A configuration the engine refuses to run with.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The URL is unusable.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// A setting is out of range.
    #[error("config `{field}` {problem}")]
    Invalid {
        /// The setting, as a path such as `backoff.jitter`.
        field: &'static str,
        /// What is wrong with it and what is accepted.
        problem: String,
    },
}

/// Why `send` refused a message. Nothing was queued.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Envelope mode carries JSON; the payload is not.
    #[error(
        "the payload is not valid JSON ({reason}); serialise it first, or use raw mode for plain text"
    )]
    NotJson {
        /// The parser's complaint, with line and column.
        reason: String,
    },
    /// The payload is JSON that the protocol's portable-JSON rule forbids (docs/protocol.md §9).
    #[error(
        "the payload is JSON no server of the protocol accepts: {reason}; servers refuse it as bad_message because common JSON parsers cannot read it back (docs/protocol.md §9), so flatten the structure or send such numbers as strings"
    )]
    NotPortable {
        /// What breaks the rule.
        reason: String,
    },
    /// The payload kind does not exist in this mode.
    #[error("{kind} payloads need raw mode (Config::raw); envelope mode sends JSON")]
    WrongMode {
        /// `"text"` or `"binary"`.
        kind: &'static str,
    },
    /// The message alone exceeds the largest message the outbox accepts.
    #[error(
        "the message is {bytes} bytes, more than the largest message allowed ({max} bytes, outbox.max_message_bytes); split it, send a reference to it, or raise the limit (keep it below the server's)"
    )]
    TooLarge {
        /// Size of the rejected payload.
        bytes: usize,
        /// The outbox byte bound.
        max: usize,
    },
    /// The outbox is full and the policy is to reject new messages.
    #[error(
        "the outbox is full ({messages} messages, {bytes} bytes): the connection is down, or the server takes messages slower than they are sent; retry later, raise the bounds, or choose OverflowPolicy::DropOldest"
    )]
    OutboxFull {
        /// Messages queued.
        messages: usize,
        /// Bytes queued.
        bytes: usize,
    },
}

/// Why a connection attempt failed or an open connection ended. The driver reports the transport
/// kinds; the engine itself produces the timeouts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// TCP connection refused.
    #[error(
        "connection refused by {addr}: is the server running and listening there? (check host and port: a server bound to localhost:3000 is not reachable at 127.0.0.1:8080)"
    )]
    Refused {
        /// `host:port` dialled.
        addr: String,
    },
    /// The host name did not resolve.
    #[error("cannot resolve host {host:?} ({detail}): check the spelling and the device's network")]
    Dns {
        /// Host looked up.
        host: String,
        /// Resolver message.
        detail: String,
    },
    /// TLS handshake failed.
    #[error("TLS handshake failed: {detail}")]
    Tls {
        /// Which check failed.
        detail: String,
    },
    /// The server answered the HTTP upgrade with something other than 101.
    #[error("the WebSocket handshake was answered with HTTP {status} instead of 101: {}", handshake_hint(*status))]
    Handshake {
        /// HTTP status received.
        status: u16,
        /// The `Retry-After` header, if any.
        retry_after: Option<Duration>,
    },
    /// The HTTP CONNECT proxy could not be reached or refused the tunnel.
    #[error(
        "proxy {proxy} failed: {detail}; check the proxy setting, or whether this network needs one"
    )]
    Proxy {
        /// The proxy as configured (`host:port`).
        proxy: String,
        /// What went wrong.
        detail: String,
    },
    /// The transport did not open within `connect_timeout`.
    #[error(
        "no WebSocket connection within {} ms: the server may not answer the Upgrade (plain HTTP servers cannot), or a proxy is holding it",
        after.as_millis()
    )]
    ConnectTimeout {
        /// The timeout that expired.
        after: Duration,
    },
    /// No inbound frame within the heartbeat (or probe) deadline.
    #[error(
        "nothing received from the server for {} ms, pings unanswered: the connection is dead (network lost, NAT timeout, the app was suspended, or a server that stopped reading); reconnecting",
        after.as_millis()
    )]
    HeartbeatTimeout {
        /// How long nothing arrived (since the last inbound frame, or since the probe).
        after: Duration,
    },
    /// The connection was closed (by the server, a proxy, or abnormally: 1006).
    #[error("connection closed with code {code}{}", close_hint(*code, reason))]
    Closed {
        /// WebSocket close code; 1006 when the socket died without a close frame.
        code: u16,
        /// Close reason sent by the peer.
        reason: String,
    },
    /// An inbound message exceeded the configured maximum.
    #[error(
        "the server sent a message larger than the {max}-byte limit: raise the limit or send smaller messages"
    )]
    MessageTooLarge {
        /// The configured limit.
        max: usize,
    },
    /// Any other transport failure.
    #[error("network error: {detail}")]
    Io {
        /// The OS or library message.
        detail: String,
    },
}

impl ConnectionError {
    /// A connection that ended without a close frame (the browser's 1006).
    pub fn abnormal() -> Self {
        ConnectionError::Closed {
            code: 1006,
            reason: String::new(),
        }
    }
}

fn handshake_hint(status: u16) -> &'static str {
    match status {
        200 | 400 | 426 | 502 => {
            "a proxy or the server is not forwarding `Upgrade: websocket` / `Connection: Upgrade` (nginx needs `proxy_http_version 1.1` and proxy_set_header for both)"
        }
        401 | 403 => {
            "the server refused the credentials; refresh the token in the headers provider"
        }
        404 => "no WebSocket endpoint at this path; check the URL's path",
        429 | 503 => "the server is overloaded; retrying after the delay it asked for",
        _ => "check the server's logs for why it refused the upgrade",
    }
}

fn close_hint(code: u16, reason: &str) -> String {
    let reason = if reason.is_empty() {
        String::new()
    } else {
        format!(" ({reason:?})")
    };
    let hint = match code {
        1006 => {
            ": the connection dropped without a close frame (network loss, server crash, or a proxy timeout)"
        }
        1008 => ": the server rejected this client's behaviour (policy violation)",
        1013 => ": the server is overloaded; retrying later",
        4008 => {
            ": the server dropped this client for reading too slowly (its send timeout); reconnecting and resuming"
        }
        _ => "",
    };
    format!("{reason}{hint}")
}

//! Everything a socket can be tuned by, with defaults chosen for a phone on a bad network.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::endpoint;
use super::error::ConfigError;
use super::resume::ResumeConfig;

/// How frames are framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// JSON envelopes with ids, acks, resend, dedup and resume (the default).
    Envelope,
    /// Text and binary frames passed through unchanged: no ids, no acks, at-most-once.
    Raw,
}

/// How a dead connection is noticed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeartbeatMode {
    /// After `interval` without inbound traffic send `{"type":"ping","ts":…}`; the server answers
    /// `{"type":"pong","ts":…}`. Envelope mode only.
    JsonPing {
        /// Idle time before a ping is sent.
        interval: Duration,
        /// How long to wait for any inbound frame after a ping.
        timeout: Duration,
    },
    /// The same schedule with WebSocket ping frames, which every RFC 6455 server answers.
    WebSocketPing {
        /// Idle time before a ping is sent.
        interval: Duration,
        /// How long to wait for any inbound frame after a ping.
        timeout: Duration,
    },
    /// The server pings; the client answers and only watches for silence (saves battery).
    ServerDriven {
        /// Silence after which the connection is considered dead.
        silence_timeout: Duration,
    },
}

impl HeartbeatMode {
    /// The longest a dead connection can stay unnoticed while the app is in the foreground.
    pub fn detection_bound(&self) -> Duration {
        match *self {
            HeartbeatMode::JsonPing { interval, timeout }
            | HeartbeatMode::WebSocketPing { interval, timeout } => interval + timeout,
            HeartbeatMode::ServerDriven { silence_timeout } => silence_timeout,
        }
    }
}

/// Reconnect pacing (exponential, with full jitter).
#[derive(Clone, Debug, PartialEq)]
pub struct BackoffConfig {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Growth per failure.
    pub multiplier: f64,
    /// Upper bound of any scheduled delay.
    pub max: Duration,
    /// Fraction in `[0, 1]` by which a delay may be randomly shortened.
    pub jitter: f64,
    /// Give up (state `Failed`) after this many consecutive failed attempts.
    pub max_attempts: Option<u32>,
    /// A connection must stay open this long before past failures are forgiven, so a server that
    /// accepts and drops at once cannot cause a tight reconnect loop. A connection that proved
    /// useful (it acknowledged a message written on it, or delivered a new one) is forgiven at
    /// once, with or without the server's `hello`.
    pub stable_after: Duration,
    /// After a connection that proved useful drops, the first retry comes after this (shortened
    /// by `jitter` like any delay: 125-250 ms by default) instead of the schedule's delay, so a
    /// link reset mid-conversation recovers in a fraction of a second.
    pub after_useful_drop: Duration,
    /// Upper bound for delays a server asks for (close 1013, HTTP 429/503 `Retry-After`).
    pub max_server_delay: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_secs(1),
            multiplier: 2.0,
            max: Duration::from_secs(30),
            jitter: 0.5,
            max_attempts: None,
            stable_after: Duration::from_secs(10),
            after_useful_drop: Duration::from_millis(250),
            max_server_delay: Duration::from_secs(300),
        }
    }
}

/// What `send` does when the outbox is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverflowPolicy {
    /// Refuse the new message with [`SendError::OutboxFull`](super::error::SendError::OutboxFull).
    RejectNew,
    /// Evict the oldest messages, reporting each as failed with reason `Dropped`.
    DropOldest,
}

/// Bounds of the queue of unacknowledged messages.
///
/// The defaults (100 000 messages, 16 MiB) carry an app through a long outage: 50 messages a
/// second of 200 bytes each (about 260 bytes framed) fill the byte bound after 21 minutes;
/// 100-byte messages reach the count bound after 33 minutes. When a bound is reached, `send` fails with
/// [`SendError::OutboxFull`](super::error::SendError::OutboxFull) and nothing already queued is
/// touched, or under [`OverflowPolicy::DropOldest`] the oldest messages are evicted and reported.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxConfig {
    /// Most messages held at once (default 100 000).
    pub max_messages: usize,
    /// Most bytes held at once (default 16 MiB), counting each message's whole frame.
    pub max_bytes: usize,
    /// The largest single message accepted, as a frame (default 1 MiB). Keep it below the
    /// server's limit: a message the server refuses as too large would be resent after every
    /// reconnect.
    pub max_message_bytes: usize,
    /// What happens when a new message does not fit.
    pub overflow: OverflowPolicy,
    /// Time-to-live applied to messages sent without one of their own.
    pub default_ttl: Option<Duration>,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            max_messages: 100_000,
            max_bytes: 16 * 1024 * 1024,
            max_message_bytes: 1024 * 1024,
            overflow: OverflowPolicy::RejectNew,
            default_ttl: None,
        }
    }
}

/// Bounds of the memory of inbound ids already delivered.
#[derive(Clone, Debug, PartialEq)]
pub struct DedupConfig {
    /// Most ids remembered.
    pub max_entries: usize,
    /// Ids older than this are forgotten; cover the server's replay window.
    pub max_age: Duration,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            max_entries: 10_000,
            max_age: Duration::from_secs(3600),
        }
    }
}

/// What happens to the connection while the app is in the background.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackgroundPolicy {
    /// Keep the connection (heartbeats pause; the foreground probe checks it on return).
    KeepAlive,
    /// Close it after this grace period and stay `Suspended` until foreground; the outbox is kept.
    DisconnectAfter(Duration),
}

impl BackgroundPolicy {
    /// The grace period hosts use for `DisconnectAfter` when the app names none: long enough
    /// to answer a call or copy a code without a reconnect.
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);
}

/// Which server answers end the socket instead of retrying.
#[derive(Clone, Debug, PartialEq)]
pub struct ClosePolicy {
    /// Handshake HTTP statuses that are fatal.
    pub fatal_statuses: Vec<u16>,
    /// Close codes that are fatal.
    pub fatal_close_codes: Vec<RangeInclusive<u16>>,
    /// Handshake statuses that first get one retry with freshly requested headers (token refresh).
    pub auth_statuses: Vec<u16>,
    /// Close codes that first get one retry with freshly requested headers.
    pub auth_close_codes: Vec<u16>,
}

impl Default for ClosePolicy {
    fn default() -> Self {
        ClosePolicy {
            fatal_statuses: vec![401, 403, 404],
            fatal_close_codes: vec![1008..=1008, 4400..=4499],
            auth_statuses: vec![401],
            auth_close_codes: vec![4401],
        }
    }
}

/// Configuration of one socket. [`Config::new`] gives defaults suited to mobile apps.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `ws://` or `wss://` URL; validated when the engine is built.
    pub url: String,
    /// Wire framing.
    pub mode: Mode,
    /// A transport that does not open within this time is abandoned as a failed attempt.
    pub connect_timeout: Duration,
    /// Dead-connection detection.
    pub heartbeat: HeartbeatMode,
    /// On foreground or network change, how long an open connection gets to answer a probe.
    pub probe_timeout: Duration,
    /// How long what the app wrote may meet total silence (no ack, no frame at all) before the
    /// connection is probed, as on a network change: a dead link under active sending is then
    /// replaced within about `ack_probe_after + probe_timeout`, not the idle heartbeat's 15 s.
    /// `None` (the default) follows the measured round trip: four smoothed RTTs, at least 2 s.
    /// An app that writes nothing never pays for it.
    pub ack_probe_after: Option<Duration>,
    /// How long a graceful `disconnect` waits for the server's close.
    pub close_timeout: Duration,
    /// Reconnect pacing.
    pub backoff: BackoffConfig,
    /// Outbound queue bounds.
    pub outbox: OutboxConfig,
    /// Inbound dedup bounds.
    pub dedup: DedupConfig,
    /// Resume cursor parameters.
    pub resume: ResumeConfig,
    /// Background behaviour.
    pub background: BackgroundPolicy,
    /// Fatal server answers.
    pub close_policy: ClosePolicy,
    /// Who this client is to the server, sent as the `client_id` query parameter of every
    /// envelope-mode attempt: servers scope the dedup of message ids to it, so no other client can
    /// claim this one's ids. `None` draws a random UUID v4 when the engine is built; set it only
    /// to keep the same identity across process restarts. 1 to 64 characters from
    /// `A-Z a-z 0-9 - _ . ~`. Raw mode sends none.
    pub client_id: Option<String>,
}

impl Config {
    /// Envelope mode with JSON ping heartbeat: a dead socket is noticed within 15 s.
    pub fn new(url: impl Into<String>) -> Self {
        Config {
            url: url.into(),
            mode: Mode::Envelope,
            connect_timeout: Duration::from_secs(10),
            heartbeat: HeartbeatMode::JsonPing {
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(5),
            },
            probe_timeout: Duration::from_secs(2),
            ack_probe_after: None,
            close_timeout: Duration::from_secs(2),
            backoff: BackoffConfig::default(),
            outbox: OutboxConfig::default(),
            dedup: DedupConfig::default(),
            resume: ResumeConfig::default(),
            background: BackgroundPolicy::KeepAlive,
            close_policy: ClosePolicy::default(),
            client_id: None,
        }
    }

    /// Raw mode (frames passed through) with WebSocket ping heartbeat.
    pub fn raw(url: impl Into<String>) -> Self {
        let mut config = Config::new(url);
        config.mode = Mode::Raw;
        if let HeartbeatMode::JsonPing { interval, timeout } = config.heartbeat {
            config.heartbeat = HeartbeatMode::WebSocketPing { interval, timeout };
        }
        config
    }
}

/// Refuse settings the engine cannot work with, naming the field.
pub(super) fn validate(config: &Config) -> Result<(), ConfigError> {
    let invalid = |field, problem: &str| {
        Err(ConfigError::Invalid {
            field,
            problem: problem.into(),
        })
    };
    let positive = [
        ("connect_timeout", config.connect_timeout),
        ("probe_timeout", config.probe_timeout),
        (
            "ack_probe_after",
            config.ack_probe_after.unwrap_or(Duration::MAX),
        ),
        ("close_timeout", config.close_timeout),
        ("backoff.initial", config.backoff.initial),
        ("heartbeat", config.heartbeat.detection_bound()),
    ];
    if let Some((field, _)) = positive.iter().find(|(_, d)| d.is_zero()) {
        return invalid(field, "must be longer than zero");
    }
    if let HeartbeatMode::JsonPing { interval, timeout }
    | HeartbeatMode::WebSocketPing { interval, timeout } = config.heartbeat
        && (interval.is_zero() || timeout.is_zero())
    {
        return invalid("heartbeat", "interval and timeout must be longer than zero");
    }
    if config.mode == Mode::Raw && matches!(config.heartbeat, HeartbeatMode::JsonPing { .. }) {
        return invalid(
            "heartbeat",
            "JsonPing needs envelope mode: a raw server would receive the pings as messages; use WebSocketPing or ServerDriven",
        );
    }
    let backoff = &config.backoff;
    if !(0.0..=1.0).contains(&backoff.jitter) {
        return invalid("backoff.jitter", "must be between 0 and 1");
    }
    if !backoff.multiplier.is_finite() || backoff.multiplier < 1.0 {
        return invalid(
            "backoff.multiplier",
            "must be a finite number of at least 1",
        );
    }
    if backoff.max < backoff.initial {
        return invalid("backoff.max", "must be at least backoff.initial");
    }
    if backoff.max_attempts == Some(0) {
        return invalid(
            "backoff.max_attempts",
            "must be at least 1 (or None for no limit)",
        );
    }
    if config.outbox.max_messages == 0
        || config.outbox.max_bytes == 0
        || config.outbox.max_message_bytes == 0
    {
        return invalid(
            "outbox",
            "max_messages, max_bytes and max_message_bytes must be at least 1",
        );
    }
    if config
        .client_id
        .as_deref()
        .is_some_and(|id| !endpoint::is_valid_client_id(id))
    {
        return invalid(
            "client_id",
            "must be 1 to 64 characters from A-Z a-z 0-9 - _ . ~ (or None for a random one)",
        );
    }
    let resume = &config.resume;
    if resume.seq_param.is_empty()
        || resume.ts_param.is_empty()
        || resume.seq_param == resume.ts_param
    {
        return invalid(
            "resume",
            "seq_param and ts_param must be distinct, non-empty names",
        );
    }
    Ok(())
}

//! Socket configuration as a record whose absent settings take the Rust defaults, so each
//! language gets named arguments and no default is written twice.

use std::collections::HashMap;
use std::time::Duration;

use steadyws::StoreConfig;
use steadyws::engine::{BackgroundPolicy, HeartbeatMode, OverflowPolicy, ResumeCursor};

/// How dead connections are noticed.
#[derive(Clone, Copy, Debug, uniffi::Enum)]
pub enum HeartbeatKind {
    /// `{"type":"ping"}` after idle time, answered by `pong` (envelope mode).
    JsonPing,
    /// WebSocket ping frames.
    WebSocketPing,
    /// The server pings; the client watches for silence of `heartbeat_timeout_ms`.
    ServerDriven,
}

/// What happens in the background.
#[derive(Clone, Copy, Debug, uniffi::Enum)]
pub enum BackgroundMode {
    /// Keep the connection; heartbeats pause and a probe checks it on return.
    KeepAlive,
    /// Disconnect after `background_grace_ms`; reconnect on foreground.
    DisconnectAfterGrace,
}

/// Everything a socket can be configured with; only `url` is required. Every setting left
/// absent takes the Rust default (`SocketConfig::new`, or `SocketConfig::raw` in raw mode), so
/// no default is written twice.
#[derive(Clone, Debug, uniffi::Record)]
pub struct SocketConfig {
    /// `ws://` or `wss://` URL.
    pub url: String,
    /// Pass frames through unchanged (no ids, acks or resend) instead of the JSON envelope.
    #[uniffi(default = false)]
    pub raw_mode: bool,
    /// Headers sent on every upgrade (values are never logged).
    #[uniffi(default)]
    pub headers: HashMap<String, String>,
    /// `Sec-WebSocket-Protocol` values to offer.
    #[uniffi(default)]
    pub subprotocols: Vec<String>,
    /// Give up on an attempt that has not opened after this long.
    #[uniffi(default = None)]
    pub connect_timeout_ms: Option<u64>,
    /// Dead-connection detection (JSON ping in envelope mode, WebSocket ping in raw mode).
    #[uniffi(default = None)]
    pub heartbeat: Option<HeartbeatKind>,
    /// Idle time before a ping.
    #[uniffi(default = None)]
    pub heartbeat_interval_ms: Option<u64>,
    /// Wait for any frame after a ping (or total silence, server-driven).
    #[uniffi(default = None)]
    pub heartbeat_timeout_ms: Option<u64>,
    /// How long a foreground or network-change probe may go unanswered.
    #[uniffi(default = None)]
    pub probe_timeout_ms: Option<u64>,
    /// How long sent messages may meet total silence before the connection is probed (absent:
    /// four measured round trips, at least 2 s). A dead link while sending is then replaced in
    /// about this plus `probe_timeout_ms`.
    #[uniffi(default = None)]
    pub ack_probe_after_ms: Option<u64>,
    /// First reconnect delay.
    #[uniffi(default = None)]
    pub backoff_initial_ms: Option<u64>,
    /// Longest reconnect delay.
    #[uniffi(default = None)]
    pub backoff_max_ms: Option<u64>,
    /// Give up after this many failed attempts in a row (unlimited when absent).
    #[uniffi(default = None)]
    pub max_attempts: Option<u32>,
    /// Background behaviour (keep the connection when absent).
    #[uniffi(default = None)]
    pub background: Option<BackgroundMode>,
    /// Grace period for `DisconnectAfterGrace` (`BackgroundPolicy::DEFAULT_GRACE` when absent).
    #[uniffi(default = None)]
    pub background_grace_ms: Option<u64>,
    /// Most queued messages.
    #[uniffi(default = None)]
    pub outbox_max_messages: Option<u32>,
    /// Most queued bytes.
    #[uniffi(default = None)]
    pub outbox_max_bytes: Option<u64>,
    /// The largest single message accepted by `send`; keep it below the server's limit.
    #[uniffi(default = None)]
    pub outbox_max_message_bytes: Option<u64>,
    /// Evict the oldest queued message instead of refusing new ones when full.
    #[uniffi(default = false)]
    pub outbox_drop_oldest: bool,
    /// Extra trusted roots, PEM.
    #[uniffi(default)]
    pub extra_root_certs_pem: Vec<String>,
    /// Accepted server keys: hex SHA-256 of the SubjectPublicKeyInfo.
    #[uniffi(default)]
    pub pinned_spki_sha256: Vec<String>,
    /// HTTP CONNECT proxy, `http://host:port`.
    #[uniffi(default = None)]
    pub proxy: Option<String>,
    /// Largest inbound message.
    #[uniffi(default = None)]
    pub max_message_size: Option<u64>,
    /// Most events waiting for the app to take them; when reached, the socket stops reading
    /// from the network until the app takes some (nothing is dropped; acks then wait too).
    #[uniffi(default = None)]
    pub inbox_max_events: Option<u32>,
    /// Most payload bytes of messages waiting for the app (the same pause applies).
    #[uniffi(default = None)]
    pub inbox_max_bytes: Option<u64>,
    /// Keep the outbox, resume cursor, dedup window and client id in
    /// `<store_directory>/<store_name>.steadyws`, so they survive the process: `send` returns
    /// once the message is durable. Envelope mode only; absent, everything lives in memory.
    #[uniffi(default = None)]
    pub store_directory: Option<String>,
    /// The store's name in its directory, so sockets can share one directory.
    #[uniffi(default = "default")]
    pub store_name: String,
    /// Also survive power loss or an OS crash (sync every commit to disk; slower). Without it
    /// the store survives the process being killed at any moment.
    #[uniffi(default = false)]
    pub store_sync_every_commit: bool,
    /// Resume position persisted by the app (`seq` of the last message it processed).
    #[uniffi(default = None)]
    pub resume_last_seq: Option<u64>,
    /// Resume position persisted by the app (`ts` of the last message it processed).
    #[uniffi(default = None)]
    pub resume_last_ts: Option<u64>,
}

fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}

/// `value` if given, else what `default` holds.
fn or_default<T>(value: Option<T>, default: &mut T) {
    if let Some(value) = value {
        *default = value;
    }
}

fn size(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

impl SocketConfig {
    /// Options with `url` and every other setting absent (the Rust defaults).
    pub fn new(url: impl Into<String>) -> Self {
        SocketConfig {
            url: url.into(),
            raw_mode: false,
            headers: HashMap::new(),
            subprotocols: Vec::new(),
            connect_timeout_ms: None,
            heartbeat: None,
            heartbeat_interval_ms: None,
            heartbeat_timeout_ms: None,
            probe_timeout_ms: None,
            ack_probe_after_ms: None,
            backoff_initial_ms: None,
            backoff_max_ms: None,
            max_attempts: None,
            background: None,
            background_grace_ms: None,
            outbox_max_messages: None,
            outbox_max_bytes: None,
            outbox_max_message_bytes: None,
            outbox_drop_oldest: false,
            extra_root_certs_pem: Vec::new(),
            pinned_spki_sha256: Vec::new(),
            proxy: None,
            max_message_size: None,
            inbox_max_events: None,
            inbox_max_bytes: None,
            store_directory: None,
            store_name: "default".into(),
            store_sync_every_commit: false,
            resume_last_seq: None,
            resume_last_ts: None,
        }
    }

    /// The Rust configuration these options describe: the Rust defaults, with what is given.
    pub fn to_socket_config(&self) -> steadyws::SocketConfig {
        let mut config = if self.raw_mode {
            steadyws::SocketConfig::raw(self.url.clone())
        } else {
            steadyws::SocketConfig::new(self.url.clone())
        };
        let engine = &mut config.engine;
        or_default(self.connect_timeout_ms.map(ms), &mut engine.connect_timeout);
        engine.heartbeat = self.heartbeat_mode(engine.heartbeat);
        or_default(self.probe_timeout_ms.map(ms), &mut engine.probe_timeout);
        if let Some(after) = self.ack_probe_after_ms {
            engine.ack_probe_after = Some(ms(after));
        }
        or_default(self.backoff_initial_ms.map(ms), &mut engine.backoff.initial);
        or_default(self.backoff_max_ms.map(ms), &mut engine.backoff.max);
        if self.max_attempts.is_some() {
            engine.backoff.max_attempts = self.max_attempts;
        }
        if let Some(BackgroundMode::DisconnectAfterGrace) = self.background {
            let grace = self
                .background_grace_ms
                .map_or(BackgroundPolicy::DEFAULT_GRACE, ms);
            engine.background = BackgroundPolicy::DisconnectAfter(grace);
        } else if let Some(BackgroundMode::KeepAlive) = self.background {
            engine.background = BackgroundPolicy::KeepAlive;
        }
        let outbox = &mut engine.outbox;
        or_default(
            self.outbox_max_messages.map(|n| n as usize),
            &mut outbox.max_messages,
        );
        or_default(self.outbox_max_bytes.map(size), &mut outbox.max_bytes);
        or_default(
            self.outbox_max_message_bytes.map(size),
            &mut outbox.max_message_bytes,
        );
        if self.outbox_drop_oldest {
            outbox.overflow = OverflowPolicy::DropOldest;
        }
        if self.resume_last_seq.is_some() || self.resume_last_ts.is_some() {
            engine.resume.initial = ResumeCursor {
                last_seq: self.resume_last_seq,
                last_ts: self.resume_last_ts,
            };
        }
        config.headers = self
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        config.subprotocols = self.subprotocols.clone();
        config.extra_root_certs_pem = self.extra_root_certs_pem.clone();
        config.pinned_spki_sha256 = self.pinned_spki_sha256.clone();
        config.proxy = self.proxy.clone();
        or_default(
            self.max_message_size.map(size),
            &mut config.max_message_size,
        );
        or_default(
            self.inbox_max_events.map(|n| n as usize),
            &mut config.inbox_max_events,
        );
        or_default(self.inbox_max_bytes.map(size), &mut config.inbox_max_bytes);
        config.store = self.store_directory.as_ref().map(|directory| StoreConfig {
            sync_every_commit: self.store_sync_every_commit,
            ..StoreConfig::new(directory, self.store_name.clone())
        });
        config
    }

    /// The heartbeat asked for, with the timings of `default` where none are given.
    fn heartbeat_mode(&self, default: HeartbeatMode) -> HeartbeatMode {
        let (default_interval, default_timeout) = match default {
            HeartbeatMode::JsonPing { interval, timeout }
            | HeartbeatMode::WebSocketPing { interval, timeout } => (interval, timeout),
            HeartbeatMode::ServerDriven { silence_timeout } => (silence_timeout, silence_timeout),
        };
        let interval = self.heartbeat_interval_ms.map_or(default_interval, ms);
        let timeout = self.heartbeat_timeout_ms.map_or(default_timeout, ms);
        let kind = match (self.heartbeat, default) {
            (Some(kind), _) => kind,
            (None, HeartbeatMode::WebSocketPing { .. }) => HeartbeatKind::WebSocketPing,
            (None, HeartbeatMode::ServerDriven { .. }) => HeartbeatKind::ServerDriven,
            (None, HeartbeatMode::JsonPing { .. }) => HeartbeatKind::JsonPing,
        };
        match kind {
            HeartbeatKind::JsonPing => HeartbeatMode::JsonPing { interval, timeout },
            HeartbeatKind::WebSocketPing => HeartbeatMode::WebSocketPing { interval, timeout },
            HeartbeatKind::ServerDriven => HeartbeatMode::ServerDriven {
                silence_timeout: timeout,
            },
        }
    }
}

/// How long a socket made with `config` keeps its connection in the background before closing
/// it gracefully, in milliseconds, with the Rust default resolved; `None` when it keeps the
/// connection (`KeepAlive`). For adapters that hold a background task around that close.
#[uniffi::export]
pub fn background_disconnect_after_ms(config: SocketConfig) -> Option<u64> {
    match config.to_socket_config().engine.background {
        BackgroundPolicy::DisconnectAfter(grace) => {
            Some(u64::try_from(grace.as_millis()).unwrap_or(u64::MAX))
        }
        BackgroundPolicy::KeepAlive => None,
    }
}

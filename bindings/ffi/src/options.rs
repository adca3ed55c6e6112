//! Socket configuration as a record with defaults, so each language gets named arguments.

use std::collections::HashMap;
use std::time::Duration;

use steadyws::engine::{BackgroundPolicy, HeartbeatMode, OverflowPolicy, ResumeCursor};
use steadyws::{SocketConfig, StoreConfig};

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

/// Everything a socket can be configured with; only `url` is required.
#[derive(Clone, Debug, uniffi::Record)]
pub struct SocketOptions {
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
    #[uniffi(default = 10000)]
    pub connect_timeout_ms: u64,
    /// Dead-connection detection.
    #[uniffi(default = None)]
    pub heartbeat: Option<HeartbeatKind>,
    /// Idle time before a ping.
    #[uniffi(default = 10000)]
    pub heartbeat_interval_ms: u64,
    /// Wait for any frame after a ping (or total silence, server-driven).
    #[uniffi(default = 5000)]
    pub heartbeat_timeout_ms: u64,
    /// How long a foreground or network-change probe may go unanswered.
    #[uniffi(default = 2000)]
    pub probe_timeout_ms: u64,
    /// First reconnect delay.
    #[uniffi(default = 1000)]
    pub backoff_initial_ms: u64,
    /// Longest reconnect delay.
    #[uniffi(default = 30000)]
    pub backoff_max_ms: u64,
    /// Give up after this many failed attempts in a row (unlimited when absent).
    #[uniffi(default = None)]
    pub max_attempts: Option<u32>,
    /// Background behaviour.
    #[uniffi(default = None)]
    pub background: Option<BackgroundMode>,
    /// Grace period for `DisconnectAfterGrace`.
    #[uniffi(default = 30000)]
    pub background_grace_ms: u64,
    /// Most queued messages (about half an hour of 50 small messages a second).
    #[uniffi(default = 100000)]
    pub outbox_max_messages: u32,
    /// Most queued bytes (16 MiB).
    #[uniffi(default = 16777216)]
    pub outbox_max_bytes: u64,
    /// The largest single message accepted by `send` (1 MiB); keep it below the server's limit.
    #[uniffi(default = 1048576)]
    pub outbox_max_message_bytes: u64,
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
    #[uniffi(default = 4194304)]
    pub max_message_size: u64,
    /// Most events waiting for the app to take them; when reached, the socket stops reading
    /// from the network until the app takes some (nothing is dropped; acks then wait too).
    #[uniffi(default = 10000)]
    pub inbox_max_events: u32,
    /// Most payload bytes of messages waiting for the app (the same pause applies).
    #[uniffi(default = 8388608)]
    pub inbox_max_bytes: u64,
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

impl SocketOptions {
    /// The Rust configuration these options describe.
    pub fn to_socket_config(&self) -> SocketConfig {
        let mut config = if self.raw_mode {
            SocketConfig::raw(self.url.clone())
        } else {
            SocketConfig::new(self.url.clone())
        };
        let engine = &mut config.engine;
        engine.connect_timeout = ms(self.connect_timeout_ms);
        let (interval, timeout) = (
            ms(self.heartbeat_interval_ms),
            ms(self.heartbeat_timeout_ms),
        );
        let kind = self.heartbeat.unwrap_or(if self.raw_mode {
            HeartbeatKind::WebSocketPing
        } else {
            HeartbeatKind::JsonPing
        });
        engine.heartbeat = match kind {
            HeartbeatKind::JsonPing => HeartbeatMode::JsonPing { interval, timeout },
            HeartbeatKind::WebSocketPing => HeartbeatMode::WebSocketPing { interval, timeout },
            HeartbeatKind::ServerDriven => HeartbeatMode::ServerDriven {
                silence_timeout: timeout,
            },
        };
        engine.probe_timeout = ms(self.probe_timeout_ms);
        engine.backoff.initial = ms(self.backoff_initial_ms);
        engine.backoff.max = ms(self.backoff_max_ms);
        engine.backoff.max_attempts = self.max_attempts;
        engine.background = match self.background.unwrap_or(BackgroundMode::KeepAlive) {
            BackgroundMode::KeepAlive => BackgroundPolicy::KeepAlive,
            BackgroundMode::DisconnectAfterGrace => {
                BackgroundPolicy::DisconnectAfter(ms(self.background_grace_ms))
            }
        };
        engine.outbox.max_messages = self.outbox_max_messages as usize;
        engine.outbox.max_bytes = usize::try_from(self.outbox_max_bytes).unwrap_or(usize::MAX);
        engine.outbox.max_message_bytes =
            usize::try_from(self.outbox_max_message_bytes).unwrap_or(usize::MAX);
        engine.outbox.overflow = if self.outbox_drop_oldest {
            OverflowPolicy::DropOldest
        } else {
            OverflowPolicy::RejectNew
        };
        engine.resume.initial = ResumeCursor {
            last_seq: self.resume_last_seq,
            last_ts: self.resume_last_ts,
        };
        config.headers = self
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        config.subprotocols = self.subprotocols.clone();
        config.extra_root_certs_pem = self.extra_root_certs_pem.clone();
        config.pinned_spki_sha256 = self.pinned_spki_sha256.clone();
        config.proxy = self.proxy.clone();
        config.max_message_size = usize::try_from(self.max_message_size).unwrap_or(usize::MAX);
        config.inbox_max_events = self.inbox_max_events as usize;
        config.inbox_max_bytes = usize::try_from(self.inbox_max_bytes).unwrap_or(usize::MAX);
        config.store = self.store_directory.as_ref().map(|directory| StoreConfig {
            sync_every_commit: self.store_sync_every_commit,
            ..StoreConfig::new(directory, self.store_name.clone())
        });
        config
    }
}

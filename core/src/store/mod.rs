//! The durable store: one socket's outbox, resume cursor, dedup window and client id, kept in an
//! SQLite file so they outlive the process (`SocketConfig::store`).
//!
//! [`durable`] is the one place a socket's durability is decided: what to write when, the take
//! rule, and waiting until a step is durable; the pump reaches it only through its `Journal`
//! hook, so the dependency runs one way, from here to `net`. [`file`] owns the file format,
//! opening with its one-owner lock, and recovery from damage; `writer` owns the thread that
//! applies changes in group commits and releases the file while the app is in the background.
//! The engine knows nothing of any of it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub use error::StoreError;

use crate::engine::{MessageId, ResumeCursor};

pub(crate) mod durable;
mod error;
#[cfg(feature = "store")]
pub(crate) mod file;
#[cfg(not(feature = "store"))]
#[path = "unavailable.rs"]
pub(crate) mod file;
mod in_hand;
mod writer;

/// Where a socket keeps what must survive the process: `<directory>/<name>.steadyws`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// The directory (created if missing). On iOS, a directory inside Application Support; on
    /// Android, `Context.getNoBackupFilesDir()` or `filesDir`.
    pub directory: PathBuf,
    /// The store's name within the directory, so several sockets can share one: 1 to 64
    /// characters out of `A-Z a-z 0-9 . _ -`, not starting with a dot.
    pub name: String,
    /// Also survive a power loss or an OS crash, by syncing every commit to the disk (slower).
    /// Off, commits reach the OS at once and survive the process being killed at any moment;
    /// the disk gets them at the next checkpoint.
    pub sync_every_commit: bool,
}

impl StoreConfig {
    /// A store named `name` in `directory`, surviving process kills.
    pub fn new(directory: impl Into<PathBuf>, name: impl Into<String>) -> Self {
        StoreConfig {
            directory: directory.into(),
            name: name.into(),
            sync_every_commit: false,
        }
    }

    /// The store file.
    pub fn path(&self) -> PathBuf {
        self.directory.join(format!("{}.steadyws", self.name))
    }

    /// Why the name cannot be used, if it cannot.
    pub(crate) fn name_problem(&self) -> Option<String> {
        let name = &self.name;
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if name.is_empty() || name.len() > 64 || name.starts_with('.') || !name.chars().all(allowed)
        {
            return Some(format!(
                "{name:?} is not a usable store name: use 1 to 64 characters out of A-Z a-z 0-9 . _ -, not starting with a dot"
            ));
        }
        None
    }
}

/// A client message as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredMessage {
    pub id: String,
    /// The JSON payload as given to `send`.
    pub data: String,
    /// Wall-clock milliseconds since the Unix epoch.
    pub created_ms: u64,
    pub expires_ms: Option<u64>,
}

impl StoredMessage {
    /// Message `id`, sent now with `data` and an optional time-to-live.
    pub fn sent_now(id: &MessageId, data: String, ttl: Option<Duration>) -> Self {
        let created_ms = unix_ms(SystemTime::now());
        let ttl_ms = |ttl: Duration| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        StoredMessage {
            id: id.0.clone(),
            data,
            created_ms,
            expires_ms: ttl.map(|ttl| created_ms.saturating_add(ttl_ms(ttl))),
        }
    }
}

/// What an earlier run left in the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub client_id: Option<String>,
    /// Position of the last message the app committed.
    pub cursor: ResumeCursor,
    /// Ids of messages the app committed, oldest first, with when (wall ms).
    pub seen: Vec<(String, u64)>,
    /// Ids of messages the app had taken but not committed when it stopped.
    pub in_hand: Vec<String>,
    /// Messages not yet acknowledged, in send order.
    pub pending: Vec<StoredMessage>,
}

/// A damaged store that was rebuilt from what could be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Recovery {
    pub problem: String,
    pub recovered_messages: usize,
    pub moved_to: Option<String>,
}

/// One change, applied in order with others in one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// `send` queued a message.
    Enqueue(StoredMessage),
    /// A message failed (expired, evicted, rejected) or was cancelled: written promptly, since
    /// the app was told and may act on it (send it again, say).
    Remove(String),
    /// A message was acknowledged: written with the next commit, or after a short delay.
    Acked(String),
    /// The app took a batch: the previous batch is committed (its ids join the dedup window and
    /// the cursor moves past it), and the new batch is in hand.
    Take {
        committed: Vec<String>,
        cursor: Option<ResumeCursor>,
        in_hand: Vec<String>,
        at_ms: u64,
    },
    /// Where a first connection started, before the app took anything.
    Cursor(ResumeCursor),
    /// The identity the server knows this client by.
    ClientId(String),
}

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_ms(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

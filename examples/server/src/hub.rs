//! The stream: sequencing, the bounded history used for replay, dedup of client message ids
//! scoped to their sender, and waking connections when something new is published.
//!
//! Connections do not receive copies of messages; they remember the last seq they sent and read
//! what is newer from the history when woken. Replay after a reconnect and live fan-out are the
//! same code path, and a slow connection can never miss a message (only fall out of the window).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::store::{SqliteStore, StoreError};

/// A message in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamMessage {
    /// Position, from 1, strictly increasing.
    pub seq: u64,
    /// Unique id (the client's id for client messages).
    pub id: String,
    /// Server wall clock, milliseconds since the Unix epoch.
    pub ts: u64,
    /// Payload, JSON text.
    pub data: String,
}

impl StreamMessage {
    /// What it costs the history, roughly.
    fn bytes(&self) -> usize {
        self.data.len() + self.id.len()
    }
}

/// What the hub remembers of a stored client message, to tell a resend from a forgery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sender {
    /// Who sent it: the client id of its connection (`""` for clients that give none).
    pub client: String,
    /// The first 16 bytes of the SHA-256 of its data; `None` for rows written before digests
    /// were kept, which match any content.
    pub digest: Option<[u8; 16]>,
}

/// The digest [`Sender`] keeps of a message's data.
pub fn digest(data: &str) -> [u8; 16] {
    let hash = ring::digest::digest(&ring::digest::SHA256, data.as_bytes());
    let mut digest = [0; 16];
    digest.copy_from_slice(&hash.as_ref()[..16]);
    digest
}

/// How much the hub keeps.
#[derive(Clone, Debug)]
pub struct Retention {
    /// Most messages kept for replay.
    pub history_max: usize,
    /// Messages older than this are dropped from the replay window.
    pub history_max_age: Duration,
    /// Most bytes of ids and data kept for replay.
    pub history_max_bytes: usize,
    /// Most client message ids remembered for dedup (keep it larger than the history).
    pub acked_max: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            history_max: 10_000,
            history_max_age: Duration::from_secs(3600),
            history_max_bytes: 64 * 1024 * 1024,
            acked_max: 100_000,
        }
    }
}

/// Result of publishing a client message.
#[derive(Debug, PartialEq, Eq)]
pub enum Published {
    /// Stored and fanned out under this seq.
    New(u64),
    /// Stored earlier by the same sender with the same data (a resend after a reconnect): ack
    /// again, store nothing.
    Duplicate,
    /// The id belongs to a stored message of another sender, or to other data: refuse it, so
    /// nobody can get a message acked that the stream holds with different content.
    Conflict,
}

/// What a connection should send after `after`.
#[derive(Debug)]
pub struct Since {
    /// Messages newer than the cursor, in order.
    pub messages: Vec<Arc<StreamMessage>>,
    /// Some messages after the cursor have left the window and cannot be replayed.
    pub truncated: bool,
}

struct State {
    history: VecDeque<Arc<StreamMessage>>,
    history_bytes: usize,
    head: u64,
    acked: HashMap<String, Sender>,
    acked_order: VecDeque<String>,
    store: Option<SqliteStore>,
}

/// The shared stream of one server.
pub struct Hub {
    state: Mutex<State>,
    retention: Retention,
    head_tx: watch::Sender<u64>,
}

impl Hub {
    /// A hub over `store` (loading what it holds), or in memory.
    pub fn new(store: Option<SqliteStore>, retention: Retention) -> Result<Self, StoreError> {
        let loaded = match &store {
            Some(store) => store.load()?,
            None => Default::default(),
        };
        let head = loaded.head.max(loaded.messages.last().map_or(0, |m| m.seq));
        let state = State {
            history_bytes: loaded.messages.iter().map(StreamMessage::bytes).sum(),
            history: loaded.messages.into_iter().map(Arc::new).collect(),
            head,
            acked_order: loaded.acked.iter().map(|(id, _)| id.clone()).collect(),
            acked: loaded.acked.into_iter().collect(),
            store,
        };
        let (head_tx, _) = watch::channel(head);
        Ok(Hub {
            state: Mutex::new(state),
            retention,
            head_tx,
        })
    }

    /// Whether publishing touches the disk (callers then run it off the async threads).
    pub fn is_durable(&self) -> bool {
        self.lock().store.is_some()
    }

    /// The newest seq (0 when nothing was ever published).
    pub fn head(&self) -> u64 {
        self.lock().head
    }

    /// Messages retained now.
    pub fn history_len(&self) -> usize {
        self.lock().history.len()
    }

    /// Woken whenever the head moves.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.head_tx.subscribe()
    }

    /// Store, sequence and fan out a message from client `sender`, unless its id was stored
    /// before. Returns only after the store has committed it.
    pub fn publish_client(
        &self,
        sender: &str,
        id: &str,
        data: &str,
        now_ms: u64,
    ) -> Result<Published, StoreError> {
        let mut state = self.lock();
        let digest = digest(data);
        if let Some(stored) = state.acked.get(id) {
            let same = stored.client == sender && stored.digest.is_none_or(|d| d == digest);
            return Ok(if same {
                Published::Duplicate
            } else {
                Published::Conflict
            });
        }
        let from = Sender {
            client: sender.to_owned(),
            digest: Some(digest),
        };
        let seq = self.append(&mut state, id.to_owned(), data, now_ms, Some(from))?;
        Ok(Published::New(seq))
    }

    /// Publish a server-originated message; returns its seq. Stores `data` as given:
    /// [`crate::RunningServer::publish`] first checks that sessions can forward it.
    pub fn publish_server(&self, data: &str, now_ms: u64) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let id = format!("srv-{}", state.head + 1);
        self.append(&mut state, id, data, now_ms, None)
    }

    /// Messages after `after` (a seq, any value a client may send).
    pub fn since(&self, after: u64) -> Since {
        let state = self.lock();
        let oldest = state
            .history
            .front()
            .map_or(state.head.saturating_add(1), |m| m.seq);
        let skip = state.history.partition_point(|m| m.seq <= after);
        Since {
            messages: state.history.iter().skip(skip).cloned().collect(),
            truncated: after.saturating_add(1) < oldest && after < state.head,
        }
    }

    /// The seq just before the first retained message newer than `ts` (for `last_ts` resumes).
    pub fn seq_before_ts(&self, ts: u64) -> u64 {
        let state = self.lock();
        match state.history.iter().find(|m| m.ts > ts) {
            Some(first_newer) => first_newer.seq - 1,
            None => state.head,
        }
    }

    fn append(
        &self,
        state: &mut State,
        id: String,
        data: &str,
        now_ms: u64,
        sender: Option<Sender>,
    ) -> Result<u64, StoreError> {
        let message = StreamMessage {
            seq: state.head + 1,
            id,
            ts: now_ms,
            data: data.to_owned(),
        };
        // Decide what leaves the window before touching anything, so a failed write changes
        // nothing.
        let evicted = self.evicted_by(state, &message);
        let keep_messages_after = evicted.checked_sub(1).map_or(0, |i| state.history[i].seq);
        let acked_after = (message.seq as usize).saturating_sub(self.retention.acked_max) as u64;
        if let Some(store) = state.store.as_mut() {
            store.append(&message, sender.as_ref(), keep_messages_after, acked_after)?;
        }
        let seq = message.seq;
        state.head = seq;
        if let Some(sender) = sender {
            state.acked.insert(message.id.clone(), sender);
            state.acked_order.push_back(message.id.clone());
            while state.acked_order.len() > self.retention.acked_max {
                if let Some(old) = state.acked_order.pop_front() {
                    state.acked.remove(&old);
                }
            }
        }
        state.history_bytes += message.bytes();
        state.history.push_back(Arc::new(message));
        for _ in 0..evicted {
            if let Some(old) = state.history.pop_front() {
                state.history_bytes -= old.bytes();
            }
        }
        self.head_tx.send_replace(seq);
        Ok(seq)
    }

    /// How many messages leave the window, oldest first, once `incoming` joins it: past the
    /// count, the age or the byte bound. The incoming message always stays, so that connections
    /// can forward it, even when it alone is larger than the byte bound.
    fn evicted_by(&self, state: &State, incoming: &StreamMessage) -> usize {
        let retention = &self.retention;
        let too_old = incoming
            .ts
            .saturating_sub(retention.history_max_age.as_millis() as u64);
        let mut len = state.history.len() + 1;
        let mut bytes = state.history_bytes + incoming.bytes();
        let mut evicted = 0;
        for message in &state.history {
            if len <= retention.history_max
                && bytes <= retention.history_max_bytes
                && message.ts >= too_old
            {
                break;
            }
            len -= 1;
            bytes -= message.bytes();
            evicted += 1;
        }
        evicted
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the stream half-written (each append is
        // complete before the head moves), so the state is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(history_max: usize) -> Hub {
        let retention = Retention {
            history_max,
            acked_max: 5,
            ..Retention::default()
        };
        Hub::new(None, retention).unwrap()
    }

    #[test]
    fn client_ids_are_stored_once() {
        let hub = hub(100);
        assert_eq!(
            hub.publish_client("me", "a", "1", 10).unwrap(),
            Published::New(1)
        );
        assert_eq!(
            hub.publish_client("me", "a", "1", 11).unwrap(),
            Published::Duplicate
        );
        assert_eq!(
            hub.publish_client("me", "b", "2", 12).unwrap(),
            Published::New(2)
        );
        assert_eq!(hub.publish_server("3", 13).unwrap(), 3);
        assert_eq!(hub.head(), 3);
        let since = hub.since(1);
        assert_eq!(
            since.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
            [2, 3]
        );
        assert!(!since.truncated);
    }

    #[test]
    fn a_known_id_from_another_sender_or_with_other_data_is_a_conflict() {
        let hub = hub(100);
        assert_eq!(
            hub.publish_client("victim", "id-1", r#"{"text":"mine"}"#, 1)
                .unwrap(),
            Published::New(1)
        );
        assert_eq!(
            hub.publish_client("attacker", "id-1", r#"{"text":"mine"}"#, 2)
                .unwrap(),
            Published::Conflict
        );
        assert_eq!(
            hub.publish_client("victim", "id-1", r#"{"text":"forged"}"#, 3)
                .unwrap(),
            Published::Conflict
        );
        assert_eq!(
            hub.publish_client("victim", "id-1", r#"{"text":"mine"}"#, 4)
                .unwrap(),
            Published::Duplicate
        );
        assert_eq!(hub.head(), 1);
        assert_eq!(hub.since(0).messages[0].data, r#"{"text":"mine"}"#);
    }

    #[test]
    fn history_is_bounded_by_bytes_but_keeps_the_newest_message() {
        let hub = Hub::new(
            None,
            Retention {
                history_max_bytes: 1000,
                ..Retention::default()
            },
        )
        .unwrap();
        let kilobyte = "x".repeat(300);
        for _ in 0..10 {
            hub.publish_server(&kilobyte, 1).unwrap();
        }
        // 300 bytes of data and 5 or 6 of id each: three fit in 1000 bytes.
        assert_eq!(hub.history_len(), 3);
        let huge = "y".repeat(5000);
        let seq = hub.publish_server(&huge, 1).unwrap();
        assert_eq!(hub.since(seq - 1).messages[0].data, huge, "still forwarded");
        assert_eq!(hub.history_len(), 1);
    }

    #[test]
    fn any_cursor_a_client_sends_is_safe() {
        let hub = hub(3);
        for i in 0..5 {
            hub.publish_server(&i.to_string(), 1).unwrap();
        }
        let since = hub.since(u64::MAX);
        assert!(since.messages.is_empty() && !since.truncated);
        assert!(hub.since(0).truncated);
        let empty = Hub::new(None, Retention::default()).unwrap();
        assert!(!empty.since(u64::MAX).truncated);
    }

    #[test]
    fn history_is_bounded_and_truncation_is_reported() {
        let hub = hub(3);
        for i in 0..10 {
            hub.publish_server(&i.to_string(), 100).unwrap();
        }
        assert_eq!(hub.history_len(), 3);
        let since = hub.since(2);
        assert!(since.truncated);
        assert_eq!(since.messages.first().map(|m| m.seq), Some(8));
        assert!(!hub.since(7).truncated);
        assert!(!hub.since(10).truncated && hub.since(10).messages.is_empty());
    }

    #[test]
    fn old_messages_leave_the_window_by_age() {
        let retention = Retention {
            history_max_age: Duration::from_secs(1),
            ..Retention::default()
        };
        let hub = Hub::new(None, retention).unwrap();
        hub.publish_server("1", 1_000).unwrap();
        hub.publish_server("2", 3_000).unwrap();
        assert_eq!(hub.history_len(), 1);
    }

    #[test]
    fn ts_resume_finds_the_first_newer_message() {
        let hub = hub(100);
        for ts in [10, 20, 30] {
            hub.publish_server("0", ts).unwrap();
        }
        assert_eq!(hub.seq_before_ts(20), 2);
        assert_eq!(hub.seq_before_ts(5), 0);
        assert_eq!(hub.seq_before_ts(99), 3);
    }

    #[test]
    fn acked_ids_are_bounded() {
        let hub = hub(100);
        for i in 0..10 {
            hub.publish_client("me", &format!("c{i}"), "0", 1).unwrap();
        }
        assert_eq!(
            hub.publish_client("me", "c9", "0", 1).unwrap(),
            Published::Duplicate
        );
        assert_eq!(
            hub.publish_client("me", "c0", "0", 1).unwrap(),
            Published::New(11),
            "forgotten after acked_max"
        );
    }

    #[test]
    fn a_durable_hub_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("steadyws-hub-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        {
            let hub =
                Hub::new(Some(SqliteStore::open(&dir).unwrap()), Retention::default()).unwrap();
            assert!(hub.is_durable());
            hub.publish_client("me", "x", r#"{"a":1}"#, 5).unwrap();
            hub.publish_server("2", 6).unwrap();
        }
        let hub = Hub::new(Some(SqliteStore::open(&dir).unwrap()), Retention::default()).unwrap();
        assert_eq!(hub.head(), 2);
        assert_eq!(
            hub.publish_client("me", "x", r#"{"a":1}"#, 7).unwrap(),
            Published::Duplicate
        );
        assert_eq!(
            hub.publish_client("other", "x", r#"{"a":1}"#, 7).unwrap(),
            Published::Conflict,
            "the sender is kept across restarts"
        );
        assert_eq!(
            hub.publish_client("me", "x", r#"{"a":2}"#, 7).unwrap(),
            Published::Conflict,
            "and so is the digest"
        );
        let replay = hub.since(0).messages;
        assert_eq!(replay[0].data, r#"{"a":1}"#);
        assert_eq!(replay[1].id, "srv-2");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

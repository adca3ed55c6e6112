//! Durable storage for `--data-dir`: the stream history, the seq counter and the ids of client
//! messages already acknowledged, in SQLite. Every write is committed (with `synchronous=FULL`)
//! before the server sends the ack, so a SIGKILL loses nothing it acknowledged.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::hub::{Sender, StreamMessage};

/// A storage failure; the server closes the affected connection with 1011 and keeps running.
#[derive(Debug, thiserror::Error)]
#[error("store error: {0}")]
pub struct StoreError(#[from] rusqlite::Error);

/// What a previous run left behind.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Retained stream messages, oldest first.
    pub messages: Vec<StreamMessage>,
    /// Ids of client messages acked, with who sent what, oldest first.
    pub acked: Vec<(String, Sender)>,
    /// The last seq assigned.
    pub head: u64,
}

/// The SQLite store in `<data-dir>/steadyws.sqlite3`.
pub struct SqliteStore {
    db: Connection,
}

impl SqliteStore {
    /// Open (or create) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = Connection::open(dir.join("steadyws.sqlite3"))?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, ts INTEGER NOT NULL, data TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS acked (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, sender TEXT NOT NULL DEFAULT '', digest BLOB);
             CREATE INDEX IF NOT EXISTS acked_by_seq ON acked (seq);
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);",
        )?;
        // Stores written before dedup was scoped to the sender lack its columns; their rows
        // keep matching a resend from a client without an id, of any content.
        let has_sender: bool = db.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('acked') WHERE name = 'sender'",
            [],
            |row| row.get(0),
        )?;
        if !has_sender {
            db.execute_batch(
                "ALTER TABLE acked ADD COLUMN sender TEXT NOT NULL DEFAULT '';
                 ALTER TABLE acked ADD COLUMN digest BLOB;",
            )?;
        }
        Ok(SqliteStore { db })
    }

    /// Everything retained.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let mut select = self
            .db
            .prepare("SELECT seq, id, ts, data FROM messages ORDER BY seq")?;
        let messages = select
            .query_map([], |row| {
                Ok(StreamMessage {
                    seq: row.get::<_, i64>(0)? as u64,
                    id: row.get(1)?,
                    ts: row.get::<_, i64>(2)? as u64,
                    data: row.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut select = self
            .db
            .prepare("SELECT id, sender, digest FROM acked ORDER BY seq")?;
        let acked = select
            .query_map([], |row| {
                let digest: Option<Vec<u8>> = row.get(2)?;
                let sender = Sender {
                    client: row.get(1)?,
                    digest: digest.and_then(|d| d.try_into().ok()),
                };
                Ok((row.get(0)?, sender))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let head: Option<i64> = self
            .db
            .query_row("SELECT value FROM meta WHERE key = 'head'", [], |row| {
                row.get(0)
            })
            .optional()?;
        Ok(Loaded {
            messages,
            acked,
            head: head.unwrap_or(0) as u64,
        })
    }

    /// Append a stream message (and record its id and sender when it came from a client) in one
    /// committed transaction, pruning what falls out of the retention windows.
    pub fn append(
        &mut self,
        message: &StreamMessage,
        sender: Option<&Sender>,
        keep_messages_after: u64,
        keep_acked_after: u64,
    ) -> Result<(), StoreError> {
        let tx = self.db.transaction()?;
        tx.execute(
            "INSERT INTO messages (seq, id, ts, data) VALUES (?1, ?2, ?3, ?4)",
            params![
                message.seq as i64,
                message.id,
                message.ts as i64,
                message.data
            ],
        )?;
        if let Some(sender) = sender {
            tx.execute(
                "INSERT INTO acked (id, seq, sender, digest) VALUES (?1, ?2, ?3, ?4)",
                params![
                    message.id,
                    message.seq as i64,
                    sender.client,
                    sender.digest.map(Vec::from)
                ],
            )?;
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('head', ?1) ON CONFLICT(key) DO UPDATE SET value = ?1",
            params![message.seq as i64],
        )?;
        tx.execute(
            "DELETE FROM messages WHERE seq <= ?1",
            params![keep_messages_after as i64],
        )?;
        tx.execute(
            "DELETE FROM acked WHERE seq <= ?1",
            params![keep_acked_after as i64],
        )?;
        tx.commit()?;
        Ok(())
    }
}

//! The store file: SQLite in WAL mode, held with an exclusive lock by its one owner.
//!
//! Why these settings: WAL makes a commit one append to the log, and with `synchronous=NORMAL`
//! a commit is complete once it reaches the OS, so a process killed the next instant keeps it
//! (a torn append is detected by the log's checksums and dropped, taking only the transaction
//! being written). `locking_mode=EXCLUSIVE` takes the file lock at open and keeps it, so a
//! second owner fails at once with a clear error instead of interleaving writes; it also means
//! no shared-memory index file. Closing the connection releases everything, which is what the
//! socket does while the app is in the background.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

use super::{Change, Recovery, Snapshot, StoreConfig, StoreError, StoredMessage, unix_ms};
use crate::engine::ResumeCursor;

/// The newest format this build reads and writes (`PRAGMA user_version`).
pub const FORMAT: u32 = 1;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS outbox (
        pos INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        data TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER
    );
    CREATE TABLE IF NOT EXISTS seen (
        pos INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL,
        taken_ms INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS in_hand (id TEXT PRIMARY KEY) WITHOUT ROWID;
";

/// An open store, owned by this process until dropped.
pub struct StoreFile {
    db: Connection,
    /// Most committed ids kept for dedup (the engine's window).
    seen_limit: usize,
}

/// What opening found.
pub struct Opened {
    pub file: StoreFile,
    pub snapshot: Snapshot,
    pub recovery: Option<Recovery>,
}

/// Why an open failed, before it is turned into a [`StoreError`] or a recovery.
enum Failure {
    InUse,
    Newer(u32),
    Damaged(String),
    Other(String),
}

impl From<rusqlite::Error> for Failure {
    fn from(err: rusqlite::Error) -> Self {
        // A value of the wrong type where the format says otherwise: the file was tampered
        // with or damaged in a way the integrity check does not see.
        if matches!(
            err,
            rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::IntegralValueOutOfRange(..)
        ) {
            return Failure::Damaged(err.to_string());
        }
        match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Failure::InUse,
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                Failure::Damaged(err.to_string())
            }
            _ => Failure::Other(err.to_string()),
        }
    }
}

impl StoreFile {
    /// Open (or create) the store and read what it holds. A damaged file is moved aside and
    /// rebuilt from what could be read of it; the returned [`Recovery`] says what happened.
    pub fn open(config: &StoreConfig, seen_limit: usize) -> Result<Opened, StoreError> {
        let path = config.path();
        let shown = path.display().to_string();
        std::fs::create_dir_all(&config.directory).map_err(|err| StoreError::Failed {
            path: config.directory.display().to_string(),
            detail: format!(
                "cannot create the directory ({err}); check that the app may write there"
            ),
        })?;
        let failed = |detail: String| StoreError::Failed {
            path: shown.clone(),
            detail,
        };
        match Self::open_intact(&path, config.sync_every_commit, seen_limit, true) {
            Ok((file, snapshot)) => Ok(Opened {
                file,
                snapshot,
                recovery: None,
            }),
            Err(Failure::InUse) => Err(StoreError::InUse { path: shown }),
            Err(Failure::Newer(found)) => Err(StoreError::NewerFormat {
                path: shown,
                found,
                supported: FORMAT,
            }),
            Err(Failure::Other(detail)) => Err(failed(detail)),
            Err(Failure::Damaged(problem)) => {
                let salvaged = salvage(&path);
                let moved_to = move_aside(&path).map_err(|err| {
                    failed(format!(
                        "it is damaged ({problem}) and cannot be moved aside: {err}"
                    ))
                })?;
                let (mut file, _) =
                    Self::open_intact(&path, config.sync_every_commit, seen_limit, true).map_err(
                        |_| failed(format!("it was damaged ({problem}) and cannot be rebuilt")),
                    )?;
                file.write_snapshot(&salvaged)
                    .map_err(|err| failed(format!("rebuilding it failed: {err}")))?;
                log::warn!(
                    "store {shown} was damaged ({problem}); rebuilt with {} pending messages, the damaged file is at {moved_to}",
                    salvaged.pending.len()
                );
                Ok(Opened {
                    file,
                    recovery: Some(Recovery {
                        problem,
                        recovered_messages: salvaged.pending.len(),
                        moved_to: Some(moved_to),
                    }),
                    snapshot: salvaged,
                })
            }
        }
    }

    /// Reopen after a release (the app came back from the background): no recovery here, a
    /// file that became unreadable meanwhile is an error for the caller to report.
    pub fn reopen(config: &StoreConfig, seen_limit: usize) -> Result<StoreFile, StoreError> {
        let path = config.path();
        let shown = path.display().to_string();
        Self::open_intact(&path, config.sync_every_commit, seen_limit, false)
            .map(|(file, _)| file)
            .map_err(|failure| match failure {
                Failure::InUse => StoreError::InUse { path: shown },
                Failure::Newer(found) => StoreError::NewerFormat {
                    path: shown,
                    found,
                    supported: FORMAT,
                },
                Failure::Damaged(detail) | Failure::Other(detail) => StoreError::Failed {
                    path: shown,
                    detail,
                },
            })
    }

    /// Open and lock the file; with `check`, verify and read it too (at start; a reopen after
    /// the background skips both, so a write there costs what it costs in the foreground).
    fn open_intact(
        path: &Path,
        sync_every_commit: bool,
        seen_limit: usize,
        check: bool,
    ) -> Result<(StoreFile, Snapshot), Failure> {
        let db = Connection::open(path)?;
        db.busy_timeout(std::time::Duration::ZERO)?;
        db.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        // Read the version before anything writes, so a newer store is left byte for byte.
        let version: u32 = db.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version > FORMAT {
            return Err(Failure::Newer(version));
        }
        let mode: String =
            db.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Failure::Other(format!(
                "cannot switch to WAL mode (got {mode})"
            )));
        }
        let sync = if sync_every_commit { "FULL" } else { "NORMAL" };
        db.pragma_update(None, "synchronous", sync)?;
        let mut file = StoreFile { db, seen_limit };
        // The first write takes the exclusive lock, held until the connection closes.
        let tx = file
            .db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
        if !check {
            // The lock is what a reopen is for: one small write takes it for good.
            tx.pragma_update(None, "user_version", FORMAT)?;
            tx.commit()?;
            return Ok((file, Snapshot::default()));
        }
        let verdict: String = tx.pragma_query_value(None, "quick_check", |row| row.get(0))?;
        if verdict != "ok" {
            return Err(Failure::Damaged(format!("integrity check: {verdict}")));
        }
        tx.execute_batch(SCHEMA)?;
        tx.pragma_update(None, "user_version", FORMAT)?;
        tx.commit()?;
        let snapshot = file.read_snapshot()?;
        Ok((file, snapshot))
    }

    fn read_snapshot(&self) -> rusqlite::Result<Snapshot> {
        read_snapshot(&self.db, ReadMode::Strict)
    }

    /// Apply `changes` in one transaction.
    pub fn apply(&mut self, changes: &[Change]) -> Result<(), String> {
        self.apply_in_transaction(changes)
            .map_err(|err| err.to_string())
    }

    fn apply_in_transaction(&mut self, changes: &[Change]) -> rusqlite::Result<()> {
        let tx = self.db.transaction()?;
        let mut took = false;
        for change in changes {
            match change {
                Change::Enqueue(message) => {
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO outbox (id, data, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![
                        message.id,
                        message.data,
                        as_sql(message.created_ms),
                        message.expires_ms.map(as_sql)
                    ])?;
                }
                Change::Remove(id) | Change::Acked(id) => {
                    tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?
                        .execute([id])?;
                }
                Change::Take {
                    committed,
                    cursor,
                    in_hand,
                    at_ms,
                } => {
                    took = true;
                    let mut insert =
                        tx.prepare_cached("INSERT INTO seen (id, taken_ms) VALUES (?1, ?2)")?;
                    for id in committed {
                        insert.execute(params![id, as_sql(*at_ms)])?;
                    }
                    if let Some(cursor) = cursor {
                        put_meta(&tx, "cursor_seq", cursor.last_seq)?;
                        put_meta(&tx, "cursor_ts", cursor.last_ts)?;
                    }
                    tx.execute("DELETE FROM in_hand", [])?;
                    let mut hold =
                        tx.prepare_cached("INSERT OR IGNORE INTO in_hand (id) VALUES (?1)")?;
                    for id in in_hand {
                        hold.execute([id])?;
                    }
                }
                Change::Cursor(cursor) => {
                    put_meta(&tx, "cursor_seq", cursor.last_seq)?;
                    put_meta(&tx, "cursor_ts", cursor.last_ts)?;
                }
                Change::ClientId(id) => {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES ('client_id', ?1)",
                    )?
                    .execute([id])?;
                }
            }
        }
        if took {
            tx.prepare_cached("DELETE FROM seen WHERE pos <= (SELECT MAX(pos) FROM seen) - ?1")?
                .execute([i64::try_from(self.seen_limit).unwrap_or(i64::MAX)])?;
        }
        tx.commit()
    }

    /// Write what was salvaged from a damaged file into this fresh one.
    fn write_snapshot(&mut self, snapshot: &Snapshot) -> rusqlite::Result<()> {
        let mut changes: Vec<Change> = snapshot
            .pending
            .iter()
            .cloned()
            .map(Change::Enqueue)
            .collect();
        if let Some(id) = &snapshot.client_id {
            changes.push(Change::ClientId(id.clone()));
        }
        self.apply_in_transaction(&changes)?;
        let tx = self.db.transaction()?;
        put_meta(&tx, "cursor_seq", snapshot.cursor.last_seq)?;
        put_meta(&tx, "cursor_ts", snapshot.cursor.last_ts)?;
        for (id, at) in &snapshot.seen {
            tx.execute(
                "INSERT INTO seen (id, taken_ms) VALUES (?1, ?2)",
                params![id, as_sql(*at)],
            )?;
        }
        for id in &snapshot.in_hand {
            tx.execute("INSERT OR IGNORE INTO in_hand (id) VALUES (?1)", [id])?;
        }
        tx.commit()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ReadMode {
    /// Any error fails the read.
    Strict,
    /// Keep what was read before an error (salvaging a damaged file).
    BestEffort,
}

fn read_snapshot(db: &Connection, mode: ReadMode) -> rusqlite::Result<Snapshot> {
    let best_effort = mode == ReadMode::BestEffort;
    let meta_u64 = |key: &str| -> rusqlite::Result<Option<u64>> {
        let value: Option<Option<i64>> = db
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()?;
        Ok(value.flatten().and_then(|v| u64::try_from(v).ok()))
    };
    let mut snapshot = Snapshot::default();
    let client_id = db
        .query_row(
            "SELECT value FROM meta WHERE key = 'client_id'",
            [],
            |row| row.get::<_, String>(0),
        )
        .optional();
    match client_id {
        Ok(id) => snapshot.client_id = id,
        Err(err) if !best_effort => return Err(err),
        Err(_) => {}
    }
    match (meta_u64("cursor_seq"), meta_u64("cursor_ts")) {
        (Ok(last_seq), Ok(last_ts)) => snapshot.cursor = ResumeCursor { last_seq, last_ts },
        (Err(err), _) | (_, Err(err)) if !best_effort => return Err(err),
        _ => {}
    }
    collect(
        db,
        "SELECT id, data, created_ms, expires_ms FROM outbox ORDER BY pos",
        |row| {
            Ok(StoredMessage {
                id: row.get(0)?,
                data: row.get(1)?,
                created_ms: from_sql(row.get(2)?),
                expires_ms: row.get::<_, Option<i64>>(3)?.map(from_sql),
            })
        },
        &mut snapshot.pending,
        mode,
    )?;
    collect(
        db,
        "SELECT id, taken_ms FROM seen ORDER BY pos",
        |row| Ok((row.get(0)?, from_sql(row.get(1)?))),
        &mut snapshot.seen,
        mode,
    )?;
    collect(
        db,
        "SELECT id FROM in_hand",
        |row| row.get(0),
        &mut snapshot.in_hand,
        mode,
    )?;
    Ok(snapshot)
}

/// Run `sql` and push its rows into `out`; best effort skips rows it cannot read and stops
/// quietly where the table itself cannot be read further.
fn collect<T>(
    db: &Connection,
    sql: &str,
    read: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    out: &mut Vec<T>,
    mode: ReadMode,
) -> rusqlite::Result<()> {
    let result = (|| {
        let mut statement = db.prepare(sql)?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            match read(row) {
                Ok(value) => out.push(value),
                // One unreadable row costs that row only.
                Err(_) if mode == ReadMode::BestEffort => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    })();
    match result {
        Err(_) if mode == ReadMode::BestEffort => Ok(()),
        other => other,
    }
}

/// Read what can be read of a damaged file.
fn salvage(path: &Path) -> Snapshot {
    let Ok(db) = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Snapshot::default();
    };
    read_snapshot(&db, ReadMode::BestEffort).unwrap_or_default()
}

/// Move a damaged file (and its log) aside; returns where the file went.
fn move_aside(path: &Path) -> std::io::Result<String> {
    let stamp = unix_ms(std::time::SystemTime::now());
    let aside = with_suffix(path, &format!(".damaged-{stamp}"));
    std::fs::rename(path, &aside)?;
    let wal = with_suffix(path, "-wal");
    if wal.exists() {
        std::fs::rename(&wal, with_suffix(&aside, "-wal"))?;
    }
    Ok(aside.display().to_string())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn put_meta(tx: &rusqlite::Transaction<'_>, key: &str, value: Option<u64>) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
        .execute(params![key, value.map(as_sql)])?;
    Ok(())
}

/// Times and positions are far below 2^63; saturate rather than wrap if one is not.
fn as_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn from_sql(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

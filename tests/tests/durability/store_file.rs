//! The store file under abuse: a second owner, a newer format, garbage, truncation, a torn
//! log tail, and the lock released while the app is in the background.

use std::io::Write;
use std::time::{Duration, Instant};

use steadyws::{AppState, Error, Event, Socket, StoreError};
use steadyws_server::{ServerConfig, start};
use steadyws_tests::support::*;

use crate::restart::durable;

const NOWHERE: &str = "ws://127.0.0.1:9/ws";

fn store_path(dir: &TempDir, name: &str) -> std::path::PathBuf {
    dir.path().join(format!("{name}.steadyws"))
}

/// Write three pending messages and close the store cleanly.
fn three_pending(dir: &TempDir) {
    let socket = Socket::new(durable(NOWHERE, dir, "app")).unwrap();
    for n in 0..3 {
        socket.send(&n.to_string()).unwrap();
    }
}

#[tokio::test]
async fn a_second_owner_is_refused_until_the_first_shuts_down() {
    let dir = TempDir::new("owner");
    let first = Socket::new(durable(NOWHERE, &dir, "app")).unwrap();
    let Err(err) = Socket::new(durable(NOWHERE, &dir, "app")) else {
        panic!("two owners of one store");
    };
    assert!(
        matches!(&err, Error::Store(StoreError::InUse { .. })),
        "{err}"
    );
    assert!(
        err.to_string().contains("in use by another socket"),
        "{err}"
    );
    // Another name in the same directory is another store.
    Socket::new(durable(NOWHERE, &dir, "other")).unwrap();
    first.close();
    Socket::new(durable(NOWHERE, &dir, "app")).unwrap();
}

#[tokio::test]
async fn a_store_from_a_newer_version_is_refused_and_left_alone() {
    let dir = TempDir::new("newer");
    three_pending(&dir);
    let path = store_path(&dir, "app");
    let mut bytes = std::fs::read(&path).unwrap();
    // The SQLite header keeps the format version (`user_version`) at offset 60, big-endian.
    bytes[60..64].copy_from_slice(&99u32.to_be_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let Err(err) = Socket::new(durable(NOWHERE, &dir, "app")) else {
        panic!("a newer store was opened");
    };
    assert_eq!(
        err,
        Error::Store(StoreError::NewerFormat {
            path: path.display().to_string(),
            found: 99,
            supported: 1
        })
    );
    assert!(err.to_string().contains("update the app"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "untouched");

    // Also one in the rollback-journal mode a future format might use: not switched to WAL.
    let other = TempDir::new("newer-rollback");
    let path = store_path(&other, "app");
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 2;")
        .unwrap();
    drop(db);
    let bytes = std::fs::read(&path).unwrap();
    let err = Socket::new(durable(NOWHERE, &other, "app")).unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::NewerFormat { found: 2, .. })),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "untouched");
}

/// Open a socket on a damaged store: it reports the damage once, first, and works.
async fn recovers(dir: &TempDir, problem_says: &str) -> usize {
    let server = start(ServerConfig::default()).await.unwrap();
    let socket = Socket::new(durable(&server.url(), dir, "app")).unwrap();
    let Some(Event::StoreRecovered {
        problem,
        recovered_messages,
        moved_to,
    }) = socket.try_next_event()
    else {
        panic!("no StoreRecovered event first");
    };
    assert!(problem.contains(problem_says), "{problem}");
    let moved_to = moved_to.expect("the damaged file is kept");
    assert!(std::path::Path::new(&moved_to).exists(), "{moved_to}");
    socket.connect();
    let (_, delivery) = socket
        .send_and_wait("\"after\"", None, Some(WAIT))
        .await
        .unwrap();
    assert_eq!(delivery, steadyws::Delivery::Acked);
    drop(socket);
    // Reported once: the rebuilt store is sound.
    let socket = Socket::new(durable(NOWHERE, dir, "app")).unwrap();
    assert!(
        !matches!(socket.try_next_event(), Some(Event::StoreRecovered { .. })),
        "reported again"
    );
    server.shutdown().await;
    recovered_messages
}

#[tokio::test]
async fn a_garbage_file_is_moved_aside_and_reported() {
    let dir = TempDir::new("garbage");
    let noise: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(store_path(&dir, "app"), noise).unwrap();
    assert_eq!(recovers(&dir, "not a database").await, 0);
}

#[tokio::test]
async fn a_truncated_file_is_rebuilt_from_what_can_be_read() {
    let dir = TempDir::new("truncated");
    three_pending(&dir);
    let path = store_path(&dir, "app");
    let length = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(length / 2)
        .unwrap();
    let recovered = recovers(&dir, "").await;
    assert!(recovered <= 3, "{recovered}");
}

#[tokio::test]
async fn a_row_of_the_wrong_type_costs_that_row_only() {
    let dir = TempDir::new("wrong-type");
    three_pending(&dir);
    let db = rusqlite::Connection::open(store_path(&dir, "app")).unwrap();
    db.execute("UPDATE outbox SET data = X'00ff' WHERE pos = 2", [])
        .unwrap();
    drop(db);
    assert_eq!(recovers(&dir, "Invalid column type").await, 2);
}

#[tokio::test]
async fn a_torn_log_tail_loses_no_message_whose_send_returned() {
    let dir = TempDir::new("torn");
    let copy = TempDir::new("torn-copy");
    let socket = Socket::new(durable(NOWHERE, &dir, "app")).unwrap();
    let sent: Vec<_> = (0..20)
        .map(|n| socket.send(&n.to_string()).unwrap())
        .collect();
    // What a SIGKILL leaves: the file and its log as they are while the socket is live, plus
    // the first bytes of a write that never finished.
    for suffix in ["", "-wal"] {
        let from = dir.path().join(format!("app.steadyws{suffix}"));
        let to = copy.path().join(format!("app.steadyws{suffix}"));
        std::fs::copy(&from, &to).unwrap();
    }
    let mut wal = std::fs::OpenOptions::new()
        .append(true)
        .open(copy.path().join("app.steadyws-wal"))
        .unwrap();
    wal.write_all(&[0x37, 0x7f, 0x06, 0x82, 0, 0, 0, 0, 0, 0, 0x10, 0])
        .unwrap();
    wal.write_all(&[0xa5; 3000]).unwrap();
    drop(wal);
    drop(socket);
    let restored = Socket::new(durable(NOWHERE, &copy, "app")).unwrap();
    let ids: Vec<_> = restored.pending().into_iter().map(|p| p.id).collect();
    assert_eq!(ids, sent);
    assert!(
        restored.try_next_event().is_none(),
        "nothing to report: the log checksums dropped the tail"
    );
}

#[tokio::test]
async fn in_the_background_the_store_is_closed_and_reopens_for_a_send_or_the_foreground() {
    let dir = TempDir::new("background");
    let socket = Socket::new(durable(NOWHERE, &dir, "app")).unwrap();
    socket.send("1").unwrap();
    socket.set_app_state(AppState::Background);
    // The release happens on the store's thread, at once.
    let deadline = Instant::now() + WAIT;
    let other = loop {
        match Socket::new(durable(NOWHERE, &dir, "app")) {
            Ok(other) => break other,
            Err(Error::Store(StoreError::InUse { .. })) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(err) => panic!("{err}"),
        }
    };
    assert_eq!(
        other.pending().len(),
        1,
        "it sees what the first socket stored"
    );
    // While someone else holds it, a send cannot be made durable: refused, not queued.
    let before = socket.pending().len();
    let err = socket.send("2").unwrap_err();
    assert!(
        matches!(err, Error::NotStored(StoreError::InUse { .. })),
        "{err}"
    );
    assert_eq!(socket.pending().len(), before);
    other.close();
    // In the background, a send opens the store for its write and closes it again.
    socket.send("3").unwrap();
    drop(Socket::new(durable(NOWHERE, &dir, "app")).unwrap());
    // Back in the foreground, the socket holds it again.
    socket.set_app_state(AppState::Foreground);
    let deadline = Instant::now() + WAIT;
    loop {
        match Socket::new(durable(NOWHERE, &dir, "app")) {
            Err(Error::Store(StoreError::InUse { .. })) => break,
            Ok(probe) => {
                drop(probe);
                assert!(Instant::now() < deadline, "never reopened");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(err) => panic!("{err}"),
        }
    }
    assert_eq!(socket.pending().len(), 2);
}

#[test]
fn a_store_needs_envelope_mode_and_a_plain_name() {
    let dir = TempDir::new("config");
    let mut raw = steadyws::SocketConfig::raw(NOWHERE);
    raw.store = Some(steadyws::StoreConfig::new(dir.path(), "app"));
    let err = Socket::new(raw).unwrap_err();
    assert!(err.to_string().contains("needs envelope mode"), "{err}");
    for name in ["", "../escape", ".hidden", "a/b", &"x".repeat(65)] {
        let err = Socket::new(durable(NOWHERE, &dir, name)).unwrap_err();
        assert!(
            err.to_string().contains("is not a usable store name"),
            "{name}: {err}"
        );
    }
}

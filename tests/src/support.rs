//! Waiting for what a socket reports, always with a deadline, and configurations tuned so that
//! tests over real sockets finish in seconds.

use std::time::Duration;

use steadyws::engine::HeartbeatMode;
use steadyws::{ConnectionError, Event, MessageId, Socket, SocketConfig, State};

/// Defaults shrunk for tests: fast heartbeat, short backoff, 3 s connect timeout.
pub fn quick(url: &str) -> SocketConfig {
    let mut config = SocketConfig::new(url);
    let engine = &mut config.engine;
    engine.connect_timeout = Duration::from_secs(3);
    engine.heartbeat = HeartbeatMode::JsonPing {
        interval: Duration::from_millis(500),
        timeout: Duration::from_millis(500),
    };
    engine.probe_timeout = Duration::from_millis(500);
    engine.backoff.initial = Duration::from_millis(100);
    engine.backoff.max = Duration::from_secs(1);
    engine.backoff.stable_after = Duration::from_secs(2);
    config
}

/// Wait until `pick` accepts an event, for at most `limit`. On timeout, panics listing what was
/// seen, so a failing test says why.
pub async fn wait_for<T>(
    socket: &Socket,
    limit: Duration,
    what: &str,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, socket.next_event()).await {
            Ok(Some(event)) => {
                if let Some(found) = pick(&event) {
                    return found;
                }
                seen.push(event);
            }
            Ok(None) => panic!("socket ended while waiting for {what}; saw {seen:#?}"),
            Err(_) => panic!("no {what} within {limit:?}; saw {seen:#?}"),
        }
    }
}

/// Collect every event for `duration`.
pub async fn collect_for(socket: &Socket, duration: Duration) -> Vec<Event> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + duration;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, socket.next_event()).await {
        events.push(event);
    }
    events
}

/// The bound on every wait in the end-to-end suite.
pub const WAIT: Duration = Duration::from_secs(10);

/// Wait for the state to become `Open`.
pub async fn wait_open(socket: &Socket) {
    wait_state(socket, "Open", |s| *s == State::Open).await;
}

/// Wait for a state change matching `accept`; returns the state.
pub async fn wait_state(socket: &Socket, what: &str, accept: impl Fn(&State) -> bool) -> State {
    wait_for(socket, WAIT, what, |e| match e {
        Event::StateChanged { state, .. } if accept(state) => Some(state.clone()),
        _ => None,
    })
    .await
}

/// Wait for the next state change caused by a connection problem; returns the problem.
pub async fn next_error(socket: &Socket) -> ConnectionError {
    next_failure(socket).await.1
}

/// Wait for the next state change caused by a connection problem; returns the new state and
/// the problem.
pub async fn next_failure(socket: &Socket) -> (State, ConnectionError) {
    wait_for(socket, WAIT, "a connection error", |e| match e {
        Event::StateChanged { state, cause } => Some((state.clone(), cause.problem().cloned()?)),
        _ => None,
    })
    .await
}

/// Wait for the ack of `id`.
pub async fn wait_acked(socket: &Socket, id: &MessageId) {
    wait_for(socket, WAIT, "the ack", |e| {
        matches!(e, Event::Acked(acked) if acked == id).then_some(())
    })
    .await;
}

/// Resident memory of process `pid` in bytes, from `/proc` (Linux only; 0 where unreadable).
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// A fresh directory under the system's temp dir, removed on drop.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// A new empty directory whose name starts with `label`.
    pub fn new(label: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("steadyws-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

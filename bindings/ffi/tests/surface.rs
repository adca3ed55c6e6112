//! The FFI surface from Rust: defaults match the Rust API, bad input becomes typed errors (never a
//! panic), the listener survives a host that throws, and waits end with outcomes.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use steadyws_ffi::{
    ListenerError, NativeSocket, NetworkStatus, OpenOutcome, SendOutcome, SocketEvent,
    SocketListener, SocketOptions, SocketState, StateCause, SteadyError, WaitCancellation,
    live_native_sockets,
};

fn options(url: &str) -> SocketOptions {
    SocketOptions {
        url: url.into(),
        raw_mode: false,
        headers: Default::default(),
        subprotocols: vec![],
        connect_timeout_ms: 10_000,
        heartbeat: None,
        heartbeat_interval_ms: 10_000,
        heartbeat_timeout_ms: 5_000,
        probe_timeout_ms: 2_000,
        backoff_initial_ms: 1_000,
        backoff_max_ms: 30_000,
        max_attempts: None,
        background: None,
        background_grace_ms: 30_000,
        outbox_max_messages: 100_000,
        outbox_max_bytes: 16_777_216,
        outbox_max_message_bytes: 1_048_576,
        outbox_drop_oldest: false,
        extra_root_certs_pem: vec![],
        pinned_spki_sha256: vec![],
        proxy: None,
        max_message_size: 4_194_304,
        inbox_max_events: 10_000,
        inbox_max_bytes: 8_388_608,
        store_directory: None,
        store_name: "default".into(),
        store_sync_every_commit: false,
        resume_last_seq: None,
        resume_last_ts: None,
    }
}

#[test]
fn options_mapping_reproduces_the_rust_defaults() {
    let from_ffi = options("ws://h/ws").to_socket_config();
    let rust = steadyws::SocketConfig::new("ws://h/ws");
    assert_eq!(from_ffi.engine, rust.engine);
    assert_eq!(from_ffi.max_message_size, rust.max_message_size);
    assert_eq!(from_ffi.inbox_max_events, rust.inbox_max_events);
    assert_eq!(from_ffi.inbox_max_bytes, rust.inbox_max_bytes);
    assert_eq!(from_ffi.store, rust.store);
}

#[test]
fn bad_input_is_a_typed_error() {
    let url_error = |url: &str| NativeSocket::new(options(url)).err().expect("refused");
    assert!(
        matches!(url_error("http://h:1/ws"), SteadyError::InvalidUrl { message } if message.contains("use ws://h:1/ws"))
    );
    assert!(matches!(url_error(""), SteadyError::InvalidUrl { .. }));
    let mut bad = options("ws://h/ws");
    bad.backoff_initial_ms = 0;
    assert!(
        matches!(NativeSocket::new(bad), Err(SteadyError::InvalidConfig { message }) if message.contains("backoff.initial"))
    );
    let mut bad = options("ws://h/ws");
    bad.headers.insert("bad header".into(), "x".into());
    assert!(matches!(
        NativeSocket::new(bad),
        Err(SteadyError::InvalidConfig { .. })
    ));

    let socket = NativeSocket::new(options("ws://127.0.0.1:9/ws")).unwrap();
    assert!(matches!(
        socket.send("{oops".into()),
        Err(SteadyError::NotJson { .. })
    ));
    assert!(matches!(
        socket.send_binary(vec![1]),
        Err(SteadyError::WrongMode { .. })
    ));
    let huge = format!("\"{}\"", "x".repeat(2 * 1024 * 1024));
    assert!(matches!(
        socket.send(huge),
        Err(SteadyError::MessageTooLarge { .. })
    ));
    assert!(socket.send(r#"{"fine":true}"#.into()).is_ok());
    assert_eq!(socket.stats().outbox_len, 1);
    assert_eq!(socket.state(), SocketState::Idle);
}

/// A host listener that throws on every other event.
struct Flaky {
    calls: Mutex<u32>,
    seen: mpsc::Sender<SocketEvent>,
}

impl SocketListener for Flaky {
    fn on_event(&self, event: SocketEvent) -> Result<(), ListenerError> {
        let mut calls = self.calls.lock().unwrap();
        *calls += 1;
        let _ = self.seen.send(event);
        if *calls % 2 == 1 {
            Err(ListenerError::Failed {
                reason: "host exception".into(),
            })
        } else {
            Ok(())
        }
    }
}

#[test]
fn a_throwing_listener_keeps_receiving_events() {
    let socket = NativeSocket::new(options("ws://127.0.0.1:9/ws")).unwrap();
    let (tx, rx) = mpsc::channel();
    socket.set_listener(Some(Arc::new(Flaky {
        calls: Mutex::new(0),
        seen: tx,
    })));
    socket.set_network(NetworkStatus::Unavailable);
    socket.connect(); // no network: straight to WaitingForNetwork
    socket.disconnect();
    let first = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("first event");
    let second = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("delivery continues after the throw");
    assert_eq!(
        first,
        SocketEvent::StateChanged {
            state: SocketState::WaitingForNetwork,
            cause: StateCause::App,
        }
    );
    assert_eq!(
        second,
        SocketEvent::StateChanged {
            state: SocketState::Closed,
            cause: StateCause::App,
        }
    );
    socket.set_listener(None);
}

#[test]
fn states_print_the_rust_sentences() {
    let reconnecting = SocketState::Reconnecting {
        attempt: 2,
        retry_in_ms: 400,
    };
    assert_eq!(
        reconnecting.to_string(),
        "reconnecting (attempt 2 in 400 ms)"
    );
    assert_eq!(
        SocketState::WaitingForNetwork.to_string(),
        "waiting for network"
    );
    let failed = SocketState::Failed {
        reason: "failed: nope".into(),
        retryable: false,
    };
    assert_eq!(failed.to_string(), "failed: nope");
}

/// Poll `future` to completion on this thread, outside any tokio runtime: the way UniFFI hosts
/// (Python's event loop, Kotlin coroutines, Swift tasks) drive the socket's async methods.
fn block_on_host<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

#[test]
fn a_cancelled_wait_ends_at_once_as_timed_out_and_leaves_the_message_queued() {
    let socket = NativeSocket::new(options("ws://127.0.0.1:9/ws")).unwrap();
    let id = socket.send(r#"{"n":1}"#.into()).unwrap();
    let cancellation = WaitCancellation::new();
    let canceller = Arc::clone(&cancellation);
    let cancelling = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        canceller.cancel();
    });
    // Without the cancellation, neither wait would ever end: no limit, nothing listens.
    assert_eq!(
        block_on_host(socket.wait_open(None, Some(Arc::clone(&cancellation)))),
        OpenOutcome::TimedOut
    );
    cancelling.join().unwrap();
    assert!(cancellation.is_cancelled());
    // A token cancelled before the wait ends it at once too.
    assert_eq!(
        block_on_host(socket.wait_acked(id.clone(), None, Some(cancellation))),
        SendOutcome::TimedOut { id: id.clone() }
    );
    let pending: Vec<String> = socket.pending().into_iter().map(|m| m.id).collect();
    assert_eq!(pending, vec![id], "only the wait ended");
    socket.close();
}

#[test]
fn live_native_sockets_counts_what_the_host_holds() {
    // Other tests of this binary make sockets in parallel: count only this test's difference,
    // with a margin for theirs, by making many.
    let made: Vec<_> = (0..64)
        .map(|_| NativeSocket::new(options("ws://127.0.0.1:9/ws")).unwrap())
        .collect();
    assert!(live_native_sockets() >= 64);
    let with = live_native_sockets();
    drop(made);
    assert!(
        live_native_sockets() + 64 <= with + 8,
        "64 released sockets still counted"
    );
}

#[test]
fn waits_on_the_side_answer_with_outcomes_and_end_at_close() {
    let socket = NativeSocket::new(options("ws://127.0.0.1:9/ws")).unwrap();
    let outcome = block_on_host(socket.send_and_wait(r#"{"n":1}"#.into(), Some(50))).unwrap();
    let SendOutcome::TimedOut { id } = outcome else {
        panic!("never connected, so never acked: {outcome:?}")
    };
    assert!(matches!(
        block_on_host(socket.wait_acked("nobody".into(), Some(50), None)),
        SendOutcome::Unknown { .. }
    ));
    assert_eq!(
        block_on_host(socket.wait_open(Some(50), None)),
        OpenOutcome::TimedOut
    );
    socket.close();
    assert_eq!(socket.state(), SocketState::Closed);
    assert_eq!(
        block_on_host(socket.wait_open(None, None)),
        OpenOutcome::Closed
    );
    assert!(matches!(
        block_on_host(socket.wait_acked(id, None, None)),
        SendOutcome::Closed { .. }
    ));
    assert!(
        matches!(
            block_on_host(socket.send_and_wait("2".into(), None)),
            Ok(SendOutcome::Closed { .. })
        ),
        "nothing waits forever on a closed socket"
    );
}

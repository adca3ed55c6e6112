//! The FFI surface from Rust: absent settings are the Rust defaults, bad input becomes typed
//! errors with one kind per situation (never a panic), one reader at a time, waits end with
//! success or a kind, and the status watch follows the socket.

use std::sync::Arc;
use std::time::Duration;

use steadyws::NetworkStatus;
use steadyws_ffi::{
    ErrorKind, HeartbeatKind, NativeError, NativeSocket, SendFailureKind, SocketConfig,
    SocketEvent, SocketState, StateCause, WaitCancellation, live_native_sockets,
};

fn config(url: &str) -> SocketConfig {
    SocketConfig::new(url)
}

/// The kind of a failure, or a panic naming what succeeded instead.
fn kind<T: std::fmt::Debug>(result: Result<T, NativeError>) -> ErrorKind {
    match result {
        Err(NativeError::Failure { kind, .. }) => kind,
        Ok(value) => panic!("expected a failure, got {value:?}"),
    }
}

fn detail<T: std::fmt::Debug>(result: Result<T, NativeError>) -> String {
    match result {
        Err(NativeError::Failure { detail, .. }) => detail,
        Ok(value) => panic!("expected a failure, got {value:?}"),
    }
}

#[test]
fn absent_settings_are_the_rust_defaults() {
    let envelope = config("ws://h/ws").to_socket_config();
    let rust = steadyws::SocketConfig::new("ws://h/ws");
    assert_eq!(format!("{envelope:?}"), format!("{rust:?}"));
    assert_eq!(envelope.engine, rust.engine);

    let mut raw = config("ws://h/ws");
    raw.raw_mode = true;
    let raw = raw.to_socket_config();
    let rust_raw = steadyws::SocketConfig::raw("ws://h/ws");
    assert_eq!(format!("{raw:?}"), format!("{rust_raw:?}"));

    // A setting given replaces its default and nothing else.
    let mut tuned = config("ws://h/ws");
    tuned.heartbeat_interval_ms = Some(2_500);
    tuned.heartbeat = Some(HeartbeatKind::WebSocketPing);
    tuned.inbox_max_events = Some(7);
    tuned.ack_probe_after_ms = Some(750);
    let tuned = tuned.to_socket_config();
    let mut expected = steadyws::SocketConfig::new("ws://h/ws");
    let steadyws::engine::HeartbeatMode::JsonPing { timeout, .. } = expected.engine.heartbeat
    else {
        panic!("envelope mode defaults to the JSON ping");
    };
    expected.engine.heartbeat = steadyws::engine::HeartbeatMode::WebSocketPing {
        interval: Duration::from_millis(2_500),
        timeout,
    };
    expected.inbox_max_events = 7;
    expected.engine.ack_probe_after = Some(Duration::from_millis(750));
    assert_eq!(format!("{tuned:?}"), format!("{expected:?}"));
}

#[test]
fn bad_input_is_one_kind_per_situation() {
    let made = |config: SocketConfig| NativeSocket::new(config).map(|_| ());
    let refused = made(config("http://h:1/ws"));
    assert!(detail(made(config("http://h:1/ws"))).contains("use ws://h:1/ws"));
    assert_eq!(kind(refused), ErrorKind::InvalidUrl);
    assert_eq!(kind(made(config(""))), ErrorKind::InvalidUrl);
    let mut bad = config("ws://h/ws");
    bad.backoff_initial_ms = Some(0);
    assert!(detail(made(bad.clone())).contains("backoff.initial"));
    assert_eq!(kind(made(bad)), ErrorKind::InvalidOptions);
    let mut bad = config("ws://h/ws");
    bad.headers.insert("bad header".into(), "x".into());
    assert_eq!(kind(made(bad)), ErrorKind::InvalidOptions);

    let socket = NativeSocket::new(config("ws://127.0.0.1:9/ws")).unwrap();
    assert_eq!(kind(socket.send("{oops".into(), None)), ErrorKind::NotJson);
    let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
    assert!(detail(socket.send(deep.clone(), None)).contains("nested deeper than 64 levels"));
    assert_eq!(kind(socket.send(deep, None)), ErrorKind::NotJson);
    assert_eq!(kind(socket.send_binary(vec![1])), ErrorKind::WrongMode);
    let huge = format!("\"{}\"", "x".repeat(2 * 1024 * 1024));
    assert_eq!(kind(socket.send(huge, None)), ErrorKind::MessageTooLarge);
    assert!(socket.send(r#"{"fine":true}"#.into(), None).is_ok());
    assert_eq!(socket.stats().outbox_len, 1);
    assert_eq!(socket.state(), SocketState::Idle);
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

/// Cancel `token` from another thread after a moment.
fn cancel_soon(token: &Arc<WaitCancellation>) -> std::thread::JoinHandle<()> {
    let token = Arc::clone(token);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        token.cancel();
    })
}

#[test]
fn a_cancelled_wait_fails_as_cancelled_and_leaves_the_message_queued() {
    let socket = NativeSocket::new(config("ws://127.0.0.1:9/ws")).unwrap();
    let id = socket.send(r#"{"n":1}"#.into(), None).unwrap();
    let cancellation = WaitCancellation::new();
    let cancelling = cancel_soon(&cancellation);
    // Without the cancellation, neither wait would ever end: no limit, nothing listens.
    let opened = block_on_host(socket.wait_open(None, Some(Arc::clone(&cancellation))));
    assert_eq!(kind(opened), ErrorKind::Cancelled);
    cancelling.join().unwrap();
    // A token cancelled before the wait ends it at once too, naming the message.
    match block_on_host(socket.wait_acked(id.clone(), None, Some(cancellation))) {
        Err(NativeError::Failure {
            kind: ErrorKind::Cancelled,
            message_id,
            ..
        }) => assert_eq!(message_id.as_deref(), Some(id.as_str())),
        other => panic!("{other:?}"),
    }
    let pending: Vec<String> = socket.pending().into_iter().map(|m| m.id).collect();
    assert_eq!(pending, vec![id], "only the wait ended");
    socket.close();
}

#[test]
fn one_reader_at_a_time_and_a_cancelled_read_frees_the_socket() {
    let socket = Arc::new(NativeSocket::new(config("ws://127.0.0.1:9/ws")).unwrap());
    let cancellation = WaitCancellation::new();
    let reader = {
        let socket = Arc::clone(&socket);
        let cancellation = Arc::clone(&cancellation);
        std::thread::spawn(move || block_on_host(socket.next_events(Some(cancellation))))
    };
    // The first reader waits (nothing happens on an idle socket); a second one is refused.
    let refused = (0..200).find_map(|_| {
        std::thread::sleep(Duration::from_millis(10));
        match socket.try_next_events() {
            Err(NativeError::Failure { kind, .. }) => Some(kind),
            Ok(_) => None,
        }
    });
    assert_eq!(refused, Some(ErrorKind::AlreadyReading));
    cancellation.cancel();
    assert_eq!(kind(reader.join().unwrap()), ErrorKind::Cancelled);
    // The claim ended with the cancelled read: the next reader gets the next event.
    socket.set_network(NetworkStatus::Unavailable);
    socket.connect(); // no network: straight to WaitingForNetwork
    let events = block_on_host(socket.next_events(None)).unwrap();
    assert_eq!(
        events,
        vec![SocketEvent::StateChanged {
            state: SocketState::WaitingForNetwork,
            cause: StateCause::App,
        }]
    );
    socket.close();
    let last = block_on_host(socket.next_events(None)).unwrap();
    assert!(
        matches!(
            &last[..],
            [SocketEvent::StateChanged {
                state: SocketState::Closed,
                ..
            }]
        ),
        "{last:?}"
    );
    assert_eq!(
        block_on_host(socket.next_events(None)).unwrap(),
        vec![],
        "the stream ended"
    );
}

#[test]
fn live_native_sockets_counts_what_the_host_holds() {
    // Other tests of this binary make sockets in parallel: count only this test's difference,
    // with a margin for theirs, by making many.
    let made: Vec<_> = (0..64)
        .map(|_| NativeSocket::new(config("ws://127.0.0.1:9/ws")).unwrap())
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
fn waits_fail_with_their_kind_and_end_at_close() {
    let socket = NativeSocket::new(config("ws://127.0.0.1:9/ws")).unwrap();
    let waited = block_on_host(socket.send_and_wait(r#"{"n":1}"#.into(), None, Some(50), None));
    let Err(NativeError::Failure {
        kind: ErrorKind::TimedOut,
        message_id: Some(id),
        ..
    }) = waited
    else {
        panic!("never connected, so never acked: {waited:?}")
    };
    let unknown = block_on_host(socket.wait_acked("nobody".into(), Some(50), None));
    assert_eq!(kind(unknown), ErrorKind::UnknownMessage);
    let opened = block_on_host(socket.wait_open(Some(50), None));
    assert_eq!(kind(opened), ErrorKind::TimedOut);
    socket.close();
    assert_eq!(socket.state(), SocketState::Closed);
    assert_eq!(
        kind(block_on_host(socket.wait_open(None, None))),
        ErrorKind::Closed
    );
    let acked = block_on_host(socket.wait_acked(id, None, None));
    assert_eq!(kind(acked), ErrorKind::Closed);
    let sent = block_on_host(socket.send_and_wait("2".into(), None, None, None));
    assert_eq!(
        kind(sent),
        ErrorKind::Closed,
        "nothing waits forever on a closed socket"
    );
}

#[test]
fn send_and_wait_with_a_ttl_fails_as_expired() {
    let socket = NativeSocket::new(config("ws://127.0.0.1:9/ws")).unwrap();
    let started = std::time::Instant::now();
    let waited = block_on_host(socket.send_and_wait("1".into(), Some(100), Some(10_000), None));
    match waited {
        Err(NativeError::Failure {
            kind: ErrorKind::SendFailed,
            send_failure: Some(SendFailureKind::Expired),
            message_id: Some(_),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the ttl ended it"
    );
    assert!(socket.pending().is_empty());
    socket.close();
}

#[test]
fn the_status_watch_follows_state_and_outbox_and_ends_at_close() {
    let socket = NativeSocket::new(config("ws://127.0.0.1:9/ws")).unwrap();
    let watch = socket.watch();
    let first = block_on_host(watch.changed(None)).expect("the status now");
    assert_eq!((first.state, first.outbox_len), (SocketState::Idle, 0));
    socket.send("1".into(), None).unwrap();
    let queued = block_on_host(watch.changed(None)).expect("a change");
    assert_eq!(queued.outbox_len, 1);
    socket.close();
    let closed = block_on_host(watch.changed(None)).expect("the close");
    assert_eq!(closed.state, SocketState::Closed);
    assert_eq!(block_on_host(watch.changed(None)), None, "the watch ends");

    // A cancelled watch ends too.
    let other = NativeSocket::new(config("ws://127.0.0.1:9/ws")).unwrap();
    let watch = other.watch();
    block_on_host(watch.changed(None)).expect("the status now");
    let cancellation = WaitCancellation::new();
    let cancelling = cancel_soon(&cancellation);
    assert_eq!(block_on_host(watch.changed(Some(cancellation))), None);
    cancelling.join().unwrap();
    other.close();
}

#[test]
fn the_background_grace_is_resolved_from_the_rust_default() {
    let mut graceful = config("ws://h/ws");
    assert_eq!(
        steadyws_ffi::background_disconnect_after_ms(graceful.clone()),
        None
    );
    graceful.background = Some(steadyws_ffi::BackgroundMode::DisconnectAfterGrace);
    let default = steadyws::engine::BackgroundPolicy::DEFAULT_GRACE.as_millis() as u64;
    assert_eq!(
        steadyws_ffi::background_disconnect_after_ms(graceful.clone()),
        Some(default)
    );
    graceful.background_grace_ms = Some(20_000);
    assert_eq!(
        steadyws_ffi::background_disconnect_after_ms(graceful),
        Some(20_000)
    );
}

//! The happy paths: connect, send, ack, receive, raw mode, auth refresh, disconnect.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use steadyws::{Cause, Event, HeadersProvider, Socket, SocketConfig, State};
use steadyws_server::{ServerConfig, start};
use steadyws_tests::support::*;

#[tokio::test]
async fn sends_are_acked_and_fanned_out_to_every_client() {
    let server = start(ServerConfig::default()).await.unwrap();
    let alice = Socket::new(quick(&server.url())).unwrap();
    let bob = Socket::new(quick(&server.url())).unwrap();
    alice.connect();
    bob.connect();
    for socket in [&alice, &bob] {
        wait_for(socket, WAIT, "Open", |e| {
            matches!(
                e,
                Event::StateChanged {
                    state: State::Open,
                    ..
                }
            )
            .then_some(())
        })
        .await;
    }
    let id = alice.send(r#"{"text":"hi bob"}"#).unwrap();
    let acked = wait_for(&alice, WAIT, "ack", |e| match e {
        Event::Acked(acked) => Some(acked.clone()),
        _ => None,
    })
    .await;
    assert_eq!(acked, id);
    let message = wait_for(&bob, WAIT, "fan-out", |e| match e {
        Event::Message(m) => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        message.id.as_deref(),
        Some(id.0.as_str()),
        "the stream keeps the client's id"
    );
    assert_eq!(message.seq, Some(1));
    assert_eq!(
        message.data,
        steadyws::Payload::Json(r#"{"text":"hi bob"}"#.into())
    );
    let stats = alice.stats();
    assert_eq!((stats.messages_acked, stats.outbox_len), (1, 0));
    assert_eq!(server.hub().head(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn messages_sent_before_connect_are_delivered_once_connected() {
    let server = start(ServerConfig::default()).await.unwrap();
    let socket = Socket::new(quick(&server.url())).unwrap();
    let ids: Vec<_> = (0..20)
        .map(|i| socket.send(&format!("{{\"n\":{i}}}")).unwrap())
        .collect();
    assert_eq!(socket.state(), State::Idle);
    socket.connect();
    let mut acked = Vec::new();
    while acked.len() < ids.len() {
        acked.push(
            wait_for(&socket, WAIT, "acks", |e| match e {
                Event::Acked(id) => Some(id.clone()),
                _ => None,
            })
            .await,
        );
    }
    assert_eq!(acked, ids, "in send order");
    let stored: Vec<String> = server
        .hub()
        .since(0)
        .messages
        .iter()
        .map(|m| m.data.clone())
        .collect();
    assert_eq!(
        stored,
        (0..20)
            .map(|i| format!("{{\"n\":{i}}}"))
            .collect::<Vec<_>>()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn raw_mode_echoes_text_and_binary() {
    let server = start(ServerConfig::default()).await.unwrap();
    let mut config = SocketConfig::raw(server.raw_url());
    config.engine.backoff.initial = Duration::from_millis(100);
    let socket = Socket::new(config).unwrap();
    socket.connect();
    socket.send_text("plain text").unwrap();
    socket.send_binary(&[0, 159, 146, 150]).unwrap();
    let mut echoed = Vec::new();
    while echoed.len() < 2 {
        echoed.push(
            wait_for(&socket, WAIT, "echo", |e| match e {
                Event::Message(m) => Some(m.data.clone()),
                _ => None,
            })
            .await,
        );
    }
    assert_eq!(
        echoed,
        [
            steadyws::Payload::Text("plain text".into()),
            steadyws::Payload::Binary(vec![0, 159, 146, 150])
        ]
    );
    assert!(socket.send(r#"{"json":"is sent as text"}"#).is_ok());
    server.shutdown().await;
}

/// A raw-mode app sending faster than its peer reads is pushed back (`send` fails with
/// `OutboxFull` while the outbox is full) instead of having its connection failed with what
/// waited in it; every message `send` accepted reaches the peer once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_mode_pushes_back_on_a_fast_sender_and_loses_nothing() {
    use futures_util::StreamExt;
    use steadyws::{Error, SendError};
    use tokio_tungstenite::tungstenite::Message;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (received, mut arrivals) = tokio::sync::mpsc::unbounded_channel::<String>();
    // A peer that reads a frame every 2 ms, while the app sends as fast as it can.
    let peer = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Text(text) = message {
                let _ = received.send(text[..6].to_owned());
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });
    let mut config = SocketConfig::raw(format!("ws://{addr}/"));
    config.engine.outbox.max_messages = 64;
    let socket = Socket::new(config).unwrap();
    socket.connect();
    wait_open(&socket).await;
    let filler = "x".repeat(16 * 1024);
    let (mut accepted, mut refused) = (0u32, 0u32);
    let sending = std::time::Instant::now();
    while sending.elapsed() < Duration::from_secs(3) {
        match socket.send_text(&format!("{accepted:06}{filler}")) {
            Ok(_) => accepted += 1,
            Err(Error::Send(SendError::OutboxFull { .. })) => {
                refused += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(other) => panic!("send failed: {other}"),
        }
    }
    assert!(
        refused > 0,
        "{accepted} sent without ever filling the outbox"
    );
    let mut seen = Vec::new();
    while seen.len() < accepted as usize {
        match tokio::time::timeout(Duration::from_secs(30), arrivals.recv()).await {
            Ok(Some(number)) => seen.push(number),
            other => panic!("{} of {accepted} arrived, then {other:?}", seen.len()),
        }
    }
    let expected: Vec<String> = (0..accepted).map(|n| format!("{n:06}")).collect();
    assert_eq!(seen, expected, "each once, in order");
    assert_eq!(
        socket.stats().reconnects,
        0,
        "the connection was never failed"
    );
    let failures = socket
        .try_next_events(usize::MAX)
        .into_iter()
        .filter(|e| matches!(e, Event::SendFailed { .. } | Event::StateChanged { .. }))
        .count();
    assert_eq!(failures, 0, "no message failed, no state change");
    socket.close();
    peer.abort();
}

struct RotatingToken {
    calls: AtomicUsize,
    refreshes: AtomicUsize,
}

impl HeadersProvider for RotatingToken {
    fn headers(&self, after_auth_failure: bool) -> Vec<(String, String)> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let token = if after_auth_failure {
            self.refreshes.fetch_add(1, Ordering::SeqCst);
            "fresh"
        } else {
            "expired"
        };
        vec![("Authorization".into(), format!("Bearer {token}"))]
    }
}

#[tokio::test]
async fn a_refused_token_is_refreshed_once_through_the_headers_provider() {
    let server = start(ServerConfig {
        require_token: Some("fresh".into()),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let provider = Arc::new(RotatingToken {
        calls: AtomicUsize::new(0),
        refreshes: AtomicUsize::new(0),
    });
    let mut config = quick(&server.url());
    config.headers_provider = Some(provider.clone());
    let socket = Socket::new(config).unwrap();
    socket.connect();
    let error = next_error(&socket).await;
    assert_eq!(
        error,
        steadyws::ConnectionError::Handshake {
            status: 401,
            retry_after: None
        }
    );
    assert!(error.to_string().contains("refresh the token"), "{error}");
    wait_for(&socket, WAIT, "Open", |e| {
        matches!(
            e,
            Event::StateChanged {
                state: State::Open,
                ..
            }
        )
        .then_some(())
    })
    .await;
    assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
    assert_eq!(provider.refreshes.load(Ordering::SeqCst), 1);

    // A provider that can only produce the bad token: one refresh, then Failed, no retry storm.
    let stuck = Socket::new({
        let mut config = quick(&server.url());
        config.headers = vec![("Authorization".into(), "Bearer wrong".into())];
        config
    })
    .unwrap();
    stuck.connect();
    let failed = wait_for(&stuck, WAIT, "Failed", |e| match e {
        Event::StateChanged {
            state: state @ State::Failed { .. },
            ..
        } => Some(state.clone()),
        _ => None,
    })
    .await;
    assert!(failed.to_string().contains("401"), "{failed}");
    assert_eq!(stuck.stats().attempt, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn disconnect_closes_gracefully_and_connect_resumes() {
    let server = start(ServerConfig::default()).await.unwrap();
    let socket = Socket::new(quick(&server.url())).unwrap();
    socket.connect();
    wait_for(&socket, WAIT, "Open", |e| {
        matches!(
            e,
            Event::StateChanged {
                state: State::Open,
                ..
            }
        )
        .then_some(())
    })
    .await;
    socket.disconnect();
    wait_for(&socket, WAIT, "Closed", |e| {
        matches!(
            e,
            Event::StateChanged {
                state: State::Closed,
                ..
            }
        )
        .then_some(())
    })
    .await;
    server.publish(r#"{"while":"away"}"#).unwrap();
    let queued = socket.send(r#"{"queued":true}"#).unwrap();
    socket.connect();
    let replayed = wait_for(&socket, WAIT, "replay", |e| match e {
        Event::Message(m) => Some(m.data.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        replayed,
        steadyws::Payload::Json(r#"{"while":"away"}"#.into())
    );
    wait_for(&socket, WAIT, "ack", |e| {
        matches!(e, Event::Acked(id) if *id == queued).then_some(())
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn server_shutdown_is_a_close_1001_and_the_socket_comes_back() {
    let server = start(ServerConfig::default()).await.unwrap();
    let addr = server.addr();
    let socket = Socket::new(quick(&server.url())).unwrap();
    socket.connect();
    wait_for(&socket, WAIT, "Open", |e| {
        matches!(
            e,
            Event::StateChanged {
                state: State::Open,
                ..
            }
        )
        .then_some(())
    })
    .await;
    server.shutdown().await;
    let lost = next_error(&socket).await;
    assert!(
        matches!(lost, steadyws::ConnectionError::Closed { code: 1001, .. }),
        "{lost:?}"
    );
    let again = start(ServerConfig {
        listen: addr,
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    wait_for(&socket, WAIT, "Open again", |e| {
        matches!(
            e,
            Event::StateChanged {
                state: State::Open,
                ..
            }
        )
        .then_some(())
    })
    .await;
    again.shutdown().await;
}

#[tokio::test]
async fn subprotocols_and_static_headers_reach_the_server() {
    let server = start(ServerConfig {
        require_token: Some("static".into()),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let mut config = quick(&server.url());
    config.subprotocols = vec!["chat.v2".into(), "chat.v1".into()];
    config.headers = vec![("Authorization".into(), "Bearer static".into())];
    let socket = Socket::new(config).unwrap();
    socket.connect();
    let id = socket.send("1").unwrap();
    wait_for(&socket, WAIT, "ack", |e| {
        matches!(e, Event::Acked(a) if *a == id).then_some(())
    })
    .await;
    let bad = {
        let mut bad = quick(&server.url());
        bad.headers = vec![("Bad Header".into(), "x".into())];
        bad
    };
    let err = Socket::new(bad).err().unwrap().to_string();
    assert!(err.contains("not a valid HTTP header name"), "{err}");
    server.shutdown().await;
}

#[tokio::test]
async fn close_closes_and_ends_the_event_stream() {
    let server = start(ServerConfig::default()).await.unwrap();
    let socket = std::sync::Arc::new(Socket::new(quick(&server.url())).unwrap());
    socket.connect();
    wait_open(&socket).await;
    let reader = std::sync::Arc::clone(&socket);
    let drained = tokio::spawn(async move {
        let mut last = None;
        while let Some(event) = reader.next_event().await {
            last = Some(event);
        }
        last
    });
    socket.close();
    let last = tokio::time::timeout(WAIT, drained)
        .await
        .expect("the stream ends")
        .unwrap();
    assert_eq!(
        last,
        Some(Event::StateChanged {
            state: State::Closed,
            cause: Cause::App,
        })
    );
    assert_eq!(socket.state(), State::Closed);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(server.connections(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn next_events_takes_a_burst_in_one_call_and_ends_empty() {
    let server = start(ServerConfig::default()).await.unwrap();
    let socket = Socket::new(quick(&server.url())).unwrap();
    socket.connect();
    wait_open(&socket).await;
    for n in 0..50 {
        server.publish(&n.to_string()).unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let batch = tokio::time::timeout(WAIT, socket.next_events(100))
        .await
        .unwrap();
    let seqs: Vec<u64> = batch
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => m.seq,
            _ => None,
        })
        .collect();
    assert_eq!(
        seqs,
        (1..=50).collect::<Vec<u64>>(),
        "one call, all queued messages, in order"
    );
    assert!(socket.try_next_events(10).is_empty());
    socket.close();
    let rest = tokio::time::timeout(WAIT, socket.next_events(100))
        .await
        .unwrap();
    assert_eq!(
        rest,
        [Event::StateChanged {
            state: State::Closed,
            cause: Cause::App,
        }]
    );
    assert!(
        tokio::time::timeout(WAIT, socket.next_events(100))
            .await
            .unwrap()
            .is_empty(),
        "ended"
    );
    server.shutdown().await;
}

//! A store across socket restarts in one process: pending messages come back in order with
//! their ids and are sent first, can be listed and cancelled, expire by the wall clock, and the
//! client id and the inbound position carry over.

use std::time::{Duration, SystemTime};

use steadyws::{
    Delivery, Event, MessageId, Opening, Payload, SendFailure, Socket, SocketConfig, StoreConfig,
};
use steadyws_server::{ServerConfig, start};
use steadyws_tests::support::*;

/// A socket on `url` with the store `name` in `dir`.
pub fn durable(url: &str, dir: &TempDir, name: &str) -> SocketConfig {
    let mut config = quick(url);
    config.store = Some(StoreConfig::new(dir.path(), name));
    config
}

/// An address nothing listens on, so sends stay pending.
const NOWHERE: &str = "ws://127.0.0.1:9/ws";

/// What the server stored, in stream order.
pub fn stored(server: &steadyws_server::RunningServer) -> Vec<String> {
    server
        .hub()
        .since(0)
        .messages
        .iter()
        .map(|m| m.data.clone())
        .collect()
}

fn ids(socket: &Socket) -> Vec<MessageId> {
    socket.pending().into_iter().map(|p| p.id).collect()
}

#[tokio::test]
async fn pending_messages_come_back_in_order_with_their_ids_and_can_be_cancelled() {
    let dir = TempDir::new("restart");
    let before = SystemTime::now();
    let (sent, client_id) = {
        let socket = Socket::new(durable(NOWHERE, &dir, "app")).unwrap();
        let sent: Vec<MessageId> = (0..3)
            .map(|n| socket.send(&format!(r#"{{"n":{n}}}"#)).unwrap())
            .collect();
        (sent, socket.client_id().unwrap())
    };

    let server = start(ServerConfig::default()).await.unwrap();
    let socket = Socket::new(durable(&server.url(), &dir, "app")).unwrap();
    assert_eq!(
        socket.client_id().unwrap(),
        client_id,
        "the server knows it by this id"
    );
    let pending = socket.pending();
    assert_eq!(ids(&socket), sent, "listed before connecting, oldest first");
    assert_eq!(pending[1].payload, Payload::Json(r#"{"n":1}"#.into()));
    assert!(pending.iter().all(|p| p.sent_at >= before - Duration::from_secs(1)
        && p.sent_at <= SystemTime::now()));

    assert_eq!(socket.cancel(&sent[1]), Ok(true));
    assert_eq!(socket.cancel(&sent[1]), Ok(false), "already gone");
    assert_eq!(ids(&socket), [sent[0].clone(), sent[2].clone()]);
    let newer = socket.send(r#"{"n":3}"#).unwrap();
    socket.connect();
    for id in [&sent[0], &sent[2], &newer] {
        assert_eq!(
            socket.wait_acked(id, Some(WAIT)).await,
            Delivery::Acked,
            "{id}"
        );
    }
    assert_eq!(
        socket.wait_acked(&sent[1], Some(WAIT)).await,
        Delivery::Failed(SendFailure::Cancelled)
    );
    assert_eq!(
        stored(&server),
        [r#"{"n":0}"#, r#"{"n":2}"#, r#"{"n":3}"#],
        "in send order"
    );
    assert!(socket.pending().is_empty());
    drop(socket);

    // Acked and cancelled messages are gone from the file too.
    let socket = Socket::new(durable(NOWHERE, &dir, "app")).unwrap();
    assert!(socket.pending().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn a_ttl_that_ran_out_while_the_app_was_dead_is_reported_at_start_not_sent() {
    let dir = TempDir::new("ttl");
    let (short, long) = {
        let socket = Socket::new(durable(NOWHERE, &dir, "app")).unwrap();
        (
            socket
                .send_with_ttl(r#""short""#, Duration::from_millis(300))
                .unwrap(),
            socket
                .send_with_ttl(r#""long""#, Duration::from_secs(600))
                .unwrap(),
        )
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let server = start(ServerConfig::default()).await.unwrap();
    let socket = Socket::new(durable(&server.url(), &dir, "app")).unwrap();
    let expired = wait_for(&socket, WAIT, "the expiry", |event| match event {
        Event::SendFailed {
            id,
            reason,
            payload,
        } => Some((id.clone(), reason.clone(), payload.clone())),
        _ => None,
    })
    .await;
    assert_eq!(
        expired,
        (
            short,
            SendFailure::Expired,
            Payload::Json(r#""short""#.into())
        )
    );
    assert_eq!(ids(&socket), std::slice::from_ref(&long));
    socket.connect();
    assert_eq!(socket.wait_acked(&long, Some(WAIT)).await, Delivery::Acked);
    assert_eq!(stored(&server), [r#""long""#]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_new_socket_resumes_after_the_last_message_the_app_took() {
    let dir = TempDir::new("resume");
    let server = start(ServerConfig::default()).await.unwrap();
    for n in 0..5 {
        server.publish(&n.to_string()).unwrap();
    }
    let taken = {
        let socket = Socket::new(durable(&server.url(), &dir, "app")).unwrap();
        socket.connect();
        // A fresh store starts from the server's current position, like a fresh socket.
        assert_eq!(socket.wait_open(Some(WAIT)).await, Opening::Open);
        for n in 5..10 {
            server.publish(&n.to_string()).unwrap();
        }
        let mut taken = Vec::new();
        while taken.len() < 3 {
            if let Some(Event::Message(message)) = socket.next_event().await {
                taken.push(message.data);
            }
        }
        // A graceful shutdown commits what the app took, the third message included.
        socket.close();
        taken
    };
    assert_eq!(taken, ["5", "6", "7"].map(|s| Payload::Json(s.into())));
    for n in 10..12 {
        server.publish(&n.to_string()).unwrap();
    }
    let socket = Socket::new(durable(&server.url(), &dir, "app")).unwrap();
    socket.connect();
    let mut rest = Vec::new();
    while rest.len() < 4 {
        if let Some(Event::Message(message)) = socket.next_event().await {
            assert!(!message.redelivered, "{message:?}");
            rest.push(message.data);
        }
    }
    assert_eq!(
        rest,
        ["8", "9", "10", "11"].map(|s| Payload::Json(s.into()))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn outbox_defaults_hold_a_long_outage() {
    // 50 messages a second of 200 bytes for ten minutes, offline the whole time.
    let socket = Socket::new(quick(NOWHERE)).unwrap();
    let payload = format!(r#"{{"text":"{}"}}"#, "x".repeat(190));
    for _ in 0..(50 * 600) {
        socket.send(&payload).unwrap();
    }
    assert_eq!(socket.stats().outbox_len, 30_000);
}

#[tokio::test]
async fn after_shutdown_queued_messages_are_left_to_the_next_socket_and_reading_ends() {
    let dir = TempDir::new("shutdown");
    let server = start(ServerConfig::default()).await.unwrap();
    let socket = Socket::new(durable(&server.url(), &dir, "app")).unwrap();
    socket.connect();
    assert_eq!(socket.wait_open(Some(WAIT)).await, Opening::Open);
    for n in 0..5 {
        server.publish(&n.to_string()).unwrap();
    }
    let deadline = std::time::Instant::now() + WAIT;
    while socket.stats().messages_received < 5 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    socket.close();
    // Reading after shutdown ends, without messages whose taking could not be recorded.
    let rest = tokio::time::timeout(WAIT, async {
        let mut rest = Vec::new();
        while let Some(event) = socket.next_event().await {
            rest.push(event);
        }
        rest
    })
    .await
    .expect("the stream ends after shutdown");
    assert!(
        !rest.iter().any(|e| matches!(e, Event::Message(_))),
        "{rest:?}"
    );
    drop(socket);
    let socket = Socket::new(durable(&server.url(), &dir, "app")).unwrap();
    socket.connect();
    let mut data = Vec::new();
    while data.len() < 5 {
        match tokio::time::timeout(WAIT, socket.next_event()).await {
            Ok(Some(Event::Message(message))) => {
                assert!(!message.redelivered);
                data.push(message.data);
            }
            Ok(Some(_)) => {}
            other => panic!("{other:?} after {data:?}"),
        }
    }
    assert_eq!(
        data,
        ["0", "1", "2", "3", "4"].map(|s| Payload::Json(s.into()))
    );
    server.shutdown().await;
}

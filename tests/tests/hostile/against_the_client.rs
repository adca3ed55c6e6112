//! Servers that attack the client: floods of pings while never reading, a server that stops
//! reading what the client writes, one that pours frames at an app that takes none, and servers
//! that ask for retries "after 0 seconds".

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::SinkExt;
use steadyws::engine::HeartbeatMode;
use steadyws::{ConnectionError, Event, SendError, Socket, SocketConfig};
use steadyws_tests::support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::*;

/// A server that completes the upgrade of one client, then hands over the raw TCP stream.
async fn hostile_server() -> (String, tokio::task::JoinHandle<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let accepted = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        ws.into_inner()
    });
    (url, accepted)
}

/// The client's RSS grows by less than `ceiling` while `flood_frame` is written at it for
/// [`FLOOD`] by a server that never reads, and the client stays open all along.
async fn client_survives_flood(what: &str, flood_frame: Vec<u8>, min_written: u64, ceiling: u64) {
    let _serial = SERIAL.lock().await;
    let (url, accepted) = hostile_server().await;
    let socket = Socket::new(quick(&url)).unwrap();
    socket.connect();
    let mut tcp = accepted.await.unwrap();
    wait_open(&socket).await;
    let who = format!("{what} at the client");
    let own_rss = || rss_bytes(std::process::id());
    assert_flood_bounded(&who, &mut tcp, &flood_frame, min_written, ceiling, own_rss).await;
    let lost: Vec<Event> = std::iter::from_fn(|| socket.try_next_event())
        .filter(|e| matches!(e, Event::StateChanged { cause, .. } if cause.problem().is_some()))
        .collect();
    assert!(
        lost.is_empty(),
        "the flood is inbound traffic, not a dead link: {lost:?}"
    );
    drop(tcp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_ping_flood_from_a_server_that_never_reads_keeps_the_client_bounded() {
    let ping = server_frame(PING, &[7; 125]);
    client_survives_flood("WebSocket ping flood", ping, 48 * MIB, 32 * MIB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_ping_flood_from_a_server_that_never_reads_keeps_the_client_bounded() {
    let ping = server_frame(TEXT, br#"{"type":"ping","ts":1}"#);
    client_survives_flood("JSON ping flood", ping, 8 * MIB, 16 * MIB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_reading_pushes_back_on_send_then_gets_the_connection_dropped() {
    let _serial = SERIAL.lock().await;
    let (url, accepted) = hostile_server().await;
    // Raw mode: written frames have no acks, so only the pushback bounds what the client holds.
    let mut config = SocketConfig::raw(&url);
    config.engine.connect_timeout = Duration::from_secs(3);
    config.engine.heartbeat = HeartbeatMode::WebSocketPing {
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
    };
    let socket = Socket::new(config).unwrap();
    socket.connect();
    let tcp = accepted.await.unwrap();
    wait_open(&socket).await;
    let before = rss_bytes(std::process::id());
    let kilobyte = "x".repeat(1024);
    let (mut sent, mut refused) = (0u64, 0u64);
    // 200 MiB offered to a server that reads none of it.
    for attempt in 0..200 * 1024u64 {
        match socket.send_text(&kilobyte) {
            Ok(_) => sent += 1,
            Err(steadyws::Error::Send(SendError::OutboxFull { .. })) => refused += 1,
            Err(other) => panic!("unexpected refusal: {other}"),
        }
        if attempt.is_multiple_of(1024) {
            tokio::task::yield_now().await;
        }
    }
    let error = wait_for(&socket, WAIT, "the connection dropped", |e| match e {
        Event::StateChanged { cause, .. } => cause.problem().cloned(),
        _ => None,
    })
    .await;
    let grown = rss_bytes(std::process::id()).saturating_sub(before);
    println!(
        "a non-reading server: {sent} KiB accepted, {refused} refused, client RSS +{:.1} MiB, then: {error}",
        grown as f64 / MIB as f64
    );
    assert!(refused > 0, "send never pushed back");
    // Its TCP window stays shut, so even the heartbeat's ping cannot leave: the heartbeat is
    // what gives the connection up, messages staying queued for the next one.
    assert!(
        matches!(&error, ConnectionError::HeartbeatTimeout { .. }),
        "{error:?}"
    );
    assert!(grown < 48 * MIB, "client grew by {grown} bytes");
    let queued = socket.pending().len() as u64;
    assert!(
        queued > 0 && queued <= sent,
        "{queued} of {sent} accepted messages still queued"
    );
    drop(tcp);
}

/// Counts the connections a server gets, answering each with `answer`.
async fn counting_server(answer: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::Relaxed);
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = tcp.read(&mut request).await;
                let _ = tcp.write_all(&answer).await;
            });
        }
    });
    (url, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_asking_for_a_retry_after_zero_get_a_handful_of_attempts() {
    let _serial = SERIAL.lock().await;
    let refusal =
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n".to_vec();
    let (busy_url, busy_count) = counting_server(refusal).await;
    // A server that accepts, then closes with 1013 "retry after 0".
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closing_url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let closing_count = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&closing_count);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                if let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await {
                    let close = CloseFrame {
                        code: 1013.into(),
                        reason: "retry after 0".into(),
                    };
                    let _ = ws.send(Message::Close(Some(close))).await;
                }
            });
        }
    });
    // Default backoff: the schedule a user ships with.
    let busy = Socket::new(SocketConfig::new(&busy_url)).unwrap();
    let closing = Socket::new(SocketConfig::new(&closing_url)).unwrap();
    busy.connect();
    closing.connect();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (busy_attempts, closing_attempts) = (
        busy_count.load(Ordering::Relaxed),
        closing_count.load(Ordering::Relaxed),
    );
    println!(
        "attempts in 10 s: {busy_attempts} against 503 Retry-After: 0, {closing_attempts} against close 1013 \"retry after 0\""
    );
    // Delays of at least 0.5, 1, 2 and 4 s (1, 2, 4, 8 s less up to 50 % jitter): at most 5.
    assert!((2..=5).contains(&busy_attempts), "{busy_attempts}");
    assert!((2..=5).contains(&closing_attempts), "{closing_attempts}");
}

/// A server that pours frames at an app that takes them only now and then: whenever reading
/// stops, the inbox holds at most its byte bound plus one batch, and a batch takes no more
/// frames once it holds 64 KiB. When the app makes room, what piled up in the kernel's buffers
/// meanwhile is all ready at once: without the batch's byte bound, up to 64 frames came in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_piled_up_behind_a_paused_app_come_in_batches_of_at_most_64_kib() {
    const FRAME: usize = 4 * 1024;
    const BOUND: usize = 4 * FRAME;
    // Below the bound before a batch (3 frames), then a batch of at most 64 KiB (16 frames).
    const MOST_HELD: u64 = 3 + 16;
    let _serial = SERIAL.lock().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/raw", listener.local_addr().unwrap());
    let pouring = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let frame = "x".repeat(FRAME);
        loop {
            ws.send(Message::text(frame.clone())).await.unwrap();
        }
    });
    let mut config = SocketConfig::new(url.clone());
    config.engine = steadyws::engine::Config::raw(url);
    config.inbox_max_bytes = BOUND;
    let socket = Socket::new(config).unwrap();
    socket.connect();
    let mut taken = 0;
    for round in 0..5 {
        // Until reading has stopped: the count holds still for 200 ms.
        let mut received = u64::MAX;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = socket.stats().messages_received;
            if now == received {
                break;
            }
            received = now;
        }
        let held = received - taken;
        assert!(
            (4..=MOST_HELD).contains(&held),
            "round {round}: {held} frames of {FRAME} bytes held for an inbox bound of {BOUND} bytes"
        );
        let events = socket.try_next_events(1000);
        taken += events
            .iter()
            .filter(|event| matches!(event, Event::Message(_)))
            .count() as u64;
        assert_eq!(taken, received, "every frame held was a message event");
    }
    pouring.abort();
}

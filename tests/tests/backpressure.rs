//! A slow app pushes back on the server instead of growing: the app stops taking events for
//! 30 s while the server publishes 100 000 messages of 1 KiB. The client's queue fills to its
//! bound, the socket stops reading (TCP pushes back), the heartbeat does not take the pause for
//! a dead link, and afterwards every message arrives exactly once, in order.
//!
//! Alone in its test binary, so that the RSS figures are this test's own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use steadyws::{Event, Payload, Socket, State};
use steadyws_tests::process::ServerProcess;
use steadyws_tests::support::*;
use tokio_tungstenite::tungstenite::Message;

const PUBLISHED: u64 = 100_000;
const PAUSE: Duration = Duration::from_secs(30);
const MIB: u64 = 1024 * 1024;

fn server_binary() -> PathBuf {
    std::env::var_os("STEADYWS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_reference-server")))
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Publish `count` messages of about 1 KiB through a plain client that reads (and drops) its
/// acks, so that only the app under test is slow. Its cursor lies far ahead of the stream, so
/// the server forwards it none of the messages: this process then only holds what the app
/// under test holds.
async fn publish(url: &str, count: u64) {
    let url = format!("{url}?last_seq=1000000000000");
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    let filler = "x".repeat(1000);
    for n in 1..=count {
        let frame =
            format!(r#"{{"type":"msg","id":"pub-{n}","data":{{"n":{n},"fill":"{filler}"}}}}"#);
        sink.feed(Message::text(frame)).await.unwrap();
    }
    sink.flush().await.unwrap();
    // The server answers every message with an ack; the last one means all are stored.
    tokio::time::sleep(Duration::from_secs(2)).await;
    drain.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_app_pushes_back_and_then_gets_every_message_once_in_order() {
    let server = ServerProcess::start(
        &server_binary(),
        free_addr(),
        &[
            "--history",
            "200000",
            "--history-bytes",
            "268435456",
            "--send-timeout",
            "300",
            "--idle-timeout",
            "600",
        ],
    );
    let socket = Socket::new(quick(&server.url)).unwrap();
    socket.connect();
    wait_open(&socket).await;
    let before = rss_bytes(std::process::id());

    // The app stops taking events now.
    let started = Instant::now();
    let publisher = tokio::spawn({
        let url = server.url.clone();
        async move { publish(&url, PUBLISHED).await }
    });
    let mut peak = before;
    while started.elapsed() < PAUSE {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak = peak.max(rss_bytes(std::process::id()));
    }
    publisher.await.unwrap();
    let received_while_paused = socket.stats().messages_received;
    assert_eq!(socket.stats().messages_in, 0, "nothing taken yet");
    assert!(
        received_while_paused < PUBLISHED,
        "the queue bound held reading back: {received_while_paused} received"
    );

    // The app takes everything.
    let mut next = 1;
    let mut states = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while next <= PUBLISHED {
        assert!(Instant::now() < deadline, "stuck at message {next}");
        for event in socket.next_events(512).await {
            match event {
                Event::Message(message) => {
                    let Payload::Json(json) = &message.data else {
                        panic!("{message:?}")
                    };
                    let data: serde_json::Value = serde_json::from_str(json).unwrap();
                    assert_eq!(data["n"], next, "exactly once, in order");
                    next += 1;
                }
                Event::StateChanged { state, cause } => states.push((state, cause)),
                _ => {}
            }
        }
    }
    let delivered = next - 1;
    let grown = peak.saturating_sub(before);
    println!(
        "backpressure: {PUBLISHED} published during a {PAUSE:?} pause, {received_while_paused} received while paused, \
         {delivered} delivered after; client RSS {} MiB before, peak {} MiB (+{:.1} MiB, ceiling 48 MiB)",
        before / MIB,
        peak / MIB,
        grown as f64 / MIB as f64
    );
    assert_eq!(delivered, PUBLISHED);
    assert!(
        states.is_empty(),
        "the connection never dropped: {states:?}"
    );
    assert_eq!(socket.state(), State::Open);
    assert!(grown < 48 * MIB, "client grew by {grown} bytes");
    let stats = socket.stats();
    assert_eq!(stats.messages_in, PUBLISHED, "counts what the app took");
    assert_eq!(stats.cursor.last_seq, Some(PUBLISHED));
}

//! Clients that attack the reference server: ping floods while never reading, subscribers that
//! never read, a slowloris of half-sent upgrades, idle squatters, forged message ids, absurd
//! cursors, foreign origins.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use steadyws::{Delivery, Event, SendFailure, Socket};
use steadyws_server::{ServerConfig, start};
use steadyws_tests::process::ServerProcess;
use steadyws_tests::support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::*;

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

/// A plain WebSocket client (no steadyws), upgraded on `url`.
async fn raw_client(url: &str) -> Ws {
    let addr = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
    ws
}

/// A plain WebSocket client on `url` whose socket buffers at most 64 KiB: loopback's autotuned
/// buffers hold tens of megabytes, which would let the server write on long after the client
/// stopped reading.
async fn small_buffered_client(url: &str, addr: SocketAddr) -> Ws {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
    ws
}

/// The server's RSS grows by less than `ceiling` while a client that never reads writes
/// `flood_frame` at it for [`FLOOD`].
async fn server_survives_flood(what: &str, flood_frame: Vec<u8>, min_written: u64, ceiling: u64) {
    let _serial = SERIAL.lock().await;
    let server = ServerProcess::start(&server_binary(), free_addr(), &[]);
    let mut tcp = raw_client(&server.url).await.into_inner();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let who = format!("{what} at the server");
    let server_rss = || server.rss_bytes();
    assert_flood_bounded(
        &who,
        &mut tcp,
        &flood_frame,
        min_written,
        ceiling,
        server_rss,
    )
    .await;
    // And it still serves others.
    let socket = Socket::new(quick(&server.url)).unwrap();
    socket.connect();
    wait_open(&socket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_ping_flood_from_a_client_that_never_reads_keeps_the_server_bounded() {
    let ping = client_frame(PING, &[7; 125]);
    server_survives_flood("WebSocket ping flood", ping, 32 * MIB, 24 * MIB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_ping_flood_from_a_client_that_never_reads_keeps_the_server_bounded() {
    let ping = client_frame(TEXT, br#"{"type":"ping","ts":1}"#);
    // The server answers each ping itself and stops reading while the answer cannot be written:
    // the flood stalls early, which is the point.
    server_survives_flood("JSON ping flood", ping, MIB, 24 * MIB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_costs_bounded_memory_and_is_dropped() {
    let _serial = SERIAL.lock().await;
    let history = (8 * MIB).to_string();
    let server = ServerProcess::start(
        &server_binary(),
        free_addr(),
        &["--history-bytes", &history, "--send-timeout", "2"],
    );
    let mut squatter = small_buffered_client(&server.url, server.addr).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = server.rss_bytes();
    let publisher = Socket::new(quick(&server.url)).unwrap();
    publisher.connect();
    wait_open(&publisher).await;
    // 64 MiB published while the squatter reads nothing.
    let chunk = format!("\"{}\"", "z".repeat(60 * 1024));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    for _ in 0..1024 {
        last = Some(loop {
            assert!(Instant::now() < deadline, "publishing stalled");
            match publisher.send(&chunk) {
                Ok(id) => break id,
                // The outbox is full until acks come back. Acks ride on the same connection as
                // the echoed messages, which wait for this app to take them: take them.
                Err(_) => {
                    publisher.try_next_events(1024);
                    tokio::time::sleep(Duration::from_millis(5)).await
                }
            }
        });
    }
    let last = last.unwrap();
    while publisher
        .wait_acked(&last, Some(Duration::from_millis(50)))
        .await
        != Delivery::Acked
    {
        assert!(
            Instant::now() < deadline,
            "the last message was never acked"
        );
        publisher.try_next_events(1024);
    }
    let grown = server.rss_bytes().saturating_sub(before);
    println!(
        "never-reading subscriber: 60 MiB published, server RSS +{:.1} MiB (history bound 8 MiB, ceiling 40 MiB)",
        grown as f64 / MIB as f64
    );
    assert!(grown < 40 * MIB, "server grew by {grown} bytes");
    // Past the send timeout it is dropped: reading now, its stream ends (with close 4008 if that
    // frame got through).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let started = Instant::now();
    let mut close_code = None;
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(message)) = squatter.next().await {
            if let Message::Close(frame) = message {
                close_code = frame.map(|f| u16::from(f.code));
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the squatter is still connected");
    println!(
        "the squatter's stream ended {:?} after it started reading; close code {close_code:?}",
        started.elapsed()
    );
    assert!(close_code.is_none_or(|code| code == 4008), "{close_code:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_is_dropped_after_the_send_timeout() {
    let _serial = SERIAL.lock().await;
    let server = start(ServerConfig {
        send_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let _squatter = raw_client(&server.url()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.connections(), 1);
    let data = format!("\"{}\"", "q".repeat(64 * 1024));
    for _ in 0..256 {
        server.publish(&data).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.connections() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        server.connections(),
        0,
        "a client reading nothing is dropped"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_half_sent_upgrades_do_not_lock_out_a_legitimate_client() {
    let _serial = SERIAL.lock().await;
    let server = ServerProcess::start(&server_binary(), free_addr(), &[]);
    let mut half_open = Vec::new();
    for _ in 0..1000 {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
            .await
            .unwrap();
        half_open.push(tcp);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let socket = Socket::new(quick(&server.url)).unwrap();
    let started = Instant::now();
    socket.connect();
    wait_open(&socket).await;
    let took = started.elapsed();
    println!("legitimate client open {took:?} after 1000 half-sent upgrades");
    assert!(took < Duration::from_secs(1), "{took:?}");
    // The oldest were evicted rather than kept: most of the 1000 are closed by now.
    let mut closed = 0;
    for tcp in &mut half_open {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(2), tcp.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    println!("{closed} of the 1000 half-open connections were closed by the server");
    assert!(closed >= 700, "{closed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_time_out_over_plain_and_tls() {
    let _serial = SERIAL.lock().await;
    let leaf = steadyws_tests::pki::TestCa::new().leaf(&["127.0.0.1"]);
    let dir = std::env::temp_dir().join(format!("steadyws-hostile-tls-{}", std::process::id()));
    let (cert, key) = leaf.write_to(&dir);
    for tls in [None, Some(steadyws_server::TlsFiles { cert, key })] {
        let server = start(ServerConfig {
            handshake_timeout: Duration::from_secs(1),
            tls: tls.clone(),
            ..ServerConfig::default()
        })
        .await
        .unwrap();
        let mut silent = TcpStream::connect(server.addr()).await.unwrap();
        let started = Instant::now();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut byte)).await;
        let took = started.elapsed();
        println!(
            "silent connection (tls: {}) closed after {took:?}",
            tls.is_some()
        );
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "closed by the server: {read:?}"
        );
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3));
        assert_eq!(server.handshakes_in_flight(), 0);
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_upgrades_get_a_clear_503() {
    let _serial = SERIAL.lock().await;
    let server = start(ServerConfig {
        max_connections: 2,
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let _first = raw_client(&server.url()).await;
    let _second = raw_client(&server.url()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let refused = tokio_tungstenite::client_async(server.url(), tcp)
        .await
        .unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("expected an HTTP refusal, got {refused}")
    };
    let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(body, "server full (2 connections); retry later");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_answering_pings_is_dropped_after_the_idle_timeout() {
    let _serial = SERIAL.lock().await;
    let server = start(ServerConfig {
        idle_timeout: Duration::from_secs(2),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    // One client reads (so tungstenite answers the server's pings), one never does.
    let mut alive = raw_client(&server.url()).await;
    let _mute = raw_client(&server.url()).await;
    let reader = tokio::spawn(async move {
        let mut pings = 0;
        while let Some(Ok(message)) = alive.next().await {
            pings += usize::from(message.is_ping());
        }
        pings
    });
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert_eq!(
        server.connections(),
        1,
        "the mute client is gone, the live one stays"
    );
    server.shutdown().await;
    let pings = reader.await.unwrap();
    assert!(pings >= 1, "the live client was pinged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cost_at_most_32_kib_each() {
    let _serial = SERIAL.lock().await;
    let server = ServerProcess::start(&server_binary(), free_addr(), &[]);
    let warm = raw_client(&server.url).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = server.rss_bytes();
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(raw_client(&server.url).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_connection = server.rss_bytes().saturating_sub(before) / 500;
    println!(
        "idle connection cost at the server ({}): {:.1} KiB each",
        server_binary().display(),
        per_connection as f64 / 1024.0
    );
    assert!(per_connection <= 32 * 1024, "{per_connection} bytes");
    drop((warm, idle));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_another_clients_ids_with_other_content_alters_nothing() {
    let _serial = SERIAL.lock().await;
    let server = start(ServerConfig::default()).await.unwrap();
    let victim = Socket::new(quick(&server.url())).unwrap();
    victim.connect();
    wait_open(&victim).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = victim.send(&format!("{{\"victim\":{i}}}")).unwrap();
        wait_acked(&victim, &id).await;
        ids.push(id.0);
    }
    let victims_client_id = victim.client_id().expect("envelope mode has a client id");
    // One attacker under its own client id, one claiming the victim's.
    for claimed in ["attacker", victims_client_id.as_str()] {
        let mut attacker = raw_client(&format!("{}?client_id={claimed}", server.url())).await;
        for id in &ids {
            let forged = format!(r#"{{"type":"msg","id":"{id}","data":{{"attacker":true}}}}"#);
            attacker.send(Message::text(forged)).await.unwrap();
            let answer = loop {
                let Some(Ok(Message::Text(text))) = attacker.next().await else {
                    panic!("the attacker's connection ended")
                };
                let frame: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                if frame["type"] == "error" || frame["type"] == "ack" {
                    break frame;
                }
            };
            assert_eq!(answer["type"], "error", "claimed {claimed}: {answer}");
            assert_eq!(answer["code"], "id_conflict");
            assert_eq!(answer["id"], id.as_str());
        }
    }
    let stored: Vec<String> = server
        .hub()
        .since(0)
        .messages
        .iter()
        .map(|m| m.data.clone())
        .collect();
    let expected: Vec<String> = (0..5).map(|i| format!("{{\"victim\":{i}}}")).collect();
    assert_eq!(
        stored, expected,
        "the victim's messages, once each, unaltered"
    );
    // The victim's own resend after a lost ack is still a harmless duplicate.
    let failed: Vec<Event> = std::iter::from_fn(|| victim.try_next_event())
        .filter(|e| {
            matches!(
                e,
                Event::SendFailed {
                    reason: SendFailure::Rejected { .. },
                    ..
                }
            )
        })
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_resume_cursor_replays_nothing_and_breaks_nothing() {
    let _serial = SERIAL.lock().await;
    let server = start(ServerConfig::default()).await.unwrap();
    server.publish("1").unwrap();
    let url = format!("{}?last_seq=18446744073709551615", server.url());
    let mut client = raw_client(&url).await;
    let Some(Ok(Message::Text(hello))) = client.next().await else {
        panic!("no hello")
    };
    assert!(
        hello.as_str().starts_with(r#"{"type":"hello","seq":1"#),
        "{hello}"
    );
    let quiet = tokio::time::timeout(Duration::from_millis(300), client.next()).await;
    assert!(
        quiet.is_err(),
        "nothing is newer than seq 2^64-1: {quiet:?}"
    );
    let socket = Socket::new(quick(&server.url())).unwrap();
    socket.connect();
    wait_open(&socket).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_from_foreign_origins_are_refused_when_origins_are_listed() {
    let _serial = SERIAL.lock().await;
    let server = start(ServerConfig {
        allowed_origins: vec!["https://app.example".into()],
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    for (origin, accepted) in [
        (Some("https://app.example"), true),
        (Some("https://evil.example"), false),
        (None, true),
    ] {
        let mut request = server.url().into_client_request().unwrap();
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        let tcp = TcpStream::connect(server.addr()).await.unwrap();
        match tokio_tungstenite::client_async(request, tcp).await {
            Ok(_) => assert!(accepted, "{origin:?} was let in"),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert!(!accepted, "{origin:?} was refused");
                assert_eq!(response.status(), 403);
            }
            Err(other) => panic!("{other}"),
        }
    }
    server.shutdown().await;
}

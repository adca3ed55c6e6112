//! Real faults: the server process SIGKILLed and restarted, resets, blackholes, background and
//! foreground, network hints — with nothing lost, nothing duplicated, order kept.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use steadyws::engine::BackgroundPolicy;
use steadyws::{AppState, ConnectionError, Delivery, Event, NetworkStatus, Socket, State};
use steadyws_server::{ServerConfig, start};
use steadyws_tests::fault_proxy::{FaultProxy, Mode};
use steadyws_tests::process::ServerProcess;
use steadyws_tests::support::*;

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// What a client saw, tallied from its events.
#[derive(Default)]
struct Tally {
    acked: Vec<String>,
    received_seqs: Vec<u64>,
    received_ids: Vec<String>,
}

impl Tally {
    fn add(&mut self, event: &Event) {
        match event {
            Event::Acked(id) => self.acked.push(id.0.clone()),
            Event::Message(m) => {
                self.received_seqs
                    .push(m.seq.expect("envelope messages carry seq"));
                self.received_ids
                    .push(m.id.clone().expect("envelope messages carry ids"));
            }
            _ => {}
        }
    }
}

async fn drain(socket: &Socket, tally: &mut Tally) {
    while let Some(event) = socket.try_next_event() {
        tally.add(&event);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_and_restart_mid_stream_loses_and_duplicates_nothing_in_both_directions() {
    let binary = Path::new(env!("CARGO_BIN_EXE_reference-server"));
    let data_dir = std::env::temp_dir().join(format!("steadyws-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let data_arg = data_dir.to_str().unwrap();
    let addr = free_addr();
    let server = ServerProcess::start(binary, addr, &["--data-dir", data_arg]);

    let alice = Socket::new(quick(&server.url)).unwrap();
    let bob = Socket::new(quick(&server.url)).unwrap();
    alice.connect();
    bob.connect();
    wait_open(&alice).await;
    wait_open(&bob).await;
    let (mut alice_tally, mut bob_tally) = (Tally::default(), Tally::default());
    let mut sent = Vec::new();
    let mut server = Some(server);
    for i in 0..120 {
        // Alice writes up; Bob's messages come down to Alice through the server's stream.
        sent.push(
            alice
                .send(&format!("{{\"from\":\"alice\",\"n\":{i}}}"))
                .unwrap()
                .0,
        );
        sent.push(
            bob.send(&format!("{{\"from\":\"bob\",\"n\":{i}}}"))
                .unwrap()
                .0,
        );
        if i == 50 {
            server.take().unwrap().kill();
        }
        if i == 70 {
            server = Some(ServerProcess::start(
                binary,
                addr,
                &["--data-dir", data_arg],
            ));
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
        drain(&alice, &mut alice_tally).await;
        drain(&bob, &mut bob_tally).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while (alice_tally.received_seqs.len() < 240
        || alice_tally.acked.len() + bob_tally.acked.len() < 240)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        drain(&alice, &mut alice_tally).await;
        drain(&bob, &mut bob_tally).await;
    }
    // Up: every message acked exactly once.
    let mut acked: Vec<String> = alice_tally
        .acked
        .iter()
        .chain(&bob_tally.acked)
        .cloned()
        .collect();
    assert_eq!(
        acked.len(),
        240,
        "acks: alice {} bob {}",
        alice_tally.acked.len(),
        bob_tally.acked.len()
    );
    acked.sort();
    acked.dedup();
    assert_eq!(acked.len(), 240, "an id was acked twice");
    // Down: Alice saw the whole stream, once each, in seq order, and it holds each message once.
    assert_eq!(
        alice_tally.received_seqs,
        (1..=240).collect::<Vec<u64>>(),
        "lost, duplicated or reordered"
    );
    let stream_ids: HashSet<&String> = alice_tally.received_ids.iter().collect();
    let sent_ids: HashSet<&String> = sent.iter().collect();
    assert_eq!(
        stream_ids, sent_ids,
        "the server stored each message exactly once"
    );
    assert!(alice.stats().reconnects >= 1);
    drop(server);
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn a_blackholed_link_is_detected_by_the_heartbeat_and_replaced() {
    let server = start(ServerConfig::default()).await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let socket = Socket::new(quick(&format!("ws://{}/ws", proxy.addr()))).unwrap();
    socket.connect();
    wait_open(&socket).await;
    proxy.set_mode(Mode::Blackhole);
    let started = Instant::now();
    let err = next_error(&socket).await;
    assert!(
        matches!(err, ConnectionError::HeartbeatTimeout { .. }),
        "{err:?}"
    );
    // interval 0.5 s + timeout 0.5 s, plus scheduling slack.
    assert!(
        started.elapsed() < Duration::from_millis(1_800),
        "detected after {:?}",
        started.elapsed()
    );
    proxy.set_mode(Mode::Pass);
    wait_open(&socket).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_reset_is_a_1006_and_messages_sent_meanwhile_arrive_once() {
    let server = start(ServerConfig::default()).await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let socket = Socket::new(quick(&format!("ws://{}/ws", proxy.addr()))).unwrap();
    socket.connect();
    wait_open(&socket).await;
    proxy.set_mode(Mode::Down);
    let err = next_error(&socket).await;
    assert_eq!(err, ConnectionError::abnormal());
    let ids: Vec<_> = (0..10)
        .map(|i| socket.send(&i.to_string()).unwrap())
        .collect();
    server.publish("\"while down\"").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.set_mode(Mode::Pass);
    let mut tally = Tally::default();
    let deadline = Instant::now() + WAIT;
    while (tally.acked.len() < 10 || tally.received_seqs.len() < 11) && Instant::now() < deadline {
        if let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_millis(100), socket.next_event()).await
        {
            tally.add(&event);
        }
    }
    assert_eq!(
        tally.acked,
        ids.iter().map(|id| id.0.clone()).collect::<Vec<_>>()
    );
    assert_eq!(tally.received_seqs, (1..=11).collect::<Vec<u64>>());
    server.shutdown().await;
}

#[tokio::test]
async fn background_disconnect_after_grace_then_foreground_reconnects() {
    let server = start(ServerConfig::default()).await.unwrap();
    let mut config = quick(&server.url());
    config.engine.background = BackgroundPolicy::DisconnectAfter(Duration::from_millis(300));
    let socket = Socket::new(config).unwrap();
    socket.connect();
    wait_open(&socket).await;
    socket.set_app_state(AppState::Background);
    wait_for(&socket, WAIT, "Suspended", |e| {
        matches!(
            e,
            Event::StateChanged {
                state: State::Suspended,
                ..
            }
        )
        .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        server.connections(),
        0,
        "the connection was closed while suspended"
    );
    let queued = socket.send(r#"{"from":"background"}"#).unwrap();
    socket.set_app_state(AppState::Foreground);
    wait_open(&socket).await;
    wait_for(&socket, WAIT, "ack", |e| {
        matches!(e, Event::Acked(a) if *a == queued).then_some(())
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn foreground_replaces_a_stale_socket_with_the_connection_it_raced() {
    let server = start(ServerConfig::default()).await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let mut config = quick(&format!("ws://{}/ws", proxy.addr()));
    config.engine.probe_timeout = Duration::from_millis(500);
    let socket = Socket::new(config).unwrap();
    socket.connect();
    wait_open(&socket).await;
    socket.set_app_state(AppState::Background);
    proxy.blackhole_existing(); // iOS suspended us; the old socket is dead, the network is fine
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        socket.state(),
        State::Open,
        "a suspended socket still looks open"
    );
    let reconnects = socket.stats().reconnects;
    let queued = socket.send(r#"{"during":"the switch"}"#).unwrap();
    let started = Instant::now();
    socket.set_app_state(AppState::Foreground);
    // The new connection raced the probe and won: no waiting for the probe's timeout, no error.
    while socket.stats().reconnects == reconnects {
        assert!(started.elapsed() < WAIT, "never replaced");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = started.elapsed();
    assert!(took < Duration::from_millis(500), "replaced after {took:?}");
    assert_eq!(socket.state(), State::Open);
    assert_eq!(
        socket.wait_acked(&queued, Some(WAIT)).await,
        Delivery::Acked
    );
    let events = socket.try_next_events(1000);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::StateChanged { cause, .. } if cause.problem().is_some())),
        "{events:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn no_attempts_while_the_network_is_gone_and_one_at_once_when_it_returns() {
    let server = start(ServerConfig::default()).await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let socket = Socket::new(quick(&format!("ws://{}/ws", proxy.addr()))).unwrap();
    socket.connect();
    wait_open(&socket).await;
    socket.set_network(NetworkStatus::Unavailable);
    proxy.set_mode(Mode::Down);
    wait_for(&socket, WAIT, "WaitingForNetwork", |e| {
        matches!(
            e,
            Event::StateChanged {
                state: State::WaitingForNetwork,
                ..
            }
        )
        .then_some(())
    })
    .await;
    let quiet = collect_for(&socket, Duration::from_secs(2)).await;
    assert!(
        !quiet.iter().any(|e| matches!(
            e,
            Event::StateChanged {
                state: State::Connecting { .. },
                ..
            }
        )),
        "attempted while offline: {quiet:?}"
    );
    proxy.set_mode(Mode::Pass);
    let started = Instant::now();
    socket.set_network(NetworkStatus::Available {
        interface: Some("wifi".into()),
    });
    wait_open(&socket).await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "recovered after {:?}",
        started.elapsed()
    );
    server.shutdown().await;
}

//! Real faults: the server process SIGKILLed and restarted, resets, blackholes, background and
//! foreground, network hints — with nothing lost, nothing duplicated, order kept.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use steadyws::engine::{BackgroundPolicy, HeartbeatMode};
use steadyws::{
    AppState, ConnectionError, Delivery, Event, NetworkStatus, Socket, SocketConfig, State,
};
use steadyws_server::{RunningServer, ServerConfig, start};
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
    /// When each dead link was reported (a heartbeat or probe timeout).
    dead_links: Vec<Instant>,
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
            Event::StateChanged { cause, .. }
                if matches!(
                    cause.problem(),
                    Some(ConnectionError::HeartbeatTimeout { .. })
                ) =>
            {
                self.dead_links.push(Instant::now());
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

/// An app that sends a message every 20 ms and takes every event, as a chat does.
#[derive(Default)]
struct Chatty {
    sent: Vec<String>,
    tally: Tally,
}

impl Chatty {
    /// Send one message, then take events for 20 ms.
    async fn beat(&mut self, socket: &Socket) {
        let n = self.sent.len();
        self.sent
            .push(socket.send(&format!("{{\"n\":{n}}}")).unwrap().0);
        tokio::time::sleep(Duration::from_millis(20)).await;
        drain(socket, &mut self.tally).await;
    }

    /// Keep sending for `duration`.
    async fn beat_for(&mut self, socket: &Socket, duration: Duration) {
        let end = Instant::now() + duration;
        while Instant::now() < end {
            self.beat(socket).await;
        }
    }

    /// Keep sending until `done` holds (at most [`WAIT`]); returns how long that took.
    async fn beat_until(
        &mut self,
        socket: &Socket,
        what: &str,
        mut done: impl FnMut(&Tally, &Socket) -> bool,
    ) -> Duration {
        let started = Instant::now();
        while !done(&self.tally, socket) {
            assert!(started.elapsed() < WAIT, "no {what} within {WAIT:?}");
            self.beat(socket).await;
        }
        started.elapsed()
    }

    /// Stop sending and wait (at most [`WAIT`]) for the last acks: each message must be acked
    /// exactly once and stored by `server` exactly once, both in send order.
    async fn all_landed_once_in_order(&mut self, socket: &Socket, server: &RunningServer) {
        let deadline = Instant::now() + WAIT;
        while self.tally.acked.len() < self.sent.len() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drain(socket, &mut self.tally).await;
        }
        assert_eq!(
            self.tally.acked, self.sent,
            "acked once each, in send order"
        );
        let stored: Vec<String> = server
            .hub()
            .since(0)
            .messages
            .iter()
            .map(|m| m.id.clone())
            .collect();
        assert_eq!(stored, self.sent, "stored once each, in send order");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_link_under_sending_is_detected_by_its_unanswered_writes_and_nothing_is_lost() {
    const ACK_PROBE_AFTER: Duration = Duration::from_millis(500);
    const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
    let server = start(ServerConfig::default()).await.unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let mut config = quick(&format!("ws://{}/ws", proxy.addr()));
    // The shipped idle heartbeat (15 s to notice): only the probe of unanswered writes can report
    // the dead link within the bound below.
    config.engine.heartbeat = HeartbeatMode::JsonPing {
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(5),
    };
    config.engine.ack_probe_after = Some(ACK_PROBE_AFTER);
    config.engine.probe_timeout = PROBE_TIMEOUT;
    let socket = Socket::new(config).unwrap();
    socket.connect();
    wait_open(&socket).await;
    let mut app = Chatty::default();
    app.beat_for(&socket, Duration::from_millis(300)).await;

    proxy.set_mode(Mode::Blackhole);
    let detected = app
        .beat_until(&socket, "dead link reported", |tally, _| {
            !tally.dead_links.is_empty()
        })
        .await;
    // The first write met by silence, then both waits, plus scheduling slack.
    let bound = ACK_PROBE_AFTER + PROBE_TIMEOUT + Duration::from_millis(800);
    assert!(detected < bound, "detected after {detected:?}");

    proxy.set_mode(Mode::Pass);
    app.beat_until(&socket, "a new open connection", |_, socket| {
        socket.stats().reconnects >= 1 && socket.state() == State::Open
    })
    .await;
    app.beat_for(&socket, Duration::from_millis(300)).await;
    app.all_landed_once_in_order(&socket, &server).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_link_to_a_server_without_hello_recovers_within_a_second_each_time() {
    const FLAPS: usize = 5;
    let server = start(ServerConfig {
        hello: false,
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    // The shipped backoff (1 s, then 2 s, 4 s…): only the quick retry after a connection that
    // proved useful (it acked what the app wrote; no hello here) keeps every recovery under 1 s.
    let socket = Socket::new(SocketConfig::new(format!("ws://{}/ws", proxy.addr()))).unwrap();
    socket.connect();
    wait_open(&socket).await;
    let mut app = Chatty::default();
    for flap in 1..=FLAPS {
        app.beat_for(&socket, Duration::from_secs(1)).await;
        let reconnects = socket.stats().reconnects;
        proxy.reset_all();
        // Acks counted when the new connection is first seen: one more is an ack on it.
        let mut acks_when_reconnected = None;
        let took = app
            .beat_until(&socket, "an ack on a new connection", |tally, socket| {
                socket.stats().reconnects > reconnects
                    && tally.acked.len() > *acks_when_reconnected.get_or_insert(tally.acked.len())
            })
            .await;
        assert!(
            took < Duration::from_secs(1),
            "flap {flap}: recovered after {took:?}"
        );
    }
    app.all_landed_once_in_order(&socket, &server).await;
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

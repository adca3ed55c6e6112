//! Scenario tests, one group per numbered rule of the engine.

use std::time::Duration;

use steadyws::engine::{
    AppState, BackgroundPolicy, Config, ConfigError, ConnId, ConnectionError, Engine, Event,
    FailReason, Frame, HeartbeatMode, Instant, MessageId, Mode, NetworkStatus, OutboxEntry,
    OverflowPolicy, Payload, ResumeCursor, SendError, SendFailure, SplitMix64, State, Transmit,
    UrlError,
};

use crate::harness::{Handshake, Link, Sim, ms, query_u64, secs};

fn open_sim(config: Config) -> Sim {
    let mut sim = Sim::new(config, 7);
    sim.connect();
    sim.run_for(ms(100));
    assert_eq!(sim.state(), State::Open);
    sim
}

/// A client connecting to a server that answers the handshake with `handshake`.
fn connecting_to(config: Config, handshake: Handshake) -> Sim {
    let mut sim = Sim::new(config, 3);
    sim.server.handshake = handshake;
    sim.connect();
    sim
}

fn default_open() -> Sim {
    open_sim(Sim::default_config())
}

fn no_jitter() -> Config {
    let mut config = Sim::default_config();
    config.backoff.jitter = 0.0;
    config
}

fn gaps(times: &[Instant]) -> Vec<Duration> {
    times
        .windows(2)
        .map(|w| w[1].saturating_since(w[0]))
        .collect()
}

// ----- 1. state machine -----

#[test]
fn every_transition_is_reported_in_order() {
    let mut sim = Sim::new(Sim::default_config(), 1);
    assert_eq!(sim.state(), State::Idle);
    sim.connect();
    sim.run_for(ms(100));
    sim.disconnect();
    sim.run_for(ms(100));
    let states: Vec<State> = sim.app.states.iter().map(|(_, s)| s.clone()).collect();
    assert_eq!(
        states,
        [
            State::Connecting { attempt: 1 },
            State::Open,
            State::Closing,
            State::Closed
        ]
    );
    assert_eq!(
        sim.server.closes_seen,
        [(1000, "client disconnect".to_string())]
    );
    assert_eq!(sim.engine.poll_timeout(), None, "nothing left to wake for");
}

#[test]
fn close_ends_at_once_and_connect_starts_over() {
    let mut sim = default_open();
    sim.engine.close(sim.now);
    sim.run_for(ms(1));
    assert_eq!(sim.state(), State::Closed);
    assert_eq!(sim.client_closes, [(ConnId(0), 1000)]);
    assert_eq!(
        sim.engine.poll_timeout(),
        None,
        "no timer survives a shutdown"
    );
    sim.connect();
    sim.run_for(ms(100));
    assert_eq!(sim.state(), State::Open);
    let mut idle = Sim::new(Sim::default_config(), 1);
    idle.engine.close(idle.now);
    assert_eq!(
        idle.state(),
        State::Closed,
        "closed means closed, connected or not"
    );
}

#[test]
fn illegal_inputs_are_no_ops() {
    let mut sim = Sim::new(Sim::default_config(), 1);
    let now = sim.now;
    // Before connect: reports about unknown transports, timeouts, disconnect.
    sim.engine.handle_transport_opened(now, ConnId(99));
    sim.engine
        .handle_frame(now, ConnId(99), Frame::Text("{}".into()));
    sim.engine
        .handle_transport_closed(now, ConnId(99), None, "");
    sim.engine
        .handle_transport_failed(now, ConnId(99), ConnectionError::abnormal());
    sim.engine.handle_timeout(now + secs(1000));
    sim.disconnect();
    assert_eq!(sim.state(), State::Idle);
    assert!(sim.engine.poll_transmit().is_none() && sim.app.events.is_empty());

    sim.connect();
    sim.connect();
    sim.run_for(ms(100));
    sim.connect();
    assert_eq!(
        sim.opens, 1,
        "connect while connecting or open does nothing"
    );
    // A second "opened" for the current transport changes nothing.
    sim.engine.handle_transport_opened(sim.now, ConnId(0));
    sim.engine.set_app_state(sim.now, AppState::Foreground);
    assert_eq!(sim.state(), State::Open);
    assert_eq!(sim.app.states.len(), 2);

    // Reports about an abandoned transport are ignored.
    sim.reset_all();
    sim.run_for(ms(50));
    let stale = ConnId(0);
    sim.engine.handle_frame(
        sim.now,
        stale,
        Frame::Text(r#"{"type":"msg","id":"x","data":1}"#.into()),
    );
    sim.engine.handle_transport_opened(sim.now, stale);
    assert!(sim.app.received.is_empty());
    assert!(matches!(sim.state(), State::Reconnecting { .. }));
}

// ----- 2. connect timeout -----

#[test]
fn stuck_connecting_is_abandoned_after_connect_timeout_and_retried() {
    let mut sim = connecting_to(no_jitter(), Handshake::Hang);
    sim.run_for(ms(9_999));
    assert_eq!(sim.state(), State::Connecting { attempt: 1 });
    sim.run_for(ms(1));
    assert_eq!(
        sim.app.lost.last().unwrap().1,
        ConnectionError::ConnectTimeout { after: secs(10) }
    );
    assert_eq!(
        sim.state(),
        State::Reconnecting {
            attempt: 2,
            retry_in: secs(1)
        }
    );
    assert_eq!(
        sim.client_closes,
        [(ConnId(0), 4000)],
        "the hung transport is dropped"
    );
    // The server starts answering: the next attempt opens.
    sim.server.handshake = Handshake::Accept;
    sim.run_for(ms(1_100));
    assert_eq!(sim.state(), State::Open);
}

// ----- 3. heartbeat -----

#[test]
fn paused_reading_is_not_a_dead_link_and_the_heartbeat_resumes_after() {
    let mut sim = default_open();
    let conn = ConnId(0);
    // The app is behind: the driver stops reading. Silence now says nothing about the link.
    sim.engine.handle_reading_paused(sim.now, conn, true);
    sim.set_link(Link::Blackhole);
    sim.run_for(secs(60));
    assert_eq!(
        sim.state(),
        State::Open,
        "no heartbeat verdict while paused"
    );
    assert!(sim.app.lost.is_empty());
    // Reading resumes: the heartbeat starts counting from now and finds the link dead.
    let resumed = sim.now;
    sim.engine.handle_reading_paused(sim.now, conn, false);
    sim.run_for(secs(20));
    let (at, error) = sim
        .app
        .lost
        .first()
        .cloned()
        .expect("dead link found after resuming");
    assert!(matches!(error, ConnectionError::HeartbeatTimeout { .. }));
    let bound = Sim::default_config().heartbeat.detection_bound();
    assert!(at.saturating_since(resumed) <= bound);
}

#[test]
fn blackhole_is_detected_within_interval_plus_timeout_by_default() {
    let mut sim = default_open();
    sim.server_push("1");
    sim.run_for(ms(100));
    let bound = Sim::default_config().heartbeat.detection_bound();
    assert!(
        bound <= secs(15),
        "defaults must detect a dead socket in 15 s, got {bound:?}"
    );
    let last_inbound = sim.engine.stats().last_inbound_at.unwrap();
    sim.set_link(Link::Blackhole);
    sim.run_for(secs(20));
    let (at, error) = sim.app.lost.first().cloned().expect("dead socket detected");
    assert!(
        matches!(error, ConnectionError::HeartbeatTimeout { .. }),
        "{error:?}"
    );
    assert!(
        at.saturating_since(last_inbound) <= bound,
        "detected after {:?}",
        at.saturating_since(last_inbound)
    );
    assert_eq!(
        sim.client_closes.first().map(|c| c.1),
        Some(4000),
        "engine closes the socket itself"
    );
    // It reconnected at once and waits for the network to answer.
    assert!(matches!(
        sim.state(),
        State::Connecting { .. } | State::Reconnecting { .. }
    ));
    sim.set_link(Link::Pass);
    sim.run_for(secs(12));
    assert_eq!(sim.state(), State::Open);
}

#[test]
fn pings_are_sent_only_when_the_link_is_idle() {
    let mut sim = default_open();
    for i in 0..10 {
        sim.server_push(&format!("{{\"s\":{i}}}"));
        sim.run_for(secs(3));
    }
    let pings = |sim: &Sim| {
        sim.written
            .iter()
            .filter(|(_, _, f)| is_json_ping(f))
            .count()
    };
    assert_eq!(pings(&sim), 0, "traffic every 3 s proves liveness");
    sim.run_for(secs(10));
    assert_eq!(pings(&sim), 1, "idle for the interval: one ping");
    assert_eq!(sim.state(), State::Open);
    assert_eq!(
        sim.engine.stats().last_rtt,
        Some(ms(40)),
        "RTT from the echoed ts"
    );
}

fn is_json_ping(frame: &Frame) -> bool {
    matches!(frame, Frame::Text(t) if t.starts_with(r#"{"type":"ping""#))
}

#[test]
fn websocket_ping_mode_detects_silence_and_measures_rtt() {
    let mut config = Sim::default_config();
    config.heartbeat = HeartbeatMode::WebSocketPing {
        interval: secs(5),
        timeout: secs(3),
    };
    let mut sim = open_sim(config);
    sim.run_for(secs(6));
    assert_eq!(sim.server.ws_pings_seen, 1);
    assert_eq!(sim.engine.stats().last_rtt, Some(ms(40)));
    assert!(!sim.written.iter().any(|(_, _, f)| is_json_ping(f)));
    sim.orphan_connections();
    sim.run_for(secs(9));
    assert!(matches!(
        sim.app.lost[0].1,
        ConnectionError::HeartbeatTimeout { .. }
    ));
    assert_eq!(sim.state(), State::Open, "reconnected");
}

#[test]
fn server_driven_mode_answers_pings_and_watches_silence() {
    let mut config = Sim::default_config();
    config.heartbeat = HeartbeatMode::ServerDriven {
        silence_timeout: secs(20),
    };
    let mut sim = open_sim(config);
    for _ in 0..6 {
        sim.server_send_raw(Frame::Text(r#"{"type":"ping","ts":123}"#.into()));
        sim.run_for(secs(15));
    }
    let pongs = sim
        .written
        .iter()
        .filter(|(_, _, f)| *f == Frame::Text(r#"{"type":"pong","ts":123}"#.into()));
    assert_eq!(pongs.count(), 6);
    assert!(
        !sim.written
            .iter()
            .any(|(_, _, f)| is_json_ping(f) || matches!(f, Frame::Ping(_))),
        "client never pings"
    );
    assert!(sim.app.lost.is_empty());
    // The server stops pinging: silence for 20 s is a dead connection.
    sim.run_for(secs(6));
    assert!(
        matches!(sim.app.lost[0].1, ConnectionError::HeartbeatTimeout { after } if after == secs(20))
    );
}

#[test]
fn close_1006_without_any_error_report_still_reconnects() {
    let mut sim = default_open();
    let conn = ConnId(0);
    sim.engine.handle_transport_closed(sim.now, conn, None, "");
    sim.run_for(ms(1));
    assert_eq!(
        sim.app.lost[0].1,
        ConnectionError::Closed {
            code: 1006,
            reason: String::new()
        }
    );
    sim.run_for(secs(2));
    assert_eq!(sim.state(), State::Open);
    assert_eq!(sim.engine.stats().reconnects, 1);
}

// ----- 3b. unanswered writes -----

/// An app sending a message every 20 ms, numbered from 0.
#[derive(Default)]
struct Sender {
    sent: u64,
}

impl Sender {
    /// Send for `d` (time passes meanwhile).
    fn send_for(&mut self, sim: &mut Sim, d: Duration) {
        let end = sim.now + d;
        while sim.now < end {
            sim.send(&self.sent.to_string()).expect("queued");
            self.sent += 1;
            sim.run_for(ms(20));
        }
    }

    /// Everything sent was stored once, in order.
    fn assert_all_stored(&self, sim: &Sim) {
        let expected: Vec<String> = (0..self.sent).map(|n| n.to_string()).collect();
        assert_eq!(sim.server.stored, expected);
    }
}

#[test]
fn a_dead_link_under_sending_is_noticed_within_ack_probe_after_plus_probe_timeout() {
    let config = Sim::default_config();
    let mut sim = open_sim(config.clone());
    let mut app = Sender::default();
    app.send_for(&mut sim, secs(1));
    let last_inbound = sim.engine.stats().last_inbound_at.unwrap();
    sim.set_link(Link::Blackhole);
    app.send_for(&mut sim, secs(6));
    let (at, error) = sim.app.lost.first().cloned().expect("dead link detected");
    assert!(
        matches!(error, ConnectionError::HeartbeatTimeout { after } if after == config.probe_timeout),
        "{error:?}"
    );
    let bound = secs(2) + config.probe_timeout + ms(20);
    let took = at.saturating_since(last_inbound);
    assert!(took <= bound, "noticed after {took:?}, bound {bound:?}");
    assert!(
        took < config.heartbeat.detection_bound() / 3,
        "{took:?} is no better than the idle heartbeat"
    );
    // Back online, everything written into the blackhole arrives once, in order.
    sim.set_link(Link::Pass);
    app.send_for(&mut sim, secs(1));
    sim.run_for(secs(15));
    app.assert_all_stored(&sim);
    assert_eq!(sim.engine.outbox_len(), 0);
}

#[test]
fn a_dead_connection_under_sending_is_replaced_by_its_candidate_with_nothing_lost() {
    let mut sim = default_open();
    let mut app = Sender::default();
    app.send_for(&mut sim, secs(1));
    let acked_before = sim.app.acked.len();
    // The server forgets the connection (a NAT mapping expired): writes vanish, new
    // connections work.
    let orphaned = sim.now;
    sim.orphan_connections();
    let mut replaced = None;
    while replaced.is_none() && sim.now.saturating_since(orphaned) < secs(10) {
        app.send_for(&mut sim, ms(20));
        if sim.app.acked.len() > acked_before {
            replaced = Some(sim.now.saturating_since(orphaned));
        }
    }
    let replaced = replaced.expect("acks again");
    assert!(
        replaced <= secs(2) + ms(200),
        "acks resumed {replaced:?} after the connection died"
    );
    assert_eq!(sim.opens, 2, "one candidate, no extra attempt");
    assert!(
        sim.app.lost.is_empty(),
        "a switch, not a drop: {:?}",
        sim.app.lost
    );
    app.send_for(&mut sim, secs(1));
    sim.run_for(secs(1));
    app.assert_all_stored(&sim);
}

#[test]
fn a_slow_but_alive_server_is_probed_once_and_never_replaced() {
    let mut sim = default_open();
    sim.server.ack_delay = secs(10);
    let mut app = Sender::default();
    app.send_for(&mut sim, secs(30));
    sim.run_for(secs(12));
    assert!(sim.app.lost.is_empty(), "{:?}", sim.app.lost);
    assert_eq!(sim.opens, 2, "the first check's candidate only");
    assert_eq!(sim.client_closes.len(), 1, "the candidate lost the race");
    assert_eq!(sim.state(), State::Open);
    app.assert_all_stored(&sim);
    assert_eq!(sim.app.acked.len() as u64, app.sent);
}

#[test]
fn a_large_message_on_a_slow_uplink_is_not_taken_for_a_dead_link() {
    let mut sim = default_open();
    // Eight seconds to upload; the server acks once it has it all.
    sim.server.ack_delay = secs(9);
    sim.send(r#"{"photo":"…"}"#).unwrap();
    sim.block_writes(true);
    sim.run_for(secs(8));
    sim.block_writes(false);
    sim.run_for(secs(3));
    assert_eq!(sim.app.acked.len(), 1);
    assert_eq!(sim.opens, 1, "no probe raced a candidate");
    assert!(
        !sim.written.iter().any(|(_, _, frame)| is_json_ping(frame)),
        "no probe at all"
    );
    // Blocked on a dead link, the idle heartbeat still finds it.
    sim.send("2").unwrap();
    sim.block_writes(true);
    sim.set_link(Link::Blackhole);
    sim.run_for(secs(16));
    assert!(
        matches!(
            sim.app.lost.first(),
            Some((_, ConnectionError::HeartbeatTimeout { .. }))
        ),
        "{:?}",
        sim.app.lost
    );
}

#[test]
fn an_idle_app_pays_for_nothing_but_the_idle_heartbeat() {
    let mut sim = default_open();
    let start = sim.now;
    sim.run_for(secs(60));
    let pings: Vec<Instant> = sim
        .written
        .iter()
        .filter(|(at, _, frame)| *at > start && is_json_ping(frame))
        .map(|(at, ..)| *at)
        .collect();
    assert_eq!(pings.len(), 5, "a ping every 10 s + 40 ms round trip");
    assert_eq!(sim.wakeups, 5, "one wake-up per ping, nothing else");
    assert_eq!(sim.opens, 1);
}

#[test]
fn sending_in_the_background_wakes_nothing() {
    for background in [
        BackgroundPolicy::KeepAlive,
        BackgroundPolicy::DisconnectAfter(secs(30)),
    ] {
        let mut config = Sim::default_config();
        config.background = background;
        let mut sim = open_sim(config);
        sim.set_link(Link::Blackhole);
        sim.set_app_state(AppState::Background);
        let wakeups = sim.wakeups;
        Sender::default().send_for(&mut sim, secs(60));
        let expected = usize::from(background != BackgroundPolicy::KeepAlive);
        assert_eq!(
            sim.wakeups - wakeups,
            expected,
            "{background:?}: only the grace period's end"
        );
        assert_eq!(sim.opens, 1, "{background:?}");
    }
}

#[test]
fn raw_mode_checks_a_quiet_server_with_a_ping_and_no_candidate() {
    let mut sim = open_sim(Config::raw("ws://sim.test/raw"));
    let start = sim.now;
    let mut sent = 0;
    while sim.now.saturating_since(start) < secs(10) {
        sim.engine
            .send(sim.now, Payload::Text(format!("t{sent}")))
            .unwrap();
        sent += 1;
        sim.run_for(ms(100));
    }
    assert!(
        (4..=5).contains(&sim.server.ws_pings_seen),
        "a ping each 2 s of unanswered writes: {}",
        sim.server.ws_pings_seen
    );
    assert_eq!(sim.opens, 1, "a quiet server is not raced");
    assert!(sim.app.lost.is_empty(), "{:?}", sim.app.lost);
}

#[test]
fn the_wait_for_unanswered_writes_can_be_set() {
    let mut config = Sim::default_config();
    config.ack_probe_after = Some(secs(5));
    let mut sim = open_sim(config);
    sim.set_link(Link::Blackhole);
    let dead_at = sim.now;
    Sender::default().send_for(&mut sim, secs(10));
    let (at, _) = sim.app.lost.first().cloned().expect("detected");
    let took = at.saturating_since(dead_at);
    assert!(
        took >= secs(7) && took <= secs(7) + ms(100),
        "5 s + the 2 s probe: {took:?}"
    );
    let mut zero = Sim::default_config();
    zero.ack_probe_after = Some(Duration::ZERO);
    assert!(matches!(
        Engine::new(zero, Box::new(SplitMix64::new(1))),
        Err(ConfigError::Invalid {
            field: "ack_probe_after",
            ..
        })
    ));
}

// ----- 4. backoff -----

#[test]
fn accept_then_drop_server_gets_growing_delays_not_a_tight_loop() {
    let mut sim = connecting_to(Sim::default_config(), Handshake::AcceptThenDrop);
    sim.run_for(secs(120));
    let attempts = sim.app.attempts_at();
    assert!(
        attempts.len() <= 10,
        "{} attempts in 2 minutes",
        attempts.len()
    );
    let gaps = gaps(&attempts);
    for (i, gap) in gaps.iter().enumerate() {
        // With 50 % jitter the delay is at least half the nominal 1, 2, 4 … 30 s.
        let floor = secs((1u64 << i).min(30)).mul_f64(0.5);
        assert!(*gap >= floor, "gap {i} is {gap:?}, below {floor:?}");
    }
    assert!(gaps.last().unwrap() >= &secs(8));
}

#[test]
fn a_stable_connection_resets_the_backoff() {
    let mut sim = connecting_to(no_jitter(), Handshake::AcceptThenDrop);
    sim.run_for(secs(20));
    assert!(matches!(sim.state(), State::Reconnecting { attempt, .. } if attempt >= 4));
    sim.server.handshake = Handshake::Accept;
    sim.run_for(secs(30));
    assert_eq!(sim.state(), State::Open);
    sim.run_for(secs(11)); // longer than stable_after
    sim.reset_all();
    sim.run_for(ms(30));
    assert_eq!(
        sim.state(),
        State::Reconnecting {
            attempt: 1,
            retry_in: secs(1)
        }
    );
}

#[test]
fn an_unstable_connection_does_not_reset_the_backoff() {
    let mut sim = Sim::new(no_jitter(), 3);
    sim.connect();
    sim.run_for(ms(100));
    sim.reset_all();
    sim.run_for(ms(30));
    assert_eq!(
        sim.state(),
        State::Reconnecting {
            attempt: 2,
            retry_in: secs(1)
        }
    );
    sim.run_for(secs(2)); // open again, but only for a moment
    sim.reset_all();
    sim.run_for(ms(30));
    assert_eq!(
        sim.state(),
        State::Reconnecting {
            attempt: 3,
            retry_in: secs(2)
        }
    );
}

#[test]
fn max_attempts_ends_in_failed_and_connect_starts_over() {
    let mut config = no_jitter();
    config.backoff.max_attempts = Some(3);
    let mut sim = Sim::new(config, 3);
    sim.set_link(Link::Down);
    sim.connect();
    sim.run_for(secs(60));
    assert_eq!(sim.opens, 3);
    let State::Failed {
        reason: FailReason::GaveUp { attempts: 3, last },
    } = sim.state()
    else {
        panic!("expected GaveUp, got {:?}", sim.state())
    };
    assert!(matches!(last, ConnectionError::Refused { .. }));
    sim.set_link(Link::Pass);
    sim.connect();
    sim.run_for(ms(100));
    assert_eq!(sim.state(), State::Open);
}

#[test]
fn retry_after_of_429_and_503_sets_the_next_delay() {
    for status in [429, 503] {
        let mut sim = connecting_to(
            Sim::default_config(),
            Handshake::Reject {
                status,
                retry_after: Some(secs(42)),
            },
        );
        sim.run_for(ms(50));
        assert_eq!(
            sim.state(),
            State::Reconnecting {
                attempt: 2,
                retry_in: secs(42)
            },
            "status {status}"
        );
    }
    // Retry-After on another status is not a hint we act on.
    let mut sim = connecting_to(
        no_jitter(),
        Handshake::Reject {
            status: 500,
            retry_after: Some(secs(42)),
        },
    );
    sim.run_for(ms(50));
    assert_eq!(
        sim.state(),
        State::Reconnecting {
            attempt: 2,
            retry_in: secs(1)
        }
    );
}

/// From a reset of the link to the state being `Open` again.
fn time_to_reopen(sim: &mut Sim) -> Duration {
    sim.reset_all();
    sim.run_until_cond(secs(10), |sim| sim.state() == State::Open)
        .expect("reopened")
}

#[test]
fn a_connection_that_delivered_a_message_is_retried_within_a_quarter_second_of_a_drop() {
    let mut sim = default_open();
    // A link reset every 2 s, with a message delivered on each connection: every recovery is
    // the quick retry (125-250 ms) plus a handshake (two 20 ms hops), not a growing schedule.
    for round in 0..10 {
        sim.server_push(&round.to_string());
        sim.run_for(ms(100));
        let took = time_to_reopen(&mut sim);
        assert!(
            took <= ms(250 + 40 + 5),
            "round {round}: reopened after {took:?}"
        );
        sim.run_for(secs(2));
    }
    assert_eq!(sim.app.received.len(), 10);
}

#[test]
fn a_connection_that_made_no_progress_keeps_the_growing_schedule_with_or_without_hello() {
    for sends_hello in [true, false] {
        let mut sim = Sim::new(no_jitter(), 3);
        sim.server.sends_hello = sends_hello;
        sim.connect();
        for (attempt, delay) in [(2, 1), (3, 2), (4, 4)] {
            sim.run_until_cond(secs(10), |sim| sim.state() == State::Open)
                .expect("open");
            sim.run_for(ms(100));
            sim.reset_all();
            sim.run_for(ms(30));
            assert_eq!(
                sim.state(),
                State::Reconnecting {
                    attempt,
                    retry_in: secs(delay)
                },
                "hello: {sends_hello}"
            );
        }
    }
}

#[test]
fn an_ack_or_a_new_message_proves_a_connection_with_or_without_hello() {
    for (proof, sends_hello) in [("ack", true), ("ack", false), ("message", false)] {
        let mut sim = Sim::new(no_jitter(), 3);
        sim.server.sends_hello = sends_hello;
        sim.connect();
        sim.run_for(ms(100));
        match proof {
            "ack" => drop(sim.send("1").unwrap()),
            _ => drop(sim.server_push("1")),
        }
        sim.run_for(ms(100));
        sim.reset_all();
        sim.run_for(ms(30));
        assert!(
            matches!(sim.state(), State::Reconnecting { attempt: 1, retry_in } if retry_in == ms(250)),
            "{proof}, hello: {sends_hello}: {:?}",
            sim.state()
        );
    }
}

#[test]
fn without_hello_a_flapping_link_recovers_as_fast_as_with_it() {
    let mut sim = default_open();
    sim.server.sends_hello = false;
    let mut app = Sender::default();
    for round in 0..10 {
        app.send_for(&mut sim, ms(200));
        let took = time_to_reopen(&mut sim);
        assert!(
            took <= ms(250 + 40 + 5),
            "round {round}: reopened after {took:?}"
        );
        app.send_for(&mut sim, secs(2));
    }
    sim.run_for(secs(1));
    app.assert_all_stored(&sim);
}

#[test]
fn a_server_delay_outweighs_the_quick_retry() {
    let mut sim = default_open();
    sim.server_push("1");
    sim.run_for(ms(100));
    sim.server_close_all(1013, "overloaded");
    sim.run_for(ms(30));
    let State::Reconnecting { retry_in, .. } = sim.state() else {
        panic!("{:?}", sim.state());
    };
    assert!(retry_in >= secs(1), "{retry_in:?}");
}

#[test]
fn a_server_hint_of_zero_cannot_cause_a_tight_loop() {
    for (status, retry_after) in [(503, Some(Duration::ZERO)), (429, Some(Duration::ZERO))] {
        let mut sim = connecting_to(
            Sim::default_config(),
            Handshake::Reject {
                status,
                retry_after,
            },
        );
        sim.run_for(secs(10));
        // Delays of at least 0.5, 1 and 2 s (1, 2, 4 s shortened by up to 50 % jitter) leave room
        // for at most 5 attempts in 10 s.
        assert!(
            (3..=5).contains(&sim.opens),
            "{status}: {} attempts in 10 s",
            sim.opens
        );
    }
    let mut sim = default_open();
    for _ in 0..6 {
        sim.server_close_all(1013, "retry after 0");
        sim.run_for(ms(400));
    }
    assert!(
        sim.opens <= 3,
        "1013 \"retry after 0\": {} attempts in 2.4 s",
        sim.opens
    );
}

#[test]
fn close_1013_sets_the_next_delay() {
    let mut sim = default_open();
    sim.server_close_all(1013, "retry after 7");
    sim.run_for(ms(30));
    assert_eq!(
        sim.state(),
        State::Reconnecting {
            attempt: 2,
            retry_in: secs(7)
        }
    );
    sim.run_for(secs(8));
    sim.server_close_all(1013, "overloaded");
    sim.run_for(ms(30));
    assert_eq!(
        sim.state(),
        State::Reconnecting {
            attempt: 3,
            retry_in: secs(30)
        },
        "no number: the cap"
    );
}

// ----- 5. close-code policy -----

#[test]
fn fatal_handshake_statuses_fail_without_retry() {
    for status in [403, 404] {
        let mut sim = connecting_to(
            Sim::default_config(),
            Handshake::Reject {
                status,
                retry_after: None,
            },
        );
        sim.run_for(secs(120));
        assert_eq!(sim.opens, 1, "status {status}");
        assert_eq!(
            sim.state(),
            State::Failed {
                reason: FailReason::Rejected(ConnectionError::Handshake {
                    status,
                    retry_after: None
                })
            }
        );
    }
}

#[test]
fn fatal_close_codes_fail_without_retry() {
    for code in [1008, 4400, 4403, 4499] {
        let mut sim = connecting_to(Sim::default_config(), Handshake::AcceptThenClose(code));
        sim.run_for(secs(60));
        assert_eq!(sim.opens, 1, "code {code}");
        assert!(
            matches!(sim.state(), State::Failed { reason: FailReason::Rejected(ConnectionError::Closed { code: c, .. }) } if c == code)
        );
    }
}

#[test]
fn other_close_codes_retry() {
    for code in [1000, 1001, 1006, 1011, 1012, 4000, 4500] {
        let mut sim = connecting_to(Sim::default_config(), Handshake::AcceptThenClose(code));
        sim.run_for(secs(10));
        assert!(sim.opens >= 3, "code {code}: {} attempts", sim.opens);
        assert!(!matches!(sim.state(), State::Failed { .. }), "code {code}");
    }
}

#[test]
fn auth_failures_get_one_retry_with_fresh_credentials() {
    for handshake in [
        Handshake::Reject {
            status: 401,
            retry_after: None,
        },
        Handshake::AcceptThenClose(4401),
    ] {
        let mut sim = connecting_to(Sim::default_config(), handshake);
        sim.run_for(secs(60));
        assert_eq!(sim.refreshes, [false, true], "{handshake:?}");
        assert!(
            matches!(
                sim.state(),
                State::Failed {
                    reason: FailReason::Rejected(_)
                }
            ),
            "{handshake:?}"
        );
    }
    // A refreshed token that works: Open, and a later 401 gets its retry again.
    let mut sim = connecting_to(
        Sim::default_config(),
        Handshake::Reject {
            status: 401,
            retry_after: None,
        },
    );
    sim.run_for(ms(30));
    sim.server.handshake = Handshake::Accept;
    sim.run_for(ms(100));
    assert_eq!(sim.state(), State::Open);
    assert_eq!(sim.opens, 2);
}

// ----- 6. outbox -----

#[test]
fn messages_sent_while_offline_are_queued_and_delivered_in_order() {
    let mut sim = Sim::new(Sim::default_config(), 5);
    let ids: Vec<MessageId> = (0..5)
        .map(|i| sim.send(&format!("{{\"n\":{i}}}")).unwrap())
        .collect();
    assert_eq!(sim.engine.stats().outbox_len, 5);
    sim.connect();
    sim.run_for(ms(200));
    assert_eq!(
        sim.server.stored,
        (0..5).map(|i| format!("{{\"n\":{i}}}")).collect::<Vec<_>>()
    );
    assert_eq!(sim.app.acked, ids);
    assert_eq!(sim.engine.stats().outbox_len, 0);
}

#[test]
fn unacked_messages_are_resent_in_order_after_a_reconnect_and_stored_once() {
    let mut sim = default_open();
    sim.set_latency(ms(100));
    let ids: Vec<MessageId> = (0..6)
        .map(|i| sim.send(&format!("{{\"n\":{i}}}")).unwrap())
        .collect();
    sim.run_for(ms(150)); // the server stored them; the acks are still in flight
    assert_eq!(sim.server.stored.len(), 6);
    sim.reset_all();
    for i in 6..9 {
        sim.send(&format!("{{\"n\":{i}}}")).unwrap();
    }
    sim.run_for(secs(5));
    assert_eq!(sim.state(), State::Open);
    assert_eq!(
        sim.server.stored,
        (0..9).map(|i| format!("{{\"n\":{i}}}")).collect::<Vec<_>>()
    );
    assert_eq!(&sim.app.acked[..6], &ids[..], "acked once each, in order");
    assert_eq!(sim.app.acked.len(), 9);
    let second_conn: Vec<String> = sim
        .written
        .iter()
        .filter(|(_, conn, _)| *conn != ConnId(0))
        .filter_map(|(_, _, f)| match f {
            Frame::Text(t) if t.contains(r#""type":"msg""#) => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        second_conn.len(),
        9,
        "all unacked messages rewritten, oldest first"
    );
    assert!(second_conn[0].contains(&ids[0].0));
}

#[test]
fn duplicate_and_unknown_acks_are_ignored() {
    let mut sim = default_open();
    sim.orphan_connections(); // only the acks below reach the client
    let id = sim.send("1").unwrap();
    for ack in [
        format!(r#"{{"type":"ack","id":"{id}"}}"#),
        format!(r#"{{"type":"ack","id":"{id}"}}"#),
        r#"{"type":"ack","id":"never-sent"}"#.to_string(),
    ] {
        sim.engine
            .handle_frame(sim.now, ConnId(0), Frame::Text(ack));
    }
    sim.run_for(ms(1));
    assert_eq!(sim.app.acked, [id]);
    assert_eq!(sim.engine.stats().messages_acked, 1);
}

#[test]
fn overflow_reject_new_refuses_and_keeps_what_is_queued() {
    let mut config = Sim::default_config();
    config.outbox.max_messages = 3;
    let mut sim = Sim::new(config, 5);
    for i in 0..3 {
        sim.send(&format!("{i}")).unwrap();
    }
    let err = sim.send("3").unwrap_err();
    assert!(
        matches!(err, SendError::OutboxFull { messages: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("DropOldest"));
    sim.connect();
    sim.run_for(ms(200));
    assert_eq!(sim.server.stored, ["0", "1", "2"]);
}

#[test]
fn overflow_drop_oldest_reports_the_dropped_id() {
    let mut config = Sim::default_config();
    config.outbox.max_messages = 3;
    config.outbox.overflow = OverflowPolicy::DropOldest;
    let mut sim = Sim::new(config, 5);
    let ids: Vec<MessageId> = (0..5).map(|i| sim.send(&format!("{i}")).unwrap()).collect();
    assert_eq!(
        sim.app.failed,
        [
            (ids[0].clone(), SendFailure::Dropped),
            (ids[1].clone(), SendFailure::Dropped)
        ]
    );
    sim.connect();
    sim.run_for(ms(200));
    assert_eq!(sim.server.stored, ["2", "3", "4"]);
}

#[test]
fn messages_past_their_ttl_are_reported_expired() {
    let mut config = Sim::default_config();
    config.outbox.default_ttl = Some(secs(30));
    let mut sim = Sim::new(config, 5);
    sim.set_link(Link::Down);
    let early = sim.send("1").unwrap();
    sim.run_for(secs(10));
    let short = sim
        .engine
        .send_with_ttl(sim.now, Payload::Json("2".into()), Some(secs(5)))
        .unwrap();
    let late = sim.send("3").unwrap();
    sim.connect();
    sim.run_for(secs(25));
    assert_eq!(
        sim.app.failed,
        [(short, SendFailure::Expired), (early, SendFailure::Expired)]
    );
    sim.set_link(Link::Pass);
    sim.set_network(NetworkStatus::Unavailable);
    sim.set_network(NetworkStatus::Available { interface: None });
    sim.run_for(ms(200));
    assert_eq!(sim.app.acked, [late]);
    assert_eq!(sim.server.stored, ["3"]);
}

#[test]
fn messages_restored_from_an_earlier_run_are_sent_first_and_expired_ones_reported() {
    let mut engine = Engine::new(Sim::default_config(), Box::new(SplitMix64::new(1))).unwrap();
    let now = Instant::from_millis(60_000);
    let restored = |id: &str, expires_at| OutboxEntry {
        id: MessageId(id.into()),
        payload: Payload::Json("0".into()),
        created_at: Instant::from_millis(1_000),
        expires_at,
    };
    engine.restore(
        now,
        vec![
            restored("from-last-run", None),
            restored("timed-out-meanwhile", Some(now)),
            restored("still-alive", Some(now + Duration::from_secs(5))),
        ],
    );
    assert!(matches!(
        engine.poll_event(),
        Some(Event::SendFailed { id, reason: SendFailure::Expired, .. }) if id.0 == "timed-out-meanwhile"
    ));
    let pending: Vec<String> = engine.pending().into_iter().map(|p| p.id.0).collect();
    assert_eq!(pending, ["from-last-run", "still-alive"]);
    assert_eq!(engine.pending()[0].created_at, Instant::from_millis(1_000));
    engine.send(now, Payload::Json("1".into())).unwrap();
    engine.connect(now);
    engine.handle_transport_opened(now, ConnId(0));
    let frames: Vec<Frame> = std::iter::from_fn(|| engine.poll_transmit())
        .filter_map(|t| match t {
            Transmit::Send { frame, .. } => Some(frame),
            _ => None,
        })
        .collect();
    assert_eq!(frames.len(), 3);
    assert_eq!(
        frames[0],
        Frame::Text(r#"{"type":"msg","id":"from-last-run","data":0}"#.into())
    );
}

#[test]
fn cancel_reports_the_message_and_withdraw_takes_it_back_silently() {
    let mut sim = Sim::new(Sim::default_config(), 5);
    let kept = sim.send("1").unwrap();
    let cancelled = sim.send("2").unwrap();
    let withdrawn = sim.send("3").unwrap();
    assert!(sim.engine.cancel(&cancelled));
    assert!(!sim.engine.cancel(&cancelled));
    assert!(sim.engine.withdraw(&withdrawn));
    let events: Vec<Event> = std::iter::from_fn(|| sim.engine.poll_event()).collect();
    assert_eq!(
        events,
        [Event::SendFailed {
            id: cancelled,
            payload: Payload::Json("2".into()),
            reason: SendFailure::Cancelled
        }]
    );
    let pending: Vec<MessageId> = sim.engine.pending().into_iter().map(|p| p.id).collect();
    assert_eq!(pending, [kept]);
}

// ----- 7. envelope protocol -----

#[test]
fn send_rejects_non_json_and_queues_nothing() {
    let mut sim = Sim::new(Sim::default_config(), 5);
    let err = sim.send("{not json").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the payload is not valid JSON (key must be a string"),
        "{err}"
    );
    let err = sim
        .engine
        .send(sim.now, Payload::Binary(vec![1]))
        .unwrap_err();
    assert_eq!(err, SendError::WrongMode { kind: "binary" });
    assert_eq!(sim.engine.stats().outbox_len, 0);
}

#[test]
fn send_refuses_json_the_protocol_forbids_and_queues_nothing() {
    let mut sim = default_open();
    let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
    for (payload, problem) in [
        (deep.as_str(), "nested deeper than 64 levels"),
        (r#"{"price": 1e400}"#, "no 64-bit float"),
    ] {
        let err = sim.send(payload).unwrap_err();
        assert!(
            matches!(&err, SendError::NotPortable { reason } if reason.contains(problem)),
            "{err:?}"
        );
        assert!(err.to_string().contains("docs/protocol.md §9"), "{err}");
    }
    sim.run_for(ms(100));
    assert_eq!(sim.engine.stats().outbox_len, 0);
    assert!(sim.server.stored.is_empty() && sim.app.failed.is_empty());
    sim.send(&format!("{}{}", "[".repeat(64), "]".repeat(64)))
        .expect("64 levels are allowed");
}

#[test]
fn message_ids_are_unique_uuids() {
    let mut sim = Sim::new(Sim::default_config(), 5);
    let mut ids = std::collections::HashSet::new();
    for _ in 0..1000 {
        let id = sim.send("1").unwrap();
        let uuid = uuid::Uuid::parse_str(&id.0).expect("a UUID");
        assert_eq!(uuid.get_version_num(), 4);
        assert!(ids.insert(id));
    }
}

#[test]
fn malformed_inbound_frames_become_events_and_the_connection_survives() {
    let mut sim = default_open();
    let long = format!(
        "{{\"type\":\"msg\",\"id\":\"m\",\"data\":\"{}",
        "x".repeat(500)
    );
    for bad in [
        "not json",
        r#"{"type":"shout"}"#,
        r#"{"type":"msg","id":"m"}"#,
        r#"{"type":"msg","id":"m","seq":-4,"data":1}"#,
        &long,
    ] {
        sim.server_send_raw(Frame::Text(bad.into()));
    }
    sim.server_send_raw(Frame::Binary(vec![0xff, 0xfe]));
    sim.server_push("{\"ok\":true}");
    sim.run_for(ms(100));
    assert_eq!(sim.app.malformed.len(), 6, "{:?}", sim.app.malformed);
    assert!(sim.app.malformed[1].contains("unknown frame type \"shout\""));
    assert!(sim.app.malformed[5].contains("binary frame"));
    let previews: Vec<usize> = sim
        .app
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::MalformedFrame { preview, .. } => Some(preview.chars().count()),
            _ => None,
        })
        .collect();
    assert!(previews.iter().all(|&n| n <= 61), "{previews:?}");
    assert_eq!(sim.app.received_data(), ["{\"ok\":true}"]);
    assert_eq!(sim.state(), State::Open);
}

#[test]
fn a_server_error_naming_a_message_fails_it_instead_of_resending_forever() {
    let mut sim = default_open();
    sim.orphan_connections(); // the server will not store it
    let id = sim.send("1").unwrap();
    let error =
        format!(r#"{{"type":"error","code":"too_large","message":"limit 4 MiB","id":"{id}"}}"#);
    sim.engine
        .handle_frame(sim.now, ConnId(0), Frame::Text(error));
    sim.engine.handle_frame(
        sim.now,
        ConnId(0),
        Frame::Text(r#"{"type":"error","code":"busy","message":"later"}"#.into()),
    );
    sim.run_for(ms(1));
    assert_eq!(
        sim.app.failed,
        [(
            id,
            SendFailure::Rejected {
                code: "too_large".into(),
                message: "limit 4 MiB".into()
            }
        )]
    );
    assert!(
        sim.app
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::ServerError { code, .. } if code == "busy"))
    );
    assert_eq!(sim.engine.stats().outbox_len, 0);
}

#[test]
fn raw_mode_passes_frames_through_without_envelopes() {
    let mut sim = open_sim(Config::raw("ws://sim.test/raw"));
    let id = sim
        .engine
        .send(sim.now, Payload::Text("hello".into()))
        .unwrap();
    sim.engine
        .send(sim.now, Payload::Binary(vec![1, 2, 3]))
        .unwrap();
    sim.run_for(ms(100));
    let frames: Vec<&Frame> = sim.written.iter().map(|(_, _, f)| f).collect();
    assert_eq!(
        frames,
        [&Frame::Text("hello".into()), &Frame::Binary(vec![1, 2, 3])]
    );
    assert_eq!(
        sim.engine.stats().outbox_len,
        0,
        "raw messages leave the outbox once the transport took them"
    );
    assert!(sim.app.acked.is_empty() && !id.0.is_empty());
    sim.server_send_raw(Frame::Text("plain".into()));
    sim.server_send_raw(Frame::Binary(vec![9]));
    sim.run_for(secs(11));
    assert_eq!(sim.app.received_data(), ["plain", "[9]"]);
    assert!(
        sim.app
            .received
            .iter()
            .all(|m| m.id.is_none() && m.seq.is_none())
    );
    assert!(
        sim.server.ws_pings_seen >= 1,
        "raw mode uses WebSocket pings"
    );
    let mut bad = Config::raw("ws://x/");
    bad.heartbeat = Config::new("ws://x/").heartbeat;
    assert!(matches!(
        Engine::new(bad, Box::new(SplitMix64::new(0))),
        Err(ConfigError::Invalid {
            field: "heartbeat",
            ..
        })
    ));
}

/// Drain the engine's transmits: the frames written, with the raw messages they carry.
fn sends(engine: &mut Engine) -> Vec<(ConnId, String, Option<MessageId>)> {
    std::iter::from_fn(|| engine.poll_transmit())
        .filter_map(|transmit| match transmit {
            Transmit::Send {
                conn,
                frame: Frame::Text(text),
                message,
            } => Some((conn, text, message)),
            _ => None,
        })
        .collect()
}

/// A raw engine open on its first transport.
fn raw_open(config: Config) -> (Engine, ConnId) {
    let mut engine = Engine::new(config, Box::new(SplitMix64::new(5))).unwrap();
    engine.connect(Instant::ZERO);
    let Some(Transmit::Open { conn, .. }) = engine.poll_transmit() else {
        panic!("no open")
    };
    engine.handle_transport_opened(Instant::ZERO, conn);
    (engine, conn)
}

#[test]
fn a_slow_raw_peer_fills_the_outbox_and_send_says_so() {
    let mut config = Config::raw("ws://sim.test/raw");
    config.outbox.max_messages = 3;
    let (mut engine, conn) = raw_open(config);
    let now = Instant::ZERO;
    for n in 0..3 {
        engine.send(now, Payload::Text(format!("m{n}"))).unwrap();
    }
    let written = sends(&mut engine);
    assert_eq!(written.len(), 3);
    // The transport took none yet (the peer reads slowly): the outbox is full.
    assert!(matches!(
        engine.send(now, Payload::Text("m3".into())),
        Err(SendError::OutboxFull { messages: 3, .. })
    ));
    // It took the first one: room for one more, and only that one is written.
    engine.handle_written(conn, vec![written[0].2.clone().unwrap()]);
    engine.send(now, Payload::Text("m3".into())).unwrap();
    assert!(engine.send(now, Payload::Text("m4".into())).is_err());
    let more = sends(&mut engine);
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].1, "m3");
    assert!(
        std::iter::from_fn(|| engine.poll_event()).all(|e| !matches!(e, Event::SendFailed { .. }))
    );
}

#[test]
fn raw_messages_a_dead_connection_never_took_are_written_on_the_next_once() {
    let mut config = Config::raw("ws://sim.test/raw");
    config.backoff.jitter = 0.0;
    let (mut engine, first) = raw_open(config);
    let mut now = Instant::ZERO;
    for n in 0..4 {
        engine.send(now, Payload::Text(format!("m{n}"))).unwrap();
    }
    let written = sends(&mut engine);
    // The writer took m0 and m1; the connection died with m2 and m3 still in its queue.
    let taken: Vec<MessageId> = written[..2].iter().map(|w| w.2.clone().unwrap()).collect();
    engine.handle_written(first, taken);
    engine.handle_transport_closed(now, first, None, "");
    now = engine.poll_timeout().unwrap();
    engine.handle_timeout(now);
    let Some(Transmit::Open { conn: second, .. }) = engine.poll_transmit() else {
        panic!("no reconnect")
    };
    engine.handle_transport_opened(now, second);
    let rewritten: Vec<String> = sends(&mut engine).into_iter().map(|w| w.1).collect();
    assert_eq!(rewritten, ["m2", "m3"], "nothing lost, nothing twice");
    assert!(
        std::iter::from_fn(|| engine.poll_event()).all(|e| !matches!(e, Event::SendFailed { .. }))
    );
}

#[test]
fn raw_messages_an_abandoned_connection_took_are_withdrawn_from_its_successor() {
    let config = Config::raw("ws://sim.test/raw");
    let (mut engine, first) = raw_open(config);
    let now = Instant::ZERO;
    for n in 0..3 {
        engine.send(now, Payload::Text(format!("m{n}"))).unwrap();
    }
    let written = sends(&mut engine);
    // A network change races a candidate, which wins at its handshake (raw mode): the engine
    // closes the first connection and writes everything queued on the second at once.
    engine.set_network(
        now,
        NetworkStatus::Available {
            interface: Some("wifi".into()),
        },
    );
    engine.set_network(
        now,
        NetworkStatus::Available {
            interface: Some("cellular".into()),
        },
    );
    let candidate = std::iter::from_fn(|| engine.poll_transmit())
        .find_map(|t| match t {
            Transmit::Open { conn, .. } => Some(conn),
            _ => None,
        })
        .expect("a candidate");
    engine.handle_transport_opened(now, candidate);
    let mut transmits: Vec<Transmit> = Vec::new();
    while let Some(transmit) = engine.poll_transmit() {
        let closing_first = matches!(&transmit, Transmit::Close { conn, .. } if *conn == first);
        transmits.push(transmit);
        if closing_first {
            // The driver closes the first connection: its writer had taken m0.
            engine.handle_written(first, vec![written[0].2.clone().unwrap()]);
        }
    }
    let on_candidate: Vec<&str> = transmits
        .iter()
        .filter_map(|t| match t {
            Transmit::Send {
                conn,
                frame: Frame::Text(text),
                ..
            } if *conn == candidate => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        on_candidate,
        ["m1", "m2"],
        "m0 went on the first connection"
    );
}

// ----- 8. dedup -----

#[test]
fn stale_out_of_order_replays_are_dropped() {
    // A dedup window too small to remember them: the cursor alone must catch the stale ones.
    let mut config = Sim::default_config();
    config.dedup.max_entries = 2;
    let mut sim = open_sim(config);
    sim.server.stale_replay = 4;
    for i in 1..=5 {
        sim.server_push(&i.to_string());
    }
    sim.run_for(ms(100));
    sim.set_link(Link::Down);
    for i in 6..=8 {
        sim.server_push(&i.to_string());
    }
    sim.set_link(Link::Pass);
    sim.run_for(secs(5));
    assert_eq!(sim.state(), State::Open);
    let seqs: Vec<u64> = sim.app.received.iter().map(|m| m.seq.unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(sim.engine.stats().duplicates_dropped, 4);
}

#[test]
fn unsequenced_duplicates_are_dropped_by_id_within_a_bounded_window() {
    let mut config = Sim::default_config();
    config.dedup.max_entries = 100;
    let mut sim = open_sim(config);
    for round in 0..3 {
        for i in 0..50 {
            sim.server_send_raw(Frame::Text(format!(
                r#"{{"type":"msg","id":"u{i}","data":{round}}}"#
            )));
        }
    }
    sim.run_for(ms(100));
    assert_eq!(sim.app.received.len(), 50);
    for i in 0..5_000 {
        sim.server_send_raw(Frame::Text(format!(
            r#"{{"type":"msg","id":"v{i}","data":0}}"#
        )));
    }
    sim.run_for(ms(100));
    assert_eq!(sim.app.received.len(), 5_050);
    assert_eq!(sim.engine.stats().dedup_len, 100, "memory stays bounded");
}

#[test]
fn an_impossible_seq_is_malformed_and_leaves_the_cursor_alone() {
    let mut sim = default_open();
    sim.server_push("1");
    sim.run_for(ms(100));
    let before = sim.engine.stats().cursor;
    sim.server_send_raw(Frame::Text(
        r#"{"type":"msg","id":"evil","seq":18446744073709551615,"data":0}"#.into(),
    ));
    sim.run_for(ms(100));
    assert_eq!(sim.engine.stats().cursor, before);
    assert!(
        sim.app
            .malformed
            .last()
            .unwrap()
            .contains("beyond 2^53 - 1"),
        "{:?}",
        sim.app.malformed
    );
    sim.server_push("2");
    sim.run_for(ms(100));
    assert_eq!(
        sim.app.received_data(),
        ["1", "2"],
        "later messages still arrive"
    );
    assert_eq!(sim.state(), State::Open);
}

// ----- 9. resume -----

#[test]
fn every_attempt_carries_one_client_id_drawn_at_random_when_unset() {
    let client_id = |seed| {
        let mut sim = Sim::new(Sim::default_config(), seed);
        sim.connect();
        sim.run_for(ms(100));
        sim.reset_all();
        sim.run_for(secs(2));
        let ids: Vec<String> = sim
            .server
            .upgrades
            .iter()
            .map(|url| query(url, "client_id").expect("client_id in every attempt"))
            .collect();
        assert!(
            ids.len() >= 2 && ids.iter().all(|id| id == &ids[0]),
            "{ids:?}"
        );
        assert_eq!(sim.engine.client_id(), Some(ids[0].as_str()));
        ids[0].clone()
    };
    let first = client_id(1);
    assert_eq!(first.len(), 36, "a UUID: {first}");
    assert_ne!(first, client_id(2));

    let raw = Engine::new(
        Config::raw("ws://sim.test/raw"),
        Box::new(SplitMix64::new(1)),
    )
    .unwrap();
    assert_eq!(raw.client_id(), None, "raw servers know nothing of it");
    let mut bad = Sim::default_config();
    bad.client_id = Some("has space".into());
    assert!(matches!(
        Engine::new(bad, Box::new(SplitMix64::new(1))),
        Err(ConfigError::Invalid {
            field: "client_id",
            ..
        })
    ));
}

fn query(url: &str, name: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('=').map(String::from))
}

#[test]
fn reconnect_urls_carry_the_cursor_and_keep_the_users_query() {
    let mut config = Config::new("ws://sim.test/ws?room=7&last_seq=999");
    config.client_id = Some("c1".into());
    let mut sim = open_sim(config);
    assert_eq!(
        sim.server.upgrades[0],
        "ws://sim.test/ws?room=7&client_id=c1"
    );
    sim.server_push("1");
    let last = sim.server_push("2");
    sim.run_for(ms(100));
    sim.reset_all();
    sim.run_for(secs(2));
    let url = sim.server.upgrades.last().unwrap();
    assert!(
        url.starts_with("ws://sim.test/ws?room=7&client_id=c1&last_seq=2&last_ts="),
        "{url}"
    );
    assert_eq!(query_u64(url, "last_seq"), Some(last));
    assert_eq!(
        query_u64(url, "last_ts"),
        sim.app.received.last().unwrap().ts
    );
}

#[test]
fn a_client_that_never_received_a_message_still_gets_what_it_missed() {
    for sends_hello in [true, false] {
        let mut sim = Sim::new(Sim::default_config(), 1);
        sim.server.sends_hello = sends_hello;
        sim.server_push("0"); // before this client existed: not its business
        sim.connect();
        sim.run_for(ms(100));
        sim.set_link(Link::Down);
        sim.server_push("1");
        sim.server_push("2");
        sim.set_link(Link::Pass);
        sim.run_for(secs(3));
        assert_eq!(sim.state(), State::Open);
        let expected: &[&str] = if sends_hello { &["1", "2"] } else { &[] };
        assert_eq!(sim.app.received_data(), expected, "hello: {sends_hello}");
    }
}

#[test]
fn a_persisted_cursor_is_used_from_the_first_attempt() {
    let mut config = Sim::default_config();
    config.resume.initial = ResumeCursor {
        last_seq: Some(2),
        last_ts: Some(5),
    };
    config.client_id = Some("c1".into());
    let mut sim = Sim::new(config, 1);
    for i in 1..=4 {
        sim.server_push(&i.to_string());
    }
    sim.connect();
    sim.run_for(ms(200));
    assert_eq!(
        sim.server.upgrades[0],
        "ws://sim.test/ws?client_id=c1&last_seq=2&last_ts=5"
    );
    assert_eq!(sim.app.received_data(), ["3", "4"]);
}

#[test]
fn server_restart_with_replay_loses_nothing_and_duplicates_nothing() {
    let mut sim = default_open();
    sim.set_latency(ms(50));
    let mut sent = Vec::new();
    for i in 0..200u64 {
        if i % 10 == 0 {
            sim.server_push(&format!("{{\"s\":{i}}}"));
        }
        if i == 60 {
            sim.restart_server(secs(3));
        }
        if i == 120 {
            sim.set_link(Link::Down);
        }
        if i == 150 {
            sim.set_link(Link::Pass);
        }
        let json = format!("{{\"c\":{i}}}");
        sim.send(&json).unwrap();
        sent.push(json);
        sim.run_for(ms(100));
    }
    sim.run_for(secs(40));
    assert_eq!(sim.state(), State::Open);
    assert_eq!(
        sim.server.stored, sent,
        "upstream: every message stored once, in order"
    );
    assert_eq!(sim.app.acked.len(), 200);
    let expected: Vec<String> = sim.server.history.iter().map(|m| m.data.clone()).collect();
    assert_eq!(
        sim.app.received_data(),
        expected,
        "downstream: all, once, in order"
    );
}

// ----- 10. lifecycle -----

#[test]
fn background_keep_alive_pauses_heartbeats_and_foreground_probes() {
    let mut sim = default_open();
    sim.set_app_state(AppState::Background);
    sim.run_for(secs(120));
    assert!(
        !sim.written.iter().any(|(_, _, f)| is_json_ping(f)),
        "no pings in background"
    );
    assert_eq!(sim.state(), State::Open);
    sim.set_app_state(AppState::Foreground);
    assert!(
        is_json_ping(&sim.written.last().unwrap().2),
        "probe sent at once"
    );
    sim.run_for(secs(3));
    assert_eq!(sim.state(), State::Open, "the probe was answered");
    assert_one_survivor_of_a_race(&sim, 2);
}

/// After a probe raced a second connection (make-before-break): both were opened, the client
/// closed exactly one of them (the candidate that lost, 1000, or the old one it replaced, 4000),
/// and the app saw no state change during the race.
fn assert_one_survivor_of_a_race(sim: &Sim, opens: usize) {
    assert_eq!(sim.opens, opens, "a candidate raced the probe");
    let (_, code) = *sim.client_closes.last().expect("one of the two was closed");
    assert!(code == 1000 || code == 4000, "closed with {code}");
    let last_change = sim.app.states.last().map(|(_, state)| state.clone());
    assert_eq!(last_change, Some(State::Open));
}

#[test]
fn foreground_replaces_a_stale_socket_by_the_new_connection_it_raced() {
    let mut sim = default_open();
    sim.set_app_state(AppState::Background);
    sim.run_for(secs(300));
    sim.orphan_connections(); // the OS suspended us; the server and NAT forgot the socket
    sim.run_for(secs(300));
    assert_eq!(
        sim.state(),
        State::Open,
        "a suspended socket still looks open"
    );
    let id = sim.send("1").unwrap();
    sim.set_app_state(AppState::Foreground);
    // The candidate is open and its hello has arrived after two round trips (4 × 20 ms), long
    // before the probe's 2 s timeout; the old socket is replaced, not waited for.
    let took = sim
        .run_until_cond(secs(10), |s| s.client_closes.iter().any(|c| c.1 == 4000))
        .expect("replaced");
    assert!(took <= ms(100), "replaced after {took:?}");
    assert_eq!(sim.state(), State::Open);
    assert!(sim.app.lost.is_empty(), "no error: {:?}", sim.app.lost);
    sim.run_for(ms(100));
    assert_eq!(
        sim.app.acked,
        [id],
        "the message queued meanwhile went out on the new one"
    );
    assert_eq!(sim.engine.stats().reconnects, 1);
}

#[test]
fn a_healthy_socket_answers_first_and_the_candidate_is_closed() {
    let mut sim = default_open();
    // The new connection is slow to open: the old one's pong wins the race.
    sim.set_latency(ms(20));
    sim.server.handshake = Handshake::Hang;
    sim.set_app_state(AppState::Background);
    sim.set_app_state(AppState::Foreground);
    sim.run_for(secs(1));
    assert_eq!(sim.client_closes, [(ConnId(1), 1000)], "the candidate lost");
    assert_eq!(sim.state(), State::Open);
    sim.server_push("7");
    sim.run_for(ms(100));
    assert_eq!(
        sim.app.received_data(),
        ["7"],
        "the old connection carries on"
    );
}

#[test]
fn when_both_fail_the_usual_schedule_takes_over() {
    let mut sim = default_open();
    sim.set_app_state(AppState::Background);
    sim.orphan_connections();
    sim.server.handshake = Handshake::Hang;
    let start = sim.now;
    sim.set_app_state(AppState::Foreground);
    // The old socket stays silent past the probe timeout: the candidate, still opening, becomes
    // the attempt instead of a third connection.
    sim.run_for(Sim::default_config().probe_timeout + ms(10));
    assert!(
        matches!(sim.app.lost[0], (at, ConnectionError::HeartbeatTimeout { .. }) if at.saturating_since(start) == Sim::default_config().probe_timeout)
    );
    assert!(
        matches!(sim.state(), State::Connecting { .. }),
        "{:?}",
        sim.state()
    );
    assert_eq!(sim.opens, 2);
    // Then its connect timeout, and the ordinary backoff.
    sim.server.handshake = Handshake::Accept;
    let took = sim
        .run_until_cond(secs(30), |s| s.state() == State::Open)
        .expect("open again");
    assert!(took <= secs(15), "{took:?}");
    assert_eq!(sim.opens, 3);
}

#[test]
fn a_second_foreground_hint_during_the_race_opens_nothing_more() {
    let mut sim = default_open();
    sim.server.handshake = Handshake::Hang;
    sim.set_app_state(AppState::Background);
    sim.set_app_state(AppState::Foreground);
    sim.run_for(ms(5));
    sim.set_app_state(AppState::Background);
    sim.set_app_state(AppState::Foreground);
    sim.run_for(ms(5));
    // The first race's candidate was dropped on the way to the background, and the second
    // hint started one new race: three opens in all, never two candidates at once.
    assert_eq!(sim.opens, 3);
    sim.set_network(NetworkStatus::Available {
        interface: Some("cellular".into()),
    });
    assert_eq!(sim.opens, 3, "a race is on: no second candidate");
}

#[test]
fn background_disconnect_after_grace_suspends_and_foreground_reconnects() {
    let mut config = Sim::default_config();
    config.background = BackgroundPolicy::DisconnectAfter(secs(30));
    let mut sim = open_sim(config);
    sim.set_app_state(AppState::Background);
    sim.run_for(ms(29_900));
    assert_eq!(sim.state(), State::Open);
    sim.run_for(ms(200));
    assert_eq!(sim.state(), State::Suspended);
    assert_eq!(sim.client_closes, [(ConnId(0), 1001)]);
    let id = sim.send("1").unwrap();
    sim.run_for(secs(600));
    assert_eq!(sim.opens, 1, "no attempts while suspended");
    assert_eq!(sim.engine.stats().outbox_len, 1, "outbox kept");
    sim.set_app_state(AppState::Foreground);
    sim.run_for(ms(100));
    assert_eq!(sim.state(), State::Open);
    assert_eq!(sim.app.acked, [id]);
    // Back to foreground within the grace period: nothing happens.
    sim.set_app_state(AppState::Background);
    sim.run_for(secs(10));
    sim.set_app_state(AppState::Foreground);
    sim.run_for(secs(60));
    assert_eq!(sim.state(), State::Open);
    assert_one_survivor_of_a_race(&sim, 3);
}

#[test]
fn no_attempts_while_waiting_for_network_and_one_at_once_when_it_returns() {
    let mut sim = default_open();
    sim.set_network(NetworkStatus::Unavailable);
    sim.set_link(Link::Down);
    sim.run_for(secs(2));
    assert_eq!(sim.state(), State::WaitingForNetwork);
    let opens = sim.opens;
    sim.run_for(secs(600));
    assert_eq!(sim.opens, opens, "no retries burned while offline");
    sim.set_link(Link::Pass);
    let before = sim.now;
    sim.set_network(NetworkStatus::Available {
        interface: Some("wifi".into()),
    });
    assert_eq!(sim.state(), State::Connecting { attempt: 1 });
    let took = sim
        .run_until_cond(secs(2), |s| s.state() == State::Open)
        .unwrap();
    assert!(took <= ms(50), "{took:?} after {before:?}");
}

#[test]
fn network_loss_while_connecting_abandons_the_attempt_without_counting_it() {
    let mut sim = connecting_to(no_jitter(), Handshake::Hang);
    sim.set_network(NetworkStatus::Unavailable);
    assert_eq!(sim.state(), State::WaitingForNetwork);
    assert_eq!(sim.engine.stats().attempt, 0);
    assert_eq!(sim.client_closes.len(), 1);
    sim.run_for(secs(60));
    assert_eq!(sim.opens, 1);
}

#[test]
fn an_interface_change_probes_the_open_socket() {
    let mut sim = default_open();
    sim.set_network(NetworkStatus::Available {
        interface: Some("wifi".into()),
    });
    assert!(!is_json_ping(
        &sim.written
            .last()
            .map(|w| w.2.clone())
            .unwrap_or(Frame::Text(String::new()))
    ));
    sim.orphan_connections(); // the socket was bound to wifi
    sim.set_network(NetworkStatus::Available {
        interface: Some("cellular".into()),
    });
    assert!(is_json_ping(&sim.written.last().unwrap().2));
    sim.run_for(secs(3));
    assert_eq!(sim.opens, 2);
    assert_eq!(sim.state(), State::Open);
}

#[test]
fn foreground_restarts_a_reconnect_schedule_at_once() {
    let mut sim = Sim::new(no_jitter(), 1);
    sim.set_link(Link::Down);
    sim.connect();
    sim.run_for(secs(40));
    assert!(matches!(sim.state(), State::Reconnecting { retry_in, .. } if retry_in >= secs(16)));
    sim.set_app_state(AppState::Background);
    sim.set_link(Link::Pass);
    sim.set_app_state(AppState::Foreground);
    sim.run_for(ms(100));
    assert_eq!(sim.state(), State::Open);
}

// ----- 11. URL validation -----

#[test]
fn http_urls_are_refused_at_construction_with_the_ws_form() {
    let build = |url: &str| Engine::new(Config::new(url), Box::new(SplitMix64::new(0))).err();
    let err = build("https://api.example.com/live").unwrap();
    assert_eq!(
        err.to_string(),
        "the URL's scheme must be ws or wss, not \"https\": use wss://api.example.com/live"
    );
    assert!(matches!(
        err,
        ConfigError::Url(UrlError::WrongScheme { .. })
    ));
    assert_eq!(build(""), Some(ConfigError::Url(UrlError::Empty)));
    assert!(
        build("ws://bad host/")
            .unwrap()
            .to_string()
            .contains("malformed")
    );
    assert!(build("wss://ok.example.com/").is_none());
}

type Mutation = fn(&mut Config);

#[test]
fn out_of_range_settings_are_refused_with_the_field_name() {
    let cases: Vec<(Mutation, &str)> = vec![
        (|c| c.backoff.jitter = 1.5, "backoff.jitter"),
        (|c| c.backoff.multiplier = 0.5, "backoff.multiplier"),
        (|c| c.backoff.max = Duration::from_millis(1), "backoff.max"),
        (|c| c.backoff.max_attempts = Some(0), "backoff.max_attempts"),
        (|c| c.connect_timeout = Duration::ZERO, "connect_timeout"),
        (|c| c.outbox.max_messages = 0, "outbox"),
        (|c| c.resume.ts_param = "last_seq".into(), "resume"),
        (
            |c| {
                c.heartbeat = HeartbeatMode::JsonPing {
                    interval: secs(1),
                    timeout: Duration::ZERO,
                }
            },
            "heartbeat",
        ),
    ];
    for (mutate, field) in cases {
        let mut config = Config::new("ws://x/");
        mutate(&mut config);
        let err = Engine::new(config, Box::new(SplitMix64::new(0)))
            .err()
            .expect(field);
        assert!(
            matches!(err, ConfigError::Invalid { field: f, .. } if f == field),
            "{err}"
        );
    }
    assert_eq!(Config::raw("ws://x/").mode, Mode::Raw);
}

// ----- 12. stats -----

#[test]
fn stats_count_what_happened() {
    let mut sim = default_open();
    sim.send("1").unwrap();
    sim.server_push("2");
    sim.run_for(secs(11)); // one idle ping
    sim.reset_all();
    sim.set_link(Link::Down);
    sim.send("3").unwrap();
    sim.run_for(ms(100));
    let stats = sim.engine.stats();
    // The dropped connection had been stable: a fresh schedule, no attempt made yet.
    assert!(
        matches!(stats.state, State::Reconnecting { attempt: 1, .. }),
        "{:?}",
        stats.state
    );
    assert_eq!(stats.attempt, 0);
    // "3" was written on the dying connection before the reset reached the client: written, not acked.
    assert_eq!(
        (
            stats.messages_in,
            stats.messages_written,
            stats.messages_acked
        ),
        (1, 2, 1)
    );
    let frame_bytes = r#"{"type":"msg","id":"","data":3}"#.len() + 36;
    assert_eq!((stats.outbox_len, stats.outbox_bytes), (1, frame_bytes));
    assert_eq!(stats.last_rtt, Some(ms(40)));
    assert_eq!(stats.cursor.last_seq, Some(1));
    assert!(stats.last_inbound_at.unwrap() > Instant::from_millis(10_000));
    sim.set_link(Link::Pass);
    sim.run_for(secs(3));
    assert_eq!(sim.engine.stats().reconnects, 1);
}

// ----- quiet when there is nothing to do -----

#[test]
fn suspended_in_the_background_the_engine_never_wakes() {
    let mut config = Sim::default_config();
    config.background = BackgroundPolicy::DisconnectAfter(secs(30));
    let mut sim = open_sim(config);
    sim.set_app_state(AppState::Background);
    sim.run_for(secs(31));
    assert_eq!(sim.state(), State::Suspended);
    let (wakeups, opens, written) = (sim.wakeups, sim.opens, sim.written.len());
    sim.run_for(secs(3600));
    assert_eq!(
        sim.wakeups - wakeups,
        0,
        "timer wake-ups in an hour suspended"
    );
    assert_eq!((sim.opens, sim.written.len()), (opens, written));
    assert_eq!(sim.engine.poll_timeout(), None);
}

#[test]
fn waiting_for_the_network_the_engine_never_wakes() {
    let mut sim = default_open();
    sim.set_link(Link::Down);
    sim.set_network(NetworkStatus::Unavailable);
    sim.run_for(secs(30));
    assert_eq!(sim.state(), State::WaitingForNetwork);
    let (wakeups, opens) = (sim.wakeups, sim.opens);
    sim.run_for(secs(3600));
    assert_eq!(
        sim.wakeups - wakeups,
        0,
        "timer wake-ups in an hour without a network"
    );
    assert_eq!(sim.opens, opens, "no attempt without a network");
}

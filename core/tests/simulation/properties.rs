//! Randomised fault schedules over long simulated runs, checked against the invariants the
//! product promises: every sent message acked exactly once (or reported failed), every server
//! message seen at most once and in order (and, once the network heals, all of them), memory
//! bounds held, no panic.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use steadyws::engine::{
    AppState, BackgroundPolicy, Config, ConnId, ConnectionError, Engine, Frame, HeartbeatMode,
    Instant, NetworkStatus, Payload, SplitMix64,
};

use crate::harness::{Link, Sim, ms, secs};

#[derive(Clone, Debug)]
enum Fault {
    Reset,
    Down(Duration),
    Blackhole(Duration),
    RestartServer(Duration),
    Orphan,
    Latency(Duration),
    Background(Duration),
    NetworkOff(Duration),
    InterfaceChange,
    ServerClose(u16),
}

fn fault() -> impl Strategy<Value = Fault> {
    let dur = (1u64..90_000).prop_map(Duration::from_millis);
    prop_oneof![
        Just(Fault::Reset),
        dur.clone().prop_map(Fault::Down),
        dur.clone().prop_map(Fault::Blackhole),
        dur.clone().prop_map(Fault::RestartServer),
        Just(Fault::Orphan),
        (1u64..400).prop_map(|m| Fault::Latency(Duration::from_millis(m))),
        dur.clone().prop_map(Fault::Background),
        dur.prop_map(Fault::NetworkOff),
        Just(Fault::InterfaceChange),
        prop::sample::select(vec![1000u16, 1001, 1011, 1012, 1013]).prop_map(Fault::ServerClose),
    ]
}

fn config(heartbeat_ws: bool, disconnect_in_background: bool) -> Config {
    let mut config = Sim::default_config();
    if heartbeat_ws {
        config.heartbeat = HeartbeatMode::WebSocketPing {
            interval: secs(10),
            timeout: secs(5),
        };
    }
    if disconnect_in_background {
        config.background = BackgroundPolicy::DisconnectAfter(secs(20));
    }
    config.dedup.max_entries = 500;
    config.outbox.max_messages = 2_000;
    config
}

/// Apply `fault`, let traffic flow through it, and undo it.
fn apply(sim: &mut Sim, fault: &Fault, traffic: &mut Traffic) {
    match *fault {
        Fault::Reset => sim.reset_all(),
        Fault::Down(d) => {
            sim.set_link(Link::Down);
            traffic.run(sim, d);
            sim.set_link(Link::Pass);
        }
        Fault::Blackhole(d) => {
            sim.set_link(Link::Blackhole);
            traffic.run(sim, d);
            sim.set_link(Link::Pass);
        }
        Fault::RestartServer(d) => sim.restart_server(d),
        Fault::Orphan => sim.orphan_connections(),
        Fault::Latency(l) => sim.set_latency(l),
        Fault::Background(d) => {
            sim.set_app_state(AppState::Background);
            traffic.run(sim, d);
            sim.set_app_state(AppState::Foreground);
        }
        Fault::NetworkOff(d) => {
            sim.set_network(NetworkStatus::Unavailable);
            sim.set_link(Link::Down);
            traffic.run(sim, d);
            sim.set_link(Link::Pass);
            sim.set_network(NetworkStatus::Available {
                interface: Some("wifi".into()),
            });
        }
        Fault::InterfaceChange => {
            traffic.interface += 1;
            let interface = format!("if{}", traffic.interface);
            sim.set_network(NetworkStatus::Available {
                interface: Some(interface),
            });
        }
        Fault::ServerClose(code) => sim.server_close_all(code, "test"),
    }
}

/// Client sends and server pushes at a steady pace, whatever the network does.
struct Traffic {
    sent: Vec<(String, String)>,
    tick: u64,
    interface: u32,
}

impl Traffic {
    fn run(&mut self, sim: &mut Sim, d: Duration) {
        let end = sim.now + d;
        while sim.now < end {
            self.tick += 1;
            if self.tick.is_multiple_of(2) {
                let json = format!("{{\"c\":{}}}", self.tick);
                let id = sim
                    .send(&json)
                    .expect("outbox sized for the longest outage");
                self.sent.push((id.0, json));
            }
            if self.tick.is_multiple_of(3) {
                sim.server_push(&format!("{{\"s\":{}}}", self.tick));
            }
            let step = ms(250).min(end.saturating_since(sim.now));
            sim.run_for(step);
            let stats = sim.engine.stats();
            assert!(stats.dedup_len <= 500, "dedup bound");
            assert!(stats.outbox_len <= 2_000, "outbox bound");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_faults_lose_nothing_duplicate_nothing_and_keep_order(
        seed in any::<u64>(),
        heartbeat_ws in any::<bool>(),
        disconnect_in_background in any::<bool>(),
        stale_replay in 0usize..5,
        schedule in prop::collection::vec(((1u64..60_000).prop_map(Duration::from_millis), fault()), 20..60),
    ) {
        let mut sim = Sim::new(config(heartbeat_ws, disconnect_in_background), seed);
        sim.server.stale_replay = stale_replay;
        let mut traffic = Traffic { sent: Vec::new(), tick: 0, interface: 0 };
        sim.connect();
        for (gap, fault) in &schedule {
            traffic.run(&mut sim, *gap);
            apply(&mut sim, fault, &mut traffic);
        }
        // Heal: the network is fine from here on; everything must arrive.
        sim.set_latency(ms(20));
        traffic.run(&mut sim, secs(5));
        sim.run_for(secs(120));

        // Upstream: acked exactly once each, stored exactly once each, in send order.
        let mut acks: HashMap<&str, usize> = HashMap::new();
        for id in &sim.app.acked {
            *acks.entry(id.0.as_str()).or_default() += 1;
        }
        prop_assert!(sim.app.failed.is_empty(), "failed: {:?}", sim.app.failed);
        for (id, _) in &traffic.sent {
            prop_assert_eq!(acks.get(id.as_str()).copied(), Some(1), "ack count of {}", id);
        }
        prop_assert_eq!(sim.app.acked.len(), traffic.sent.len());
        let sent_payloads: Vec<String> = traffic.sent.iter().map(|(_, json)| json.clone()).collect();
        prop_assert_eq!(&sim.server.stored, &sent_payloads);

        // Downstream: every server message exactly once, in seq order.
        let seqs: Vec<u64> = sim.app.received.iter().map(|m| m.seq.unwrap()).collect();
        // Everything published after the client's first hello: earlier messages predate it.
        let start = sim.app.start_seq.unwrap_or(0);
        let expected: Vec<u64> = sim.server.history.iter().map(|m| m.seq).filter(|seq| *seq > start).collect();
        prop_assert_eq!(seqs, expected);
        prop_assert_eq!(sim.engine.stats().outbox_len, 0);
    }

    #[test]
    fn arbitrary_inputs_never_panic_and_keep_bounds(
        steps in prop::collection::vec((0u64..20_000, 0u8..12, any::<u16>(), ".{0,40}"), 1..300),
    ) {
        let mut config = Config::new("ws://fuzz.test/ws?room=1");
        config.outbox.max_messages = 8;
        config.dedup.max_entries = 16;
        config.outbox.default_ttl = Some(secs(30));
        let mut engine = Engine::new(config, Box::new(SplitMix64::new(1))).unwrap();
        let mut now = Instant::ZERO;
        for (advance_ms, input, number, text) in steps {
            now += Duration::from_millis(advance_ms);
            let conn = ConnId(u64::from(number % 4));
            match input {
                0 => engine.connect(now),
                1 => engine.disconnect(now),
                2 => { let _ = engine.send(now, Payload::Json(text.clone())); }
                3 => engine.handle_transport_opened(now, conn),
                4 => engine.handle_transport_failed(now, conn, ConnectionError::Handshake { status: number % 600, retry_after: Some(Duration::from_secs(u64::from(number))) }),
                5 => engine.handle_transport_closed(now, conn, Some(number), &text),
                6 => engine.handle_frame(now, conn, Frame::Text(text.clone())),
                7 => engine.handle_frame(now, conn, Frame::Text(format!(r#"{{"type":"msg","id":"{}","seq":{},"data":1}}"#, number % 32, number % 64))),
                8 => engine.handle_frame(now, conn, Frame::Pong(text.as_bytes().to_vec())),
                9 => engine.set_app_state(now, if number % 2 == 0 { AppState::Background } else { AppState::Foreground }),
                10 => engine.set_network(now, if number % 3 == 0 { NetworkStatus::Unavailable } else { NetworkStatus::Available { interface: Some(format!("if{}", number % 3)) } }),
                _ => engine.handle_timeout(now),
            }
            while engine.poll_transmit().is_some() {}
            while engine.poll_event().is_some() {}
            // Timers never stay due: a driver that honours poll_timeout cannot busy-loop.
            for _ in 0..3 {
                if engine.poll_timeout().is_some_and(|at| at <= now) {
                    engine.handle_timeout(now);
                }
            }
            prop_assert!(engine.poll_timeout().is_none_or(|at| at > now), "timer stuck at {:?}", now);
            while engine.poll_transmit().is_some() {}
            while engine.poll_event().is_some() {}
            let stats = engine.stats();
            prop_assert!(stats.outbox_len <= 8 && stats.dedup_len <= 16);
        }
    }
}

//! The chaos suite: real sockets through the fault proxy, traffic in both directions, one fault
//! per scenario, and an exact count afterwards of what was lost, duplicated or reordered.
//!
//! Up: a client sends through the proxy; the server's stream, read raw afterwards (no client-side
//! dedup in the way), must hold each of its messages exactly once, in send order. Down: a second
//! client connected directly to the server publishes; the client under test must deliver each of
//! those messages exactly once, in seq order.
//!
//! Where the fault is a dead link under the app's own sending, the client keeps the library's
//! detection settings and must also report the dead link inside the fault, within a bound.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use steadyws::engine::{HeartbeatMode, Random, SplitMix64};
use steadyws::{AppState, ConnectionError, Event, NetworkStatus, Socket, SocketConfig, State};
use steadyws_server::{Injected, RunningServer, ServerConfig};
use tokio_tungstenite::tungstenite::Message;

use crate::client_process::ClientProcess;
use crate::fault_proxy::{FaultProxy, Mode};
use crate::process::ServerProcess;

/// One scenario's outcome; serialised as one JSON line.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    /// Scenario name.
    pub scenario: &'static str,
    /// Client messages sent.
    pub sent_up: usize,
    /// Of those, stored by the server.
    pub delivered_up: usize,
    /// Never stored.
    pub lost_up: usize,
    /// Stored or acked more than once.
    pub dup_up: usize,
    /// Stored out of send order.
    pub reordered_up: usize,
    /// Messages published towards the client under test.
    pub sent_down: usize,
    /// Of those, delivered to the app.
    pub delivered_down: usize,
    /// Never delivered.
    pub lost_down: usize,
    /// Delivered more than once without being flagged as redelivered.
    pub dup_down: usize,
    /// Delivered again after a client crash, flagged `redelivered` (the message in hand when the
    /// process died): the app can tell these apart, so they are not counted as duplicates.
    pub redelivered_down: usize,
    /// Delivered out of seq order.
    pub reordered_down: usize,
    /// From the end of the fault to the first message delivered after it.
    pub recovery_ms: u64,
    /// The bound `recovery_ms` had to meet.
    pub recovery_bound_ms: u64,
    /// From the start of the fault to the client's first report of a dead link (a heartbeat or
    /// probe timeout), where the scenario requires one ([`DETECTION`]).
    pub detection_ms: Option<u64>,
    /// The bound `detection_ms` had to meet.
    pub detection_bound_ms: Option<u64>,
    /// Zero loss, zero duplicates, order kept both ways, recovery (and detection) within bound.
    pub passed: bool,
}

impl Outcome {
    /// One JSON object.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "scenario": self.scenario,
            "sent_up": self.sent_up, "delivered_up": self.delivered_up, "lost_up": self.lost_up,
            "dup_up": self.dup_up, "reordered_up": self.reordered_up,
            "sent_down": self.sent_down, "delivered_down": self.delivered_down, "lost_down": self.lost_down,
            "dup_down": self.dup_down, "redelivered_down": self.redelivered_down,
            "reordered_down": self.reordered_down,
            "recovery_ms": self.recovery_ms, "recovery_bound_ms": self.recovery_bound_ms,
            "detection_ms": self.detection_ms, "detection_bound_ms": self.detection_bound_ms,
            "passed": self.passed,
        })
        .to_string()
    }
}

/// The faults, in the order they run.
pub const SCENARIOS: &[&str] = &[
    "baseline",
    "reset_then_down_3s",
    "blackhole_12s",
    "flapping_10s",
    "server_killed_and_restarted",
    "slow_link_with_burst",
    "overloaded_503_retry_after",
    "hostile_frames",
    "background_blackhole_foreground",
    "network_unavailable_then_available",
    CLIENT_KILLED,
];

/// The scenario whose fault is the client process itself being SIGKILLed (with a store).
const CLIENT_KILLED: &str = "client_process_killed_3x";

/// How long faults last: `full` as specified, quick for CI.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    /// Multiplies every fault duration and traffic phase.
    pub scale: f64,
}

impl Profile {
    fn secs(&self, s: f64) -> Duration {
        Duration::from_secs_f64(s * self.scale)
    }
}

/// Scenarios whose client keeps the library's dead-link detection (idle heartbeat 10 s + 5 s,
/// `ack_probe_after` and `probe_timeout` as shipped), with the bound on the time from the start of
/// the fault to the client's report of the dead link. The idle heartbeat alone would need 15 s,
/// longer than the fault: only the probe of writes met by silence can report it inside, after
/// `ack_probe_after` (2 s on loopback) + `probe_timeout` (2 s), about 4 s. The bound adds 1 s
/// for the 20 ms traffic ticks and a busy machine: it is the `dead_link_detection_while_sending`
/// bench's target.
pub const DETECTION: &[(&str, Duration)] = &[("blackhole_12s", Duration::from_secs(5))];

/// Client settings for the suite: the phone defaults with a 2 s + 2 s heartbeat and a 2 s backoff
/// cap, so that recoveries are measurable (see [`DETECTION`] for the exceptions).
pub fn client_config(url: &str) -> SocketConfig {
    let mut config = SocketConfig::new(url);
    config.engine.heartbeat = HeartbeatMode::JsonPing {
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
    };
    config.engine.backoff.initial = Duration::from_millis(250);
    config.engine.backoff.max = Duration::from_secs(2);
    config.engine.connect_timeout = Duration::from_secs(3);
    config.engine.probe_timeout = Duration::from_secs(1);
    config.engine.outbox.max_messages = 10_000;
    config.engine.outbox.max_bytes = 8 * 1024 * 1024;
    config
}

/// Where the server runs for a scenario.
enum Server {
    Embedded(RunningServer),
    Process {
        process: Option<ServerProcess>,
        binary: PathBuf,
        args: Vec<String>,
        addr: SocketAddr,
    },
}

impl Server {
    fn addr(&self) -> SocketAddr {
        match self {
            Server::Embedded(server) => server.addr(),
            Server::Process { addr, .. } => *addr,
        }
    }

    fn embedded(&self) -> &RunningServer {
        match self {
            Server::Embedded(server) => server,
            Server::Process { .. } => unreachable!("this scenario runs the server in-process"),
        }
    }
}

/// The client under test and what it saw.
struct Observed {
    socket: Socket,
    sent: Vec<String>,
    acks: HashMap<String, usize>,
    /// (seq, id, when) of each message delivered.
    received: Vec<(u64, String, Instant)>,
    /// When each dead link was reported (a state change caused by a heartbeat or probe timeout).
    dead_links: Vec<Instant>,
}

impl Observed {
    fn drain(&mut self) {
        while let Some(event) = self.socket.try_next_event() {
            match event {
                Event::Acked(id) => *self.acks.entry(id.0).or_default() += 1,
                Event::Message(message) => self.received.push((
                    message.seq.unwrap_or_default(),
                    message.id.unwrap_or_default(),
                    Instant::now(),
                )),
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
}

/// Traffic for `duration`: the client under test sends and the publisher publishes every 20 ms.
async fn traffic(client: &mut Observed, publisher: &mut Observed, duration: Duration) {
    let end = Instant::now() + duration;
    while Instant::now() < end {
        let n = client.sent.len();
        client.sent.push(
            client
                .socket
                .send(&format!("{{\"up\":{n}}}"))
                .expect("outbox has room")
                .0,
        );
        let n = publisher.sent.len();
        publisher.sent.push(
            publisher
                .socket
                .send(&format!("{{\"down\":{n}}}"))
                .expect("outbox has room")
                .0,
        );
        client.drain();
        publisher.drain();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Run one scenario by name.
pub async fn run(name: &'static str, profile: Profile, self_exe: PathBuf) -> Outcome {
    if name == CLIENT_KILLED {
        return client_killed(profile, &self_exe).await;
    }
    let data_dir =
        std::env::temp_dir().join(format!("steadyws-chaos-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let server = if name == "server_killed_and_restarted" {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        let args = vec![
            "--as-reference-server".to_owned(),
            "--data-dir".to_owned(),
            data_dir.display().to_string(),
        ];
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let process = ServerProcess::start(&self_exe, addr, &arg_refs);
        Server::Process {
            process: Some(process),
            binary: self_exe.clone(),
            args,
            addr,
        }
    } else {
        Server::Embedded(
            steadyws_server::start(ServerConfig::default())
                .await
                .expect("server starts"),
        )
    };
    let mut server = server;
    let proxy = FaultProxy::start(server.addr())
        .await
        .expect("proxy starts");
    let detection = DETECTION
        .iter()
        .find(|(scenario, _)| *scenario == name)
        .map(|(_, bound)| *bound);
    let mut config = client_config(&format!("ws://{}/ws", proxy.addr()));
    if detection.is_some() {
        let shipped = SocketConfig::new(config.engine.url.clone()).engine;
        config.engine.heartbeat = shipped.heartbeat;
        config.engine.ack_probe_after = shipped.ack_probe_after;
        config.engine.probe_timeout = shipped.probe_timeout;
    }
    let mut client = observed(config);
    let mut publisher = observed(client_config(&format!("ws://{}/ws", server.addr())));
    client.socket.connect();
    publisher.socket.connect();
    wait_open(&client.socket).await;
    wait_open(&publisher.socket).await;

    traffic(&mut client, &mut publisher, profile.secs(1.0)).await;
    let fault_start = Instant::now();
    let (fault_end, bound) = inject(
        name,
        profile,
        &mut server,
        &proxy,
        &mut client,
        &mut publisher,
    )
    .await;
    traffic(
        &mut client,
        &mut publisher,
        profile.secs(2.0).max(Duration::from_secs(1)),
    )
    .await;

    // Let everything land: every send acked, every publish delivered (bounded).
    let settle = Instant::now() + Duration::from_secs(30);
    while Instant::now() < settle {
        client.drain();
        publisher.drain();
        let down_ids: std::collections::HashSet<&str> = client
            .received
            .iter()
            .map(|(_, id, _)| id.as_str())
            .collect();
        let all_down = publisher
            .sent
            .iter()
            .all(|id| down_ids.contains(id.as_str()));
        if client.acks.len() == client.sent.len() && all_down {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stream = read_stream(server.addr()).await;
    let up = Up {
        sent: &client.sent,
        acks: &client.acks,
    };
    let mut outcome = tally(
        name,
        up,
        &client.received,
        &publisher.sent,
        &stream,
        fault_end,
        bound,
    );
    if let Some(bound) = detection {
        // Only a report inside the fault counts: once the link passes again, the old connection
        // simply carries on.
        let detected = client
            .dead_links
            .iter()
            .find(|at| (fault_start..fault_end).contains(*at))
            .map(|at| at.duration_since(fault_start).as_millis() as u64);
        let bound_ms = bound.as_millis() as u64;
        outcome.detection_ms = detected;
        outcome.detection_bound_ms = Some(bound_ms);
        outcome.passed &= detected.is_some_and(|ms| ms <= bound_ms);
    }
    drop(client);
    drop(publisher);
    drop(proxy);
    if let Server::Embedded(server) = server {
        server.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&data_dir);
    outcome
}

fn observed(config: SocketConfig) -> Observed {
    Observed {
        socket: Socket::new(config).expect("valid config"),
        sent: Vec::new(),
        acks: HashMap::new(),
        received: Vec::new(),
        dead_links: Vec::new(),
    }
}

async fn wait_open(socket: &Socket) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while socket.state() != State::Open && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Apply the scenario's fault while traffic flows. Returns when the fault ended and the bound on
/// the time to the first delivery after it.
async fn inject(
    name: &str,
    profile: Profile,
    server: &mut Server,
    proxy: &FaultProxy,
    client: &mut Observed,
    publisher: &mut Observed,
) -> (Instant, Duration) {
    let ms = Duration::from_millis;
    match name {
        "baseline" => {
            traffic(client, publisher, profile.secs(3.0)).await;
            (Instant::now(), ms(1_000))
        }
        "reset_then_down_3s" => {
            proxy.set_mode(Mode::Down);
            traffic(client, publisher, profile.secs(3.0)).await;
            proxy.set_mode(Mode::Pass);
            (Instant::now(), ms(3_000))
        }
        "blackhole_12s" => {
            proxy.set_mode(Mode::Blackhole);
            traffic(client, publisher, profile.secs(12.0)).await;
            proxy.set_mode(Mode::Pass);
            // Once the dead link is reported (about 4 s in, see `DETECTION`), attempts wait in
            // the blackhole for the 3 s connect timeout each: one in flight when the link comes
            // back completes at once. Otherwise the next is one backoff delay away, and a 12 s
            // fault leaves time for at most three failed attempts (the raced candidate, then two
            // retries), so that delay is at most 250 ms × 2² = 1 s. The rest is for the first
            // delivery on a busy machine.
            (Instant::now(), ms(1_500))
        }
        "flapping_10s" => {
            let mut random = SplitMix64::new(7);
            let end = Instant::now() + profile.secs(10.0);
            while Instant::now() < end {
                proxy.reset_all();
                let gap = Duration::from_secs_f64(1.0 + random.next_unit());
                traffic(
                    client,
                    publisher,
                    gap.min(end.saturating_duration_since(Instant::now())),
                )
                .await;
            }
            // The fault ends with a reset, so the recovery measured is a reset's: each drops a
            // connection that was delivering, which is retried within 250 ms.
            // What was delivered before it is counted before it.
            client.drain();
            proxy.reset_all();
            (Instant::now(), ms(1_000))
        }
        "server_killed_and_restarted" => {
            let Server::Process {
                process,
                binary,
                args,
                addr,
            } = server
            else {
                unreachable!()
            };
            if let Some(running) = process.take() {
                running.kill();
            }
            traffic(client, publisher, profile.secs(2.0)).await;
            let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
            *process = Some(ServerProcess::start(binary, *addr, &arg_refs));
            (Instant::now(), ms(5_000))
        }
        "slow_link_with_burst" => {
            proxy.set_latency(ms(100));
            proxy.set_bandwidth(Some(32 * 1024));
            for n in 0..300 {
                client.sent.push(
                    client
                        .socket
                        .send(&format!("{{\"burst\":{n}}}"))
                        .expect("room")
                        .0,
                );
            }
            traffic(client, publisher, profile.secs(4.0)).await;
            proxy.set_latency(Duration::ZERO);
            proxy.set_bandwidth(None);
            (Instant::now(), ms(3_000))
        }
        "overloaded_503_retry_after" => {
            let overload = profile.secs(3.0);
            server
                .embedded()
                .set_overloaded(overload, Duration::from_secs(1));
            proxy.reset_all();
            traffic(client, publisher, overload).await;
            (Instant::now(), ms(2_500))
        }
        "hostile_frames" => {
            let embedded = server.embedded();
            for frame in [
                Injected::Text("this is not json".into()),
                Injected::Text(r#"{"type":"surprise"}"#.into()),
                Injected::Binary(vec![0xde, 0xad, 0xbe, 0xef]),
                Injected::Text(format!("\"{}\"", "x".repeat(5 * 1024 * 1024))),
                Injected::InvalidUtf8Text(vec![0x66, 0x6f, 0xff, 0xfe]),
            ] {
                embedded.inject(frame);
                traffic(client, publisher, profile.secs(0.6)).await;
            }
            (Instant::now(), ms(3_000))
        }
        "background_blackhole_foreground" => {
            client.socket.set_app_state(AppState::Background);
            proxy.blackhole_existing();
            traffic(client, publisher, profile.secs(4.0)).await;
            client.socket.set_app_state(AppState::Foreground);
            (Instant::now(), ms(2_500))
        }
        "network_unavailable_then_available" => {
            client.socket.set_network(NetworkStatus::Unavailable);
            proxy.set_mode(Mode::Down);
            traffic(client, publisher, profile.secs(3.0)).await;
            proxy.set_mode(Mode::Pass);
            client.socket.set_network(NetworkStatus::Available {
                interface: Some("wifi".into()),
            });
            (Instant::now(), ms(1_000))
        }
        other => panic!("unknown scenario {other}"),
    }
}

/// The client under test is a process with a durable store (this binary, re-run as
/// `durable-client`): it sends and receives while it is SIGKILLed three times and restarted on
/// its store. Up, every message whose `send` returned must be stored once, in order; down, every
/// published message must reach the app, with a repeat only for the message in hand at a kill,
/// flagged `redelivered`.
async fn client_killed(profile: Profile, self_exe: &std::path::Path) -> Outcome {
    let server = steadyws_server::start(ServerConfig::default())
        .await
        .expect("server starts");
    let url = server.url();
    let dir = std::env::temp_dir().join(format!(
        "steadyws-chaos-{}-{CLIENT_KILLED}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_arg = dir.display().to_string();
    let mut publisher = observed(client_config(&url));
    publisher.socket.connect();
    wait_open(&publisher.socket).await;
    let start_client = |from: usize| {
        let from = from.to_string();
        let args = [
            "--as-durable-client",
            "send",
            &url,
            &dir_arg,
            "app",
            &from,
            "1000000",
            "20",
        ];
        ClientProcess::start(self_exe, &args)
    };
    // Publish for `duration`, every 20 ms like the client's own sends.
    async fn publish_for(publisher: &mut Observed, duration: Duration) {
        let end = Instant::now() + duration;
        while Instant::now() < end {
            let n = publisher.sent.len();
            let id = publisher
                .socket
                .send(&format!("{{\"down\":{n}}}"))
                .expect("outbox has room");
            publisher.sent.push(id.0);
            publisher.drain();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let mut lines: Vec<crate::client_process::Line> = Vec::new();
    let mut client = start_client(0);
    // Its first connection starts from the server's position: publish once it is there.
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.connections() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut random = SplitMix64::new(11);
    let mut fault_end = Instant::now();
    for _ in 0..3 {
        let run_for = profile.secs(1.0) + Duration::from_millis(random.next_u64() % 500);
        publish_for(&mut publisher, run_for).await;
        lines.extend(client.kill());
        let next = lines
            .iter()
            .filter_map(|(line, _)| line.strip_prefix("sent "))
            .filter_map(|rest| rest.split(' ').nth(1)?.parse::<usize>().ok())
            .max()
            .map_or(0, |n| n + 1);
        client = start_client(next);
        fault_end = Instant::now();
    }
    publish_for(&mut publisher, profile.secs(2.0)).await;
    // Let every publish land, then kill the last run mid-stream too.
    let published = publisher.sent.clone();
    let settle = Instant::now() + Duration::from_secs(30);
    while Instant::now() < settle {
        let live = client.lines_so_far();
        let got: std::collections::HashSet<&str> = lines
            .iter()
            .chain(&live)
            .filter_map(|(line, _)| line.strip_prefix("got ")?.split(' ').next())
            .collect();
        if published.iter().all(|id| got.contains(id.as_str())) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lines.extend(client.kill());
    // Some of the last run's sends were not acked when it died: a fresh run on the store sends
    // no new message, resends what is pending and says `done` once nothing is.
    let drain = ClientProcess::start(
        self_exe,
        &[
            "--as-durable-client",
            "send",
            &url,
            &dir_arg,
            "app",
            "0",
            "0",
            "0",
        ],
    );
    let drained = drain.wait_for_line("done", Duration::from_secs(30)).await;
    drop(drain);

    let mut sent = Vec::new();
    let mut received = Vec::new();
    let mut times: HashMap<String, usize> = HashMap::new();
    let mut redelivered = 0;
    for (line, at) in &lines {
        match line.split(' ').collect::<Vec<_>>().as_slice() {
            ["sent", id, _] => sent.push((*id).to_owned()),
            ["got", id, seq, flag] => {
                let count = times.entry((*id).to_owned()).or_default();
                *count += 1;
                if *count > 1 && *flag == "1" {
                    redelivered += 1;
                    continue;
                }
                received.push((seq.parse().unwrap_or_default(), (*id).to_owned(), *at));
            }
            _ => {}
        }
    }
    let stream = read_stream(server.addr()).await;
    let no_acks = HashMap::new();
    let up = Up {
        sent: &sent,
        acks: &no_acks,
    };
    let mut outcome = tally(
        CLIENT_KILLED,
        up,
        &received,
        &published,
        &stream,
        fault_end,
        Duration::from_millis(3_000),
    );
    outcome.redelivered_down = redelivered;
    outcome.passed &= drained && redelivered <= 3;
    drop(publisher);
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

/// Every stream message, read raw from the start (no client-side dedup): (seq, id) pairs.
pub async fn read_stream(addr: SocketAddr) -> Vec<(u64, String)> {
    let mut stream = Vec::new();
    let url = format!("ws://{addr}/ws?last_seq=0");
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let Ok(Ok((mut ws, _))) = tokio::time::timeout(
            Duration::from_secs(3),
            tokio_tungstenite::connect_async(&url),
        )
        .await
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        // Replay follows the hello at once; a quiet half second means it is complete.
        while let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(Duration::from_millis(500), ws.next()).await
        {
            let value: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
            if value["type"] == "msg" {
                stream.push((
                    value["seq"].as_u64().unwrap_or_default(),
                    value["id"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
        return stream;
    }
    stream
}

/// What the client under test sent, and the acks it got.
struct Up<'a> {
    sent: &'a [String],
    acks: &'a HashMap<String, usize>,
}

fn tally(
    name: &'static str,
    up: Up<'_>,
    received: &[(u64, String, Instant)],
    published: &[String],
    stream: &[(u64, String)],
    fault_end: Instant,
    bound: Duration,
) -> Outcome {
    let mut outcome = Outcome {
        scenario: name,
        ..Outcome::default()
    };
    // Up.
    let position: HashMap<&str, usize> = up
        .sent
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut copies: HashMap<&str, usize> = HashMap::new();
    let mut last_position = None;
    for (_, id) in stream {
        if let Some(&pos) = position.get(id.as_str()) {
            *copies.entry(id.as_str()).or_default() += 1;
            if last_position.is_some_and(|last| pos < last) {
                outcome.reordered_up += 1;
            }
            last_position = Some(pos);
        }
    }
    outcome.sent_up = up.sent.len();
    outcome.delivered_up = copies.len();
    outcome.lost_up = outcome.sent_up - outcome.delivered_up;
    outcome.dup_up = copies.values().map(|n| n - 1).sum::<usize>()
        + up.acks.values().map(|n| n - 1).sum::<usize>();
    // Down: the publisher's messages as the client under test delivered them.
    let sent_down = published.len();
    let published: std::collections::HashSet<&str> = published.iter().map(String::as_str).collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut last_seq = 0;
    for (seq, id, _) in received {
        if *seq <= last_seq {
            outcome.reordered_down += 1;
        }
        last_seq = last_seq.max(*seq);
        if published.contains(id.as_str()) {
            *seen.entry(id.as_str()).or_default() += 1;
        }
    }
    outcome.sent_down = sent_down;
    outcome.delivered_down = seen.len();
    outcome.lost_down = outcome.sent_down - outcome.delivered_down;
    outcome.dup_down = seen.values().map(|n| n - 1).sum();
    // Recovery: first delivery after the fault ended.
    let first_after = received
        .iter()
        .map(|(_, _, at)| *at)
        .find(|at| *at >= fault_end);
    outcome.recovery_ms = first_after.map_or(u64::MAX, |at| {
        at.duration_since(fault_end).as_millis() as u64
    });
    outcome.recovery_bound_ms = bound.as_millis() as u64;
    outcome.passed = outcome.lost_up == 0
        && outcome.dup_up == 0
        && outcome.reordered_up == 0
        && outcome.lost_down == 0
        && outcome.dup_down == 0
        && outcome.reordered_down == 0
        && outcome.recovery_ms <= outcome.recovery_bound_ms;
    outcome
}

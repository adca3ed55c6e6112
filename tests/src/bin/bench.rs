//! `bench`: the numbers behind steadyws's promises, each against a baseline measured in the same
//! run where one exists (ratios, since machines are noisy).
//!
//! ```text
//! export LIBSQLITE3_FLAGS="$(sed '/^#/d' core/sqlite-options | tr '\n' ' ')"
//! cargo build --profile ship -p steadyws-ffi      # for cdylib_size
//! cargo build --profile ship -p steadyws-ffi --no-default-features \
//!     --target-dir target/no-store                 # for cdylib_size without the store
//! cargo build --profile ship -p steadyws-ffi --no-default-features --features store \
//!     --target-dir target/system-sqlite            # for cdylib_size on the system's SQLite
//! cargo run --release -p steadyws-tests --bin bench -- --json [--only NAME]
//! ```
//! One JSON object per line.
//!
//! `bench --inbound-reader URL` is no bench of its own: it is the baseline of the Swift inbound
//! bench (bindings/swift/bench), the same replayed messages read through the Rust API. See
//! [`inbound_reader`].

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use steadyws::{AppState, ConnectionError, Event, NetworkStatus, Socket, SocketConfig, State};
use steadyws_server::ServerConfig;
use steadyws_tests::fault_proxy::{FaultProxy, Mode};
use steadyws_tests::process::ServerProcess;
use tokio_tungstenite::tungstenite::Message;

const BENCHES: &[&str] = &[
    "echo_throughput",
    "echo_throughput_under_load",
    "rtt",
    "recovery_network_hint",
    "recovery_after_reset",
    "recovery_after_reset_no_hello",
    "recovery_after_outage",
    "recovery_foreground_probe",
    "dead_socket_detection",
    "dead_link_detection_while_sending",
    "many_sockets",
    "durable_send",
    "cdylib_size",
];

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--as-reference-server") {
        return steadyws_server::cli::run(args.into_iter().skip(1));
    }
    if args.first().map(String::as_str) == Some("--inbound-reader") {
        return inbound_reader(args.get(1).map(String::as_str));
    }
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    for name in BENCHES
        .iter()
        .filter(|name| only.as_deref().is_none_or(|only| only == **name))
    {
        let line = runtime.block_on(async {
            match *name {
                "echo_throughput" => echo_throughput("echo_throughput").await,
                "echo_throughput_under_load" => {
                    let _busy = BusyNeighbour::start();
                    echo_throughput("echo_throughput_under_load").await
                }
                "rtt" => rtt().await,
                "recovery_network_hint" => recovery_network_hint().await,
                "recovery_after_reset" => recovery_after_reset().await,
                "recovery_after_reset_no_hello" => recovery_after_reset_no_hello().await,
                "recovery_after_outage" => recovery_after_outage().await,
                "recovery_foreground_probe" => recovery_foreground_probe().await,
                "dead_socket_detection" => dead_socket_detection().await,
                "dead_link_detection_while_sending" => dead_link_detection_while_sending().await,
                "many_sockets" => many_sockets().await,
                "durable_send" => durable_send().await,
                _ => cdylib_size(),
            }
        });
        println!("{line}");
    }
    std::process::ExitCode::SUCCESS
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let index = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[index]
}

async fn open_socket(config: SocketConfig) -> Socket {
    let socket = Socket::new(config).expect("valid config");
    socket.connect();
    wait_state(&socket, |s| *s == State::Open).await;
    socket
}

async fn wait_state(socket: &Socket, accept: impl Fn(&State) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !accept(&socket.state()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "state not reached; now {}",
            socket.state()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Wait for the echoes of the `count` messages this client just sent, the last being `last`.
/// The client has the server to itself, so every message is one of its own: counting them costs
/// what the bare client's prefix check costs, and the last id proves they were ours. Events are
/// taken in batches (`next_events`), the API's way for a busy stream, as the bare client reads
/// whatever its buffer holds.
async fn await_echoes(socket: &Socket, count: usize, last: &str) {
    let mut echoes = 0;
    while echoes < count {
        let batch = socket.next_events(256).await;
        assert!(!batch.is_empty(), "echo stream ended");
        for event in batch {
            if let Event::Message(message) = event {
                echoes += 1;
                if echoes == count {
                    assert_eq!(message.id.as_deref(), Some(last), "echoes out of order");
                }
            }
        }
    }
}

/// Bound a bench's wait, the same for steadyws and the bare client: one timer per wait, not
/// one per event, so the guard costs both sides alike.
async fn within<T>(what: &str, wait: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing for 30 s"))
}

type RawWs =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn raw_connect(url: &str) -> RawWs {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("raw client connects");
    // The hello.
    let _ = ws.next().await;
    ws
}

/// Wait for `count` echoes of this raw client's messages (ids starting with `prefix`). Each frame
/// is parsed as JSON, as any application must do to find out what it received.
async fn raw_await_echoes(ws: &mut RawWs, prefix: &str, count: usize) {
    let mut echoes = 0;
    while echoes < count {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let frame: serde_json::Value =
                    serde_json::from_str(text.as_str()).expect("server frames are JSON");
                let own = frame["id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with(prefix));
                if frame["type"] == "msg" && own {
                    echoes += 1;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("raw stream ended: {other:?}"),
        }
    }
}

/// A reference server in a child process (this binary, `--as-reference-server`), so that the CPU
/// time of this process is the clients' alone.
fn server_process(args: &[&str]) -> ServerProcess {
    let self_exe = std::env::current_exe().expect("own path");
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let mut all = vec!["--as-reference-server"];
    all.extend_from_slice(args);
    ServerProcess::start(&self_exe, addr, &all)
}

/// CPU time used so far by every live thread of this process (user + system, nanosecond
/// precision from the scheduler; Linux).
fn cpu_time() -> Duration {
    let mut total = 0u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            total += stat
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(total)
}

/// What one measured phase cost: wall time and this process's CPU time.
struct Phase {
    wall: Duration,
    cpu: Duration,
}

async fn measure<F: std::future::Future<Output = ()>>(work: F) -> Phase {
    let (started, cpu) = (Instant::now(), cpu_time());
    work.await;
    Phase {
        wall: started.elapsed(),
        cpu: cpu_time().saturating_sub(cpu),
    }
}

/// The median and the spread (min, max) of per-run values, rounded to three decimals: how a
/// ratio is reported, so that a change can be told from noise.
fn spread(mut values: Vec<f64>) -> serde_json::Value {
    let mid = median(&mut values);
    serde_json::json!({
        "median": round3(mid), "min": round3(values[0]), "max": round3(values[values.len() - 1]),
    })
}

/// The same small JSON messages echoed through the reference server: steadyws (envelope, acks,
/// outbox) against a bare tokio-tungstenite client speaking the same protocol, interleaved runs.
/// Each client has a server process of its own, so neither sees the other's traffic and this
/// process's CPU time during a run is that client's: CPU per message is what a phone's battery
/// pays, and it moves far less with a busy neighbour than wall time does.
async fn echo_throughput(name: &str) -> String {
    const COUNT: usize = 10_000;
    const RUNS: usize = 7;
    let (ours_server, raw_server) = (server_process(&[]), server_process(&[]));
    let placement = Placement::split(&[&ours_server, &raw_server]);
    let mut config = SocketConfig::new(ours_server.url.clone());
    config.engine.outbox.max_messages = COUNT * 2;
    let socket = open_socket(config).await;
    let mut raw = raw_connect(&raw_server.url).await;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        ours.push(
            measure(async {
                let mut last = String::new();
                for i in 0..COUNT {
                    last = socket
                        .send(&format!(r#"{{"n":{i},"text":"hello"}}"#))
                        .expect("queued")
                        .0;
                }
                within("echoes", await_echoes(&socket, COUNT, &last)).await;
            })
            .await,
        );
        theirs.push(
            measure(async {
                for i in 0..COUNT {
                    let frame = format!(
                        r#"{{"type":"msg","id":"raw-{run}-{i}","data":{{"n":{i},"text":"hello"}}}}"#
                    );
                    raw.feed(Message::Text(frame.into()))
                        .await
                        .expect("raw send");
                }
                raw.flush().await.expect("raw flush");
                within(
                    "raw echoes",
                    raw_await_echoes(&mut raw, &format!("raw-{run}-"), COUNT),
                )
                .await;
            })
            .await,
        );
    }
    drop(socket);
    let per_second = |p: &Phase| COUNT as f64 / p.wall.as_secs_f64();
    let cpu_us = |p: &Phase| p.cpu.as_secs_f64() * 1e6 / COUNT as f64;
    let pairs = || ours.iter().zip(&theirs);
    serde_json::json!({
        "bench": name, "messages": COUNT, "runs": RUNS,
        "steadyws_msgs_per_s": median(&mut ours.iter().map(per_second).collect::<Vec<_>>()).round(),
        "raw_msgs_per_s": median(&mut theirs.iter().map(per_second).collect::<Vec<_>>()).round(),
        "ratio": spread(pairs().map(|(o, t)| per_second(o) / per_second(t)).collect()),
        "steadyws_cpu_us_per_msg": round1(median(&mut ours.iter().map(cpu_us).collect::<Vec<_>>())),
        "raw_cpu_us_per_msg": round1(median(&mut theirs.iter().map(cpu_us).collect::<Vec<_>>())),
        "cpu_ratio": spread(pairs().map(|(o, t)| cpu_us(o) / cpu_us(t)).collect()),
        "placement": placement.describe(),
    })
    .to_string()
}

/// A process that keeps CPU 0 busy for as long as it lives (pinned where `taskset` exists): the
/// standard background load under which `echo_throughput_under_load` runs.
struct BusyNeighbour(Option<std::process::Child>);

impl BusyNeighbour {
    fn start() -> BusyNeighbour {
        let busy_loop = ["sh", "-c", "while :; do :; done"];
        let pinned = std::process::Command::new("taskset")
            .args(["-c", CLIENTS_CPU])
            .args(busy_loop)
            .spawn();
        let child = pinned.or_else(|_| {
            std::process::Command::new(busy_loop[0])
                .args(&busy_loop[1..])
                .spawn()
        });
        BusyNeighbour(child.ok())
    }
}

impl Drop for BusyNeighbour {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The CPU the clients (and the busy loop) run on.
const CLIENTS_CPU: &str = "0";
/// The CPU the servers run on.
const SERVERS_CPU: &str = "1";

/// Where a comparison runs: this process (the clients) on CPU 0, beside the busy loop when there
/// is one, and the servers, standing in for a remote machine, on CPU 1, until dropped. Left to
/// the scheduler, where each client's threads and each server land changes from one invocation
/// to the next, and the ratios with it: a steadyws-against-steadyws control of `rtt` read
/// 0.89–1.15 unpinned and 0.98–1.02 pinned, and the CPU ratio under load swung between medians of
/// 0.94 and 1.88 over nine invocations of one build.
struct Placement {
    pinned: bool,
    all: String,
}

impl Placement {
    fn split(servers: &[&ServerProcess]) -> Placement {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let pinned = cpus >= 2
            && servers
                .iter()
                .all(|server| set_affinity(server.pid(), SERVERS_CPU))
            && set_affinity(std::process::id(), CLIENTS_CPU);
        Placement {
            pinned,
            all: format!("0-{}", cpus - 1),
        }
    }

    fn describe(&self) -> String {
        if self.pinned {
            format!("clients on CPU {CLIENTS_CPU}, servers on CPU {SERVERS_CPU}")
        } else {
            "unpinned (taskset or a second CPU missing)".into()
        }
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        set_affinity(std::process::id(), &self.all);
    }
}

/// Set the CPUs every thread of process `pid` may run on (`taskset` list syntax).
fn set_affinity(pid: u32, cpus: &str) -> bool {
    std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// One message at a time: send, wait for its echo. Round trips alternate between steadyws and
/// the bare client (each on a server process of its own), so both see the same machine noise,
/// and which goes first alternates too (ABBA), so neither always runs right after the other.
/// The ratio's spread is over blocks of 200 rounds. `aa_ratio_p50` is a control: steadyws
/// against a second steadyws socket by the same method, so its distance from 1 is what the
/// method itself cannot tell apart on this machine.
async fn rtt() -> String {
    const ROUNDS: usize = 5_000;
    let (ours_server, raw_server) = (server_process(&[]), server_process(&[]));
    let placement = Placement::split(&[&ours_server, &raw_server]);
    let socket = open_socket(SocketConfig::new(ours_server.url.clone())).await;
    let mut ours = RoundTrips::Steady(&socket);
    let mut raw = RoundTrips::Raw(Box::new(raw_connect(&raw_server.url).await));
    let (mut o, mut t) = interleaved(&mut ours, &mut raw, ROUNDS).await;
    let blocks = block_ratios(&o, &t);
    let (o50, o99) = (percentile(&mut o, 0.5), percentile(&mut o, 0.99));
    let (t50, t99) = (percentile(&mut t, 0.5), percentile(&mut t, 0.99));
    // The bare client leaves first: its server would otherwise fan the control's messages out
    // to it too.
    drop(raw);
    let other = open_socket(SocketConfig::new(raw_server.url.clone())).await;
    let (mut a, mut b) = interleaved(&mut ours, &mut RoundTrips::Steady(&other), ROUNDS).await;
    let aa = percentile(&mut a, 0.5) / percentile(&mut b, 0.5);
    serde_json::json!({
        "bench": "rtt", "rounds": ROUNDS,
        "steadyws_p50_us": o50.round(), "steadyws_p99_us": o99.round(),
        "raw_p50_us": t50.round(), "raw_p99_us": t99.round(),
        "ratio_p50": round3(o50 / t50), "ratio_p50_blocks": spread(blocks),
        "aa_ratio_p50": round3(aa), "placement": placement.describe(),
    })
    .to_string()
}

/// One client of the RTT bench.
enum RoundTrips<'a> {
    Steady(&'a Socket),
    Raw(Box<RawWs>),
}

impl RoundTrips<'_> {
    /// Send message `i`, wait for its echo: the time it took, µs.
    async fn one(&mut self, i: usize) -> f64 {
        let started = Instant::now();
        match self {
            RoundTrips::Steady(socket) => {
                let id = socket.send(&format!(r#"{{"n":{i}}}"#)).expect("queued").0;
                within("echo", await_echoes(socket, 1, &id)).await;
            }
            RoundTrips::Raw(raw) => {
                let frame = format!(r#"{{"type":"msg","id":"rtt-{i}","data":{{"n":{i}}}}}"#);
                raw.send(Message::Text(frame.into()))
                    .await
                    .expect("raw send");
                within("raw echo", raw_await_echoes(raw, &format!("rtt-{i}"), 1)).await;
            }
        }
        started.elapsed().as_secs_f64() * 1e6
    }
}

/// `rounds` round trips of each client, alternating, and alternating which goes first.
async fn interleaved(
    a: &mut RoundTrips<'_>,
    b: &mut RoundTrips<'_>,
    rounds: usize,
) -> (Vec<f64>, Vec<f64>) {
    let (mut of_a, mut of_b) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        if i % 2 == 0 {
            of_a.push(a.one(i).await);
            of_b.push(b.one(i).await);
        } else {
            of_b.push(b.one(i).await);
            of_a.push(a.one(i).await);
        }
    }
    (of_a, of_b)
}

/// The ratio of medians over blocks of 200 rounds.
fn block_ratios(ours: &[f64], theirs: &[f64]) -> Vec<f64> {
    const BLOCK: usize = 200;
    ours.chunks(BLOCK)
        .zip(theirs.chunks(BLOCK))
        .map(|(o, t)| percentile(&mut o.to_vec(), 0.5) / percentile(&mut t.to_vec(), 0.5))
        .collect()
}

/// The server publishes every 10 ms; returns when the client delivers the next message.
async fn first_delivery(socket: &Socket) -> Instant {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), socket.next_event()).await {
            Ok(Some(Event::Message(_))) => return Instant::now(),
            Ok(Some(_)) => {}
            other => panic!("no delivery: {other:?}"),
        }
    }
}

/// A reference server run with `config`, the fault proxy in front of it, and an open default
/// socket through it.
async fn through_proxy(
    config: ServerConfig,
) -> (steadyws_server::RunningServer, FaultProxy, Socket) {
    let server = steadyws_server::start(config).await.expect("server");
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    let socket = open_socket(SocketConfig::new(format!("ws://{}/ws", proxy.addr()))).await;
    (server, proxy, socket)
}

/// The JSON line of a latency bench: runs, p50 and p99 of `samples` (ms).
fn latencies(bench: &str, samples: &mut [f64]) -> serde_json::Value {
    serde_json::json!({
        "bench": bench, "runs": samples.len(),
        "ms_p50": round1(percentile(samples, 0.5)), "ms_p99": round1(percentile(samples, 0.99)),
    })
}

/// Link down and the OS says so; then the network returns and the OS says that: time from the
/// "available" hint to the first message delivered.
async fn recovery_network_hint() -> String {
    const RUNS: usize = 10;
    let (server, proxy, socket) = through_proxy(ServerConfig::default()).await;
    let publishing = publish_every(&server, Duration::from_millis(10));
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        socket.set_network(NetworkStatus::Unavailable);
        proxy.set_mode(Mode::Down);
        wait_state(&socket, |s| *s == State::WaitingForNetwork).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        while socket.try_next_event().is_some() {}
        proxy.set_mode(Mode::Pass);
        proxy.wait_until_listening().await;
        let started = Instant::now();
        socket.set_network(NetworkStatus::Available {
            interface: Some("wifi".into()),
        });
        let delivered = first_delivery(&socket).await;
        samples.push(delivered.duration_since(started).as_secs_f64() * 1000.0);
    }
    publishing.abort();
    server.shutdown().await;
    latencies("recovery_network_hint", &mut samples).to_string()
}

/// A link reset (RST) under a working connection, no hint: time from the reset to the first
/// message delivered on the new connection. Default config.
async fn recovery_after_reset() -> String {
    reset_recovery("recovery_after_reset", ServerConfig::default())
        .await
        .to_string()
}

/// The same against a server that sends no `hello`: the connection proves useful by delivering
/// messages, which must earn the same quick retry.
async fn recovery_after_reset_no_hello() -> String {
    let config = ServerConfig {
        hello: false,
        ..ServerConfig::default()
    };
    let mut line = reset_recovery("recovery_after_reset_no_hello", config).await;
    line["target_ms"] = 1000.into();
    line.to_string()
}

/// Resets of a working connection to a server run with `config`, which publishes every 10 ms:
/// time from each reset to the first message delivered on the new connection.
async fn reset_recovery(bench: &str, config: ServerConfig) -> serde_json::Value {
    const RUNS: usize = 20;
    let (server, proxy, socket) = through_proxy(config).await;
    let publishing = publish_every(&server, Duration::from_millis(10));
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        // Let messages flow on this connection first, as on a working link.
        first_delivery(&socket).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = socket.stats().reconnects;
        let started = Instant::now();
        proxy.reset_all();
        // The first message delivered over the new connection.
        let delivered = loop {
            let delivered = first_delivery(&socket).await;
            if socket.stats().reconnects > before {
                break delivered;
            }
        };
        samples.push(delivered.duration_since(started).as_secs_f64() * 1000.0);
    }
    publishing.abort();
    server.shutdown().await;
    latencies(bench, &mut samples)
}

/// The server refuses connections for 3 s (every connection reset, the port closed), then
/// accepts again, while the app sends every 20 ms: time from the port accepting again to the
/// first ack. The retry after the reset comes quickly (the connection was useful) and is
/// refused, so what is measured is the backoff schedule's wait after a short outage, default
/// config (1 s, doubling, shortened by up to half). Four sockets at once, ten outages.
async fn recovery_after_outage() -> String {
    const SOCKETS: usize = 4;
    const ROUNDS: usize = 10;
    const OUTAGE: Duration = Duration::from_secs(3);
    let server = steadyws_server::start(ServerConfig::default())
        .await
        .expect("server");
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    let mut watched = Watched::open(&format!("ws://{}/ws", proxy.addr()), SOCKETS, true).await;
    let mut samples = Vec::new();
    for _ in 0..ROUNDS {
        // Each connection acks (so it proved useful), and a while of traffic follows.
        watched.first_after(Sighting::Acked, Instant::now()).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        proxy.set_mode(Mode::Down);
        tokio::time::sleep(OUTAGE).await;
        proxy.set_mode(Mode::Pass);
        proxy.wait_until_listening().await;
        let started = Instant::now();
        samples.extend(watched.first_after(Sighting::Acked, started).await);
    }
    drop(watched);
    drop(proxy);
    server.shutdown().await;
    serde_json::json!({
        "bench": "recovery_after_outage", "samples": samples.len(), "sockets": SOCKETS,
        "outage_ms": OUTAGE.as_millis() as u64,
        "ms_p50": round1(percentile(&mut samples, 0.5)),
        "ms_p99": round1(percentile(&mut samples, 0.99)),
    })
    .to_string()
}

/// A blackholed socket (the app was suspended; the old connection is dead, the network is fine),
/// then the foreground hint: time until a new connection is open. Default config (probe 2 s).
async fn recovery_foreground_probe() -> String {
    const RUNS: usize = 6;
    let (server, proxy, socket) = through_proxy(ServerConfig::default()).await;
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        socket.set_app_state(AppState::Background);
        proxy.blackhole_existing();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let reconnects = socket.stats().reconnects;
        let started = Instant::now();
        socket.set_app_state(AppState::Foreground);
        // The replacement connection opens within milliseconds: watch the counter, not the state.
        let deadline = Instant::now() + Duration::from_secs(30);
        while socket.stats().reconnects == reconnects || socket.state() != State::Open {
            assert!(
                Instant::now() < deadline,
                "no new connection; state {}",
                socket.state()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    server.shutdown().await;
    let mut line = latencies("recovery_foreground_probe", &mut samples);
    line["probe_timeout_ms"] = 2000.into();
    line.to_string()
}

/// What a watched socket reported, timed by its reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sighting {
    /// An ack of a message the app sent.
    Acked,
    /// A dead link: a state change whose problem is a heartbeat (or probe) timeout.
    DeadLink,
}

/// Default sockets, each read by a task of its own as an app would, so that every report is
/// timed when it comes in, whichever socket a bench waits on; with `sending`, the app sends on
/// each every 20 ms.
struct Watched {
    count: usize,
    sightings: tokio::sync::mpsc::UnboundedReceiver<(usize, Sighting, Instant)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Watched {
    /// Open `count` sockets on `url` with the library's defaults, one after another.
    async fn open(url: &str, count: usize, sending: bool) -> Watched {
        let (report, sightings) = tokio::sync::mpsc::unbounded_channel();
        let mut sockets = Vec::with_capacity(count);
        let mut tasks = Vec::with_capacity(count + 1);
        for index in 0..count {
            let socket = std::sync::Arc::new(open_socket(SocketConfig::new(url)).await);
            let (reader, report) = (std::sync::Arc::clone(&socket), report.clone());
            tasks.push(tokio::spawn(async move {
                while let Some(event) = reader.next_event().await {
                    let sighting = match event {
                        Event::Acked(_) => Sighting::Acked,
                        Event::StateChanged { cause, .. }
                            if matches!(
                                cause.problem(),
                                Some(ConnectionError::HeartbeatTimeout { .. })
                            ) =>
                        {
                            Sighting::DeadLink
                        }
                        _ => continue,
                    };
                    if report.send((index, sighting, Instant::now())).is_err() {
                        return;
                    }
                }
            }));
            sockets.push(socket);
        }
        if sending {
            tasks.push(tokio::spawn(async move {
                let mut ticks = tokio::time::interval(Duration::from_millis(20));
                for n in 0u64.. {
                    ticks.tick().await;
                    for socket in &sockets {
                        // The default outbox holds 100 000 messages: far more than any outage
                        // here queues.
                        socket.send(&format!(r#"{{"n":{n}}}"#)).expect("queued");
                    }
                }
            }));
        }
        Watched {
            count,
            sightings,
            tasks,
        }
    }

    /// For each socket, ms from `since` to its first `kind` report at or after it (at most 30 s).
    async fn first_after(&mut self, kind: Sighting, since: Instant) -> Vec<f64> {
        let mut firsts: Vec<Option<f64>> = vec![None; self.count];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while firsts.iter().any(Option::is_none) {
            match tokio::time::timeout_at(deadline, self.sightings.recv()).await {
                Ok(Some((index, sighting, at))) if sighting == kind && at >= since => {
                    firsts[index].get_or_insert(at.duration_since(since).as_secs_f64() * 1000.0);
                }
                Ok(Some(_)) => {}
                other => {
                    panic!("no {kind:?} from every socket within 30 s ({firsts:?}): {other:?}")
                }
            }
        }
        firsts.into_iter().flatten().collect()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        // The tasks own the sockets: ending them closes the sockets.
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Blackhole with no hint, default config (10 s idle ping + 5 s timeout), nothing sent: time to
/// detection, ten sockets measured at once (p99: the slowest of them).
async fn dead_socket_detection() -> String {
    const SOCKETS: usize = 10;
    let server = steadyws_server::start(ServerConfig::default())
        .await
        .expect("server");
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    let mut watched = Watched::open(&format!("ws://{}/ws", proxy.addr()), SOCKETS, false).await;
    let started = Instant::now();
    proxy.set_mode(Mode::Blackhole);
    let mut samples = watched.first_after(Sighting::DeadLink, started).await;
    drop(watched);
    drop(proxy);
    server.shutdown().await;
    serde_json::json!({
        "bench": "dead_socket_detection", "sockets": SOCKETS, "bound_ms": 15000,
        "ms_p50": round1(percentile(&mut samples, 0.5)),
        "ms_p99": round1(percentile(&mut samples, 0.99)),
    })
    .to_string()
}

/// Blackhole with no hint while the app sends every 20 ms and the server publishes every 10 ms,
/// default config: writes met by silence for `ack_probe_after` (2 s on loopback) are probed,
/// and the probe's 2 s timeout reports the dead link, long before the idle heartbeat's 15 s.
/// Time from the blackhole to detection; five sockets at once, eight blackholes, each lifted once
/// every socket has seen it.
async fn dead_link_detection_while_sending() -> String {
    const SOCKETS: usize = 5;
    const ROUNDS: usize = 8;
    let server = steadyws_server::start(ServerConfig::default())
        .await
        .expect("server");
    let publishing = publish_every(&server, Duration::from_millis(10));
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    let mut watched = Watched::open(&format!("ws://{}/ws", proxy.addr()), SOCKETS, true).await;
    let mut samples = Vec::new();
    for _ in 0..ROUNDS {
        // A working connection each: acks coming back, then a while of traffic.
        watched.first_after(Sighting::Acked, Instant::now()).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        proxy.set_mode(Mode::Blackhole);
        samples.extend(watched.first_after(Sighting::DeadLink, started).await);
        proxy.set_mode(Mode::Pass);
    }
    drop(watched);
    drop(proxy);
    publishing.abort();
    server.shutdown().await;
    serde_json::json!({
        "bench": "dead_link_detection_while_sending", "samples": samples.len(),
        "target_ms": 5000,
        "ms_p50": round1(percentile(&mut samples, 0.5)),
        "ms_p99": round1(percentile(&mut samples, 0.99)),
    })
    .to_string()
}

/// Many sockets in one process (the server runs in another, with live fan-out off so that it
/// only acks): 10 000 idle sockets and 1 000 active ones sending 10 messages a second each.
/// Reports resident memory per connected socket, the CPU the idle sockets cost (their heartbeats),
/// and the CPU per message the active ones add, over three windows.
async fn many_sockets() -> String {
    const IDLE: usize = 10_000;
    const ACTIVE: usize = 1_000;
    const RATE_HZ: u64 = 10;
    const WINDOW: Duration = Duration::from_secs(5);
    const WINDOWS: usize = 3;
    // Longer than the idle heartbeat's period (10 s by default), so every socket pings in it.
    const IDLE_WINDOW: Duration = Duration::from_secs(15);
    let caps = (IDLE + ACTIVE + 100).to_string();
    // Eleven thousand clients connecting at once: lift the server's caps (its defaults admit 256
    // handshakes in flight and 1000 sessions), which this figure is not about.
    let server = server_process(&[
        "--max-handshakes",
        &caps,
        "--max-connections",
        &caps,
        "--fanout",
        "off",
    ]);
    // Warm up the runtime and TLS/URL machinery so the baseline includes one-time costs.
    let warm = open_socket(SocketConfig::new(server.url.clone())).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_bytes();
    let mut sockets = Vec::with_capacity(IDLE + ACTIVE);
    for _ in 0..IDLE + ACTIVE {
        let socket =
            std::sync::Arc::new(Socket::new(SocketConfig::new(server.url.clone())).expect("valid"));
        socket.connect();
        // An app reads its events; one that does not would pause its socket's reading.
        let reader = std::sync::Arc::clone(&socket);
        tokio::spawn(async move { while reader.next_event().await.is_some() {} });
        sockets.push(socket);
    }
    for socket in &sockets {
        wait_state(socket, |s| *s == State::Open).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let connected = rss_bytes();

    // Idle: every socket connected, nothing sent (heartbeats only).
    let idle = measure(tokio::time::sleep(IDLE_WINDOW)).await;
    let idle_cpu_share = idle.cpu.as_secs_f64() / idle.wall.as_secs_f64();

    // One task sends for all active sockets, a slice of them every 10 ms, so that the cost
    // measured is the sockets', not a thousand application timers'.
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sender = {
        let (active, sent) = (sockets[..ACTIVE].to_vec(), std::sync::Arc::clone(&sent));
        tokio::spawn(async move {
            const TICK: Duration = Duration::from_millis(10);
            let per_tick = ACTIVE * RATE_HZ as usize * TICK.as_millis() as usize / 1000;
            let mut ticks = tokio::time::interval(TICK);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for turn in (0..ACTIVE / per_tick).cycle() {
                ticks.tick().await;
                for socket in &active[turn * per_tick..(turn + 1) * per_tick] {
                    socket.send(r#"{"text":"hello"}"#).expect("queued");
                }
                sent.fetch_add(per_tick as u64, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut cpu_per_message = Vec::new();
    let mut rates = Vec::new();
    for _ in 0..WINDOWS {
        let first = sent.load(std::sync::atomic::Ordering::Relaxed);
        let active = measure(tokio::time::sleep(WINDOW)).await;
        let messages = (sent.load(std::sync::atomic::Ordering::Relaxed) - first) as f64;
        let added =
            (active.cpu.as_secs_f64() - idle_cpu_share * active.wall.as_secs_f64()).max(0.0);
        cpu_per_message.push(added * 1e6 / messages);
        rates.push(messages / active.wall.as_secs_f64());
    }
    sender.abort();
    let unacked: usize = sockets[..ACTIVE].iter().map(|s| s.stats().outbox_len).sum();
    let total = sockets.len();
    drop(sockets);
    drop(warm);
    server.kill();
    serde_json::json!({
        "bench": "many_sockets", "idle_sockets": IDLE, "active_sockets": ACTIVE,
        "messages_per_s_each": RATE_HZ, "window_s": WINDOW.as_secs(),
        "bytes_per_socket": connected.saturating_sub(before) / total as u64,
        "idle_window_s": IDLE_WINDOW.as_secs(),
        "idle_cpu_percent_of_core": round1(idle_cpu_share * 100.0),
        "messages_per_s": spread(rates),
        "cpu_us_per_message": spread(cpu_per_message),
        "outbox_len_at_end": unacked,
    })
    .to_string()
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Stripped size of the shipping-profile `.so`, with the durable store and its bundled SQLite
/// (what the Python, Kotlin and Android packages ship) and, when built, without the store and
/// with the store on the system's SQLite (what Apple builds ship); and where the bytes of the
/// first go, by part.
fn cdylib_size() -> String {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from);
    let built = target.join("ship").join("libsteadyws_ffi.so");
    if !built.exists() {
        return serde_json::json!({ "bench": "cdylib_size", "error": "not built: run `cargo build --profile ship -p steadyws-ffi` first" }).to_string();
    }
    let Some(size) = stripped_size(&built) else {
        return serde_json::json!({ "bench": "cdylib_size", "error": "`strip` (binutils) is needed" })
            .to_string();
    };
    let unstripped = std::fs::metadata(&built).map(|m| m.len()).unwrap_or(0);
    let variant = |dir: &str| {
        workspace
            .join("target")
            .join(dir)
            .join("ship")
            .join("libsteadyws_ffi.so")
    };
    let without = stripped_size(&variant("no-store"));
    let system_sqlite = stripped_size(&variant("system-sqlite"));
    // Built without core/sqlite-options, SQLite brings full-text search along (its `fts5vocab`).
    let trimmed = std::fs::read(&built)
        .map(|bytes| !bytes.windows(5).any(|w| w == b"fts5v"))
        .unwrap_or(false);
    serde_json::json!({
        "bench": "cdylib_size", "bytes": size, "unstripped_bytes": unstripped,
        "sqlite_options": if trimmed { "core/sqlite-options" } else { "full (LIBSQLITE3_FLAGS was not set)" },
        "bytes_without_store": without,
        "store_bytes": without.map(|w| size.saturating_sub(w)),
        "bytes_system_sqlite": system_sqlite,
        "bundled_sqlite_bytes": system_sqlite.map(|s| size.saturating_sub(s)),
        "symbol_bytes_by_part": symbol_bytes_by_part(&built, &variant("system-sqlite")),
        "profile": "ship (opt-level s, lto, codegen-units 1)",
    })
    .to_string()
}

/// The sizes of the unstripped library's symbols (`nm -S`, demangled), summed by the part of
/// steadyws they belong to. A generic function counts for the crate that defines it; code
/// inlined into a caller counts for the caller. Symbols with C names are SQLite's when the build
/// on the system's SQLite (`system_sqlite`, when built) lacks them, UniFFI's metadata, or
/// ring's C and assembly. Sections without symbols (unwind tables, relocations, unnamed
/// constants) are not in it.
fn symbol_bytes_by_part(
    library: &std::path::Path,
    system_sqlite: &std::path::Path,
) -> serde_json::Value {
    let Some(symbols) = sized_symbols(library) else {
        return serde_json::json!({ "error": "`nm` (binutils) is needed" });
    };
    let without_sqlite: std::collections::HashSet<String> = sized_symbols(system_sqlite)
        .unwrap_or_default()
        .into_iter()
        .map(|(_, name)| name)
        .collect();
    let mut parts = std::collections::BTreeMap::<&str, u64>::new();
    for (size, name) in &symbols {
        let part = if name.contains("::") {
            part_of(name)
        } else if name.starts_with("UNIFFI_")
            || name.starts_with("uniffi_")
            || name.starts_with("ffi_steadyws")
        {
            "bindings"
        } else if name.starts_with("rust_")
            || name.starts_with("__rust")
            || name.starts_with("__rdl")
        {
            "rust_std"
        } else if name.starts_with("sqlite3")
            || (!without_sqlite.is_empty() && !without_sqlite.contains(name))
        {
            "store"
        } else {
            "tls"
        };
        *parts.entry(part).or_default() += size;
    }
    serde_json::json!(parts)
}

/// `(size, demangled name)` of every sized symbol of `library`.
fn sized_symbols(library: &std::path::Path) -> Option<Vec<(u64, String)>> {
    if !library.exists() {
        return None;
    }
    let output = std::process::Command::new("nm")
        .args(["-S", "--size-sort", "-C"])
        .arg(library)
        .output()
        .ok()?;
    let symbols = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(4, ' ');
            let (_, size, _, name) = (
                fields.next()?,
                fields.next()?,
                fields.next()?,
                fields.next()?,
            );
            Some((u64::from_str_radix(size, 16).ok()?, name.to_owned()))
        })
        .collect();
    Some(symbols)
}

/// Which part of the library a demangled Rust symbol belongs to.
fn part_of(symbol: &str) -> &'static str {
    let path = symbol.trim_start_matches(['<', '&', '*', '(', ' ', '[']);
    let path = path.strip_prefix("dyn ").unwrap_or(path);
    let path = path.strip_prefix("mut ").unwrap_or(path);
    let krate = path.split("::").next().unwrap_or(path);
    match krate {
        "steadyws" if path.starts_with("steadyws::engine") => "engine",
        "steadyws" if path.starts_with("steadyws::store") => "store",
        "steadyws" => "driver",
        "tokio" | "mio" | "bytes" | "tokio_tungstenite" | "tungstenite" | "http" | "httparse"
        | "sha1" | "data_encoding" | "url" | "idna" | "idna_adapter" | "form_urlencoded"
        | "percent_encoding" | "icu_normalizer" | "icu_properties" | "icu_collections"
        | "icu_provider" | "zerovec" | "tinystr" | "writeable" | "yoke" | "utf8_iter"
        | "smallvec" | "futures_util" | "futures_core" | "futures_sink" | "futures_task"
        | "pin_project_lite" | "slab" | "socket2" | "parking_lot" | "lock_api" | "once_cell"
        | "uuid" | "getrandom" | "rand" | "rand_core" | "log" => "driver",
        "rustls"
        | "tokio_rustls"
        | "ring"
        | "webpki"
        | "rustls_pki_types"
        | "untrusted"
        | "rustls_platform_verifier"
        | "rustls_native_certs"
        | "webpki_roots"
        | "zeroize"
        | "subtle" => "tls",
        "rusqlite"
        | "libsqlite3_sys"
        | "hashlink"
        | "fallible_iterator"
        | "fallible_streaming_iterator" => "store",
        "steadyws_ffi" | "uniffi" | "uniffi_core" | "anyhow" => "bindings",
        "serde" | "serde_core" | "serde_json" | "memchr" | "ryu" | "itoa" | "thiserror" => "json",
        // Generic std code (`<T as core::…>`, `<str as core::…>`) counts here too.
        _ => "rust_std",
    }
}

/// Size of a stripped copy of `library`, if it exists and `strip` works.
fn stripped_size(library: &std::path::Path) -> Option<u64> {
    let stripped = std::env::temp_dir().join(format!(
        "libsteadyws_ffi-{}-{}.so",
        std::process::id(),
        library.components().count()
    ));
    std::fs::copy(library, &stripped).ok()?;
    let status = std::process::Command::new("strip").arg(&stripped).status();
    let size = std::fs::metadata(&stripped).map(|m| m.len()).ok();
    let _ = std::fs::remove_file(&stripped);
    status.ok().filter(|s| s.success()).and(size)
}

/// `send` through a durable store against the memory outbox, on the same server, interleaved:
/// one sender (each `send` returns once its message is durable: one commit each) and four
/// threads sending at once (their messages share commits). Also the store with
/// `sync_every_commit` (an fsync per commit), with fewer messages: there the four threads show
/// what sharing commits saves.
async fn durable_send() -> String {
    const RUNS: usize = 3;
    const THREADS: usize = 4;
    let server = steadyws_server::start(ServerConfig::default())
        .await
        .expect("server");
    let dir = std::env::temp_dir().join(format!("steadyws-bench-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // (name, store: None or Some(sync_every_commit), messages per run)
    let variants = [
        ("memory", None, 2_000),
        ("store", Some(false), 2_000),
        ("store_sync", Some(true), 200),
    ];
    let mut sockets = Vec::new();
    for (name, store, _) in variants {
        let mut config = SocketConfig::new(server.url());
        if let Some(sync_every_commit) = store {
            config.store = Some(steadyws::StoreConfig {
                sync_every_commit,
                ..steadyws::StoreConfig::new(&dir, name)
            });
        }
        let socket = std::sync::Arc::new(open_socket(config).await);
        let reader = std::sync::Arc::clone(&socket);
        tokio::spawn(async move { while reader.next_event().await.is_some() {} });
        sockets.push(socket);
    }
    // Per variant, per run: (one sender msgs/s, p50 us, p99 us, threads msgs/s).
    let mut results: Vec<Vec<(f64, f64, f64, f64)>> = vec![Vec::new(); variants.len()];
    for _ in 0..RUNS {
        for (slot, (_, _, count)) in variants.into_iter().enumerate() {
            let socket = std::sync::Arc::clone(&sockets[slot]);
            let measured = tokio::task::spawn_blocking(move || {
                let mut latencies = Vec::with_capacity(count);
                let started = Instant::now();
                for n in 0..count {
                    let sent = Instant::now();
                    socket.send(&format!(r#"{{"n":{n}}}"#)).expect("queued");
                    latencies.push(sent.elapsed().as_secs_f64() * 1e6);
                }
                let one = count as f64 / started.elapsed().as_secs_f64();
                let started = Instant::now();
                std::thread::scope(|scope| {
                    for _ in 0..THREADS {
                        scope.spawn(|| {
                            for n in 0..count / THREADS {
                                socket.send(&format!(r#"{{"n":{n}}}"#)).expect("queued");
                            }
                        });
                    }
                });
                let many = count as f64 / started.elapsed().as_secs_f64();
                let p50 = percentile(&mut latencies, 0.5);
                (one, p50, percentile(&mut latencies, 0.99), many)
            })
            .await
            .expect("sender");
            results[slot].push(measured);
            while sockets[slot].stats().outbox_len > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let mut line = serde_json::json!({
        "bench": "durable_send", "runs": RUNS, "threads": THREADS,
        "store": "synchronous=NORMAL (survives a process kill)",
        "store_sync": "sync_every_commit: synchronous=FULL (survives power loss)",
    });
    let mut rates = Vec::new();
    for (slot, (name, _, count)) in variants.into_iter().enumerate() {
        let pick = |field: fn(&(f64, f64, f64, f64)) -> f64| {
            let mut values: Vec<f64> = results[slot].iter().map(field).collect();
            median(&mut values)
        };
        rates.push(pick(|r| r.0));
        line[format!("{name}_messages")] = count.into();
        line[format!("{name}_msgs_per_s")] = pick(|r| r.0).round().into();
        line[format!("{name}_p50_us")] = round1(pick(|r| r.1)).into();
        line[format!("{name}_p99_us")] = round1(pick(|r| r.2)).into();
        line[format!("{name}_threads_msgs_per_s")] = pick(|r| r.3).round().into();
    }
    line["ratio"] = round3(rates[1] / rates[0]).into();
    drop(sockets);
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    line.to_string()
}

fn publish_every(
    server: &steadyws_server::RunningServer,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    let url = server.url();
    // Publish through a second client, like a chat peer would. It reads nothing, not even a
    // hello: a server may send none.
    tokio::spawn(async move {
        let (mut raw, _) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("publisher connects");
        let mut n = 0u64;
        loop {
            n += 1;
            let frame = format!(r#"{{"type":"msg","id":"pub-{n}","data":{n}}}"#);
            if raw.send(Message::Text(frame.into())).await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
    })
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// How long one replay may take in `--inbound-reader` before it counts as failed.
const REPLAY_BOUND: Duration = Duration::from_secs(120);

/// `bench --inbound-reader URL`: the baseline of bindings/swift/bench (SwiftInbound), which has
/// no Swift WebSocket client to compare with on Linux. It reads the messages a reference server
/// replays through the Rust API, `Socket::next_events(256)` in one task, as a Rust app would: the
/// same core as the Swift layer, without the FFI and without the Swift side. Like the FFI's
/// sockets, each is created outside any tokio runtime, so its connection runs on the shared
/// steadyws runtime (two threads); only the reading task runs on this thread.
///
/// It stays up between measurements, so that its runs are as warm as the Swift process's, and
/// takes one request per line on stdin, `COUNT RESUME_FROM`: a socket on URL resuming after seq
/// RESUME_FROM, timed from its creation to the COUNT-th message in hand. Each request gets one
/// JSON line on stdout: `{"msgs_per_s":…,"elapsed_s":…}`, or `{"error":"…"}` when the messages
/// are not seq 1…COUNT in order (the check is the Swift bench's, with the same wording, so that
/// its negative control can expect the same message from both), when anything but the state
/// changes of one connection comes between them, when the last is not the last one published
/// (`{"n":COUNT-1,"text":"hello"}`), or when the replay exceeds [`REPLAY_BOUND`].
/// It exits at the end of stdin, which is also what happens when the Swift bench dies.
fn inbound_reader(url: Option<&str>) -> std::process::ExitCode {
    use std::io::{BufRead, Write};
    let Some(url) = url else {
        eprintln!("usage: bench --inbound-reader URL   (then `COUNT RESUME_FROM` lines on stdin)");
        return std::process::ExitCode::from(2);
    };
    // One task reads: a current-thread runtime is all a single reader needs. Only `read` runs
    // inside it (a socket created inside a runtime would run its connection on that runtime).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let mut words = line.split_whitespace().map(str::parse::<u64>);
        let answer = match (words.next(), words.next(), words.next()) {
            (Some(Ok(count)), Some(Ok(resume_from)), None) if count >= 1 => {
                match replay(&runtime, url, count, resume_from) {
                    Ok(elapsed) => serde_json::json!({
                        "msgs_per_s": count as f64 / elapsed.as_secs_f64(),
                        "elapsed_s": elapsed.as_secs_f64(),
                    }),
                    Err(error) => serde_json::json!({ "error": error }),
                }
            }
            _ => {
                serde_json::json!({ "error": format!("expected `COUNT RESUME_FROM`, got {line:?}") })
            }
        };
        if writeln!(out, "{answer}")
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
    }
    std::process::ExitCode::SUCCESS
}

/// One timed replay of `--inbound-reader`: the time from creating the socket (outside
/// `runtime`) to the `count`-th message in hand, or what went wrong.
fn replay(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    count: u64,
    resume_from: u64,
) -> Result<Duration, String> {
    let started = Instant::now();
    let mut config = SocketConfig::new(url);
    config.engine.resume.initial = steadyws::ResumeCursor {
        last_seq: Some(resume_from),
        last_ts: None,
    };
    let socket = Socket::new(config).map_err(|e| format!("socket: {e}"))?;
    socket.connect();
    let last = runtime.block_on(read(&socket, count))?;
    let elapsed = started.elapsed();
    socket.close();
    // Outside the timing: the last one is the last published.
    let want = format!(r#"{{"n":{},"text":"hello"}}"#, count - 1);
    match last {
        steadyws::Payload::Json(json) if json == want => Ok(elapsed),
        other => Err(format!("last message {other:?}, expected {want}")),
    }
}

/// The messages of `socket` up to the `count`-th, whose content it returns; fails unless their
/// seq runs 1…`count` with nothing between them but the state changes of one connection.
async fn read(socket: &Socket, count: u64) -> Result<steadyws::Payload, String> {
    let deadline = tokio::time::Instant::now() + REPLAY_BOUND;
    let mut expected = 1u64;
    loop {
        let batch = tokio::time::timeout_at(deadline, socket.next_events(256))
            .await
            .map_err(|_| {
                format!(
                    "{count} messages not received within {REPLAY_BOUND:?} (got {})",
                    expected - 1
                )
            })?;
        if batch.is_empty() {
            return Err(format!("the socket ended after {} messages", expected - 1));
        }
        for event in batch {
            match event {
                Event::Message(message) => {
                    if message.seq != Some(expected) {
                        let seq = message.seq.map_or("none".into(), |s| s.to_string());
                        return Err(format!("message {expected} expected, got seq {seq}"));
                    }
                    expected += 1;
                    if expected > count {
                        return Ok(message.data);
                    }
                }
                Event::StateChanged {
                    state: State::Connecting { .. } | State::Open,
                    ..
                } => {}
                other => {
                    return Err(format!(
                        "unexpected event {other:?} after {} messages",
                        expected - 1
                    ));
                }
            }
        }
    }
}

//! The steadyws demo: a client talks to the embedded reference server through a fault-injecting
//! proxy while the link is cut, blackholed, reset and restored, and every message still arrives
//! exactly once, in order. Run it with `cargo run --example demo`; it ends by itself in ~25 s.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use steadyws::engine::HeartbeatMode;
use steadyws::{Event, Socket, SocketConfig, State};
use steadyws_server::{ServerConfig, start};
use steadyws_tests::fault_proxy::{FaultProxy, Mode};

/// What happens to the link, and when (seconds from the start).
const SCRIPT: &[(f64, &str)] = &[
    (3.0, "cut"),
    (6.0, "restore"),
    (9.0, "blackhole"),
    (13.0, "restore"),
    (15.5, "reset"),
    (17.0, "stop"),
];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let started = Instant::now();
    let log = |line: String| println!("[{:>5.1}s] {line}", started.elapsed().as_secs_f64());

    let server = start(ServerConfig::default())
        .await
        .expect("the embedded server starts");
    let proxy = FaultProxy::start(server.addr())
        .await
        .expect("the fault proxy starts");
    let mut config = SocketConfig::new(format!("ws://{}/ws", proxy.addr()));
    // A quicker heartbeat than the phone-friendly default (10 s + 5 s) so the demo stays short.
    config.engine.heartbeat = HeartbeatMode::JsonPing {
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
    };
    config.engine.backoff.max = Duration::from_secs(2);
    let socket = Socket::new(config).expect("valid configuration");
    log(format!(
        "server on ws://{}, client connects through the fault proxy at {}",
        server.addr(),
        proxy.addr()
    ));
    socket.connect();
    // The stream a client follows starts when it first connects (the server's `hello`); the
    // server starts publishing once it is there.
    while !matches!(
        socket.next_event().await,
        Some(Event::StateChanged {
            state: State::Open,
            ..
        }) | None
    ) {}
    log("state: open".into());

    let mut sent = Vec::new();
    let mut acked: HashMap<String, usize> = HashMap::new();
    let mut received: Vec<(u64, String)> = Vec::new();
    let mut script = SCRIPT.iter().peekable();
    let mut sending = true;
    let mut next_send = Instant::now();
    let mut next_push = Instant::now();
    let mut pushes = 0u64;
    let deadline = started + Duration::from_secs(50);

    loop {
        let elapsed = started.elapsed().as_secs_f64();
        while let Some((_, action)) = script.next_if(|(at, _)| elapsed >= *at) {
            match *action {
                "cut" => {
                    proxy.set_mode(Mode::Down);
                    log("LINK CUT: connections reset, new ones refused".into());
                }
                "blackhole" => {
                    proxy.set_mode(Mode::Blackhole);
                    log("LINK BLACKHOLED: the socket stays 'open' but nothing gets through".into());
                }
                "reset" => {
                    proxy.reset_all();
                    log("LINK RESET: TCP RST on the open connection".into());
                }
                "restore" => {
                    proxy.set_mode(Mode::Pass);
                    log("LINK RESTORED".into());
                }
                _ => {
                    sending = false;
                    log(format!(
                        "done sending ({} up, {pushes} pushed by the server); waiting for everything to land",
                        sent.len()
                    ));
                }
            }
        }
        if sending && Instant::now() >= next_send {
            let id = socket
                .send(&format!("{{\"from\":\"client\",\"n\":{}}}", sent.len()))
                .expect("the outbox has room");
            sent.push(id.0);
            next_send += Duration::from_millis(100);
        }
        if sending && Instant::now() >= next_push {
            pushes += 1;
            server
                .publish(&format!("{{\"from\":\"server\",\"n\":{pushes}}}"))
                .expect("in-memory store");
            next_push += Duration::from_millis(250);
        }
        while let Some(event) = socket.try_next_event() {
            match event {
                Event::StateChanged { state, cause } => match cause.problem() {
                    Some(problem) => log(format!("state: {state} ({problem})")),
                    None => log(format!("state: {state}")),
                },
                Event::Acked(id) => *acked.entry(id.0).or_default() += 1,
                Event::Message(message) => {
                    received.push((
                        message.seq.unwrap_or_default(),
                        message.id.unwrap_or_default(),
                    ));
                }
                Event::SendFailed { id, reason, .. } => {
                    log(format!("send failed: {id} {reason:?}"))
                }
                Event::MalformedFrame { reason, .. } => log(format!("malformed frame: {reason}")),
                Event::ServerError { code, message } => {
                    log(format!("server error {code}: {message}"))
                }
                Event::StoreRecovered { problem, .. } => log(format!("store rebuilt: {problem}")),
            }
        }
        let stream_len = server.hub().head() as usize;
        let settled = !sending
            && acked.len() == sent.len()
            && received.len() >= stream_len
            && socket.state() == State::Open;
        if settled || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Up: each client message stored exactly once. Down: each stream message delivered once.
    let stream = server.hub().since(0).messages;
    let mut stored: HashMap<&str, usize> = HashMap::new();
    for message in &stream {
        *stored.entry(message.id.as_str()).or_default() += 1;
    }
    let copies = |id: &String| stored.get(id.as_str()).copied().unwrap_or(0);
    let lost_up = sent.iter().filter(|id| copies(id) == 0).count();
    let dup_up = sent
        .iter()
        .map(|id| copies(id).saturating_sub(1))
        .sum::<usize>()
        + acked.values().map(|n| n - 1).sum::<usize>();
    let stored_up = sent.len() - lost_up;
    let received_seqs: Vec<u64> = received.iter().map(|(seq, _)| *seq).collect();
    let unique_down: HashSet<u64> = received_seqs.iter().copied().collect();
    let lost_down = stream.len()
        - stream
            .iter()
            .filter(|m| unique_down.contains(&m.seq))
            .count();
    let dup_down = received_seqs.len() - unique_down.len();
    let in_order = received_seqs.windows(2).all(|w| w[0] < w[1]);
    let stats = socket.stats();
    log(format!(
        "reconnects={} messages written={} (resends included) acked={} last RTT={}",
        stats.reconnects,
        stats.messages_written,
        stats.messages_acked,
        stats
            .last_rtt
            .map_or("n/a (the link was never idle)".into(), |rtt| format!(
                "{} ms",
                rtt.as_millis()
            ))
    ));
    let (lost, duplicated) = (lost_up + lost_down, dup_up + dup_down);
    println!(
        "summary: sent={} delivered={} lost={lost} duplicated={duplicated} in_order={in_order} (up: {} sent, {} stored; down: {} published, {} received)",
        sent.len() + stream.len(),
        stored_up + received_seqs.len(),
        sent.len(),
        stored_up,
        stream.len(),
        received_seqs.len(),
    );
    server.shutdown().await;
    if lost == 0 && duplicated == 0 && in_order {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

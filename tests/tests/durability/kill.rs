//! SIGKILL: a client process (`durable-client`) is killed at random moments and restarted on the
//! same store. Outbound, every message whose `send` had returned reaches the server exactly once,
//! in send order; inbound, the app sees every message, and sees one again only when it was in
//! hand at a kill, flagged as redelivered.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use steadyws::engine::{Random, SplitMix64};
use steadyws_server::{ServerConfig, start};
use steadyws_tests::chaos::read_stream;
use steadyws_tests::client_process::ClientProcess;
use steadyws_tests::support::*;

fn client(args: &[&str]) -> ClientProcess {
    ClientProcess::start(Path::new(env!("CARGO_BIN_EXE_durable-client")), args)
}

/// A random pause between `min_ms` and `max_ms`.
fn pause(random: &mut SplitMix64, min_ms: u64, max_ms: u64) -> Duration {
    Duration::from_millis(min_ms + random.next_u64() % (max_ms - min_ms))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_survive_twenty_sigkills_exactly_once_in_order() {
    const TOTAL: u64 = 2000;
    const KILLS: usize = 20;
    let server = start(ServerConfig::default()).await.unwrap();
    let url = server.url();
    let dir = TempDir::new("kill-send");
    let dir_path = dir.path().display().to_string();
    let mut random = SplitMix64::new(20_261_201);
    let mut sent: Vec<(String, u64)> = Vec::new();
    let mut kills = 0;
    let mut next = 0;
    loop {
        let (from, to) = (next.to_string(), TOTAL.to_string());
        let run = client(&["send", &url, &dir_path, "app", &from, &to, "2"]);
        if kills < KILLS {
            tokio::time::sleep(pause(&mut random, 20, 300)).await;
            kills += 1;
        } else {
            assert!(
                run.wait_for_line("done", Duration::from_secs(60)).await,
                "the last run never finished"
            );
        }
        let mut done = false;
        for (line, _) in run.kill() {
            match line.split(' ').collect::<Vec<_>>().as_slice() {
                ["sent", id, n] => {
                    let n: u64 = n.parse().unwrap();
                    sent.push(((*id).to_owned(), n));
                    next = n + 1;
                }
                ["done"] => done = true,
                ["got", ..] => {}
                other => panic!("unexpected line {other:?}"),
            }
        }
        if done {
            break;
        }
    }
    assert_eq!(kills, KILLS);
    assert_eq!(next, TOTAL);

    let stream = read_stream(server.addr()).await;
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (_, id) in &stream {
        *count.entry(id.as_str()).or_default() += 1;
    }
    let lost: Vec<_> = sent
        .iter()
        .filter(|(id, _)| !count.contains_key(id.as_str()))
        .collect();
    let twice: Vec<_> = sent
        .iter()
        .filter(|(id, _)| count.get(id.as_str()) > Some(&1))
        .collect();
    assert!(
        lost.is_empty(),
        "{} returned sends missing, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(twice.is_empty(), "stored twice: {twice:?}");
    let position: HashMap<&str, usize> = stream
        .iter()
        .enumerate()
        .map(|(i, (_, id))| (id.as_str(), i))
        .collect();
    let order: Vec<usize> = sent.iter().map(|(id, _)| position[id.as_str()]).collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "stored out of send order"
    );
    println!(
        "{} sends returned across {KILLS} SIGKILLs; the server holds each once, in order ({} stream messages in all)",
        sent.len(),
        stream.len()
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn received_messages_survive_ten_sigkills_and_only_the_one_in_hand_comes_again() {
    const TOTAL: usize = 1000;
    const KILLS: usize = 10;
    let server = Arc::new(start(ServerConfig::default()).await.unwrap());
    let url = server.url();
    let dir = TempDir::new("kill-receive");
    let dir_path = dir.path().display().to_string();
    let mut random = SplitMix64::new(20_261_202);

    let args = ["receive", url.as_str(), dir_path.as_str(), "app"];
    let mut run = client(&args);
    // The first run starts from the server's position when it connects: publish after that.
    let deadline = Instant::now() + WAIT;
    while server.connections() == 0 {
        assert!(Instant::now() < deadline, "the client never connected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let publisher = {
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..TOTAL {
                let seq = server.publish(&n.to_string()).unwrap();
                ids.push(format!("srv-{seq}"));
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            ids
        })
    };

    let mut runs: Vec<Vec<String>> = Vec::new();
    let lines = |printed: Vec<(String, Instant)>| -> Vec<String> {
        printed.into_iter().map(|(line, _)| line).collect()
    };
    for _ in 0..KILLS {
        tokio::time::sleep(pause(&mut random, 100, 500)).await;
        runs.push(lines(run.kill()));
        run = client(&args);
    }
    let published = publisher.await.unwrap();
    // The last run gets the rest.
    let taken_id = |line: &String| line.split(' ').nth(1).unwrap_or_default().to_owned();
    let earlier: HashSet<String> = runs.iter().flatten().map(taken_id).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let live: HashSet<String> = run
            .lines_so_far()
            .into_iter()
            .map(|(line, _)| taken_id(&line))
            .collect();
        if published
            .iter()
            .all(|id| earlier.contains(id) || live.contains(id))
            || Instant::now() > deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A little longer, so a stray duplicate would show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    runs.push(lines(run.kill()));

    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut repeats = 0;
    for (run, lines) in runs.iter().enumerate() {
        for (i, line) in lines.iter().enumerate() {
            let [_, id, _, flag] = line.split(' ').collect::<Vec<_>>()[..] else {
                panic!("unexpected line {line:?}");
            };
            let times = seen.entry(id.to_owned()).or_default();
            *times += 1;
            if *times > 1 {
                repeats += 1;
                assert_eq!(flag, "1", "run {run}: {id} came again unflagged");
                assert_eq!(
                    i, 0,
                    "run {run}: a repeat other than the message in hand at the kill"
                );
                // The last message taken before the kill (a run killed before it took
                // anything leaves the one in hand as it was).
                let previous = runs[..run]
                    .iter()
                    .rev()
                    .find_map(|lines| lines.last())
                    .map(String::as_str)
                    .unwrap_or("");
                assert!(
                    previous.contains(id),
                    "run {run}: {id} was not the last taken before the kill"
                );
            }
        }
    }
    let missing: Vec<_> = published
        .iter()
        .filter(|id| !seen.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} never reached the app, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(repeats <= KILLS);
    println!(
        "{TOTAL} messages across {KILLS} SIGKILLs: all taken, {repeats} taken again (each flagged, each the one in hand at a kill)"
    );
}

/// Exit code of `durable-client open` on the store: 0 opened, 3 in use.
fn open_elsewhere(dir: &TempDir) -> i32 {
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_durable-client"))
        .args(["open", &dir.path().display().to_string(), "app"])
        .status()
        .expect("run durable-client");
    status.code().unwrap_or(-1)
}

#[tokio::test]
async fn another_process_can_open_the_store_while_the_socket_is_in_the_background() {
    let dir = TempDir::new("background-process");
    let mut config = quick("ws://127.0.0.1:9/ws");
    config.store = Some(steadyws::StoreConfig::new(dir.path(), "app"));
    let socket = steadyws::Socket::new(config).unwrap();
    socket.send("1").unwrap();
    assert_eq!(open_elsewhere(&dir), 3, "in use while in the foreground");
    socket.set_app_state(steadyws::AppState::Background);
    let deadline = Instant::now() + WAIT;
    while open_elsewhere(&dir) != 0 {
        assert!(Instant::now() < deadline, "still locked in the background");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    socket.set_app_state(steadyws::AppState::Foreground);
    let deadline = Instant::now() + WAIT;
    while open_elsewhere(&dir) != 3 {
        assert!(
            Instant::now() < deadline,
            "not held again in the foreground"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(socket.pending().len(), 1);
}

//! The kit judged against servers whose conformance is known: the reference server passes every
//! item, each deliberately broken server fails exactly its items, and what is not a steadyws
//! server gets one line and a bounded wait.

#[path = "support/faulty_server.rs"]
mod faulty_server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use faulty_server::{Fault, FaultyServer};
use futures_util::{SinkExt, StreamExt};
use steadyws_conformance::{Options, Outcome, RestartHook, Verdict};
use steadyws_server::{RunningServer, ServerConfig, TlsFiles};
use steadyws_tests::pki::TestCa;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

/// No run may take longer than this, whatever the server does.
const BOUND: Duration = Duration::from_secs(60);

async fn check(options: Options) -> Outcome {
    tokio::time::timeout(BOUND, steadyws_conformance::run(&options))
        .await
        .expect("the kit finishes within its bound")
}

fn failed(outcome: &Outcome) -> Vec<&'static str> {
    let Outcome::Checked(items) = outcome else {
        panic!("expected items, got {outcome:?}");
    };
    items
        .iter()
        .filter(|item| matches!(item.verdict, Verdict::Fail(_)))
        .map(|item| item.name)
        .collect()
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("steadyws-kit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The reference server at a fixed address, restarted (shut down, started again on the same
/// address and data) by the hook the kit is given.
struct Restartable {
    server: Arc<Mutex<Option<RunningServer>>>,
    url: String,
}

impl Restartable {
    async fn start(config: ServerConfig) -> (Restartable, RestartHook) {
        let server = steadyws_server::start(config.clone()).await.unwrap();
        let url = server.url();
        let addr: SocketAddr = url
            .trim_start_matches("ws://")
            .trim_end_matches("/ws")
            .parse()
            .unwrap();
        let shared = Arc::new(Mutex::new(Some(server)));
        let held = Arc::clone(&shared);
        let hook: RestartHook = Arc::new(move || {
            let held = Arc::clone(&held);
            let config = ServerConfig {
                listen: addr,
                ..config.clone()
            };
            Box::pin(async move {
                let mut slot = held.lock().await;
                if let Some(running) = slot.take() {
                    running.shutdown().await;
                }
                let restarted = steadyws_server::start(config).await;
                *slot = Some(restarted.map_err(|e| e.to_string())?);
                Ok(())
            })
        });
        let server = shared;
        (Restartable { server, url }, hook)
    }

    async fn shutdown(self) {
        if let Some(server) = self.server.lock().await.take() {
            server.shutdown().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_server_passes_every_item() {
    let data = scratch_dir("reference");
    let mut config = ServerConfig {
        data_dir: Some(data.clone()),
        require_token: Some("kit-token".into()),
        max_message_size: 64 * 1024,
        max_connections: 8,
        ..ServerConfig::default()
    };
    config.retention.history_max = 20;
    let (server, hook) = Restartable::start(config).await;
    let mut options = Options::new(&server.url);
    options.token = Some("kit-token".into());
    options.max_message_size = Some(64 * 1024);
    options.history = Some(20);
    options.max_connections = Some(8);
    options.restart = Some(hook);
    let outcome = check(options).await;
    print!("{}", outcome.table(&server.url));
    let Outcome::Checked(items) = &outcome else {
        panic!("{outcome:?}");
    };
    let not_passed: Vec<_> = items
        .iter()
        .filter(|i| i.verdict != Verdict::Pass)
        .collect();
    assert!(not_passed.is_empty(), "{not_passed:#?}");
    assert_eq!(items.len(), 23, "every item was judged");
    assert_eq!(outcome.exit_code(), 0);
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_broken_server_fails_exactly_its_items() {
    let cases: [(Fault, &[&str]); 10] = [
        (Fault::None, &[]),
        (Fault::NoHello, &["hello_first"]),
        (Fault::AckBeforeStore, &["ack_after_store"]),
        (
            Fault::GlobalDedup,
            &["id_conflict_other_data", "id_conflict_other_sender"],
        ),
        (
            Fault::NoDedup,
            &[
                "resend_acked_again",
                "id_conflict_other_data",
                "id_conflict_other_sender",
                "stored_once",
            ],
        ),
        (Fault::TsInSeconds, &["numbers_in_range"]),
        (Fault::SeqGaps, &["seq_consecutive"]),
        (
            Fault::ReplayAfterLive,
            &["replay_before_live", "seq_strictly_increasing"],
        ),
        (Fault::PongOtherTs, &["json_ping_answered"]),
        // Non-portable data is a bad envelope too: closed on, not refused with its id.
        (
            Fault::CloseOnBadEnvelope,
            &["bad_envelopes_answered", "non_portable_data_refused"],
        ),
    ];
    for (fault, expected) in cases {
        let server = FaultyServer::start(fault).await;
        let outcome = check(Options::new(server.url())).await;
        let table = outcome.table(&server.url());
        assert_eq!(failed(&outcome), expected, "{fault:?}:\n{table}");
        assert_eq!(outcome.exit_code(), u8::from(!expected.is_empty()));
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_forgets_on_restart_fails_the_restart_item() {
    // The reference server without a data directory keeps its stream in memory.
    let (server, hook) = Restartable::start(ServerConfig::default()).await;
    let mut options = Options::new(&server.url);
    options.restart = Some(hook);
    let outcome = check(options).await;
    assert_eq!(
        failed(&outcome),
        ["acked_survive_restart"],
        "{}",
        outcome.table(&server.url)
    );
    server.shutdown().await;
}

/// Serves every connection with `serve`, until the test ends.
async fn tcp_server<F, Fut>(serve: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve(tcp));
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_a_steadyws_server_gets_one_line() {
    let unused = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = format!("ws://{}/ws", unused.local_addr().unwrap());
    drop(unused);
    let http = tcp_server(|mut tcp| async move {
        let mut request = [0u8; 1024];
        let _ = tcp.read(&mut request).await;
        let _ = tcp
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await;
    })
    .await;
    let silent = tcp_server(|tcp| async move {
        tokio::time::sleep(Duration::from_secs(20)).await;
        drop(tcp);
    })
    .await;
    let echo = tcp_server(|tcp| async move {
        let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
            return;
        };
        while let Some(Ok(message)) = ws.next().await {
            if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                return;
            }
        }
    })
    .await;

    let mut options = Options::new(&closed);
    options.wait = Duration::from_secs(1);
    let cases = [
        (closed.clone(), "cannot reach the server"),
        (http, "answered HTTP 200 instead of 101"),
        (silent, "no WebSocket upgrade within 1000 ms"),
        ("wss://127.0.0.1:1/ws".into(), "cannot reach the server"),
        ("http://127.0.0.1:1/ws".into(), "scheme is http:"),
        ("not a url".into(), "is not a URL"),
    ];
    for (url, says) in cases {
        options.url = url.clone();
        let outcome = check(options.clone()).await;
        let line = outcome.table(&url);
        assert!(
            matches!(&outcome, Outcome::CannotRun(why) if why.contains(says)),
            "{url}: {line}"
        );
        assert_eq!(line.lines().count(), 1, "{line}");
        assert_eq!(outcome.exit_code(), 2);
    }
    options.url = echo.clone();
    let outcome = check(options).await;
    assert!(
        matches!(&outcome, Outcome::NotSteadyws(why) if why.contains("no hello, no pong")),
        "{outcome:?}"
    );
    assert_eq!(outcome.table(&echo).lines().count(), 1);
    assert_eq!(outcome.exit_code(), 1);
}

#[test]
fn the_command_prints_json_and_exits_by_the_verdict() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let kit = env!("CARGO_BIN_EXE_steadyws-conformance");
    let run = |args: &[&str]| {
        let output = std::process::Command::new(kit).args(args).output().unwrap();
        let json = serde_json::from_slice::<serde_json::Value>(&output.stdout).ok();
        (output.status.code(), json, output)
    };

    let good = runtime.block_on(FaultyServer::start(Fault::None));
    let (code, json, output) = run(&[&good.url(), "--json"]);
    let json = json.unwrap_or_else(|| panic!("{output:?}"));
    assert_eq!(code, Some(0), "{json:#}");
    assert_eq!(json["outcome"], "pass");
    assert_eq!(json["failed"], 0);
    let item = &json["items"][0];
    assert_eq!(item["name"], "hello_first");
    assert_eq!(
        item["link"],
        "docs/protocol.md#4-session-start-hello-replay-live"
    );

    let bad = runtime.block_on(FaultyServer::start(Fault::PongOtherTs));
    let (code, json, output) = run(&[&bad.url(), "--json"]);
    let json = json.unwrap_or_else(|| panic!("{output:?}"));
    assert_eq!(code, Some(1), "{json:#}");
    assert_eq!(json["failed"], 1);
    let failure = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["verdict"] == "fail")
        .unwrap();
    assert_eq!(failure["name"], "json_ping_answered");
    assert!(
        failure["evidence"][0]
            .as_str()
            .unwrap()
            .contains(r#""ts":4243"#),
        "{failure:#}"
    );

    let (code, _, output) = run(&[&bad.url(), "--history", "lots"]);
    assert_eq!(code, Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--history takes a whole number"));
    runtime.block_on(good.shutdown());
    runtime.block_on(bad.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_takes_more_than_its_stated_cap_fails_the_cap_item() {
    let server = steadyws_server::start(ServerConfig::default())
        .await
        .unwrap();
    let mut options = Options::new(server.url());
    // The server takes 1000; told 4, the kit finds a fifth connection accepted.
    options.max_connections = Some(4);
    let outcome = check(options).await;
    assert_eq!(
        failed(&outcome),
        ["full_server_asks_to_retry"],
        "{}",
        outcome.table(&server.url())
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_wss_the_kit_trusts_the_ca_it_is_given_and_says_when_it_needs_one() {
    let dir = scratch_dir("wss");
    let ca = TestCa::new();
    let (cert, key) = ca.leaf(&["localhost"]).write_to(&dir);
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca.cert_pem).unwrap();
    let server = steadyws_server::start(ServerConfig {
        tls: Some(TlsFiles { cert, key }),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let url = server.url().replace("127.0.0.1", "localhost");
    let mut options = Options::new(&url);
    options.ca_file = Some(ca_file);
    let outcome = check(options.clone()).await;
    assert!(failed(&outcome).is_empty(), "{}", outcome.table(&url));
    assert_eq!(outcome.exit_code(), 0);

    options.ca_file = None;
    let outcome = check(options).await;
    assert!(
        matches!(&outcome, Outcome::CannotRun(why) if why.contains("TLS handshake failed") && why.contains("--ca")),
        "{outcome:?}"
    );
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

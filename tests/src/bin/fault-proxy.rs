//! `fault-proxy`: the fault-injecting TCP proxy as a program, for manual testing of any client.
//!
//! ```text
//! fault-proxy --upstream 127.0.0.1:8080 [--schedule pass:5,blackhole:12,pass:3,down:3,pass:5]
//!             [--max-seconds 600]
//! ```
//! Listens on a free 127.0.0.1 port and prints it. With `--schedule` it runs the steps and exits;
//! otherwise it reads steps from stdin, one per line (`blackhole:10`, `reset`, `latency:200`,
//! `pass:0`, …), until stdin closes or `--max-seconds` (default 600) pass.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use steadyws_tests::fault_proxy::{FaultProxy, parse_schedule};
use tokio::io::{AsyncBufReadExt, BufReader};

const USAGE: &str =
    "usage: fault-proxy --upstream 127.0.0.1:PORT [--schedule STEPS] [--max-seconds N]";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let Some(upstream) = value("--upstream").and_then(|u| u.parse::<SocketAddr>().ok()) else {
        eprintln!("fault-proxy: --upstream takes ADDR:PORT\n{USAGE}");
        return ExitCode::from(2);
    };
    if !upstream.ip().is_loopback() {
        eprintln!("fault-proxy: the upstream must be a loopback address (127.0.0.1 or ::1)");
        return ExitCode::from(2);
    }
    let schedule = match value("--schedule").map(|s| parse_schedule(&s)).transpose() {
        Ok(schedule) => schedule,
        Err(err) => {
            eprintln!("fault-proxy: {err}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let max = Duration::from_secs(
        value("--max-seconds")
            .and_then(|s| s.parse().ok())
            .unwrap_or(600),
    );
    let proxy = match FaultProxy::start(upstream).await {
        Ok(proxy) => proxy,
        Err(err) => {
            eprintln!("fault-proxy: cannot listen: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("fault-proxy listening on {} -> {upstream}", proxy.addr());
    let run = async {
        if let Some(steps) = schedule {
            for step in &steps {
                println!("step {step:?}");
                proxy.apply(step).await;
            }
            return;
        }
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            match parse_schedule(&line) {
                Ok(steps) => {
                    for step in &steps {
                        proxy.apply(step).await;
                        println!("applied {step:?}");
                    }
                }
                Err(err) => eprintln!("fault-proxy: {err}"),
            }
        }
    };
    if tokio::time::timeout(max, run).await.is_err() {
        println!("fault-proxy: --max-seconds reached");
    }
    ExitCode::SUCCESS
}

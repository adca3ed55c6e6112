//! `chaos`: every fault scenario over real sockets, with exact loss/duplicate/order counts.
//!
//! ```text
//! cargo run --release -p steadyws-tests --bin chaos -- [--json] [--quick] [--only NAME]
//! ```
//! Prints one line per scenario (JSON objects with `--json`), then
//! `{"summary":true,"scenarios":N,"failed":M}`; exits non-zero if any scenario failed.
//! `--quick` halves every fault (about a minute in all); the full profile runs them as specified.

use std::process::ExitCode;

use steadyws_tests::chaos::{self, Profile, SCENARIOS};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The kill scenario needs a server it can SIGKILL: this binary, re-run as the server.
    if args.first().map(String::as_str) == Some("--as-reference-server") {
        return steadyws_server::cli::run(args.into_iter().skip(1));
    }
    // And the client-kill scenario needs a client it can SIGKILL.
    if args.first().map(String::as_str) == Some("--as-durable-client") {
        return steadyws_tests::durable_client::main(&args[1..]);
    }
    let json = args.iter().any(|a| a == "--json");
    let profile = Profile {
        scale: if args.iter().any(|a| a == "--quick") {
            0.5
        } else {
            1.0
        },
    };
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    if let Some(name) = &only
        && !SCENARIOS.contains(&name.as_str())
    {
        eprintln!("chaos: unknown scenario {name:?}; choose one of {SCENARIOS:?}");
        return ExitCode::from(2);
    }
    let self_exe = std::env::current_exe().expect("the path of this binary");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut failed = 0;
    let mut ran = 0;
    if !json {
        println!(
            "{:<36} {:>6} {:>5} {:>4} {:>4} {:>6} {:>5} {:>4} {:>4} {:>9} {:>9}  result",
            "scenario",
            "up",
            "lost",
            "dup",
            "ooo",
            "down",
            "lost",
            "dup",
            "ooo",
            "recovery",
            "detection"
        );
    }
    for name in SCENARIOS
        .iter()
        .filter(|name| only.as_deref().is_none_or(|only| only == **name))
    {
        let outcome = runtime.block_on(chaos::run(name, profile, self_exe.clone()));
        ran += 1;
        failed += usize::from(!outcome.passed);
        if json {
            println!("{}", outcome.to_json());
        } else {
            // Detection is measured only where a scenario requires it.
            let detection = outcome
                .detection_ms
                .map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms"));
            println!(
                "{:<36} {:>6} {:>5} {:>4} {:>4} {:>6} {:>5} {:>4} {:>4} {:>6} ms {:>9}  {}",
                outcome.scenario,
                outcome.sent_up,
                outcome.lost_up,
                outcome.dup_up,
                outcome.reordered_up,
                outcome.sent_down,
                outcome.lost_down,
                outcome.dup_down,
                outcome.reordered_down,
                outcome.recovery_ms,
                detection,
                if outcome.passed { "passed" } else { "FAILED" }
            );
        }
    }
    println!(
        "{}",
        serde_json::json!({ "summary": true, "scenarios": ran, "failed": failed })
    );
    if json {
        eprintln!("chaos: {} passed, {} failed", ran - failed, failed);
    } else {
        println!("chaos: {} passed, {} failed", ran - failed, failed);
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

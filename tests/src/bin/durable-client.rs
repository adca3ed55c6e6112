//! A client process for the durability tests: it sends or receives through a socket with a
//! store and says on stdout what the app saw, line by line and flushed, so a test can SIGKILL
//! it at any moment and still know exactly what had happened.
//!
//! ```text
//! durable-client send    <url> <dir> <name> <from> <to>   sends {"n":from}..{"n":to-1}, one
//!                                                        line `sent <id> <n>` after each send
//!                                                        returns; then waits until nothing is
//!                                                        pending and prints `done`
//! durable-client receive <url> <dir> <name>              prints `got <id> <seq> <0|1>` for each
//!                                                        message taken (1: redelivered)
//! durable-client open    <dir> <name>                    exit 0 if the store opens, 3 if it is
//!                                                        in use, 4 on any other error
//! ```

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use steadyws::{ConfigError, Event, Socket, SocketConfig, StoreConfig, StoreError};
use steadyws_tests::support::quick;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["send", url, dir, name, from, to] => {
            let (from, to) = (from.parse().expect("from"), to.parse().expect("to"));
            runtime.block_on(send(url, dir, name, from, to))
        }
        ["receive", url, dir, name] => runtime.block_on(receive(url, dir, name)),
        ["open", dir, name] => open(dir, name),
        _ => {
            eprintln!("usage: see the module docs of tests/src/bin/durable-client.rs");
            ExitCode::from(2)
        }
    }
}

fn config(url: &str, dir: &str, name: &str) -> SocketConfig {
    let mut config = quick(url);
    config.store = Some(StoreConfig::new(dir, name));
    config
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn send(url: &str, dir: &str, name: &str, from: u64, to: u64) -> ExitCode {
    let socket = std::sync::Arc::new(Socket::new(config(url, dir, name)).expect("socket"));
    socket.connect();
    // Acks arrive by reading: keep the event queue drained.
    let reader = {
        let socket = std::sync::Arc::clone(&socket);
        tokio::spawn(async move { while socket.next_event().await.is_some() {} })
    };
    for n in from..to {
        let id = socket.send(&format!(r#"{{"n":{n}}}"#)).expect("send");
        say(&format!("sent {id} {n}"));
        // A steady stream, so kills land at every stage: before, during and after sends.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for _ in 0..3000 {
        if socket.pending().is_empty() {
            say("done");
            socket.shutdown();
            let _ = reader.await;
            return ExitCode::SUCCESS;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("still pending after 30 s: {:?}", socket.stats());
    ExitCode::FAILURE
}

async fn receive(url: &str, dir: &str, name: &str) -> ExitCode {
    let socket = Socket::new(config(url, dir, name)).expect("socket");
    socket.connect();
    while let Some(event) = socket.next_event().await {
        if let Event::Message(message) = event {
            say(&format!(
                "got {} {} {}",
                message.id.unwrap_or_default(),
                message.seq.unwrap_or_default(),
                u8::from(message.redelivered)
            ));
        }
    }
    ExitCode::SUCCESS
}

fn open(dir: &str, name: &str) -> ExitCode {
    match Socket::new(config("ws://127.0.0.1:9/ws", dir, name)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(ConfigError::Store(StoreError::InUse { .. })) => ExitCode::from(3),
        Err(other) => {
            eprintln!("{other}");
            ExitCode::from(4)
        }
    }
}

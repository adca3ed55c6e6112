//! A client process with a durable store, for the durability tests and the chaos suite: it
//! sends and/or receives and says on stdout what the app saw, one flushed line per event, so a
//! test can SIGKILL it at any moment and still know exactly what had happened.
//!
//! ```text
//! send    <url> <dir> <name> <from> <to> <pace_ms>   sends {"n":from}..{"n":to-1}, printing
//!                                                    `sent <id> <n>` once each send returned,
//!                                                    then waits until nothing is pending and
//!                                                    prints `done`; meanwhile prints
//!                                                    `got <id> <seq> <0|1>` for each message
//!                                                    taken (1: flagged redelivered), and goes
//!                                                    on reading until killed
//! receive <url> <dir> <name>                         only the `got` lines
//! open    <dir> <name>                               exit 0 if the store opens, 3 if it is in
//!                                                    use, 4 on any other error
//! ```

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use steadyws::{Error, Event, Socket, SocketConfig, StoreConfig, StoreError};

use crate::support::quick;

/// Run with the arguments after the program name.
pub fn main(args: &[String]) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let number = |s: &str| s.parse::<u64>().expect("a number");
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["send", url, dir, name, from, to, pace] => runtime.block_on(send(
            url,
            dir,
            name,
            number(from)..number(to),
            Duration::from_millis(number(pace)),
        )),
        ["receive", url, dir, name] => runtime.block_on(receive(url, dir, name)),
        ["open", dir, name] => open(dir, name),
        _ => {
            eprintln!("usage: see the module docs of tests/src/durable_client.rs");
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

/// Print every message the app takes, until the socket ends.
async fn read(socket: Arc<Socket>) {
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
}

async fn send(
    url: &str,
    dir: &str,
    name: &str,
    numbers: std::ops::Range<u64>,
    pace: Duration,
) -> ExitCode {
    let socket = Arc::new(Socket::new(config(url, dir, name)).expect("socket"));
    socket.connect();
    // Acks arrive by reading: the reader keeps the event queue drained.
    let reader = tokio::spawn(read(Arc::clone(&socket)));
    for n in numbers {
        let id = socket.send(&format!(r#"{{"n":{n}}}"#)).expect("send");
        say(&format!("sent {id} {n}"));
        tokio::time::sleep(pace).await;
    }
    for _ in 0..3000 {
        if socket.pending().is_empty() {
            say("done");
            let _ = reader.await;
            return ExitCode::SUCCESS;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("still pending after 30 s: {:?}", socket.stats());
    ExitCode::FAILURE
}

async fn receive(url: &str, dir: &str, name: &str) -> ExitCode {
    let socket = Arc::new(Socket::new(config(url, dir, name)).expect("socket"));
    socket.connect();
    read(socket).await;
    ExitCode::SUCCESS
}

fn open(dir: &str, name: &str) -> ExitCode {
    match Socket::new(config("ws://127.0.0.1:9/ws", dir, name)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(Error::Store(StoreError::InUse { .. })) => ExitCode::from(3),
        Err(other) => {
            eprintln!("{other}");
            ExitCode::from(4)
        }
    }
}

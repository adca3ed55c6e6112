//! The command line of the reference server (the `steadyws-server` binary).
//!
//! ```text
//! steadyws-server [--listen 127.0.0.1:8080] [--data-dir DIR] [--tls-cert PEM --tls-key PEM]
//!                 [--history N] [--history-age SECS] [--history-bytes BYTES]
//!                 [--max-message-size BYTES] [--ping-interval SECS] [--require-token TOKEN]
//!                 [--allow-origin ORIGIN]... [--handshake-timeout SECS] [--max-handshakes N]
//!                 [--max-connections N] [--idle-timeout SECS] [--send-timeout SECS]
//!                 [--fanout on|off] [--no-hello]
//! ```
//! Prints `listening on ws://ADDR` on stdout once bound, then serves until killed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::{ServerConfig, TlsFiles};

const USAGE: &str = "usage: steadyws-server [--listen ADDR:PORT] [--data-dir DIR] [--tls-cert PEM --tls-key PEM] \
[--history N] [--history-age SECS] [--history-bytes BYTES] [--max-message-size BYTES] [--ping-interval SECS] \
[--require-token TOKEN] [--allow-origin ORIGIN]... [--handshake-timeout SECS] [--max-handshakes N] \
[--max-connections N] [--idle-timeout SECS] [--send-timeout SECS] [--fanout on|off] [--no-hello]

--no-hello sends no hello frame at session start, to test clients against minimal servers.";

/// Parse `std::env::args`, start the server, print `listening on URL`, serve until killed.
pub fn main() -> ExitCode {
    run(std::env::args().skip(1))
}

/// [`main`] with explicit arguments (without the program name), for binaries that embed the
/// server as one of their modes.
pub fn run(args: impl Iterator<Item = String>) -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = match parse(args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("steadyws-server: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        match crate::start(config).await {
            Ok(server) => {
                println!("listening on {}", server.url());
                std::future::pending::<()>().await;
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("steadyws-server: cannot start: {err}");
                ExitCode::FAILURE
            }
        }
    })
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<ServerConfig, String> {
    let mut config = ServerConfig::default();
    let (mut cert, mut key) = (None, None);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err("help".into());
        }
        if flag == "--no-hello" {
            config.hello = false;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |value: &str| {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag} takes a whole number, not {value:?}"))
        };
        let positive = |value: &str| match number(value)? {
            0 => Err(format!("{flag} must be at least 1")),
            n => Ok(n),
        };
        let seconds = |value: &str| positive(value).map(Duration::from_secs);
        match flag.as_str() {
            "--listen" => {
                config.listen = value.parse().map_err(|_| {
                    format!("--listen takes ADDR:PORT such as 127.0.0.1:8080, not {value:?}")
                })?;
            }
            "--data-dir" => config.data_dir = Some(PathBuf::from(value)),
            "--tls-cert" => cert = Some(PathBuf::from(value)),
            "--tls-key" => key = Some(PathBuf::from(value)),
            "--history" => config.retention.history_max = number(&value)? as usize,
            "--history-age" => {
                config.retention.history_max_age = Duration::from_secs(number(&value)?)
            }
            "--max-message-size" => config.max_message_size = number(&value)? as usize,
            "--history-bytes" => config.retention.history_max_bytes = number(&value)? as usize,
            "--ping-interval" => config.ping_interval = Some(seconds(&value)?),
            "--require-token" => config.require_token = Some(value),
            "--allow-origin" => config.allowed_origins.push(value),
            "--handshake-timeout" => config.handshake_timeout = seconds(&value)?,
            "--max-handshakes" => config.max_handshakes = positive(&value)? as usize,
            "--max-connections" => config.max_connections = positive(&value)? as usize,
            "--idle-timeout" => config.idle_timeout = seconds(&value)?,
            "--send-timeout" => config.send_timeout = seconds(&value)?,
            "--fanout" => {
                config.fanout = match value.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => return Err(format!("--fanout takes on or off, not {value:?}")),
                }
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    config.tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<ServerConfig, String> {
        parse(args.iter().map(|arg| arg.to_string()))
    }

    #[test]
    fn no_hello_is_a_flag_without_a_value() {
        assert!(parse_args(&[]).unwrap().hello);
        let config = parse_args(&["--no-hello", "--max-message-size", "2048"]).unwrap();
        assert!(!config.hello);
        assert_eq!(config.max_message_size, 2048);
        let config = parse_args(&["--fanout", "off", "--no-hello"]).unwrap();
        assert!(!config.hello && !config.fanout);
        assert!(USAGE.contains("--no-hello"));
    }
}

//! What the kit is told about the server under test: its URL, and the options that let it check
//! the items a server only shows when it can be made to (a token, a size limit, a history
//! bound, a way to restart it).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Kills and restarts the server, keeping its data; resolves once the command has returned.
pub type RestartHook =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// Everything a run needs.
#[derive(Clone)]
pub struct Options {
    /// The server's envelope endpoint, `ws://host:port/path` (its query is kept).
    pub url: String,
    /// For `wss://`: a PEM file of the CA that signed the server's certificate, trusted besides
    /// the usual web roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// The server requires `Authorization: Bearer TOKEN` (checked: an upgrade without it is
    /// refused).
    pub token: Option<String>,
    /// The server's inbound message limit in bytes (checked: a larger message is refused).
    pub max_message_size: Option<usize>,
    /// The server's cap on open connections (checked: past it, a 503 with `Retry-After`).
    pub max_connections: Option<usize>,
    /// How many messages the server keeps for replay (checked: an older cursor gets
    /// `replay_truncated`); the kit writes this many messages and one more.
    pub history: Option<usize>,
    /// Kills and restarts the server (checked: acked messages survive, resends are stored once).
    pub restart: Option<RestartHook>,
    /// The bound on every wait for a frame.
    pub wait: Duration,
    /// Print JSON instead of the table.
    pub json: bool,
}

impl Options {
    /// Options for `url` with nothing optional set.
    pub fn new(url: impl Into<String>) -> Options {
        Options {
            url: url.into(),
            ca_file: None,
            token: None,
            max_message_size: None,
            max_connections: None,
            history: None,
            restart: None,
            wait: Duration::from_secs(3),
            json: false,
        }
    }
}

/// The command line's help.
pub const USAGE: &str = "\
usage: steadyws-conformance URL [options]

Connects to a running server and checks, item by item, whether it keeps the steadyws envelope
protocol (docs/protocol.md). Point it at a test stream: it stores messages of its own there.

  URL                        the envelope endpoint, e.g. ws://127.0.0.1:8080/ws or wss://…
  --ca FILE                  for wss://: the PEM certificate of a private CA to trust
  --token TOKEN              the server requires `Authorization: Bearer TOKEN`
  --max-message-size BYTES   the server's inbound message limit
  --max-connections N        the server's cap on open connections (the kit opens N + 1)
  --history N                how many messages the server keeps for replay (the kit writes N + 1)
  --restart-cmd CMD          a shell command that kills the server and starts it again with its
                             data (run with `sh -c`; the kit waits for it to return)
  --wait-ms MS               the bound on every wait for a frame (default 3000)
  --json                     print JSON instead of a table

Exit code: 0 when every tested item passes, 1 when one fails, 2 when the kit cannot run.";

/// Parse the command line (without the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut args = args.into_iter();
    let mut url = None;
    let mut options = Options::new("");
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--token" => options.token = Some(value("--token")?),
            "--ca" => options.ca_file = Some(value("--ca")?.into()),
            "--max-message-size" => {
                options.max_message_size = Some(number(&value("--max-message-size")?, &arg)?)
            }
            "--max-connections" => {
                options.max_connections = Some(number(&value("--max-connections")?, &arg)?)
            }
            "--history" => options.history = Some(number(&value("--history")?, &arg)?),
            "--restart-cmd" => options.restart = Some(shell_hook(value("--restart-cmd")?)),
            "--wait-ms" => {
                let ms = number(&value("--wait-ms")?, &arg)?;
                if ms == 0 {
                    return Err("--wait-ms must be above 0".into());
                }
                options.wait = Duration::from_millis(ms as u64);
            }
            "--json" => options.json = true,
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ if url.is_some() => return Err(format!("one URL only; {arg} is a second one")),
            _ => url = Some(arg),
        }
    }
    options.url = url.ok_or("the server's URL is missing")?;
    Ok(options)
}

fn number(text: &str, name: &str) -> Result<usize, String> {
    text.parse()
        .map_err(|_| format!("{name} takes a whole number, not {text:?}"))
}

fn shell_hook(command: String) -> RestartHook {
    Arc::new(move || {
        let command = command.clone();
        Box::pin(async move {
            let run = tokio::task::spawn_blocking(move || {
                std::process::Command::new("sh")
                    .arg("-c")
                    .arg(&command)
                    .status()
            });
            match tokio::time::timeout(Duration::from_secs(60), run).await {
                Err(_) => Err("the restart command did not return within 60 s".into()),
                Ok(Err(join)) => Err(join.to_string()),
                Ok(Ok(Err(err))) => Err(format!("cannot run sh: {err}")),
                Ok(Ok(Ok(status))) if status.success() => Ok(()),
                Ok(Ok(Ok(status))) => Err(format!("the restart command failed ({status})")),
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<Options, String> {
        parse(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn options_parse_and_bad_ones_are_named() {
        let options =
            parse_args(&["ws://h/ws", "--token", "t", "--history", "20", "--json"]).unwrap();
        assert_eq!(options.url, "ws://h/ws");
        assert_eq!(options.token.as_deref(), Some("t"));
        assert_eq!(options.history, Some(20));
        assert!(options.json && options.restart.is_none());
        assert_eq!(
            parse_args(&[]).err().unwrap(),
            "the server's URL is missing"
        );
        assert_eq!(
            parse_args(&["ws://h", "--history", "many"]).err().unwrap(),
            "--history takes a whole number, not \"many\""
        );
        assert_eq!(
            parse_args(&["ws://h", "--token"]).err().unwrap(),
            "--token needs a value"
        );
        assert_eq!(
            parse_args(&["ws://h", "--nope"]).err().unwrap(),
            "unknown option --nope"
        );
        assert!(parse_args(&["ws://h", "--wait-ms", "0"]).is_err());
    }
}

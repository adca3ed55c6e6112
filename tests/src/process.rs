//! The reference server as a separate process, so tests can kill it with SIGKILL and restart it
//! on the same port with the same data directory.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `reference-server` process; killed when dropped.
pub struct ServerProcess {
    child: Child,
    /// The envelope endpoint it printed.
    pub url: String,
    /// Its address.
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Start `binary` with `args` plus `--listen listen`, and wait (at most 20 s) for it to print
    /// its URL.
    pub fn start(binary: &Path, listen: SocketAddr, args: &[&str]) -> ServerProcess {
        let mut child = Command::new(binary)
            .args(args)
            .arg("--listen")
            .arg(listen.to_string())
            .env(
                "RUST_LOG",
                std::env::var("STEADYWS_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let started = Instant::now();
        let url = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "{} did not report its address within {:?}",
                    binary.display(),
                    started.elapsed()
                )
            });
        let addr = url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|authority| authority.parse().ok())
            .unwrap_or_else(|| panic!("unexpected URL {url:?}"));
        ServerProcess { child, url, addr }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident memory now, in bytes (Linux).
    pub fn rss_bytes(&self) -> u64 {
        crate::support::rss_bytes(self.pid())
    }

    /// SIGKILL: no shutdown code runs, exactly like a crash.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

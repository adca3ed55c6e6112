//! A `durable-client` process under test: started, read line by line with the time each line
//! arrived, and SIGKILLed at will.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One line the process printed, and when the test read it.
pub type Line = (String, Instant);

/// A running client process and the lines it printed.
pub struct ClientProcess {
    child: Child,
    lines: Arc<Mutex<Vec<Line>>>,
    reader: Option<JoinHandle<()>>,
}

impl ClientProcess {
    /// Start `program` with `args`, reading its stdout.
    pub fn start(program: &Path, args: &[&str]) -> ClientProcess {
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the client process");
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = std::thread::spawn({
            let lines = Arc::clone(&lines);
            move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    lines
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((line, Instant::now()));
                }
            }
        });
        ClientProcess {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// The lines printed so far.
    pub fn lines_so_far(&self) -> Vec<Line> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// SIGKILL it; returns every line it printed before dying.
    pub fn kill(mut self) -> Vec<Line> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.collect()
    }

    /// Wait until it printed a line equal to `line` (at most `limit`); whether it did.
    pub async fn wait_for_line(&self, line: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self
                .lines_so_far()
                .iter()
                .any(|(printed, _)| printed == line)
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    fn collect(&mut self) -> Vec<Line> {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

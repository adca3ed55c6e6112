//! A TCP proxy on 127.0.0.1 that injects the faults real networks produce, controlled at run time:
//! pass, blackhole (connections stay open, nothing is forwarded: a suspended iOS socket or a dead
//! NAT mapping), reset (abort every connection with RST), down (refuse new connections), and a
//! slow link (added latency, bandwidth cap).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Pass,
    /// Accept and keep connections, forward nothing (bytes wait until `Pass`).
    Blackhole,
    /// Reset every connection and refuse new ones (the port is closed).
    Down,
}

struct Control {
    mode: watch::Sender<Mode>,
    /// Bumped by `reset_all`; connections abort when it moves.
    resets: watch::Sender<u64>,
    /// Connections numbered below this forward nothing (see `blackhole_existing`).
    stalled_below: watch::Sender<u64>,
    next_connection: std::sync::atomic::AtomicU64,
    connections: AtomicUsize,
    /// Added one-way delay per forwarded chunk, microseconds.
    latency_us: std::sync::atomic::AtomicU64,
    /// Bandwidth cap per direction and connection, bytes per second (0: none).
    bytes_per_sec: std::sync::atomic::AtomicU64,
    /// Whether the port is bound (false while down, and briefly after).
    listening: std::sync::atomic::AtomicBool,
}

/// A running fault proxy in front of `upstream`.
pub struct FaultProxy {
    addr: SocketAddr,
    control: Arc<Control>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listen on a free loopback port and forward to `upstream`.
    pub async fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let control = Arc::new(Control {
            mode: watch::channel(Mode::Pass).0,
            resets: watch::channel(0).0,
            stalled_below: watch::channel(0).0,
            next_connection: std::sync::atomic::AtomicU64::new(0),
            connections: AtomicUsize::new(0),
            latency_us: std::sync::atomic::AtomicU64::new(0),
            bytes_per_sec: std::sync::atomic::AtomicU64::new(0),
            listening: std::sync::atomic::AtomicBool::new(true),
        });
        let task = tokio::spawn(serve(listener, addr, upstream, Arc::clone(&control)));
        Ok(FaultProxy {
            addr,
            control,
            task,
        })
    }

    /// The proxy's address; point clients here.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switch mode. `Down` also resets every open connection.
    pub fn set_mode(&self, mode: Mode) {
        if mode == Mode::Down {
            self.reset_all();
        }
        if mode != Mode::Down && self.mode() == Mode::Down {
            self.control.listening.store(false, Ordering::SeqCst);
        }
        self.control.mode.send_replace(mode);
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        *self.control.mode.borrow()
    }

    /// Abort every open connection with a TCP reset; the mode is unchanged.
    pub fn reset_all(&self) {
        self.control.resets.send_modify(|n| *n += 1);
    }

    /// Blackhole the connections open now, while new ones pass: the socket an app had before
    /// iOS suspended it is dead, but the network works.
    pub fn blackhole_existing(&self) {
        let next = self.control.next_connection.load(Ordering::SeqCst);
        self.control.stalled_below.send_replace(next);
    }

    /// Wait (at most 2 s) until the port accepts connections again after `Down`.
    pub async fn wait_until_listening(&self) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        while !self.control.listening.load(Ordering::SeqCst)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// Delay every forwarded chunk by `latency` (one way).
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.control
            .latency_us
            .store(latency.as_micros() as u64, Ordering::Relaxed);
    }

    /// Cap each direction of each connection at `bytes_per_sec` (`None`: no cap).
    pub fn set_bandwidth(&self, bytes_per_sec: Option<u64>) {
        self.control
            .bytes_per_sec
            .store(bytes_per_sec.unwrap_or(0), Ordering::Relaxed);
    }

    /// Connections open through the proxy now.
    pub fn connections(&self) -> usize {
        self.control.connections.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.reset_all();
    }
}

async fn serve(
    listener: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    control: Arc<Control>,
) {
    let mut listener = Some(listener);
    let mut modes = control.mode.subscribe();
    loop {
        // While down the port is closed, so clients get "connection refused" as from a dead host.
        let mode = *modes.borrow_and_update();
        match (&listener, mode) {
            (Some(_), Mode::Down) => {
                listener = None;
                control.listening.store(false, Ordering::SeqCst);
            }
            (None, Mode::Pass | Mode::Blackhole) => match TcpListener::bind(addr).await {
                Ok(bound) => {
                    listener = Some(bound);
                    control.listening.store(true, Ordering::SeqCst);
                }
                Err(err) => {
                    log::warn!("fault proxy cannot re-bind {addr}: {err}");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ => {}
        }
        if listener.is_some() {
            control.listening.store(true, Ordering::SeqCst);
        }
        let accepted = match &listener {
            Some(listener) => tokio::select! {
                accepted = listener.accept() => accepted,
                changed = modes.changed() => {
                    if changed.is_err() { return; }
                    continue;
                }
            },
            None => {
                if modes.changed().await.is_err() {
                    return;
                }
                continue;
            }
        };
        let Ok((client, _)) = accepted else { continue };
        tokio::spawn(relay(client, upstream, Arc::clone(&control)));
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr, control: Arc<Control>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        let _ = client.set_zero_linger();
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    control.connections.fetch_add(1, Ordering::Relaxed);
    let number = control.next_connection.fetch_add(1, Ordering::SeqCst);
    let mut resets = control.resets.subscribe();
    resets.borrow_and_update();
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let gate = || Gate {
        number,
        modes: control.mode.subscribe(),
        stalled_below: control.stalled_below.subscribe(),
        control: Arc::clone(&control),
    };
    let up = forward(&mut client_read, &mut server_write, gate());
    let down = forward(&mut server_read, &mut client_write, gate());
    let reset = tokio::select! {
        _ = async { tokio::join!(up, down) } => false,
        _ = resets.changed() => true,
    };
    control.connections.fetch_sub(1, Ordering::Relaxed);
    if reset {
        // Zero linger turns the close into a RST, as a crashed host or a middlebox would send.
        for stream in [
            client_read.reunite(client_write),
            server_read.reunite(server_write),
        ]
        .into_iter()
        .flatten()
        {
            let _ = stream.set_zero_linger();
        }
    }
}

/// Decides when one connection may forward bytes.
struct Gate {
    number: u64,
    modes: watch::Receiver<Mode>,
    stalled_below: watch::Receiver<u64>,
    control: Arc<Control>,
}

impl Gate {
    /// Hold `n` bytes as a slow link would: the added latency, then the time the cap allows.
    async fn pace(&self, n: usize) {
        let latency = self.control.latency_us.load(Ordering::Relaxed);
        let rate = self.control.bytes_per_sec.load(Ordering::Relaxed);
        // A rate of 0 means no cap.
        let transfer = (n as u64 * 1_000_000).checked_div(rate).unwrap_or(0);
        if latency + transfer > 0 {
            tokio::time::sleep(std::time::Duration::from_micros(latency + transfer)).await;
        }
    }

    /// Wait until bytes may flow; false if the proxy is gone.
    async fn open(&mut self) -> bool {
        loop {
            let passing = *self.modes.borrow_and_update() == Mode::Pass;
            let stalled = self.number < *self.stalled_below.borrow_and_update();
            if passing && !stalled {
                return true;
            }
            // A stalled connection stays stalled until it is reset or closed.
            let changed = tokio::select! {
                changed = self.modes.changed() => changed.is_ok(),
                changed = self.stalled_below.changed() => changed.is_ok(),
            };
            if !changed {
                return false;
            }
        }
    }
}

async fn forward(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    mut gate: Gate,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // While blackholed nothing is read, so bytes pile up in kernel buffers as on a stalled path.
        if !gate.open().await {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        gate.pace(n).await;
        if !gate.open().await || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}

/// One step of a scripted fault schedule.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Switch mode and hold it this long.
    Hold(Mode, std::time::Duration),
    /// Reset every open connection.
    Reset,
    /// Blackhole the connections open now; new ones pass.
    BlackholeExisting,
    /// Added latency from now on.
    Latency(std::time::Duration),
    /// Bandwidth cap from now on (`None`: off).
    Bandwidth(Option<u64>),
}

/// Parse a schedule such as `pass:3,down:2,blackhole:5,reset,latency:100ms,bandwidth:32000,pass:2`.
pub fn parse_schedule(text: &str) -> Result<Vec<Step>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_step)
        .collect()
}

fn parse_step(step: &str) -> Result<Step, String> {
    let (name, value) = step
        .split_once(':')
        .map_or((step, None), |(n, v)| (n, Some(v)));
    let seconds = |value: Option<&str>| {
        let value = value.ok_or_else(|| format!("{step:?}: give a duration, e.g. {name}:5"))?;
        value
            .parse::<f64>()
            .ok()
            .filter(|s| *s >= 0.0 && s.is_finite())
            .map(std::time::Duration::from_secs_f64)
            .ok_or_else(|| format!("{step:?}: {value:?} is not a number of seconds"))
    };
    match name {
        "pass" => Ok(Step::Hold(Mode::Pass, seconds(value)?)),
        "blackhole" => Ok(Step::Hold(Mode::Blackhole, seconds(value)?)),
        "down" => Ok(Step::Hold(Mode::Down, seconds(value)?)),
        "reset" => Ok(Step::Reset),
        "blackhole-existing" => Ok(Step::BlackholeExisting),
        "latency" => {
            let ms = value.and_then(|v| v.trim_end_matches("ms").parse::<u64>().ok());
            ms.map(|ms| Step::Latency(std::time::Duration::from_millis(ms)))
                .ok_or_else(|| format!("{step:?}: use latency:<ms>"))
        }
        "bandwidth" => match value {
            Some("off") => Ok(Step::Bandwidth(None)),
            Some(v) => v
                .parse()
                .map(|b| Step::Bandwidth(Some(b)))
                .map_err(|_| format!("{step:?}: use bandwidth:<bytes per second>|off")),
            None => Err(format!("{step:?}: use bandwidth:<bytes per second>|off")),
        },
        other => Err(format!(
            "unknown step {other:?}: pass, blackhole, down (with seconds), reset, blackhole-existing, latency:<ms>, bandwidth:<B/s>|off"
        )),
    }
}

impl FaultProxy {
    /// Apply one step (waiting out its duration).
    pub async fn apply(&self, step: &Step) {
        match step {
            Step::Hold(mode, duration) => {
                self.set_mode(*mode);
                tokio::time::sleep(*duration).await;
            }
            Step::Reset => self.reset_all(),
            Step::BlackholeExisting => self.blackhole_existing(),
            Step::Latency(latency) => self.set_latency(*latency),
            Step::Bandwidth(cap) => self.set_bandwidth(*cap),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn schedules_parse_and_bad_steps_say_why() {
        assert_eq!(
            parse_schedule("pass:1.5, down:2,reset,latency:100ms,bandwidth:32000,bandwidth:off,blackhole-existing").unwrap(),
            [
                Step::Hold(Mode::Pass, Duration::from_millis(1500)),
                Step::Hold(Mode::Down, Duration::from_secs(2)),
                Step::Reset,
                Step::Latency(Duration::from_millis(100)),
                Step::Bandwidth(Some(32000)),
                Step::Bandwidth(None),
                Step::BlackholeExisting,
            ]
        );
        assert!(
            parse_schedule("pass")
                .unwrap_err()
                .contains("give a duration")
        );
        assert!(
            parse_schedule("explode:1")
                .unwrap_err()
                .contains("unknown step")
        );
        assert!(
            parse_schedule("down:-1")
                .unwrap_err()
                .contains("not a number of seconds")
        );
    }

    #[tokio::test]
    async fn down_refuses_and_pass_forwards_again() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = FaultProxy::start(upstream.local_addr().unwrap())
            .await
            .unwrap();
        proxy
            .apply(&Step::Hold(Mode::Down, Duration::from_millis(50)))
            .await;
        assert!(
            TcpStream::connect(proxy.addr()).await.is_err(),
            "refused while down"
        );
        proxy.set_mode(Mode::Pass);
        proxy.wait_until_listening().await;
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        let (mut server, _) = tokio::time::timeout(Duration::from_secs(5), upstream.accept())
            .await
            .unwrap()
            .unwrap();
        client.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(5), server.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"ping");
    }
}

//! A deterministic world for the engine: a virtual clock, an in-memory network whose link can
//! pass, blackhole, reset or refuse, and a scripted server that stores, acks, dedups, sequences
//! and replays like the reference server does.
//!
//! Each transport is a pair of FIFO pipes with a one-way latency, so frames on one connection
//! keep their order as TCP would; a blackhole holds frames (TCP retransmits) rather than losing
//! them, and only a closed connection discards what is in flight.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Duration;

use steadyws::engine::{
    Config, ConnId, ConnectionError, Engine, Event, Frame, InboundMessage, Instant, MessageId,
    Payload, SendError, SendFailure, SplitMix64, State, Transmit,
};

/// What the link between client and server does to traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Traffic flows after the latency.
    Pass,
    /// Nothing flows; connections stay open and frames wait (a suspended socket, a dead NAT).
    Blackhole,
    /// New connections are refused; existing ones were reset when the link went down.
    Down,
}

/// How the server answers a WebSocket handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// 101 Switching Protocols.
    Accept,
    /// An HTTP error status, with an optional `Retry-After`.
    Reject {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// Never answers the upgrade (a plain HTTP server, or a proxy holding it).
    Hang,
    /// Accepts, then drops the connection at once without a close frame.
    AcceptThenDrop,
    /// Accepts, then closes with this code.
    AcceptThenClose(u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Dir {
    ToServer,
    ToClient,
}

#[derive(Clone, Debug)]
enum Item {
    Upgrade { url: String },
    Opened,
    Failed(ConnectionError),
    Frame(Frame),
    Closed { code: Option<u16>, reason: String },
}

/// A message in the server's stream.
#[derive(Clone, Debug)]
pub struct Pushed {
    pub id: String,
    pub seq: u64,
    pub ts: u64,
    pub data: String,
}

/// The scripted server: durable across restarts (history, seq, acked ids), as with `--data-dir`.
#[derive(Debug)]
pub struct Server {
    pub handshake: Handshake,
    /// Client message payloads stored, in arrival order, each once.
    pub stored: Vec<String>,
    stored_ids: HashSet<String>,
    /// Every message pushed, in seq order.
    pub history: Vec<Pushed>,
    /// Open server-side connections.
    conns: HashSet<ConnId>,
    /// Answer JSON pings (turn off to test servers that don't).
    pub answers_pings: bool,
    /// Hold each ack this long after storing (a slow but alive server); pongs stay immediate.
    pub ack_delay: Duration,
    /// Send `hello` with the stream head after each upgrade.
    pub sends_hello: bool,
    /// On every accept, first resend this many messages at or below the client's cursor, newest
    /// first (a buggy or over-eager replay).
    pub stale_replay: usize,
    /// Refuse connections until this time (process restarting).
    pub down_until: Option<Instant>,
    /// Upgrade URLs seen, in order.
    pub upgrades: Vec<String>,
    /// Client close frames seen: (code, reason).
    pub closes_seen: Vec<(u16, String)>,
    /// WebSocket pings answered.
    pub ws_pings_seen: usize,
}

impl Server {
    fn new() -> Self {
        Server {
            handshake: Handshake::Accept,
            stored: Vec::new(),
            stored_ids: HashSet::new(),
            history: Vec::new(),
            conns: HashSet::new(),
            answers_pings: true,
            ack_delay: Duration::ZERO,
            sends_hello: true,
            stale_replay: 0,
            down_until: None,
            upgrades: Vec::new(),
            closes_seen: Vec::new(),
            ws_pings_seen: 0,
        }
    }
}

/// What the application saw.
#[derive(Debug, Default)]
pub struct AppLog {
    pub events: Vec<(Instant, Event)>,
    pub received: Vec<InboundMessage>,
    pub acked: Vec<MessageId>,
    pub failed: Vec<(MessageId, SendFailure)>,
    pub states: Vec<(Instant, State)>,
    pub lost: Vec<(Instant, ConnectionError)>,
    pub malformed: Vec<String>,
    /// The stream position of the first `hello` the client took as its starting point: what
    /// was published up to there predates this client.
    pub start_seq: Option<u64>,
}

impl AppLog {
    /// Times at which a connection attempt started.
    pub fn attempts_at(&self) -> Vec<Instant> {
        let connecting = |s: &State| matches!(s, State::Connecting { .. });
        self.states
            .iter()
            .filter(|(_, s)| connecting(s))
            .map(|(t, _)| *t)
            .collect()
    }

    /// Payloads received, in delivery order.
    pub fn received_data(&self) -> Vec<String> {
        self.received
            .iter()
            .map(|m| match &m.data {
                Payload::Json(s) | Payload::Text(s) => s.clone(),
                Payload::Binary(b) => format!("{b:?}"),
            })
            .collect()
    }
}

/// The simulated world.
pub struct Sim {
    pub now: Instant,
    pub engine: Engine,
    pub server: Server,
    pub app: AppLog,
    link: Link,
    latency: Duration,
    pipes: BTreeMap<(ConnId, Dir), VecDeque<(Instant, Item)>>,
    /// Connections that can still report to the engine.
    client_alive: HashSet<ConnId>,
    /// Connections the engine asked to close; it must not write on them again.
    client_closed: HashSet<ConnId>,
    /// Every `Transmit::Open` seen.
    pub opens: usize,
    /// `refresh_credentials` of each `Transmit::Open`, in order.
    pub refreshes: Vec<bool>,
    /// Every frame the client wrote: (time, conn, frame).
    pub written: Vec<(Instant, ConnId, Frame)>,
    /// Every close the client asked for: (conn, code).
    pub client_closes: Vec<(ConnId, u16)>,
    /// Times the engine's timer woke it (`handle_timeout` calls): what a phone's battery pays.
    pub wakeups: usize,
    next_push: u64,
    /// Acks the server holds back (`Server::ack_delay`): when each is written, on which
    /// connection.
    held_acks: VecDeque<(Instant, ConnId, Frame)>,
}

/// A hard bound on steps, so a bug cannot hang the test suite.
const MAX_STEPS_PER_RUN: usize = 2_000_000;

impl Sim {
    /// A world with `config`, a 20 ms one-way latency, and a deterministic random seed.
    pub fn new(config: Config, seed: u64) -> Self {
        let engine = Engine::new(config, Box::new(SplitMix64::new(seed))).expect("valid config");
        Sim {
            now: Instant::ZERO,
            engine,
            server: Server::new(),
            app: AppLog::default(),
            link: Link::Pass,
            latency: Duration::from_millis(20),
            pipes: BTreeMap::new(),
            client_alive: HashSet::new(),
            client_closed: HashSet::new(),
            opens: 0,
            refreshes: Vec::new(),
            written: Vec::new(),
            client_closes: Vec::new(),
            wakeups: 0,
            next_push: 0,
            held_acks: VecDeque::new(),
        }
    }

    /// The default configuration against `ws://sim.test/ws`.
    pub fn default_config() -> Config {
        Config::new("ws://sim.test/ws")
    }

    pub fn state(&self) -> State {
        self.engine.state().clone()
    }

    pub fn set_latency(&mut self, latency: Duration) {
        self.latency = latency;
    }

    // ----- driving -----

    pub fn connect(&mut self) {
        self.engine.connect(self.now);
        self.pump();
    }

    pub fn disconnect(&mut self) {
        self.engine.disconnect(self.now);
        self.pump();
    }

    pub fn send(&mut self, json: &str) -> Result<MessageId, SendError> {
        let result = self.engine.send(self.now, Payload::Json(json.into()));
        self.pump();
        result
    }

    pub fn set_app_state(&mut self, app: steadyws::engine::AppState) {
        self.engine.set_app_state(self.now, app);
        self.pump();
    }

    pub fn set_network(&mut self, network: steadyws::engine::NetworkStatus) {
        self.engine.set_network(self.now, network);
        self.pump();
    }

    /// Advance the clock by `d`, running everything that happens meanwhile.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        self.run_until(end);
    }

    /// Advance to `end`.
    pub fn run_until(&mut self, end: Instant) {
        for _ in 0..MAX_STEPS_PER_RUN {
            self.pump();
            let held = self.held_acks.front().map(|(at, _, _)| *at);
            let next = [self.engine.poll_timeout(), self.next_delivery(), held]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= end => {
                    self.now = self.now.max(at);
                    self.deliver_due();
                    if self.engine.poll_timeout().is_some_and(|t| t <= self.now) {
                        self.wakeups += 1;
                        self.engine.handle_timeout(self.now);
                    }
                }
                _ => {
                    self.now = end;
                    self.pump();
                    return;
                }
            }
        }
        panic!("simulation did not settle: more than {MAX_STEPS_PER_RUN} steps before {end:?}");
    }

    /// Run until `pred` holds, for at most `limit`; returns how long it took.
    pub fn run_until_cond(
        &mut self,
        limit: Duration,
        mut pred: impl FnMut(&Sim) -> bool,
    ) -> Option<Duration> {
        let start = self.now;
        let step = Duration::from_millis(5);
        while self.now.saturating_since(start) < limit {
            if pred(self) {
                return Some(self.now.saturating_since(start));
            }
            self.run_for(step);
        }
        pred(self).then(|| self.now.saturating_since(start))
    }

    // ----- faults -----

    pub fn set_link(&mut self, link: Link) {
        if link == Link::Down {
            self.reset_all();
        }
        self.link = link;
    }

    /// Abort every connection with a TCP reset: both ends see it die without a close frame.
    pub fn reset_all(&mut self) {
        let conns: Vec<ConnId> = self.client_alive.iter().copied().collect();
        for conn in conns {
            self.kill(conn, None, "");
        }
        self.server.conns.clear();
    }

    /// The server process dies and is back after `downtime`; its durable store survives.
    pub fn restart_server(&mut self, downtime: Duration) {
        self.reset_all();
        self.server.down_until = Some(self.now + downtime);
    }

    /// The server forgets every connection without telling the client (a NAT mapping expired, a
    /// load balancer restarted): frames from the client vanish, nothing comes back.
    pub fn orphan_connections(&mut self) {
        let conns: Vec<ConnId> = self.server.conns.drain().collect();
        for conn in conns {
            self.pipes.remove(&(conn, Dir::ToClient));
        }
    }

    /// The client's transports cannot write (`true`: a send buffer full on a slow uplink) or
    /// write again.
    pub fn block_writes(&mut self, blocked: bool) {
        let conns: Vec<ConnId> = self.client_alive.iter().copied().collect();
        for conn in conns {
            self.engine.handle_writing_blocked(self.now, conn, blocked);
        }
        self.pump();
    }

    /// The server closes every connection with `code`.
    pub fn server_close_all(&mut self, code: u16, reason: &str) {
        let conns: Vec<ConnId> = self.server.conns.drain().collect();
        for conn in conns {
            self.pipes.remove(&(conn, Dir::ToServer));
            self.enqueue(
                conn,
                Dir::ToClient,
                Item::Closed {
                    code: Some(code),
                    reason: reason.into(),
                },
            );
        }
    }

    fn kill(&mut self, conn: ConnId, code: Option<u16>, reason: &str) {
        self.pipes.remove(&(conn, Dir::ToServer));
        self.pipes.remove(&(conn, Dir::ToClient));
        self.server.conns.remove(&conn);
        // The reset reaches the client after the latency, unless the link is blackholed.
        self.enqueue(
            conn,
            Dir::ToClient,
            Item::Closed {
                code,
                reason: reason.into(),
            },
        );
    }

    // ----- the server's own actions -----

    /// The server appends a message to its stream and fans it out.
    pub fn server_push(&mut self, data: &str) -> u64 {
        self.next_push += 1;
        let pushed = Pushed {
            id: format!("srv-{}", self.next_push),
            seq: self.next_push,
            ts: 1_700_000_000_000 + self.now.as_millis(),
            data: data.into(),
        };
        self.server.history.push(pushed.clone());
        let conns: Vec<ConnId> = self.server.conns.iter().copied().collect();
        for conn in conns {
            self.enqueue(
                conn,
                Dir::ToClient,
                Item::Frame(Frame::Text(encode_push(&pushed))),
            );
        }
        pushed.seq
    }

    /// The server sends a raw frame on every open connection.
    pub fn server_send_raw(&mut self, frame: Frame) {
        let conns: Vec<ConnId> = self.server.conns.iter().copied().collect();
        for conn in conns {
            self.enqueue(conn, Dir::ToClient, Item::Frame(frame.clone()));
        }
    }

    // ----- plumbing -----

    fn enqueue(&mut self, conn: ConnId, dir: Dir, item: Item) {
        let at = self.now + self.latency;
        let pipe = self.pipes.entry((conn, dir)).or_default();
        let at = pipe.back().map_or(at, |(last, _)| at.max(*last));
        pipe.push_back((at, item));
    }

    fn next_delivery(&self) -> Option<Instant> {
        if self.link == Link::Blackhole {
            return None;
        }
        self.pipes
            .values()
            .filter_map(|pipe| pipe.front().map(|(at, _)| *at))
            .min()
    }

    fn deliver_due(&mut self) {
        while let Some((_, conn, _)) = self.held_acks.front().filter(|(at, ..)| *at <= self.now) {
            let conn = *conn;
            let (_, _, ack) = self.held_acks.pop_front().expect("front exists");
            if self.server.conns.contains(&conn) {
                self.enqueue(conn, Dir::ToClient, Item::Frame(ack));
            }
        }
        if self.link == Link::Blackhole {
            return;
        }
        loop {
            let due = self
                .pipes
                .iter()
                .filter_map(|(key, pipe)| {
                    pipe.front()
                        .filter(|(at, _)| *at <= self.now)
                        .map(|(at, _)| (*at, *key))
                })
                .min();
            let Some((_, key)) = due else { break };
            let pipe = self.pipes.get_mut(&key).expect("pipe exists");
            let (_, item) = pipe.pop_front().expect("item exists");
            if pipe.is_empty() {
                self.pipes.remove(&key);
            }
            match key.1 {
                Dir::ToServer => self.server_receive(key.0, item),
                Dir::ToClient => self.client_receive(key.0, item),
            }
            self.pump();
        }
    }

    fn client_receive(&mut self, conn: ConnId, item: Item) {
        if !self.client_alive.contains(&conn) {
            return;
        }
        let now = self.now;
        match item {
            Item::Opened => self.engine.handle_transport_opened(now, conn),
            Item::Failed(error) => {
                self.client_alive.remove(&conn);
                self.engine.handle_transport_failed(now, conn, error);
            }
            Item::Frame(frame) => {
                if let Frame::Text(text) = &frame
                    && text.starts_with(r#"{"type":"hello""#)
                    // The engine adopts a hello only while it has no cursor at all: no hello
                    // adopted before, no message received (this app takes each at once).
                    && self.app.start_seq.is_none()
                    && self.app.received.is_empty()
                    && self.engine.stats().cursor.last_seq.is_none()
                {
                    self.app.start_seq = serde_json::from_str::<serde_json::Value>(text)
                        .ok()
                        .and_then(|v| v["seq"].as_u64());
                }
                self.engine.handle_frame(now, conn, frame);
            }
            Item::Closed { code, reason } => {
                self.client_alive.remove(&conn);
                self.engine
                    .handle_transport_closed(now, conn, code, &reason);
            }
            Item::Upgrade { .. } => unreachable!("upgrades go to the server"),
        }
    }

    fn server_receive(&mut self, conn: ConnId, item: Item) {
        match item {
            Item::Upgrade { url } => self.server_upgrade(conn, url),
            Item::Frame(frame) if self.server.conns.contains(&conn) => {
                self.server_frame(conn, frame)
            }
            // Complete the closing handshake, as RFC 6455 servers do.
            Item::Closed { code, reason } if self.server.conns.remove(&conn) => {
                let echo = Item::Closed {
                    code,
                    reason: reason.clone(),
                };
                self.enqueue(conn, Dir::ToClient, echo);
                self.server.closes_seen.push((code.unwrap_or(1006), reason));
            }
            _ => {}
        }
    }

    fn server_upgrade(&mut self, conn: ConnId, url: String) {
        self.server.upgrades.push(url.clone());
        let down = self.link == Link::Down || self.server.down_until.is_some_and(|t| t > self.now);
        if down {
            let error = ConnectionError::Refused {
                addr: "sim.test:80".into(),
            };
            self.enqueue(conn, Dir::ToClient, Item::Failed(error));
            return;
        }
        match self.server.handshake {
            Handshake::Hang => {}
            Handshake::Reject {
                status,
                retry_after,
            } => {
                let error = ConnectionError::Handshake {
                    status,
                    retry_after,
                };
                self.enqueue(conn, Dir::ToClient, Item::Failed(error));
            }
            Handshake::AcceptThenDrop => {
                self.enqueue(conn, Dir::ToClient, Item::Opened);
                self.enqueue(
                    conn,
                    Dir::ToClient,
                    Item::Closed {
                        code: None,
                        reason: String::new(),
                    },
                );
            }
            Handshake::AcceptThenClose(code) => {
                self.enqueue(conn, Dir::ToClient, Item::Opened);
                self.enqueue(
                    conn,
                    Dir::ToClient,
                    Item::Closed {
                        code: Some(code),
                        reason: "policy".into(),
                    },
                );
            }
            Handshake::Accept => {
                self.server.conns.insert(conn);
                self.enqueue(conn, Dir::ToClient, Item::Opened);
                // The raw endpoint speaks no envelope.
                if self.server.sends_hello && !url.contains("/raw") {
                    let head = self.server.history.last().map_or(0, |m| m.seq);
                    let hello = format!(
                        r#"{{"type":"hello","seq":{head},"ts":{}}}"#,
                        self.now.as_millis()
                    );
                    self.enqueue(conn, Dir::ToClient, Item::Frame(Frame::Text(hello)));
                }
                self.replay(conn, &url);
            }
        }
    }

    fn replay(&mut self, conn: ConnId, url: &str) {
        // Without a cursor there is nothing to replay: the client starts from now.
        let Some(last_seq) = query_u64(url, "last_seq") else {
            return;
        };
        let stale: Vec<Pushed> = self
            .server
            .history
            .iter()
            .filter(|m| m.seq <= last_seq)
            .rev()
            .take(self.server.stale_replay)
            .cloned()
            .collect();
        let fresh: Vec<Pushed> = self
            .server
            .history
            .iter()
            .filter(|m| m.seq > last_seq)
            .cloned()
            .collect();
        for (i, message) in fresh.iter().enumerate() {
            // Interleave stale resends between the fresh ones, out of order.
            if let Some(old) = stale.get(i) {
                self.enqueue(
                    conn,
                    Dir::ToClient,
                    Item::Frame(Frame::Text(encode_push(old))),
                );
            }
            self.enqueue(
                conn,
                Dir::ToClient,
                Item::Frame(Frame::Text(encode_push(message))),
            );
        }
        for old in stale.iter().skip(fresh.len()) {
            self.enqueue(
                conn,
                Dir::ToClient,
                Item::Frame(Frame::Text(encode_push(old))),
            );
        }
    }

    fn server_frame(&mut self, conn: ConnId, frame: Frame) {
        match frame {
            Frame::Text(text) => {
                // Raw-mode clients send plain text, which this server only counts as traffic.
                let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
                    return;
                };
                match value["type"].as_str() {
                    Some("msg") => {
                        let id = value["id"].as_str().expect("msg has id").to_owned();
                        // Store before acking; a resend is acked again but stored once.
                        if self.server.stored_ids.insert(id.clone()) {
                            self.server.stored.push(value["data"].to_string());
                        }
                        let ack = Frame::Text(format!(r#"{{"type":"ack","id":"{id}"}}"#));
                        if self.server.ack_delay.is_zero() {
                            self.enqueue(conn, Dir::ToClient, Item::Frame(ack));
                        } else {
                            let at = self.now + self.server.ack_delay;
                            self.held_acks.push_back((at, conn, ack));
                        }
                    }
                    Some("ping") if self.server.answers_pings => {
                        let pong = format!(r#"{{"type":"pong","ts":{}}}"#, value["ts"]);
                        self.enqueue(conn, Dir::ToClient, Item::Frame(Frame::Text(pong)));
                    }
                    _ => {}
                }
            }
            Frame::Ping(payload) => {
                self.server.ws_pings_seen += 1;
                self.enqueue(conn, Dir::ToClient, Item::Frame(Frame::Pong(payload)));
            }
            Frame::Binary(_) | Frame::Pong(_) => {}
        }
    }

    fn write(&mut self, conn: ConnId, frame: Frame) {
        assert!(
            !self.client_closed.contains(&conn),
            "engine wrote on closed transport {conn:?}"
        );
        self.written.push((self.now, conn, frame.clone()));
        self.enqueue(conn, Dir::ToServer, Item::Frame(frame));
    }

    /// Apply the engine's transmits and record its events.
    fn pump(&mut self) {
        while let Some(transmit) = self.engine.poll_transmit() {
            match transmit {
                Transmit::Open {
                    conn,
                    url,
                    refresh_credentials,
                } => {
                    self.opens += 1;
                    self.refreshes.push(refresh_credentials);
                    self.client_alive.insert(conn);
                    self.enqueue(conn, Dir::ToServer, Item::Upgrade { url });
                }
                Transmit::Send {
                    conn,
                    frame,
                    message,
                } => {
                    self.write(conn, frame);
                    // The simulated transport takes every frame at once.
                    if let Some(id) = message {
                        self.engine.handle_written(conn, vec![id]);
                    }
                }
                Transmit::Pong { conn, frame } => self.write(conn, frame),
                Transmit::Close { conn, code, reason } => {
                    self.client_closes.push((conn, code));
                    if self.client_closed.insert(conn) && self.client_alive.contains(&conn) {
                        self.enqueue(
                            conn,
                            Dir::ToServer,
                            Item::Closed {
                                code: Some(code),
                                reason,
                            },
                        );
                    }
                }
            }
        }
        while let Some(event) = self.engine.poll_event() {
            match &event {
                Event::StateChanged { state, cause } => {
                    if let Some(error) = cause.problem() {
                        self.app.lost.push((self.now, error.clone()));
                    }
                    self.app.states.push((self.now, state.clone()));
                }
                Event::Message(message) => {
                    // The simulated app takes every message at once.
                    self.engine.handle_taken(message);
                    self.app.received.push(message.clone());
                }
                Event::Acked(id) => self.app.acked.push(id.clone()),
                Event::SendFailed { id, reason, .. } => {
                    self.app.failed.push((id.clone(), reason.clone()))
                }
                Event::MalformedFrame { reason, .. } => self.app.malformed.push(reason.clone()),
                Event::ServerError { .. } => {}
                Event::StoreRecovered { .. } => unreachable!("the engine has no store"),
            }
            self.app.events.push((self.now, event));
        }
    }
}

fn encode_push(m: &Pushed) -> String {
    format!(
        r#"{{"type":"msg","id":"{}","seq":{},"ts":{},"data":{}}}"#,
        m.id, m.seq, m.ts, m.data
    )
}

/// A query parameter of `url` as a number.
pub fn query_u64(url: &str, name: &str) -> Option<u64> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.parse().ok()).flatten()
    })
}

/// Seconds as a `Duration`.
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Milliseconds as a `Duration`.
pub fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

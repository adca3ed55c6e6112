//! Liveness of an open connection: idle pings, the deadline for an answer, probes, and writes
//! that go unanswered.
//!
//! Any inbound frame proves the connection alive, so pings go out only after `interval` of
//! inbound silence. A dead connection is therefore noticed at most `interval + timeout` after the
//! last thing the server sent, which is what the seed asks for instead of trusting `onclose`.
//!
//! An app that is sending need not wait that long: what it writes should be answered (acks in
//! envelope mode), so writes met by silence for `ack_probe_after` ask for a probe at once. That
//! wait follows the measured round trip (four smoothed RTTs, at least [`ACK_PROBE_FLOOR`]), so a
//! far server is not probed for being far. With nothing written, nothing changes: an idle app
//! pays no extra wake-up. While the transport cannot write (the socket's send buffer is full: a
//! large message on a slow uplink), no answer can be expected yet, so that clock waits and starts
//! again when the link takes data, which itself proves the peer is acknowledging bytes.

use std::time::Duration;

use super::config::HeartbeatMode;
use super::envelope;
use super::time::Instant;
use super::transmit::Frame;

/// What the heartbeat wants done at a timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Beat {
    /// Write this ping.
    Ping(Frame),
    /// The connection is dead: nothing arrived within this long of the ping or probe.
    Dead {
        /// The wait that expired.
        after: Duration,
    },
    /// What was written met silence for this long: check the connection now.
    Unanswered {
        /// Time since the first write nothing answered.
        after: Duration,
    },
}

/// The shortest wait before unanswered writes trigger a probe, whatever the round trip: below
/// it, a server that pauses to store a burst (or a phone's radio waking up) would be probed for
/// nothing.
pub const ACK_PROBE_FLOOR: Duration = Duration::from_secs(2);

/// How many smoothed round trips unanswered writes may wait before a probe.
const ACK_PROBE_RTTS: u32 = 4;

/// Heartbeat timers of the current connection.
#[derive(Debug)]
pub struct Heartbeat {
    mode: HeartbeatMode,
    /// Whether a connection is open and the app is in the foreground.
    running: bool,
    last_inbound: Instant,
    /// A ping or probe awaiting any inbound frame, with the deadline and the wait it represents.
    awaiting: Option<(Instant, Duration)>,
    /// The driver stopped reading because the app is behind: silence then says nothing about
    /// the link, so no timer runs until reading resumes.
    paused: bool,
    /// When something was first written after the last inbound frame: the oldest write the
    /// server has not answered yet.
    unanswered_since: Option<Instant>,
    /// A fixed wait for unanswered writes; `None` follows the round trip.
    ack_probe_after: Option<Duration>,
    /// The transport's writes are blocked: what waits behind cannot be answered yet.
    write_blocked: bool,
    /// Round-trip time of answered pings, smoothed (RFC 6298's 1/8 gain).
    smoothed_rtt: Option<Duration>,
}

impl Heartbeat {
    /// Stopped timers. `ack_probe_after` fixes the wait for unanswered writes; `None` derives it
    /// from the round trip.
    pub fn new(mode: HeartbeatMode, ack_probe_after: Option<Duration>) -> Self {
        Heartbeat {
            mode,
            running: false,
            last_inbound: Instant::ZERO,
            awaiting: None,
            paused: false,
            unanswered_since: None,
            ack_probe_after,
            write_blocked: false,
            smoothed_rtt: None,
        }
    }

    /// A connection opened (or the app came back): start counting silence from `now`.
    pub fn start(&mut self, now: Instant) {
        self.running = true;
        self.last_inbound = now;
        self.awaiting = None;
        self.paused = false;
        self.unanswered_since = None;
        self.write_blocked = false;
    }

    /// No connection, or the app went to the background: no timers at all.
    pub fn stop(&mut self) {
        self.running = false;
        self.awaiting = None;
        self.paused = false;
        self.unanswered_since = None;
    }

    /// The transport's writes blocked (`true`) or moved again (`false`). Moving again means the
    /// peer acknowledged bytes: unanswered writes count from then.
    pub fn set_write_blocked(&mut self, now: Instant, blocked: bool) {
        if self.write_blocked && !blocked && self.unanswered_since.is_some() {
            self.unanswered_since = Some(now);
        }
        self.write_blocked = blocked;
    }

    /// Something that expects an answer was written: from now, silence counts against it.
    pub fn on_written(&mut self, now: Instant) {
        if self.running && self.unanswered_since.is_none() {
            self.unanswered_since = Some(now);
        }
    }

    /// How long writes may go unanswered before the connection is checked.
    pub fn ack_probe_after(&self) -> Duration {
        self.ack_probe_after.unwrap_or_else(|| {
            let rtt = self.smoothed_rtt.unwrap_or_default();
            ACK_PROBE_FLOOR.max(rtt.saturating_mul(ACK_PROBE_RTTS))
        })
    }

    /// Reading paused (`true`) or resumed (`false`). Resuming counts as a sign of life: the
    /// silence while paused was ours, not the link's.
    pub fn set_paused(&mut self, now: Instant, paused: bool) {
        if self.paused && !paused {
            self.on_inbound(now);
        }
        self.paused = paused;
    }

    /// Any inbound frame: the connection is alive, and what was written before it reached a
    /// live server.
    pub fn on_inbound(&mut self, now: Instant) {
        self.last_inbound = now;
        self.awaiting = None;
        self.unanswered_since = None;
    }

    /// Check the connection now: returns the ping to write, answered or not within `timeout`.
    pub fn probe(&mut self, now: Instant, timeout: Duration) -> Frame {
        self.running = true;
        let deadline = now + timeout;
        // An earlier, tighter deadline still stands.
        if self.awaiting.is_none_or(|(at, _)| at > deadline) {
            self.awaiting = Some((deadline, timeout));
        }
        self.ping_frame(now)
    }

    /// Round-trip time from a pong echoing our `ts` (JSON ping or WebSocket ping payload); it
    /// also moves the smoothed round trip.
    pub fn rtt(&mut self, now: Instant, echoed_ts: u64) -> Option<Duration> {
        let sent = Instant::from_millis(echoed_ts);
        let rtt = (sent <= now).then(|| now.saturating_since(sent))?;
        self.smoothed_rtt = Some(match self.smoothed_rtt {
            Some(smoothed) => (smoothed * 7 + rtt) / 8,
            None => rtt,
        });
        Some(rtt)
    }

    /// When [`Heartbeat::on_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.running || self.paused {
            return None;
        }
        if let Some((deadline, _)) = self.awaiting {
            return Some(deadline);
        }
        let idle = match self.mode {
            HeartbeatMode::JsonPing { interval, .. }
            | HeartbeatMode::WebSocketPing { interval, .. } => self.last_inbound + interval,
            HeartbeatMode::ServerDriven { silence_timeout } => self.last_inbound + silence_timeout,
        };
        Some(match self.unanswered_due() {
            Some(due) => due.min(idle),
            None => idle,
        })
    }

    fn unanswered_due(&self) -> Option<Instant> {
        if self.write_blocked {
            return None;
        }
        self.unanswered_since
            .map(|since| since + self.ack_probe_after())
    }

    /// Act on the timers due at `now`.
    pub fn on_timeout(&mut self, now: Instant) -> Option<Beat> {
        if self.poll_timeout().is_none_or(|due| due > now) {
            return None;
        }
        if let Some((_, waited)) = self.awaiting.take() {
            self.running = false;
            return Some(Beat::Dead { after: waited });
        }
        if self.unanswered_due().is_some_and(|due| due <= now)
            && let Some(since) = self.unanswered_since.take()
        {
            return Some(Beat::Unanswered {
                after: now.saturating_since(since),
            });
        }
        match self.mode {
            HeartbeatMode::JsonPing { timeout, .. }
            | HeartbeatMode::WebSocketPing { timeout, .. } => {
                self.awaiting = Some((
                    now + timeout,
                    now.saturating_since(self.last_inbound) + timeout,
                ));
                Some(Beat::Ping(self.ping_frame(now)))
            }
            HeartbeatMode::ServerDriven { silence_timeout } => {
                self.running = false;
                Some(Beat::Dead {
                    after: silence_timeout,
                })
            }
        }
    }

    fn ping_frame(&self, now: Instant) -> Frame {
        let ts = now.as_millis();
        match self.mode {
            HeartbeatMode::JsonPing { .. } => Frame::Text(envelope::encode_ping(ts)),
            // The server-driven mode has no JSON ping of its own; a probe uses the ping frame
            // every WebSocket server must answer.
            HeartbeatMode::WebSocketPing { .. } | HeartbeatMode::ServerDriven { .. } => {
                Frame::Ping(ts.to_be_bytes().to_vec())
            }
        }
    }
}

/// The `ts` carried by a WebSocket pong that answers one of our pings.
pub fn ws_pong_ts(payload: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(payload.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn json(interval: u64, timeout: u64) -> Heartbeat {
        Heartbeat::new(
            HeartbeatMode::JsonPing {
                interval: S * interval as u32,
                timeout: S * timeout as u32,
            },
            None,
        )
    }

    fn at(secs: u64) -> Instant {
        Instant::from_millis(secs * 1000)
    }

    #[test]
    fn pings_only_after_idle_interval_and_declares_death_after_timeout() {
        let mut hb = json(10, 5);
        assert_eq!(hb.poll_timeout(), None);
        hb.start(at(0));
        assert_eq!(hb.poll_timeout(), Some(at(10)));
        hb.on_inbound(at(7));
        assert_eq!(
            hb.on_timeout(at(10)),
            None,
            "traffic at 7 s keeps the link idle-free"
        );
        assert_eq!(
            hb.on_timeout(at(17)),
            Some(Beat::Ping(Frame::Text(
                r#"{"type":"ping","ts":17000}"#.into()
            )))
        );
        assert_eq!(hb.poll_timeout(), Some(at(22)));
        assert_eq!(hb.on_timeout(at(22)), Some(Beat::Dead { after: S * 15 }));
        assert_eq!(hb.poll_timeout(), None);
    }

    #[test]
    fn any_inbound_frame_answers_a_ping() {
        let mut hb = json(10, 5);
        hb.start(at(0));
        assert!(matches!(hb.on_timeout(at(10)), Some(Beat::Ping(_))));
        hb.on_inbound(at(12));
        assert_eq!(hb.poll_timeout(), Some(at(22)));
    }

    #[test]
    fn websocket_ping_carries_ts_for_rtt() {
        let mut hb = Heartbeat::new(
            HeartbeatMode::WebSocketPing {
                interval: S,
                timeout: S,
            },
            None,
        );
        hb.start(at(0));
        let Some(Beat::Ping(Frame::Ping(payload))) = hb.on_timeout(at(1)) else {
            panic!("expected a ping frame")
        };
        let ts = ws_pong_ts(&payload).unwrap();
        assert_eq!(
            hb.rtt(Instant::from_millis(1_042), ts),
            Some(Duration::from_millis(42))
        );
        assert_eq!(hb.rtt(at(0), ts), None, "a ts from the future is not ours");
        assert_eq!(ws_pong_ts(b"short"), None);
    }

    #[test]
    fn server_driven_only_watches_silence_and_probes_with_a_ping_frame() {
        let mut hb = Heartbeat::new(
            HeartbeatMode::ServerDriven {
                silence_timeout: S * 20,
            },
            None,
        );
        hb.start(at(0));
        hb.on_inbound(at(15));
        assert_eq!(hb.on_timeout(at(34)), None);
        assert_eq!(hb.on_timeout(at(35)), Some(Beat::Dead { after: S * 20 }));
        hb.start(at(40));
        assert!(matches!(hb.probe(at(41), S * 2), Frame::Ping(_)));
        assert_eq!(hb.on_timeout(at(43)), Some(Beat::Dead { after: S * 2 }));
    }

    #[test]
    fn probe_deadline_and_stop() {
        let mut hb = json(10, 5);
        hb.start(at(0));
        assert!(matches!(hb.probe(at(1), S * 2), Frame::Text(_)));
        assert_eq!(hb.poll_timeout(), Some(at(3)));
        hb.stop();
        assert_eq!(hb.poll_timeout(), None);
        assert_eq!(hb.on_timeout(at(100)), None);
    }

    #[test]
    fn unanswered_writes_ask_for_a_check_after_the_floor() {
        let mut hb = json(10, 5);
        hb.start(at(0));
        hb.on_written(at(1));
        hb.on_written(at(2));
        assert_eq!(hb.poll_timeout(), Some(at(3)), "the oldest write counts");
        assert_eq!(
            hb.on_timeout(at(3)),
            Some(Beat::Unanswered { after: S * 2 })
        );
        assert_eq!(hb.poll_timeout(), Some(at(10)), "back to the idle schedule");
    }

    #[test]
    fn any_inbound_frame_answers_what_was_written() {
        let mut hb = json(10, 5);
        hb.start(at(0));
        hb.on_written(at(1));
        hb.on_inbound(at(2));
        assert_eq!(hb.poll_timeout(), Some(at(12)));
        hb.on_written(at(3));
        assert_eq!(hb.poll_timeout(), Some(at(5)));
    }

    #[test]
    fn nothing_written_or_stopped_means_no_extra_wake_up() {
        let mut hb = json(10, 5);
        hb.on_written(at(0));
        assert_eq!(hb.poll_timeout(), None, "not running: nothing counts");
        hb.start(at(0));
        assert_eq!(hb.poll_timeout(), Some(at(10)));
        hb.on_written(at(1));
        hb.stop();
        hb.start(at(4));
        assert_eq!(
            hb.poll_timeout(),
            Some(at(14)),
            "a new start forgets old writes"
        );
    }

    #[test]
    fn the_wait_follows_the_smoothed_round_trip_above_the_floor() {
        let mut hb = json(10, 5);
        hb.start(at(0));
        assert_eq!(hb.ack_probe_after(), ACK_PROBE_FLOOR);
        // A 900 ms round trip, measured repeatedly: four of them pass the 2 s floor.
        for i in 0..40 {
            let sent = 100_000 * (i + 1);
            hb.rtt(Instant::from_millis(sent + 900), sent);
        }
        assert_eq!(hb.ack_probe_after(), Duration::from_millis(3600));
        let fixed = Heartbeat::new(
            HeartbeatMode::JsonPing {
                interval: S * 10,
                timeout: S * 5,
            },
            Some(S * 7),
        );
        assert_eq!(fixed.ack_probe_after(), S * 7);
    }

    #[test]
    fn blocked_writes_hold_the_clock_and_restart_it_when_they_move() {
        let mut hb = json(10, 5);
        hb.start(at(0));
        hb.on_written(at(0));
        hb.set_write_blocked(at(1), true);
        assert_eq!(hb.poll_timeout(), Some(at(10)), "only the idle heartbeat");
        assert_eq!(hb.on_timeout(at(5)), None);
        hb.set_write_blocked(at(8), false);
        assert_eq!(hb.poll_timeout(), Some(at(10)));
        hb.on_inbound(at(9));
        hb.on_written(at(9));
        hb.set_write_blocked(at(9), true);
        hb.set_write_blocked(at(12), false);
        assert_eq!(hb.poll_timeout(), Some(at(14)), "counted from 12 s");
    }
}

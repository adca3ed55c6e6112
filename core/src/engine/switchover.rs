//! Make-before-break: when a foreground hint or an interface change finds a connection that
//! claims to be open, the engine probes it and opens a second one at once, the candidate.
//! Whichever proves alive first wins: the current connection by answering the probe's ping, the
//! candidate by its first frame (the server's `hello`; in raw mode, completing its handshake).
//! The loser is closed. When the current connection dies first, the candidate, already on its
//! way, takes over. The outbox is rewritten on the winner and the dedup window and cursor drop
//! what arrives twice, so the switch loses and duplicates nothing.

use super::*;

impl Engine {
    /// Start a candidate beside the current connection, unless one is on its way or there is no
    /// network to try.
    pub(super) fn open_candidate(&mut self, now: Instant) {
        if self.candidate.is_none() && self.lifecycle.network_available() {
            self.candidate = Some(self.open_transport(now, false));
            self.racing_since = Some(now);
        }
    }

    pub(super) fn is_candidate(&self, conn: ConnId) -> bool {
        self.candidate.is_some_and(|c| c.id == conn)
    }

    /// The candidate completed its handshake. In raw mode there is no `hello` to wait for: that
    /// is the proof.
    pub(super) fn candidate_opened(&mut self, now: Instant) {
        if let Some(candidate) = self.candidate.as_mut() {
            candidate.phase = Phase::Open { since: now };
        }
        if self.config.mode == Mode::Raw {
            self.promote_candidate(now);
        }
    }

    /// The candidate's first frame: it wins. Returns whether it was promoted (the frame is then
    /// the new connection's).
    pub(super) fn candidate_spoke(&mut self, now: Instant) -> bool {
        let open = self
            .candidate
            .is_some_and(|c| matches!(c.phase, Phase::Open { .. }));
        if open && self.state == State::Open {
            self.promote_candidate(now);
        }
        open
    }

    /// The current connection answered the probe (a pong echoing `ts`): the candidate loses.
    pub(super) fn current_answered(&mut self, ts: u64) {
        if self
            .racing_since
            .is_some_and(|since| ts >= since.as_millis())
        {
            self.abandon_candidate("the current connection answered");
        }
    }

    /// The candidate failed or closed by itself: nothing is lost, the current connection stays.
    pub(super) fn candidate_ended(&mut self) {
        self.candidate = None;
        self.racing_since = None;
    }

    /// Give the candidate up if it has not opened in time.
    pub(super) fn expire_candidate(&mut self, now: Instant) {
        if let Some(Transport {
            phase: Phase::Opening { deadline },
            ..
        }) = self.candidate
            && deadline <= now
        {
            self.abandon_candidate("connect timeout");
        }
    }

    /// When the candidate's handshake must be done.
    pub(super) fn candidate_deadline(&self) -> Option<Instant> {
        match self.candidate?.phase {
            Phase::Opening { deadline } => Some(deadline),
            Phase::Open { .. } => None,
        }
    }

    /// The current connection is gone (closed, failed, or silent past the probe): the candidate,
    /// already on its way, becomes the attempt. Returns false if there is none.
    pub(super) fn candidate_takes_over(&mut self, now: Instant, cause: Cause) -> bool {
        let Some(candidate) = self.candidate.take() else {
            return false;
        };
        self.racing_since = None;
        self.retry_at = None;
        match candidate.phase {
            Phase::Open { .. } => {
                self.transport = Some(candidate);
                self.switch_to_current(now);
                // Nothing the app must act on: it is open, on another connection.
                self.set_state(State::Open, cause);
            }
            Phase::Opening { .. } => {
                self.transport = Some(candidate);
                self.attempt = self.attempt.saturating_add(1);
                let attempt = self.attempt;
                self.set_state(State::Connecting { attempt }, cause);
            }
        }
        true
    }

    /// Close the candidate, if any.
    pub(super) fn abandon_candidate(&mut self, reason: &str) {
        self.racing_since = None;
        if let Some(candidate) = self.candidate.take() {
            self.transmits.push_back(Transmit::Close {
                conn: candidate.id,
                code: 1000,
                reason: reason.into(),
            });
        }
    }

    fn promote_candidate(&mut self, now: Instant) {
        let Some(candidate) = self.candidate.take() else {
            return;
        };
        self.racing_since = None;
        if let Some(old) = self.transport.replace(candidate) {
            self.transmits.push_back(Transmit::Close {
                conn: old.id,
                code: CLOSE_DEAD_CONNECTION,
                reason: "replaced by a newer connection".into(),
            });
        }
        self.switch_to_current(now);
    }

    /// The new current connection is open: heartbeat from now, the outbox written again on it.
    fn switch_to_current(&mut self, now: Instant) {
        self.stats.reconnects += 1;
        self.heartbeat.stop();
        if !self.lifecycle.in_background() {
            self.heartbeat.start(now);
        }
        self.outbox.rewind();
        self.write_outbox(now);
    }
}

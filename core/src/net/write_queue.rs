//! What waits to be written on one transport: frames in order, at most one owed pong, and a
//! close. The pump fills it under the socket's lock (never blocking); the transport's writer
//! drains it. Its bounds are what keeps a peer that stops reading from growing the client: frames
//! are bounded by count and bytes, and a flood of pings owes only the newest pong.
//!
//! It also remembers which raw-mode messages the writer took, for the pump to tell the engine:
//! those leave the outbox, the rest stay queued there.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::engine::{Frame, MessageId};

/// The bounds of one queue.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most frames waiting.
    pub frames: usize,
    /// Most payload bytes waiting.
    pub bytes: usize,
}

/// The queue is past its bounds: the peer is not reading what it is sent.
#[derive(Debug, PartialEq, Eq)]
pub struct Overflow {
    /// Frames waiting, the refused one included.
    pub frames: usize,
    /// Bytes waiting, the refused frame included.
    pub bytes: usize,
}

/// What the writer does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Write this frame.
    Frame(Frame),
    /// Send a close frame and finish.
    Close(u16, String),
    /// Nothing waits: flush, then [`WriteQueue::changed`].
    Idle,
}

#[derive(Default)]
struct Pending {
    /// Frames in order, each with the raw-mode message it carries.
    frames: VecDeque<(Frame, Option<MessageId>)>,
    bytes: usize,
    pong: Option<Frame>,
    close: Option<(u16, String)>,
    /// Raw-mode messages the writer took since the pump last asked.
    taken: Vec<MessageId>,
}

/// One transport's outgoing queue.
pub struct WriteQueue {
    pending: Mutex<Pending>,
    limits: Limits,
    changed: Notify,
}

impl WriteQueue {
    /// An empty queue with these bounds.
    pub fn new(limits: Limits) -> Self {
        WriteQueue {
            pending: Mutex::default(),
            limits,
            changed: Notify::new(),
        }
    }

    /// Queue a frame (carrying the raw-mode `message`, if any), unless that would pass the
    /// bounds.
    pub fn push(&self, frame: Frame, message: Option<MessageId>) -> Result<(), Overflow> {
        let mut pending = self.lock();
        let frames = pending.frames.len() + 1;
        let bytes = pending.bytes + frame.len();
        if frames > self.limits.frames || bytes > self.limits.bytes {
            return Err(Overflow { frames, bytes });
        }
        pending.bytes = bytes;
        pending.frames.push_back((frame, message));
        drop(pending);
        self.changed.notify_one();
        Ok(())
    }

    /// Owe the peer this pong, replacing one still unwritten: only the newest answer matters.
    pub fn push_pong(&self, frame: Frame) {
        self.lock().pong = Some(frame);
        self.changed.notify_one();
    }

    /// Close now: frames not yet taken are dropped (the engine still queues every message
    /// among them and writes it on its next connection), the owed pong and the close frame go.
    /// Returns the raw-mode messages the writer took, which may have been written.
    pub fn close(&self, code: u16, reason: String) -> Vec<MessageId> {
        let mut pending = self.lock();
        pending.frames.clear();
        pending.bytes = 0;
        pending.close = Some((code, reason));
        let taken = std::mem::take(&mut pending.taken);
        drop(pending);
        self.changed.notify_one();
        taken
    }

    /// The raw-mode messages the writer took since the last call.
    pub fn take_written(&self) -> Vec<MessageId> {
        std::mem::take(&mut self.lock().taken)
    }

    /// Whether the writer took raw-mode messages the pump has not collected yet.
    pub fn has_written(&self) -> bool {
        !self.lock().taken.is_empty()
    }

    /// Take the next thing to do.
    pub fn pop(&self) -> Next {
        let mut pending = self.lock();
        if let Some((frame, message)) = pending.frames.pop_front() {
            pending.bytes -= frame.len();
            // Counted as written from here: once taken, it may reach the peer.
            pending.taken.extend(message);
            return Next::Frame(frame);
        }
        if let Some(pong) = pending.pong.take() {
            return Next::Frame(pong);
        }
        match pending.close.take() {
            Some((code, reason)) => Next::Close(code, reason),
            None => Next::Idle,
        }
    }

    /// Resolves once something was queued since the last [`WriteQueue::pop`] that found nothing.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // Every critical section above completes without panicking, so a poisoned lock still
        // holds a consistent queue.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Frame {
        Frame::Text(s.into())
    }

    #[test]
    fn frames_come_out_in_order_then_the_pong() {
        let queue = WriteQueue::new(Limits {
            frames: 10,
            bytes: 100,
        });
        queue.push(text("a"), None).unwrap();
        queue.push_pong(text("pong 1"));
        queue.push(text("b"), None).unwrap();
        queue.push_pong(text("pong 2"));
        assert_eq!(queue.pop(), Next::Frame(text("a")));
        assert_eq!(queue.pop(), Next::Frame(text("b")));
        assert_eq!(
            queue.pop(),
            Next::Frame(text("pong 2")),
            "only the newest pong"
        );
        assert_eq!(queue.pop(), Next::Idle);
    }

    #[test]
    fn close_drops_untaken_frames_and_returns_the_messages_taken() {
        let queue = WriteQueue::new(Limits {
            frames: 10,
            bytes: 100,
        });
        let id = |s: &str| Some(MessageId(s.into()));
        queue.push(text("a"), id("a")).unwrap();
        queue.push(text("ping"), None).unwrap();
        queue.push(text("b"), id("b")).unwrap();
        queue.push(text("c"), id("c")).unwrap();
        assert_eq!(queue.pop(), Next::Frame(text("a")));
        assert_eq!(queue.pop(), Next::Frame(text("ping")));
        assert!(queue.has_written());
        assert_eq!(queue.take_written(), [MessageId("a".into())]);
        assert_eq!(queue.pop(), Next::Frame(text("b")));
        queue.push_pong(text("pong"));
        assert_eq!(queue.close(1000, "bye".into()), [MessageId("b".into())]);
        assert!(!queue.has_written());
        assert_eq!(queue.pop(), Next::Frame(text("pong")), "c is never written");
        assert_eq!(queue.pop(), Next::Close(1000, "bye".into()));
        assert_eq!(queue.pop(), Next::Idle);
    }

    #[test]
    fn a_pong_flood_owes_one_pong() {
        let queue = WriteQueue::new(Limits {
            frames: 1,
            bytes: 1,
        });
        for i in 0..100_000 {
            queue.push_pong(text(&format!("pong {i}")));
        }
        assert_eq!(queue.pop(), Next::Frame(text("pong 99999")));
        assert_eq!(queue.pop(), Next::Idle);
    }

    #[test]
    fn frames_past_either_bound_are_refused_and_room_returns_as_they_are_written() {
        let queue = WriteQueue::new(Limits {
            frames: 3,
            bytes: 10,
        });
        queue.push(text("1234"), None).unwrap();
        queue.push(text("12345"), None).unwrap();
        assert_eq!(
            queue.push(text("12"), None),
            Err(Overflow {
                frames: 3,
                bytes: 11
            })
        );
        queue.push(text("1"), None).unwrap();
        assert_eq!(
            queue.push(text(""), None),
            Err(Overflow {
                frames: 4,
                bytes: 10
            })
        );
        assert_eq!(queue.pop(), Next::Frame(text("1234")));
        queue.push(text("12"), None).unwrap();
    }
}

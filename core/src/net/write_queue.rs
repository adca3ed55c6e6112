//! What waits to be written on one transport: frames in order, at most one owed pong, and a
//! close. The pump fills it under the socket's lock (never blocking); the transport's writer
//! drains it. Its bounds are what keeps a peer that stops reading from growing the client: frames
//! are bounded by count and bytes, and a flood of pings owes only the newest pong.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::engine::Frame;

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
    frames: VecDeque<Frame>,
    bytes: usize,
    pong: Option<Frame>,
    close: Option<(u16, String)>,
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

    /// Queue a frame, unless that would pass the bounds.
    pub fn push(&self, frame: Frame) -> Result<(), Overflow> {
        let mut pending = self.lock();
        let frames = pending.frames.len() + 1;
        let bytes = pending.bytes + frame.len();
        if frames > self.limits.frames || bytes > self.limits.bytes {
            return Err(Overflow { frames, bytes });
        }
        pending.bytes = bytes;
        pending.frames.push_back(frame);
        drop(pending);
        self.changed.notify_one();
        Ok(())
    }

    /// Owe the peer this pong, replacing one still unwritten: only the newest answer matters.
    pub fn push_pong(&self, frame: Frame) {
        self.lock().pong = Some(frame);
        self.changed.notify_one();
    }

    /// Close after what is queued.
    pub fn close(&self, code: u16, reason: String) {
        self.lock().close = Some((code, reason));
        self.changed.notify_one();
    }

    /// Take the next thing to do.
    pub fn pop(&self) -> Next {
        let mut pending = self.lock();
        if let Some(frame) = pending.frames.pop_front() {
            pending.bytes -= frame.len();
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
    fn frames_come_out_in_order_then_the_pong_then_the_close() {
        let queue = WriteQueue::new(Limits {
            frames: 10,
            bytes: 100,
        });
        queue.push(text("a")).unwrap();
        queue.push_pong(text("pong 1"));
        queue.close(1000, "bye".into());
        queue.push(text("b")).unwrap();
        queue.push_pong(text("pong 2"));
        assert_eq!(queue.pop(), Next::Frame(text("a")));
        assert_eq!(queue.pop(), Next::Frame(text("b")));
        assert_eq!(
            queue.pop(),
            Next::Frame(text("pong 2")),
            "only the newest pong"
        );
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
        queue.push(text("1234")).unwrap();
        queue.push(text("12345")).unwrap();
        assert_eq!(
            queue.push(text("12")),
            Err(Overflow {
                frames: 3,
                bytes: 11
            })
        );
        queue.push(text("1")).unwrap();
        assert_eq!(
            queue.push(text("")),
            Err(Overflow {
                frames: 4,
                bytes: 10
            })
        );
        assert_eq!(queue.pop(), Next::Frame(text("1234")));
        queue.push(text("12")).unwrap();
    }
}

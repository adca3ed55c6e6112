//! What waits to be written on one transport, and the socket end it is written to: frames in
//! order, at most one owed pong, and a close. The pump fills it under the socket's lock (never
//! blocking); its bounds are what keeps a peer that stops reading from growing the client: frames
//! are bounded by count and bytes, and a flood of pings owes only the newest pong.
//!
//! Whoever queued a lone frame writes it at once when nothing waits on the socket
//! ([`WriteQueue::write`]): it then leaves on the caller's thread, without waking the
//! transport's writer task, a hand-off that costs more than the write on a round trip. Frames
//! in a burst, or that the socket cannot take at once, are the writer task's
//! ([`WriteQueue::poll_write`] with its own waker): it writes what gathered with one flush.
//! Either way frames leave in queue order: both pop them and feed the sink under one lock.
//!
//! It also remembers which raw-mode messages were handed to the socket, for the pump to tell the
//! engine: those leave the outbox, the rest stay queued there.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::engine::{Frame, MessageId};

/// The writing half of an open WebSocket.
pub type Sink = Pin<Box<dyn futures_util::Sink<Message, Error = WsError> + Send>>;

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

#[derive(Default)]
struct Pending {
    /// Frames in order, each with the raw-mode message it carries.
    frames: VecDeque<(Frame, Option<MessageId>)>,
    bytes: usize,
    pong: Option<Frame>,
    close: Option<(u16, String)>,
    /// Raw-mode messages handed to the socket since the pump last asked.
    taken: Vec<MessageId>,
}

/// The socket end, once the transport is open.
#[derive(Default)]
struct Outlet {
    sink: Option<Sink>,
    /// Frames were fed to the sink and not flushed yet.
    unflushed: bool,
    /// The last write completed: nothing waits on the socket, a caller may write at once.
    idle: bool,
    /// A caller's write failed: the writer task reports it.
    failed: Option<WsError>,
}

/// One transport's outgoing queue.
pub struct WriteQueue {
    pending: Mutex<Pending>,
    outlet: Mutex<Outlet>,
    limits: Limits,
    /// Wakes the writer task: a close, or a write a caller could not finish.
    changed: Notify,
}

impl WriteQueue {
    /// An empty queue with these bounds.
    pub fn new(limits: Limits) -> Self {
        WriteQueue {
            pending: Mutex::default(),
            outlet: Mutex::default(),
            limits,
            changed: Notify::new(),
        }
    }

    /// Queue a frame (carrying the raw-mode `message`, if any), unless that would pass the
    /// bounds. [`WriteQueue::write`] has it written.
    pub fn push(&self, frame: Frame, message: Option<MessageId>) -> Result<(), Overflow> {
        let mut pending = lock(&self.pending);
        let frames = pending.frames.len() + 1;
        let bytes = pending.bytes + frame.len();
        if frames > self.limits.frames || bytes > self.limits.bytes {
            return Err(Overflow { frames, bytes });
        }
        pending.bytes = bytes;
        pending.frames.push_back((frame, message));
        Ok(())
    }

    /// Owe the peer this pong, replacing one still unwritten: only the newest answer matters.
    pub fn push_pong(&self, frame: Frame) {
        lock(&self.pending).pong = Some(frame);
    }

    /// Close now: frames not yet taken are dropped (the engine still queues every message
    /// among them and writes it on its next connection), the owed pong and the close frame go.
    /// Returns the raw-mode messages handed to the socket, which may have been written.
    pub fn close(&self, code: u16, reason: String) -> Vec<MessageId> {
        let mut pending = lock(&self.pending);
        pending.frames.clear();
        pending.bytes = 0;
        pending.close = Some((code, reason));
        let taken = std::mem::take(&mut pending.taken);
        drop(pending);
        self.changed.notify_one();
        taken
    }

    /// The raw-mode messages handed to the socket since the last call.
    pub fn take_written(&self) -> Vec<MessageId> {
        std::mem::take(&mut lock(&self.pending).taken)
    }

    /// Whether raw-mode messages were handed to the socket and the pump has not collected them.
    pub fn has_written(&self) -> bool {
        !lock(&self.pending).taken.is_empty()
    }

    /// The transport is open: frames go to `sink` from now on.
    pub fn attach(&self, sink: Sink) {
        lock(&self.outlet).sink = Some(sink);
        self.changed.notify_one();
    }

    /// Take the socket end back to close it, once [`WriteQueue::poll_write`] wrote everything
    /// before the close. `None` unless a close was asked for.
    pub fn take_close(&self) -> Option<(u16, String, Sink)> {
        let (code, reason) = lock(&self.pending).close.take()?;
        let sink = lock(&self.outlet).sink.take()?;
        Some((code, reason, sink))
    }

    /// Have what waits written: at once on the caller's thread if `at_once` and nothing waits
    /// on the socket already; else, or if the socket cannot take it all at once, by the writer
    /// task, which writes whatever has gathered by then with one flush.
    pub fn write(&self, at_once: bool) {
        {
            let pending = lock(&self.pending);
            if pending.frames.is_empty() && pending.pong.is_none() {
                return;
            }
        }
        let mut outlet = lock(&self.outlet);
        // Not idle: the writer task waits on the socket, or was handed the queue, and drains
        // it on its next step. No sink: the writer drains the queue once the transport opens.
        if !outlet.idle || outlet.sink.is_none() {
            return;
        }
        if at_once {
            // A waker that does nothing: when the write cannot finish, the writer task is
            // woken instead and polls again with its own.
            match self.drain(&mut outlet, &mut Context::from_waker(Waker::noop())) {
                Poll::Ready(Ok(())) => return,
                Poll::Ready(Err(error)) => outlet.failed = Some(error),
                Poll::Pending => {}
            }
        }
        outlet.idle = false;
        drop(outlet);
        self.changed.notify_one();
    }

    /// The writer task's step: write and flush everything queued. Ready once it is all
    /// flushed (then [`WriteQueue::take_close`] and [`WriteQueue::changed`]); an error ends the
    /// transport.
    pub fn poll_write(&self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let mut outlet = lock(&self.outlet);
        if let Some(error) = outlet.failed.take() {
            return Poll::Ready(Err(error));
        }
        let written = self.drain(&mut outlet, cx);
        outlet.idle = written.is_ready();
        written
    }

    fn drain(&self, outlet: &mut Outlet, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let Some(sink) = outlet.sink.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        loop {
            ready!(sink.as_mut().poll_ready(cx))?;
            let Some(frame) = self.pop() else { break };
            sink.as_mut().start_send(message(frame))?;
            outlet.unflushed = true;
        }
        // One flush for everything queued: one syscall for a burst.
        if outlet.unflushed {
            ready!(sink.as_mut().poll_flush(cx))?;
            outlet.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }

    /// The next frame to write: queued frames in order, then the owed pong.
    fn pop(&self) -> Option<Frame> {
        let mut pending = lock(&self.pending);
        if let Some((frame, message)) = pending.frames.pop_front() {
            pending.bytes -= frame.len();
            // Counted as written from here: once taken, it may reach the peer.
            pending.taken.extend(message);
            return Some(frame);
        }
        pending.pong.take()
    }

    /// Resolves once the writer task has something to do: a close, the transport's sink, or a
    /// write a caller could not finish.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here completes without panicking (a sink's panic aside, which
    // ends its transport), so a poisoned lock still holds a consistent queue.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn message(frame: Frame) -> Message {
    match frame {
        Frame::Text(text) => Message::Text(text.into()),
        Frame::Binary(bytes) => Message::Binary(bytes.into()),
        Frame::Ping(payload) => Message::Ping(payload.into()),
        Frame::Pong(payload) => Message::Pong(payload.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_util::FutureExt;

    use super::*;

    fn text(s: &str) -> Frame {
        Frame::Text(s.into())
    }

    fn queue(frames: usize, bytes: usize) -> WriteQueue {
        WriteQueue::new(Limits { frames, bytes })
    }

    /// What a test socket was given, and whether it takes more.
    #[derive(Default)]
    struct Wire {
        sent: Vec<Message>,
        flushes: usize,
        /// The send buffer is full: nothing is taken until it is not.
        full: bool,
        /// Every write fails.
        broken: bool,
    }

    struct WireSink(Arc<Mutex<Wire>>);

    impl futures_util::Sink<Message> for WireSink {
        type Error = WsError;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            if self.0.lock().unwrap().full {
                return Poll::Pending;
            }
            Poll::Ready(Ok(()))
        }
        fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
            let mut wire = self.0.lock().unwrap();
            if wire.broken {
                return Err(WsError::AlreadyClosed);
            }
            wire.sent.push(item);
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            let mut wire = self.0.lock().unwrap();
            if wire.full {
                return Poll::Pending;
            }
            wire.flushes += 1;
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A queue on an open test socket, its writer done with the first step.
    fn open(wire: &Arc<Mutex<Wire>>) -> WriteQueue {
        let queue = queue(10, 1000);
        queue.attach(Box::pin(WireSink(Arc::clone(wire))));
        assert!(writer_woken(&queue), "the writer is told");
        assert!(writer_step(&queue).is_ready());
        queue
    }

    /// Whether the writer task was woken since it last looked (consumes the wake-up).
    fn writer_woken(queue: &WriteQueue) -> bool {
        queue.changed().now_or_never().is_some()
    }

    fn writer_step(queue: &WriteQueue) -> Poll<Result<(), WsError>> {
        queue.poll_write(&mut Context::from_waker(Waker::noop()))
    }

    fn sent(wire: &Arc<Mutex<Wire>>) -> Vec<Message> {
        wire.lock().unwrap().sent.clone()
    }

    #[test]
    fn frames_come_out_in_order_then_the_pong() {
        let queue = queue(10, 100);
        queue.push(text("a"), None).unwrap();
        queue.push_pong(text("pong 1"));
        queue.push(text("b"), None).unwrap();
        queue.push_pong(text("pong 2"));
        assert_eq!(queue.pop(), Some(text("a")));
        assert_eq!(queue.pop(), Some(text("b")));
        assert_eq!(queue.pop(), Some(text("pong 2")), "only the newest pong");
        assert_eq!(queue.pop(), None);
    }

    #[test]
    fn close_drops_untaken_frames_and_returns_the_messages_taken() {
        let wire = Arc::default();
        let queue = open(&wire);
        let id = |s: &str| Some(MessageId(s.into()));
        queue.push(text("a"), id("a")).unwrap();
        queue.push(text("ping"), None).unwrap();
        queue.push(text("b"), id("b")).unwrap();
        queue.push(text("c"), id("c")).unwrap();
        assert_eq!(queue.pop(), Some(text("a")));
        assert_eq!(queue.pop(), Some(text("ping")));
        assert!(queue.has_written());
        assert_eq!(queue.take_written(), [MessageId("a".into())]);
        assert_eq!(queue.pop(), Some(text("b")));
        queue.push_pong(text("pong"));
        assert_eq!(queue.close(1000, "bye".into()), [MessageId("b".into())]);
        assert!(!queue.has_written());
        assert!(writer_woken(&queue), "the writer is told");
        assert!(writer_step(&queue).is_ready());
        assert_eq!(
            sent(&wire),
            [Message::Text("pong".into())],
            "c is never written"
        );
        let (code, reason, _sink) = queue.take_close().expect("a close");
        assert_eq!((code, reason.as_str()), (1000, "bye"));
        assert!(queue.take_close().is_none());
    }

    #[test]
    fn a_pong_flood_owes_one_pong() {
        let queue = queue(1, 1);
        for i in 0..100_000 {
            queue.push_pong(text(&format!("pong {i}")));
        }
        assert_eq!(queue.pop(), Some(text("pong 99999")));
        assert_eq!(queue.pop(), None);
    }

    #[test]
    fn frames_past_either_bound_are_refused_and_room_returns_as_they_are_written() {
        let queue = queue(3, 10);
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
        assert_eq!(queue.pop(), Some(text("1234")));
        queue.push(text("12"), None).unwrap();
    }

    #[test]
    fn a_lone_frame_is_written_and_flushed_by_the_caller_without_waking_the_writer() {
        let wire = Arc::default();
        let queue = open(&wire);
        queue.push(text("a"), Some(MessageId("a".into()))).unwrap();
        queue.write(true);
        assert_eq!(sent(&wire), [Message::Text("a".into())]);
        assert_eq!(wire.lock().unwrap().flushes, 1);
        assert!(!writer_woken(&queue), "the writer sleeps on");
        assert_eq!(queue.take_written(), [MessageId("a".into())]);
    }

    #[test]
    fn a_burst_is_left_to_the_writer_which_flushes_it_once() {
        let wire = Arc::default();
        let queue = open(&wire);
        for frame in ["a", "b", "c"] {
            queue.push(text(frame), None).unwrap();
            queue.write(false);
        }
        assert!(sent(&wire).is_empty());
        assert!(writer_woken(&queue), "the writer is woken");
        assert!(writer_step(&queue).is_ready());
        let expected: Vec<Message> = ["a", "b", "c"].map(Message::text).into();
        assert_eq!(sent(&wire), expected);
        assert_eq!(wire.lock().unwrap().flushes, 1);
    }

    #[test]
    fn what_a_full_socket_cannot_take_waits_for_the_writer_in_order() {
        let wire: Arc<Mutex<Wire>> = Arc::default();
        let queue = open(&wire);
        wire.lock().unwrap().full = true;
        queue.push(text("a"), None).unwrap();
        queue.write(true);
        assert!(writer_woken(&queue), "the writer takes over");
        // The writer now waits on the socket: later frames queue behind, callers do not write.
        queue.push(text("b"), None).unwrap();
        queue.write(true);
        assert!(!writer_woken(&queue));
        assert!(writer_step(&queue).is_pending());
        wire.lock().unwrap().full = false;
        assert!(writer_step(&queue).is_ready());
        let expected: Vec<Message> = ["a", "b"].map(Message::text).into();
        assert_eq!(sent(&wire), expected);
        queue.push(text("c"), None).unwrap();
        queue.write(true);
        assert_eq!(sent(&wire).len(), 3, "idle again: the caller writes");
    }

    #[test]
    fn a_callers_failed_write_is_the_writers_to_report() {
        let wire: Arc<Mutex<Wire>> = Arc::default();
        let queue = open(&wire);
        wire.lock().unwrap().broken = true;
        queue.push(text("a"), None).unwrap();
        queue.write(true);
        assert!(writer_woken(&queue), "the writer is woken");
        assert!(matches!(writer_step(&queue), Poll::Ready(Err(_))));
    }

    #[test]
    fn frames_queued_before_the_transport_opens_are_the_writers() {
        let wire = Arc::default();
        let queue = queue(10, 100);
        queue.push(text("early"), None).unwrap();
        queue.write(true);
        queue.attach(Box::pin(WireSink(Arc::clone(&wire))));
        assert!(writer_woken(&queue));
        assert!(writer_step(&queue).is_ready());
        assert_eq!(sent(&wire), [Message::Text("early".into())]);
    }
}

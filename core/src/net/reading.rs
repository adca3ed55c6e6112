//! Reading a transport's socket: in batches, and by whom. Its own task reads, except while the
//! app waits for events and none are queued: then the app's waiting call reads it. A frame is
//! then handled on the thread that awaits it, as a bare WebSocket client would: the socket wakes
//! the app directly, instead of waking the transport's task, which would hand the frame on and
//! wake the app in turn (two threads woken, and on a busy CPU the app also waits for the task to
//! finish its turn).
//!
//! Either reader takes the same lock and reports what it read before releasing it, so frames
//! reach the engine in order whoever read them. The socket registers one waker, `ReadWake`,
//! which passes a wake-up to the app while it waits and to the task otherwise; an app that stops
//! waiting with a wake-up unanswered, or with frames possibly left in the buffers, passes its turn
//! back to the task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use futures_util::task::AtomicWaker;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::dial::{self, Ws};
use crate::engine::{ConnId, ConnectionError, Frame};

/// One transport's read half, shared by its task and the app.
pub struct Reading {
    conn: ConnId,
    /// The pump let go of the transport: the app must not hold on to it (nor to its socket).
    retired: AtomicBool,
    stream: Mutex<Stream>,
    wake: Arc<ReadWake>,
    /// `wake` as a waker, made once.
    waker: Waker,
}

struct Stream {
    half: SplitStream<Ws>,
    /// The transport ended (reported by whoever read the end).
    ended: bool,
}

impl Stream {
    /// Read the next batch, registering `waker` with the socket, and report it (under the read
    /// lock, which the caller holds). Ready with whether the read left work nobody will be woken
    /// for: a batch that stopped at its bounds, or the end of the transport.
    fn read(&mut self, waker: &Waker, report: impl FnOnce(Batch)) -> Poll<bool> {
        let batch = std::task::ready!(next_batch(&mut self.half, &mut Context::from_waker(waker)));
        self.ended = batch.end.is_some();
        let unfinished = batch.full || self.ended;
        report(batch);
        Poll::Ready(unfinished)
    }
}

/// The socket's waker: forwards to the app while it waits, else to the transport's task.
#[derive(Default)]
struct ReadWake {
    task: AtomicWaker,
    app: AtomicWaker,
    app_waits: AtomicBool,
    /// The app owes the task a turn: it was woken by the socket, or its last read stopped at a
    /// batch bound (frames may be buffered with no wake-up to come).
    app_owes_turn: AtomicBool,
}

impl Wake for ReadWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.app_waits.load(Ordering::SeqCst) {
            self.app_owes_turn.store(true, Ordering::SeqCst);
            self.app.wake();
            // The app may have stopped waiting meanwhile, before it could see the debt.
            if self.app_waits.load(Ordering::SeqCst) {
                return;
            }
        }
        self.task.wake();
    }
}

impl Reading {
    /// The read half of a newly opened transport.
    pub fn new(conn: ConnId, half: SplitStream<Ws>) -> Arc<Self> {
        let wake = Arc::new(ReadWake::default());
        Arc::new(Reading {
            conn,
            retired: AtomicBool::new(false),
            stream: Mutex::new(Stream { half, ended: false }),
            waker: Waker::from(Arc::clone(&wake)),
            wake,
        })
    }

    /// The transport task's read: the next batch, reported by `report` under the read lock.
    /// `None` once the transport ended (whoever read the end reported it).
    pub fn poll_for_task(
        &self,
        cx: &mut Context<'_>,
        report: impl FnOnce(Batch),
    ) -> Poll<Option<()>> {
        self.wake.task.register(cx.waker());
        // The app holds the lock only while it reads and reports one batch.
        let mut stream = self.lock();
        if stream.ended {
            return Poll::Ready(None);
        }
        stream.read(&self.waker, report).map(|_| Some(()))
    }

    /// The pump let go of the transport: a waiting app lets go too, and looks for the current one.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        self.wake.app.wake();
    }

    /// Start the app's turn: until the returned guard is dropped, the socket wakes the app.
    /// `None` if another caller is waiting already (it reads; this one waits for events).
    pub fn app_turn(self: &Arc<Self>) -> Option<AppTurn> {
        self.wake
            .app_waits
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .ok()?;
        Some(AppTurn {
            reading: Arc::clone(self),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Stream> {
        // Nothing panics while the lock is held but the report, which leaves the stream as it was.
        self.stream
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for Reading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reading").field("conn", &self.conn).finish()
    }
}

/// The app's turn at reading, while it waits for events.
pub struct AppTurn {
    reading: Arc<Reading>,
}

impl AppTurn {
    /// The transport it reads.
    pub fn conn(&self) -> ConnId {
        self.reading.conn
    }

    /// Whether the pump let go of the transport.
    pub fn is_retired(&self) -> bool {
        self.reading.retired.load(Ordering::SeqCst)
    }

    /// Read the next batch on the app's thread and report it under the read lock. Pending
    /// (with the app's waker registered) if nothing is ready or the task is reading right now:
    /// its report wakes the app through the inbox. Ready without reading if the pump let go of
    /// the transport: the caller then looks for another.
    pub fn poll(&self, cx: &mut Context<'_>, report: impl FnOnce(Batch)) -> Poll<()> {
        let reading = &*self.reading;
        reading.wake.app.register(cx.waker());
        // Let go of since the caller looked (its wake-up may have gone to an older waker).
        if self.is_retired() {
            return Poll::Ready(());
        }
        let mut stream = match reading.stream.try_lock() {
            Ok(stream) => stream,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return Poll::Pending,
        };
        if stream.ended {
            return Poll::Pending;
        }
        // Reading now answers any wake-up so far.
        reading.wake.app_owes_turn.store(false, Ordering::SeqCst);
        stream.read(&reading.waker, report).map(|unfinished| {
            if unfinished {
                reading.wake.app_owes_turn.store(true, Ordering::SeqCst);
            }
        })
    }
}

impl Drop for AppTurn {
    fn drop(&mut self) {
        let wake = &self.reading.wake;
        wake.app_waits.store(false, Ordering::SeqCst);
        if wake.app_owes_turn.swap(false, Ordering::SeqCst) {
            wake.task.wake();
        }
    }
}

/// Most frames read into one step: what a busy link delivers at once is handled with one
/// lock, one flush and one wake-up of the app, while the app still gets the first of them soon.
const READ_BATCH: usize = 64;

/// Past this many payload bytes a batch takes no more frames (its first may be larger, up to
/// the inbound limit, as a lone frame always could).
const READ_BATCH_BYTES: usize = 64 * 1024;

/// How a transport's stream ended.
#[derive(Debug)]
pub enum Ended {
    /// The peer closed (`None`: without a close frame).
    Closed(Option<u16>, String),
    /// The connection broke.
    Failed(ConnectionError),
}

/// What one read took from the socket.
pub struct Batch {
    /// The frames, in order.
    pub frames: Vec<Frame>,
    /// How the transport ended, if it did.
    pub end: Option<Ended>,
    /// The batch stopped at its bounds: more frames may be buffered already, and the socket
    /// will not wake anyone for them.
    pub full: bool,
}

/// Every frame ready now, within a batch's bounds, waiting for the first; and how the
/// transport ended, if it did.
fn next_batch<S>(stream: &mut S, cx: &mut Context<'_>) -> Poll<Batch>
where
    S: futures_util::Stream<Item = Result<Message, WsError>> + Unpin,
{
    let (mut frames, mut bytes) = (Vec::new(), 0);
    let end = |frames, end| {
        Poll::Ready(Batch {
            frames,
            end: Some(end),
            full: false,
        })
    };
    while frames.len() < READ_BATCH && bytes < READ_BATCH_BYTES {
        match stream.poll_next_unpin(cx) {
            Poll::Ready(Some(inbound)) => {
                bytes += inbound.as_ref().map_or(0, Message::len);
                match frame_of(inbound) {
                    Ok(frame) => frames.extend(frame),
                    Err(report) => return end(frames, report),
                }
            }
            Poll::Ready(None) => return end(frames, Ended::Closed(None, String::new())),
            // Registered for the next frame: nothing yet to hand on, or the batch is complete.
            Poll::Pending if frames.is_empty() => return Poll::Pending,
            Poll::Pending => {
                return Poll::Ready(Batch {
                    frames,
                    end: None,
                    full: false,
                });
            }
        }
    }
    Poll::Ready(Batch {
        frames,
        end: None,
        full: true,
    })
}

/// The frame an inbound message carries (`None` for a raw frame, which tungstenite does not
/// hand out when reading), or how it ends the transport.
fn frame_of(inbound: Result<Message, WsError>) -> Result<Option<Frame>, Ended> {
    match inbound {
        Ok(Message::Text(text)) => Ok(Some(Frame::Text(text.as_str().to_owned()))),
        Ok(Message::Binary(bytes)) => Ok(Some(Frame::Binary(bytes.to_vec()))),
        Ok(Message::Ping(payload)) => Ok(Some(Frame::Ping(payload.to_vec()))),
        Ok(Message::Pong(payload)) => Ok(Some(Frame::Pong(payload.to_vec()))),
        Ok(Message::Frame(_)) => Ok(None),
        Ok(Message::Close(frame)) => {
            let (code, reason) = frame.map_or((None, String::new()), |f| {
                (Some(u16::from(f.code)), f.reason.as_str().to_owned())
            });
            Err(Ended::Closed(code, reason))
        }
        Err(err) => Err(Ended::Failed(dial::handshake_error(&err))),
    }
}

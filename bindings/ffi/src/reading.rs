//! The rules of taking events, for every host: one reader at a time, and how much one take
//! holds. Hosts only wrap these calls in their idiom (`async for`, `Flow`, `AsyncSequence`).
//!
//! A second reader while one is taking would split the stream between them (each event goes
//! to one), which no app wants: it is refused with [`ErrorKind::AlreadyReading`]. A reader that
//! stops (its task cancelled, its loop left) frees the socket at once, and loses nothing: the
//! Rust socket keeps a batch whose take was interrupted for the next reader.

use std::sync::atomic::{AtomicBool, Ordering};

use steadyws::Socket;

use crate::error::{ErrorKind, NativeError};

/// Events per take without a store: enough to amortise a host's cost per call (Python's above
/// all), small enough that a take stays a short pause for the host's event loop.
const BATCH: usize = 256;

/// Events per take with a store, where taking the next batch commits the previous one: after a
/// crash, only what the app held can come again (flagged `redelivered`), so hosts hold one.
const DURABLE_BATCH: usize = 1;

/// Whether a reader is taking events; held for the length of one take.
#[derive(Default)]
pub(crate) struct Reading {
    busy: AtomicBool,
}

/// One reader's claim, released when the take ends or is dropped half-way.
pub(crate) struct Claim<'a>(&'a AtomicBool);

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Reading {
    /// Claim the socket's events for one take, or refuse a second reader.
    pub fn claim(&self) -> Result<Claim<'_>, NativeError> {
        if self.busy.swap(true, Ordering::AcqRel) {
            return Err(NativeError::new(
                ErrorKind::AlreadyReading,
                "another reader is taking this socket's events: one reader at a time; read the events in one place and hand them on",
            ));
        }
        Ok(Claim(&self.busy))
    }
}

/// How many events one take may hold on `socket`.
pub(crate) fn batch_size(socket: &Socket) -> usize {
    if socket.is_durable() {
        DURABLE_BATCH
    } else {
        BATCH
    }
}

//! The store's writer: a thread that applies changes in group commits, and closes the file
//! while the app is in the background.
//!
//! Changes are submitted under the socket's lock, so they reach the file in the order the
//! engine decided them. Each gets a ticket; `send` waits for its ticket, so it returns once the
//! message is durable. The thread takes everything queued at once and commits it in one
//! transaction, so a burst of sends from several threads shares one commit; removals (acks),
//! which nobody waits for, join the next commit or are written after 50 ms. While released, the file is opened for each batch and closed after it, so no lock or
//! open transaction is held while the OS may suspend the app (iOS kills a suspended app that
//! holds a file lock: 0xdead10cc).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::sync::watch;

use super::file::StoreFile;
use super::{Change, StoreConfig, StoreError};

/// A submitted change's place in line.
pub type Ticket = u64;

/// How often a store that should be open, but could not be reopened, is tried again.
const REOPEN_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

/// How long removals alone wait for a commit to share.
const REMOVAL_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

/// Failed batches remembered for waiters that look late.
const REMEMBERED_FAILURES: usize = 4096;

struct Line {
    queued: Vec<Change>,
    /// The ticket the next change gets; tickets start at 1.
    next: Ticket,
    /// Every ticket up to this one was handled, successfully or not.
    handled: Ticket,
    /// Ticket ranges whose batch failed, with why.
    failures: VecDeque<(Ticket, Ticket, StoreError)>,
    /// Keep the file open between batches (foreground) or not (background).
    hold_open: bool,
    /// Someone waits for a queued change: write now. Removals alone wait for company.
    urgent: bool,
    /// `hold_open` changed and the thread has not acted on it yet.
    control: bool,
    stopping: bool,
    /// The thread has ended: changes submitted now fail at once.
    closed: bool,
}

struct Channel {
    line: Mutex<Line>,
    /// Wakes the thread.
    work: Condvar,
    /// Wakes threads waiting for a ticket.
    handled: Condvar,
    /// The same, for async waiters.
    handled_watch: watch::Sender<Ticket>,
    /// The store file, for errors.
    path: String,
}

impl Channel {
    fn lock(&self) -> MutexGuard<'_, Line> {
        self.line
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wake everyone waiting for a ticket up to `handled`.
    fn announce(&self, handled: Ticket) {
        self.handled.notify_all();
        self.handled_watch.send_replace(handled);
    }
}

/// Ends the writer for good when its thread ends, even by a panic: whatever is queued fails,
/// later changes fail at once, and every waiter wakes.
struct Closing<'a>(&'a Channel);

impl Drop for Closing<'_> {
    fn drop(&mut self) {
        let mut line = self.0.lock();
        line.closed = true;
        let last = line.next - 1;
        if line.handled < last {
            let first = line.handled + 1;
            line.queued.clear();
            let error = StoreError::Failed {
                path: self.0.path.clone(),
                detail: "the store's writer stopped; create a new socket on this store".into(),
            };
            remember_failure(&mut line, (first, last), error);
            line.handled = last;
        }
        drop(line);
        self.0.announce(last);
    }
}

/// The handle the socket keeps.
pub struct StoreWriter {
    channel: Arc<Channel>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl StoreWriter {
    /// Start the thread over an open file.
    pub fn start(file: StoreFile, config: StoreConfig, seen_limit: usize) -> std::io::Result<Self> {
        let channel = Arc::new(Channel {
            line: Mutex::new(Line {
                queued: Vec::new(),
                next: 1,
                handled: 0,
                failures: VecDeque::new(),
                hold_open: true,
                urgent: false,
                control: false,
                stopping: false,
                closed: false,
            }),
            work: Condvar::new(),
            handled: Condvar::new(),
            handled_watch: watch::Sender::new(0),
            path: config.path().display().to_string(),
        });
        let thread = std::thread::Builder::new()
            .name("steadyws-store".into())
            .spawn({
                let channel = Arc::clone(&channel);
                move || run(&channel, Some(file), &config, seen_limit)
            })?;
        Ok(StoreWriter {
            channel,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queue a change; never blocks on the file.
    pub fn submit(&self, change: Change) -> Ticket {
        let mut line = self.channel.lock();
        let ticket = line.next;
        line.next += 1;
        if line.closed {
            remember_failure(&mut line, (ticket, ticket), self.stopped_error());
            line.handled = ticket;
            drop(line);
            self.channel.announce(ticket);
            return ticket;
        }
        // Nobody waits for an acknowledged message's removal (losing one only means a resend
        // the server dedups after a crash), so these ride along with the next commit.
        let urgent = !matches!(change, Change::Acked(_));
        line.queued.push(change);
        if urgent {
            line.urgent = true;
            drop(line);
            self.channel.work.notify_one();
        }
        ticket
    }

    /// Why nothing can be written any more: the socket was closed.
    pub fn stopped_error(&self) -> StoreError {
        StoreError::Failed {
            path: self.channel.path.clone(),
            detail: "the socket was closed; create a new socket on this store".into(),
        }
    }

    /// The last ticket given out: waiting for it waits for everything submitted so far.
    pub fn latest(&self) -> Ticket {
        self.channel.lock().next - 1
    }

    /// Block until `ticket` is durable (or failed).
    pub fn wait(&self, ticket: Ticket) -> Result<(), StoreError> {
        let mut line = self.hurry(ticket);
        while line.handled < ticket {
            line = self
                .channel
                .handled
                .wait(line)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        outcome(&line, ticket)
    }

    /// Wait for `ticket` from async code.
    pub async fn wait_async(&self, ticket: Ticket) -> Result<(), StoreError> {
        drop(self.hurry(ticket));
        let mut handled = self.channel.handled_watch.subscribe();
        // The sender lives as long as `self`, so this only ends once the ticket is handled.
        let _ = handled.wait_for(|done| *done >= ticket).await;
        outcome(&self.channel.lock(), ticket)
    }

    /// Make sure `ticket` is written without delay, since someone waits for it.
    fn hurry(&self, ticket: Ticket) -> MutexGuard<'_, Line> {
        let mut line = self.channel.lock();
        if line.handled < ticket && !line.urgent {
            line.urgent = true;
            self.channel.work.notify_one();
        }
        line
    }

    /// Close the file after the current batch and keep it closed between batches.
    pub fn release(&self) {
        self.set_hold_open(false);
    }

    /// Open the file again and keep it open.
    pub fn reopen(&self) {
        self.set_hold_open(true);
    }

    fn set_hold_open(&self, hold_open: bool) {
        let mut line = self.channel.lock();
        if line.hold_open != hold_open {
            line.hold_open = hold_open;
            line.control = true;
            drop(line);
            self.channel.work.notify_one();
        }
    }

    /// Write what is queued, close the file and end the thread.
    pub fn stop(&self) {
        self.channel.lock().stopping = true;
        self.channel.work.notify_one();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for StoreWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

fn outcome(line: &Line, ticket: Ticket) -> Result<(), StoreError> {
    match line
        .failures
        .iter()
        .find(|(first, last, _)| (*first..=*last).contains(&ticket))
    {
        Some((_, _, error)) => Err(error.clone()),
        None => Ok(()),
    }
}

fn remember_failure(line: &mut Line, (first, last): (Ticket, Ticket), error: StoreError) {
    // Failures come in runs (a full disk, another owner): one range per run, so a waiter that
    // wakes late still finds its own.
    if let Some(previous) = line.failures.back_mut()
        && previous.1 + 1 == first
        && previous.2 == error
    {
        previous.1 = last;
        return;
    }
    if line.failures.len() == REMEMBERED_FAILURES {
        line.failures.pop_front();
    }
    line.failures.push_back((first, last, error));
}

fn run(channel: &Channel, mut file: Option<StoreFile>, config: &StoreConfig, seen_limit: usize) {
    let _closing = Closing(channel);
    loop {
        let (batch, last, hold_open, stopping) = {
            let mut line = channel.lock();
            while !line.urgent && !line.control && !line.stopping {
                if !line.queued.is_empty() {
                    // Only removals: give them a moment to share a commit.
                    let (next, _) = channel
                        .work
                        .wait_timeout(line, REMOVAL_DELAY)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    line = next;
                    break;
                }
                if line.hold_open && file.is_none() {
                    // Reopening failed (another owner took the file while the app was in the
                    // background): try again soon rather than only at the next write.
                    let (next, _) = channel
                        .work
                        .wait_timeout(line, REOPEN_RETRY)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    line = next;
                    break;
                }
                line = channel
                    .work
                    .wait(line)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            line.control = false;
            line.urgent = false;
            (
                std::mem::take(&mut line.queued),
                line.next - 1,
                line.hold_open,
                line.stopping,
            )
        };
        let result = (!batch.is_empty()).then(|| {
            match file.as_mut() {
                Some(open) => Ok(open),
                None => StoreFile::reopen(config, seen_limit).map(|opened| file.insert(opened)),
            }
            .and_then(|open| {
                open.apply(&batch).map_err(|detail| StoreError::Failed {
                    path: config.path().display().to_string(),
                    detail,
                })
            })
        });
        // Close before telling waiters, so whoever returns from a background send finds the
        // file free.
        if stopping || !hold_open {
            // Dropping the connection releases the lock; no transaction is open between batches.
            file = None;
        } else if file.is_none() {
            match StoreFile::reopen(config, seen_limit) {
                Ok(opened) => file = Some(opened),
                Err(error) => log::info!("store not reopened yet: {error}"),
            }
        }
        if let Some(result) = result {
            let mut line = channel.lock();
            if let Err(error) = result {
                log::warn!("store write failed for {} changes: {error}", batch.len());
                let first = line.handled + 1;
                remember_failure(&mut line, (first, last), error);
            }
            line.handled = last;
            drop(line);
            channel.announce(last);
        }
        if stopping {
            let mut line = channel.lock();
            if line.queued.is_empty() {
                // Under the same lock as the check, so no change can slip in unhandled.
                line.closed = true;
                return;
            }
        }
    }
}

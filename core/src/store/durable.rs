//! `Durable`: everything a socket does to make its messages outlive the process, in one place.
//!
//! It opens the store and hands the engine what an earlier run left; it mirrors the engine's
//! steps into the store through the pump's [`Journal`] hook (a message queued, acknowledged or
//! failed; where the stream starts); and it keeps the take rule: taking a batch commits the one
//! taken before it, and only the batch in hand can come again after a crash, flagged
//! `redelivered`. The socket asks it to wait until what it did is durable.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::file::StoreFile;
use super::in_hand::InHand;
use super::writer::{StoreWriter, Ticket};
use super::{Change, Snapshot, StoreConfig, StoreError, StoredMessage, unix_ms};
use crate::engine::{
    AppState, Config, ConfigError, Engine, Event, Instant, MessageId, Mode, OutboxEntry, Payload,
    ResumeCursor,
};
use crate::net::pump::Journal;

/// One socket's store, and what the app holds of it.
pub(crate) struct Durable {
    writer: StoreWriter,
    in_hand: Mutex<InHand>,
    /// The store knows where the stream starts for this client.
    start_recorded: AtomicBool,
    /// A batch whose take was interrupted while its record was being written (the reader's
    /// future dropped): the next take returns it, so nothing taken is lost.
    interrupted: Mutex<Option<Vec<Event>>>,
}

/// What an earlier run left, for the engine once it exists.
pub(crate) struct Restore {
    snapshot: Snapshot,
    /// The store was damaged and rebuilt: reported to the app first.
    pub recovered: Option<Event>,
}

impl Restore {
    /// The client id an earlier run recorded.
    pub fn client_id(&self) -> Option<&str> {
        self.snapshot.client_id.as_deref()
    }
}

impl Durable {
    /// Why `store` cannot serve a socket configured as `engine`, if it cannot.
    pub fn check(store: &StoreConfig, engine: &Config) -> Result<(), ConfigError> {
        if engine.mode != Mode::Envelope {
            return Err(ConfigError::Invalid {
                field: "store",
                problem: "needs envelope mode: a store keeps messages until the server acknowledges them, and raw mode has no acknowledgements".into(),
            });
        }
        match store.name_problem() {
            Some(problem) => Err(ConfigError::Invalid {
                field: "store.name",
                problem,
            }),
            None => Ok(()),
        }
    }

    /// Open the store (after [`Durable::check`]), and take from it what the engine needs before
    /// it starts: the client id and the resume cursor (unless the app set them).
    pub fn open(
        store: &StoreConfig,
        engine: &mut Config,
    ) -> Result<(Arc<Self>, Restore), StoreError> {
        let seen_limit = engine.dedup.max_entries;
        let opened = StoreFile::open(store, seen_limit)?;
        let snapshot = opened.snapshot;
        if engine.client_id.is_none() {
            engine.client_id.clone_from(&snapshot.client_id);
        }
        if engine.resume.initial == ResumeCursor::default() {
            engine.resume.initial = snapshot.cursor;
        }
        let recovered = opened.recovery.map(|recovery| Event::StoreRecovered {
            problem: recovery.problem,
            recovered_messages: recovery.recovered_messages,
            moved_to: recovery.moved_to,
        });
        let writer = StoreWriter::start(opened.file, store.clone(), seen_limit).map_err(|err| {
            StoreError::Failed {
                path: store.path().display().to_string(),
                detail: format!("cannot start its writer thread: {err}"),
            }
        })?;
        let durable = Durable {
            writer,
            in_hand: Mutex::new(InHand::after_restart(snapshot.in_hand.iter().cloned())),
            start_recorded: AtomicBool::new(false),
            interrupted: Mutex::new(None),
        };
        Ok((
            Arc::new(durable),
            Restore {
                snapshot,
                recovered,
            },
        ))
    }

    /// Hand what an earlier run left to the new engine: the inbound ids the app committed (for
    /// dedup) and the pending messages, with their wall-clock times mapped onto the engine's
    /// timeline.
    pub fn restore(&self, restore: Restore, engine: &mut Engine, now: Instant) {
        let Snapshot { seen, pending, .. } = restore.snapshot;
        let wall = unix_ms(SystemTime::now());
        let at = |ms: u64| now.saturating_sub(Duration::from_millis(wall.saturating_sub(ms)));
        for (id, taken_ms) in &seen {
            engine.remember_delivered(at(*taken_ms), id);
        }
        let pending = pending
            .into_iter()
            .map(|message| OutboxEntry {
                id: MessageId(message.id),
                payload: Payload::Json(message.data),
                created_at: at(message.created_ms),
                expires_at: message
                    .expires_ms
                    .map(|ms| now + Duration::from_millis(ms.saturating_sub(wall))),
            })
            .collect();
        engine.restore(now, pending);
    }

    /// Record the identity the engine gives the server, before anything else: pending messages
    /// must be resent under it after a crash.
    pub fn keep_client_id(
        &self,
        stored: Option<&str>,
        ours: Option<String>,
    ) -> Result<(), StoreError> {
        match ours {
            Some(ours) if stored != Some(ours.as_str()) => {
                self.writer.wait(self.writer.submit(Change::ClientId(ours)))
            }
            _ => Ok(()),
        }
    }

    /// Block until everything submitted so far is durable (`send`, `cancel`).
    pub fn written(&self) -> Result<(), StoreError> {
        self.writer.wait(self.writer.latest())
    }

    /// [`Durable::written`] from async code.
    pub async fn written_async(&self) -> Result<(), StoreError> {
        self.writer.wait_async(self.writer.latest()).await
    }

    /// In the background the file is closed between writes, so the app holds no file lock
    /// while the OS may suspend it; from the foreground on it stays open.
    pub fn set_app_state(&self, app: AppState) {
        match app {
            AppState::Background => self.writer.release(),
            AppState::Foreground => self.writer.reopen(),
        }
    }

    /// A batch whose take was interrupted, to hand out before anything new.
    pub fn interrupted(&self) -> Option<Vec<Event>> {
        lock(&self.interrupted).take()
    }

    /// The app took `batch`: flag what it may have seen before an earlier crash, and record
    /// that the batch before it is committed. Wait on the returned record before handing the
    /// batch out.
    pub fn take(&self, batch: &mut [Event]) -> Option<TakeRecord<'_>> {
        let change = lock(&self.in_hand).take(batch)?;
        let ticket = self.writer.submit(change.clone());
        Some(TakeRecord {
            durable: self,
            ticket,
            change,
        })
    }

    /// The socket is closing: commit what the app took, and close the file.
    pub fn close(&self) {
        if let Some(change) = lock(&self.in_hand).take(&mut []) {
            self.writer.submit(change);
        }
        self.writer.stop();
    }

    /// A take could not be recorded: what it committed goes with the next take.
    fn not_recorded(&self, change: Change, error: &StoreError) {
        log::warn!("taken messages not committed yet: {error}");
        lock(&self.in_hand).unwritten(change);
    }
}

/// The record of one take, being written.
pub(crate) struct TakeRecord<'a> {
    durable: &'a Durable,
    ticket: Ticket,
    change: Change,
}

impl TakeRecord<'_> {
    /// Wait until the take is recorded, then hand `batch` out. If the waiting future is dropped
    /// first, the batch is kept for the next take.
    pub async fn recorded(self, batch: Vec<Event>) -> Vec<Event> {
        let held = Held {
            slot: &self.durable.interrupted,
            batch: Some(batch),
        };
        if let Err(error) = self.durable.writer.wait_async(self.ticket).await {
            self.durable.not_recorded(self.change, &error);
        }
        held.release()
    }

    /// [`TakeRecord::recorded`], blocking.
    pub fn recorded_now(self, batch: Vec<Event>) -> Vec<Event> {
        if let Err(error) = self.durable.writer.wait(self.ticket) {
            self.durable.not_recorded(self.change, &error);
        }
        batch
    }
}

/// A taken batch on its way to the app; put back for the next take if it never gets there.
struct Held<'a> {
    slot: &'a Mutex<Option<Vec<Event>>>,
    batch: Option<Vec<Event>>,
}

impl Held<'_> {
    fn release(mut self) -> Vec<Event> {
        self.batch.take().unwrap_or_default()
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(batch) = self.batch.take() {
            *lock(self.slot) = Some(batch);
        }
    }
}

impl Journal for Durable {
    fn queued(&self, id: &MessageId, payload: &Payload, ttl: Option<Duration>) {
        if let Payload::Json(json) = payload {
            let message = StoredMessage::sent_now(id, json.clone(), ttl);
            self.writer.submit(Change::Enqueue(message));
        }
    }

    fn event(&self, event: &Event) {
        let change = match event {
            Event::Acked(id) => Change::Acked(id.0.clone()),
            Event::SendFailed { id, .. } => Change::Remove(id.0.clone()),
            _ => return,
        };
        self.writer.submit(change);
    }

    fn stepped(&self, engine: &Engine) {
        if self.start_recorded.load(Ordering::Relaxed) {
            return;
        }
        if engine.messages_taken() > 0 {
            // From the first take on, takes record the position.
            self.start_recorded.store(true, Ordering::Relaxed);
        } else if engine.committed() != ResumeCursor::default() {
            // Until the app takes a message, this is where a restart must resume from.
            self.writer.submit(Change::Cursor(engine.committed()));
            self.start_recorded.store(true, Ordering::Relaxed);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

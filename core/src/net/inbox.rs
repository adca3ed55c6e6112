//! The events waiting for the app. Nothing in it is ever dropped, and it is bounded all the
//! same: once it holds its limit of events, or of message bytes, the socket's transports stop
//! reading until the app has taken it down to half, so TCP pushes back on the server instead of
//! the client growing. Events still get in past the limit (an event is never refused), but only from what
//! was already read or from the socket's own timers: few, and their sources stop with reading
//! (acks, for one, arrive only by reading).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::engine::Event;

/// How much may wait for the app before reading pauses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboxLimits {
    /// Most events waiting.
    pub events: usize,
    /// Most payload bytes of messages waiting.
    pub bytes: usize,
}

#[derive(Default)]
struct Queue {
    events: VecDeque<Event>,
    /// Payload bytes of the messages among `events`.
    bytes: usize,
    /// No more events will come: readers get what is left, then an empty batch.
    closed: bool,
}

/// One socket's queue of events for the app.
pub struct Inbox {
    queue: Mutex<Queue>,
    limits: InboxLimits,
    /// Wakes the app's reader.
    arrived: Notify,
    /// Events were added and the app not woken for them yet.
    unannounced: AtomicBool,
    /// Wakes transports waiting for room.
    drained: Notify,
}

fn message_bytes(event: &Event) -> Option<usize> {
    match event {
        Event::Message(message) => Some(message.data.len()),
        _ => None,
    }
}

impl Inbox {
    /// An empty inbox.
    pub fn new(limits: InboxLimits) -> Self {
        Inbox {
            queue: Mutex::default(),
            limits,
            arrived: Notify::new(),
            unannounced: AtomicBool::new(false),
            drained: Notify::new(),
        }
    }

    /// Add an event; never refuses (transports stop reading before messages overflow).
    pub fn push(&self, event: Event) {
        self.extend_unannounced(std::iter::once(event));
        self.announce();
    }

    /// Add events without waking the app yet: [`Inbox::announce`] does, once for all of them.
    pub fn extend_unannounced(&self, events: impl IntoIterator<Item = Event>) {
        let mut queue = self.lock();
        let before = queue.events.len();
        for event in events {
            queue.bytes += message_bytes(&event).unwrap_or(0);
            queue.events.push_back(event);
        }
        if queue.events.len() > before {
            self.unannounced.store(true, Ordering::Release);
        }
    }

    /// Wake the app if events arrived since the last call.
    pub fn announce(&self) {
        if self.unannounced.swap(false, Ordering::AcqRel) {
            self.arrived.notify_waiters();
        }
    }

    /// Whether transports should stop reading.
    pub fn is_full(&self) -> bool {
        let queue = self.lock();
        !queue.closed && Self::full(&queue, self.limits)
    }

    fn full(queue: &Queue, limits: InboxLimits) -> bool {
        queue.events.len() >= limits.events || queue.bytes >= limits.bytes
    }

    /// Reading resumes only once the app took the queue down to half its bounds: pausing and
    /// resuming costs a step each, and doing it once per batch the app takes would be paid over
    /// and over during a long backlog.
    fn half_empty(queue: &Queue, limits: InboxLimits) -> bool {
        queue.events.len() <= limits.events / 2 && queue.bytes <= limits.bytes / 2
    }

    /// Resolves once the app made room, down to half the bounds (or the inbox closed).
    pub async fn room(&self) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            {
                let queue = self.lock();
                if queue.closed || Self::half_empty(&queue, self.limits) {
                    return;
                }
            }
            drained.await;
        }
    }

    /// Up to `max` events ready now, oldest first.
    pub fn take(&self, max: usize) -> Vec<Event> {
        let mut queue = self.lock();
        let was_above_half = !Self::half_empty(&queue, self.limits);
        let count = max.min(queue.events.len());
        let batch: Vec<Event> = queue.events.drain(..count).collect();
        queue.bytes -= batch.iter().filter_map(message_bytes).sum::<usize>();
        let now_half_empty = Self::half_empty(&queue, self.limits);
        drop(queue);
        if was_above_half && now_half_empty {
            self.drained.notify_waiters();
        }
        batch
    }

    /// Up to `max` events: waits for the first, then takes what is already queued. Empty once
    /// the inbox is closed and drained. While none are queued, `read` is polled beside the wait:
    /// it may add events itself (it is how the app reads the socket while it waits), and its
    /// `Ready` means "look again".
    pub async fn next(
        &self,
        max: usize,
        mut read: impl FnMut(&mut std::task::Context<'_>) -> std::task::Poll<()>,
    ) -> Vec<Event> {
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let batch = self.take(max);
            if !batch.is_empty() || self.lock().closed {
                return batch;
            }
            std::future::poll_fn(|cx| match arrived.as_mut().poll(cx) {
                std::task::Poll::Ready(()) => std::task::Poll::Ready(()),
                std::task::Poll::Pending => read(cx),
            })
            .await;
        }
    }

    /// Drop the messages still waiting (the other events stay): for a socket whose store can
    /// no longer record what the app takes, so the server replays them to the next one.
    pub fn discard_messages(&self) {
        let mut queue = self.lock();
        queue.events.retain(|event| message_bytes(event).is_none());
        queue.bytes = 0;
        drop(queue);
        self.drained.notify_waiters();
    }

    /// No more events will come; waiting readers and transports are released.
    pub fn close(&self) {
        self.lock().closed = true;
        self.arrived.notify_waiters();
        self.drained.notify_waiters();
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // No critical section above can panic halfway, so a poisoned queue is consistent.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::engine::{Cause, InboundMessage, MessageId, Payload, ResumeCursor, State};

    /// No socket to read while waiting.
    fn no_socket(_: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Pending
    }

    fn message(text: &str) -> Event {
        Event::Message(InboundMessage {
            id: None,
            seq: None,
            ts: None,
            data: Payload::Text(text.into()),
            cursor: ResumeCursor::default(),
            redelivered: false,
        })
    }

    #[test]
    fn full_by_count_or_bytes_and_nothing_dropped() {
        let inbox = Inbox::new(InboxLimits {
            events: 2,
            bytes: 10,
        });
        inbox.push(message("1234"));
        assert!(!inbox.is_full());
        inbox.push(Event::Acked(MessageId("a".into())));
        assert!(inbox.is_full(), "two events, whatever they are");
        assert_eq!(inbox.take(2).len(), 2);
        assert!(!inbox.is_full());
        inbox.push(message("0123456789"));
        assert!(inbox.is_full(), "ten bytes");
        let state = Event::StateChanged {
            state: State::Open,
            cause: Cause::Opened,
        };
        inbox.push(state.clone());
        assert_eq!(inbox.take(10).last(), Some(&state), "nothing dropped");
        assert!(!inbox.is_full());
    }

    #[tokio::test]
    async fn reading_resumes_only_once_half_the_queue_is_taken() {
        let inbox = std::sync::Arc::new(Inbox::new(InboxLimits {
            events: 4,
            bytes: 1000,
        }));
        for text in ["a", "b", "c", "d"] {
            inbox.push(message(text));
        }
        assert!(inbox.is_full());
        let waiting = tokio::spawn({
            let inbox = inbox.clone();
            async move { inbox.room().await }
        });
        inbox.take(1);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "three of four left: not yet");
        inbox.take(1);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("half taken: reading resumes")
            .unwrap();
    }

    #[tokio::test]
    async fn room_resolves_once_the_app_takes_and_next_ends_after_close() {
        let inbox = std::sync::Arc::new(Inbox::new(InboxLimits {
            events: 1,
            bytes: 100,
        }));
        inbox.push(message("a"));
        let waiting = tokio::spawn({
            let inbox = inbox.clone();
            async move { inbox.room().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "no room while full");
        assert_eq!(inbox.next(8, no_socket).await.len(), 1);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("room after taking")
            .unwrap();
        inbox.push(message("b"));
        inbox.close();
        assert_eq!(
            inbox.next(8, no_socket).await.len(),
            1,
            "what is left first"
        );
        assert!(inbox.next(8, no_socket).await.is_empty());
    }

    #[test]
    fn a_waiting_reader_is_woken_once_per_announce_not_per_event() {
        struct Count(std::sync::atomic::AtomicUsize);
        impl std::task::Wake for Count {
            fn wake(self: std::sync::Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let inbox = Inbox::new(InboxLimits {
            events: 100,
            bytes: 1000,
        });
        let wakes = std::sync::Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
        let waker = std::task::Waker::from(wakes.clone());
        let mut next = std::pin::pin!(inbox.next(8, no_socket));
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(next.as_mut().poll(&mut cx).is_pending());
        inbox.extend_unannounced([message("a"), message("b")]);
        inbox.extend_unannounced([message("c")]);
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            0,
            "not woken before the announce"
        );
        inbox.announce();
        inbox.announce();
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            1,
            "one wake-up for the three"
        );
        let std::task::Poll::Ready(batch) = next.as_mut().poll(&mut cx) else {
            panic!("the events are there");
        };
        assert_eq!(batch.len(), 3);
    }
}

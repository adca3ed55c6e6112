//! The outbox: client messages waiting to be written or acknowledged, in send order, within
//! count and byte bounds. It lives in memory; a durable store (in the driver) mirrors it and
//! hands it back through [`Engine::restore`](super::Engine::restore) after a restart.

use std::collections::VecDeque;

use super::config::{OutboxConfig, OverflowPolicy};
use super::error::SendError;
use super::event::{MessageId, Payload};
use super::time::Instant;
use super::transmit::Frame;

/// A queued client message, already framed for the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundMessage {
    /// Its id.
    pub id: MessageId,
    /// The frame to write (and to rewrite after a reconnect).
    pub frame: Frame,
    /// When it was sent (for listings of what is pending).
    pub created_at: Instant,
    /// When it is given up on, if it has a time-to-live.
    pub expires_at: Option<Instant>,
}

/// A queued message as the app sees it: what [`Engine::pending`](super::Engine::pending) lists
/// and what a durable store hands back to [`Engine::restore`](super::Engine::restore).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Its id.
    pub id: MessageId,
    /// Its content, as given to `send`.
    pub payload: Payload,
    /// When it was sent.
    pub created_at: Instant,
    /// When it is given up on, if it has a time-to-live.
    pub expires_at: Option<Instant>,
}

/// The queue with its bounds and its write position on the current connection.
pub struct Outbox {
    config: OutboxConfig,
    messages: VecDeque<OutboundMessage>,
    bytes: usize,
    /// Messages before this index were written on the current connection.
    written: usize,
    /// Messages with a time-to-live, so expiry scans are skipped when there are none.
    with_ttl: usize,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("len", &self.len())
            .field("bytes", &self.bytes)
            .field("written", &self.written)
            .finish()
    }
}

impl Outbox {
    /// An empty outbox.
    pub fn new(config: OutboxConfig) -> Self {
        Outbox {
            config,
            messages: VecDeque::new(),
            bytes: 0,
            written: 0,
            with_ttl: 0,
        }
    }

    /// Messages queued.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Payload bytes queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Make room for a message of `size` bytes. Returns the messages evicted under
    /// `DropOldest`.
    pub fn make_room(&mut self, size: usize) -> Result<Vec<OutboundMessage>, SendError> {
        let max_bytes = self.config.max_bytes;
        let largest = self.config.max_message_bytes.min(max_bytes);
        if size > largest || self.config.max_messages == 0 {
            return Err(SendError::TooLarge {
                bytes: size,
                max: largest,
            });
        }
        let fits = |outbox: &Outbox| {
            outbox.len() < outbox.config.max_messages && outbox.bytes + size <= max_bytes
        };
        let mut dropped = Vec::new();
        while !fits(self) {
            match self.config.overflow {
                OverflowPolicy::RejectNew => {
                    return Err(SendError::OutboxFull {
                        messages: self.len(),
                        bytes: self.bytes,
                    });
                }
                OverflowPolicy::DropOldest => dropped.extend(self.remove_at(0)),
            }
        }
        Ok(dropped)
    }

    /// Append a message; call [`Outbox::make_room`] first.
    pub fn push(&mut self, message: OutboundMessage) {
        self.bytes += message.frame.len();
        self.with_ttl += usize::from(message.expires_at.is_some());
        self.messages.push_back(message);
    }

    /// A copy of the next message not yet written on the current connection, in send order;
    /// it stays queued until acknowledged (or, in raw mode, taken by the transport).
    pub fn next_to_write(&mut self) -> Option<OutboundMessage> {
        let message = self.messages.get(self.written)?.clone();
        self.written += 1;
        Some(message)
    }

    /// A new connection: everything still queued must be written again, oldest first.
    pub fn rewind(&mut self) {
        self.written = 0;
    }

    /// Remove the message with `id`. Returns false if it is not queued (already acked, dropped,
    /// or never sent by this client).
    /// Whether the message with `id` is queued.
    pub fn contains(&self, id: &str) -> bool {
        self.position(id).is_some()
    }

    /// Remove and return the message with `id`, if queued.
    pub fn take(&mut self, id: &str) -> Option<OutboundMessage> {
        let index = self.position(id)?;
        self.remove_at(index)
    }

    /// Remove and return the messages whose time-to-live has run out.
    pub fn expire(&mut self, now: Instant) -> Vec<OutboundMessage> {
        let mut expired = Vec::new();
        let mut index = 0;
        while self.with_ttl > 0 && index < self.len() {
            let due = self
                .messages
                .get(index)
                .and_then(|m| m.expires_at)
                .is_some_and(|at| at <= now);
            if due {
                expired.extend(self.remove_at(index));
            } else {
                index += 1;
            }
        }
        expired
    }

    /// The earliest expiry of any queued message.
    pub fn next_expiry(&self) -> Option<Instant> {
        if self.with_ttl == 0 {
            return None;
        }
        self.messages.iter().filter_map(|m| m.expires_at).min()
    }

    /// The queued messages, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &OutboundMessage> {
        self.messages.iter()
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.messages.iter().position(|m| m.id.0 == id)
    }

    fn remove_at(&mut self, index: usize) -> Option<OutboundMessage> {
        let message = self.messages.remove(index)?;
        self.bytes -= message.frame.len();
        self.with_ttl -= usize::from(message.expires_at.is_some());
        if index < self.written {
            self.written -= 1;
        }
        Some(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn message(id: &str, size: usize, expires_at: Option<Instant>) -> OutboundMessage {
        OutboundMessage {
            id: MessageId(id.into()),
            frame: Frame::Text("x".repeat(size)),
            created_at: Instant::ZERO,
            expires_at,
        }
    }

    fn outbox(max_messages: usize, max_bytes: usize, overflow: OverflowPolicy) -> Outbox {
        let config = OutboxConfig {
            max_messages,
            max_bytes,
            max_message_bytes: max_bytes,
            overflow,
            default_ttl: None,
        };
        Outbox::new(config)
    }

    fn ids(messages: impl IntoIterator<Item = OutboundMessage>) -> Vec<String> {
        messages.into_iter().map(|m| m.id.0).collect()
    }

    fn enqueue(
        outbox: &mut Outbox,
        id: &str,
        size: usize,
    ) -> Result<Vec<OutboundMessage>, SendError> {
        let dropped = outbox.make_room(size)?;
        outbox.push(message(id, size, None));
        Ok(dropped)
    }

    #[test]
    fn reject_new_refuses_when_full_by_count_or_bytes() {
        let mut out = outbox(2, 100, OverflowPolicy::RejectNew);
        enqueue(&mut out, "a", 10).unwrap();
        enqueue(&mut out, "b", 10).unwrap();
        assert_eq!(
            enqueue(&mut out, "c", 1),
            Err(SendError::OutboxFull {
                messages: 2,
                bytes: 20
            })
        );
        assert!(out.take("a").is_some());
        assert_eq!(
            enqueue(&mut out, "c", 91),
            Err(SendError::OutboxFull {
                messages: 1,
                bytes: 10
            })
        );
        enqueue(&mut out, "c", 90).unwrap();
        assert_eq!((out.len(), out.bytes()), (2, 100));
        assert_eq!(
            enqueue(&mut out, "d", 101),
            Err(SendError::TooLarge {
                bytes: 101,
                max: 100
            })
        );
    }

    #[test]
    fn the_largest_message_is_bounded_apart_from_the_total() {
        let mut out = outbox(10, 1000, OverflowPolicy::RejectNew);
        out.config.max_message_bytes = 100;
        assert_eq!(
            enqueue(&mut out, "big", 101),
            Err(SendError::TooLarge {
                bytes: 101,
                max: 100
            })
        );
        for id in ["a", "b", "c"] {
            enqueue(&mut out, id, 100).unwrap();
        }
        assert_eq!(out.bytes(), 300);
    }

    #[test]
    fn drop_oldest_evicts_and_names_what_it_dropped() {
        let mut out = outbox(3, 100, OverflowPolicy::DropOldest);
        for id in ["a", "b", "c"] {
            assert!(enqueue(&mut out, id, 30).unwrap().is_empty());
        }
        assert_eq!(ids(enqueue(&mut out, "d", 30).unwrap()), ["a"]);
        assert_eq!(ids(enqueue(&mut out, "e", 70).unwrap()), ["b", "c"]);
        assert_eq!((out.len(), out.bytes()), (2, 100));
        let order: Vec<String> = std::iter::from_fn(|| out.next_to_write())
            .map(|m| m.id.0)
            .collect();
        assert_eq!(order, ["d", "e"]);
    }

    #[test]
    fn written_messages_stay_until_acked_and_are_rewritten_in_order() {
        let mut out = outbox(10, 1000, OverflowPolicy::RejectNew);
        for id in ["a", "b", "c"] {
            enqueue(&mut out, id, 1).unwrap();
        }
        assert_eq!(out.next_to_write().unwrap().id.0, "a");
        assert_eq!(out.next_to_write().unwrap().id.0, "b");
        assert!(out.take("a").is_some());
        assert!(out.take("a").is_none(), "a second ack finds nothing");
        assert_eq!(out.next_to_write().unwrap().id.0, "c");
        assert_eq!(out.next_to_write(), None);
        out.rewind();
        let again: Vec<String> = std::iter::from_fn(|| out.next_to_write())
            .map(|m| m.id.0)
            .collect();
        assert_eq!(again, ["b", "c"]);
    }

    #[test]
    fn expiry_removes_only_due_messages() {
        let mut out = outbox(10, 1000, OverflowPolicy::RejectNew);
        let at = |s| Some(Instant::ZERO + Duration::from_secs(s));
        out.push(message("a", 1, at(5)));
        out.push(message("b", 1, None));
        out.push(message("c", 1, at(3)));
        assert_eq!(out.next_expiry(), at(3));
        assert!(out.expire(Instant::from_millis(2_999)).is_empty());
        assert_eq!(ids(out.expire(Instant::from_millis(3_000))), ["c"]);
        assert_eq!(ids(out.expire(Instant::from_millis(10_000))), ["a"]);
        assert_eq!(out.next_expiry(), None);
        assert_eq!(out.len(), 1);
    }
}

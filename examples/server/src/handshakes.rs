//! The connections still in their handshake: at most a fixed number at once, and a new one
//! evicts the oldest. Half-sent upgrade requests (a slowloris) therefore cannot hold the server's
//! sockets, and a legitimate client always gets a slot, whatever the attacker keeps open.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;

/// Handshakes in flight, oldest first.
#[derive(Default)]
pub struct Handshakes {
    pending: Mutex<VecDeque<(u64, oneshot::Sender<()>)>>,
    next: AtomicU64,
}

/// One connection's place among the handshakes in flight.
pub struct Ticket {
    id: u64,
    evicted: oneshot::Receiver<()>,
}

impl Ticket {
    /// Resolves once a newer connection took this one's place.
    pub async fn evicted(&mut self) {
        // Eviction drops the sender; a ticket is never sent anything.
        let _ = (&mut self.evicted).await;
    }
}

impl Handshakes {
    /// A place for a new connection, evicting the oldest beyond `max`.
    pub fn admit(&self, max: usize) -> Ticket {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (evict, evicted) = oneshot::channel();
        let mut pending = self.lock();
        pending.push_back((id, evict));
        while pending.len() > max.max(1) {
            pending.pop_front();
        }
        Ticket { id, evicted }
    }

    /// The handshake of `ticket` ended; whether it still held its place (was not evicted).
    pub fn finish(&self, ticket: Ticket) -> bool {
        let mut pending = self.lock();
        match pending.iter().position(|(id, _)| *id == ticket.id) {
            Some(at) => {
                pending.remove(at);
                true
            }
            None => false,
        }
    }

    /// Handshakes in flight.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, oneshot::Sender<()>)>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_oldest_is_evicted_and_finishing_frees_a_place() {
        let handshakes = Handshakes::default();
        let mut first = handshakes.admit(2);
        let second = handshakes.admit(2);
        let third = handshakes.admit(2);
        tokio::time::timeout(std::time::Duration::from_secs(1), first.evicted())
            .await
            .expect("the oldest is evicted");
        assert!(!handshakes.finish(first));
        assert!(handshakes.finish(second));
        assert_eq!(handshakes.len(), 1);
        let fourth = handshakes.admit(2);
        assert!(handshakes.finish(third) && handshakes.finish(fourth));
        assert_eq!(handshakes.len(), 0);
    }
}

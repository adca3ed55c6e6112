//! Callers waiting for an acknowledgement on the side: they learn how a message ended without
//! taking anything from the app's event stream, which still gets every `Acked` and
//! `SendFailed`.

use std::collections::{HashMap, VecDeque};

use tokio::sync::oneshot;

use crate::engine::{MessageId, SendFailure};

/// How waiting for a message's acknowledgement ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The server stored it.
    Acked,
    /// It will never be acknowledged.
    Failed(SendFailure),
    /// Not settled within the wait; it stays queued and is still sent.
    TimedOut,
    /// The socket was closed first.
    Closed,
    /// No such message is queued, and its outcome is not remembered.
    Unknown,
}

/// Outcomes remembered for callers that start waiting after the fact.
const REMEMBERED: usize = 4096;

/// Pending waits and recent outcomes.
#[derive(Default)]
pub struct Waiters {
    pending: HashMap<MessageId, Vec<oneshot::Sender<Delivery>>>,
    recent: VecDeque<(MessageId, Delivery)>,
}

impl Waiters {
    /// Wait for `id`'s outcome.
    pub fn register(&mut self, id: MessageId) -> oneshot::Receiver<Delivery> {
        let (tx, rx) = oneshot::channel();
        self.pending.entry(id).or_default().push(tx);
        rx
    }

    /// The outcome of `id` if it settled recently.
    pub fn recent(&self, id: &MessageId) -> Option<Delivery> {
        self.recent
            .iter()
            .rev()
            .find(|(settled, _)| settled == id)
            .map(|(_, outcome)| outcome.clone())
    }

    /// `id` settled: wake its waiters and remember the outcome.
    pub fn settle(&mut self, id: &MessageId, outcome: Delivery) {
        // Most sends are not waited on: no hashing of their ids then.
        let waiting = (!self.pending.is_empty()).then(|| self.pending.remove(id));
        for waiter in waiting.flatten().into_iter().flatten() {
            let _ = waiter.send(outcome.clone());
        }
        if self.recent.len() == REMEMBERED {
            self.recent.pop_front();
        }
        self.recent.push_back((id.clone(), outcome));
    }

    /// `id` was never queued after all: drop its waiters without an outcome.
    pub fn forget(&mut self, id: &MessageId) {
        self.pending.remove(id);
    }

    /// The socket is closed: every pending wait ends.
    pub fn close(&mut self) {
        for (_, waiters) in self.pending.drain() {
            for waiter in waiters {
                let _ = waiter.send(Delivery::Closed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_hear_the_outcome_and_late_callers_find_it() {
        let mut waiters = Waiters::default();
        let id = MessageId("m".into());
        let mut first = waiters.register(id.clone());
        let mut second = waiters.register(id.clone());
        waiters.settle(&id, Delivery::Acked);
        assert_eq!(first.try_recv(), Ok(Delivery::Acked));
        assert_eq!(second.try_recv(), Ok(Delivery::Acked));
        assert_eq!(waiters.recent(&id), Some(Delivery::Acked));
        let other = MessageId("n".into());
        let mut pending = waiters.register(other);
        waiters.close();
        assert_eq!(pending.try_recv(), Ok(Delivery::Closed));
        for i in 0..REMEMBERED {
            waiters.settle(&MessageId(i.to_string()), Delivery::Acked);
        }
        assert_eq!(waiters.recent(&id), None, "only the latest are remembered");
    }
}

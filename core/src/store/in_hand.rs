//! What the app holds: the batch it took last, committed when it takes the next one, and the
//! messages it held when an earlier run stopped, flagged `redelivered` when they come again.

use std::collections::HashSet;
use std::time::SystemTime;

use super::{Change, unix_ms};
use crate::engine::{Event, ResumeCursor};

/// The messages of the batch the app took last: committed when it takes the next one.
#[derive(Default)]
pub(crate) struct InHand {
    ids: Vec<String>,
    /// Position of the batch's last message.
    position: Option<ResumeCursor>,
    /// Ids that were in hand when an earlier run stopped: flagged `redelivered` when they come
    /// again, and kept on record as in hand until they do.
    before_restart: HashSet<String>,
    /// Committed ids whose write failed: they go with the next one.
    unwritten: Vec<String>,
    /// The committed position whose write failed.
    unwritten_position: Option<ResumeCursor>,
}

impl InHand {
    /// Nothing in hand yet; `before_restart` are the ids an earlier run held when it stopped.
    pub fn after_restart(before_restart: impl IntoIterator<Item = String>) -> Self {
        InHand {
            before_restart: before_restart.into_iter().collect(),
            ..InHand::default()
        }
    }

    /// The app took `batch`: flag what it may have seen before, and say what to record.
    pub fn take(&mut self, batch: &mut [Event]) -> Option<Change> {
        let mut ids = Vec::new();
        let mut position = None;
        for event in batch.iter_mut() {
            if let Event::Message(message) = event {
                if let Some(id) = &message.id {
                    if self.before_restart.remove(id) {
                        message.redelivered = true;
                    }
                    ids.push(id.clone());
                }
                position = Some(message.cursor);
            }
        }
        let nothing_owed = self.ids.is_empty()
            && self.position.is_none()
            && self.unwritten.is_empty()
            && self.unwritten_position.is_none();
        if ids.is_empty() && position.is_none() && nothing_owed {
            return None;
        }
        let mut committed = std::mem::take(&mut self.unwritten);
        committed.extend(std::mem::replace(&mut self.ids, ids));
        let cursor =
            std::mem::replace(&mut self.position, position).or(self.unwritten_position.take());
        // What an earlier run held and has not come back yet is still in hand: a second crash
        // before it arrives must not lose its flag.
        let in_hand = self
            .ids
            .iter()
            .chain(&self.before_restart)
            .cloned()
            .collect();
        Some(Change::Take {
            committed,
            cursor,
            in_hand,
            at_ms: unix_ms(SystemTime::now()),
        })
    }

    /// Writing `change` (from [`InHand::take`]) failed: what it committed goes with the next
    /// take, so a later success records it.
    pub fn unwritten(&mut self, change: Change) {
        if let Change::Take {
            mut committed,
            cursor,
            ..
        } = change
        {
            committed.append(&mut self.unwritten);
            self.unwritten = committed;
            self.unwritten_position = self.unwritten_position.or(cursor);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{InboundMessage, MessageId, Payload};

    fn message(id: &str, seq: u64) -> Event {
        Event::Message(InboundMessage {
            id: Some(id.into()),
            seq: Some(seq),
            ts: None,
            data: Payload::Json("0".into()),
            cursor: ResumeCursor {
                last_seq: Some(seq),
                last_ts: None,
            },
            redelivered: false,
        })
    }

    fn taken(change: Option<Change>) -> (Vec<String>, Option<Option<u64>>, Vec<String>) {
        match change {
            Some(Change::Take {
                committed,
                cursor,
                in_hand,
                ..
            }) => (committed, cursor.map(|c| c.last_seq), in_hand),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_batch_commits_the_one_before_it_and_flags_what_an_earlier_run_held() {
        let mut hand = InHand::after_restart(["b".to_owned()]);
        let mut first = vec![message("a", 1), message("b", 2)];
        assert_eq!(
            taken(hand.take(&mut first)),
            (vec![], None, vec!["a".into(), "b".into()])
        );
        let flags: Vec<bool> = first
            .iter()
            .map(|e| matches!(e, Event::Message(m) if m.redelivered))
            .collect();
        assert_eq!(flags, [false, true]);
        let mut second = vec![message("c", 3)];
        assert_eq!(
            taken(hand.take(&mut second)),
            (
                vec!["a".into(), "b".into()],
                Some(Some(2)),
                vec!["c".into()]
            )
        );
        // A batch without messages still commits the one before it, once.
        let mut acks = vec![Event::Acked(MessageId("x".into()))];
        assert_eq!(
            taken(hand.take(&mut acks)),
            (vec!["c".into()], Some(Some(3)), vec![])
        );
        assert_eq!(
            hand.take(&mut acks),
            None,
            "nothing in hand, nothing to record"
        );
        // "b" was flagged once; seen again it is an ordinary message.
        let mut again = vec![message("b", 2)];
        hand.take(&mut again);
        assert!(matches!(&again[0], Event::Message(m) if !m.redelivered));
    }

    #[test]
    fn what_an_earlier_run_held_stays_in_hand_until_it_comes_back() {
        let mut hand = InHand::after_restart(["a", "b", "c"].map(String::from));
        let mut first = vec![message("a", 1)];
        let (_, _, mut in_hand) = taken(hand.take(&mut first));
        in_hand.sort();
        assert_eq!(
            in_hand,
            ["a", "b", "c"],
            "b and c keep their flag through a second crash"
        );
        let mut rest = vec![message("b", 2), message("c", 3)];
        let (committed, _, mut in_hand) = taken(hand.take(&mut rest));
        in_hand.sort();
        assert_eq!(
            (committed, in_hand),
            (vec!["a".into()], vec!["b".into(), "c".into()])
        );
    }

    #[test]
    fn a_commit_that_could_not_be_written_goes_with_the_next_one() {
        let mut hand = InHand::default();
        hand.take(&mut [message("a", 1)]);
        let failed = hand.take(&mut [message("b", 2)]).unwrap();
        hand.unwritten(failed);
        assert_eq!(
            taken(hand.take(&mut [message("c", 3)])),
            (
                vec!["a".into(), "b".into()],
                Some(Some(2)),
                vec!["c".into()]
            )
        );
        // Even when the next take brings nothing new to commit.
        let mut hand = InHand::default();
        hand.take(&mut [message("a", 1)]);
        let failed = hand.take(&mut []).unwrap();
        hand.unwritten(failed);
        assert_eq!(
            taken(hand.take(&mut [])),
            (vec!["a".into()], Some(Some(1)), vec![])
        );
    }
}

//! The inbound half of the engine: server frames in envelope mode (messages with dedup and the
//! cursor, acks, pings, error frames), raw frames, and what the app took.

use super::envelope::{self, ServerFrame};
use super::*;

impl Engine {
    /// The app took `message` from the driver's queue: the committed cursor moves past it.
    /// Messages are taken in the order they were delivered.
    pub fn handle_taken(&mut self, message: &InboundMessage) {
        self.committed = message.cursor;
        self.stats.messages_in += 1;
    }

    /// Remember an inbound id the app took in an earlier run, so a replay of it is dropped.
    pub fn remember_delivered(&mut self, taken_at: Instant, id: &str) {
        self.dedup.first_sighting(taken_at, id);
    }

    pub(super) fn handle_envelope(&mut self, now: Instant, conn: ConnId, text: &str) {
        let frame = match envelope::decode_server_frame(text) {
            Ok(frame) => frame,
            Err(malformed) => {
                self.events.push_back(Event::MalformedFrame {
                    reason: malformed.reason,
                    preview: malformed.preview,
                });
                return;
            }
        };
        match frame {
            ServerFrame::Hello { seq, ts } => {
                // A first connection starts from the server's current position; as nothing was
                // received before it, nothing is owed to the app before it either.
                if self.cursor == ResumeCursor::default() {
                    self.cursor.adopt_if_unset(seq, ts);
                    self.committed = self.cursor;
                }
            }
            ServerFrame::Msg { id, seq, ts, data } => {
                if !self.cursor.admits(seq) || !self.dedup.first_sighting(now, &id) {
                    self.stats.duplicates_dropped += 1;
                    return;
                }
                self.cursor.advance(seq, ts);
                self.stats.messages_received += 1;
                let message = InboundMessage {
                    id: Some(id.into_owned()),
                    seq,
                    ts,
                    data: Payload::Json(data.to_owned()),
                    cursor: self.cursor,
                    redelivered: false,
                };
                self.events.push_back(Event::Message(message));
                self.note_progress();
            }
            ServerFrame::Ack { id } => {
                // Duplicate acks (the server acks resends again) find nothing and stay silent.
                if let Some(message) = self.outbox.take(&id) {
                    self.stats.messages_acked += 1;
                    self.events.push_back(Event::Acked(message.id));
                    self.note_progress();
                }
            }
            ServerFrame::Ping { ts } => self.transmits.push_back(Transmit::Pong {
                conn,
                frame: Frame::Text(envelope::encode_pong(ts)),
            }),
            ServerFrame::Pong { ts } => {
                if let Some(ts) = ts {
                    self.record_rtt(now, ts);
                }
            }
            ServerFrame::Error {
                id,
                code,
                message: text,
            } => {
                let rejected = id.and_then(|id| self.outbox.take(&id));
                let (code, text) = (code.into_owned(), text.into_owned());
                match rejected {
                    Some(message) => {
                        let reason = SendFailure::Rejected {
                            code,
                            message: text,
                        };
                        self.report_failed_message(message, reason);
                    }
                    None => self.events.push_back(Event::ServerError {
                        code,
                        message: text,
                    }),
                }
            }
        }
    }

    pub(super) fn deliver_raw(&mut self, data: Payload) {
        self.note_progress();
        self.stats.messages_received += 1;
        self.events.push_back(Event::Message(InboundMessage {
            id: None,
            seq: None,
            ts: None,
            data,
            cursor: self.cursor,
            redelivered: false,
        }));
    }

    pub(super) fn record_rtt(&mut self, now: Instant, ts: u64) {
        if let Some(rtt) = self.heartbeat.rtt(now, ts) {
            self.stats.last_rtt = Some(rtt);
        }
        self.current_answered(ts);
    }
}

//! The outbound half of the engine: queueing what the app sends, putting back what a store kept,
//! cancelling, listing, and writing the outbox to the open connection.

use super::envelope;
use super::*;

impl Engine {
    /// Queue a message; it is written as soon as a connection is open, and in envelope mode kept
    /// until the server acknowledges it. Never fails because the socket is down.
    pub fn send(&mut self, now: Instant, payload: Payload) -> Result<MessageId, SendError> {
        self.send_with_ttl(now, payload, self.config.outbox.default_ttl)
    }

    /// [`Engine::send`] with a time-to-live: not acknowledged by then, it is reported as
    /// [`SendFailure::Expired`].
    pub fn send_with_ttl(
        &mut self,
        now: Instant,
        payload: Payload,
        ttl: Option<Duration>,
    ) -> Result<MessageId, SendError> {
        let id = self.new_message_id();
        let frame = match (self.config.mode, payload) {
            (Mode::Envelope, Payload::Json(json)) => {
                envelope::validate_json(&json).map_err(|bad| match bad {
                    envelope::BadPayload::NotJson(reason) => SendError::NotJson { reason },
                    envelope::BadPayload::NotPortable(reason) => SendError::NotPortable { reason },
                })?;
                Frame::Text(envelope::encode_msg(&id.0, &json))
            }
            (Mode::Envelope, Payload::Text(_)) => {
                return Err(SendError::WrongMode { kind: "text" });
            }
            (Mode::Envelope, Payload::Binary(_)) => {
                return Err(SendError::WrongMode { kind: "binary" });
            }
            (Mode::Raw, Payload::Json(text) | Payload::Text(text)) => Frame::Text(text),
            (Mode::Raw, Payload::Binary(bytes)) => Frame::Binary(bytes),
        };
        for dropped in self.outbox.make_room(frame.len())? {
            self.report_failed_message(dropped, SendFailure::Dropped);
        }
        let expires_at = ttl.map(|ttl| now + ttl);
        self.outbox.push(OutboundMessage {
            id: id.clone(),
            frame,
            created_at: now,
            expires_at,
        });
        self.write_outbox(now);
        Ok(id)
    }

    /// Put back the messages a durable store kept from an earlier run, oldest first, with their
    /// ids; call it before the first `send`, so they are written first. Those whose time-to-live
    /// ran out meanwhile are reported as [`SendFailure::Expired`] instead. They are queued even
    /// beyond the outbox bounds: each was a promise made by an earlier `send`.
    pub fn restore(&mut self, now: Instant, messages: Vec<OutboxEntry>) {
        for message in messages {
            let frame = match (self.config.mode, message.payload) {
                (Mode::Envelope, Payload::Json(json)) => {
                    Frame::Text(envelope::encode_msg(&message.id.0, &json))
                }
                (_, Payload::Json(text) | Payload::Text(text)) => Frame::Text(text),
                (_, Payload::Binary(bytes)) => Frame::Binary(bytes),
            };
            self.outbox.push(OutboundMessage {
                id: message.id,
                frame,
                created_at: message.created_at,
                expires_at: message.expires_at,
            });
        }
        for expired in self.outbox.expire(now) {
            self.report_failed_message(expired, SendFailure::Expired);
        }
        self.write_outbox(now);
    }

    /// Stop sending the queued message `id`: it is reported as [`SendFailure::Cancelled`].
    /// Returns false if it is not queued. A copy already written may still reach the server.
    pub fn cancel(&mut self, id: &MessageId) -> bool {
        match self.outbox.take(&id.0) {
            Some(message) => {
                self.report_failed_message(message, SendFailure::Cancelled);
                true
            }
            None => false,
        }
    }

    /// Take back a message `send` just queued, without reporting it: for a driver whose durable
    /// store refused it, so `send` can fail as if it had never queued it.
    pub fn withdraw(&mut self, id: &MessageId) -> bool {
        self.outbox.take(&id.0).is_some()
    }

    /// The queued messages, oldest first, with their content as given to `send`.
    pub fn pending(&self) -> Vec<OutboxEntry> {
        self.outbox
            .iter()
            .map(|message| OutboxEntry {
                id: message.id.clone(),
                payload: self.payload_of(message.frame.clone()),
                created_at: message.created_at,
                expires_at: message.expires_at,
            })
            .collect()
    }

    /// A queued message will not be acknowledged: tell the app, with its content, so it need
    /// not keep its own copy.
    pub(super) fn report_failed_message(&mut self, message: OutboundMessage, reason: SendFailure) {
        let payload = self.payload_of(message.frame);
        self.events.push_back(Event::SendFailed {
            id: message.id,
            payload,
            reason,
        });
    }

    /// A queued frame's content as the app gave it to `send`.
    pub(super) fn payload_of(&self, frame: Frame) -> Payload {
        match (self.config.mode, frame) {
            (Mode::Envelope, Frame::Text(envelope)) => {
                Payload::Json(envelope::msg_data(&envelope).unwrap_or(envelope))
            }
            (_, Frame::Text(text)) => Payload::Text(text),
            (_, Frame::Binary(bytes) | Frame::Ping(bytes) | Frame::Pong(bytes)) => {
                Payload::Binary(bytes)
            }
        }
    }

    pub(super) fn write_outbox(&mut self, now: Instant) {
        if self.state != State::Open {
            return;
        }
        let raw = self.config.mode == Mode::Raw;
        while let Some(message) = self.outbox.next_to_write() {
            self.stats.messages_written += 1;
            self.heartbeat.on_written(now);
            self.write_message(message.frame, raw.then_some(message.id));
        }
    }

    /// The transport `conn` took the frames of these raw-mode messages to write: they leave
    /// the outbox. Until then a raw message stays queued, so a peer that reads slowly fills the
    /// outbox (and `send` says so) rather than a transport's write queue, and a connection that
    /// ends first loses nothing it never took: the next one writes it. Frames for them still
    /// waiting to be handed to a newer connection are withdrawn, so each is written once.
    pub fn handle_written(&mut self, conn: ConnId, messages: Vec<MessageId>) {
        let taken: std::collections::HashSet<MessageId> = messages
            .into_iter()
            .filter(|id| self.outbox.take(&id.0).is_some())
            .collect();
        if !taken.is_empty() && !self.is_current(conn) {
            self.transmits.retain(|transmit| {
                !matches!(transmit, Transmit::Send { message: Some(id), .. } if taken.contains(id))
            });
        }
    }

    pub(super) fn write(&mut self, frame: Frame) {
        self.write_message(frame, None);
    }

    fn write_message(&mut self, frame: Frame, message: Option<MessageId>) {
        if let Some(transport) = self.transport {
            self.transmits.push_back(Transmit::Send {
                conn: transport.id,
                frame,
                message,
            });
        }
    }

    pub(super) fn new_message_id(&mut self) -> MessageId {
        MessageId(random_uuid(self.random.as_mut()))
    }
}

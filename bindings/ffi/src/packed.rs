//! The packed form of a burst of events, for hosts whose per-record lifting is the cost of
//! receiving (Python: UniFFI reads every field of every record in interpreted code).
//!
//! Message events with text content travel as one JSON document that the host decodes in a
//! single native call (`json.loads`); every other event (state changes, acks, binary messages)
//! keeps its typed form, with its place in the burst. Hosts rebuild the same typed events, so
//! the API does not change, only what crossing the boundary costs per message.

use steadyws::{Event, Payload};

use crate::event::SocketEvent;

/// Content kinds in [`PackedEvents::messages`].
const KIND_JSON: u8 = 0;
const KIND_TEXT: u8 = 1;

/// One burst of events, in order. Empty (no messages, no others) once the stream is over.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct PackedEvents {
    /// A JSON array with one entry per message event, in order, each
    /// `[id, seq, ts, kind, content, last_seq, last_ts, redelivered]`: `kind` 0 for JSON content
    /// (`MessageData.Json`), 1 for a text frame (`MessageData.Text`); `content` as a JSON
    /// string; the optional numbers and `id` are `null` when absent.
    pub messages: String,
    /// Every other event with its index in the burst (0-based, increasing).
    pub others: Vec<PlacedEvent>,
}

/// An event that is not a packed message, and where it goes in the burst.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct PlacedEvent {
    /// Its index among all the burst's events (messages and others).
    pub index: u32,
    /// The event.
    pub event: SocketEvent,
}

/// An entry of [`PackedEvents::messages`]; serde writes a tuple as a JSON array.
type PackedMessage<'a> = (
    Option<&'a str>,
    Option<u64>,
    Option<u64>,
    u8,
    &'a str,
    Option<u64>,
    Option<u64>,
    bool,
);

impl From<Vec<Event>> for PackedEvents {
    fn from(events: Vec<Event>) -> Self {
        let mut others = Vec::new();
        let mut texts = Vec::with_capacity(events.len());
        for (index, event) in events.into_iter().enumerate() {
            match event {
                Event::Message(message) if text_content(&message.data).is_some() => {
                    texts.push(message);
                }
                other => others.push(PlacedEvent {
                    index: index as u32,
                    event: other.into(),
                }),
            }
        }
        let entries: Vec<PackedMessage<'_>> = texts
            .iter()
            .filter_map(|m| {
                let (kind, content) = text_content(&m.data)?;
                Some((
                    m.id.as_deref(),
                    m.seq,
                    m.ts,
                    kind,
                    content,
                    m.cursor.last_seq,
                    m.cursor.last_ts,
                    m.redelivered,
                ))
            })
            .collect();
        // Serialising strings and numbers cannot fail.
        let messages = serde_json::to_string(&entries).unwrap_or_else(|_| "[]".into());
        PackedEvents { messages, others }
    }
}

/// The kind and text of content that packs; `None` for bytes, which stay typed.
fn text_content(data: &Payload) -> Option<(u8, &str)> {
    match data {
        Payload::Json(json) => Some((KIND_JSON, json)),
        Payload::Text(text) => Some((KIND_TEXT, text)),
        Payload::Binary(_) => None,
    }
}

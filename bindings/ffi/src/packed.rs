//! The packed form of a burst of events, for hosts whose per-record lifting is the cost of
//! receiving (Python: UniFFI reads every field of every record in interpreted code).
//!
//! Message events with text content travel as one JSON document that the host decodes in a
//! single native call (`json.loads`); every other event (state changes, acks, binary messages)
//! keeps its typed form, with its place in the burst. Hosts rebuild the same typed events, so
//! the API does not change, only what crossing the boundary costs per message.

use steadyws::{Event, Payload};

use crate::event::SocketEvent;

/// The fields of an entry of [`PackedEvents::messages`], in order: the one statement of the
/// layout, which hosts read through [`packed_layout`] instead of restating it.
const FIELDS: [&str; 8] = [
    "id",
    "seq",
    "ts",
    "kind",
    "content",
    "last_seq",
    "last_ts",
    "redelivered",
];

/// Content kinds, by their code in an entry's `kind` field.
const KINDS: [&str; 2] = ["json", "text"];
const KIND_JSON: u8 = 0;
const KIND_TEXT: u8 = 1;

/// How [`PackedEvents::messages`] entries are laid out.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct PackedLayout {
    /// The name of each field of an entry, at its index.
    pub fields: Vec<String>,
    /// The content kind each `kind` code stands for, at its index: `json` (`MessageData.Json`),
    /// `text` (`MessageData.Text`).
    pub content_kinds: Vec<String>,
}

/// The layout of packed message entries, for hosts that decode them by position.
#[uniffi::export]
pub fn packed_layout() -> PackedLayout {
    PackedLayout {
        fields: FIELDS.iter().map(|name| (*name).to_owned()).collect(),
        content_kinds: KINDS.iter().map(|name| (*name).to_owned()).collect(),
    }
}

/// One burst of events, in order. Empty (no messages, no others) once the stream is over.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct PackedEvents {
    /// A JSON array with one entry per message event, in order, each an array laid out as
    /// [`packed_layout`] says: `content` as a JSON string, `kind` the code of its content kind;
    /// the optional numbers and `id` are `null` when absent.
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

/// An entry of [`PackedEvents::messages`], in the order of [`FIELDS`]; serde writes a tuple as
/// a JSON array.
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

#[cfg(test)]
mod tests {
    use super::*;
    use steadyws::{InboundMessage, ResumeCursor};

    #[test]
    fn entries_follow_the_published_layout() {
        let message = Event::Message(InboundMessage {
            id: Some("m1".into()),
            seq: Some(7),
            ts: Some(9),
            data: Payload::Text("hi".into()),
            cursor: ResumeCursor {
                last_seq: Some(7),
                last_ts: Some(9),
            },
            redelivered: true,
        });
        let packed = PackedEvents::from(vec![message]);
        let entries: Vec<Vec<serde_json::Value>> = serde_json::from_str(&packed.messages).unwrap();
        let layout = packed_layout();
        let field = |name: &str| {
            let index = layout.fields.iter().position(|f| f == name).unwrap();
            entries[0][index].clone()
        };
        assert_eq!(entries[0].len(), layout.fields.len());
        assert_eq!(field("id"), "m1");
        assert_eq!(field("seq"), 7);
        assert_eq!(field("ts"), 9);
        let kind = field("kind").as_u64().unwrap() as usize;
        assert_eq!(layout.content_kinds[kind], "text");
        assert_eq!(field("content"), "hi");
        assert_eq!(field("last_seq"), 7);
        assert_eq!(field("last_ts"), 9);
        assert_eq!(field("redelivered"), true);
    }
}

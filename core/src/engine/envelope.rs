//! The envelope protocol on the wire: JSON text frames with a `type` field.
//!
//! Client → server: `msg {id, data}`, `ping {ts}`, `pong {ts}`.
//! Server → client: `hello {seq?, ts?}`, `msg {id, seq?, ts?, data}`, `ack {id}`, `pong {ts}`,
//! `ping {ts}`, `error {code, message, id?}`. `docs/protocol.md` is the full specification. Unknown fields are ignored so servers can extend frames.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// A decoded server frame. Its text borrows from the frame where JSON escapes allow, so a
/// frame costs the engine only what it keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerFrame<'a> {
    /// Sent after the upgrade: where the server's stream stands now.
    Hello {
        /// The newest `seq` in the stream (0 when empty).
        seq: Option<u64>,
        /// Server time in milliseconds.
        ts: Option<u64>,
    },
    /// An application message.
    Msg {
        /// Server-assigned unique id.
        id: Cow<'a, str>,
        /// Position in the server's stream, if it sequences.
        seq: Option<u64>,
        /// Server time in milliseconds.
        ts: Option<u64>,
        /// The payload as JSON text, exactly as sent.
        data: &'a str,
    },
    /// The server stored the client message with this id.
    Ack {
        /// The acknowledged client message id.
        id: Cow<'a, str>,
    },
    /// The server checks liveness; answer with a pong carrying the same `ts`.
    Ping {
        /// Opaque value to echo.
        ts: Option<u64>,
    },
    /// Answer to a client ping.
    Pong {
        /// The client's ping `ts`, echoed.
        ts: Option<u64>,
    },
    /// The server refused something; with `id`, that client message will never be acked.
    Error {
        /// The message it concerns, if any.
        id: Option<Cow<'a, str>>,
        /// Machine-readable code.
        code: Cow<'a, str>,
        /// Human-readable explanation.
        message: Cow<'a, str>,
    },
}

/// Why an inbound frame could not be understood, with a short preview of it for the logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    /// What is wrong with the frame.
    pub reason: String,
    /// The start of the frame.
    pub preview: String,
}

#[derive(Deserialize)]
struct WireFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    seq: Option<u64>,
    ts: Option<u64>,
    #[serde(default, borrow, deserialize_with = "present")]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
}

/// Distinguishes `"data": null` (a payload) from a missing `data` field.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// The largest `seq` or `ts` a server may send: 2^53 − 1, the largest integer every JSON parser
/// reads exactly. A larger value cannot come from a real stream, and adopting it as the cursor
/// would make the client drop every later message as already seen.
pub const MAX_POSITION: u64 = (1 << 53) - 1;

/// Decode a server text frame.
pub fn decode_server_frame<'a>(text: &'a str) -> Result<ServerFrame<'a>, Malformed> {
    let fail = |reason: String| Malformed {
        reason,
        preview: preview(text),
    };
    let wire: WireFrame<'a> =
        serde_json::from_str(text).map_err(|e| fail(format!("not a valid envelope: {e}")))?;
    for (name, value) in [("seq", wire.seq), ("ts", wire.ts)] {
        if let Some(value) = value.filter(|&v| v > MAX_POSITION) {
            return Err(fail(format!(
                "`{name}` {value} is beyond 2^53 - 1, the largest position a server may send"
            )));
        }
    }
    let kind = wire
        .kind
        .ok_or_else(|| fail("missing field `type`".into()))?;
    let require = |field: Option<Cow<'a, str>>, name: &str| {
        field.ok_or_else(|| fail(format!("`{kind}` frame without field `{name}`")))
    };
    match &*kind {
        "hello" => Ok(ServerFrame::Hello {
            seq: wire.seq,
            ts: wire.ts,
        }),
        "msg" => Ok(ServerFrame::Msg {
            id: require(wire.id, "id")?,
            seq: wire.seq,
            ts: wire.ts,
            data: wire
                .data
                .ok_or_else(|| fail("`msg` frame without field `data`".into()))?
                .get(),
        }),
        "ack" => Ok(ServerFrame::Ack {
            id: require(wire.id, "id")?,
        }),
        "ping" => Ok(ServerFrame::Ping { ts: wire.ts }),
        "pong" => Ok(ServerFrame::Pong { ts: wire.ts }),
        "error" => Ok(ServerFrame::Error {
            id: wire.id,
            code: wire.code.unwrap_or(Cow::Borrowed("error")),
            message: require(wire.message, "message")?,
        }),
        other => Err(fail(format!("unknown frame type {other:?}"))),
    }
}

/// Deepest nesting of arrays and objects a message's `data` may have (docs/protocol.md §9).
pub const MAX_DEPTH: usize = 64;

/// Why a payload cannot be sent as a message's `data`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadPayload {
    /// Not one JSON value: the parser's complaint, with line and column.
    NotJson(String),
    /// JSON the protocol's portable-JSON rule forbids: what breaks it.
    NotPortable(String),
}

/// Check that `payload` is one JSON value every receiver can read back: the protocol's
/// portable-JSON rule (docs/protocol.md §9), nesting at most [`MAX_DEPTH`] deep and no number a
/// 64-bit float cannot hold. Servers refuse anything else as `bad_message`, so a message that
/// breaks the rule is refused at `send` instead of queued to fail later. One pass, nothing
/// built: the payload may be large and is checked on every send.
pub fn validate_json(payload: &str) -> Result<(), BadPayload> {
    use serde::de::DeserializeSeed;
    let mut deserializer = serde_json::Deserializer::from_str(payload);
    // serde_json stops at 128 levels on its own; our limit is lower.
    let checked = Portable { depth: 0 }
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
    checked.map_err(|error| {
        let text = error.to_string();
        if text.starts_with(NESTED_TOO_DEEP) {
            BadPayload::NotPortable(format!("it is nested deeper than {MAX_DEPTH} levels"))
        } else if text.starts_with("number out of range") {
            BadPayload::NotPortable(format!(
                "it holds a number no 64-bit float can hold ({})",
                text.trim_start_matches("number out of range ")
            ))
        } else {
            BadPayload::NotJson(text)
        }
    })
}

const NESTED_TOO_DEEP: &str = "nested too deep";

/// One JSON value at `depth`, checked and dropped as it is read.
struct Portable {
    depth: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for Portable {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Portable {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        // serde_json refuses what overflows a float before it gets here.
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let inner = self.nested::<A::Error>()?;
        while items
            .next_element_seed(Portable { depth: inner })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut fields: A) -> Result<(), A::Error> {
        let inner = self.nested::<A::Error>()?;
        while fields.next_key::<serde::de::IgnoredAny>()?.is_some() {
            fields.next_value_seed(Portable { depth: inner })?;
        }
        Ok(())
    }
}

impl Portable {
    fn nested<E: serde::de::Error>(&self) -> Result<usize, E> {
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            return Err(E::custom(NESTED_TOO_DEEP));
        }
        Ok(depth)
    }
}

/// `{"type":"msg","id":…,"data":…}`; `data` must already be valid JSON.
pub fn encode_msg(id: &str, data: &str) -> String {
    let mut frame = String::with_capacity(32 + id.len() + data.len());
    frame.push_str(r#"{"type":"msg","id":"#);
    push_json_string(&mut frame, id);
    frame.push_str(r#","data":"#);
    frame.push_str(data);
    frame.push('}');
    frame
}

/// The `data` of a `msg` frame this client encoded with [`encode_msg`].
pub fn msg_data(frame: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Msg<'a> {
        #[serde(borrow)]
        data: &'a RawValue,
    }
    serde_json::from_str::<Msg>(frame)
        .ok()
        .map(|msg| msg.data.get().to_owned())
}

/// `{"type":"ping","ts":…}`.
pub fn encode_ping(ts: u64) -> String {
    format!(r#"{{"type":"ping","ts":{ts}}}"#)
}

/// `{"type":"pong","ts":…}`, or without `ts` when the ping had none.
pub fn encode_pong(ts: Option<u64>) -> String {
    match ts {
        Some(ts) => format!(r#"{{"type":"pong","ts":{ts}}}"#),
        None => r#"{"type":"pong"}"#.to_owned(),
    }
}

/// `s` as a JSON string, appended to `out`.
fn push_json_string(out: &mut String, s: &str) {
    // Ids this client makes need no escaping: no serialiser and no copy for them.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).expect("a string always serialises"));
    }
}

/// At most 60 characters of `text`, for error reports.
pub fn preview(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> String {
        decode_server_frame(text).unwrap_err().reason
    }

    #[test]
    fn decodes_every_server_frame() {
        assert_eq!(
            decode_server_frame(
                r#"{"type":"msg","id":"m1","seq":7,"ts":1717,"data":{"a":[1, 2]},"extra":true}"#
            ),
            Ok(ServerFrame::Msg {
                id: "m1".into(),
                seq: Some(7),
                ts: Some(1717),
                data: r#"{"a":[1, 2]}"#
            })
        );
        assert_eq!(
            decode_server_frame(r#"{"type":"msg","id":"m2","data":null}"#),
            Ok(ServerFrame::Msg {
                id: "m2".into(),
                seq: None,
                ts: None,
                data: "null"
            })
        );
        assert_eq!(
            decode_server_frame(r#"{"type":"ack","id":"c1"}"#),
            Ok(ServerFrame::Ack { id: "c1".into() })
        );
        assert_eq!(
            decode_server_frame(r#"{"type":"pong","ts":5}"#),
            Ok(ServerFrame::Pong { ts: Some(5) })
        );
        assert_eq!(
            decode_server_frame(r#"{"type":"ping"}"#),
            Ok(ServerFrame::Ping { ts: None })
        );
        assert_eq!(
            decode_server_frame(
                r#"{"type":"error","code":"too_large","message":"max 4 MiB","id":"c9"}"#
            ),
            Ok(ServerFrame::Error {
                id: Some("c9".into()),
                code: "too_large".into(),
                message: "max 4 MiB".into()
            })
        );
    }

    #[test]
    fn invalid_json_is_reported_with_a_preview() {
        let bad = format!("{{not json {}", "x".repeat(200));
        let err = decode_server_frame(&bad).unwrap_err();
        assert!(
            err.reason
                .starts_with("not a valid envelope: key must be a string"),
            "{}",
            err.reason
        );
        assert_eq!(err.preview.chars().count(), 61);
        assert!(err.preview.ends_with('…'));
        assert!(reason("").contains("EOF"));
        assert!(reason("[1,2]").contains("not a valid envelope"));
    }

    #[test]
    fn wrong_types_and_huge_numbers_are_malformed() {
        assert!(reason(r#"{"type":"msg","id":5,"data":1}"#).contains("invalid type: integer"));
        assert!(reason(r#"{"type":"msg","id":"a","seq":-1,"data":1}"#).contains("invalid value"));
        assert!(
            reason(r#"{"type":"msg","id":"a","seq":18446744073709551616,"data":1}"#)
                .contains("not a valid envelope")
        );
        assert!(
            reason(r#"{"type":"msg","id":"a","seq":1.5,"data":1}"#)
                .contains("invalid type: floating point")
        );
        assert!(reason(r#"{"type":7}"#).contains("invalid type"));
    }

    #[test]
    fn positions_beyond_two_to_the_53_are_malformed() {
        let at_limit = format!(r#"{{"type":"msg","id":"a","seq":{MAX_POSITION},"data":1}}"#);
        assert!(decode_server_frame(&at_limit).is_ok());
        assert_eq!(
            reason(r#"{"type":"msg","id":"a","seq":18446744073709551615,"data":1}"#),
            "`seq` 18446744073709551615 is beyond 2^53 - 1, the largest position a server may send"
        );
        assert!(
            reason(r#"{"type":"hello","seq":9007199254740992}"#)
                .starts_with("`seq` 9007199254740992")
        );
        assert!(
            reason(r#"{"type":"pong","ts":9007199254740992}"#).starts_with("`ts` 9007199254740992")
        );
    }

    #[test]
    fn missing_fields_and_unknown_types_are_named() {
        assert_eq!(reason(r#"{"id":"a"}"#), "missing field `type`");
        assert_eq!(
            reason(r#"{"type":"msg","data":1}"#),
            "`msg` frame without field `id`"
        );
        assert_eq!(
            reason(r#"{"type":"msg","id":"a"}"#),
            "`msg` frame without field `data`"
        );
        assert_eq!(
            reason(r#"{"type":"ack"}"#),
            "`ack` frame without field `id`"
        );
        assert_eq!(
            reason(r#"{"type":"error","code":"x"}"#),
            "`error` frame without field `message`"
        );
        assert_eq!(
            reason(r#"{"type":"shout"}"#),
            r#"unknown frame type "shout""#
        );
    }

    #[test]
    fn encodes_client_frames_that_decode_as_json() {
        let msg = encode_msg("id-\"1\"", r#"{"x":1}"#);
        assert_eq!(msg, r#"{"type":"msg","id":"id-\"1\"","data":{"x":1}}"#);
        assert_eq!(
            encode_msg("m-1", "2"),
            r#"{"type":"msg","id":"m-1","data":2}"#
        );
        let value: serde_json::Value = serde_json::from_str(&msg).unwrap();
        assert_eq!(value["data"]["x"], 1);
        assert_eq!(msg_data(&msg).as_deref(), Some(r#"{"x":1}"#));
        assert_eq!(encode_ping(12), r#"{"type":"ping","ts":12}"#);
        assert_eq!(encode_pong(Some(12)), r#"{"type":"pong","ts":12}"#);
        assert_eq!(encode_pong(None), r#"{"type":"pong"}"#);
    }

    #[test]
    fn validate_json_accepts_one_value_only() {
        assert!(validate_json(r#" {"a": 1} "#).is_ok());
        assert!(validate_json("\"text\"").is_ok());
        let not_json = |text: &str| match validate_json(text) {
            Err(BadPayload::NotJson(reason)) => reason,
            other => panic!("{text:?}: {other:?}"),
        };
        assert!(not_json("hello").contains("expected value"));
        assert!(not_json("{} {}").contains("trailing characters"));
        assert!(not_json(r#"{"a": [1, }"#).contains("line 1"));
        not_json("");
    }

    #[test]
    fn validate_json_applies_the_portable_json_rule() {
        let nested = |levels: usize| {
            format!(
                "{}{}",
                r#"{"a":["#.repeat(levels / 2),
                "]}".repeat(levels / 2)
            )
        };
        assert_eq!(validate_json(&nested(MAX_DEPTH)), Ok(()));
        for deep in [nested(MAX_DEPTH + 2), "[".repeat(5000)] {
            assert_eq!(
                validate_json(&deep),
                Err(BadPayload::NotPortable(
                    "it is nested deeper than 64 levels".into()
                ))
            );
        }
        assert!(
            validate_json(r#"{"big": 1.7e308, "long": 123456789012345678901234567890}"#).is_ok()
        );
        for huge in [
            r#"{"n": 1e400}"#.to_owned(),
            format!("[{}]", "9".repeat(400)),
        ] {
            let Err(BadPayload::NotPortable(reason)) = validate_json(&huge) else {
                panic!("{huge:.40} passed");
            };
            assert!(reason.contains("no 64-bit float"), "{reason}");
        }
    }

    #[test]
    fn preview_cuts_on_char_boundaries() {
        let text = "é".repeat(100);
        assert_eq!(preview(&text).chars().count(), 61);
        assert_eq!(preview("short"), "short");
    }
}

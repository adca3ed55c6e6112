//! The envelope protocol from the server's side: parsing client frames, writing server frames.
//! `docs/protocol.md` is the specification.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// Longest client message id accepted; ids are UUIDs in practice.
pub const MAX_ID_LEN: usize = 128;

/// A frame from a client.
#[derive(Debug)]
pub enum ClientFrame {
    /// An application message to store, ack and fan out.
    Msg {
        /// The client's unique id for it.
        id: String,
        /// The payload as JSON text.
        data: String,
    },
    /// A heartbeat ping; `ts` (raw JSON, if any) is echoed in the pong.
    Ping {
        /// The client's opaque value.
        ts: Option<String>,
    },
    /// Answer to a server ping.
    Pong,
}

/// A client frame the server refuses, answered with an `error` frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Machine-readable code.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// The message it concerns, when known.
    pub id: Option<String>,
}

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<serde_json::Value>,
    #[serde(default, borrow, deserialize_with = "present")]
    data: Option<&'a RawValue>,
    #[serde(default, borrow)]
    ts: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Parse a client text frame.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, Refusal> {
    let refuse = |code, message: String, id: Option<String>| Refusal { code, message, id };
    let wire: Wire = serde_json::from_str(text)
        .map_err(|e| refuse("bad_json", format!("not a JSON object: {e}"), None))?;
    match wire.kind.as_deref() {
        Some("msg") => {
            let id = match wire.id {
                Some(serde_json::Value::String(id)) if !id.is_empty() && id.len() <= MAX_ID_LEN => {
                    id
                }
                _ => {
                    let message =
                        format!("`msg` needs an `id`: a string of 1 to {MAX_ID_LEN} bytes");
                    return Err(refuse("bad_message", message, None));
                }
            };
            let Some(data) = wire.data else {
                return Err(refuse(
                    "bad_message",
                    "`msg` needs a `data` field".into(),
                    Some(id),
                ));
            };
            Ok(ClientFrame::Msg {
                id,
                data: data.get().to_owned(),
            })
        }
        Some("ping") => Ok(ClientFrame::Ping {
            ts: wire.ts.map(|ts| ts.get().to_owned()),
        }),
        Some("pong") => Ok(ClientFrame::Pong),
        Some(other) => Err(refuse(
            "unknown_type",
            format!("unknown frame type {other:?}"),
            None,
        )),
        None => Err(refuse("bad_json", "missing field `type`".into(), None)),
    }
}

/// `{"type":"hello","seq":…,"ts":…}`.
pub fn hello(seq: u64, ts: u64) -> String {
    format!(r#"{{"type":"hello","seq":{seq},"ts":{ts}}}"#)
}

/// `{"type":"msg","id":…,"seq":…,"ts":…,"data":…}`; `data` is JSON text already.
pub fn msg(id: &str, seq: u64, ts: u64, data: &str) -> String {
    format!(
        r#"{{"type":"msg","id":{},"seq":{seq},"ts":{ts},"data":{data}}}"#,
        json_string(id)
    )
}

/// `{"type":"ack","id":…}`.
pub fn ack(id: &str) -> String {
    format!(r#"{{"type":"ack","id":{}}}"#, json_string(id))
}

/// `{"type":"pong","ts":…}` echoing the ping's raw `ts`.
pub fn pong(ts: Option<&str>) -> String {
    match ts {
        Some(ts) => format!(r#"{{"type":"pong","ts":{ts}}}"#),
        None => r#"{"type":"pong"}"#.to_owned(),
    }
}

/// `{"type":"ping","ts":…}` for the server-driven heartbeat.
pub fn ping(ts: u64) -> String {
    format!(r#"{{"type":"ping","ts":{ts}}}"#)
}

/// `{"type":"error","code":…,"message":…,"id":…}`.
pub fn error(code: &str, message: &str, id: Option<&str>) -> String {
    let mut frame = serde_json::json!({ "type": "error", "code": code, "message": message });
    if let Some(id) = id {
        frame["id"] = id.into();
    }
    frame.to_string()
}

fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(text: &str) -> Refusal {
        parse_client_frame(text).unwrap_err()
    }

    #[test]
    fn parses_client_frames() {
        let Ok(ClientFrame::Msg { id, data }) =
            parse_client_frame(r#"{"type":"msg","id":"a-1","data":{"x":[1,2]},"extra":0}"#)
        else {
            panic!("msg expected")
        };
        assert_eq!((id.as_str(), data.as_str()), ("a-1", r#"{"x":[1,2]}"#));
        let Ok(ClientFrame::Ping { ts }) = parse_client_frame(r#"{"type":"ping","ts":17}"#) else {
            panic!("ping expected")
        };
        assert_eq!(pong(ts.as_deref()), r#"{"type":"pong","ts":17}"#);
        assert!(matches!(
            parse_client_frame(r#"{"type":"pong"}"#),
            Ok(ClientFrame::Pong)
        ));
    }

    #[test]
    fn bad_frames_are_refused_with_a_code() {
        assert_eq!(refusal("nope").code, "bad_json");
        assert_eq!(refusal(r#"{"id":"x"}"#).code, "bad_json");
        assert_eq!(refusal(r#"{"type":"shout"}"#).code, "unknown_type");
        assert_eq!(refusal(r#"{"type":"msg","data":1}"#).code, "bad_message");
        assert_eq!(
            refusal(r#"{"type":"msg","id":7,"data":1}"#).code,
            "bad_message"
        );
        let long = format!(
            r#"{{"type":"msg","id":"{}","data":1}}"#,
            "x".repeat(MAX_ID_LEN + 1)
        );
        assert_eq!(refusal(&long).code, "bad_message");
        let missing_data = refusal(r#"{"type":"msg","id":"m"}"#);
        assert_eq!(
            (missing_data.code, missing_data.id.as_deref()),
            ("bad_message", Some("m"))
        );
    }

    #[test]
    fn server_frames_are_json() {
        for frame in [
            hello(3, 4),
            msg("i\"d", 1, 2, "null"),
            ack("a"),
            ping(5),
            error("c", "m \"q\"", Some("i")),
        ] {
            let value: serde_json::Value = serde_json::from_str(&frame).unwrap();
            assert!(value["type"].is_string(), "{frame}");
        }
    }
}

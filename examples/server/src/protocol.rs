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
            if let Err(problem) = check_portable(data.get()) {
                let message = format!("`data` {problem}");
                return Err(refuse("bad_message", message, Some(id)));
            }
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

/// Deepest nesting of arrays and objects accepted in `data`.
pub const MAX_DEPTH: usize = 64;

/// Whether every client can read `data` back: the server fans it out to clients in any language,
/// so it refuses JSON that common parsers choke on — nesting deeper than [`MAX_DEPTH`] (Python's
/// `json` and others recurse per level) and numbers no 64-bit float can hold (`1e400`, or an
/// integer of hundreds of digits, which Python refuses past 4 300 digits and JavaScript turns into
/// `Infinity`).
pub fn check_portable(data: &str) -> Result<(), String> {
    let value: serde_json::Value = serde_json::from_str(data).map_err(|e| {
        if e.to_string().contains("number out of range") {
            "holds a number no 64-bit float can hold".to_owned()
        } else if e.to_string().contains("recursion limit") {
            format!("is nested deeper than {MAX_DEPTH} levels")
        } else {
            format!("is not JSON: {e}")
        }
    })?;
    if depth(&value) > MAX_DEPTH {
        return Err(format!("is nested deeper than {MAX_DEPTH} levels"));
    }
    Ok(())
}

fn depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(fields) => 1 + fields.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Whether `id` is a usable `client_id`: 1 to 64 URL-safe characters.
pub fn is_valid_client_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
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
    fn data_that_common_parsers_reject_is_refused() {
        let frame = |data: &str| format!(r#"{{"type":"msg","id":"m","data":{data}}}"#);
        let nested = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        assert!(parse_client_frame(&frame(&nested(MAX_DEPTH))).is_ok());
        for (data, problem) in [
            (nested(MAX_DEPTH + 1), "nested deeper than 64 levels"),
            (nested(5000), "nested deeper than 64 levels"),
            ("1e400".to_owned(), "no 64-bit float"),
            (format!("[{}]", "9".repeat(400)), "no 64-bit float"),
        ] {
            let refusal = refusal(&frame(&data));
            assert_eq!(refusal.code, "bad_message");
            assert_eq!(refusal.id.as_deref(), Some("m"));
            assert!(refusal.message.contains(problem), "{}", refusal.message);
        }
        assert!(parse_client_frame(&frame(r#"{"big":18446744073709551615,"f":1.5e300}"#)).is_ok());
    }

    #[test]
    fn client_ids_are_short_and_url_safe() {
        assert!(is_valid_client_id("4f1c2d3e-aaaa-4bbb-8ccc-0123456789ab"));
        assert!(!is_valid_client_id("") && !is_valid_client_id(&"x".repeat(65)));
        assert!(!is_valid_client_id("a%20b") && !is_valid_client_id("a/b"));
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

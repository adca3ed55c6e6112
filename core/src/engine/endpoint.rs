//! The server URL: validated once at construction, then rewritten with the resume cursor for
//! every attempt.

use url::Url;

use super::error::UrlError;
use super::resume::{ResumeConfig, ResumeCursor};

/// A validated `ws://` or `wss://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    url: Url,
}

impl Endpoint {
    /// Validate `input`, explaining what is wrong and suggesting the ws/wss form where possible.
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(UrlError::Empty);
        }
        let url = match Url::parse(input) {
            Ok(url) => url,
            Err(url::ParseError::RelativeUrlWithoutBase) => {
                return Err(UrlError::WrongScheme {
                    scheme: String::new(),
                    suggestion: Some(format!("ws://{input}")),
                });
            }
            Err(err) => {
                return Err(UrlError::Malformed {
                    url: input.into(),
                    reason: err.to_string(),
                });
            }
        };
        match url.scheme() {
            "ws" | "wss" => {}
            scheme => {
                let suggestion = match scheme {
                    "http" => Some(format!("ws{}", &input[4..])),
                    "https" => Some(format!("wss{}", &input[5..])),
                    // "localhost:8080" parses with scheme "localhost".
                    _ if !input.contains("://") => Some(format!("ws://{input}")),
                    _ => None,
                };
                return Err(UrlError::WrongScheme {
                    scheme: scheme.into(),
                    suggestion,
                });
            }
        }
        if url.fragment().is_some() {
            return Err(UrlError::Malformed {
                url: input.into(),
                reason: "WebSocket URLs cannot carry a #fragment (RFC 6455 §3); remove it".into(),
            });
        }
        Ok(Endpoint { url })
    }

    /// The URL as given (normalised).
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The URL for the next attempt: the user's query parameters kept, the client id and the
    /// cursor parameters replaced by the current ones (or removed while there are none).
    pub fn url_for_attempt(
        &self,
        client_id: Option<&str>,
        cursor: &ResumeCursor,
        names: &ResumeConfig,
    ) -> String {
        let mut url = self.url.clone();
        let ours = [CLIENT_ID_PARAM, &names.seq_param, &names.ts_param];
        let kept: Vec<(String, String)> = self
            .url
            .query_pairs()
            .filter(|(key, _)| !ours.contains(&key.as_ref()))
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        let cursor_pairs = [
            (&names.seq_param, cursor.last_seq),
            (&names.ts_param, cursor.last_ts),
        ];
        let added: Vec<(&str, String)> = client_id
            .map(|id| (CLIENT_ID_PARAM, id.to_owned()))
            .into_iter()
            .chain(
                cursor_pairs
                    .into_iter()
                    .filter_map(|(name, value)| Some((name.as_str(), value?.to_string()))),
            )
            .collect();
        if kept.is_empty() && added.is_empty() {
            url.set_query(None);
        } else {
            let mut query = url.query_pairs_mut();
            query.clear();
            query.extend_pairs(kept);
            query.extend_pairs(added);
        }
        url.into()
    }
}

/// The query parameter that carries [`Config::client_id`](super::Config::client_id).
pub const CLIENT_ID_PARAM: &str = "client_id";

/// Whether `id` can serve as a client id: 1 to 64 URL-safe characters, so it travels in a query
/// string unescaped and servers can log and compare it as is.
pub fn is_valid_client_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(input: &str) -> String {
        Endpoint::parse(input).unwrap_err().to_string()
    }

    #[test]
    fn http_and_https_are_refused_with_the_ws_form() {
        assert_eq!(
            message("http://example.com:8080/chat"),
            "the URL's scheme must be ws or wss, not \"http\": use ws://example.com:8080/chat"
        );
        assert_eq!(
            message("https://example.com/chat?room=1"),
            "the URL's scheme must be ws or wss, not \"https\": use wss://example.com/chat?room=1"
        );
    }

    #[test]
    fn missing_scheme_suggests_ws() {
        assert!(message("localhost:8080/ws").ends_with("use ws://localhost:8080/ws"));
        assert!(
            message("/ws").ends_with("use ws:///ws"),
            "{}",
            message("/ws")
        );
        let err = Endpoint::parse("ftp://x/y").unwrap_err();
        assert_eq!(
            err,
            UrlError::WrongScheme {
                scheme: "ftp".into(),
                suggestion: None
            }
        );
    }

    #[test]
    fn malformed_and_empty_urls_give_the_reason() {
        assert_eq!(Endpoint::parse("  ").unwrap_err(), UrlError::Empty);
        assert!(
            message("ws://exa mple.com/").contains("malformed"),
            "{}",
            message("ws://exa mple.com/")
        );
        assert!(message("ws://host:99999/").contains("invalid port"));
        assert!(message("ws://host/#frag").contains("fragment"));
        assert!(
            message("ws://").contains("empty host"),
            "{}",
            message("ws://")
        );
    }

    #[test]
    fn valid_urls_are_accepted() {
        let endpoint = Endpoint::parse(" wss://example.com/ws?room=7 ").unwrap();
        assert_eq!(endpoint.as_str(), "wss://example.com/ws?room=7");
        assert_eq!(
            Endpoint::parse("ws://127.0.0.1:9001").unwrap().as_str(),
            "ws://127.0.0.1:9001/"
        );
    }

    #[test]
    fn client_ids_are_short_and_url_safe() {
        assert!(is_valid_client_id("0b6f2c1e-5d7a-4b8e-9f3a-2c1d0e9f8a7b"));
        assert!(is_valid_client_id("device_42.v1~a"));
        assert!(!is_valid_client_id(""));
        assert!(!is_valid_client_id(&"a".repeat(65)));
        assert!(
            !is_valid_client_id("a b") && !is_valid_client_id("a&b") && !is_valid_client_id("é")
        );
    }

    #[test]
    fn the_client_id_replaces_one_in_the_users_url() {
        let names = ResumeConfig::default();
        let endpoint = Endpoint::parse("ws://h/ws?client_id=forged&room=7").unwrap();
        assert_eq!(
            endpoint.url_for_attempt(Some("me"), &ResumeCursor::default(), &names),
            "ws://h/ws?room=7&client_id=me"
        );
    }

    #[test]
    fn cursor_replaces_its_own_parameters_and_keeps_the_users() {
        let names = ResumeConfig::default();
        let endpoint = Endpoint::parse("ws://h/ws?room=7&last_ts=1&token=a%20b").unwrap();
        let none = ResumeCursor::default();
        assert_eq!(
            endpoint.url_for_attempt(None, &none, &names),
            "ws://h/ws?room=7&token=a+b"
        );
        let cursor = ResumeCursor {
            last_seq: Some(42),
            last_ts: Some(1_717_000_000_000),
        };
        assert_eq!(
            endpoint.url_for_attempt(None, &cursor, &names),
            "ws://h/ws?room=7&token=a+b&last_seq=42&last_ts=1717000000000"
        );
        let bare = Endpoint::parse("ws://h/ws").unwrap();
        assert_eq!(bare.url_for_attempt(None, &none, &names), "ws://h/ws");
        let custom = ResumeConfig {
            seq_param: "s".into(),
            ts_param: "since".into(),
            ..names
        };
        assert_eq!(
            bare.url_for_attempt(None, &cursor, &custom),
            "ws://h/ws?s=42&since=1717000000000"
        );
    }
}

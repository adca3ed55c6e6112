//! The server URL: validated once at construction, then rewritten with the resume cursor for
//! every attempt.

use url::Url;

use super::config::ResumeConfig;
use super::error::UrlError;
use super::resume::ResumeCursor;

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

    /// The URL for the next attempt: the user's query parameters kept, the cursor parameters
    /// replaced by the current cursor (or removed while there is none).
    pub fn url_with_cursor(&self, cursor: &ResumeCursor, names: &ResumeConfig) -> String {
        let mut url = self.url.clone();
        let kept: Vec<(String, String)> = self
            .url
            .query_pairs()
            .filter(|(key, _)| key != &names.seq_param && key != &names.ts_param)
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        let cursor_pairs = [
            (&names.seq_param, cursor.last_seq),
            (&names.ts_param, cursor.last_ts),
        ];
        let cursor_pairs: Vec<(&String, u64)> = cursor_pairs
            .into_iter()
            .filter_map(|(name, value)| Some((name, value?)))
            .collect();
        if kept.is_empty() && cursor_pairs.is_empty() {
            url.set_query(None);
        } else {
            let mut query = url.query_pairs_mut();
            query.clear();
            query.extend_pairs(kept);
            for (name, value) in cursor_pairs {
                query.append_pair(name, &value.to_string());
            }
        }
        url.into()
    }
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
    fn cursor_replaces_its_own_parameters_and_keeps_the_users() {
        let names = ResumeConfig::default();
        let endpoint = Endpoint::parse("ws://h/ws?room=7&last_ts=1&token=a%20b").unwrap();
        let none = ResumeCursor::default();
        assert_eq!(
            endpoint.url_with_cursor(&none, &names),
            "ws://h/ws?room=7&token=a+b"
        );
        let cursor = ResumeCursor {
            last_seq: Some(42),
            last_ts: Some(1_717_000_000_000),
        };
        assert_eq!(
            endpoint.url_with_cursor(&cursor, &names),
            "ws://h/ws?room=7&token=a+b&last_seq=42&last_ts=1717000000000"
        );
        let bare = Endpoint::parse("ws://h/ws").unwrap();
        assert_eq!(bare.url_with_cursor(&none, &names), "ws://h/ws");
        let custom = ResumeConfig {
            seq_param: "s".into(),
            ts_param: "since".into(),
            ..names
        };
        assert_eq!(
            bare.url_with_cursor(&cursor, &custom),
            "ws://h/ws?s=42&since=1717000000000"
        );
    }
}

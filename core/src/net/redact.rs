//! What may appear in logs: URLs without credentials or token-looking query values.

use url::Url;

const SECRET_HINTS: &[&str] = &[
    "token",
    "key",
    "secret",
    "auth",
    "pass",
    "sig",
    "session",
    "jwt",
    "credential",
    "code",
    "ticket",
];

/// `url` with user info and secret-looking query values replaced by `***`.
pub fn url(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        return "<unparsable URL>".into();
    };
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let lower = key.to_ascii_lowercase();
                let secret = SECRET_HINTS.iter().any(|hint| lower.contains(hint));
                (
                    key.into_owned(),
                    if secret {
                        "***".into()
                    } else {
                        value.into_owned()
                    },
                )
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_masked_and_the_rest_kept() {
        assert_eq!(
            super::url("wss://user:pw@h/ws?room=7&access_token=abc&apiKey=k&last_seq=3"),
            "wss://h/ws?room=7&access_token=***&apiKey=***&last_seq=3"
        );
        assert_eq!(super::url("ws://h/ws"), "ws://h/ws");
        assert_eq!(super::url("::"), "<unparsable URL>");
    }
}

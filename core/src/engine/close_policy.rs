//! The close policy: what a failed attempt or a lost connection means for the next one — give
//! up, retry at once with fresh credentials, or retry after the backoff (at least as long as the
//! server asked for).

use std::time::Duration;

use super::config::Config;
use super::error::ConnectionError;

/// What the close policy makes of a failure.
pub(super) enum Verdict {
    /// Stop: the server refused this client for good.
    Fatal,
    /// Retry at once, asking the headers provider for new credentials.
    RetryWithFreshCredentials,
    /// Retry after the backoff, waiting at least `server_delay` if the server asked for one.
    Retry { server_delay: Option<Duration> },
}

/// The verdict on `error` under `config`'s close policy.
pub(super) fn verdict(
    config: &Config,
    credentials_refreshed: bool,
    error: &ConnectionError,
) -> Verdict {
    let policy = &config.close_policy;
    match *error {
        ConnectionError::Handshake {
            status,
            retry_after,
        } => {
            if policy.auth_statuses.contains(&status) && !credentials_refreshed {
                Verdict::RetryWithFreshCredentials
            } else if policy.fatal_statuses.contains(&status) {
                Verdict::Fatal
            } else {
                let hinted = matches!(status, 429 | 503);
                Verdict::Retry {
                    server_delay: retry_after.filter(|_| hinted),
                }
            }
        }
        ConnectionError::Closed { code, ref reason } => {
            if policy.auth_close_codes.contains(&code) && !credentials_refreshed {
                Verdict::RetryWithFreshCredentials
            } else if policy
                .fatal_close_codes
                .iter()
                .any(|range| range.contains(&code))
            {
                Verdict::Fatal
            } else if code == 1013 {
                Verdict::Retry {
                    server_delay: Some(try_again_later_delay(reason, config)),
                }
            } else {
                Verdict::Retry { server_delay: None }
            }
        }
        _ => Verdict::Retry { server_delay: None },
    }
}

/// Close code 1013 ("try again later") may carry the delay in seconds in its reason ("30" or
/// "retry after 30"); without one the server still asked for patience, so wait the longest
/// scheduled delay.
fn try_again_later_delay(reason: &str, config: &Config) -> Duration {
    let digits: String = reason
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .map(Duration::from_secs)
        .unwrap_or(config.backoff.max)
}

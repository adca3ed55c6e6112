//! Reconnect pacing: exponential delays with jitter, a cap, an attempt budget, and server hints.
//!
//! Delays double from `initial` up to `max`. Jitter only ever shortens a delay (by up to
//! `jitter × delay`), so the cap holds and the lower bound still doubles — a fleet of clients
//! dropped together spreads out, yet a single client can never fall into a tight loop.

use std::time::Duration;

use super::config::BackoffConfig;
use super::random::Random;

/// The retry schedule of one socket.
#[derive(Debug)]
pub struct Backoff {
    config: BackoffConfig,
    /// Failed attempts since the last reset.
    failures: u32,
    /// A delay the server asked for (close 1013, HTTP 429/503 `Retry-After`); used once, and
    /// only to lengthen the scheduled delay.
    server_hint: Option<Duration>,
}

impl Backoff {
    /// A fresh schedule.
    pub fn new(config: BackoffConfig) -> Self {
        Backoff {
            config,
            failures: 0,
            server_hint: None,
        }
    }

    /// Forget past failures: the next delay is the initial one again.
    pub fn reset(&mut self) {
        self.failures = 0;
        self.server_hint = None;
    }

    /// Wait at least `delay` (clamped to `max_server_delay`) before the next retry. A hint can
    /// only lengthen the schedule: a server answering "retry after 0" still gets the growing,
    /// jittered delays, never a tight loop.
    pub fn honour_server_hint(&mut self, delay: Duration) {
        self.server_hint = Some(delay.min(self.config.max_server_delay));
    }

    /// Record a failed attempt. Returns the delay before the next one, or `None` when the attempt
    /// budget is spent.
    pub fn next_delay(&mut self, random: &mut dyn Random) -> Option<Duration> {
        self.failures = self.failures.saturating_add(1);
        if self
            .config
            .max_attempts
            .is_some_and(|max| self.failures >= max)
        {
            return None;
        }
        let nominal = self.nominal_delay();
        let shortening = nominal.mul_f64(self.config.jitter * random.next_unit());
        let scheduled = nominal.saturating_sub(shortening);
        Some(
            self.server_hint
                .take()
                .map_or(scheduled, |hint| hint.max(scheduled)),
        )
    }

    /// The un-jittered delay after the current number of failures.
    fn nominal_delay(&self) -> Duration {
        let exponent = self.failures.saturating_sub(1).min(30) as i32;
        let factor = self.config.multiplier.powi(exponent);
        let secs = self.config.initial.as_secs_f64() * factor;
        if secs.is_finite() && secs < self.config.max.as_secs_f64() {
            Duration::from_secs_f64(secs)
        } else {
            self.config.max
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::random::SplitMix64;

    fn schedule(config: BackoffConfig, seed: u64, n: usize) -> Vec<Option<Duration>> {
        let mut backoff = Backoff::new(config);
        let mut random = SplitMix64::new(seed);
        (0..n).map(|_| backoff.next_delay(&mut random)).collect()
    }

    #[test]
    fn without_jitter_doubles_from_one_second_to_the_cap() {
        let config = BackoffConfig {
            jitter: 0.0,
            ..BackoffConfig::default()
        };
        let secs: Vec<u64> = schedule(config, 1, 8)
            .into_iter()
            .map(|d| d.unwrap().as_secs())
            .collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn jittered_delays_stay_within_bounds_and_their_floor_grows() {
        let config = BackoffConfig::default();
        assert!(config.jitter > 0.0, "jitter is on by default");
        for seed in 0..500 {
            let delays = schedule(config.clone(), seed, 12);
            for (i, delay) in delays.iter().enumerate() {
                let delay = delay.unwrap();
                let nominal = Duration::from_secs((1u64 << i).min(30));
                let floor = nominal.mul_f64(1.0 - config.jitter);
                assert!(
                    delay <= nominal,
                    "seed {seed} attempt {i}: {delay:?} > {nominal:?}"
                );
                assert!(
                    delay >= floor,
                    "seed {seed} attempt {i}: {delay:?} < {floor:?}"
                );
                assert!(delay <= config.max);
            }
        }
    }

    #[test]
    fn jitter_spreads_clients_apart() {
        let firsts: std::collections::BTreeSet<Duration> = (0..50)
            .map(|seed| schedule(BackoffConfig::default(), seed, 1)[0].unwrap())
            .collect();
        assert!(
            firsts.len() > 40,
            "only {} distinct first delays",
            firsts.len()
        );
    }

    #[test]
    fn attempt_budget_ends_the_schedule() {
        let config = BackoffConfig {
            max_attempts: Some(3),
            ..BackoffConfig::default()
        };
        let delays = schedule(config, 3, 4);
        assert!(delays[0].is_some() && delays[1].is_some());
        assert_eq!(delays[2], None);
        assert_eq!(delays[3], None);
    }

    #[test]
    fn a_zero_server_hint_cannot_shorten_the_schedule() {
        let config = BackoffConfig::default();
        for seed in 0..200 {
            let mut backoff = Backoff::new(config.clone());
            let mut random = SplitMix64::new(seed);
            for i in 0..8 {
                backoff.honour_server_hint(Duration::ZERO);
                let delay = backoff.next_delay(&mut random).unwrap();
                let nominal = Duration::from_secs((1u64 << i).min(30));
                assert!(
                    delay >= nominal.mul_f64(1.0 - config.jitter),
                    "seed {seed} attempt {i}: {delay:?}"
                );
            }
        }
    }

    #[test]
    fn server_hint_is_used_once_and_clamped() {
        let mut backoff = Backoff::new(BackoffConfig {
            jitter: 0.0,
            ..BackoffConfig::default()
        });
        let mut random = SplitMix64::new(0);
        backoff.honour_server_hint(Duration::from_secs(7));
        assert_eq!(
            backoff.next_delay(&mut random),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            backoff.next_delay(&mut random),
            Some(Duration::from_secs(2))
        );
        backoff.honour_server_hint(Duration::from_secs(86_400));
        assert_eq!(
            backoff.next_delay(&mut random),
            Some(BackoffConfig::default().max_server_delay)
        );
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::new(BackoffConfig {
            jitter: 0.0,
            ..BackoffConfig::default()
        });
        let mut random = SplitMix64::new(0);
        for _ in 0..5 {
            backoff.next_delay(&mut random);
        }
        backoff.reset();
        assert_eq!(backoff.failures, 0);
        assert_eq!(
            backoff.next_delay(&mut random),
            Some(Duration::from_secs(1))
        );
    }
}

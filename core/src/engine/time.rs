//! Time as the engine sees it: handed in by the caller, never read from a clock.
//!
//! The driver maps its own monotonic clock onto [`Instant`] (for example "elapsed since the socket
//! was created"); simulations advance it by hand. Keeping the type opaque means nothing in the
//! engine can reach for `std::time::Instant::now()` by accident.

use std::ops::{Add, AddAssign};
use std::time::Duration;

/// A point on a monotonic timeline chosen by the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    /// The start of the caller's timeline.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// The instant `offset` after the start of the timeline.
    pub const fn from_offset(offset: Duration) -> Self {
        Instant(offset)
    }

    /// Shorthand for [`Instant::from_offset`] in milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Instant(Duration::from_millis(ms))
    }

    /// Time since the start of the timeline.
    pub const fn offset(self) -> Duration {
        self.0
    }

    /// Milliseconds since the start of the timeline (saturating).
    pub fn as_millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }

    /// The instant `d` before this one, or the start of the timeline if that is earlier.
    pub fn saturating_sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(d))
    }

    /// How long ago `earlier` was; zero if `earlier` is in the future.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(rhs))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

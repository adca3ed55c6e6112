//! The engine's only source of randomness: backoff jitter, message ids and the client id.
//!
//! It is injected so that simulations replay exactly with a seeded [`SplitMix64`]. A live socket
//! gets the operating system's cryptographic generator instead: message ids must be impossible to
//! predict from ids seen earlier, or a peer could claim them first.

/// A source of uniformly distributed 64-bit values.
pub trait Random: Send {
    /// The next value.
    fn next_u64(&mut self) -> u64;

    /// A value in `[0, 1)`.
    fn next_unit(&mut self) -> f64 {
        // 53 random bits fill an f64 mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast and deterministic for a given seed, for
/// simulations and tests. Not for live sockets: one output reveals every later one.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator that yields the same sequence for the same `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }
}

impl Random for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_unit_range() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let u = a.next_unit();
            b.next_unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert_ne!(SplitMix64::new(1).next_u64(), SplitMix64::new(2).next_u64());
    }
}

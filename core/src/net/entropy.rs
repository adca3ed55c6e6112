//! The operating system's cryptographic randomness for a live socket: message ids and the client
//! id that no peer can predict from ones it has seen, and backoff jitter.

use ring::rand::{SecureRandom, SystemRandom};

use crate::engine::{Random, SplitMix64};

/// Bytes fetched per call into the OS: 32 message ids' worth, so most ids cost no system call,
/// while an idle socket holds only a quarter kilobyte for it.
const BLOCK: usize = 512;

/// [`Random`] backed by the OS generator, read a block at a time.
pub struct OsRandom {
    system: SystemRandom,
    block: Box<[u8; BLOCK]>,
    used: usize,
    /// Only if the OS generator ever fails (no supported platform is known to): values then come
    /// from a generator seeded with the last OS bytes and the clock, with an error logged.
    fallback: Option<SplitMix64>,
}

impl OsRandom {
    /// A generator that fetches its first block on first use.
    pub fn new() -> Self {
        OsRandom {
            system: SystemRandom::new(),
            block: Box::new([0; BLOCK]),
            used: BLOCK,
            fallback: None,
        }
    }

    fn refill(&mut self) {
        if self.system.fill(&mut self.block[..]).is_ok() {
            self.used = 0;
            return;
        }
        log::error!("the OS random generator failed; message ids are less unpredictable now");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        let carried = u64::from_le_bytes(self.block[..8].try_into().unwrap_or_default());
        self.fallback = Some(SplitMix64::new(nanos ^ carried));
    }
}

impl Default for OsRandom {
    fn default() -> Self {
        Self::new()
    }
}

impl Random for OsRandom {
    fn next_u64(&mut self) -> u64 {
        if let Some(fallback) = &mut self.fallback {
            return fallback.next_u64();
        }
        if self.used + 8 > BLOCK {
            self.refill();
            if let Some(fallback) = &mut self.fallback {
                return fallback.next_u64();
            }
        }
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&self.block[self.used..self.used + 8]);
        self.used += 8;
        u64::from_le_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_span_blocks_without_repeating() {
        let mut random = OsRandom::new();
        let values: std::collections::HashSet<u64> =
            (0..3 * BLOCK / 8).map(|_| random.next_u64()).collect();
        assert_eq!(values.len(), 3 * BLOCK / 8);
        assert!(random.fallback.is_none());
    }
}

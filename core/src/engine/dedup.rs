//! Inbound dedup: ids already delivered, remembered within a window bounded by count and age, so
//! memory stays flat however many messages flow.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use super::config::DedupConfig;
use super::time::Instant;

/// Recently delivered inbound message ids. Each id is stored once, shared by the lookup set
/// and the age order.
#[derive(Debug)]
pub struct DedupWindow {
    config: DedupConfig,
    order: VecDeque<(Instant, Arc<str>)>,
    seen: HashSet<Arc<str>>,
}

impl DedupWindow {
    /// An empty window.
    pub fn new(config: DedupConfig) -> Self {
        DedupWindow {
            config,
            order: VecDeque::new(),
            seen: HashSet::new(),
        }
    }

    /// Records `id` and returns true if it was not in the window (deliver it), false if it was.
    pub fn first_sighting(&mut self, now: Instant, id: &str) -> bool {
        self.forget_older_than(now);
        if self.config.max_entries == 0 {
            return true;
        }
        let id: Arc<str> = Arc::from(id);
        if !self.seen.insert(Arc::clone(&id)) {
            return false;
        }
        self.order.push_back((now, id));
        while self.order.len() > self.config.max_entries {
            self.pop_oldest();
        }
        true
    }

    /// Ids remembered now.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    fn forget_older_than(&mut self, now: Instant) {
        while self
            .order
            .front()
            .is_some_and(|(at, _)| now.saturating_since(*at) > self.config.max_age)
        {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some((_, id)) = self.order.pop_front() {
            self.seen.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn window(max_entries: usize, max_age_s: u64) -> DedupWindow {
        DedupWindow::new(DedupConfig {
            max_entries,
            max_age: Duration::from_secs(max_age_s),
        })
    }

    #[test]
    fn repeats_within_the_window_are_rejected() {
        let mut dedup = window(10, 60);
        let t = Instant::ZERO;
        assert!(dedup.first_sighting(t, "a"));
        assert!(dedup.first_sighting(t, "b"));
        assert!(!dedup.first_sighting(t, "a"));
        assert_eq!(dedup.len(), 2);
    }

    #[test]
    fn count_bound_holds_under_heavy_traffic() {
        let mut dedup = window(100, 3600);
        for i in 0..100_000 {
            assert!(dedup.first_sighting(Instant::from_millis(i), &i.to_string()));
            assert!(dedup.len() <= 100);
        }
        assert_eq!(dedup.len(), 100, "full to the bound, not short of it");
        assert!(!dedup.first_sighting(Instant::from_millis(100_000), "99999"));
        // The oldest were forgotten to stay within the bound.
        assert!(dedup.first_sighting(Instant::from_millis(100_000), "0"));
    }

    #[test]
    fn ids_older_than_the_age_bound_are_forgotten() {
        let mut dedup = window(100, 10);
        assert!(dedup.first_sighting(Instant::ZERO, "a"));
        assert!(!dedup.first_sighting(Instant::from_millis(10_000), "a"));
        assert!(dedup.first_sighting(Instant::from_millis(10_001), "a"));
        assert_eq!(dedup.len(), 1);
    }

    #[test]
    fn a_zero_sized_window_remembers_nothing() {
        let mut dedup = window(0, 10);
        assert!(dedup.first_sighting(Instant::ZERO, "a"));
        assert!(dedup.first_sighting(Instant::ZERO, "a"));
        assert_eq!(dedup.len(), 0);
    }
}

//! Rapid-fail protection (protocol §8.4): unexpected exits counted in a sliding 60-second
//! window; more than `rapidFailsPerMinute` of them block new starts.
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync;

/// How far back unexpected exits count.
const WINDOW: Duration = Duration::from_secs(60);

/// The times of the recent unexpected exits of one generation's children.
#[derive(Debug, Default)]
pub(crate) struct RapidFails {
    crashes: Mutex<VecDeque<Instant>>,
}

impl RapidFails {
    /// Counts an unexpected exit now; returns how many are on record.
    pub(crate) fn record(&self) -> usize {
        let mut crashes = sync::lock(&self.crashes);
        crashes.push_back(Instant::now());
        crashes.len()
    }

    /// Whether more than `limit` unexpected exits happened in the last 60 seconds.
    pub(crate) fn blocked(&self, limit: u32) -> bool {
        let mut crashes = sync::lock(&self.crashes);
        let now = Instant::now();
        while crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            crashes.pop_front();
        }
        crashes.len() > limit as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_more_than_the_limit() {
        let r = RapidFails::default();
        assert!(!r.blocked(0));
        assert_eq!(r.record(), 1);
        assert!(r.blocked(0));
        assert!(!r.blocked(1));
        r.record();
        assert!(r.blocked(1));
    }
}

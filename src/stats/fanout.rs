//! How long a push takes to fan out on one reactor: from the push service accepting it to the
//! reactor having handed its last local member's write to the backend (epoll: the `writev`
//! done; io_uring: the send queued for the turn's submit), as a fixed-bucket histogram.
//!
//! # Invariants
//! - Written by its reactor only (plain load and store, like every [`ReactorCounters`]
//!   field), once per broadcast batch, never per recipient.
//! - Buckets are fixed ([`BOUNDS_MICROS`]), so a scrape never allocates per sample and two
//!   scrapes always agree on the bucket layout.
//!
//! [`ReactorCounters`]: super::ReactorCounters

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::{add, read};

/// The buckets' upper bounds in microseconds, from 100 µs to 2.5 s; one more bucket above
/// takes the rest (`+Inf`).
pub const BOUNDS_MICROS: [u64; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000,
];

const BUCKETS: usize = BOUNDS_MICROS.len() + 1;

/// One reactor's fan-out times.
#[derive(Debug, Default)]
pub struct FanoutHistogram {
    /// Per bucket (not cumulative), the last one past every bound.
    counts: [AtomicU64; BUCKETS],
    sum_micros: AtomicU64,
}

impl FanoutHistogram {
    /// Records one fan-out that took `took` (called by the owning reactor only).
    pub fn record(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_MICROS.iter().position(|&bound| micros <= bound).unwrap_or(BUCKETS - 1);
        add(&self.counts[bucket], 1);
        add(&self.sum_micros, micros);
    }

    pub fn snapshot(&self) -> FanoutSnapshot {
        FanoutSnapshot {
            counts: std::array::from_fn(|i| read(&self.counts[i])),
            sum_micros: read(&self.sum_micros),
        }
    }
}

/// What a reader sees of a [`FanoutHistogram`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanoutSnapshot {
    /// Per bucket of [`BOUNDS_MICROS`] (not cumulative), then the one past them.
    pub counts: [u64; BUCKETS],
    pub sum_micros: u64,
}

impl FanoutSnapshot {
    /// Fan-outs recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// `(upper bound in seconds, count)` per bucket, not cumulative, the last bound
    /// `f64::MAX` (`+Inf`), as prometheus-client's histogram encoder takes them.
    pub fn buckets(&self) -> [(f64, u64); BUCKETS] {
        std::array::from_fn(|i| {
            let bound = BOUNDS_MICROS.get(i).map_or(f64::MAX, |&us| us as f64 / 1e6);
            (bound, self.counts[i])
        })
    }

    /// Adds another reactor's.
    pub fn merge(&mut self, other: &FanoutSnapshot) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
        self.sum_micros += other.sum_micros;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_time_lands_in_the_first_bucket_whose_bound_holds_it() {
        let histogram = FanoutHistogram::default();
        for micros in [0, 100, 101, 2_499, 2_500, 2_500_000, 2_500_001, 3_600_000_000] {
            histogram.record(Duration::from_micros(micros));
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count(), 8);
        assert_eq!(snapshot.counts[0], 2, "0 and 100 µs");
        assert_eq!(snapshot.counts[1], 1, "101 µs");
        assert_eq!(snapshot.counts[4], 2, "2,499 and 2,500 µs");
        assert_eq!(snapshot.counts[13], 1, "2.5 s");
        assert_eq!(snapshot.counts[14], 2, "past every bound");
        let buckets = snapshot.buckets();
        assert_eq!(buckets[0], (0.0001, 2));
        assert_eq!(buckets[13], (2.5, 1));
        assert_eq!(buckets[14], (f64::MAX, 2));
        let mut merged = snapshot;
        merged.merge(&snapshot);
        assert_eq!(merged.count(), 16);
        assert_eq!(merged.sum_micros, 2 * snapshot.sum_micros);
    }
}

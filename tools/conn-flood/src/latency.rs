//! Per-recipient latency: an HdrHistogram in microseconds that workers fill, ship to the
//! coordinator as sparse `(value, count)` pairs, and the coordinator merges.
//!
//! # Invariants
//! - Recording never fails and never allocates: values are clamped to `1 µs ..= 1 h`.
//! - [`Latency::to_sparse`] then [`Latency::add_sparse`] reproduces every bucket, so percentiles
//!   of a merged histogram equal those of one histogram that saw every value.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The largest latency kept, in microseconds (one hour).
const MAX_US: u64 = 3_600_000_000;

/// A latency histogram with 3 significant digits.
#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

/// Percentiles of a latency histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest value.
    pub max_ms: f64,
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Latency {
        // The bounds are constants that hdrhistogram accepts.
        let hist = Histogram::new_with_bounds(1, MAX_US, 3)
            .unwrap_or_else(|_| Histogram::new(3).expect("3 significant digits is valid"));
        Latency { hist }
    }

    /// Records one latency given in nanoseconds.
    #[inline]
    pub fn record_ns(&mut self, ns: u64) {
        self.hist.saturating_record((ns / 1_000).clamp(1, MAX_US));
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// Empties the histogram, keeping its memory.
    pub fn clear(&mut self) {
        self.hist.reset();
    }

    /// The non-empty buckets as `(value_us, count)`.
    pub fn to_sparse(&self) -> Vec<(u64, u64)> {
        self.hist.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
    }

    /// Adds buckets produced by [`Latency::to_sparse`].
    pub fn add_sparse(&mut self, sparse: &[(u64, u64)]) {
        for &(value, count) in sparse {
            // Clamped, so always within bounds.
            let _ = self.hist.record_n(value.clamp(1, MAX_US), count);
        }
    }

    /// p50, p99, p99.9 and max in milliseconds.
    pub fn percentiles(&self) -> Percentiles {
        if self.hist.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1_000.0;
        Percentiles {
            count: self.hist.len(),
            p50_ms: ms(self.hist.value_at_quantile(0.50)),
            p99_ms: ms(self.hist.value_at_quantile(0.99)),
            p999_ms: ms(self.hist.value_at_quantile(0.999)),
            max_ms: ms(self.hist.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_in_milliseconds() {
        let mut l = Latency::new();
        for ms in 1..=1000u64 {
            l.record_ns(ms * 1_000_000);
        }
        let p = l.percentiles();
        assert_eq!(p.count, 1000);
        assert!((p.p50_ms - 500.0).abs() < 1.0, "{p:?}");
        assert!((p.p99_ms - 990.0).abs() < 1.0, "{p:?}");
        assert!((p.p999_ms - 999.0).abs() < 1.0, "{p:?}");
        assert!((p.max_ms - 1000.0).abs() < 1.0, "{p:?}");
    }

    #[test]
    fn extremes_are_clamped_not_lost() {
        let mut l = Latency::new();
        l.record_ns(0);
        l.record_ns(u64::MAX);
        assert_eq!(l.count(), 2);
        assert_eq!(Latency::new().percentiles(), Percentiles::default());
    }

    #[test]
    fn merging_sparse_halves_equals_one_histogram() {
        let (mut a, mut b, mut all) = (Latency::new(), Latency::new(), Latency::new());
        for i in 0..10_000u64 {
            let ns = (i * 7_919 % 250_000) * 1_000 + 123;
            if i % 3 == 0 { &mut a } else { &mut b }.record_ns(ns);
            all.record_ns(ns);
        }
        let mut merged = Latency::new();
        merged.add_sparse(&a.to_sparse());
        merged.add_sparse(&b.to_sparse());
        assert_eq!(merged.percentiles(), all.percentiles());
        merged.clear();
        assert_eq!(merged.count(), 0);
    }
}

//! One clock for every process of a run: `CLOCK_MONOTONIC` in nanoseconds.
//!
//! The publisher writes its send time into each message and a worker process subtracts it from
//! its receive time, so both must read the same clock. `std::time::Instant` is that clock on
//! Linux but cannot be turned into a number another process understands; this can.

use rustix::time::{ClockId, clock_gettime};

/// Nanoseconds on `CLOCK_MONOTONIC`, the same in every process of the machine.
#[inline]
pub fn now_ns() -> u64 {
    let t = clock_gettime(ClockId::Monotonic);
    // Monotonic time is never negative.
    (t.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec as u64)
}

/// `secs` seconds in nanoseconds.
#[inline]
pub fn secs_to_ns(secs: f64) -> u64 {
    (secs.max(0.0) * 1e9) as u64
}

/// Nanoseconds in milliseconds, for reports.
#[inline]
pub fn ns_to_ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_back() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a && a > 0);
    }

    #[test]
    fn conversions() {
        assert_eq!(secs_to_ns(1.5), 1_500_000_000);
        assert_eq!(secs_to_ns(-1.0), 0);
        assert_eq!(ns_to_ms(2_500_000), 2.5);
    }
}

//! Per-app push rate limits: a token bucket per app with `apps[].push_rate_per_sec`.
//!
//! A bucket holds at most one second's worth of tokens (`rate`), refills at `rate` per second,
//! and a push takes one. Time is passed in, so the arithmetic is tested without clocks.
//!
//! # Invariants
//! - Every push the push service sends takes a token, whichever edge asked for it (a management
//!   session, the HTTP API): one bucket per app, shared by all of them.
//! - A bucket's mutex is held for a few arithmetic operations, once per push (never per
//!   recipient); contention is between the few threads that push to one app at once.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ids::AppId;

#[derive(Debug)]
pub struct PushRates {
    /// Indexed by `AppId`; `None` = no limit.
    buckets: Vec<Mutex<Option<Bucket>>>,
}

#[derive(Debug)]
struct Bucket {
    rate: u32,
    /// Tokens in billionths, so that the arithmetic is exact: `rate` tokens refill per second,
    /// one per nanosecond and unit of rate.
    nanotokens: u64,
    last: Instant,
}

/// One token, in billionths.
const TOKEN: u64 = 1_000_000_000;

impl Bucket {
    /// A bucket of `rate` with one second's worth of tokens.
    fn full(rate: u32, now: Instant) -> Bucket {
        Bucket { rate, nanotokens: u64::from(rate) * TOKEN, last: now }
    }
}

/// A push the app's rate does not allow yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    /// The app's `push_rate_per_sec`.
    pub rate: u32,
    /// How long until a token is available.
    pub retry_after: Duration,
}

impl PushRates {
    /// One bucket per app with a rate, full at `now`.
    pub fn new(rates: &[Option<u32>], now: Instant) -> PushRates {
        let buckets = rates.iter().map(|&rate| Mutex::new(rate.map(|r| Bucket::full(r, now))));
        PushRates { buckets: buckets.collect() }
    }

    /// Gives `app` the rate `rate` from `now` (a reload): a new rate starts with a full bucket,
    /// an unchanged one keeps its tokens.
    pub fn set(&self, app: AppId, rate: Option<u32>, now: Instant) {
        let Some(bucket) = self.buckets.get(app.index()) else { return };
        let mut bucket = bucket.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if bucket.as_ref().map(|b| b.rate) != rate {
            *bucket = rate.map(|r| Bucket::full(r, now));
        }
    }

    /// Takes one token from `app`'s bucket at `now`, or says how long until one is there.
    pub fn take(&self, app: AppId, now: Instant) -> Result<(), Exceeded> {
        let Some(bucket) = self.buckets.get(app.index()) else {
            return Ok(());
        };
        let mut bucket = bucket.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(bucket) = bucket.as_mut() else { return Ok(()) };
        let rate = u64::from(bucket.rate);
        let capacity = rate * TOKEN;
        // After a second the bucket is full whatever came before; capping keeps this in a u64.
        let elapsed = now.saturating_duration_since(bucket.last).as_nanos().min(1_000_000_000);
        bucket.nanotokens = (bucket.nanotokens + elapsed as u64 * rate).min(capacity);
        bucket.last = now.max(bucket.last);
        if bucket.nanotokens >= TOKEN {
            bucket.nanotokens -= TOKEN;
            Ok(())
        } else {
            let retry_after = Duration::from_nanos((TOKEN - bucket.nanotokens).div_ceil(rate));
            Err(Exceeded { rate: bucket.rate, retry_after })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_one_seconds_worth_then_the_rate() {
        let t0 = Instant::now();
        let rates = PushRates::new(&[Some(2), None], t0);
        let a = AppId(0);
        assert_eq!(rates.take(a, t0), Ok(()));
        assert_eq!(rates.take(a, t0), Ok(()));
        let e = rates.take(a, t0).unwrap_err();
        assert_eq!(e.rate, 2);
        assert_eq!(e.retry_after, Duration::from_millis(500));
        assert!(rates.take(a, t0 + Duration::from_millis(400)).is_err());
        assert_eq!(rates.take(a, t0 + Duration::from_millis(500)), Ok(()));
        // A long pause refills at most one second's worth.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(rates.take(a, later), Ok(()));
        assert_eq!(rates.take(a, later), Ok(()));
        assert!(rates.take(a, later).is_err());
    }

    #[test]
    fn apps_without_a_rate_are_not_limited() {
        let t0 = Instant::now();
        let rates = PushRates::new(&[Some(1), None], t0);
        for _ in 0..1000 {
            assert_eq!(rates.take(AppId(1), t0), Ok(()));
        }
        assert_eq!(rates.take(AppId(7), t0), Ok(()), "an id past the table is not limited");
    }
}

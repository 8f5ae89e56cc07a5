//! Wrong management secrets, logged so that an operator sees a guessing attack: at most one
//! line per app every [`LOG_EVERY`], with how many came since the last one. (Each edge bounds
//! the guessing itself: a Pomelo connection is kicked after a few, an MQTT CONNECT is one
//! connection per guess under the admission limits.)
//!
//! # Invariants
//! - No lock: per app, a count and the time of the next line, both atomics; a line is written
//!   by whichever caller wins the exchange of that time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::ids::AppId;

/// The most often one app's wrong secrets are logged.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct WrongSecrets {
    t0: Instant,
    /// Per app: wrong secrets since its last line.
    since_log: Box<[AtomicU64]>,
    /// Per app: milliseconds after `t0` from which the next line may be written.
    next_log_ms: Box<[AtomicU64]>,
}

impl WrongSecrets {
    pub fn new(apps: usize, t0: Instant) -> WrongSecrets {
        let zeros = || (0..apps).map(|_| AtomicU64::new(0)).collect();
        WrongSecrets { t0, since_log: zeros(), next_log_ms: zeros() }
    }

    /// A wrong secret for `app` at `now`; returns whether this one wrote the line.
    pub fn note(&self, app: AppId, apikey: &str, now: Instant) -> bool {
        let (Some(count), Some(next)) =
            (self.since_log.get(app.index()), self.next_log_ms.get(app.index()))
        else {
            return false;
        };
        count.fetch_add(1, Ordering::Relaxed);
        let ms = now.saturating_duration_since(self.t0).as_millis() as u64;
        let due = next.load(Ordering::Relaxed);
        let again = ms + LOG_EVERY.as_millis() as u64;
        if ms < due
            || next.compare_exchange(due, again, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return false;
        }
        let wrong = count.swap(0, Ordering::Relaxed);
        tracing::warn!(apikey, wrong, "wrong management secrets (since the last such line)");
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_app_every_ten_seconds() {
        let t0 = Instant::now();
        let wrong = WrongSecrets::new(2, t0);
        assert!(wrong.note(AppId(0), "demo", t0), "the first is logged");
        assert!(!wrong.note(AppId(0), "demo", t0 + Duration::from_secs(1)));
        assert!(wrong.note(AppId(1), "other", t0), "apps apart");
        assert!(wrong.note(AppId(0), "demo", t0 + LOG_EVERY));
        assert!(!wrong.note(AppId(7), "none", t0), "no such app");
    }
}

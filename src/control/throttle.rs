//! Wrong secrets on the control port, per source address: a source that sent the limit
//! (`control.wrong_secrets_per_minute`) of wrong (or missing) secrets within [`WINDOW`] is
//! answered 429, with
//! `Retry-After`, for [`BLOCK`] on every authorized route, whatever secret it sends then, so a
//! secret cannot be guessed at the port's speed. The block is logged once when it starts.
//!
//! # Invariants
//! - The table is bounded ([`MAX_SOURCES`]): when full, sources whose window and block are over
//!   go first, then the entry that changed longest ago, so a flood of addresses costs a fixed
//!   amount of memory (and can only make the throttle forget, never block the innocent).
//! - A source that authenticates is forgotten: a deployment's own pusher with the right secret
//!   never accumulates.
//! - The clock is the caller's (`now`), so the rules are tested without sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The default limit of wrong secrets a source may send within [`WINDOW`].
pub const MAX_WRONG_SECRETS: u32 = 10;
/// The window wrong secrets are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// How long a source past the limit is refused.
pub const BLOCK: Duration = Duration::from_secs(60);
/// Sources tracked at most.
pub const MAX_SOURCES: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Record {
    /// The start of the current counting window.
    since: Instant,
    wrong: u32,
    blocked_until: Option<Instant>,
}

/// The per-source table. See the module doc.
#[derive(Debug)]
pub struct SecretThrottle {
    /// Wrong secrets that start a block; 0: never.
    limit: u32,
    sources: Mutex<HashMap<IpAddr, Record>>,
}

impl Default for SecretThrottle {
    fn default() -> Self {
        SecretThrottle::new(MAX_WRONG_SECRETS)
    }
}

impl SecretThrottle {
    /// A throttle that blocks a source at its `limit`th wrong secret in a window (0: never).
    pub fn new(limit: u32) -> SecretThrottle {
        SecretThrottle { limit, sources: Mutex::default() }
    }

    fn sources(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Record>> {
        // The table is always consistent: a panic elsewhere leaves it usable.
        self.sources.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How long `source` is still refused at `now`, if it is.
    pub fn blocked(&self, source: IpAddr, now: Instant) -> Option<Duration> {
        let until = self.sources().get(&source)?.blocked_until?;
        (until > now).then(|| until - now)
    }

    /// `source` sent a wrong secret at `now`; returns the block if this one started it.
    pub fn wrong_secret(&self, source: IpAddr, now: Instant) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        let mut sources = self.sources();
        if !sources.contains_key(&source) && sources.len() >= MAX_SOURCES {
            make_room(&mut sources, now);
        }
        let record =
            sources.entry(source).or_insert(Record { since: now, wrong: 0, blocked_until: None });
        if now.saturating_duration_since(record.since) > WINDOW {
            *record = Record { since: now, wrong: 0, blocked_until: record.blocked_until };
        }
        record.wrong += 1;
        let blocked = record.blocked_until.is_some_and(|until| until > now);
        if record.wrong >= self.limit && !blocked {
            record.blocked_until = Some(now + BLOCK);
            return Some(BLOCK);
        }
        None
    }

    /// `source` authenticated: its count starts again.
    pub fn authenticated(&self, source: IpAddr) {
        let mut sources = self.sources();
        if sources.get(&source).is_some_and(|r| r.blocked_until.is_none()) {
            sources.remove(&source);
        }
    }
}

/// Frees at least one entry: the expired ones, else the one whose window started first.
fn make_room(sources: &mut HashMap<IpAddr, Record>, now: Instant) {
    sources.retain(|_, r| {
        now.saturating_duration_since(r.since) <= WINDOW || r.blocked_until.is_some_and(|u| u > now)
    });
    if sources.len() >= MAX_SOURCES {
        let oldest = sources.iter().min_by_key(|(_, r)| r.since).map(|(&ip, _)| ip);
        if let Some(ip) = oldest {
            sources.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_source_is_blocked_at_the_limit_for_the_block_and_others_are_not() {
        let (throttle, t0) = (SecretThrottle::default(), Instant::now());
        for i in 1..MAX_WRONG_SECRETS {
            assert_eq!(throttle.wrong_secret(ip(1), t0), None, "wrong secret {i}");
            assert_eq!(throttle.blocked(ip(1), t0), None);
        }
        assert_eq!(throttle.wrong_secret(ip(1), t0), Some(BLOCK));
        assert_eq!(
            throttle.blocked(ip(1), t0 + Duration::from_secs(1)),
            Some(BLOCK - Duration::from_secs(1))
        );
        assert_eq!(throttle.wrong_secret(ip(1), t0), None, "the block is logged once");
        assert_eq!(throttle.blocked(ip(2), t0), None, "another source");
        throttle.authenticated(ip(1));
        assert!(throttle.blocked(ip(1), t0).is_some(), "a blocked source stays blocked");
        assert_eq!(throttle.blocked(ip(1), t0 + BLOCK), None, "until the block is over");
    }

    #[test]
    fn wrong_secrets_are_counted_within_the_window_and_forgotten_on_success() {
        let (throttle, t0) = (SecretThrottle::default(), Instant::now());
        for _ in 1..MAX_WRONG_SECRETS {
            throttle.wrong_secret(ip(1), t0);
        }
        let later = t0 + WINDOW + Duration::from_secs(1);
        assert_eq!(throttle.wrong_secret(ip(1), later), None, "a new window");
        for _ in 2..MAX_WRONG_SECRETS {
            throttle.wrong_secret(ip(3), t0);
        }
        throttle.authenticated(ip(3));
        assert_eq!(throttle.wrong_secret(ip(3), t0), None, "its count started again");
    }

    #[test]
    fn no_limit_blocks_nobody() {
        let (throttle, t0) = (SecretThrottle::new(0), Instant::now());
        for _ in 0..100 {
            assert_eq!(throttle.wrong_secret(ip(1), t0), None);
        }
        assert_eq!(throttle.blocked(ip(1), t0), None);
    }

    #[test]
    fn the_table_is_bounded() {
        let (throttle, t0) = (SecretThrottle::default(), Instant::now());
        for i in 0..(MAX_SOURCES as u32 + 100) {
            throttle
                .wrong_secret(IpAddr::from(i.to_be_bytes()), t0 + Duration::from_millis(i.into()));
        }
        assert!(throttle.sources().len() <= MAX_SOURCES);
    }
}

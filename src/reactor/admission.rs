//! Admission: whether a connection just accepted may stay, decided before anything is read from
//! it (`[admission]`): the open connections in all and per source address, the accept rate (a
//! token bucket with a burst, shared by the reactors), and the connections still opening.
//!
//! # Invariants
//! - Every admitted connection holds one count in `total` and, while `max_per_source` is on,
//!   one in its source's entry, named by a [`SourceSlot`] its reactor keeps beside the
//!   connection; [`Admission::release`] gives both back when it closes. A source's entry goes
//!   when its count reaches 0.
//! - The locks (the sources' table, the bucket) are held for one accept or one close, never on
//!   a read, a write or a broadcast.
//! - A refusal is decided here and counted by the reactor; nothing of the refused connection
//!   is kept.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::config::AdmissionConfig;
use crate::stats::Refused;

/// A source address's entry in the sources' table, kept with its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceSlot(u32);

impl SourceSlot {
    /// No entry: per-source counting is off, or the connection was never admitted.
    pub const NONE: SourceSlot = SourceSlot(u32::MAX);
}

#[derive(Debug)]
pub struct Admission {
    limits: AdmissionConfig,
    total: AtomicUsize,
    sources: Mutex<Sources>,
    bucket: Mutex<Bucket>,
}

/// Open connections per source address; entries live in `entries`, reused through `free`.
#[derive(Debug, Default)]
struct Sources {
    by_addr: HashMap<IpAddr, u32>,
    entries: Vec<(IpAddr, usize)>,
    free: Vec<u32>,
}

/// The accept rate's token bucket.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Admission {
    pub fn new(limits: AdmissionConfig, now: Instant) -> Admission {
        let tokens = f64::from(limits.accept_burst);
        Admission {
            limits,
            total: AtomicUsize::new(0),
            sources: Mutex::default(),
            bucket: Mutex::new(Bucket { tokens, at: now }),
        }
    }

    /// Whether a connection from `source` may stay, `opening` connections being still without
    /// a finished handshake; its slot (give it back with [`release`](Self::release)), or why not.
    pub fn admit(
        &self,
        source: Option<IpAddr>,
        opening: usize,
        now: Instant,
    ) -> Result<SourceSlot, Refused> {
        let limits = &self.limits;
        if limits.max_opening > 0 && opening >= limits.max_opening {
            return Err(Refused::Opening);
        }
        if limits.max_connections > 0
            && self.total.load(Ordering::Relaxed) >= limits.max_connections
        {
            return Err(Refused::Total);
        }
        if limits.accept_rate_per_sec > 0 && !self.take_token(now) {
            return Err(Refused::Rate);
        }
        let slot = match source.filter(|_| limits.max_per_source > 0) {
            Some(addr) => self.count_source(addr)?,
            None => SourceSlot::NONE,
        };
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(slot)
    }

    /// An admitted connection closed.
    pub fn release(&self, slot: SourceSlot) {
        self.total.fetch_sub(1, Ordering::Relaxed);
        if slot == SourceSlot::NONE {
            return;
        }
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        let Some((addr, count)) = sources.entries.get_mut(slot.0 as usize) else { return };
        *count -= 1;
        if *count == 0 {
            let addr = *addr;
            sources.by_addr.remove(&addr);
            sources.free.push(slot.0);
        }
    }

    /// Open connections admitted and not released.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    fn count_source(&self, addr: IpAddr) -> Result<SourceSlot, Refused> {
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        let Sources { by_addr, entries, free } = &mut *sources;
        if let Some(&slot) = by_addr.get(&addr) {
            let count = &mut entries[slot as usize].1;
            if *count >= self.limits.max_per_source {
                return Err(Refused::PerSource);
            }
            *count += 1;
            return Ok(SourceSlot(slot));
        }
        let slot = match free.pop() {
            Some(slot) => {
                entries[slot as usize] = (addr, 1);
                slot
            }
            None => {
                entries.push((addr, 1));
                (entries.len() - 1) as u32
            }
        };
        by_addr.insert(addr, slot);
        Ok(SourceSlot(slot))
    }

    fn take_token(&self, now: Instant) -> bool {
        let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        let burst = f64::from(self.limits.accept_burst);
        bucket.tokens =
            (bucket.tokens + elapsed * f64::from(self.limits.accept_rate_per_sec)).min(burst);
        bucket.at = bucket.at.max(now);
        if bucket.tokens < 1.0 {
            return false;
        }
        bucket.tokens -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(f: impl FnOnce(&mut AdmissionConfig)) -> AdmissionConfig {
        let mut limits = AdmissionConfig {
            max_connections: 0,
            max_per_source: 0,
            accept_rate_per_sec: 0,
            accept_burst: 1,
            max_opening: 0,
            ..AdmissionConfig::default()
        };
        f(&mut limits);
        limits
    }

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)));

    #[test]
    fn per_source_counts_come_back_on_release() {
        let t0 = Instant::now();
        let admission = Admission::new(limits(|l| l.max_per_source = 2), t0);
        let a1 = admission.admit(A, 0, t0).unwrap();
        let a2 = admission.admit(A, 0, t0).unwrap();
        assert_eq!(admission.admit(A, 0, t0), Err(Refused::PerSource));
        let b1 = admission.admit(B, 0, t0).unwrap();
        assert_eq!(admission.open(), 3);
        admission.release(a1);
        let a3 = admission.admit(A, 0, t0).unwrap();
        for slot in [a2, a3, b1] {
            admission.release(slot);
        }
        assert_eq!(admission.open(), 0);
        let sources = admission.sources.lock().unwrap();
        assert!(sources.by_addr.is_empty(), "entries go with their last connection");
    }

    #[test]
    fn total_opening_and_rate_refuse_with_their_reasons() {
        let t0 = Instant::now();
        let total = Admission::new(limits(|l| l.max_connections = 1), t0);
        let held = total.admit(A, 0, t0).unwrap();
        assert_eq!(total.admit(B, 0, t0), Err(Refused::Total));
        total.release(held);
        assert!(total.admit(B, 0, t0).is_ok());

        let opening = Admission::new(limits(|l| l.max_opening = 5), t0);
        assert!(opening.admit(A, 4, t0).is_ok());
        assert_eq!(opening.admit(A, 5, t0), Err(Refused::Opening));

        let rate = Admission::new(
            limits(|l| {
                l.accept_rate_per_sec = 10;
                l.accept_burst = 3;
            }),
            t0,
        );
        for _ in 0..3 {
            assert!(rate.admit(A, 0, t0).is_ok());
        }
        assert_eq!(rate.admit(A, 0, t0), Err(Refused::Rate));
        // 10 per second: one more after 100 ms, and never more than the burst after a pause.
        assert!(rate.admit(A, 0, t0 + Duration::from_millis(100)).is_ok());
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..5).filter(|_| rate.admit(A, 0, later).is_ok()).count(), 3);
        // A refused connection takes nothing.
        assert_eq!(rate.open(), 7);
    }
}

//! Phase bookkeeping: what one loop counts while a phase runs ([`PhaseBook`], with a [`Tally`]
//! per connection), and how the coordinator merges the loops' reports ([`merge`]).
//!
//! # Accounting
//! - A push belongs to the phase when its sequence number is at least the phase's `seq_start`;
//!   earlier ones arriving late are *stale* and not counted.
//! - A connection entered when the phase began is *stable* until it closes. Once the
//!   coordinator says how many pushes were sent ([`PhaseBook::set_target`]), a stable
//!   connection is *complete* when it holds that many; the loop has *caught up* when every stable
//!   connection is complete. Completion is counted incrementally, so checking it is O(1).
//! - *Lost* is, over connections still stable at the end, the pushes sent but not received.
//!   Pushes on one connection arrive in order; a sequence number at or below the last one seen is
//!   *out of order* and not counted as received.

use crate::latency::Latency;
use crate::report::PhaseStats;

/// Per-connection counters for the current phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Entered when the phase began and not closed since.
    pub stable: bool,
    /// Pushes of this phase received.
    pub recv: u32,
    /// The highest push received, as `seq - seq_start + 1` (0 = none).
    pub last: u32,
}

/// One loop's accounting for the current phase.
#[derive(Debug)]
pub struct PhaseBook {
    seq_start: u64,
    /// Pushes a stable connection must hold; `u32::MAX` until the coordinator says.
    target: u32,
    stable: u64,
    complete: u64,
    deliveries: u64,
    stale: u64,
    out_of_order: u64,
    first_recv_ns: Option<u64>,
    last_recv_ns: Option<u64>,
    latency: Latency,
    push_max_ns: Vec<u64>,
}

impl Default for PhaseBook {
    fn default() -> Self {
        PhaseBook {
            seq_start: 0,
            target: u32::MAX,
            stable: 0,
            complete: 0,
            deliveries: 0,
            stale: 0,
            out_of_order: 0,
            first_recv_ns: None,
            last_recv_ns: None,
            latency: Latency::new(),
            push_max_ns: Vec::new(),
        }
    }
}

impl PhaseBook {
    /// Starts a phase whose pushes are numbered from `seq_start`, keeping the largest latency of
    /// the first `track` of them. `tallies` are every connection's, with whether it is entered.
    pub fn begin<'a>(
        &mut self,
        seq_start: u64,
        track: usize,
        tallies: impl Iterator<Item = (&'a mut Tally, bool)>,
    ) {
        self.seq_start = seq_start;
        self.target = u32::MAX;
        self.stable = 0;
        self.complete = 0;
        self.deliveries = 0;
        self.stale = 0;
        self.out_of_order = 0;
        self.first_recv_ns = None;
        self.last_recv_ns = None;
        self.latency.clear();
        self.push_max_ns.clear();
        self.push_max_ns.resize(track, 0);
        for (tally, entered) in tallies {
            *tally = Tally { stable: entered, recv: 0, last: 0 };
            self.stable += u64::from(entered);
        }
    }

    /// Records push `seq`, sent at `send_ns`, received at `now_ns` by the connection of `tally`.
    #[inline]
    pub fn deliver(&mut self, tally: &mut Tally, seq: u64, send_ns: u64, now_ns: u64) {
        let Some(rel) = seq.checked_sub(self.seq_start) else {
            self.stale += 1;
            return;
        };
        let rel = u32::try_from(rel.saturating_add(1)).unwrap_or(u32::MAX);
        if rel <= tally.last {
            self.out_of_order += 1;
            return;
        }
        tally.last = rel;
        tally.recv += 1;
        if tally.stable && tally.recv == self.target {
            self.complete += 1;
        }
        self.deliveries += 1;
        let latency = now_ns.saturating_sub(send_ns);
        self.latency.record_ns(latency);
        if let Some(max) = self.push_max_ns.get_mut(rel as usize - 1) {
            *max = (*max).max(latency);
        }
        self.first_recv_ns.get_or_insert(now_ns);
        self.last_recv_ns = Some(now_ns);
    }

    /// A connection closes: it is no longer stable.
    pub fn leave(&mut self, tally: &mut Tally) {
        if tally.stable {
            tally.stable = false;
            self.stable -= 1;
            if tally.recv >= self.target {
                self.complete -= 1;
            }
        }
    }

    /// The coordinator sent every push below `seq_end`: from now on a stable connection is
    /// complete when it holds all of them.
    pub fn set_target<'a>(&mut self, seq_end: u64, tallies: impl Iterator<Item = &'a Tally>) {
        let target = seq_end.saturating_sub(self.seq_start);
        self.target = u32::try_from(target).unwrap_or(u32::MAX - 1);
        self.complete = tallies.filter(|t| t.stable && t.recv >= self.target).count() as u64;
    }

    /// Whether every stable connection holds every push sent.
    #[inline]
    pub fn caught_up(&self) -> bool {
        self.complete == self.stable
    }

    /// Deliveries so far in this phase.
    pub fn deliveries(&self) -> u64 {
        self.deliveries
    }

    /// The phase's figures; `tallies` are every connection's.
    pub fn stats<'a>(&self, tallies: impl Iterator<Item = &'a Tally>) -> PhaseStats {
        let target = if self.target == u32::MAX { 0 } else { self.target };
        let lost =
            tallies.filter(|t| t.stable).map(|t| u64::from(target.saturating_sub(t.recv))).sum();
        PhaseStats {
            deliveries: self.deliveries,
            stale: self.stale,
            out_of_order: self.out_of_order,
            lost,
            stayed_up: self.stable,
            first_recv_ns: self.first_recv_ns,
            last_recv_ns: self.last_recv_ns,
            latency: self.latency.to_sparse(),
            push_max_ns: self.push_max_ns.clone(),
            ..PhaseStats::default()
        }
    }
}

/// Adds `other` (one loop's report) into `total`.
pub fn merge(total: &mut PhaseStats, other: &PhaseStats) {
    fn min(a: Option<u64>, b: Option<u64>) -> Option<u64> {
        a.into_iter().chain(b).min()
    }
    fn max(a: Option<u64>, b: Option<u64>) -> Option<u64> {
        a.into_iter().chain(b).max()
    }
    total.deliveries += other.deliveries;
    total.stale += other.stale;
    total.out_of_order += other.out_of_order;
    total.lost += other.lost;
    total.stayed_up += other.stayed_up;
    total.first_recv_ns = min(total.first_recv_ns, other.first_recv_ns);
    total.last_recv_ns = max(total.last_recv_ns, other.last_recv_ns);
    total.latency = merge_sparse(&total.latency, &other.latency);
    if total.push_max_ns.len() < other.push_max_ns.len() {
        total.push_max_ns.resize(other.push_max_ns.len(), 0);
    }
    for (t, o) in total.push_max_ns.iter_mut().zip(&other.push_max_ns) {
        *t = (*t).max(*o);
    }
    total.entered += other.entered;
    total.failed += other.failed;
    total.dropped += other.dropped;
    total.connects += other.connects;
    total.first_connect_ns = min(total.first_connect_ns, other.first_connect_ns);
    total.last_entered_ns = max(total.last_entered_ns, other.last_entered_ns);
    total.enter_latency = merge_sparse(&total.enter_latency, &other.enter_latency);
    total.churned += other.churned;
    total.reconnects += other.reconnects;
    for (reason, count) in &other.errors {
        *total.errors.entry(reason.clone()).or_default() += count;
    }
    total.tls_handshakes += other.tls_handshakes;
    total.last_tls_ns = max(total.last_tls_ns, other.last_tls_ns);
    total.tls_latency = merge_sparse(&total.tls_latency, &other.tls_latency);
    for (what, count) in &other.tls_negotiated {
        *total.tls_negotiated.entry(what.clone()).or_default() += count;
    }
}

/// Two sparse histograms as one.
fn merge_sparse(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut all = Latency::new();
    all.add_sparse(a);
    all.add_sparse(b);
    all.to_sparse()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn book_with(conns: &mut [Tally], entered: &[bool], seq_start: u64, track: usize) -> PhaseBook {
        let mut book = PhaseBook::default();
        book.begin(seq_start, track, conns.iter_mut().zip(entered.iter().copied()));
        book
    }

    #[test]
    fn latency_and_last_recipient_per_push() {
        let mut conns = [Tally::default(); 3];
        let mut book = book_with(&mut conns, &[true; 3], 10, 2);
        // Push 10 sent at 0, received at 1, 2 and 5 ms; push 11 sent at 10 ms, received at 12.
        book.deliver(&mut conns[0], 10, 0, MS);
        book.deliver(&mut conns[1], 10, 0, 2 * MS);
        book.deliver(&mut conns[2], 10, 0, 5 * MS);
        book.deliver(&mut conns[0], 11, 10 * MS, 12 * MS);
        let stats = book.stats(conns.iter());
        assert_eq!(stats.deliveries, 4);
        assert_eq!(stats.push_max_ns, [5 * MS, 2 * MS]);
        assert_eq!((stats.first_recv_ns, stats.last_recv_ns), (Some(MS), Some(12 * MS)));
        let mut latency = Latency::new();
        latency.add_sparse(&stats.latency);
        let p = latency.percentiles();
        assert_eq!(p.count, 4);
        assert!((p.max_ms - 5.0).abs() < 0.01, "{p:?}");
    }

    #[test]
    fn stale_and_out_of_order_are_not_deliveries() {
        let mut conns = [Tally::default(); 1];
        let mut book = book_with(&mut conns, &[true], 100, 0);
        book.deliver(&mut conns[0], 99, 0, 1);
        book.deliver(&mut conns[0], 101, 0, 1);
        book.deliver(&mut conns[0], 100, 0, 1);
        book.deliver(&mut conns[0], 101, 0, 1);
        let stats = book.stats(conns.iter());
        assert_eq!((stats.stale, stats.out_of_order, stats.deliveries), (1, 2, 1));
    }

    #[test]
    fn caught_up_counts_only_stable_connections() {
        // Conn 2 was not entered when the phase began (it is reconnecting).
        let mut conns = [Tally::default(); 3];
        let mut book = book_with(&mut conns, &[true, true, false], 0, 0);
        book.deliver(&mut conns[0], 0, 0, 1);
        book.set_target(2, conns.iter());
        assert!(!book.caught_up());
        book.deliver(&mut conns[0], 1, 0, 1);
        book.deliver(&mut conns[1], 0, 0, 1);
        assert!(!book.caught_up());
        book.deliver(&mut conns[2], 1, 0, 1);
        assert!(!book.caught_up(), "an unstable connection does not count");
        book.deliver(&mut conns[1], 1, 0, 1);
        assert!(book.caught_up());
        assert_eq!(book.stats(conns.iter()).lost, 0);
        // The next await raises the bar again.
        book.set_target(3, conns.iter());
        assert!(!book.caught_up());
    }

    #[test]
    fn a_closed_connection_leaves_the_count_and_its_losses_do_not_count() {
        let mut conns = [Tally::default(); 3];
        let mut book = book_with(&mut conns, &[true; 3], 0, 0);
        for seq in 0..3 {
            book.deliver(&mut conns[0], seq, 0, 1);
        }
        book.deliver(&mut conns[1], 0, 0, 1);
        book.set_target(3, conns.iter());
        assert!(!book.caught_up());
        // Conn 1 (behind) is churned; conn 2 got nothing and stays: it is what is lost.
        book.leave(&mut conns[1]);
        book.leave(&mut conns[1]);
        let stats = book.stats(conns.iter());
        assert_eq!((stats.lost, stats.stayed_up), (3, 2));
        for seq in 0..3 {
            book.deliver(&mut conns[2], seq, 0, 1);
        }
        assert!(book.caught_up());
        // A complete connection that leaves takes its completion with it.
        book.leave(&mut conns[0]);
        assert!(book.caught_up());
        assert_eq!(book.stats(conns.iter()).lost, 0);
    }

    #[test]
    fn a_gap_is_lost() {
        let mut conns = [Tally::default(); 1];
        let mut book = book_with(&mut conns, &[true], 0, 0);
        book.deliver(&mut conns[0], 0, 0, 1);
        book.deliver(&mut conns[0], 2, 0, 1);
        book.set_target(3, conns.iter());
        assert!(!book.caught_up());
        assert_eq!(book.stats(conns.iter()).lost, 1);
    }

    #[test]
    fn without_a_target_nothing_is_lost() {
        let mut conns = [Tally::default(); 2];
        let book = book_with(&mut conns, &[true, true], 0, 0);
        assert_eq!(book.stats(conns.iter()).lost, 0);
    }

    #[test]
    fn merging_loops() {
        let a = PhaseStats {
            deliveries: 2,
            lost: 1,
            first_recv_ns: Some(5),
            last_recv_ns: Some(9),
            latency: vec![(100, 2)],
            push_max_ns: vec![3, 8],
            first_connect_ns: Some(1),
            errors: [("x".to_string(), 1)].into(),
            tls_handshakes: 2,
            last_tls_ns: Some(15),
            tls_negotiated: [("TLSv1_3 A".to_string(), 2)].into(),
            ..PhaseStats::default()
        };
        let b = PhaseStats {
            deliveries: 3,
            first_recv_ns: Some(4),
            last_recv_ns: Some(7),
            latency: vec![(100, 1), (200, 2)],
            push_max_ns: vec![6, 2, 1],
            last_entered_ns: Some(20),
            errors: [("x".to_string(), 2), ("y".to_string(), 1)].into(),
            tls_handshakes: 1,
            last_tls_ns: Some(12),
            tls_latency: vec![(50, 1)],
            tls_negotiated: [("TLSv1_3 A".to_string(), 1)].into(),
            ..PhaseStats::default()
        };
        let mut total = PhaseStats::default();
        merge(&mut total, &a);
        merge(&mut total, &b);
        assert_eq!((total.deliveries, total.lost), (5, 1));
        assert_eq!((total.first_recv_ns, total.last_recv_ns), (Some(4), Some(9)));
        assert_eq!(total.latency, vec![(100, 3), (200, 2)]);
        assert_eq!(total.push_max_ns, [6, 8, 1]);
        assert_eq!((total.first_connect_ns, total.last_entered_ns), (Some(1), Some(20)));
        assert_eq!(total.errors["x"], 3);
        assert_eq!(total.errors["y"], 1);
        assert_eq!((total.tls_handshakes, total.last_tls_ns), (3, Some(15)));
        assert_eq!(
            (total.tls_latency.clone(), total.tls_negotiated["TLSv1_3 A"]),
            (vec![(50, 1)], 3)
        );
    }
}

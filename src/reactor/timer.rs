//! A coarse timer wheel (1 s ticks) for handshake, heartbeat and linger deadlines.
//!
//! Activity never touches the wheel: a heartbeat only updates the connection's `last_seen`.
//! When an entry's slot comes due, the reactor recomputes the real deadline from the connection
//! and either acts or puts the entry back at that deadline.
//!
//! # Invariants
//! - Every live connection has one current entry, so the wheel costs 8 bytes per connection. The
//!   connection records the second its current entry is due; an earlier deadline (the ack, a
//!   kick's linger) adds a new entry and the old one is dropped when it comes due, because its
//!   second no longer matches.
//! - An entry names a slab index and a generation; an entry whose connection is gone (or whose
//!   slot was reused) is dropped when it comes due.
//! - Deadlines further away than the wheel's span are parked in the last slot of the span and
//!   re-checked when it comes round.

/// Slots in the wheel, one per second.
const SLOTS: u32 = 512;

/// A wheel entry: the connection's slab index and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerEntry {
    pub index: u32,
    pub generation: u32,
}

#[derive(Debug)]
pub struct TimerWheel {
    slots: Vec<Vec<TimerEntry>>,
    /// The next second whose slot has not been expired yet.
    next_tick: u32,
}

impl TimerWheel {
    pub fn new(now: u32) -> TimerWheel {
        TimerWheel { slots: (0..SLOTS).map(|_| Vec::new()).collect(), next_tick: now }
    }

    /// Schedules `entry` at `deadline` (seconds), or as late as the wheel reaches; returns the
    /// second it will come due.
    pub fn insert(&mut self, entry: TimerEntry, deadline: u32) -> u32 {
        let at = deadline.clamp(self.next_tick, self.next_tick + SLOTS - 1);
        self.slots[(at % SLOTS) as usize].push(entry);
        at
    }

    /// Moves every entry due at or before `now` into `due` (which the caller reuses), each with
    /// the second it was due at.
    pub fn expire(&mut self, now: u32, due: &mut Vec<(TimerEntry, u32)>) {
        while self.next_tick <= now {
            let tick = self.next_tick;
            let slot = std::mem::take(&mut self.slots[(tick % SLOTS) as usize]);
            // The slot's buffer goes with its entries: a burst of connections must not leave
            // big empty buffers behind in slots they passed through.
            due.extend(slot.into_iter().map(|entry| (entry, tick)));
            self.next_tick += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u32) -> TimerEntry {
        TimerEntry { index, generation: 0 }
    }

    #[test]
    fn entries_come_due_at_their_second() {
        let mut wheel = TimerWheel::new(100);
        assert_eq!(wheel.insert(entry(1), 102), 102);
        assert_eq!(wheel.insert(entry(2), 105), 105);
        assert_eq!(wheel.insert(entry(3), 50), 100); // already past: due at once
        let mut due = Vec::new();
        wheel.expire(100, &mut due);
        assert_eq!(due, [(entry(3), 100)]);
        due.clear();
        wheel.expire(103, &mut due);
        assert_eq!(due, [(entry(1), 102)]);
        due.clear();
        wheel.expire(110, &mut due);
        assert_eq!(due, [(entry(2), 105)]);
    }

    #[test]
    fn far_deadlines_are_parked_at_the_end_of_the_span() {
        let mut wheel = TimerWheel::new(0);
        assert_eq!(wheel.insert(entry(7), 10_000), SLOTS - 1);
        let mut due = Vec::new();
        wheel.expire(SLOTS - 2, &mut due);
        assert!(due.is_empty());
        wheel.expire(SLOTS - 1, &mut due);
        assert_eq!(due, [(entry(7), SLOTS - 1)]);
    }
}

//! The buffers a reactor's sends point into, kept alive per loop turn instead of per send.
//!
//! A broadcast hands the same few frames to thousands of connections in one turn. Cloning a
//! `Bytes` per send costs two atomic operations and a slot in the op; instead, the sends of one
//! turn share one [`PinSet`] that holds each buffer once and counts the sends that point into it.
//!
//! # Invariants
//! - A set holds every buffer that any op counted in it points into, and is dropped only when
//!   no op is counted in it any more and it is not the turn's open set.
//! - New ops are counted in the open set; [`Pins::close`] ends the turn, after which the set
//!   takes no new op (an op counted in it may still add buffers until it is queued).
//! - An op whose send outlives its turn (a partial send, a full socket) moves what it has left
//!   into a set of its own, so a stalled peer keeps only its own bytes, not its whole turn's.

use bytes::Bytes;

/// How far back [`Pins::hold`] looks for the same buffer before holding another reference.
const RECENT: usize = 8;

/// Capacity a dropped set keeps for the next turn.
const KEPT: usize = 64;

/// One turn's buffers and the number of ops still pointing into them.
#[derive(Debug, Default)]
struct PinSet {
    bufs: Vec<Bytes>,
    ops: u32,
}

#[derive(Debug, Default)]
pub struct Pins {
    /// A slab of sets; a free one has no buffer and no op.
    sets: Vec<PinSet>,
    free: Vec<u32>,
    open: Option<u32>,
}

impl Pins {
    /// Counts a new op in the turn's open set (opening one if needed); returns the set's id.
    pub fn add_op(&mut self) -> u32 {
        let id = match self.open {
            Some(id) => id,
            None => {
                let id = self.new_set();
                *self.open.insert(id)
            }
        };
        self.sets[id as usize].ops += 1;
        id
    }

    /// A set of its own for one op (one that outlived its turn), not the turn's open set.
    pub fn add_op_alone(&mut self) -> u32 {
        let id = self.new_set();
        self.sets[id as usize].ops = 1;
        id
    }

    /// An empty set: a free one, or a new one.
    fn new_set(&mut self) -> u32 {
        self.free.pop().unwrap_or_else(|| {
            self.sets.push(PinSet::default());
            (self.sets.len() - 1) as u32
        })
    }

    /// Keeps `bufs` alive in set `id`: nothing new when they are the set's last buffers (the
    /// same frames for every member of a broadcast), else one reference per buffer that is not
    /// among the set's most recent ones.
    pub fn hold(&mut self, id: u32, bufs: &[&Bytes]) {
        let set = &mut self.sets[id as usize];
        debug_assert!(set.ops > 0, "holding buffers for no op");
        let same = |a: &Bytes, b: &Bytes| a.as_ptr() == b.as_ptr() && a.len() == b.len();
        if let Some(tail) = set.bufs.len().checked_sub(bufs.len()).map(|at| &set.bufs[at..]) {
            if tail.iter().zip(bufs).all(|(held, buf)| same(held, buf)) {
                return;
            }
        }
        for &buf in bufs {
            let recent = set.bufs.len().saturating_sub(RECENT);
            if !set.bufs[recent..].iter().any(|held| same(held, buf)) {
                set.bufs.push(buf.clone());
            }
        }
    }

    /// An op counted in set `id` no longer points into it.
    pub fn release(&mut self, id: u32) {
        let set = &mut self.sets[id as usize];
        set.ops -= 1;
        if set.ops == 0 && self.open != Some(id) {
            self.drop_set(id);
        }
    }

    /// The turn is over: its set takes no new op, and goes now if no op points into it.
    pub fn close(&mut self) {
        if let Some(id) = self.open.take() {
            if self.sets[id as usize].ops == 0 {
                self.drop_set(id);
            }
        }
    }

    /// Buffers held, all sets together.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.sets.iter().map(|s| s.bufs.len()).sum()
    }

    fn drop_set(&mut self, id: u32) {
        let bufs = &mut self.sets[id as usize].bufs;
        bufs.clear();
        // A burst (thousands of unique replies in one turn) leaves no large set behind.
        bufs.shrink_to(KEPT);
        self.free.push(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broadcast_holds_each_frame_once_and_lets_go_after_the_last_send() {
        let (a, b) = (Bytes::from(vec![1; 10]), Bytes::from(vec![2; 10]));
        let mut pins = Pins::default();
        let ids: Vec<u32> = (0..100).map(|_| pins.add_op()).collect();
        for &id in &ids {
            pins.hold(id, &[&a, &b]);
        }
        assert_eq!(pins.held(), 2);
        assert!(ids.iter().all(|&id| id == ids[0]), "one set per turn");
        pins.close();
        // A new turn opens a new set, while the old one still has sends in flight.
        let next = pins.add_op();
        assert_ne!(next, ids[0]);
        let reply = Bytes::from_static(b"reply");
        pins.hold(next, &[&reply]);
        for &id in &ids {
            pins.release(id);
        }
        assert_eq!(pins.held(), 1, "the first turn's frames are gone");
        pins.release(next);
        assert_eq!(pins.held(), 1, "the open set stays until the turn ends");
        pins.close();
        assert_eq!(pins.held(), 0);
    }

    #[test]
    fn a_set_of_its_own_is_not_the_turns() {
        let mut pins = Pins::default();
        let turn = pins.add_op();
        let alone = pins.add_op_alone();
        assert_ne!(turn, alone);
        assert_eq!(pins.add_op(), turn, "the turn's set stays open");
        let rest = Bytes::from_static(b"rest");
        pins.hold(alone, &[&rest]);
        pins.release(alone);
        assert_eq!(pins.held(), 0, "gone with its op");
    }

    #[test]
    fn buffers_beyond_the_recent_ones_are_held_again_never_lost() {
        let frames: Vec<Bytes> = (0..20).map(|i| Bytes::from(vec![i; 4])).collect();
        let mut pins = Pins::default();
        let id = pins.add_op();
        for f in &frames {
            pins.hold(id, &[f]);
        }
        pins.hold(id, &[&frames[0]]); // out of the recent window: held a second time
        pins.hold(id, &[&frames[19]]); // the last one: already held
        assert_eq!(pins.held(), 21);
        let part = frames[3].slice(1..);
        pins.hold(id, &[&part]); // other bytes of a held buffer: a reference of its own
        assert_eq!(pins.held(), 22);
    }
}

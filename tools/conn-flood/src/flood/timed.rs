//! The loop's timed work, each turn up to "now": connects from the queue while the window has
//! room, heartbeats due, the polling watch, and churn.

use super::{CHURN_BURST, Flood, WATCH_EVERY_NS};
use crate::conn::{Io, Stage};

impl Flood {
    /// Starts connects from the queue (retries whose delay passed first) while the window has
    /// room.
    pub(super) fn start_connects(&mut self, now: u64) {
        while let Some(&(due, at)) = self.retries.front() {
            if due > now {
                break;
            }
            self.retries.pop_front();
            self.to_connect.push_front(at);
        }
        while self.counters.connecting < self.spec.connect_window as u64 {
            let Some(at) = self.to_connect.pop_front() else {
                break;
            };
            self.open(at, now);
        }
    }

    /// Sends the heartbeats that are due.
    pub(super) fn beat(&mut self, now: u64) {
        let Some(interval) = self.heartbeat_ns() else {
            self.heartbeats.clear();
            return;
        };
        while let Some(&(due, at, generation)) = self.heartbeats.front() {
            if due > now {
                break;
            }
            self.heartbeats.pop_front();
            let slot = &mut self.slots[at];
            if slot.generation != generation || slot.conn.stage != Stage::Entered {
                continue;
            }
            let id = Self::identity(&self.spec, &self.host, &self.ws_path, slot.index);
            self.out.clear();
            self.post_out.clear();
            let mut io = Io {
                now_ns: now,
                book: &mut self.book,
                out: &mut self.out,
                post: &mut self.post_out,
                learned: &mut self.learned,
                max_package: self.spec.max_package,
            };
            slot.conn.heartbeat(&id, &mut io);
            match slot.send(&self.out) {
                Ok(()) => {
                    self.heartbeats.push_back((now + interval, at, generation));
                    self.send_post(at);
                }
                Err(e) => self.fail(at, format!("write: {e}")),
            }
        }
    }

    /// Once a second: fails the Socket.IO polling connections whose poll or POST waited too
    /// long (`Conn::overdue`).
    pub(super) fn watch(&mut self, now: u64) {
        if now < self.next_watch_ns {
            return;
        }
        self.next_watch_ns = now + WATCH_EVERY_NS;
        for at in 0..self.slots.len() {
            if let Some(reason) = self.slots[at].conn.overdue(now, &self.learned) {
                self.fail(at, reason);
            }
        }
    }

    /// Closes and reopens entered connections at the churn rate.
    pub(super) fn churn(&mut self, now: u64) {
        let Some(mut churn) = self.churn else {
            return;
        };
        let due = (now.saturating_sub(churn.start_ns) as f64 / 1e9 * churn.per_sec) as u64;
        let mut burst = 0;
        while churn.done < due && burst < CHURN_BURST && !self.slots.is_empty() {
            churn.done += 1;
            burst += 1;
            // A few random picks find an entered connection unless nearly all are reconnecting.
            let victim = (0..16).find_map(|_| {
                let at = (self.next_random() % self.slots.len() as u64) as usize;
                (self.slots[at].conn.stage == Stage::Entered).then_some(at)
            });
            let Some(at) = victim else {
                continue;
            };
            self.close(at);
            self.counters.churned += 1;
            let slot = &mut self.slots[at];
            slot.reconnecting = true;
            slot.attempts = 0;
            self.open(at, now);
        }
        self.churn = Some(churn);
    }

    /// xorshift64*: cheap, and deterministic per loop.
    pub(super) fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

//! A connection that carries Socket.IO polling requests: plain HTTP/1.1, kept alive between
//! requests, each request served against the session it names (`polling.rs`).
//!
//! ```text
//! Opening --a polling request--> Carrier (idle) --GET, nothing pending--> Carrier (waiting)
//!    ^                              |   ^                                     |
//!    |                              |   +------- the session's output --------+
//!    +-- (a new connection)         +--> the next request, or the idle deadline: close
//! ```
//!
//! # Invariants
//! - A carrier opens at most [`MAX_SESSIONS_PER_CARRIER`] sessions (a handshake each): a
//!   connection cannot mint sessions at line rate past the admission limits, which count
//!   connections.
//! - Inline in the slot, 13 bytes packed; what it waits for is the session's slot (index and
//!   generation), which names it back in the core's [`SioConns::waiting`](super::SioConns).
//! - A carrier is never a member of anything: pushes reach the session, not the carrier.
//! - While it waits, a carrier reads no other request (HTTP answers in order; clients do not
//!   pipeline polls): input then ends it.

use super::SioConns;
use crate::ids::ConnId;
use crate::session::SessionSettings;

/// The most polling sessions one connection may open (a page reconnecting now and then).
pub const MAX_SESSIONS_PER_CARRIER: u8 = 8;

/// A polling request's connection. See the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed)]
pub struct Carrier {
    /// When its last answer went out (or its first request came).
    since: u32,
    /// The waiting session's slab index, `u32::MAX` while idle.
    waiting: u32,
    waiting_generation: u32,
    /// Sessions this connection opened.
    opened: u8,
}

impl Carrier {
    pub fn new(now: u32) -> Carrier {
        Carrier { since: now, waiting: u32::MAX, waiting_generation: 0, opened: 0 }
    }

    /// Counts a session this connection opens; false past [`MAX_SESSIONS_PER_CARRIER`].
    pub fn open_session(&mut self) -> bool {
        self.opened = self.opened.saturating_add(1);
        self.opened <= MAX_SESSIONS_PER_CARRIER
    }

    /// The session whose output this carrier's poll waits for.
    pub fn waiting(&self) -> Option<(usize, u32)> {
        let (index, generation) = (self.waiting, self.waiting_generation);
        (index != u32::MAX).then_some((index as usize, generation))
    }

    /// The carrier's poll waits for the session at (`index`, `generation`).
    pub fn wait_for(&mut self, index: usize, generation: u32, now: u32) {
        self.waiting = index as u32;
        self.waiting_generation = generation;
        self.since = now;
    }

    /// The poll was answered at `now`: idle again, for the next request.
    pub fn answered(&mut self, now: u32) {
        *self = Carrier { opened: self.opened, ..Carrier::new(now) };
    }

    /// Idle: the handshake timeout, as for any connection that says nothing. Waiting: the
    /// session answers within a heartbeat (a server ping, or the pong of a client's), so a
    /// poll that outlives a whole heartbeat and a handshake timeout is stuck.
    pub fn deadline(&self, settings: &SessionSettings) -> u32 {
        let sio = &settings.socketio;
        let mut wait = settings.handshake_timeout_secs;
        if self.waiting().is_some() {
            wait += sio.ping_interval_secs + sio.ping_timeout_secs;
        }
        self.since.saturating_add(wait)
    }

    /// The carrier goes: its waiting poll is forgotten (the session stays, for the next poll).
    pub fn leave(&mut self, me: ConnId, conns: &mut SioConns) {
        if let Some((index, _)) = self.waiting() {
            let key = index as u32;
            if conns.waiting.get(&key).is_some_and(|w| w.carrier == me) {
                conns.waiting.remove(&key);
            }
        }
        self.waiting = u32::MAX;
    }
}

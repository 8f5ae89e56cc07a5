//! Away sessions: what an MQTT client with a persistent session (3.1.1 clean session 0, 5.0
//! session expiry above 0) keeps while it is not connected, per app and clientId: its
//! subscription's QoS, the QoS 1 deliveries it had not acknowledged (with their packet ids, to be
//! sent again with DUP), and the pushes to its channel or to it since, until it comes back or
//! its session expires.
//!
//! # Invariants
//! - A parked session is not online: presence does not list it and counts do not count it; a
//!   push to its channel or to its clientId is queued for it and counted as a recipient.
//! - Queues hold [`MqttPush`] clones (the topic and payload by reference count), never copies.
//! - Bounded by [`ParkedCaps`]: at most `max_sessions` per app (and never more than the app's
//!   `max_clients`: a session that finds no room is not parked); per session, past
//!   `max_messages` or `max_bytes` (payload plus [`ENTRY_BYTES`] per queued push) the oldest
//!   queued push is dropped and counted in `dropped`; unacknowledged deliveries are never
//!   dropped. A session past its expiry is gone: every access ignores it, and the app's
//!   sessions are swept for expired ones at most once a second.
//! - One lock per app, held for a park, a take, or one pass over the app's parked sessions per
//!   push to the channel (by the pushing edge, before the broadcast is handed to the cores;
//!   never on a core's per-member broadcast loop).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::frame::MqttPush;
use crate::ids::AppId;

/// What each queued push costs beyond its payload (the queue entry and its share of the
/// topic), counted against `max_bytes`.
pub const ENTRY_BYTES: usize = std::mem::size_of::<MqttPush>() + 16;

/// How often an app's parked sessions are swept for expired ones.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How much away sessions may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParkedCaps {
    /// Sessions parked per app.
    pub max_sessions: usize,
    /// Pushes queued per session.
    pub max_messages: usize,
    /// Bytes queued per session: payloads plus [`ENTRY_BYTES`] each.
    pub max_bytes: usize,
}

impl Default for ParkedCaps {
    fn default() -> ParkedCaps {
        ParkedCaps { max_sessions: 100_000, max_messages: 1000, max_bytes: 1 << 20 }
    }
}

/// A session while its client is away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedSession {
    /// The channel subscription was at QoS 1.
    pub qos1: bool,
    /// The QoS 1 deliveries sent and not acknowledged, oldest first, with their packet ids.
    pub unacked: Vec<(u16, MqttPush)>,
    /// Pushes since the client left, oldest first.
    pub queued: VecDeque<MqttPush>,
    /// Payload bytes in `queued`.
    pub queued_bytes: usize,
    /// Pushes dropped from `queued` by the caps.
    pub dropped: u64,
    /// When the session is gone if its client has not come back.
    pub expires: Instant,
}

impl ParkedSession {
    /// A session parked at `now` for `expiry`.
    pub fn new(qos1: bool, unacked: Vec<(u16, MqttPush)>, now: Instant, expiry: Duration) -> Self {
        ParkedSession {
            qos1,
            unacked,
            queued: VecDeque::new(),
            queued_bytes: 0,
            dropped: 0,
            expires: now + expiry,
        }
    }

    /// Queues `push` behind the others (the caps apply when the session is parked).
    pub fn push_back(&mut self, push: MqttPush) {
        self.queued_bytes += push.payload.len() + ENTRY_BYTES;
        self.queued.push_back(push);
    }

    /// Queues `push`, dropping the oldest queued ones past `caps`.
    fn offer(&mut self, push: &MqttPush, caps: ParkedCaps) {
        self.push_back(push.clone());
        self.trim(caps);
    }

    /// Drops the oldest queued pushes past `caps`.
    fn trim(&mut self, caps: ParkedCaps) {
        while self.queued.len() > caps.max_messages || self.queued_bytes > caps.max_bytes {
            let Some(oldest) = self.queued.pop_front() else { break };
            self.queued_bytes -= oldest.payload.len() + ENTRY_BYTES;
            self.dropped += 1;
        }
    }
}

/// One app's away sessions, by clientId, and when they are next swept.
#[derive(Debug, Default)]
struct AppSessions {
    by_id: HashMap<Box<str>, ParkedSession>,
    next_sweep: Option<Instant>,
}

/// Every app's away sessions.
#[derive(Debug)]
pub struct Parked {
    per_app: Box<[Mutex<AppSessions>]>,
    caps: ParkedCaps,
}

impl Parked {
    pub fn new(apps: usize, caps: ParkedCaps) -> Parked {
        Parked { per_app: (0..apps).map(|_| Mutex::default()).collect(), caps }
    }

    /// `app`'s parked sessions, swept for expired ones if a second has passed.
    fn app(&self, app: AppId, now: Instant) -> Option<MutexGuard<'_, AppSessions>> {
        let mut sessions =
            self.per_app.get(app.index())?.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !sessions.by_id.is_empty() && sessions.next_sweep.is_none_or(|at| now >= at) {
            sessions.by_id.retain(|_, s| s.expires > now);
            sessions.next_sweep = Some(now + SWEEP_EVERY);
        }
        Some(sessions)
    }

    /// Keeps `session` for `client_id` of `app` (replacing an older one); `false` when the app
    /// has no room for another (`max_sessions`, or `max_clients` when lower).
    pub fn park(
        &self,
        app: AppId,
        client_id: &str,
        session: ParkedSession,
        max_clients: Option<usize>,
        now: Instant,
    ) -> bool {
        let Some(mut sessions) = self.app(app, now) else { return false };
        let room = self.caps.max_sessions.min(max_clients.unwrap_or(usize::MAX));
        let replacing = sessions.by_id.contains_key(client_id);
        if !replacing && sessions.by_id.len() >= room {
            return false;
        }
        let mut session = session;
        session.trim(self.caps);
        sessions.by_id.insert(client_id.into(), session);
        true
    }

    /// Takes `client_id`'s parked session back, if it has one that has not expired.
    pub fn take(&self, app: AppId, client_id: &str, now: Instant) -> Option<ParkedSession> {
        self.app(app, now)?.by_id.remove(client_id).filter(|s| s.expires > now)
    }

    /// Queues `push` for every parked session of `app`; returns how many.
    pub fn offer_all(&self, app: AppId, push: &MqttPush, now: Instant) -> usize {
        let Some(mut sessions) = self.app(app, now) else { return 0 };
        let live = sessions.by_id.values_mut().filter(|s| s.expires > now);
        live.map(|s| s.offer(push, self.caps)).count()
    }

    /// Queues `push` for `client_id`'s parked session; whether it has one.
    pub fn offer_to(&self, app: AppId, client_id: &str, push: &MqttPush, now: Instant) -> bool {
        let Some(mut sessions) = self.app(app, now) else { return false };
        match sessions.by_id.get_mut(client_id).filter(|s| s.expires > now) {
            Some(session) => {
                session.offer(push, self.caps);
                true
            }
            None => false,
        }
    }

    /// Whether `client_id` of `app` has a parked session at `now`.
    pub fn holds(&self, app: AppId, client_id: &str, now: Instant) -> bool {
        self.app(app, now).is_some_and(|s| s.by_id.get(client_id).is_some_and(|s| s.expires > now))
    }

    /// Drops every parked session of `app` (the app was removed).
    pub fn clear(&self, app: AppId) {
        if let Some(sessions) = self.per_app.get(app.index()) {
            let mut sessions = sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            sessions.by_id = Default::default();
        }
    }

    /// How many sessions of `app` are parked at `now`.
    pub fn count(&self, app: AppId, now: Instant) -> usize {
        self.app(app, now).map_or(0, |s| s.by_id.values().filter(|s| s.expires > now).count())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn push(payload: &'static [u8]) -> MqttPush {
        MqttPush { topic: "push/demo".into(), payload: Bytes::from_static(payload) }
    }

    #[test]
    fn parked_sessions_queue_pushes_until_taken_back() {
        let t0 = Instant::now();
        let parked = Parked::new(2, ParkedCaps::default());
        let hour = Duration::from_secs(3600);
        parked.park(
            AppId(0),
            "phone",
            ParkedSession::new(true, vec![(7, push(b"0"))], t0, hour),
            None,
            t0,
        );
        assert_eq!(parked.offer_all(AppId(0), &push(b"1"), t0), 1);
        assert!(parked.offer_to(AppId(0), "phone", &push(b"2"), t0));
        assert!(!parked.offer_to(AppId(0), "tablet", &push(b"2"), t0));
        assert_eq!(parked.offer_all(AppId(1), &push(b"1"), t0), 0, "apps are apart");
        let back = parked.take(AppId(0), "phone", t0).unwrap();
        assert_eq!(back.unacked, vec![(7, push(b"0"))]);
        assert_eq!(back.queued, [push(b"1"), push(b"2")]);
        // The queue shares the payload.
        let p = push(b"x");
        parked.park(AppId(0), "p", ParkedSession::new(false, Vec::new(), t0, hour), None, t0);
        parked.offer_all(AppId(0), &p, t0);
        let back = parked.take(AppId(0), "p", t0).unwrap();
        assert_eq!(back.queued[0].payload.as_ptr(), p.payload.as_ptr());
        assert_eq!(parked.take(AppId(0), "phone", t0), None, "taken once");
    }

    #[test]
    fn an_app_parks_at_most_max_sessions_and_never_past_max_clients() {
        let t0 = Instant::now();
        let caps = ParkedCaps { max_sessions: 2, ..ParkedCaps::default() };
        let parked = Parked::new(1, caps);
        let s = || ParkedSession::new(true, Vec::new(), t0, Duration::from_secs(60));
        assert!(parked.park(AppId(0), "a", s(), None, t0));
        assert!(parked.park(AppId(0), "b", s(), None, t0));
        assert!(!parked.park(AppId(0), "c", s(), None, t0), "full");
        assert!(parked.park(AppId(0), "a", s(), None, t0), "replacing is no new one");
        assert!(!parked.park(AppId(0), "a2", s(), Some(1), t0));
        assert_eq!(parked.count(AppId(0), t0), 2);
    }

    #[test]
    fn caps_drop_the_oldest_and_expiry_drops_the_session() {
        let t0 = Instant::now();
        let caps =
            ParkedCaps { max_messages: 2, max_bytes: 2 * ENTRY_BYTES + 5, ..ParkedCaps::default() };
        let parked = Parked::new(1, caps);
        let minute = Duration::from_secs(60);
        parked.park(AppId(0), "a", ParkedSession::new(true, Vec::new(), t0, minute), None, t0);
        for p in [&b"1"[..], b"2", b"3"] {
            parked.offer_all(
                AppId(0),
                &MqttPush { topic: "t".into(), payload: Bytes::copy_from_slice(p) },
                t0,
            );
        }
        let back = parked.take(AppId(0), "a", t0).unwrap();
        assert_eq!((back.queued.len(), back.dropped), (2, 1));
        assert_eq!(&back.queued[0].payload[..], b"2");
        // Bytes: a 4-byte push and a 3-byte one do not fit 5 (beside their entries).
        parked.park(AppId(0), "b", ParkedSession::new(true, Vec::new(), t0, minute), None, t0);
        parked.offer_all(AppId(0), &push(b"abcd"), t0);
        parked.offer_all(AppId(0), &push(b"efg"), t0);
        let back = parked.take(AppId(0), "b", t0).unwrap();
        assert_eq!((back.queued.len(), back.queued_bytes, back.dropped), (1, 3 + ENTRY_BYTES, 1));
        // Past its expiry a session is gone.
        assert!(parked.take(AppId(0), "c", t0).is_none());
        parked.park(AppId(0), "c", ParkedSession::new(true, Vec::new(), t0, minute), None, t0);
        assert_eq!(parked.count(AppId(0), t0 + minute / 2), 1);
        assert_eq!(parked.offer_all(AppId(0), &push(b"1"), t0 + minute), 0);
        assert_eq!(parked.take(AppId(0), "c", t0 + minute), None);
    }
}

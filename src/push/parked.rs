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
//! - Each queue is bounded by [`ParkedCaps`]: past `max_messages` or `max_bytes` the oldest
//!   queued push is dropped (and counted in the session's `dropped`); unacknowledged deliveries
//!   are never dropped. A session past its expiry is gone, checked whenever its app's parked
//!   sessions are touched.
//! - One lock per app, held for a park, a take, or one pass over the app's parked sessions per
//!   push to the channel; never on a reactor's broadcast path.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::frame::MqttPush;
use crate::ids::AppId;

/// How much an away session may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParkedCaps {
    /// Pushes queued per session.
    pub max_messages: usize,
    /// Payload bytes queued per session.
    pub max_bytes: usize,
}

impl Default for ParkedCaps {
    fn default() -> ParkedCaps {
        ParkedCaps { max_messages: 1000, max_bytes: 1 << 20 }
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

    fn offer(&mut self, push: &MqttPush, caps: ParkedCaps) {
        self.queued.push_back(push.clone());
        self.queued_bytes += push.payload.len();
        while self.queued.len() > caps.max_messages || self.queued_bytes > caps.max_bytes {
            let Some(oldest) = self.queued.pop_front() else { break };
            self.queued_bytes -= oldest.payload.len();
            self.dropped += 1;
        }
    }
}

/// One app's away sessions, by clientId.
type AppSessions = HashMap<Box<str>, ParkedSession>;

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

    /// `app`'s parked sessions, those expired at `now` removed.
    fn app(&self, app: AppId, now: Instant) -> Option<MutexGuard<'_, AppSessions>> {
        let mut sessions =
            self.per_app.get(app.index())?.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !sessions.is_empty() {
            sessions.retain(|_, s| s.expires > now);
        }
        Some(sessions)
    }

    /// Keeps `session` for `client_id` of `app` (replacing an older one).
    pub fn park(&self, app: AppId, client_id: &str, session: ParkedSession, now: Instant) {
        if let Some(mut sessions) = self.app(app, now) {
            sessions.insert(client_id.into(), session);
        }
    }

    /// Takes `client_id`'s parked session back, if it has one that has not expired.
    pub fn take(&self, app: AppId, client_id: &str, now: Instant) -> Option<ParkedSession> {
        self.app(app, now)?.remove(client_id)
    }

    /// Queues `push` for every parked session of `app`; returns how many.
    pub fn offer_all(&self, app: AppId, push: &MqttPush, now: Instant) -> usize {
        let Some(mut sessions) = self.app(app, now) else { return 0 };
        sessions.values_mut().for_each(|s| s.offer(push, self.caps));
        sessions.len()
    }

    /// Queues `push` for `client_id`'s parked session; whether it has one.
    pub fn offer_to(&self, app: AppId, client_id: &str, push: &MqttPush, now: Instant) -> bool {
        let Some(mut sessions) = self.app(app, now) else { return false };
        match sessions.get_mut(client_id) {
            Some(session) => {
                session.offer(push, self.caps);
                true
            }
            None => false,
        }
    }

    /// Whether `client_id` of `app` has a parked session at `now`.
    pub fn holds(&self, app: AppId, client_id: &str, now: Instant) -> bool {
        self.app(app, now).is_some_and(|s| s.contains_key(client_id))
    }

    /// How many sessions of `app` are parked at `now`.
    pub fn count(&self, app: AppId, now: Instant) -> usize {
        self.app(app, now).map_or(0, |s| s.len())
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
        parked.park(AppId(0), "p", ParkedSession::new(false, Vec::new(), t0, hour), t0);
        parked.offer_all(AppId(0), &p, t0);
        let back = parked.take(AppId(0), "p", t0).unwrap();
        assert_eq!(back.queued[0].payload.as_ptr(), p.payload.as_ptr());
        assert_eq!(parked.take(AppId(0), "phone", t0), None, "taken once");
    }

    #[test]
    fn caps_drop_the_oldest_and_expiry_drops_the_session() {
        let t0 = Instant::now();
        let parked = Parked::new(1, ParkedCaps { max_messages: 2, max_bytes: 5 });
        let minute = Duration::from_secs(60);
        parked.park(AppId(0), "a", ParkedSession::new(true, Vec::new(), t0, minute), t0);
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
        // Bytes: a 4-byte push and a 3-byte one do not fit 5.
        parked.park(AppId(0), "b", ParkedSession::new(true, Vec::new(), t0, minute), t0);
        parked.offer_all(AppId(0), &push(b"abcd"), t0);
        parked.offer_all(AppId(0), &push(b"efg"), t0);
        let back = parked.take(AppId(0), "b", t0).unwrap();
        assert_eq!((back.queued.len(), back.queued_bytes, back.dropped), (1, 3, 1));
        // Past its expiry a session is gone.
        parked.park(AppId(0), "c", ParkedSession::new(true, Vec::new(), t0, minute), t0);
        assert_eq!(parked.count(AppId(0), t0 + minute / 2), 1);
        assert_eq!(parked.offer_all(AppId(0), &push(b"1"), t0 + minute), 0);
        assert_eq!(parked.take(AppId(0), "c", t0 + minute), None);
    }
}

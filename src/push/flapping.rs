//! Flapping: a clientId that enters its channel again and again (a client in a reconnect loop,
//! or one made to look like it) is refused for a while, as EMQX's flapping detection does: past
//! `max_joins` joins within one `window`, its joins are refused (429) until `ban` has passed.
//! Counted by clientId, not by address, so that phones behind one carrier NAT are not held
//! against each other.
//!
//! # Invariants
//! - Per app, a table of the clientIds that joined in the current window (and the banned
//!   ones), cleared when the window turns over; at most `MAX_TRACKED` entries (past it, new
//!   clientIds are not tracked, never refused).
//! - One lock per app, held for one join.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ids::AppId;

/// The most clientIds one app's table tracks at once.
const MAX_TRACKED: usize = 100_000;

/// When a clientId is flapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlapPolicy {
    /// Joins within `window` past which a clientId is banned; 0 = off.
    pub max_joins: u32,
    pub window: Duration,
    pub ban: Duration,
}

impl FlapPolicy {
    pub const OFF: FlapPolicy =
        FlapPolicy { max_joins: 0, window: Duration::from_secs(60), ban: Duration::from_secs(60) };
}

#[derive(Debug, Default)]
struct AppJoins {
    window_start: Option<Instant>,
    joins: HashMap<Box<str>, u32>,
    banned: HashMap<Box<str>, Instant>,
}

#[derive(Debug)]
pub struct Flapping {
    policy: FlapPolicy,
    per_app: Box<[Mutex<AppJoins>]>,
}

impl Flapping {
    pub fn new(apps: usize, policy: FlapPolicy) -> Flapping {
        let per_app = match policy.max_joins {
            0 => Box::default(),
            _ => (0..apps).map(|_| Mutex::default()).collect(),
        };
        Flapping { policy, per_app }
    }

    /// `client_id` joins `app` at `now`: `Err(until)` while it is banned.
    pub fn join(&self, app: AppId, client_id: &str, now: Instant) -> Result<(), Instant> {
        let Some(table) = self.per_app.get(app.index()) else { return Ok(()) };
        let mut table = table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&until) = table.banned.get(client_id) {
            if now < until {
                return Err(until);
            }
            table.banned.remove(client_id);
        }
        if table.window_start.is_none_or(|start| now >= start + self.policy.window) {
            table.window_start = Some(now);
            table.joins.clear();
            table.banned.retain(|_, until| *until > now);
        }
        let tracked = table.joins.len() < MAX_TRACKED || table.joins.contains_key(client_id);
        if !tracked {
            return Ok(());
        }
        let joins = table.joins.entry(client_id.into()).or_insert(0);
        *joins += 1;
        if *joins > self.policy.max_joins {
            let until = now + self.policy.ban;
            table.joins.remove(client_id);
            table.banned.insert(client_id.into(), until);
            tracing::warn!(
                ?app,
                client_id,
                "a clientId is flapping: its joins are refused for a while"
            );
            return Err(until);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_max_joins_in_a_window_a_client_id_is_banned_for_a_while() {
        let t0 = Instant::now();
        let policy = FlapPolicy {
            max_joins: 3,
            window: Duration::from_secs(60),
            ban: Duration::from_secs(30),
        };
        let flapping = Flapping::new(1, policy);
        for _ in 0..3 {
            assert!(flapping.join(AppId(0), "loop", t0).is_ok());
        }
        let until = flapping.join(AppId(0), "loop", t0).unwrap_err();
        assert_eq!(until, t0 + Duration::from_secs(30));
        assert!(flapping.join(AppId(0), "calm", t0).is_ok(), "others are not held against it");
        assert!(flapping.join(AppId(0), "loop", t0 + Duration::from_secs(29)).is_err());
        assert!(flapping.join(AppId(0), "loop", t0 + Duration::from_secs(31)).is_ok());
        // Off: never refused.
        let off = Flapping::new(1, FlapPolicy::OFF);
        assert!((0..100).all(|_| off.join(AppId(0), "loop", t0).is_ok()));
    }
}

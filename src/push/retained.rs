//! Each app's retained message: the last `push/{apikey}` PUBLISH a management session sent with
//! RETAIN, which an MQTT client receives first when it subscribes (MQTT 3.1.1 §3.3.1.3, 5.0
//! §3.3.1.3).
//!
//! # Invariants
//! - At most one per app (only the channel topic is retained); an empty retained payload clears
//!   it.
//! - The payload is shared (`Bytes`), never copied per subscriber; the lock is held only to swap
//!   or clone it.

use std::sync::Mutex;

use bytes::Bytes;

use crate::ids::AppId;

#[derive(Debug)]
pub struct Retained {
    per_app: Box<[Mutex<Option<Bytes>>]>,
}

impl Retained {
    pub fn new(apps: usize) -> Retained {
        Retained { per_app: (0..apps).map(|_| Mutex::new(None)).collect() }
    }

    /// Keeps `payload` as `app`'s retained message; an empty one clears it.
    pub fn set(&self, app: AppId, payload: Bytes) {
        if let Some(slot) = self.per_app.get(app.index()) {
            let mut slot = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            *slot = (!payload.is_empty()).then_some(payload);
        }
    }

    /// `app`'s retained message, if it has one.
    pub fn get(&self, app: AppId) -> Option<Bytes> {
        let slot = self.per_app.get(app.index())?;
        slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_one_wins_and_empty_clears() {
        let retained = Retained::new(2);
        assert_eq!(retained.get(AppId(0)), None);
        retained.set(AppId(0), Bytes::from_static(b"1"));
        retained.set(AppId(0), Bytes::from_static(b"2"));
        assert_eq!(retained.get(AppId(0)).as_deref(), Some(&b"2"[..]));
        assert_eq!(retained.get(AppId(1)), None);
        retained.set(AppId(0), Bytes::new());
        assert_eq!(retained.get(AppId(0)), None);
        // An app that does not exist holds nothing.
        retained.set(AppId(9), Bytes::from_static(b"x"));
        assert_eq!(retained.get(AppId(9)), None);
    }
}

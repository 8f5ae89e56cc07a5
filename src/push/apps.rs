//! The apps a gateway serves, from the configuration: apikey, management secret, limits; a
//! reload (SIGHUP) adds, changes and removes them without a restart.
//!
//! # Invariants
//! - **An [`AppId`] is a slot** of a table fixed at start: one per configured app, and
//!   [`SPARE_SLOTS`] more for the apps reloads add. A slot names one apikey for the server's
//!   life: a removed app keeps its slot (adding the apikey again takes it back), so an `AppId`
//!   a session or a queued command holds never comes to mean another app.
//! - **Only configured apps are found**: [`Apps::lookup`] misses a removed app's apikey, while
//!   [`Apps::get`] still answers with its last settings for the sessions being kicked.
//! - **A reload swaps an app's settings whole** (one `Arc`): a reader sees the old or the new,
//!   never a mix; it is planned before anything changes, so one that cannot apply (no spare
//!   slot left) changes nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use crate::config::AppConfig;
use crate::ids::AppId;

/// Slots kept for apps that reloads add.
pub const SPARE_SLOTS: usize = 64;

/// One app: its channel's name and who may manage it.
pub struct App {
    pub apikey: Box<str>,
    secret: Box<str>,
    pub max_clients: Option<usize>,
    pub push_rate_per_sec: Option<u32>,
    /// `client_key`: clients must show a token it signed for their clientId.
    pub client_key: Option<super::identity::ClientKey>,
    /// The key of the configuration it came from, to tell whether a reload changed it.
    config: AppConfig,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("apikey", &self.apikey)
            .field("secret", &"<redacted>")
            .field("max_clients", &self.max_clients)
            .finish()
    }
}

impl App {
    fn from_config(c: &AppConfig) -> App {
        App {
            apikey: c.apikey.as_str().into(),
            secret: c.secret.as_str().into(),
            max_clients: c.max_clients,
            push_rate_per_sec: c.push_rate_per_sec,
            client_key: c
                .client_key
                .as_deref()
                .map(|k| super::identity::ClientKey::new(k.as_bytes())),
            config: c.clone(),
        }
    }

    /// Whether `other` names the same protos files as this app was configured with.
    pub fn protos_match(&self, other: &AppConfig) -> bool {
        self.config.server_protos == other.server_protos
            && self.config.client_protos == other.client_protos
    }

    /// Compares in time independent of where the first difference is.
    pub fn secret_matches(&self, candidate: &str) -> bool {
        same_secret(&self.secret, candidate)
    }
}

/// Whether `candidate` is `secret`, compared in time independent of where the first difference
/// is (only the length of `secret` shows).
pub fn same_secret(secret: &str, candidate: &str) -> bool {
    let (a, b) = (secret.as_bytes(), candidate.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, &x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

#[derive(Debug, Default)]
struct Slot {
    /// Set when the slot is first taken, never again.
    apikey: OnceLock<Box<str>>,
    /// The app's settings, the last ones once it is removed.
    app: RwLock<Option<Arc<App>>>,
    /// Configured now.
    live: AtomicBool,
}

#[derive(Debug)]
pub struct Apps {
    slots: Box<[Slot]>,
    by_apikey: RwLock<HashMap<Box<str>, AppId>>,
}

/// What a reload did to the apps.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AppsChange {
    /// New apikeys (or removed ones back again).
    pub added: Vec<AppId>,
    /// Apps whose settings changed (secret, limits, client key).
    pub changed: Vec<AppId>,
    /// Apps no longer configured: their sessions are to be kicked.
    pub removed: Vec<AppId>,
}

impl Apps {
    /// Builds the table for `configs`, with [`SPARE_SLOTS`] more; fails if there are more apps
    /// than an [`AppId`] can name, or an apikey twice.
    pub fn from_config(configs: &[AppConfig]) -> Result<Apps, String> {
        if configs.len() > usize::from(u16::MAX) {
            return Err(format!("at most {} apps are supported", u16::MAX));
        }
        let slots = (configs.len() + SPARE_SLOTS).min(usize::from(u16::MAX));
        let apps = Apps {
            slots: (0..slots).map(|_| Slot::default()).collect(),
            by_apikey: RwLock::default(),
        };
        apps.reload(configs)?;
        Ok(apps)
    }

    /// Makes `configs` the configured apps: new apikeys take a free slot, known ones get their
    /// new settings, the others are removed. Nothing changes if it fails (an apikey twice, or
    /// more new apikeys than free slots).
    pub fn reload(&self, configs: &[AppConfig]) -> Result<AppsChange, String> {
        let mut by_apikey = self.by_apikey.write().unwrap_or_else(PoisonError::into_inner);
        // The plan: each config's slot, known or new.
        let mut free = self.slots.iter().enumerate().filter(|(_, s)| s.apikey.get().is_none());
        let mut plan = Vec::with_capacity(configs.len());
        let mut seen = HashMap::with_capacity(configs.len());
        for c in configs {
            if seen.insert(c.apikey.as_str(), ()).is_some() {
                return Err(format!("duplicate apikey {:?}", c.apikey));
            }
            let slot = match by_apikey.get(c.apikey.as_str()) {
                Some(&id) => id,
                None => match free.next() {
                    Some((i, _)) => AppId(i as u16),
                    None => {
                        return Err(format!(
                            "no room for another app without a restart ({} apps at most)",
                            self.slots.len()
                        ));
                    }
                },
            };
            plan.push((slot, c));
        }
        let mut change = AppsChange::default();
        let configured: HashMap<AppId, ()> = plan.iter().map(|&(id, _)| (id, ())).collect();
        for (i, slot) in self.slots.iter().enumerate() {
            let id = AppId(i as u16);
            if slot.live.load(Ordering::Relaxed) && !configured.contains_key(&id) {
                slot.live.store(false, Ordering::Relaxed);
                change.removed.push(id);
            }
        }
        for (id, c) in plan {
            let slot = &self.slots[id.index()];
            if slot.apikey.set(c.apikey.as_str().into()).is_ok() {
                by_apikey.insert(c.apikey.as_str().into(), id);
            }
            let mut app = slot.app.write().unwrap_or_else(PoisonError::into_inner);
            let was_live = slot.live.swap(true, Ordering::Relaxed);
            match app.as_deref() {
                Some(old) if was_live && old.config == *c => continue,
                Some(_) if was_live => change.changed.push(id),
                _ => change.added.push(id),
            }
            *app = Some(Arc::new(App::from_config(c)));
        }
        Ok(change)
    }

    /// The configured app named `apikey`.
    pub fn lookup(&self, apikey: &str) -> Option<AppId> {
        let by_apikey = self.by_apikey.read().unwrap_or_else(PoisonError::into_inner);
        by_apikey.get(apikey).copied().filter(|&id| self.is_live(id))
    }

    /// The last settings of the app `apikey` names, configured now or removed.
    pub fn known(&self, apikey: &str) -> Option<Arc<App>> {
        let id = self.by_apikey.read().unwrap_or_else(PoisonError::into_inner).get(apikey).copied();
        id.and_then(|id| self.get(id))
    }

    /// The settings of `id` (the last ones of a removed app); `None` for a slot no app took.
    pub fn get(&self, id: AppId) -> Option<Arc<App>> {
        let slot = self.slots.get(id.index())?;
        slot.app.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The apikey of slot `id` ("" for a slot no app took).
    pub fn apikey(&self, id: AppId) -> &str {
        self.slots.get(id.index()).and_then(|s| s.apikey.get()).map_or("", |k| k)
    }

    /// Whether `id` is configured now.
    pub fn is_live(&self, id: AppId) -> bool {
        self.slots.get(id.index()).is_some_and(|s| s.live.load(Ordering::Relaxed))
    }

    /// Slots, configured or not: every per-app table has this many entries.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// The configured apps, in slot order (the configuration's, then apps added later).
    pub fn live(&self) -> Vec<AppId> {
        (0..self.slots.len()).map(|i| AppId(i as u16)).filter(|&id| self.is_live(id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(apikey: &str, secret: &str) -> AppConfig {
        AppConfig::new(apikey, secret)
    }

    #[test]
    fn lookup_and_secrets() {
        let apps = Apps::from_config(&[app("a", "secret-a1"), app("b", "secret-b1")]).unwrap();
        let b = apps.lookup("b").unwrap();
        let settings = apps.get(b).unwrap();
        assert_eq!((&*settings.apikey, apps.apikey(b)), ("b", "b"));
        assert!(settings.secret_matches("secret-b1"));
        assert!(!settings.secret_matches("secret-b"));
        assert!(!settings.secret_matches("secret-b12"));
        assert!(!settings.secret_matches(""));
        assert!(apps.lookup("c").is_none());
        assert!(!format!("{settings:?}").contains("secret-b1"));
        assert_eq!(apps.slots(), 2 + SPARE_SLOTS);
        assert_eq!(apps.live(), vec![AppId(0), b]);
    }

    #[test]
    fn duplicate_apikeys_are_refused() {
        assert!(Apps::from_config(&[app("a", "secret-a1"), app("a", "secret-a2")]).is_err());
    }

    #[test]
    fn a_reload_adds_changes_and_removes_and_a_slot_keeps_its_apikey() {
        let apps = Apps::from_config(&[app("a", "secret-a1"), app("b", "secret-b1")]).unwrap();
        let (a, b) = (apps.lookup("a").unwrap(), apps.lookup("b").unwrap());
        let change = apps.reload(&[app("a", "secret-a2"), app("c", "secret-c1")]).unwrap();
        let c = apps.lookup("c").unwrap();
        assert_eq!(change, AppsChange { added: vec![c], changed: vec![a], removed: vec![b] });
        assert!(apps.get(a).unwrap().secret_matches("secret-a2"), "the new secret");
        assert!(apps.lookup("b").is_none(), "a removed app is not found");
        assert!(apps.get(b).unwrap().secret_matches("secret-b1"), "but its last settings stay");
        assert_eq!(apps.live(), vec![a, c]);
        // b comes back in its own slot; an unchanged app is not reported.
        let change =
            apps.reload(&[app("a", "secret-a2"), app("b", "secret-b1"), app("c", "secret-c1")]);
        assert_eq!(change.unwrap(), AppsChange { added: vec![b], ..AppsChange::default() });
        assert_eq!(apps.lookup("b"), Some(b));
    }

    #[test]
    fn a_reload_that_cannot_apply_changes_nothing() {
        let apps = Apps::from_config(&[app("a", "secret-a1")]).unwrap();
        let many: Vec<AppConfig> =
            (0..=SPARE_SLOTS + 1).map(|i| app(&format!("n{i}"), "secret-n1")).collect();
        let e = apps.reload(&many).unwrap_err();
        assert!(e.contains("no room for another app without a restart"), "{e}");
        assert!(apps.reload(&[app("x", "secret-x1"), app("x", "secret-x2")]).is_err());
        assert_eq!(apps.live(), vec![AppId(0)], "still only a");
        assert!(apps.get(AppId(0)).unwrap().secret_matches("secret-a1"));
        assert!(apps.lookup("n0").is_none() && apps.lookup("x").is_none());
    }
}

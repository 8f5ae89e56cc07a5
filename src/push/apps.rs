//! The apps a gateway serves, from the configuration: apikey, management secret, limits.
//!
//! # Invariants
//! - Apikeys are unique; an [`AppId`] is an index into the table and never changes while the
//!   server runs (apps are fixed at start).

use std::collections::HashMap;

use crate::config::AppConfig;
use crate::ids::AppId;

/// One app: its channel's name and who may manage it.
pub struct App {
    pub apikey: Box<str>,
    secret: Box<str>,
    pub max_clients: Option<usize>,
    pub push_rate_per_sec: Option<u32>,
    /// `client_key`: clients must show a token it signed for their clientId.
    pub client_key: Option<super::identity::ClientKey>,
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

#[derive(Debug)]
pub struct Apps {
    apps: Vec<App>,
    by_apikey: HashMap<Box<str>, AppId>,
}

impl Apps {
    /// Builds the table; fails if there are more apps than an [`AppId`] can name.
    pub fn from_config(configs: &[AppConfig]) -> Result<Apps, String> {
        if configs.len() > usize::from(u16::MAX) {
            return Err(format!("at most {} apps are supported", u16::MAX));
        }
        let mut apps = Vec::with_capacity(configs.len());
        let mut by_apikey = HashMap::with_capacity(configs.len());
        for (i, c) in configs.iter().enumerate() {
            let id = AppId(i as u16);
            if by_apikey.insert(c.apikey.as_str().into(), id).is_some() {
                return Err(format!("duplicate apikey {:?}", c.apikey));
            }
            apps.push(App {
                apikey: c.apikey.as_str().into(),
                secret: c.secret.as_str().into(),
                max_clients: c.max_clients,
                push_rate_per_sec: c.push_rate_per_sec,
                client_key: c
                    .client_key
                    .as_deref()
                    .map(|k| super::identity::ClientKey::new(k.as_bytes())),
            });
        }
        Ok(Apps { apps, by_apikey })
    }

    pub fn lookup(&self, apikey: &str) -> Option<AppId> {
        self.by_apikey.get(apikey).copied()
    }

    pub fn get(&self, id: AppId) -> &App {
        &self.apps[id.index()]
    }

    pub fn len(&self) -> usize {
        self.apps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// Every app, in `AppId` order.
    pub fn iter(&self) -> impl Iterator<Item = &App> {
        self.apps.iter()
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
        assert_eq!(&*apps.get(b).apikey, "b");
        assert!(apps.get(b).secret_matches("secret-b1"));
        assert!(!apps.get(b).secret_matches("secret-b"));
        assert!(!apps.get(b).secret_matches("secret-b12"));
        assert!(!apps.get(b).secret_matches(""));
        assert!(apps.lookup("c").is_none());
        assert!(!format!("{:?}", apps.get(b)).contains("secret-b1"));
    }

    #[test]
    fn duplicate_apikeys_are_refused() {
        assert!(Apps::from_config(&[app("a", "secret-a1"), app("a", "secret-a2")]).is_err());
    }
}

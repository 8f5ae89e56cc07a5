//! A push service for unit tests: two apps, `demo` (secret `demo-secret`) and `other` (secret
//! `other-secret`), on two cores.

use std::time::Instant;

use super::{Apps, FrameEncoder, JoinPolicy, PushService};
use crate::config::{AppConfig, DuplicatePolicy};
use crate::protocol::pomelo::RouteDict;

/// What the apps and joins of a test service allow.
#[derive(Debug, Clone, Default)]
pub(crate) struct TestApps {
    pub rate: Option<u32>,
    pub refuse_duplicates: bool,
    pub max_clients: Option<usize>,
    pub dict: Option<RouteDict>,
    /// `onAdd` lists every clientId while the channel has at most this many (0 = 10).
    pub on_add_users_limit: usize,
}

impl TestApps {
    /// The service, its rates full at `now`.
    pub fn service(&self, now: Instant) -> PushService {
        let app = |apikey: &str, secret: &str| AppConfig {
            apikey: apikey.into(),
            secret: secret.into(),
            max_clients: self.max_clients,
            push_rate_per_sec: self.rate,
        };
        let apps = Apps::from_config(&[app("demo", "demo-secret"), app("other", "other-secret")]);
        let duplicate =
            if self.refuse_duplicates { DuplicatePolicy::Refuse } else { DuplicatePolicy::Replace };
        let limit = if self.on_add_users_limit == 0 { 10 } else { self.on_add_users_limit };
        let policy = JoinPolicy { duplicate, on_add_users_limit: limit };
        let encoder = FrameEncoder::new(self.dict.clone());
        PushService::new(apps.expect("two apps"), 2, encoder, policy, now)
    }
}

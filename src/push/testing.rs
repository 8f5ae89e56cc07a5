//! A push service for unit tests: two apps, `demo` (secret `demo-secret`) and `other` (secret
//! `other-secret`), on two cores.
//!
//! Built for the unit tests and, with the `fuzzing` feature, for `crate::fuzzing`, which uses
//! only part of it.
#![cfg_attr(not(test), allow(dead_code))]

use std::time::Instant;

use super::{Apps, FrameEncoder, JoinPolicy, ProtoSet, ProtoSets, PushService};
use crate::config::{AppConfig, DuplicatePolicy};
use crate::protocol::pomelo::RouteDict;
use crate::protocol::protobuf::Protos;

/// What the apps and joins of a test service allow.
#[derive(Debug, Clone, Default)]
pub(crate) struct TestApps {
    pub rate: Option<u32>,
    pub refuse_duplicates: bool,
    pub max_clients: Option<usize>,
    pub dict: Option<RouteDict>,
    /// `onAdd` lists every clientId while the channel has at most this many (0 = 10).
    pub on_add_users_limit: usize,
    /// Every app's server and client protos, in Pomelo's format (unset = none).
    pub server_protos: Option<serde_json::Value>,
    pub client_protos: Option<serde_json::Value>,
    /// Server protos of the app `other`'s own (its client protos are empty).
    pub other_server_protos: Option<serde_json::Value>,
}

impl TestApps {
    /// The service, its rates full at `now`.
    pub fn service(&self, now: Instant) -> PushService {
        let app = |apikey: &str, secret: &str| AppConfig {
            max_clients: self.max_clients,
            push_rate_per_sec: self.rate,
            ..AppConfig::new(apikey, secret)
        };
        let apps = Apps::from_config(&[app("demo", "demo-secret"), app("other", "other-secret")]);
        let duplicate =
            if self.refuse_duplicates { DuplicatePolicy::Refuse } else { DuplicatePolicy::Replace };
        let limit = if self.on_add_users_limit == 0 { 10 } else { self.on_add_users_limit };
        let policy =
            JoinPolicy { duplicate, on_add_users_limit: limit, manager_list_bytes: 1 << 20 };
        let encoder = FrameEncoder::new(self.dict.clone());
        let parse = |json: &Option<serde_json::Value>| match json {
            Some(json) => Protos::parse(json).expect("test protos parse"),
            None => Protos::default(),
        };
        let set = ProtoSet::new(parse(&self.server_protos), parse(&self.client_protos));
        let mut protos = ProtoSets::global(set, 2);
        if self.other_server_protos.is_some() {
            let own = ProtoSet::new(parse(&self.other_server_protos), Protos::default());
            protos = protos.with_app_set(crate::ids::AppId(1), own);
        }
        PushService::new(apps.expect("two apps"), protos, 2, encoder, policy, now)
    }
}

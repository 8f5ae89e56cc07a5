//! What every thread shares: the settings derived from the configuration, the apps, the channel
//! registry, each reactor's inbox and counters.
//!
//! # Invariants
//! - Fixed after start except through atomics and the registry's short locks; reactors read it
//!   without locking on the push path.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::channel::Channels;
use crate::config::{Config, DuplicatePolicy};
use crate::protocol::pomelo::dict::RouteDict;
use crate::protocol::pomelo::handshake;
use crate::protocol::pomelo::message::Route;
use crate::push::Apps;
use crate::push::route::{HANDLER_ROUTES, PUSH_ROUTES};
use crate::reactor::inbox::Inbox;
use crate::reactor::stats::ReactorStats;

/// The client-port settings a reactor needs on every turn, resolved once.
#[derive(Debug)]
pub struct Settings {
    pub heartbeat_secs: u32,
    pub heartbeat_timeout_secs: u32,
    pub handshake_timeout_secs: u32,
    pub max_package_bytes: usize,
    pub max_pending_bytes: usize,
    pub duplicate: DuplicatePolicy,
    pub on_add_users_limit: usize,
    /// WebSocket `Origin`s allowed to upgrade; empty = any.
    pub allowed_origins: Vec<String>,
    /// Connection slots each reactor reserves at start (set by the server from the open-file
    /// limit; 0 = grow on demand).
    pub conn_capacity: usize,
    dict: Option<RouteDict>,
    /// The handshake response with the dictionary, encoded once.
    handshake_full: Bytes,
    /// The handshake response for clients that already hold this dictionary version.
    handshake_short: Bytes,
}

impl Settings {
    pub fn from_config(config: &Config) -> Result<Settings, String> {
        let client = &config.client;
        let dict = if client.use_dict {
            Some(RouteDict::new(HANDLER_ROUTES, PUSH_ROUTES).map_err(|e| e.to_string())?)
        } else {
            None
        };
        let encode = |include_dict: bool| {
            let mut out = BytesMut::new();
            handshake::encode_response(
                Some(client.heartbeat_secs),
                dict.as_ref(),
                include_dict,
                &mut out,
            );
            out.freeze()
        };
        Ok(Settings {
            heartbeat_secs: client.heartbeat_secs,
            heartbeat_timeout_secs: config.heartbeat_timeout_secs(),
            handshake_timeout_secs: client.handshake_timeout_secs,
            max_package_bytes: client.max_package_bytes,
            max_pending_bytes: client.max_pending_bytes,
            duplicate: client.duplicate,
            on_add_users_limit: client.on_add_users_limit,
            allowed_origins: client.allowed_origins.clone(),
            conn_capacity: 0,
            handshake_full: encode(true),
            handshake_short: encode(false),
            dict,
        })
    }

    /// The handshake response for a client that holds `client_dict_version`.
    pub fn handshake_reply(&self, client_dict_version: Option<&str>) -> &Bytes {
        match (&self.dict, client_dict_version) {
            (Some(dict), Some(v)) if v == dict.version() => &self.handshake_short,
            _ => &self.handshake_full,
        }
    }

    /// The route a client's dictionary code stands for.
    pub fn route_of_code(&self, code: u16) -> Option<&str> {
        self.dict.as_ref()?.route(code)
    }

    /// How a push route goes on the wire: its dictionary code when it has one.
    pub fn push_route(&self, route: &'static str) -> Route<'static> {
        match self.dict.as_ref().and_then(|d| d.code(route)) {
            Some(code) => Route::Code(code),
            None => Route::Name(route),
        }
    }
}

#[derive(Debug)]
pub struct Shared {
    pub settings: Settings,
    pub apps: Apps,
    pub channels: Channels,
    pub inboxes: Vec<Arc<Inbox>>,
    pub stats: Vec<ReactorStats>,
}

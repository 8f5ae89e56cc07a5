//! What a Pomelo session needs from the configuration, resolved once: heartbeats, the route
//! dictionary, and the two handshake responses, encoded at start.

use bytes::{Bytes, BytesMut};

use super::route::{HANDLER_ROUTES, PUSH_ROUTES};
use crate::config::Config;
use crate::protocol::ProtocolError;
use crate::protocol::pomelo::RouteDict;
use crate::protocol::pomelo::handshake;

#[derive(Debug)]
pub struct PomeloSettings {
    /// Sent in the handshake: how often a client heartbeats, seconds.
    pub heartbeat_secs: u32,
    /// A working session silent for longer is kicked, seconds.
    pub heartbeat_timeout_secs: u32,
    dict: Option<RouteDict>,
    /// The handshake response with the dictionary, encoded once.
    handshake_full: Bytes,
    /// The handshake response for clients that already hold this dictionary version.
    handshake_short: Bytes,
}

impl PomeloSettings {
    pub fn from_config(config: &Config) -> Result<PomeloSettings, ProtocolError> {
        let client = &config.client;
        let dict =
            if client.use_dict { Some(RouteDict::new(HANDLER_ROUTES, PUSH_ROUTES)?) } else { None };
        Ok(PomeloSettings::new(client.heartbeat_secs, config.heartbeat_timeout_secs(), dict))
    }

    pub fn new(heartbeat_secs: u32, heartbeat_timeout_secs: u32, dict: Option<RouteDict>) -> Self {
        let encode = |include_dict: bool| {
            let mut out = BytesMut::new();
            handshake::encode_response(Some(heartbeat_secs), dict.as_ref(), include_dict, &mut out);
            out.freeze()
        };
        PomeloSettings {
            heartbeat_secs,
            heartbeat_timeout_secs,
            handshake_full: encode(true),
            handshake_short: encode(false),
            dict,
        }
    }

    /// The route dictionary, when the server uses one (pushes are encoded with it too).
    pub fn dict(&self) -> Option<&RouteDict> {
        self.dict.as_ref()
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
}

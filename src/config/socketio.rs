//! `[socketio]`: the Socket.IO frontend (Pomelo's sioconnector). Socket.IO clients connect on
//! the client port: an HTTP request whose path starts with `path` is theirs (socket.io 0.9's
//! `/socket.io/1/` handshake, `/socket.io/1/websocket/{sid}` and `/socket.io/1/xhr-polling/{sid}`,
//! Engine.IO 3 and 4's `/socket.io/?EIO=..&transport=polling|websocket`); every other request is
//! a Pomelo or MQTT WebSocket upgrade as before.

use serde::{Deserialize, Serialize};

use super::{ConfigError, ensure, in_range};

/// `[socketio]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SocketIoConfig {
    /// Serve Socket.IO clients at all.
    pub enabled: bool,
    /// The path Socket.IO requests start with (socket.io's `path` option; `resource` in 0.9);
    /// starts with `/`, no trailing `/`, no `?`.
    pub path: String,
    /// How often the server pings (Engine.IO 4 and socket.io 0.9 heartbeats) and how often an
    /// Engine.IO 3 client is told to ping, seconds (`1..=3600`).
    pub ping_interval_secs: u32,
    /// How long a ping may wait for its answer, seconds (`1..=3600`); an Engine.IO 3 client
    /// silent for the interval plus this is closed.
    pub ping_timeout_secs: u32,
    /// Engine.IO 3 polling payloads as engine.io 1.x writes them (socket.io-client 1.x, the
    /// clients of Pomelo 2.x's sioconnector): each packet UTF-8-encoded into a string of
    /// bytes, lengths counted over those. socket.io-client 2.x reads non-ASCII text wrongly
    /// then, so this is for a fleet of 1.x clients. WebSocket is the same either way.
    pub engine_io_1x_polling: bool,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        SocketIoConfig {
            enabled: true,
            path: "/socket.io".to_owned(),
            ping_interval_secs: 25,
            ping_timeout_secs: 20,
            engine_io_1x_polling: false,
        }
    }
}

impl SocketIoConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let path = &self.path;
        let well_formed = path.starts_with('/')
            && path.len() > 1
            && !path.ends_with('/')
            && path.bytes().all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#');
        ensure(well_formed, "socketio.path", || {
            format!("must start with / and have no trailing /, ? or spaces (got {path:?})")
        })?;
        in_range("socketio.ping_interval_secs", self.ping_interval_secs, 1, 3600)?;
        in_range("socketio.ping_timeout_secs", self.ping_timeout_secs, 1, 3600)?;
        Ok(())
    }
}

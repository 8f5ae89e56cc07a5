//! `[mqtt]`: the MQTT frontend's port and limits. MQTT clients connect on the client port (a
//! CONNECT's first byte, or a WebSocket upgrade with subprotocol `mqtt`), and on `listen` too
//! when it is set; the other keys bound what each connection may ask for.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ConfigError, in_range};

/// `[mqtt]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// A dedicated port every reactor also accepts on (1883 by convention), handled exactly as
    /// the client port; unset (the default) = none. Checked against the other ports in
    /// `Config::validate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// The longest keep alive honoured, seconds (`1..=43_690`, so that 1.5 × it fits 16 bits).
    pub max_keepalive_secs: u16,
    /// QoS 1 deliveries in flight per connection (`1..=32_768`: well inside the 65,535 packet
    /// ids, with room for a retained message and a resumed session's resends).
    pub max_inflight: u16,
    /// QoS 1 deliveries waiting behind a full window per connection (`0..=1_000_000`).
    pub max_queued: u32,
    /// How long a persistent session outlives its connection, seconds: a 3.1.1 client's with
    /// clean session 0, and the most a 5.0 client's Session Expiry Interval gets
    /// (`0..=31_536_000`; 0 = no persistent sessions).
    pub session_expiry_secs: u32,
    /// Pushes an away session keeps (`1..=1_000_000`); past it the oldest is dropped.
    pub session_max_messages: usize,
    /// Away sessions kept per app (`0..=10_000_000`), never more than the app's `max_clients`;
    /// a session that finds no room ends with its connection.
    pub max_parked_sessions: usize,
    /// Payload bytes an away session keeps (`1..=1_073_741_824`); past it the oldest is dropped.
    pub session_max_bytes: usize,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            listen: None,
            max_keepalive_secs: 1200,
            max_inflight: 32,
            max_queued: 1000,
            session_expiry_secs: 86_400,
            max_parked_sessions: 100_000,
            session_max_messages: 1000,
            session_max_bytes: 1 << 20,
        }
    }
}

impl MqttConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        in_range("mqtt.max_keepalive_secs", self.max_keepalive_secs, 1, 43_690)?;
        in_range("mqtt.max_inflight", self.max_inflight, 1, 32_768)?;
        in_range("mqtt.max_queued", self.max_queued, 0, 1_000_000)?;
        in_range("mqtt.session_expiry_secs", self.session_expiry_secs, 0, 31_536_000)?;
        in_range("mqtt.max_parked_sessions", self.max_parked_sessions, 0, 10_000_000)?;
        in_range("mqtt.session_max_messages", self.session_max_messages, 1, 1_000_000)?;
        in_range("mqtt.session_max_bytes", self.session_max_bytes, 1, 1 << 30)?;
        Ok(())
    }
}

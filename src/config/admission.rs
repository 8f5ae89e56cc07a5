//! `[admission]`: limits on new connections, applied at accept before anything is read: each
//! refused connection is closed at once, counted in `shaddock_admission_refused_total{reason}`
//! and logged (at most once per 10 s per limit and reactor). 0 turns a limit off. And flapping
//! clientIds, refused when they enter (Pomelo 429, MQTT SUBACK 0x97).

use serde::{Deserialize, Serialize};

use super::{ConfigError, in_range};

/// `[admission]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// Open client connections in all (`0..=100_000_000`; 0 = only the open-file limit).
    pub max_connections: usize,
    /// Open client connections from one source address (`0..=100_000_000`); generous by
    /// default, since a carrier NAT puts thousands of phones behind one address.
    pub max_per_source: usize,
    /// New connections accepted per second, all reactors together (`0..=10_000_000`).
    pub accept_rate_per_sec: u32,
    /// Connections accepted at once above the rate (`1..=10_000_000`).
    pub accept_burst: u32,
    /// Connections that have not finished their handshake (`0..=10_000_000`): each may buffer up
    /// to 16 KiB before it has.
    pub max_opening: usize,
    /// Joins of one clientId within `flap_window_secs` past which it is flapping and its joins
    /// are refused for `flap_ban_secs` (`0..=1_000_000`; 0 = off).
    pub flap_max_joins: u32,
    /// `1..=86_400`.
    pub flap_window_secs: u32,
    /// `1..=86_400`.
    pub flap_ban_secs: u32,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            max_connections: 0,
            max_per_source: 20_000,
            accept_rate_per_sec: 20_000,
            accept_burst: 40_000,
            max_opening: 10_000,
            flap_max_joins: 0,
            flap_window_secs: 60,
            flap_ban_secs: 60,
        }
    }
}

impl AdmissionConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        in_range("admission.max_connections", self.max_connections, 0, 100_000_000)?;
        in_range("admission.max_per_source", self.max_per_source, 0, 100_000_000)?;
        in_range("admission.accept_rate_per_sec", self.accept_rate_per_sec, 0, 10_000_000)?;
        in_range("admission.accept_burst", self.accept_burst, 1, 10_000_000)?;
        in_range("admission.max_opening", self.max_opening, 0, 10_000_000)?;
        in_range("admission.flap_max_joins", self.flap_max_joins, 0, 1_000_000)?;
        in_range("admission.flap_window_secs", self.flap_window_secs, 1, 86_400)?;
        in_range("admission.flap_ban_secs", self.flap_ban_secs, 1, 86_400)?;
        Ok(())
    }
}

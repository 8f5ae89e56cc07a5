//! `[client.tls]` and `[control.tls]`: TLS on the client listeners and on the control port, a
//! certificate chain and its private key as PEM files (relative paths are taken from the
//! configuration file's directory, as the protos are). Whether the files hold what they should
//! is checked when the daemon starts and on every reload (`crate::tls::certificates`): this
//! module only says which keys exist and their ranges.
//!
//! `[client.tls]` covers every client listener: the client port and `mqtt.listen` when set.
//! A connection whose first byte opens a TLS record (`0x16`) is TLS; others are plain, unless
//! `required`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, in_range};

/// `[client.tls]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTlsConfig {
    /// The certificate chain, PEM, the server's own certificate first.
    pub cert: PathBuf,
    /// Its private key, PEM (PKCS #8, PKCS #1 or SEC 1).
    pub key: PathBuf,
    /// Refuse plain connections (closed unanswered); default false: TLS and plain share the
    /// port, told apart by the first byte.
    #[serde(default)]
    pub required: bool,
    /// TLS handshakes one reactor runs at once (`1..=65_536`); a ClientHello past them is
    /// closed, so a handshake flood cannot take the core from established connections.
    #[serde(default = "ClientTlsConfig::default_max_handshakes")]
    pub max_handshakes_per_reactor: usize,
}

impl ClientTlsConfig {
    fn default_max_handshakes() -> usize {
        256
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let handshakes = self.max_handshakes_per_reactor;
        in_range("client.tls.max_handshakes_per_reactor", handshakes, 1, 65_536)
    }
}

/// `[control.tls]`: the control port speaks HTTPS only.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ControlTlsConfig {
    /// The certificate chain, PEM, the server's own certificate first.
    pub cert: PathBuf,
    /// Its private key, PEM.
    pub key: PathBuf,
    /// CA certificates, PEM: when set, a control client must present a certificate one of
    /// them signed (mutual TLS), on top of the app secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
}

//! TLS, sans-IO: the certificates a listener serves ([`certificates`]), a connection's
//! handshake ([`handshake`], rustls's unbuffered server connection), and its records once the
//! handshake is done ([`records`]). Nothing here touches a socket or reads a clock: the reactor
//! feeds the bytes it read and sends the bytes it is handed.
//!
//! # Why two halves
//! rustls runs every handshake, with its own buffers, for the few milliseconds it lasts. Once
//! it is done, the connection's traffic keys are taken out of it (rustls's kernel-TLS path,
//! [`rustls::kernel`]) and rustls is dropped: an idle connection keeps its two directions'
//! keys, IVs, sequence numbers and traffic secrets (at most 256 bytes, [`Records`]) instead of a
//! rustls connection (its record layer's expanded keys alone are about 1 KB; buffered, several
//! KB more). Records are sealed and opened with ring's AEADs, the expanded key built per read
//! or write (about 100 ns), so nothing of it stays between exchanges. This is what kTLS does
//! in the kernel; this machine's kernel has no kTLS, and the same keys could go there.
//!
//! # Invariants
//! - A record is sealed with a nonce made from its direction's IV and sequence number, and the
//!   sequence number is incremented with every record sealed or opened: never a nonce twice.
//! - Nothing is handed to a session before its record authenticated.
//! - A peer's KeyUpdate (TLS 1.3) switches to the next receive keys after its record, and
//!   answers with one of ours when asked; ours go out before the sequence number reaches
//!   [`records::KEY_UPDATE_AT`] (TLS 1.2 has no key update: the connection ends there).

pub mod certificates;
pub mod handshake;
pub mod records;
mod secrets;
#[cfg(test)]
mod tests;

pub use certificates::{Certificates, server_config};
pub use handshake::{Established, Handshake, Progress};
pub use records::{Opened, Plain, Records};

/// The first byte of a TLS record carrying a handshake message (a ClientHello): what tells a
/// TLS connection from a plain one on a shared port (Pomelo packages start with 1..=5, MQTT
/// with 0x10, HTTP with a letter).
pub const HANDSHAKE_RECORD: u8 = 0x16;

/// Why a TLS connection ends.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The handshake failed (rustls says why).
    #[error("TLS handshake: {0}")]
    Handshake(#[from] rustls::Error),
    /// A record that is not what the protocol allows here.
    #[error("TLS: {0}")]
    Protocol(&'static str),
    /// A record did not authenticate.
    #[error("TLS: a record did not decrypt")]
    Decrypt,
    /// The peer sent an alert other than close_notify.
    #[error("TLS: the peer sent alert {0}")]
    Alert(u8),
    /// TLS 1.2 reached the most records its keys may seal.
    #[error("TLS 1.2: the keys sealed all the records they may")]
    KeyLimit,
}

//! Session ids that need no table: a socket.io 0.9 handshake hands one out over plain HTTP, and
//! the WebSocket that follows (on another connection, maybe another core) shows it back.
//!
//! ```text
//! sid = base64url( issued: u32 BE | conn: u64 BE | mac: first 8 bytes of SHA-1(key | issued | conn) )
//! ```
//!
//! # Invariants
//! - Only this process can make a sid that [`SidKey::verify`] takes: the key is 16 random
//!   bytes drawn at start, so sids do not survive a restart (a client handshakes again).
//! - A sid is taken only within `max_age` seconds of being issued (socket.io 0.9's close
//!   timeout), on the clock that issued it.
//! - 27 characters of `[A-Za-z0-9_-]`: safe in a URL path and a JSON string unescaped.

use std::hash::{BuildHasher, RandomState};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha1::{Digest, Sha1};

use crate::ids::ConnId;

const SID_BYTES: usize = 4 + 8 + 8;

/// The process's key for sids.
#[derive(Clone, PartialEq, Eq)]
pub struct SidKey([u8; 16]);

impl std::fmt::Debug for SidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SidKey(..)")
    }
}

impl SidKey {
    /// A key from the OS's randomness (std's hasher keys are drawn from it).
    pub fn random() -> SidKey {
        let mut key = [0u8; 16];
        for (i, half) in key.chunks_mut(8).enumerate() {
            half.copy_from_slice(&RandomState::new().hash_one(i).to_be_bytes());
        }
        SidKey(key)
    }

    /// A fixed key, for tests.
    pub const fn from_bytes(key: [u8; 16]) -> SidKey {
        SidKey(key)
    }

    /// The sid for a handshake made by connection `conn` at second `issued`.
    pub fn issue(&self, conn: ConnId, issued: u32) -> String {
        let mut raw = [0u8; SID_BYTES];
        raw[..4].copy_from_slice(&issued.to_be_bytes());
        raw[4..12].copy_from_slice(&conn_bits(conn).to_be_bytes());
        let mac = self.mac(&raw[..12]);
        raw[12..].copy_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Whether `sid` is one of ours, issued at most `max_age` seconds before `now`.
    pub fn verify(&self, sid: &str, now: u32, max_age: u32) -> bool {
        self.open(sid).is_some_and(|(issued, _)| issued <= now && now - issued <= max_age)
    }

    /// The second and the connection a sid of ours was issued for (`None` for anything else).
    pub fn open(&self, sid: &str) -> Option<(u32, ConnId)> {
        let mut raw = [0u8; SID_BYTES + 2];
        let Ok(SID_BYTES) = URL_SAFE_NO_PAD.decode_slice(sid.as_bytes(), &mut raw) else {
            return None;
        };
        // Not constant time: a sid guards nothing a client could not get by asking for one.
        if self.mac(&raw[..12]) != raw[12..SID_BYTES] {
            return None;
        }
        let mut issued = [0u8; 4];
        issued.copy_from_slice(&raw[..4]);
        let mut conn = [0u8; 8];
        conn.copy_from_slice(&raw[4..12]);
        Some((u32::from_be_bytes(issued), conn_from_bits(u64::from_be_bytes(conn))))
    }

    fn mac(&self, data: &[u8]) -> [u8; 8] {
        let digest = Sha1::new().chain_update(self.0).chain_update(data).finalize();
        let mut mac = [0u8; 8];
        mac.copy_from_slice(&digest[..8]);
        mac
    }
}

fn conn_bits(conn: ConnId) -> u64 {
    (conn.core() as u64) << 56 | u64::from(conn.generation()) << 32 | conn.index() as u64
}

fn conn_from_bits(bits: u64) -> ConnId {
    let generation = (bits >> 32) as u32 & ConnId::GENERATION_MASK;
    ConnId::new((bits >> 56) as usize, (bits & 0xFFFF_FFFF) as usize, generation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sid_names_its_connection() {
        let key = SidKey::from_bytes([7; 16]);
        let conn = ConnId::new(1, 4242, 99);
        assert_eq!(key.open(&key.issue(conn, 30)), Some((30, conn)));
        assert_eq!(SidKey::from_bytes([8; 16]).open(&key.issue(conn, 30)), None);
        assert_eq!(key.open("not-a-sid"), None);
    }

    #[test]
    fn a_sid_is_taken_only_when_ours_and_fresh() {
        let key = SidKey::from_bytes([7; 16]);
        let sid = key.issue(ConnId::new(1, 42, 9), 100);
        assert_eq!(sid.len(), 27);
        assert!(sid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert!(key.verify(&sid, 100, 60) && key.verify(&sid, 160, 60));
        assert!(!key.verify(&sid, 161, 60), "too old");
        assert!(!key.verify(&sid, 99, 60), "from the future");
        assert!(!SidKey::from_bytes([8; 16]).verify(&sid, 100, 60), "another key");
        let mut forged = sid.clone().into_bytes();
        forged[3] = if forged[3] == b'A' { b'B' } else { b'A' };
        assert!(!key.verify(std::str::from_utf8(&forged).unwrap(), 100, 60));
        for bad in ["", "x", "not a sid at all!!", &sid[..26], &format!("{sid}A")] {
            assert!(!key.verify(bad, 100, 60), "{bad}");
        }
        assert_ne!(sid, key.issue(ConnId::new(1, 43, 9), 100));
    }

    #[test]
    fn random_keys_differ() {
        assert_ne!(SidKey::random(), SidKey::random());
    }
}

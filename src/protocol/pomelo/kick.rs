//! The Pomelo KICK: the last package of a connection the server closes (pomelo 2.2.7
//! `connectors/commands/kick.js`, pomelo-hybrid.md §5).
//!
//! ```text
//! +------+-----------+---------------------+
//! | 0x05 | len: u24  | {"reason":"attack"} |      2.x: always a JSON object
//! +------+-----------+---------------------+
//! | 0x05 | 00 00 00  |                          0.4: empty body, reason "kick" only
//! +------+-----------+
//! ```
//!
//! # Invariants
//! - The reason is escaped as `JSON.stringify` escapes it, so any string is safe to send.
//! - A reason is cut to at most [`MAX_REASON_LEN`] bytes (on a character boundary): kick reasons
//!   are short human strings, and the cap keeps the package bounded without an error path.
//! - [`encode`] reserves once and writes the whole package.

use bytes::{BufMut, BytesMut};
use serde_json::{Map, Value};

use crate::protocol::ProtocolError;
use crate::protocol::pomelo::package::{HEADER_LEN, PackageType};
use crate::protocol::pomelo::{json_str_len, put_json_str};
use crate::protocol::wire::{put_u24, truncate_str};

/// The longest reason sent; longer ones are cut at a character boundary.
pub const MAX_REASON_LEN: usize = 1024;

const OPEN: &[u8] = br#"{"reason":"#;
const CLOSE: &[u8] = b"}";

/// Appends a whole KICK package with body `{"reason":"<reason>"}`.
pub fn encode(reason: &str, out: &mut BytesMut) {
    let reason = truncate_str(reason, MAX_REASON_LEN);
    let body_len = OPEN.len() + json_str_len(reason) + CLOSE.len();
    out.reserve(HEADER_LEN + body_len);
    out.put_u8(PackageType::Kick as u8);
    // At most 11 + 6 * MAX_REASON_LEN + 2 bytes, far below the u24 limit.
    put_u24(out, body_len as u32);
    out.put_slice(OPEN);
    put_json_str(out, reason);
    out.put_slice(CLOSE);
}

/// Decodes a KICK body: the reason, or `None` for the empty body of Pomelo 0.4 (or a JSON object
/// without a reason).
pub fn decode(body: &[u8]) -> Result<Option<String>, ProtocolError> {
    const BAD: ProtocolError = ProtocolError::Malformed("kick body is not {\"reason\": string}");
    if body.is_empty() {
        return Ok(None);
    }
    let object: Map<String, Value> = serde_json::from_slice(body).map_err(|_| BAD)?;
    match object.get("reason") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(reason)) => Ok(Some(reason.clone())),
        Some(_) => Err(BAD),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::pomelo::package;
    use proptest::prelude::*;

    fn kick(reason: &str) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(reason, &mut out);
        out.to_vec()
    }

    #[test]
    fn vectors_from_the_spec() {
        // pomelo-hybrid.md §5.
        assert_eq!(
            kick("kick"),
            [
                0x05, 0x00, 0x00, 0x11, 0x7b, 0x22, 0x72, 0x65, 0x61, 0x73, 0x6f, 0x6e, 0x22, 0x3a,
                0x22, 0x6b, 0x69, 0x63, 0x6b, 0x22, 0x7d
            ]
        );
        assert_eq!(
            kick("attack"),
            [
                0x05, 0x00, 0x00, 0x13, 0x7b, 0x22, 0x72, 0x65, 0x61, 0x73, 0x6f, 0x6e, 0x22, 0x3a,
                0x22, 0x61, 0x74, 0x74, 0x61, 0x63, 0x6b, 0x22, 0x7d
            ]
        );
        assert_eq!(decode(br#"{"reason":"attack"}"#), Ok(Some("attack".to_owned())));
        // Pomelo 0.4: `05 00 00 00`.
        assert_eq!(decode(b""), Ok(None));
    }

    #[test]
    fn reasons_are_escaped() {
        let bytes = kick("protocol error: \"x\"\n");
        assert_eq!(&bytes[4..], br#"{"reason":"protocol error: \"x\"\n"}"#);
        assert_eq!(decode(&bytes[4..]), Ok(Some("protocol error: \"x\"\n".to_owned())));
    }

    #[test]
    fn long_reasons_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_REASON_LEN); // 2 bytes each
        let bytes = kick(&long);
        let reason = decode(&bytes[4..]).unwrap().unwrap();
        assert_eq!(reason.len(), MAX_REASON_LEN);
        let odd = format!("a{long}");
        let reason = decode(&kick(&odd)[4..]).unwrap().unwrap();
        assert_eq!(reason.len(), MAX_REASON_LEN - 1);
    }

    #[test]
    fn other_bodies() {
        assert_eq!(decode(b"{}"), Ok(None));
        assert_eq!(decode(br#"{"reason":null,"x":1}"#), Ok(None));
        let bad = Err(ProtocolError::Malformed("kick body is not {\"reason\": string}"));
        assert_eq!(decode(b"kick"), bad);
        assert_eq!(decode(br#"{"reason":5}"#), bad);
        assert_eq!(decode(b"[]"), bad);
    }

    proptest! {
        #[test]
        fn kick_round_trip(reason in "\\PC{0,64}|[\\x00-\\x7f]{0,64}") {
            let bytes = kick(&reason);
            let (pkg, used) = package::decode(&bytes, package::MAX_BODY_LEN).unwrap().unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(pkg.kind, PackageType::Kick);
            prop_assert_eq!(decode(pkg.body), Ok(Some(reason)));
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }
    }
}

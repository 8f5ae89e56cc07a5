//! NetEase Pomelo's "hybrid" protocol, as pomelo 2.2.7 and pomelo-protocol 0.1.6 speak it on raw
//! TCP and inside WebSocket binary messages (`pomelo-hybrid.md`).
//!
//! ```text
//! package:  type u8 | length u24 BE | body                          (package.rs)
//!   HANDSHAKE      body = JSON {"sys":{..},"user":{..}} / {"code":200,"sys":{..}}  (handshake.rs)
//!   HANDSHAKE_ACK  empty
//!   HEARTBEAT      empty
//!   DATA           body = message: flag | [id varint] | [route] | body  (message.rs)
//!   KICK           body = JSON {"reason":".."}                        (kick.rs)
//! route dictionary: route name <-> u16 code, versioned by an md5       (dict.rs)
//! ```
//!
//! # Invariants
//! - Sans-IO: every function takes bytes and appends to a [`bytes::BytesMut`]; none knows about
//!   sockets, time or connection state (the handshake → ack → working state machine lives with
//!   the connection, not here).
//! - The per-package path ([`package::decode`], [`message::decode`], and the DATA, HEARTBEAT and
//!   KICK encoders) neither allocates nor panics; only the once-per-connection handshake parses
//!   JSON into owned values.
//! - Every server-produced package is byte-for-byte what Pomelo 2.2.7 sends for the same content
//!   (checked against `tests/data/pomelo-captures.md`).

use bytes::BufMut;

pub mod dict;
pub mod handshake;
pub mod kick;
pub mod message;
pub mod package;

pub use dict::RouteDict;
pub use handshake::{HandshakeRejection, HandshakeRequest, HandshakeResponse};
pub use message::{Message, MessageType, Route};
pub use package::{Package, PackageType};

/// Appends `s` as a JSON string literal, escaped exactly as JavaScript's `JSON.stringify` does
/// for a well-formed string: `"` and `\` backslashed, `\b \f \n \r \t` short, other controls as
/// `\u00xx` (lowercase hex), everything else (including `/`, DEL and non-ASCII) verbatim.
pub(crate) fn put_json_str(out: &mut impl BufMut, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.put_u8(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.put_slice(b"\\\""),
            b'\\' => out.put_slice(b"\\\\"),
            0x08 => out.put_slice(b"\\b"),
            0x0c => out.put_slice(b"\\f"),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            b'\t' => out.put_slice(b"\\t"),
            0x00..=0x1f => {
                out.put_slice(b"\\u00");
                out.put_u8(HEX[usize::from(b >> 4)]);
                out.put_u8(HEX[usize::from(b & 0x0f)]);
            }
            _ => out.put_u8(b),
        }
    }
    out.put_u8(b'"');
}

/// The bytes [`put_json_str`] writes for `s`, quotes included.
pub(crate) fn json_str_len(s: &str) -> usize {
    let escaped: usize = s
        .as_bytes()
        .iter()
        .map(|&b| match b {
            b'"' | b'\\' | 0x08 | 0x0c | b'\n' | b'\r' | b'\t' => 2,
            0x00..=0x1f => 6,
            _ => 1,
        })
        .sum();
    escaped + 2
}

/// Appends `v` in decimal, as JSON writes a non-negative integer.
pub(crate) fn put_decimal(out: &mut impl BufMut, v: u32) {
    let mut digits = [0u8; 10];
    let mut n = v;
    let mut start = digits.len();
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
        start -= 1;
        if n == 0 {
            break;
        }
    }
    out.put_slice(digits.get(start..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json(s: &str) -> String {
        let mut out = Vec::new();
        put_json_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_like_json_stringify() {
        assert_eq!(json("attack"), r#""attack""#);
        assert_eq!(json("a\"b\\c/d"), r#""a\"b\\c/d""#);
        assert_eq!(json("\u{8}\u{c}\n\r\t"), r#""\b\f\n\r\t""#);
        assert_eq!(json("\u{0}\u{1f}\u{7f}é"), "\"\\u0000\\u001f\u{7f}é\"");
    }

    #[test]
    fn decimals() {
        for v in [0, 1, 9, 10, 300, 65_535, u32::MAX] {
            let mut out = Vec::new();
            put_decimal(&mut out, v);
            assert_eq!(out, v.to_string().into_bytes());
        }
    }

    proptest! {
        #[test]
        fn json_str_agrees_with_serde_json(s in any::<String>()) {
            let ours = json(&s);
            prop_assert_eq!(ours.len(), json_str_len(&s));
            prop_assert_eq!(&ours, &serde_json::to_string(&s).unwrap());
        }
    }
}

//! Pomelo's message layer over socket.io: the request a pomelo-jsclient-socket.io client sends
//! as the string of a `"message"`, and the JSON strings pomelo 2.2.7's `sioconnector` and
//! `siosocket` answer with.
//!
//! ```text
//! request (client → server), a JavaScript string; every cell is one UTF-16 code unit:
//! +------+------+------+------+---------+--------------------+------------------+
//! | id   | id   | id   | id   | route   | route              | body             |
//! | >>24 | >>16 | >>8  | & ff | length  | (route length      | (JSON, the rest) |
//! | & ff | & ff | & ff |      | (0-255) |  code units)       |                  |
//! +------+------+------+------+---------+--------------------+------------------+
//!   "\u{0}\u{0}\u{0}\u{1}\u{1c}connector.entryHandler.entry{"uid":"a"}"  id 1
//!
//! response:  {"id":<id>,"body":<body>}
//! push:      {"route":"<route>","body":<body>}
//! kick:      {"route":"onKick","reason":"<reason>"}
//! batch:     [<message>,<message>,...]
//! ```
//!
//! # Invariants
//! - [`decode_request`] reads the header as the connector's `Connector.decode` does: each of
//!   the five header units is taken `& 0xff`, the route is a `substr` in code units, the body
//!   is the rest. Unlike `substr`, a message shorter than its header, a route running past
//!   the end, and a cut between the halves of a surrogate pair are errors; the body is left
//!   unparsed (the caller parses the JSON; an empty body is what `JSON.parse` refuses).
//! - The id is the four bytes as a `u32`; the connector computes it with JavaScript's `<<`,
//!   which makes ids of 2^31 and above negative. pomelo-jsclient-socket.io counts up from 1,
//!   so no real client gets there.
//! - Encoders insert `body_json` verbatim (it is already JSON) and escape strings as
//!   `JSON.stringify` does; the output is the string the caller sends as the message
//!   ([`super::packet::encode_message_event`] or [`super::v09`] type 3).

use crate::protocol::socketio::json;
use crate::protocol::socketio::{split_utf16, utf16_len};

/// The header: 4 units of id, 1 of route length (`PKG_HEAD_BYTES`).
const HEADER_UNITS: usize = 5;
/// The longest route the client encodes, in UTF-16 code units.
pub const MAX_ROUTE_UNITS: usize = 255;

/// A decoded request, borrowed from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SioRequest<'a> {
    /// The request id; 0 for a notify.
    pub id: u32,
    /// The route, `server.handler.method`.
    pub route: &'a str,
    /// The JSON body, unparsed.
    pub body: &'a str,
}

/// A fault in a Pomelo socket.io request, or a request that cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PomeloSioError {
    /// Fewer than the five header code units.
    #[error("message shorter than its header")]
    TooShort,
    /// A route length that runs past the end of the message.
    #[error("route runs past the end of the message")]
    RoutePastEnd,
    /// The header or the route ends between the two halves of a surrogate pair.
    #[error("header or route splits a character")]
    SplitsChar,
    /// Encoding: a route longer than 255 UTF-16 code units.
    #[error("route too long: {0} code units (max 255)")]
    RouteTooLong(usize),
}

/// Decodes a request message (the string argument of the client's `"message"`).
pub fn decode_request(message: &str) -> Result<SioRequest<'_>, PomeloSioError> {
    let mut header = [0u8; HEADER_UNITS];
    let mut units = message.encode_utf16();
    for slot in &mut header {
        // `& 0xff` of each code unit, as `parseIntField` does.
        let [_, low] = units.next().ok_or(PomeloSioError::TooShort)?.to_be_bytes();
        *slot = low;
    }
    let [a, b, c, d, route_len] = header;
    let id = u32::from_be_bytes([a, b, c, d]);
    let (_, rest) = split_utf16(message, HEADER_UNITS).ok_or(PomeloSioError::SplitsChar)?;
    let route_len = usize::from(route_len);
    let Some((route, body)) = split_utf16(rest, route_len) else {
        return Err(if utf16_len(rest) < route_len {
            PomeloSioError::RoutePastEnd
        } else {
            PomeloSioError::SplitsChar
        });
    };
    Ok(SioRequest { id, route, body })
}

/// Encodes a request as pomelo-jsclient-socket.io's `Protocol.encode` does (for tests and the
/// load tool): `body_json` is the already serialized `JSON.stringify(msg)`.
pub fn encode_request(id: u32, route: &str, body_json: &str) -> Result<String, PomeloSioError> {
    let route_units = utf16_len(route);
    let Ok(route_len) = u8::try_from(route_units) else {
        return Err(PomeloSioError::RouteTooLong(route_units));
    };
    let mut out = String::with_capacity(2 * HEADER_UNITS + route.len() + body_json.len());
    let [a, b, c, d] = id.to_be_bytes();
    // Each header byte is one char U+0000..U+00FF, one code unit.
    out.extend([a, b, c, d, route_len].map(char::from));
    out.push_str(route);
    out.push_str(body_json);
    Ok(out)
}

/// Appends a response: `{"id":<id>,"body":<body_json>}`.
pub fn encode_response(id: u32, body_json: &str, out: &mut String) {
    out.reserve(16 + body_json.len());
    out.push_str("{\"id\":");
    json::push_decimal(id.into(), out);
    out.push_str(",\"body\":");
    out.push_str(body_json);
    out.push('}');
}

/// Appends a push: `{"route":"<route>","body":<body_json>}`.
pub fn encode_push(route: &str, body_json: &str, out: &mut String) {
    out.reserve(20 + json::string_len(route) + body_json.len());
    out.push_str("{\"route\":");
    json::push_string(route, out);
    out.push_str(",\"body\":");
    out.push_str(body_json);
    out.push('}');
}

/// Appends a kick: `{"route":"onKick","reason":"<reason>"}`.
pub fn encode_kick(reason: &str, out: &mut String) {
    out.reserve(30 + json::string_len(reason));
    out.push_str("{\"route\":\"onKick\",\"reason\":");
    json::push_string(reason, out);
    out.push('}');
}

/// Appends a batch of already encoded messages: `[<a>,<b>,...]` (`[]` for none).
pub fn encode_batch<'a>(messages: impl IntoIterator<Item = &'a str>, out: &mut String) {
    out.push('[');
    for (i, message) in messages.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(message);
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use PomeloSioError as E;

    fn req<'a>(id: u32, route: &'a str, body: &'a str) -> SioRequest<'a> {
        SioRequest { id, route, body }
    }

    /// pomelo-jsclient-socket.io `Protocol.encode(id, route, msg)`, read back by pomelo 2.2.7
    /// `Connector.decode`.
    const REQUESTS: [(u32, &str, &str, &str); 5] = [
        (
            1,
            "connector.entryHandler.entry",
            r#"{"uid":"a"}"#,
            "\u{0}\u{0}\u{0}\u{1}\u{1c}connector.entryHandler.entry{\"uid\":\"a\"}",
        ),
        (0x0102_0304, "r", "{}", "\u{1}\u{2}\u{3}\u{4}\u{1}r{}"),
        (
            0xffff_fffe,
            "chat.send",
            "{\"m\":\"héllo 😀\"}",
            "\u{ff}\u{ff}\u{ff}\u{fe}\tchat.send{\"m\":\"héllo 😀\"}",
        ),
        // The route length counts 😀 as two units.
        (5, "é😀", "1", "\u{0}\u{0}\u{0}\u{5}\u{3}é😀1"),
        (300, "", "null", "\u{0}\u{0}\u{1},\u{0}null"),
    ];

    #[test]
    fn requests() {
        for (id, route, body, wire) in REQUESTS {
            assert_eq!(encode_request(id, route, body).as_deref(), Ok(wire));
            assert_eq!(decode_request(wire), Ok(req(id, route, body)), "{wire:?}");
        }
        // JavaScript lengths of the vectors: 44, 8, 30, 9, 9.
        let lens: Vec<usize> = REQUESTS.iter().map(|r| utf16_len(r.3)).collect();
        assert_eq!(lens, [44, 8, 30, 9, 9]);
    }

    #[test]
    fn header_units_are_taken_and_0xff() {
        // `Connector.decode('\u0100\u0101\u0102\u0103\u0101x{}')` = {id: 66051, route: 'x'}.
        assert_eq!(
            decode_request("\u{100}\u{101}\u{102}\u{103}\u{101}x{}"),
            Ok(req(66_051, "x", "{}"))
        );
        assert_eq!(decode_request("\0\0\0\u{7}\u{0}"), Ok(req(7, "", "")));
    }

    #[test]
    fn bad_requests() {
        assert_eq!(decode_request(""), Err(E::TooShort));
        assert_eq!(decode_request("\0\0\0\u{1}"), Err(E::TooShort));
        // 😀 as the last two header units: 0xD83D & 0xff = 0x3d, 0xDE00 & 0xff = 0.
        assert_eq!(decode_request("\0\0\0😀"), Ok(req(0x3d, "", "")));
        assert_eq!(decode_request("\0\0\0\0😀x"), Err(E::SplitsChar));
        assert_eq!(decode_request("\0\0\0\u{1}\u{5}ab{}"), Err(E::RoutePastEnd));
        assert_eq!(decode_request("\0\0\0\u{1}\u{2}😀"), Ok(req(1, "😀", "")));
        assert_eq!(decode_request("\0\0\0\u{1}\u{1}😀"), Err(E::SplitsChar));
        assert_eq!(decode_request("\0\0\0\u{1}\u{3}😀"), Err(E::RoutePastEnd));
        let long = "r".repeat(256);
        assert_eq!(encode_request(1, &long, "{}"), Err(E::RouteTooLong(256)));
        assert_eq!(encode_request(1, &"😀".repeat(128), "{}"), Err(E::RouteTooLong(256)));
        let max = "😀".repeat(127) + "r";
        let wire = encode_request(9, &max, "{}").unwrap();
        assert_eq!(decode_request(&wire), Ok(req(9, &max, "{}")));
    }

    #[test]
    fn server_messages() {
        let mut out = String::new();
        encode_response(7, r#"{"a":1}"#, &mut out);
        assert_eq!(out, r#"{"id":7,"body":{"a":1}}"#);
        let mut out = String::new();
        encode_response(u32::MAX, "null", &mut out);
        assert_eq!(out, r#"{"id":4294967295,"body":null}"#);
        // Node: JSON.stringify({route: 'on"Chat', body: [1]}).
        let mut out = String::new();
        encode_push("on\"Chat", "[1]", &mut out);
        assert_eq!(out, r#"{"route":"on\"Chat","body":[1]}"#);
        // Node: JSON.stringify({route: 'onKick', reason: 'kicked\n"x"'}).
        let mut out = String::new();
        encode_kick("kicked\n\"x\"", &mut out);
        assert_eq!(out, r#"{"route":"onKick","reason":"kicked\n\"x\""}"#);
        let mut push = String::new();
        encode_push("onChat", r#"{"m":"é"}"#, &mut push);
        let mut out = String::new();
        encode_batch(["{\"id\":1,\"body\":{}}", push.as_str()], &mut out);
        assert_eq!(out, r#"[{"id":1,"body":{}},{"route":"onChat","body":{"m":"é"}}]"#);
        let mut out = String::new();
        encode_batch([], &mut out);
        assert_eq!(out, "[]");
        let parsed: serde_json::Value = serde_json::from_str(&push).unwrap();
        assert_eq!(parsed["body"]["m"], "é");
    }

    #[test]
    fn every_prefix_decodes_or_fails_cleanly() {
        for (_, _, _, wire) in REQUESTS {
            for cut in (0..=wire.len()).filter(|&c| wire.is_char_boundary(c)) {
                if let Ok(r) = decode_request(&wire[..cut]) {
                    assert!(
                        utf16_len(r.route) + utf16_len(r.body) + HEADER_UNITS <= utf16_len(wire)
                    );
                }
            }
        }
    }

    proptest! {
        #[test]
        fn decode_never_panics(s in any::<String>(), body in prop::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode_request(&s);
            let _ = decode_request(&String::from_utf8_lossy(&body));
        }

        #[test]
        fn request_round_trip(id in any::<u32>(), route in ".{0,100}", body in ".{0,40}") {
            match encode_request(id, &route, &body) {
                Ok(wire) => prop_assert_eq!(decode_request(&wire), Ok(req(id, &route, &body))),
                Err(e) => prop_assert_eq!(e, E::RouteTooLong(utf16_len(&route))),
            }
        }
    }
}

//! Socket.IO as a frontend for Pomelo clients, sans-IO: the Engine.IO transport layer, the
//! Socket.IO packets above it, the 0.9 protocol, and the Pomelo message layer on top.
//!
//! Three generations are on the wire, and the server must speak each one the client speaks:
//!
//! | socket.io   | Socket.IO protocol | Engine.IO | codecs                              |
//! |-------------|--------------------|-----------|-------------------------------------|
//! | 0.9         | 1                  | (none)    | [`v09`]                             |
//! | 1.x - 2.x   | 4                  | 3         | [`engineio`] `V3` + [`packet`]      |
//! | 3.x - 4.x   | 5                  | 4         | [`engineio`] `V4` + [`packet`]      |
//!
//! ```text
//! EIO 3/4, WebSocket text frame:     4  2["message","<pomelo message>"]
//!                                    |  '- Socket.IO packet (packet::decode)
//!                                    '- Engine.IO packet type: message (engineio::decode_packet)
//! EIO 3 polling body:                <utf16 len>:<packet><utf16 len>:<packet>...
//! EIO 4 polling body:                <packet> 0x1E <packet> 0x1E ...
//! 0.9 frame or polling body:         type:id:endpoint:data, or several framed as
//!                                    U+FFFD <utf16 len> U+FFFD <packet> ...
//! Pomelo message (the string above): 4 chars id | 1 char route len | route | JSON body
//! ```
//!
//! # Layout
//! - [`engineio`]: Engine.IO 3 and 4 packets and polling payloads; [`engineio::handshake`]:
//!   the `open` packet and the HTTP error body.
//! - [`packet`]: Socket.IO protocol 4 / 5 packets inside an Engine.IO message, and the
//!   `"message"` event Pomelo's connector listens to.
//! - [`v09`]: socket.io 0.9 packets, polling frames, the handshake body and the error packet.
//! - [`pomelo`]: the Pomelo request a client sends inside a message, and the JSON the server
//!   answers with (response, push, kick, batch).
//! - Here: [`utf16_len`] and [`split_utf16`], since every length these protocols count is a
//!   JavaScript string length.
//!
//! # Invariants
//! - No sockets, no clocks: decoders read a `&str` (or a `&[u8]` polling body) and borrow from
//!   it; encoders append to a [`bytes::BytesMut`] (or a `String` for the Pomelo layer, whose
//!   output is itself a JavaScript string carried inside a Socket.IO packet).
//! - Lengths are UTF-16 code units wherever the reference implementation counts
//!   `String.prototype.length` (Engine.IO 3 text payloads, 0.9 frames, Pomelo's route); a cut
//!   that would fall inside a surrogate pair is an error, never a panic.
//! - Bodies are whole: the transport (WebSocket message, HTTP body) delimits them, so there is
//!   no "need more bytes" here; a short input is an error.
//! - No decoder panics on any input, and every fault is a variant of the module's error enum.
//! - Only text is served: binary Engine.IO packets and Socket.IO binary events are refused
//!   (decoded far enough to be named, then left to the caller to refuse).
//! - JSON strings are written exactly as JavaScript's `JSON.stringify` writes them (the same
//!   escapes as `serde_json`), so a client sees the bytes a Node server would send.

pub mod engineio;
pub mod packet;
pub mod pomelo;
pub mod v09;

mod json;

/// The length of `s` as JavaScript counts it (`String.prototype.length`): UTF-16 code units.
///
/// Every char is one unit except those above U+FFFF (4 UTF-8 bytes), which are two.
#[inline]
pub fn utf16_len(s: &str) -> usize {
    s.bytes().map(|b| usize::from(b & 0xC0 != 0x80) + usize::from(b >= 0xF0)).sum()
}

/// Splits `s` after its first `units` UTF-16 code units (JavaScript's `substr(0, units)` and the
/// rest).
///
/// `None` when `s` is shorter than `units`, or when the cut would fall between the two halves
/// of a surrogate pair (a Rust `&str` cannot hold half a char).
pub fn split_utf16(s: &str, units: usize) -> Option<(&str, &str)> {
    let mut counted = 0usize;
    for (at, c) in s.char_indices() {
        if counted == units {
            return s.split_at_checked(at);
        }
        if counted > units {
            return None;
        }
        counted += c.len_utf16();
    }
    (counted == units).then_some((s, ""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn utf16_len_counts_like_javascript() {
        // Lengths from Node's `String.prototype.length`.
        for (s, len) in
            [("", 0), ("a", 1), ("é", 1), ("€", 1), ("😀", 2), ("4😀a", 4), ("\u{ffff}", 1)]
        {
            assert_eq!(utf16_len(s), len, "{s:?}");
        }
    }

    #[test]
    fn split_utf16_cuts_on_code_units() {
        assert_eq!(split_utf16("4€1:2", 2), Some(("4€", "1:2")));
        assert_eq!(split_utf16("abc", 0), Some(("", "abc")));
        assert_eq!(split_utf16("abc", 3), Some(("abc", "")));
        assert_eq!(split_utf16("abc", 4), None);
        assert_eq!(split_utf16("", 0), Some(("", "")));
        assert_eq!(split_utf16("", 1), None);
        // 😀 is two units: a cut after one of them would split the pair.
        assert_eq!(split_utf16("a😀b", 3), Some(("a😀", "b")));
        assert_eq!(split_utf16("a😀b", 2), None);
        assert_eq!(split_utf16("😀", 1), None);
        assert_eq!(split_utf16("😀", 2), Some(("😀", "")));
    }

    proptest! {
        #[test]
        fn utf16_len_matches_encode_utf16(s in any::<String>()) {
            prop_assert_eq!(utf16_len(&s), s.encode_utf16().count());
        }

        #[test]
        fn split_utf16_matches_the_units(s in any::<String>(), units in 0usize..40) {
            let all: Vec<u16> = s.encode_utf16().collect();
            match split_utf16(&s, units) {
                Some((head, tail)) => {
                    prop_assert_eq!(format!("{head}{tail}"), s.clone());
                    prop_assert_eq!(head.encode_utf16().collect::<Vec<_>>(), all[..units].to_vec());
                }
                None => prop_assert!(
                    units > all.len() || (0xDC00..0xE000).contains(&all[units])
                ),
            }
        }
    }
}

//! Engine.IO packets (protocol 3 for socket.io 1.x-2.x, 4 for 3.x-4.x) and the polling payloads
//! that carry several of them in one HTTP body; the `open` packet and the HTTP error body are
//! in [`handshake`] (re-exported here).
//!
//! ```text
//! packet (a WebSocket text frame, or one element of a payload):
//!   <type: '0'..'6'> <data: the rest, any text>
//!   0 open  1 close  2 ping  3 pong  4 message  5 upgrade  6 noop     'b': base64 binary
//!
//! EIO 3 text payload (engine.io-parser 2.x), len in UTF-16 code units:
//!   <len>:<packet><len>:<packet>...                 "2:4€1:2" = [4€] [2]
//! EIO 3 binary payload (engine.io-client 3 over XHR2, application/octet-stream):
//!   +------+----------------------+------+--------------------------+
//!   | 0x00 | len: digits 0x00-0x09| 0xFF | packet, UTF-8, len bytes  |  ... repeated
//!   +------+----------------------+------+--------------------------+
//!     0x01 in the first byte: a binary packet (refused)
//! EIO 4 payload (engine.io-parser 5.x):
//!   <packet> 0x1E <packet> 0x1E <packet>             "4€\x1e2" = [4€] [2]
//! ```
//!
//! # Invariants
//! - A packet's type is one ASCII byte, so its data starts on a char boundary; an empty
//!   packet, an unknown type and a binary packet (`b` + base64, or flag 0x01 in an EIO 3
//!   binary payload) are errors: shaddock serves text only.
//! - A payload is decoded whole or refused whole, as engine.io-parser does ("ignoring
//!   payload"): a length that is missing, not digits, too large for a `usize`, unterminated,
//!   past the end or cutting a surrogate pair in two, a part that is not UTF-8, and more than
//!   `max_packets` packets are all errors. A zero-length packet is an error too (engine.io-parser
//!   2.x skips a `0:` element, but no client writes one).
//! - An EIO 3 body is told apart by its first byte: 0x00 / 0x01 is the binary form, anything
//!   else is text (a text payload starts with a digit), so the Content-Type need not be trusted.
//! - Encoders never fail: a payload's packets are already encoded text.

use bytes::{BufMut, BytesMut};

use crate::protocol::socketio::{json, split_utf16, utf16_len};

pub mod handshake;

pub use handshake::{HttpErrorCode, Open, encode_open};

/// The Engine.IO protocol revision, the `EIO` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EioVersion {
    /// `EIO=3`: socket.io 1.x-2.x; lengths before packets in polling payloads; the client pings.
    V3,
    /// `EIO=4`: socket.io 3.x-4.x; 0x1E between packets; the server pings.
    V4,
}

impl EioVersion {
    /// The version named by an `EIO` query value (`"3"` or `"4"`).
    pub fn from_query(eio: &str) -> Option<EioVersion> {
        match eio {
            "3" => Some(EioVersion::V3),
            "4" => Some(EioVersion::V4),
            _ => None,
        }
    }
}

/// The Engine.IO packet type, the first character of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    /// `0`: the handshake, server → client, with the [`Open`] JSON.
    Open,
    /// `1`: the transport can be closed.
    Close,
    /// `2`: heartbeat (client → server in EIO 3, server → client in EIO 4), and `2probe`.
    Ping,
    /// `3`: the heartbeat answer, and `3probe`.
    Pong,
    /// `4`: a message: a Socket.IO packet follows.
    Message,
    /// `5`: the client switches to the probed transport.
    Upgrade,
    /// `6`: nothing (ends a pending poll during an upgrade).
    Noop,
}

impl PacketType {
    /// The type with this ASCII digit, or `None`.
    pub fn from_byte(b: u8) -> Option<PacketType> {
        match b {
            b'0' => Some(PacketType::Open),
            b'1' => Some(PacketType::Close),
            b'2' => Some(PacketType::Ping),
            b'3' => Some(PacketType::Pong),
            b'4' => Some(PacketType::Message),
            b'5' => Some(PacketType::Upgrade),
            b'6' => Some(PacketType::Noop),
            _ => None,
        }
    }

    /// The ASCII digit written for this type.
    pub fn as_byte(self) -> u8 {
        match self {
            PacketType::Open => b'0',
            PacketType::Close => b'1',
            PacketType::Ping => b'2',
            PacketType::Pong => b'3',
            PacketType::Message => b'4',
            PacketType::Upgrade => b'5',
            PacketType::Noop => b'6',
        }
    }
}

/// One decoded text packet, its data borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The packet type.
    pub kind: PacketType,
    /// Everything after the type character; may be empty.
    pub data: &'a str,
}

/// A fault in an Engine.IO packet or payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EioError {
    /// A polling body with nothing in it.
    #[error("empty payload")]
    EmptyPayload,
    /// A packet with no type character (an empty frame, `0:`, two 0x1E in a row).
    #[error("empty packet")]
    EmptyPacket,
    /// A packet whose first character is not `0`..`6` (or `b`).
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// A binary packet: `b` + base64, or flag 0x01 in an EIO 3 binary payload.
    #[error("binary packets are not supported")]
    Binary,
    /// A text payload, or a string packet of a binary payload, that is not UTF-8.
    #[error("payload is not UTF-8")]
    NotUtf8,
    /// A length terminator (`:` or 0xFF) with no digits before it.
    #[error("packet length is missing")]
    LengthMissing,
    /// A length with something other than a digit in it.
    #[error("packet length is not a number")]
    LengthNotDigits,
    /// A length too large to be real.
    #[error("packet length too large")]
    LengthOverflow,
    /// The payload ends inside a length, before its `:` or 0xFF.
    #[error("packet length not terminated")]
    LengthUnterminated,
    /// A length that runs past the end of the payload.
    #[error("packet runs past the end of the payload")]
    LengthPastEnd,
    /// A length (in UTF-16 units) that ends between the two halves of a surrogate pair.
    #[error("packet length splits a character")]
    LengthSplitsChar,
    /// An EIO 3 binary payload element whose first byte is neither 0x00 nor 0x01.
    #[error("unknown payload flag {0:#04x}")]
    UnknownFlag(u8),
    /// More packets in one payload than the caller allows.
    #[error("more than {0} packets in one payload")]
    TooManyPackets(usize),
}

/// The byte between packets of an EIO 4 payload (ASCII record separator).
pub const RECORD_SEPARATOR: u8 = 0x1E;
/// Ends the length of an EIO 3 binary payload element.
const BINARY_LENGTH_END: u8 = 0xFF;

/// Decodes one text packet: a WebSocket text frame, or one element of a payload.
pub fn decode_packet(text: &str) -> Result<Packet<'_>, EioError> {
    let Some(&first) = text.as_bytes().first() else {
        return Err(EioError::EmptyPacket);
    };
    if first == b'b' {
        return Err(EioError::Binary);
    }
    let Some(kind) = PacketType::from_byte(first) else {
        return Err(EioError::UnknownType(text.chars().next().unwrap_or_default()));
    };
    // The type is one ASCII byte, so byte 1 starts a char.
    Ok(Packet { kind, data: text.get(1..).unwrap_or_default() })
}

/// Appends one packet: its type digit and `data`.
pub fn encode_packet(kind: PacketType, data: &str, out: &mut BytesMut) {
    out.reserve(1 + data.len());
    out.put_u8(kind.as_byte());
    out.put_slice(data.as_bytes());
}

/// Decodes a polling request body into its packets (see the module diagram for the forms).
///
/// The whole body is refused on the first fault, and when it holds more than `max_packets`.
pub fn decode_payload<'a>(
    version: EioVersion,
    body: &'a [u8],
    max_packets: usize,
) -> Result<Vec<Packet<'a>>, EioError> {
    let Some(&first) = body.first() else {
        return Err(EioError::EmptyPayload);
    };
    let mut packets = Vec::new();
    let mut push = |packet: Packet<'a>| {
        if packets.len() == max_packets {
            return Err(EioError::TooManyPackets(max_packets));
        }
        packets.push(packet);
        Ok(())
    };
    match version {
        EioVersion::V4 => {
            let text = std::str::from_utf8(body).map_err(|_| EioError::NotUtf8)?;
            for part in text.split(char::from(RECORD_SEPARATOR)) {
                push(decode_packet(part)?)?;
            }
        }
        EioVersion::V3 if first <= 0x01 => {
            let mut rest = body;
            while let Some((&flag, tail)) = rest.split_first() {
                match flag {
                    0x00 => {}
                    0x01 => return Err(EioError::Binary),
                    other => return Err(EioError::UnknownFlag(other)),
                }
                let (len, tail) = read_length(tail, BINARY_LENGTH_END, Some)?;
                let (packet, tail) = tail.split_at_checked(len).ok_or(EioError::LengthPastEnd)?;
                let packet = std::str::from_utf8(packet).map_err(|_| EioError::NotUtf8)?;
                push(decode_packet(packet)?)?;
                rest = tail;
            }
        }
        EioVersion::V3 => {
            let mut rest = std::str::from_utf8(body).map_err(|_| EioError::NotUtf8)?;
            while !rest.is_empty() {
                let (len, tail) = read_length(rest.as_bytes(), b':', |b| b.checked_sub(b'0'))?;
                // `read_length` stopped just after the ASCII ':', a char boundary.
                let tail = rest.get(rest.len() - tail.len()..).unwrap_or_default();
                let Some((packet, tail)) = split_utf16(tail, len) else {
                    return Err(if utf16_len(tail) < len {
                        EioError::LengthPastEnd
                    } else {
                        EioError::LengthSplitsChar
                    });
                };
                push(decode_packet(packet)?)?;
                rest = tail;
            }
        }
    }
    Ok(packets)
}

/// Reads a decimal length at the front of `buf` up to `end`, each byte mapped to its digit
/// value by `digit` (ASCII `'0'..'9'`, or the raw bytes 0..9 of the binary form); returns the
/// length and what follows `end`.
fn read_length(
    buf: &[u8],
    end: u8,
    digit: impl Fn(u8) -> Option<u8>,
) -> Result<(usize, &[u8]), EioError> {
    let mut len: usize = 0;
    for (i, &b) in buf.iter().enumerate() {
        if b == end {
            if i == 0 {
                return Err(EioError::LengthMissing);
            }
            return Ok((len, buf.get(i + 1..).unwrap_or_default()));
        }
        let d = digit(b).filter(|&d| d <= 9).ok_or(EioError::LengthNotDigits)?;
        len = len
            .checked_mul(10)
            .and_then(|l| l.checked_add(usize::from(d)))
            .ok_or(EioError::LengthOverflow)?;
    }
    Err(EioError::LengthUnterminated)
}

/// Appends a polling response body made of already encoded packets (`4hello`, `2`, ...).
///
/// EIO 3: `<UTF-16 length>:<packet>` each, and `0:` for none (as engine.io-parser 2.x writes
/// it); EIO 4: the packets joined by 0x1E, nothing for none.
pub fn encode_payload<'a>(
    version: EioVersion,
    packets: impl IntoIterator<Item = &'a str>,
    out: &mut BytesMut,
) {
    let mut any = false;
    for packet in packets {
        match version {
            EioVersion::V3 => encode_payload_item(version, packet, out),
            EioVersion::V4 => {
                out.reserve(1 + packet.len());
                if any {
                    out.put_u8(RECORD_SEPARATOR);
                }
                out.put_slice(packet.as_bytes());
            }
        }
        any = true;
    }
    if !any && version == EioVersion::V3 {
        out.put_slice(b"0:");
    }
}

/// Appends one packet as an element of a payload that grows by appending: EIO 3
/// `<UTF-16 length>:<packet>`, EIO 4 `0x1E <packet>` (so that a body of several is their
/// concatenation, but for EIO 4's first separator, which [`payload_body_skip`] counts).
pub fn encode_payload_item(version: EioVersion, packet: &str, out: &mut BytesMut) {
    match version {
        EioVersion::V3 => {
            let len = utf16_len(packet) as u64;
            out.reserve(json::decimal_len(len) + 1 + packet.len());
            json::put_decimal(len, out);
            out.put_u8(b':');
        }
        EioVersion::V4 => {
            out.reserve(1 + packet.len());
            out.put_u8(RECORD_SEPARATOR);
        }
    }
    out.put_slice(packet.as_bytes());
}

/// engine.io-parser 1.x's `utf8.encode` of a packet in a text payload: each byte of its UTF-8
/// as one char (U+0000..U+00FF), so that its length counts bytes.
pub fn to_byte_string(text: &str) -> String {
    text.bytes().map(char::from).collect()
}

/// The inverse of [`to_byte_string`]: `None` when a char is past U+00FF or the bytes are not
/// UTF-8.
pub fn from_byte_string(text: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = text.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect();
    String::from_utf8(bytes?).ok()
}

/// How many leading bytes of a run of [`encode_payload_item`]s a response body leaves out: EIO
/// 4's first separator.
pub fn payload_body_skip(version: EioVersion) -> usize {
    match version {
        EioVersion::V3 => 0,
        EioVersion::V4 => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use EioError as E;
    use EioVersion::{V3, V4};
    use PacketType::{Close, Message, Noop, Ping, Pong, Upgrade};

    #[test]
    fn byte_strings_are_engine_io_1x_utf8() {
        let text = "42[\"héllo ☃ 😀\"]";
        let bytes = to_byte_string(text);
        assert_eq!(bytes.chars().count(), text.len());
        assert!(bytes.contains("h\u{c3}\u{a9}llo"));
        assert_eq!(from_byte_string(&bytes).as_deref(), Some(text));
        assert_eq!(from_byte_string("☃"), None);
        assert_eq!(from_byte_string("\u{c3}"), None);
    }

    const MAX: usize = 64;

    fn pkt(kind: PacketType, data: &str) -> Packet<'_> {
        Packet { kind, data }
    }

    fn payload(version: EioVersion, packets: &[&str]) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_payload(version, packets.iter().copied(), &mut out);
        out.to_vec()
    }

    /// Every packet type, as engine.io-parser 2.x and 5.x encode it.
    const PACKETS: [(PacketType, &str, &str); 9] = [
        (PacketType::Open, "", "0"),
        (Close, "", "1"),
        (Ping, "", "2"),
        (Ping, "probe", "2probe"),
        (Pong, "probe", "3probe"),
        (Message, "héllo €😀", "4héllo €😀"),
        (Message, "", "4"),
        (Upgrade, "", "5"),
        (Noop, "", "6"),
    ];

    #[test]
    fn every_packet_type() {
        for (kind, data, wire) in PACKETS {
            let mut out = BytesMut::new();
            encode_packet(kind, data, &mut out);
            assert_eq!(&out[..], wire.as_bytes());
            assert_eq!(decode_packet(wire), Ok(pkt(kind, data)), "{wire}");
            assert_eq!(PacketType::from_byte(kind.as_byte()), Some(kind));
        }
    }

    #[test]
    fn bad_packets() {
        assert_eq!(decode_packet(""), Err(E::EmptyPacket));
        assert_eq!(decode_packet("7"), Err(E::UnknownType('7')));
        assert_eq!(decode_packet("x4"), Err(E::UnknownType('x')));
        assert_eq!(decode_packet("€4"), Err(E::UnknownType('€')));
        assert_eq!(decode_packet("\u{1e}"), Err(E::UnknownType('\u{1e}')));
        // Base64 binary, `b` + type + base64 (EIO 3) or `b` + base64 (EIO 4).
        assert_eq!(decode_packet("b4AQIDBA=="), Err(E::Binary));
        assert_eq!(decode_packet("bAQIDBA=="), Err(E::Binary));
    }

    #[test]
    fn v3_text_payload_counts_utf16_units() {
        // engine.io-parser 2.2.1 encodePayload([4€], [2], [4😀a]).
        let wire = "2:4€1:24:4😀a";
        assert_eq!(payload(V3, &["4€", "2", "4😀a"]), wire.as_bytes());
        let want = vec![pkt(Message, "€"), pkt(Ping, ""), pkt(Message, "😀a")];
        assert_eq!(decode_payload(V3, wire.as_bytes(), MAX), Ok(want));
        assert_eq!(payload(V3, &[]), b"0:");
        assert_eq!(decode_payload(V3, b"6:2probe", MAX), Ok(vec![pkt(Ping, "probe")]));
        let long = format!("4{}", "x".repeat(120));
        let wire = format!("121:{long}1:3");
        assert_eq!(payload(V3, &[&long, "3"]), wire.as_bytes());
        assert_eq!(decode_payload(V3, wire.as_bytes(), MAX).unwrap().len(), 2);
    }

    #[test]
    fn v3_binary_payload() {
        // engine.io-parser 2.2.1 encodePayloadAsBinary([4€], [2]): UTF-8, lengths in bytes.
        let wire = [0, 4, 255, b'4', 0xe2, 0x82, 0xac, 0, 1, 255, b'2'];
        assert_eq!(decode_payload(V3, &wire, MAX), Ok(vec![pkt(Message, "€"), pkt(Ping, "")]));
        // A 13-byte packet: length digits 1, 3.
        let mut wire = vec![0, 1, 3, 255, b'4'];
        wire.extend_from_slice(&[b'x'; 12]);
        assert_eq!(decode_payload(V3, &wire, MAX), Ok(vec![pkt(Message, "xxxxxxxxxxxx")]));
    }

    #[test]
    fn v4_payload_is_separated_by_0x1e() {
        // engine.io-parser 5.2 encodePayload([4€], [2], [4😀a]).
        let wire = "4€\u{1e}2\u{1e}4😀a";
        assert_eq!(payload(V4, &["4€", "2", "4😀a"]), wire.as_bytes());
        let want = vec![pkt(Message, "€"), pkt(Ping, ""), pkt(Message, "😀a")];
        assert_eq!(decode_payload(V4, wire.as_bytes(), MAX), Ok(want));
        assert_eq!(payload(V4, &[]), b"");
        assert_eq!(payload(V4, &["6"]), b"6");
        // The protocol documentation's example.
        let doc = b"4hello\x1e2\x1e4world";
        let want = vec![pkt(Message, "hello"), pkt(Ping, ""), pkt(Message, "world")];
        assert_eq!(decode_payload(V4, doc, MAX), Ok(want));
    }

    #[test]
    fn bad_payloads() {
        let err = |v, body: &[u8]| decode_payload(v, body, MAX).unwrap_err();
        for v in [V3, V4] {
            assert_eq!(err(v, b""), E::EmptyPayload);
            assert_eq!(err(v, b"\xff"), E::NotUtf8);
        }
        // EIO 3 text.
        assert_eq!(err(V3, b"2:4\xe2\x82"), E::NotUtf8);
        assert_eq!(err(V3, "2:4€1".as_bytes()), E::LengthUnterminated);
        assert_eq!(err(V3, "3:4€".as_bytes()), E::LengthPastEnd);
        assert_eq!(err(V3, "2:4😀".as_bytes()), E::LengthSplitsChar);
        assert_eq!(err(V3, b"a:4"), E::LengthNotDigits);
        assert_eq!(err(V3, b"1x:4"), E::LengthNotDigits);
        assert_eq!(err(V3, b":4"), E::LengthMissing);
        assert_eq!(err(V3, b"99999999999999999999999:4"), E::LengthOverflow);
        assert_eq!(err(V3, b"18446744073709551615:4"), E::LengthPastEnd);
        assert_eq!(err(V3, b"1"), E::LengthUnterminated);
        assert_eq!(err(V3, b"0:"), E::EmptyPacket);
        assert_eq!(err(V3, b"1:41:"), E::LengthPastEnd);
        assert_eq!(err(V3, b"1:4x"), E::LengthNotDigits);
        assert_eq!(err(V3, b"1:9"), E::UnknownType('9'));
        assert_eq!(err(V3, b"10:b4AQIDBA=="), E::Binary);
        // EIO 3 binary.
        assert_eq!(err(V3, &[1, 1, 255, 4]), E::Binary);
        assert_eq!(err(V3, &[0, 1, 255, b'4', 1, 1, 255, 4]), E::Binary);
        assert_eq!(err(V3, &[0, 1, 255, b'4', 2]), E::UnknownFlag(2));
        assert_eq!(err(V3, &[0]), E::LengthUnterminated);
        assert_eq!(err(V3, &[0, 1]), E::LengthUnterminated);
        assert_eq!(err(V3, &[0, 255, b'4']), E::LengthMissing);
        assert_eq!(err(V3, &[0, 12, 255, b'4']), E::LengthNotDigits);
        assert_eq!(err(V3, &[0, 5, 255, b'4']), E::LengthPastEnd);
        assert_eq!(err(V3, &[0, 0, 255]), E::EmptyPacket);
        assert_eq!(err(V3, &[0, 2, 255, b'4', 0xff]), E::NotUtf8);
        assert_eq!(err(V3, &[0, 2, 255, b'4', 0xe2, 0x82, 0xac]), E::NotUtf8);
        assert_eq!(err(V3, &[0, 2, 255, b'4', b'a', 0x82]), E::UnknownFlag(0x82));
        let mut huge = vec![0];
        huge.extend([9; 40]);
        huge.push(255);
        assert_eq!(err(V3, &huge), E::LengthOverflow);
        // EIO 4.
        assert_eq!(err(V4, b"\x1e"), E::EmptyPacket);
        assert_eq!(err(V4, b"4a\x1e"), E::EmptyPacket);
        assert_eq!(err(V4, b"\x1e4a"), E::EmptyPacket);
        assert_eq!(err(V4, b"4a\x1e\x1e2"), E::EmptyPacket);
        assert_eq!(err(V4, b"4a\x1ebAQIDBA=="), E::Binary);
        assert_eq!(err(V4, b"9"), E::UnknownType('9'));
        assert_eq!(err(V4, b"4a\x1e4\xc3"), E::NotUtf8);
    }

    #[test]
    fn packet_count_limit() {
        for (v, body) in [(V3, &b"1:21:21:2"[..]), (V4, b"2\x1e2\x1e2")] {
            assert_eq!(decode_payload(v, body, 3).map(|p| p.len()), Ok(3));
            assert_eq!(decode_payload(v, body, 2), Err(E::TooManyPackets(2)));
            assert_eq!(decode_payload(v, body, 0), Err(E::TooManyPackets(0)));
        }
    }

    /// Valid bodies of both versions, for the prefix sweep.
    fn valid_bodies() -> Vec<(EioVersion, Vec<u8>)> {
        vec![
            (V3, "2:4€1:24:4😀a".as_bytes().to_vec()),
            (V3, vec![0, 4, 255, b'4', 0xe2, 0x82, 0xac, 0, 1, 255, b'2']),
            (V3, b"6:2probe".to_vec()),
            (V4, "4€\x1e2\x1e4😀a".as_bytes().to_vec()),
            (V4, b"4hello\x1e2\x1e4world".to_vec()),
        ]
    }

    #[test]
    fn every_prefix_decodes_or_fails_cleanly() {
        for (v, body) in valid_bodies() {
            assert!(decode_payload(v, &body, MAX).is_ok());
            for cut in 0..body.len() {
                let _ = decode_payload(v, &body[..cut], MAX);
                // A trailing byte never panics either.
                let mut more = body[..cut].to_vec();
                more.push(body[cut]);
                more.push(0x1e);
                let _ = decode_payload(v, &more, MAX);
                if let Ok(text) = std::str::from_utf8(&body[..cut]) {
                    let _ = decode_packet(text);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn decoders_never_panic(body in prop::collection::vec(any::<u8>(), 0..64), max in 0usize..8) {
            for v in [V3, V4] {
                if let Ok(packets) = decode_payload(v, &body, max) {
                    prop_assert!(!packets.is_empty() && packets.len() <= max);
                }
            }
            let mut binary = vec![0u8];
            binary.extend(body.iter().map(|b| b % 11));
            let _ = decode_payload(V3, &binary, max);
            let text = String::from_utf8_lossy(&body);
            let _ = decode_packet(&text);
        }

        #[test]
        fn payload_round_trip(
            data in prop::collection::vec("[^\u{1e}]{0,20}", 1..6),
            kinds in prop::collection::vec(0u8..7, 6),
        ) {
            let packets: Vec<String> = data
                .iter()
                .zip(&kinds)
                .map(|(d, k)| format!("{}{d}", char::from(b'0' + k)))
                .collect();
            let refs: Vec<&str> = packets.iter().map(String::as_str).collect();
            for v in [V3, V4] {
                let body = payload(v, &refs);
                let decoded = decode_payload(v, &body, MAX).unwrap();
                let again: Vec<String> = decoded
                    .iter()
                    .map(|p| format!("{}{}", char::from(p.kind.as_byte()), p.data))
                    .collect();
                prop_assert_eq!(&again, &packets);
            }
        }
    }
}

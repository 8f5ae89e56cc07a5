//! socket.io 0.9 (protocol 1, before Engine.IO): packets, the frames that put several in one
//! polling body, the handshake body and the error packet (socket.io 0.9 `lib/parser.js` and
//! `lib/manager.js`).
//!
//! ```text
//! packet:  <type> ':' [<id>['+']] ':' [<endpoint>] [':' <data>]
//!   type: 0 disconnect  1 connect  2 heartbeat  3 message  4 json  5 event  6 ack
//!         7 error  8 noop
//!   id:   digits; a trailing '+' asks for an ack carrying data
//!   "3:::hello"   "2::"   "1::/chat"   "1::/chat:?token=x"   "0::"
//!   "5:1+::{"name":"message","args":["hi"]}"   "6:::1+["x"]"   "7:::1+0"
//!
//! several packets in one polling body (len in UTF-16 code units):
//!   U+FFFD <len> U+FFFD <packet> U+FFFD <len> U+FFFD <packet> ...
//!
//! handshake body:  <sid>:<heartbeat timeout>:<close timeout>:<transport>,<transport>...
//! error data:      <reason>[+<advice>]   reason 0 transport not supported,
//!                                        1 client not handshaken, 2 unauthorized
//!                                        advice 0 reconnect
//! ```
//!
//! # Invariants
//! - [`decode`] splits a packet into its four fields and borrows them; the data may hold
//!   `:` (only the first three colons are separators), and a packet that stops after its
//!   endpoint has empty data, as 0.9 writes every packet without data (`2::`, `1::/chat`).
//!   A type that is not one digit `0`..`8`, fewer than two colons, and an id that is not
//!   digits (with an optional trailing `+`) are errors; 0.9's unanchored regular expression
//!   would let some of these through as packets of no type, which it then drops. A `+` with
//!   no digits is read as no id, as 0.9 reads it.
//! - [`encode`] writes what 0.9's `encodePacket` writes: no id, and no `:data` part when the
//!   data is empty.
//! - [`decode_frames`] refuses the whole body on the first fault: a frame that is not
//!   U+FFFD, a length that is missing, not digits, too large, past the end or cutting a
//!   surrogate pair, an empty packet, text after the last frame, or more than `max_packets`.

use bytes::{BufMut, BytesMut};
use serde::Deserialize;

use crate::protocol::socketio::json::{self, FirstString, IsMessage};
use crate::protocol::socketio::{split_utf16, utf16_len};

/// The 0.9 packet type, the first character of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V09Type {
    /// `0`: leave an endpoint, or the whole connection when the endpoint is empty.
    Disconnect,
    /// `1`: connect to an endpoint (its data is the query string); the server's `1::` confirms.
    Connect,
    /// `2`: heartbeat, both ways.
    Heartbeat,
    /// `3`: a message; its data is the text.
    Message,
    /// `4`: a JSON message.
    Json,
    /// `5`: an event, `{"name":..,"args":[..]}`.
    Event,
    /// `6`: an ack, `<id>[+<JSON args>]`.
    Ack,
    /// `7`: an error, `<reason>[+<advice>]`.
    Error,
    /// `8`: nothing (closes a pending poll).
    Noop,
}

impl V09Type {
    /// The type with this ASCII digit, or `None`.
    pub fn from_byte(b: u8) -> Option<V09Type> {
        match b {
            b'0' => Some(V09Type::Disconnect),
            b'1' => Some(V09Type::Connect),
            b'2' => Some(V09Type::Heartbeat),
            b'3' => Some(V09Type::Message),
            b'4' => Some(V09Type::Json),
            b'5' => Some(V09Type::Event),
            b'6' => Some(V09Type::Ack),
            b'7' => Some(V09Type::Error),
            b'8' => Some(V09Type::Noop),
            _ => None,
        }
    }

    /// The ASCII digit written for this type.
    pub fn as_byte(self) -> u8 {
        match self {
            V09Type::Disconnect => b'0',
            V09Type::Connect => b'1',
            V09Type::Heartbeat => b'2',
            V09Type::Message => b'3',
            V09Type::Json => b'4',
            V09Type::Event => b'5',
            V09Type::Ack => b'6',
            V09Type::Error => b'7',
            V09Type::Noop => b'8',
        }
    }
}

/// One decoded 0.9 packet, its fields borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V09Packet<'a> {
    /// The packet type.
    pub kind: V09Type,
    /// The message id, empty when none; a trailing `+` asks for an ack with data.
    pub id: &'a str,
    /// The endpoint (namespace), empty for the default one.
    pub endpoint: &'a str,
    /// Everything after the third colon; may be empty.
    pub data: &'a str,
}

/// A fault in a 0.9 packet or polling body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum V09Error {
    /// A packet with nothing in it.
    #[error("empty packet")]
    Empty,
    /// A polling body with nothing in it.
    #[error("empty body")]
    EmptyBody,
    /// A first character that is not `0`..`8`.
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// A packet without the `:` after its type or after its id.
    #[error("missing ':' separator")]
    MissingSeparator,
    /// An id that is not digits with an optional trailing `+`.
    #[error("message id is not a number")]
    BadId,
    /// Framed body: where a frame should start, something other than U+FFFD.
    #[error("expected a U+FFFD frame marker")]
    ExpectedFrame,
    /// Framed body: two U+FFFD with no digits between them.
    #[error("frame length is missing")]
    LengthMissing,
    /// Framed body: a length with something other than a digit in it.
    #[error("frame length is not a number")]
    LengthNotDigits,
    /// Framed body: a length too large to be real.
    #[error("frame length too large")]
    LengthOverflow,
    /// Framed body: the body ends inside a length.
    #[error("frame length not terminated")]
    LengthUnterminated,
    /// Framed body: a length that runs past the end of the body.
    #[error("frame runs past the end of the body")]
    LengthPastEnd,
    /// Framed body: a length that ends between the two halves of a surrogate pair.
    #[error("frame length splits a character")]
    LengthSplitsChar,
    /// More packets in one body than the caller allows.
    #[error("more than {0} packets in one body")]
    TooManyPackets(usize),
    /// [`event_message`] on a packet that is not an event.
    #[error("not an event packet: {0:?}")]
    NotAnEvent(V09Type),
    /// Event data that is not a JSON object with a string `name` and an array `args`.
    #[error("invalid event payload")]
    InvalidEvent,
}

/// Decodes one packet: `type:id:endpoint` and, after a third `:`, the data.
pub fn decode(text: &str) -> Result<V09Packet<'_>, V09Error> {
    let Some(&first) = text.as_bytes().first() else {
        return Err(V09Error::Empty);
    };
    let Some(kind) = V09Type::from_byte(first) else {
        return Err(V09Error::UnknownType(text.chars().next().unwrap_or_default()));
    };
    // Every cut is next to an ASCII byte (the type or a ':'), so on a char boundary.
    let rest = text.get(1..).unwrap_or_default();
    let rest = rest.strip_prefix(':').ok_or(V09Error::MissingSeparator)?;
    let (mut id, rest) = rest.split_once(':').ok_or(V09Error::MissingSeparator)?;
    let digits = id.strip_suffix('+').unwrap_or(id);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(V09Error::BadId);
    }
    if digits.is_empty() {
        // A `+` with no id: 0.9 reads no id (and so asks for no ack).
        id = "";
    }
    let (endpoint, data) = rest.split_once(':').unwrap_or((rest, ""));
    Ok(V09Packet { kind, id, endpoint, data })
}

/// Appends a packet without id: `<type>::<endpoint>`, then `:<data>` unless `data` is empty
/// (`3:::hello`, `2::`, `1::/chat`, `0::`).
pub fn encode(kind: V09Type, endpoint: &str, data: &str, out: &mut BytesMut) {
    out.reserve(3 + endpoint.len() + 1 + data.len());
    out.put_slice(&[kind.as_byte(), b':', b':']);
    out.put_slice(endpoint.as_bytes());
    if !data.is_empty() {
        out.put_u8(b':');
        out.put_slice(data.as_bytes());
    }
}

/// The frame marker, U+FFFD.
const FRAME: char = '\u{fffd}';

/// Splits a polling body into its packets: the body itself when it does not start with
/// U+FFFD, else each framed packet.
pub fn decode_frames(text: &str, max_packets: usize) -> Result<Vec<&str>, V09Error> {
    if text.is_empty() {
        return Err(V09Error::EmptyBody);
    }
    if !text.starts_with(FRAME) {
        if max_packets == 0 {
            return Err(V09Error::TooManyPackets(0));
        }
        return Ok(vec![text]);
    }
    let mut packets = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let after = rest.strip_prefix(FRAME).ok_or(V09Error::ExpectedFrame)?;
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        // Digits are ASCII, so the cut is on a char boundary.
        let (len, after) = after.split_at_checked(digits).unwrap_or((after, ""));
        let after = match after.strip_prefix(FRAME) {
            Some(_) if digits == 0 => return Err(V09Error::LengthMissing),
            Some(after) => after,
            None if after.is_empty() => return Err(V09Error::LengthUnterminated),
            None => return Err(V09Error::LengthNotDigits),
        };
        let len: usize = len.parse().map_err(|_| V09Error::LengthOverflow)?;
        let Some((packet, tail)) = split_utf16(after, len) else {
            return Err(if utf16_len(after) < len {
                V09Error::LengthPastEnd
            } else {
                V09Error::LengthSplitsChar
            });
        };
        if packet.is_empty() {
            return Err(V09Error::Empty);
        }
        if packets.len() == max_packets {
            return Err(V09Error::TooManyPackets(max_packets));
        }
        packets.push(packet);
        rest = tail;
    }
    Ok(packets)
}

/// Appends a polling response body: one packet as is, several framed (nothing for none).
pub fn encode_frames<'a>(packets: impl IntoIterator<Item = &'a str>, out: &mut BytesMut) {
    let mut packets = packets.into_iter();
    let Some(first) = packets.next() else {
        return;
    };
    let Some(second) = packets.next() else {
        out.put_slice(first.as_bytes());
        return;
    };
    for packet in [first, second].into_iter().chain(packets) {
        encode_framed(packet, out);
    }
}

/// Appends one packet framed (`\u{fffd}<UTF-16 length>\u{fffd}<packet>`), as an element of a
/// polling body that grows by appending: the 0.9 client takes a framed body of one packet too.
pub fn encode_framed(packet: &str, out: &mut BytesMut) {
    let len = utf16_len(packet) as u64;
    out.reserve(2 * FRAME.len_utf8() + json::decimal_len(len) + packet.len());
    out.put_slice("\u{fffd}".as_bytes());
    json::put_decimal(len, out);
    out.put_slice("\u{fffd}".as_bytes());
    out.put_slice(packet.as_bytes());
}

/// Appends the handshake response body: `<sid>:<heartbeat timeout>:<close timeout>:<transports>`
/// (`sid:60:60:websocket,xhr-polling`).
///
/// A timeout of 0 is written as an empty field, as 0.9 writes a falsy setting (an empty
/// heartbeat timeout tells the client heartbeats are off).
pub fn encode_handshake(
    sid: &str,
    heartbeat_timeout_secs: u32,
    close_timeout_secs: u32,
    transports: &[&str],
    out: &mut BytesMut,
) {
    out.put_slice(sid.as_bytes());
    for secs in [heartbeat_timeout_secs, close_timeout_secs] {
        out.put_u8(b':');
        if secs != 0 {
            json::put_decimal(secs.into(), out);
        }
    }
    out.put_u8(b':');
    for (i, transport) in transports.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(transport.as_bytes());
    }
}

/// Why the server sends an error packet (0.9 `parser.reasons`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum V09ErrorReason {
    /// 0: transport not supported.
    TransportNotSupported = 0,
    /// 1: client not handshaken (an unknown session id).
    ClientNotHandshaken = 1,
    /// 2: unauthorized.
    Unauthorized = 2,
}

/// What the client should do about an error packet (0.9 `parser.advice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum V09Advice {
    /// 0: reconnect (handshake again).
    Reconnect = 0,
}

/// Appends an error packet: `7:::<reason>` or `7:::<reason>+<advice>` (`7:::1+0`).
pub fn encode_error(reason: V09ErrorReason, advice: Option<V09Advice>, out: &mut BytesMut) {
    out.put_slice(b"7:::");
    out.put_u8(b'0' + reason as u8);
    if let Some(advice) = advice {
        out.put_slice(&[b'+', b'0' + advice as u8]);
    }
}

/// An event's data, read for a `"message"` event's first argument.
#[derive(Deserialize)]
struct Event {
    /// Whether the name is `"message"`.
    name: IsMessage,
    /// The first argument, when it is a string; `args` may be absent or null (no arguments).
    #[serde(default)]
    args: Option<FirstString>,
}

/// The argument of a `"message"` event (`5:::{"name":"message","args":["<arg>",...]}`):
/// `Some(arg)` when the first argument is a string, `None` for any other event or argument.
///
/// Data that is not a JSON object with a string `name` (and an array `args`, if any) is
/// [`V09Error::InvalidEvent`]; a packet of another type is [`V09Error::NotAnEvent`] (a
/// [`V09Type::Message`] carries its message as its data).
pub fn event_message(packet: &V09Packet<'_>) -> Result<Option<String>, V09Error> {
    if packet.kind != V09Type::Event {
        return Err(V09Error::NotAnEvent(packet.kind));
    }
    let event: Event = serde_json::from_str(packet.data).map_err(|_| V09Error::InvalidEvent)?;
    Ok(if event.name.0 { event.args.and_then(|args| args.0) } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use V09Error as E;
    use V09Type::*;

    fn p<'a>(kind: V09Type, id: &'a str, endpoint: &'a str, data: &'a str) -> V09Packet<'a> {
        V09Packet { kind, id, endpoint, data }
    }

    fn written(encode: impl FnOnce(&mut BytesMut)) -> String {
        let mut out = BytesMut::new();
        encode(&mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    /// Every type as socket.io 0.9.9's `parser.encodePacket` writes it (no id).
    const ENCODED: [(V09Type, &str, &str, &str); 14] = [
        (Disconnect, "", "", "0::"),
        (Disconnect, "/ns", "", "0::/ns"),
        (Connect, "", "", "1::"),
        (Connect, "/ns", "", "1::/ns"),
        (Connect, "/ns", "?a=1", "1::/ns:?a=1"),
        (Heartbeat, "", "", "2::"),
        (Message, "", "hello", "3:::hello"),
        (Message, "", "", "3::"),
        (Message, "", "a:b:€😀", "3:::a:b:€😀"),
        (Json, "", r#"{"a":1}"#, r#"4:::{"a":1}"#),
        (
            Event,
            "",
            r#"{"name":"message","args":["hi"]}"#,
            r#"5:::{"name":"message","args":["hi"]}"#,
        ),
        (Ack, "", r#"1+["x"]"#, r#"6:::1+["x"]"#),
        (Error, "", "1+0", "7:::1+0"),
        (Noop, "", "", "8::"),
    ];

    #[test]
    fn every_packet_type() {
        for (kind, endpoint, data, wire) in ENCODED {
            assert_eq!(written(|o| encode(kind, endpoint, data, o)), wire);
            assert_eq!(decode(wire), Ok(p(kind, "", endpoint, data)), "{wire}");
            assert_eq!(V09Type::from_byte(kind.as_byte()), Some(kind));
        }
    }

    #[test]
    fn decode_ids_and_colons() {
        // 0.9.9 `parser.decodePacket` reads these the same way.
        assert_eq!(decode("3:1+::x"), Ok(p(Message, "1+", "", "x")));
        assert_eq!(decode("3:12::x"), Ok(p(Message, "12", "", "x")));
        assert_eq!(decode(r#"5:1+::{"name":"x"}"#), Ok(p(Event, "1+", "", r#"{"name":"x"}"#)));
        assert_eq!(decode("3:::"), Ok(p(Message, "", "", "")));
        assert_eq!(decode("3:+::x"), Ok(p(Message, "", "", "x")));
        assert_eq!(decode("3::/chat:"), Ok(p(Message, "", "/chat", "")));
        assert_eq!(decode("3:::::"), Ok(p(Message, "", "", "::")));
        assert_eq!(decode("1::/é😀"), Ok(p(Connect, "", "/é😀", "")));
    }

    #[test]
    fn bad_packets() {
        assert_eq!(decode(""), Err(E::Empty));
        assert_eq!(decode("9::"), Err(E::UnknownType('9')));
        assert_eq!(decode("€::"), Err(E::UnknownType('€')));
        assert_eq!(decode(":::"), Err(E::UnknownType(':')));
        assert_eq!(decode("3"), Err(E::MissingSeparator));
        assert_eq!(decode("3:"), Err(E::MissingSeparator));
        assert_eq!(decode("3:1"), Err(E::MissingSeparator));
        assert_eq!(decode("33::"), Err(E::MissingSeparator));
        assert_eq!(decode("3:a::x"), Err(E::BadId));
        assert_eq!(decode("3:1++::x"), Err(E::BadId));
        assert_eq!(decode("3:+1::x"), Err(E::BadId));
    }

    #[test]
    fn frames() {
        // 0.9.9 `parser.encodePayload(['3:::€😀', '2::'])`: 😀 counts two.
        let wire = "\u{fffd}7\u{fffd}3:::€😀\u{fffd}3\u{fffd}2::";
        assert_eq!(written(|o| encode_frames(["3:::€😀", "2::"], o)), wire);
        assert_eq!(decode_frames(wire, 8), Ok(vec!["3:::€😀", "2::"]));
        assert_eq!(written(|o| encode_frames(["3:::€😀"], o)), "3:::€😀");
        assert_eq!(decode_frames("3:::€😀", 8), Ok(vec!["3:::€😀"]));
        assert_eq!(written(|o| encode_frames([], o)), "");
        let three = written(|o| encode_frames(["2::", "3:::a", "8::"], o));
        assert_eq!(three, "\u{fffd}3\u{fffd}2::\u{fffd}5\u{fffd}3:::a\u{fffd}3\u{fffd}8::");
        assert_eq!(decode_frames(&three, 3), Ok(vec!["2::", "3:::a", "8::"]));
    }

    #[test]
    fn bad_frames() {
        let err = |body: &str| decode_frames(body, 8).unwrap_err();
        assert_eq!(err(""), E::EmptyBody);
        assert_eq!(err("\u{fffd}"), E::LengthUnterminated);
        assert_eq!(err("\u{fffd}3"), E::LengthUnterminated);
        assert_eq!(err("\u{fffd}\u{fffd}2::"), E::LengthMissing);
        assert_eq!(err("\u{fffd}3x\u{fffd}2::"), E::LengthNotDigits);
        assert_eq!(err("\u{fffd}4\u{fffd}2::"), E::LengthPastEnd);
        assert_eq!(err("\u{fffd}5\u{fffd}3:::😀"), E::LengthSplitsChar);
        assert_eq!(err("\u{fffd}0\u{fffd}"), E::Empty);
        assert_eq!(err("\u{fffd}99999999999999999999999\u{fffd}2::"), E::LengthOverflow);
        assert_eq!(err("\u{fffd}3\u{fffd}2::x"), E::ExpectedFrame);
        assert_eq!(err("\u{fffd}3\u{fffd}2::\u{fffd}"), E::LengthUnterminated);
        let two = "\u{fffd}3\u{fffd}2::\u{fffd}3\u{fffd}2::";
        assert_eq!(decode_frames(two, 1), Err(E::TooManyPackets(1)));
        assert_eq!(decode_frames("2::", 0), Err(E::TooManyPackets(0)));
    }

    #[test]
    fn handshake_and_error() {
        let hs = written(|o| {
            encode_handshake("4d4f185e96a7b", 60, 60, &["websocket", "xhr-polling"], o)
        });
        assert_eq!(hs, "4d4f185e96a7b:60:60:websocket,xhr-polling");
        assert_eq!(written(|o| encode_handshake("s", 0, 25, &["websocket"], o)), "s::25:websocket");
        assert_eq!(written(|o| encode_handshake("s", 60, 0, &[], o)), "s:60::");
        // 0.9.9 `encodePacket({type:'error', reason, advice})`.
        let reason = V09ErrorReason::ClientNotHandshaken;
        assert_eq!(written(|o| encode_error(reason, Some(V09Advice::Reconnect), o)), "7:::1+0");
        assert_eq!(written(|o| encode_error(V09ErrorReason::Unauthorized, None, o)), "7:::2");
        assert_eq!(
            written(|o| encode_error(V09ErrorReason::TransportNotSupported, None, o)),
            "7:::0"
        );
        assert_eq!(decode("7:::1+0"), Ok(p(Error, "", "", "1+0")));
    }

    #[test]
    fn message_events() {
        let ev = |data: &str| event_message(&p(Event, "", "", data));
        assert_eq!(ev(r#"{"name":"message","args":["hi"]}"#), Ok(Some("hi".to_owned())));
        assert_eq!(ev(r#"{"args":["h\u00e9😀",2],"name":"message"}"#), Ok(Some("hé😀".to_owned())));
        assert_eq!(ev(r#"{"name":"message","args":[{"a":1}]}"#), Ok(None));
        assert_eq!(ev(r#"{"name":"message","args":[]}"#), Ok(None));
        assert_eq!(ev(r#"{"name":"message"}"#), Ok(None));
        assert_eq!(ev(r#"{"name":"message","args":null}"#), Ok(None));
        assert_eq!(ev(r#"{"name":"chat","args":["x"],"extra":1}"#), Ok(None));
        for bad in [
            "",
            "[]",
            r#"{"args":["x"]}"#,
            r#"{"name":1}"#,
            r#"{"name":"message","args":"x"}"#,
            r#"{"name":"message"} x"#,
        ] {
            assert_eq!(ev(bad), Err(E::InvalidEvent), "{bad}");
        }
        let message = p(Message, "", "", "hi");
        assert_eq!(event_message(&message), Err(E::NotAnEvent(Message)));
    }

    #[test]
    fn every_prefix_decodes_or_fails_cleanly() {
        let mut bodies: Vec<String> = ENCODED.iter().map(|v| v.3.to_owned()).collect();
        bodies.push("\u{fffd}7\u{fffd}3:::€😀\u{fffd}3\u{fffd}2::".to_owned());
        bodies.push("5:1+::{\"name\":\"message\",\"args\":[\"hi\"]}".to_owned());
        for body in &bodies {
            for cut in (0..=body.len()).filter(|&c| body.is_char_boundary(c)) {
                let prefix = &body[..cut];
                if let Ok(frames) = decode_frames(prefix, 8) {
                    for frame in frames {
                        if let Ok(packet) = decode(frame) {
                            let _ = event_message(&packet);
                        }
                    }
                }
                let _ = decode(prefix);
            }
        }
    }

    proptest! {
        #[test]
        fn decoders_never_panic(body in prop::collection::vec(any::<u8>(), 0..48), s in "[0-9:+\u{fffd}😀a]{0,24}") {
            let text = String::from_utf8_lossy(&body);
            for t in [&*text, &s] {
                if let Ok(frames) = decode_frames(t, 4) {
                    prop_assert!(!frames.is_empty() && frames.len() <= 4);
                }
                if let Ok(packet) = decode(t) {
                    let _ = event_message(&V09Packet { kind: Event, ..packet });
                }
            }
        }

        #[test]
        fn frames_round_trip(packets in prop::collection::vec("[0-8]::[^\u{fffd}]{0,12}", 1..5)) {
            let refs: Vec<&str> = packets.iter().map(String::as_str).collect();
            let body = written(|o| encode_frames(refs.iter().copied(), o));
            prop_assert_eq!(decode_frames(&body, 8), Ok(refs.clone()));
            for packet in refs {
                prop_assert!(decode(packet).is_ok());
            }
        }
    }
}

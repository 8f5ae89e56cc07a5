//! Socket.IO packets inside an Engine.IO `message`: protocol 4 (socket.io-parser 3.x, with
//! Engine.IO 3) and protocol 5 (socket.io-parser 4.x, with Engine.IO 4), and the `"message"`
//! event Pomelo's socket.io connector listens to.
//!
//! ```text
//! <type> [<attachments>-] [<namespace>,] [<ack id>] [<JSON data>]
//!
//!   type: 0 CONNECT  1 DISCONNECT  2 EVENT  3 ACK  5 BINARY_EVENT  6 BINARY_ACK
//!         4 ERROR (protocol 4) / CONNECT_ERROR (protocol 5)
//!   attachments: only for 5 and 6, decimal, then '-'
//!   namespace:   only when not "/": starts with '/', ends at ',' (or the end of the text)
//!   ack id:      decimal, straight before the data
//!
//!   2["message","hi"]          EVENT "message" on "/"
//!   2/chat,12["foo",1]         EVENT "foo" on "/chat", ack id 12
//!   51-["baz",{"_placeholder":true,"num":0}]   BINARY_EVENT with 1 attachment
//!   44"Not authorized"  (protocol 4)   44{"message":"Not authorized"}  (protocol 5)
//!   ^ the Engine.IO message type, written by the encoders here, not read by `decode`
//! ```
//!
//! # Invariants
//! - [`decode`] reads the header only and borrows the namespace and data from its input; the
//!   data's JSON is the caller's ([`event_message`] reads an EVENT's). It takes the text
//!   after the Engine.IO `4`.
//! - Binary types decode (their attachment count checked and skipped) so the caller can name
//!   what it refuses; their attachments would follow as binary frames, which are never read.
//! - An ack id that overflows a `u64` is an error; a namespace keeps whatever the client put
//!   in it (a protocol 4 client appends its query: `/ns?token=x`).
//! - Encoders write the whole Engine.IO text frame, `4` included, and JSON strings exactly as
//!   `JSON.stringify` writes them; [`message_event_len`] is exactly what
//!   [`encode_message_event`] writes.

use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};

use crate::protocol::socketio::engineio::EioVersion;
use crate::protocol::socketio::json::{self, IsMessage};

/// The Socket.IO packet type, the first character of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SioPacketType {
    /// `0`: connect to a namespace (client), or the connection accepted (server).
    Connect,
    /// `1`: leave a namespace.
    Disconnect,
    /// `2`: an event: `[name, ...args]`.
    Event,
    /// `3`: the answer to an event that carried an ack id: `[...args]`.
    Ack,
    /// `4`: ERROR in protocol 4 (a JSON string), CONNECT_ERROR in protocol 5 (an object with
    /// `message`).
    ConnectError,
    /// `5`: an event with binary attachments.
    BinaryEvent,
    /// `6`: an ack with binary attachments.
    BinaryAck,
}

impl SioPacketType {
    /// The type with this ASCII digit, or `None`.
    pub fn from_byte(b: u8) -> Option<SioPacketType> {
        match b {
            b'0' => Some(SioPacketType::Connect),
            b'1' => Some(SioPacketType::Disconnect),
            b'2' => Some(SioPacketType::Event),
            b'3' => Some(SioPacketType::Ack),
            b'4' => Some(SioPacketType::ConnectError),
            b'5' => Some(SioPacketType::BinaryEvent),
            b'6' => Some(SioPacketType::BinaryAck),
            _ => None,
        }
    }

    /// The ASCII digit written for this type.
    pub fn as_byte(self) -> u8 {
        match self {
            SioPacketType::Connect => b'0',
            SioPacketType::Disconnect => b'1',
            SioPacketType::Event => b'2',
            SioPacketType::Ack => b'3',
            SioPacketType::ConnectError => b'4',
            SioPacketType::BinaryEvent => b'5',
            SioPacketType::BinaryAck => b'6',
        }
    }

    /// BINARY_EVENT and BINARY_ACK: attachments follow, and shaddock refuses them.
    pub fn is_binary(self) -> bool {
        matches!(self, SioPacketType::BinaryEvent | SioPacketType::BinaryAck)
    }
}

/// One decoded packet header and its raw data, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SioPacket<'a> {
    /// The packet type.
    pub kind: SioPacketType,
    /// The namespace, `"/"` when the packet names none.
    pub namespace: &'a str,
    /// The ack id, when the sender wants an ACK back.
    pub ack_id: Option<u64>,
    /// The JSON text after the header, unparsed; may be empty.
    pub data: &'a str,
}

/// A fault in a Socket.IO packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SioError {
    /// An Engine.IO message with nothing in it.
    #[error("empty packet")]
    Empty,
    /// A first character that is not `0`..`6`.
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// A binary packet whose attachment count is not digits then `-`.
    #[error("illegal attachments")]
    BadAttachments,
    /// An ack id larger than a `u64`.
    #[error("ack id too large")]
    AckIdOverflow,
    /// [`event_message`] on a packet that is not an EVENT.
    #[error("not an event packet: {0:?}")]
    NotAnEvent(SioPacketType),
    /// EVENT data that is not a JSON array starting with a string name.
    #[error("invalid event payload")]
    InvalidEvent,
}

/// Decodes one packet: `text` is an Engine.IO message's data, the text after its `4`.
pub fn decode(text: &str) -> Result<SioPacket<'_>, SioError> {
    let Some(&first) = text.as_bytes().first() else {
        return Err(SioError::Empty);
    };
    let Some(kind) = SioPacketType::from_byte(first) else {
        return Err(SioError::UnknownType(text.chars().next().unwrap_or_default()));
    };
    // Every cut below is just after an ASCII byte, so on a char boundary.
    let mut rest = text.get(1..).unwrap_or_default();
    if kind.is_binary() {
        let digits = leading_digits(rest);
        if digits == 0 || rest.as_bytes().get(digits) != Some(&b'-') {
            return Err(SioError::BadAttachments);
        }
        rest = rest.get(digits + 1..).unwrap_or_default();
    }
    let mut namespace = "/";
    if rest.starts_with('/') {
        let end = rest.find(',').unwrap_or(rest.len());
        namespace = rest.get(..end).unwrap_or_default();
        rest = rest.get(end + 1..).unwrap_or_default();
    }
    let mut ack_id = None;
    let digits = leading_digits(rest);
    if digits > 0 {
        let id = rest.get(..digits).unwrap_or_default();
        ack_id = Some(id.parse::<u64>().map_err(|_| SioError::AckIdOverflow)?);
        rest = rest.get(digits..).unwrap_or_default();
    }
    Ok(SioPacket { kind, namespace, ack_id, data: rest })
}

/// The number of ASCII digits at the start of `s`.
fn leading_digits(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

/// The argument of a `"message"` event: `Some(arg)` for `["message", "<arg>", ...]`, `None`
/// for any other event, or for `"message"` whose first argument is missing or not a string.
///
/// An EVENT whose data is not a JSON array starting with a string is
/// [`SioError::InvalidEvent`]; any other packet type is [`SioError::NotAnEvent`].
pub fn event_message(packet: &SioPacket<'_>) -> Result<Option<String>, SioError> {
    if packet.kind != SioPacketType::Event {
        return Err(SioError::NotAnEvent(packet.kind));
    }
    serde_json::from_str::<MessageEvent>(packet.data)
        .map(|event| event.0)
        .map_err(|_| SioError::InvalidEvent)
}

/// An event array read for its `"message"` argument: the name is compared without being
/// kept, the other arguments are skipped without being built.
struct MessageEvent(Option<String>);

impl<'de> Deserialize<'de> for MessageEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Event;
        impl<'de> Visitor<'de> for Event {
            type Value = MessageEvent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event array [name, ...args]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MessageEvent, A::Error> {
                let Some(IsMessage(is_message)) = seq.next_element()? else {
                    return Err(de::Error::invalid_length(0, &self));
                };
                let arg = if is_message {
                    match seq.next_element()? {
                        Some(serde_json::Value::String(s)) => Some(s),
                        _ => None,
                    }
                } else {
                    None
                };
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MessageEvent(arg))
            }
        }
        deserializer.deserialize_seq(Event)
    }
}

/// `42["message",`: the Engine.IO message and Socket.IO EVENT types, and the event name.
const MESSAGE_EVENT_HEAD: &[u8] = b"42[\"message\",";

/// The exact length [`encode_message_event`] writes for `message`.
pub fn message_event_len(message: &str) -> usize {
    MESSAGE_EVENT_HEAD.len() + json::string_len(message) + 1
}

/// Appends the whole text frame of a `"message"` event on `/`: `42["message","<message>"]`,
/// the message escaped as `JSON.stringify` escapes it.
pub fn encode_message_event(message: &str, out: &mut BytesMut) {
    out.reserve(message_event_len(message));
    out.put_slice(MESSAGE_EVENT_HEAD);
    json::put_string(message, out);
    out.put_u8(b']');
}

/// Appends the whole text frame accepting a connection to `/`: `40` for protocol 4 (Engine.IO
/// 3), `40{"sid":"<sid>"}` for protocol 5 (Engine.IO 4; a protocol 5 client refuses a CONNECT
/// without a `sid`, so `None` is only for protocol 4).
pub fn encode_connect(version: EioVersion, sid: Option<&str>, out: &mut BytesMut) {
    out.put_slice(b"40");
    if let (EioVersion::V4, Some(sid)) = (version, sid) {
        out.put_slice(b"{\"sid\":");
        json::put_string(sid, out);
        out.put_u8(b'}');
    }
}

/// Appends the whole text frame refusing a connection to `namespace`: protocol 4
/// `44/ns,"<message>"`, protocol 5 `44/ns,{"message":"<message>"}`; the namespace part is
/// left out for `/` (and for an empty namespace, as socket.io-parser does).
pub fn encode_connect_error(
    version: EioVersion,
    namespace: &str,
    message: &str,
    out: &mut BytesMut,
) {
    out.put_slice(b"44");
    if !namespace.is_empty() && namespace != "/" {
        out.put_slice(namespace.as_bytes());
        out.put_u8(b',');
    }
    match version {
        EioVersion::V3 => json::put_string(message, out),
        EioVersion::V4 => {
            out.put_slice(b"{\"message\":");
            json::put_string(message, out);
            out.put_u8(b'}');
        }
    }
}

/// Appends the whole text frame of a DISCONNECT from `/`: `41`.
pub fn encode_disconnect(out: &mut BytesMut) {
    out.put_slice(b"41");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::socketio::engineio::{self, PacketType};
    use proptest::prelude::*;

    use EioVersion::{V3, V4};
    use SioError as E;
    use SioPacketType::*;

    fn p<'a>(kind: SioPacketType, ns: &'a str, id: Option<u64>, data: &'a str) -> SioPacket<'a> {
        SioPacket { kind, namespace: ns, ack_id: id, data }
    }

    fn frame(encode: impl FnOnce(&mut BytesMut)) -> String {
        let mut out = BytesMut::new();
        encode(&mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    /// Packets as socket.io-parser 3.4 and 4.2 encode them, and the protocol documentation's
    /// examples.
    fn vectors() -> Vec<(&'static str, SioPacket<'static>)> {
        let placeholder = r#"["baz",{"_placeholder":true,"num":0}]"#;
        vec![
            ("0", p(Connect, "/", None, "")),
            ("0/admin,", p(Connect, "/admin", None, "")),
            (
                r#"0{"sid":"oSO0OpakMV_3jnilAAAA"}"#,
                p(Connect, "/", None, r#"{"sid":"oSO0OpakMV_3jnilAAAA"}"#),
            ),
            (r#"0/admin,{"sid":"x"}"#, p(Connect, "/admin", None, r#"{"sid":"x"}"#)),
            ("0/admin?token=a,", p(Connect, "/admin?token=a", None, "")),
            ("1", p(Disconnect, "/", None, "")),
            ("1/admin,", p(Disconnect, "/admin", None, "")),
            ("1/admin", p(Disconnect, "/admin", None, "")),
            (r#"2["foo"]"#, p(Event, "/", None, r#"["foo"]"#)),
            (r#"2/admin,["bar"]"#, p(Event, "/admin", None, r#"["bar"]"#)),
            (r#"212["foo"]"#, p(Event, "/", Some(12), r#"["foo"]"#)),
            (r#"2/chat,12["foo",1]"#, p(Event, "/chat", Some(12), r#"["foo",1]"#)),
            (r#"3/admin,13["bar"]"#, p(Ack, "/admin", Some(13), r#"["bar"]"#)),
            ("37", p(Ack, "/", Some(7), "")),
            (r#"4"Not authorized""#, p(ConnectError, "/", None, r#""Not authorized""#)),
            (r#"4/ns,"Not authorized""#, p(ConnectError, "/ns", None, r#""Not authorized""#)),
            (
                r#"4{"message":"Not authorized"}"#,
                p(ConnectError, "/", None, r#"{"message":"Not authorized"}"#),
            ),
            (r#"51-["baz",{"_placeholder":true,"num":0}]"#, p(BinaryEvent, "/", None, placeholder)),
            (r#"52-/admin,["baz"]"#, p(BinaryEvent, "/admin", None, r#"["baz"]"#)),
            (r#"61-15["bar"]"#, p(BinaryAck, "/", Some(15), r#"["bar"]"#)),
            (r#"61-/admin,15["bar"]"#, p(BinaryAck, "/admin", Some(15), r#"["bar"]"#)),
            ("218446744073709551615[]", p(Event, "/", Some(u64::MAX), "[]")),
            ("2/é😀,[\"€\"]", p(Event, "/é😀", None, "[\"€\"]")),
        ]
    }

    #[test]
    fn every_packet_type_decodes() {
        for (wire, want) in vectors() {
            assert_eq!(decode(wire), Ok(want), "{wire}");
            assert_eq!(SioPacketType::from_byte(want.kind.as_byte()), Some(want.kind));
        }
    }

    #[test]
    fn bad_packets() {
        assert_eq!(decode(""), Err(E::Empty));
        assert_eq!(decode("7"), Err(E::UnknownType('7')));
        assert_eq!(decode("€"), Err(E::UnknownType('€')));
        assert_eq!(decode("5[]"), Err(E::BadAttachments));
        assert_eq!(decode("5-[]"), Err(E::BadAttachments));
        assert_eq!(decode("51[]"), Err(E::BadAttachments));
        assert_eq!(decode("61"), Err(E::BadAttachments));
        assert_eq!(decode("5"), Err(E::BadAttachments));
        assert_eq!(decode("218446744073709551616[]"), Err(E::AckIdOverflow));
        assert_eq!(decode("2/a,99999999999999999999999999"), Err(E::AckIdOverflow));
    }

    #[test]
    fn message_events() {
        let ev = |data: &str| event_message(&p(Event, "/", None, data));
        assert_eq!(ev(r#"["message","hi"]"#), Ok(Some("hi".to_owned())));
        assert_eq!(
            ev(r#" [ "message" , "h\"i\u00e9\ud83d\ude00" , 1, {"a":[2]} ] "#),
            Ok(Some("h\"ié😀".to_owned()))
        );
        assert_eq!(ev(r#"["message",{"a":1}]"#), Ok(None));
        assert_eq!(ev(r#"["message",null,"x"]"#), Ok(None));
        assert_eq!(ev(r#"["message"]"#), Ok(None));
        assert_eq!(ev(r#"["chat","x"]"#), Ok(None));
        assert_eq!(ev(r#"["mess\u0061ge","x"]"#), Ok(Some("x".to_owned())));
        for bad in [
            "",
            "[]",
            r#"[1,"x"]"#,
            r#"{"a":1}"#,
            r#"["message","x"] junk"#,
            r#"["message","x""#,
            "\"message\"",
            r#"["message",]"#,
        ] {
            assert_eq!(ev(bad), Err(E::InvalidEvent), "{bad}");
        }
        let ack = p(Ack, "/", Some(1), r#"["message","x"]"#);
        assert_eq!(event_message(&ack), Err(E::NotAnEvent(Ack)));
        let binary = p(BinaryEvent, "/", None, r#"["message","x"]"#);
        assert_eq!(event_message(&binary), Err(E::NotAnEvent(BinaryEvent)));
    }

    #[test]
    fn message_event_frames() {
        assert_eq!(frame(|o| encode_message_event("hello", o)), r#"42["message","hello"]"#);
        assert_eq!(frame(|o| encode_message_event("", o)), r#"42["message",""]"#);
        // socket.io-parser 3.4: U+0000..U+001F, `"\/`, U+007F, U+0080, U+00FF, U+2028, U+2029,
        // é, €, 😀 (213 bytes, JavaScript length 202).
        let mut message: String = (0u8..0x20).map(char::from).collect();
        message.push_str("\"\\/\u{7f}\u{80}\u{ff}\u{2028}\u{2029}é€😀");
        let want = concat!(
            r#"42["message",""#,
            r#"\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f"#,
            r#"\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c"#,
            r#"\u001d\u001e\u001f\"\\/"#,
            "\u{7f}\u{80}\u{ff}\u{2028}\u{2029}é€😀\"]"
        );
        assert_eq!(frame(|o| encode_message_event(&message, o)), want);
        assert_eq!((message_event_len(&message), want.len()), (213, 213));
        assert_eq!(crate::protocol::socketio::utf16_len(want), 202);
        // A Pomelo response inside the event.
        let pomelo = "{\"id\":1,\"body\":{\"m\":\"héllo 😀\"}}";
        let want = r#"42["message","{\"id\":1,\"body\":{\"m\":\"héllo 😀\"}}"]"#;
        assert_eq!(frame(|o| encode_message_event(pomelo, o)), want);
    }

    #[test]
    fn server_frames() {
        assert_eq!(frame(|o| encode_connect(V3, None, o)), "40");
        assert_eq!(frame(|o| encode_connect(V3, Some("abc"), o)), "40");
        assert_eq!(
            frame(|o| encode_connect(V4, Some("oSO0OpakMV_3jnilAAAA"), o)),
            r#"40{"sid":"oSO0OpakMV_3jnilAAAA"}"#
        );
        assert_eq!(frame(|o| encode_connect(V4, None, o)), "40");
        assert_eq!(
            frame(|o| encode_connect_error(V3, "/", "Not authorized", o)),
            r#"44"Not authorized""#
        );
        assert_eq!(
            frame(|o| encode_connect_error(V3, "/ns", "Not authorized", o)),
            r#"44/ns,"Not authorized""#
        );
        assert_eq!(frame(|o| encode_connect_error(V3, "", "x", o)), r#"44"x""#);
        assert_eq!(
            frame(|o| encode_connect_error(V4, "/", "Not authorized", o)),
            r#"44{"message":"Not authorized"}"#
        );
        assert_eq!(
            frame(|o| encode_connect_error(V4, "/ns", "a\"b", o)),
            r#"44/ns,{"message":"a\"b"}"#
        );
        assert_eq!(frame(encode_disconnect), "41");
        // Each reads back through both layers.
        let f = frame(|o| encode_connect_error(V4, "/ns", "a\"b", o));
        let eio = engineio::decode_packet(&f).unwrap();
        assert_eq!(eio.kind, PacketType::Message);
        assert_eq!(decode(eio.data), Ok(p(ConnectError, "/ns", None, r#"{"message":"a\"b"}"#)));
    }

    #[test]
    fn every_prefix_decodes_or_fails_cleanly() {
        for (wire, _) in vectors() {
            for cut in (0..=wire.len()).filter(|&c| wire.is_char_boundary(c)) {
                let prefix = &wire[..cut];
                if let Ok(packet) = decode(prefix) {
                    assert!(packet.data.len() <= prefix.len());
                    let _ = event_message(&packet);
                }
                let _ = decode(&format!("{prefix},1x"));
            }
        }
    }

    proptest! {
        #[test]
        fn decoders_never_panic(body in prop::collection::vec(any::<u8>(), 0..48), s in "[0-6/,0-9\\[\\]\"a-z-]{0,24}") {
            let text = String::from_utf8_lossy(&body);
            for t in [&*text, &s] {
                if let Ok(packet) = decode(t) {
                    let _ = event_message(&packet);
                    let _ = event_message(&SioPacket { kind: Event, ..packet });
                }
            }
        }

        #[test]
        fn message_event_round_trip(message in any::<String>()) {
            let wire = frame(|o| encode_message_event(&message, o));
            prop_assert_eq!(wire.len(), message_event_len(&message));
            let eio = engineio::decode_packet(&wire).unwrap();
            prop_assert_eq!(eio.kind, PacketType::Message);
            let packet = decode(eio.data).unwrap();
            prop_assert_eq!((packet.kind, packet.namespace, packet.ack_id), (Event, "/", None));
            prop_assert_eq!(event_message(&packet), Ok(Some(message.clone())));
            // The same text as serde_json writes for the same array.
            prop_assert_eq!(&wire[2..], serde_json::to_string(&("message", &message)).unwrap());
        }
    }
}

//! The Pomelo *message*: the body of a DATA package (pomelo-protocol `Message.encode/decode`,
//! pomelo-hybrid.md §2).
//!
//! ```text
//! flag byte
//!   7   6   5   4   3   2   1   0
//! +---+---+---+---+---+---+---+---+
//! | 0 | 0 | 0 | Z |   type    | C |   C = route compressed (dict code)
//! +---+---+---+---+---+---+---+---+   type = 0 REQUEST, 1 NOTIFY, 2 RESPONSE, 3 PUSH
//!                                     Z = gzip (defined by pomelo-protocol 0.1.6, never used
//!                                         by the 2.2.7 connector): refused
//!
//! REQUEST   flag | id: varint | route | body
//! NOTIFY    flag |              route | body
//! RESPONSE  flag | id: varint |         body
//! PUSH      flag |              route | body
//!
//! route, C = 0:  len: u8 | UTF-8 name (len bytes, 0..=255)
//! route, C = 1:  dict code: u16 big-endian
//! body:          the rest of the package (JSON, or pomelo-protobuf)
//! ```
//!
//! # Invariants
//! - [`decode`] borrows route and body from its input and never allocates or panics.
//! - A REQUEST and a RESPONSE carry an id other than 0 (0 means "no id"; Pomelo's
//!   `composeResponse` drops a response for id 0); a NOTIFY and a PUSH have id 0 and a route; a
//!   RESPONSE has [`Route::None`] and its C bit clear.
//! - Bits 4..7 set, a type above 3, a truncated id or route, or a route name that is not UTF-8
//!   are [`ProtocolError::Malformed`].
//! - The encoders accept exactly the messages the decoder produces, so
//!   `decode(encode(m)) == m`; anything else is refused before a byte is written.

use bytes::{BufMut, BytesMut};

use crate::protocol::ProtocolError;
use crate::protocol::pomelo::package::{self, HEADER_LEN, MAX_BODY_LEN, PackageType};
use crate::protocol::wire::{VarintFault, encode_varint, read_varint, varint_len};

/// Flag bit 0: the route is a 2-byte dictionary code.
const FLAG_COMPRESSED_ROUTE: u8 = 0x01;
/// Flag bits 1..3: the message type.
const FLAG_TYPE_MASK: u8 = 0x0e;
/// Flag bit 4: gzip-compressed body (reserved here).
const FLAG_GZIP: u8 = 0x10;
/// Flag bits 5..7: always zero.
const FLAG_RESERVED: u8 = 0xe0;
/// The longest uncompressed route (its length is one byte).
pub const MAX_ROUTE_LEN: usize = 0xff;

/// The message type, flag bits 1..3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// Client → server, expects a RESPONSE with the same id.
    Request = 0,
    /// Client → server, no answer.
    Notify = 1,
    /// Server → client, answers the REQUEST with the same id; carries no route.
    Response = 2,
    /// Server → client, unsolicited, named by its route.
    Push = 3,
}

impl MessageType {
    /// Whether the message carries an id (REQUEST and RESPONSE).
    #[inline]
    pub fn has_id(self) -> bool {
        matches!(self, MessageType::Request | MessageType::Response)
    }

    /// Whether the message carries a route (everything but RESPONSE).
    #[inline]
    pub fn has_route(self) -> bool {
        !matches!(self, MessageType::Response)
    }
}

/// A message's route: absent (RESPONSE), a name, or a dictionary code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// No route: only a RESPONSE.
    None,
    /// An uncompressed route name, at most 255 bytes of UTF-8.
    Name(&'a str),
    /// A route compressed to its dictionary code (see `dict::RouteDict`).
    Code(u16),
}

impl Route<'_> {
    /// The bytes this route takes on the wire.
    #[inline]
    fn encoded_len(&self) -> usize {
        match self {
            Route::None => 0,
            Route::Name(name) => 1 + name.len(),
            Route::Code(_) => 2,
        }
    }
}

/// One decoded message, borrowing route and body from the package body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// The message type.
    pub kind: MessageType,
    /// The request id; 0 for NOTIFY and PUSH, never 0 for REQUEST and RESPONSE.
    pub id: u32,
    /// The route; [`Route::None`] exactly for RESPONSE.
    pub route: Route<'a>,
    /// The body: everything after the route.
    pub body: &'a [u8],
}

impl<'a> Message<'a> {
    /// A REQUEST `id` (never 0) on `route`.
    pub fn request(id: u32, route: Route<'a>, body: &'a [u8]) -> Self {
        Message { kind: MessageType::Request, id, route, body }
    }

    /// A NOTIFY on `route`: a request without an answer.
    pub fn notify(route: Route<'a>, body: &'a [u8]) -> Self {
        Message { kind: MessageType::Notify, id: 0, route, body }
    }

    /// A RESPONSE to request `id`.
    pub fn response(id: u32, body: &'a [u8]) -> Self {
        Message { kind: MessageType::Response, id, route: Route::None, body }
    }

    /// A PUSH on `route`.
    pub fn push(route: Route<'a>, body: &'a [u8]) -> Self {
        Message { kind: MessageType::Push, id: 0, route, body }
    }
}

/// Decodes a message from `data`, the whole body of one DATA package.
///
/// REQUEST: id (≠ 0) and route; NOTIFY and PUSH: route, id 0; RESPONSE: id (≠ 0), [`Route::None`].
pub fn decode(data: &[u8]) -> Result<Message<'_>, ProtocolError> {
    let Some((&flag, mut rest)) = data.split_first() else {
        return Err(ProtocolError::Malformed("empty message"));
    };
    if flag & FLAG_RESERVED != 0 {
        return Err(ProtocolError::Malformed("reserved flag bits set"));
    }
    if flag & FLAG_GZIP != 0 {
        return Err(ProtocolError::Malformed("gzip flag set"));
    }
    let kind = match (flag & FLAG_TYPE_MASK) >> 1 {
        0 => MessageType::Request,
        1 => MessageType::Notify,
        2 => MessageType::Response,
        3 => MessageType::Push,
        _ => return Err(ProtocolError::Malformed("unknown message type")),
    };
    let compressed = flag & FLAG_COMPRESSED_ROUTE != 0;

    let mut id = 0;
    if kind.has_id() {
        let (value, used) = read_varint(rest).map_err(|fault| match fault {
            VarintFault::Truncated => ProtocolError::Malformed("truncated message id"),
            VarintFault::Overlong => ProtocolError::Malformed("message id overflows u32"),
        })?;
        if value == 0 {
            return Err(ProtocolError::Malformed(match kind {
                MessageType::Request => "request with id 0",
                _ => "response without id",
            }));
        }
        id = value;
        rest = rest.get(used..).unwrap_or_default();
    }

    let route = if !kind.has_route() {
        if compressed {
            return Err(ProtocolError::Malformed("response with route flag"));
        }
        Route::None
    } else if compressed {
        let Some((&code, tail)) = rest.split_first_chunk::<2>() else {
            return Err(ProtocolError::Malformed("truncated route"));
        };
        rest = tail;
        Route::Code(u16::from_be_bytes(code))
    } else {
        let Some((&len, tail)) = rest.split_first() else {
            return Err(ProtocolError::Malformed("truncated route"));
        };
        let Some((name, tail)) = tail.split_at_checked(usize::from(len)) else {
            return Err(ProtocolError::Malformed("truncated route"));
        };
        rest = tail;
        let name = std::str::from_utf8(name)
            .map_err(|_| ProtocolError::Malformed("route is not UTF-8"))?;
        Route::Name(name)
    };

    Ok(Message { kind, id, route, body: rest })
}

/// The bytes [`encode`] writes for `msg` (flag, id, route and body).
#[inline]
pub fn encoded_len(msg: &Message<'_>) -> usize {
    let id_len = if msg.kind.has_id() { varint_len(msg.id) } else { 0 };
    1 + id_len + msg.route.encoded_len() + msg.body.len()
}

/// Appends `msg` (no package header).
pub fn encode(msg: &Message<'_>, out: &mut BytesMut) -> Result<(), ProtocolError> {
    let flag = check(msg)?;
    out.reserve(encoded_len(msg));
    put_message(flag, msg, out);
    Ok(())
}

/// Appends `msg` as a whole DATA package: header and message, one reservation.
pub fn encode_package(msg: &Message<'_>, out: &mut BytesMut) -> Result<(), ProtocolError> {
    let flag = check(msg)?;
    let len = encoded_len(msg);
    if len > MAX_BODY_LEN {
        return Err(ProtocolError::BodyTooLarge(len));
    }
    out.reserve(HEADER_LEN + len);
    package::encode_header(PackageType::Data, len, out)?;
    put_message(flag, msg, out);
    Ok(())
}

/// Checks that `msg` is a message [`decode`] could have produced; returns its flag byte.
fn check(msg: &Message<'_>) -> Result<u8, ProtocolError> {
    match (msg.kind, msg.id) {
        (MessageType::Request, 0) => return Err(ProtocolError::Malformed("request with id 0")),
        (MessageType::Response, 0) => return Err(ProtocolError::Malformed("response without id")),
        (MessageType::Notify | MessageType::Push, id) if id != 0 => {
            return Err(ProtocolError::Malformed("notify or push with id"));
        }
        _ => {}
    }
    let compressed = match (msg.kind.has_route(), msg.route) {
        (false, Route::None) => false,
        (false, _) => return Err(ProtocolError::Malformed("response with route")),
        (true, Route::None) => return Err(ProtocolError::Malformed("message without route")),
        (true, Route::Name(name)) if name.len() > MAX_ROUTE_LEN => {
            return Err(ProtocolError::RouteTooLong(name.len()));
        }
        (true, Route::Name(_)) => false,
        (true, Route::Code(_)) => true,
    };
    Ok(((msg.kind as u8) << 1) | u8::from(compressed))
}

/// Writes a checked message; the caller has reserved [`encoded_len`] bytes.
#[inline]
fn put_message(flag: u8, msg: &Message<'_>, out: &mut BytesMut) {
    out.put_u8(flag);
    if msg.kind.has_id() {
        encode_varint(msg.id, out);
    }
    match msg.route {
        Route::None => {}
        Route::Name(name) => {
            // `check` bounded the length to one byte.
            out.put_u8(name.len() as u8);
            out.put_slice(name.as_bytes());
        }
        Route::Code(code) => out.put_u16(code),
    }
    out.put_slice(msg.body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_make_what_decode_gives_back() {
        let cases = [
            (Message::request(3, Route::Name("a.b.c"), b"{}"), MessageType::Request, 3),
            (Message::notify(Route::Code(2), b"{}"), MessageType::Notify, 0),
            (Message::response(3, b"{}"), MessageType::Response, 3),
            (Message::push(Route::Name("onMsg"), b"{}"), MessageType::Push, 0),
        ];
        for (msg, kind, id) in cases {
            assert_eq!((msg.kind, msg.id), (kind, id));
            let mut out = BytesMut::new();
            encode(&msg, &mut out).unwrap();
            assert_eq!(decode(&out).unwrap(), msg);
        }
    }
    use proptest::prelude::*;

    const ENTER: &str = "connector.entryHandler.enter";
    const ENTER_BODY: &[u8] = br#"{"role":"client","apikey":"k1","clientId":"c1"}"#;

    fn encoded(msg: &Message<'_>) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(msg, &mut out).unwrap();
        assert_eq!(out.len(), encoded_len(msg));
        out.to_vec()
    }

    #[test]
    fn request_with_route_name() {
        // pomelo-hybrid.md §6, message part of `04 00 00 4e 00 01 1c ...`.
        let mut bytes = vec![0x00, 0x01, 0x1c];
        bytes.extend_from_slice(ENTER.as_bytes());
        bytes.extend_from_slice(ENTER_BODY);
        let msg = decode(&bytes).unwrap();
        assert_eq!(
            msg,
            Message {
                kind: MessageType::Request,
                id: 1,
                route: Route::Name(ENTER),
                body: ENTER_BODY
            }
        );
        assert_eq!(encoded(&msg), bytes);
    }

    #[test]
    fn request_with_dict_code_and_two_byte_id() {
        let bytes = [0x01, 0xac, 0x02, 0x00, 0x01, b'{', b'}'];
        let msg = decode(&bytes).unwrap();
        assert_eq!(msg.kind, MessageType::Request);
        assert_eq!(msg.id, 300);
        assert_eq!(msg.route, Route::Code(1));
        assert_eq!(msg.body, b"{}");
        assert_eq!(encoded(&msg), bytes);
    }

    #[test]
    fn response_push_and_notify_vectors() {
        // §6: response id 1, push onMsg with and without dict, notify `a.b`.
        let resp = [0x04, 0x01, b'{', b'}'];
        assert_eq!(decode(&resp).unwrap(), Message::response(1, b"{}"));
        let push = [0x06, 0x05, b'o', b'n', b'M', b's', b'g', b'{', b'}'];
        assert_eq!(decode(&push).unwrap(), Message::push(Route::Name("onMsg"), b"{}"));
        let push_code = [0x07, 0x00, 0x04, 0x0a, 0x02, b'h', b'i'];
        assert_eq!(
            decode(&push_code).unwrap(),
            Message::push(Route::Code(4), &[0x0a, 0x02, b'h', b'i'])
        );
        let notify = [0x02, 0x03, 0x61, 0x2e, 0x62, 0x7b, 0x7d];
        let msg = decode(&notify).unwrap();
        assert_eq!(
            (msg.kind, msg.id, msg.route, msg.body),
            (MessageType::Notify, 0, Route::Name("a.b"), &b"{}"[..])
        );
        for bytes in [&resp[..], &push, &push_code, &notify] {
            assert_eq!(encoded(&decode(bytes).unwrap()), bytes);
        }
    }

    #[test]
    fn empty_route_and_empty_body() {
        let bytes = [0x06, 0x00];
        assert_eq!(decode(&bytes).unwrap(), Message::push(Route::Name(""), b""));
    }

    #[test]
    fn every_truncation_of_a_request_is_an_error_or_a_shorter_body() {
        // A message is always whole (the package layer waits for it), so a cut inside the id or
        // the route is malformed, and a cut inside the body is just a shorter body.
        let mut bytes = vec![0x00, 0xac, 0x02, 0x05];
        bytes.extend_from_slice(b"onMsg{}");
        for cut in 0..bytes.len() {
            let result = decode(&bytes[..cut]);
            match cut {
                0 => assert_eq!(result, Err(ProtocolError::Malformed("empty message"))),
                1 | 2 => assert_eq!(result, Err(ProtocolError::Malformed("truncated message id"))),
                3..=8 => assert_eq!(result, Err(ProtocolError::Malformed("truncated route"))),
                _ => assert_eq!(result.unwrap().body, &bytes[9..cut]),
            }
        }
    }

    #[test]
    fn faults() {
        let m = ProtocolError::Malformed;
        assert_eq!(decode(&[0x20, 0x00]), Err(m("reserved flag bits set")));
        assert_eq!(decode(&[0x80]), Err(m("reserved flag bits set")));
        assert_eq!(decode(&[0x16, 0x00]), Err(m("gzip flag set")));
        assert_eq!(decode(&[0x08, 0x01]), Err(m("unknown message type")));
        assert_eq!(decode(&[0x0e]), Err(m("unknown message type")));
        assert_eq!(decode(&[0x00, 0x00, 0x00]), Err(m("request with id 0")));
        assert_eq!(decode(&[0x04, 0x00]), Err(m("response without id")));
        assert_eq!(decode(&[0x04]), Err(m("truncated message id")));
        assert_eq!(decode(&[0x00, 0x80]), Err(m("truncated message id")));
        assert_eq!(
            decode(&[0x00, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x00]),
            Err(m("message id overflows u32"))
        );
        assert_eq!(decode(&[0x05, 0x01]), Err(m("response with route flag")));
        assert_eq!(decode(&[0x07, 0x00]), Err(m("truncated route")));
        assert_eq!(decode(&[0x06, 0x02, 0xc3, 0x28]), Err(m("route is not UTF-8")));
        assert_eq!(decode(&[0x06, 0x02, b'a']), Err(m("truncated route")));
    }

    #[test]
    fn encode_refuses_what_decode_never_yields() {
        let mut out = BytesMut::new();
        let m = ProtocolError::Malformed;
        let req = |id, route| Message { kind: MessageType::Request, id, route, body: b"" };
        assert_eq!(encode(&req(0, Route::Code(1)), &mut out), Err(m("request with id 0")));
        assert_eq!(encode(&req(1, Route::None), &mut out), Err(m("message without route")));
        assert_eq!(encode(&Message::response(0, b""), &mut out), Err(m("response without id")));
        let mut with_route = Message::response(1, b"");
        with_route.route = Route::Code(1);
        assert_eq!(encode(&with_route, &mut out), Err(m("response with route")));
        let mut push_with_id = Message::push(Route::Code(1), b"");
        push_with_id.id = 7;
        assert_eq!(encode(&push_with_id, &mut out), Err(m("notify or push with id")));
        let long = "r".repeat(256);
        assert_eq!(
            encode(&Message::push(Route::Name(&long), b""), &mut out),
            Err(ProtocolError::RouteTooLong(256))
        );
        assert!(out.is_empty(), "a refused message writes nothing");
        let max = "r".repeat(255);
        encode(&Message::push(Route::Name(&max), b""), &mut out).unwrap();
        assert_eq!(out.len(), 2 + 255);
    }

    #[test]
    fn encode_package_adds_the_data_header() {
        // §6: push onMsg `{"msg":"hi"}` without dict.
        let mut out = BytesMut::new();
        encode_package(&Message::push(Route::Name("onMsg"), br#"{"msg":"hi"}"#), &mut out).unwrap();
        assert_eq!(&out[..4], &[0x04, 0x00, 0x00, 0x13]);
        assert_eq!(&out[4..6], &[0x06, 0x05]);
        let big = vec![0u8; MAX_BODY_LEN];
        let mut out = BytesMut::new();
        assert_eq!(
            encode_package(&Message::push(Route::Code(1), &big), &mut out),
            Err(ProtocolError::BodyTooLarge(MAX_BODY_LEN + 3))
        );
        assert!(out.is_empty());
    }

    fn route() -> impl Strategy<Value = (Option<String>, u16)> {
        prop_oneof![
            "\\PC{0,40}"
                .prop_filter("fits a byte", |s| s.len() <= MAX_ROUTE_LEN)
                .prop_map(|s| (Some(s), 0)),
            any::<u16>().prop_map(|c| (None, c)),
        ]
    }

    proptest! {
        #[test]
        fn message_round_trip(
            kind in 0u8..4,
            id in 1u32..,
            (name, code) in route(),
            body in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let kind = [MessageType::Request, MessageType::Notify, MessageType::Response, MessageType::Push][kind as usize];
            let route = match (&name, kind.has_route()) {
                (_, false) => Route::None,
                (Some(name), true) => Route::Name(name),
                (None, true) => Route::Code(code),
            };
            let id = if kind.has_id() { id } else { 0 };
            let msg = Message { kind, id, route, body: &body };
            let bytes = encoded(&msg);
            prop_assert_eq!(decode(&bytes), Ok(msg));

            let mut pkg = BytesMut::new();
            encode_package(&msg, &mut pkg).unwrap();
            let (p, used) = package::decode(&pkg, MAX_BODY_LEN).unwrap().unwrap();
            prop_assert_eq!(used, pkg.len());
            prop_assert_eq!(p.kind, PackageType::Data);
            prop_assert_eq!(p.body, &bytes[..]);
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
            if let Ok(msg) = decode(&bytes) {
                // Whatever decodes re-encodes to the same bytes, except a non-minimal id.
                let again = encoded(&msg);
                prop_assert!(again.len() <= bytes.len());
                prop_assert_eq!(decode(&again), Ok(msg));
            }
        }
    }
}

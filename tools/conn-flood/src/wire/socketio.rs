//! The client side of Socket.IO that a Pomelo client (pomelo-jsclient-socket.io) speaks to
//! shaddock's sioconnector frontend: the upgrade and long-polling paths of each generation,
//! socket.io 0.9's HTTP handshake, polling bodies (a payload of packets out in a POST, in from a
//! poll's answer; the HTTP is `wire/http.rs`, the exchange `conn/polling.rs`), the text packets a client writes (CONNECT, pongs, pings, a
//! Pomelo request inside a `message`) and the ones it reads (open, CONNECT, pings, messages,
//! disconnects), on top of the library's codecs (`shaddock::protocol::socketio`).
//!
//! ```text
//! EIO 4 (socket.io 3-4)  upgrade {path}/?EIO=4&transport=websocket
//!   <- 0{"sid":..,"pingInterval":25000,..}   -> 40   <- 40{"sid":..}
//!   -> 42["message","\u0000\u0000\u0000\u0001\u001cconnector.entryHandler.enter{..}"]
//!   <- 42["message","{\"id\":1,\"body\":{\"code\":200,\"msg\":\"add ok\"}}"]
//!   <- 42["message","{\"route\":\"onMsg\",\"body\":{\"msg\":\"cf:<seq>:<send_ns>:xx\"}}"]
//!   <- 2  -> 3                                 (the server pings)
//! EIO 3 (socket.io 1-2)  upgrade {path}/?EIO=3&transport=websocket
//!   <- 0{..,"pingInterval":25000,..}  <- 40  (connected unasked); -> 2 every pingInterval, <- 3
//! 0.9                    GET {path}/1/ -> 200 "<sid>:<heartbeat>:<close>:websocket" (own
//!                        connection), then upgrade {path}/1/websocket/<sid>
//!   <- 1::   -> 3:::<pomelo request>   <- 3:::{"id":1,"body":{..}}   <- 2::  -> 2::
//! kick (any):  <- message {"route":"onKick","reason":".."}, then 41 / 0::, then a close frame
//! ```
//!
//! # Invariants
//! - Text only: every packet here travels in one WebSocket text frame (the caller frames and
//!   masks it); a frame that is not UTF-8 is a fault.
//! - [`decode_server`] borrows from the frame and never allocates: a push is recognised as a
//!   `message` whose raw text holds a stamp (`stamp::find` on [`Message::raw`]; a stamp has no
//!   character JSON escapes, so it reads the same escaped or not). Only what is not a push
//!   (the enter response, a kick) is unescaped and parsed, by [`Message::text`] and
//!   [`classify`].
//! - What a Pomelo socket.io client ignores is [`Server::Other`]: other namespaces, other
//!   events, acks, noops.
//! - [`decode_v09_handshake`] waits for the whole body its `Content-Length` announces
//!   (`Ok(None)` until then) and refuses a head over 8 KiB, a status other than 200, a body that
//!   is not `sid:heartbeat:close:transports`, and transports without the one the client takes
//!   (`websocket`, `xhr-polling`).
//! - [`decode_poll_body`] decodes a whole body or nothing: the first packet that does not
//!   decode refuses it.

use std::borrow::Cow;

use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use shaddock::protocol::socketio::engineio::{self, EioVersion, PacketType};
use shaddock::protocol::socketio::packet::{self, SioPacket, SioPacketType};
use shaddock::protocol::socketio::pomelo as sio_pomelo;
use shaddock::protocol::socketio::v09::{self, V09Type};

use crate::wire::{http, pomelo};

/// The socket.io generation a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    /// socket.io 0.9 (protocol 1): an HTTP handshake, then its own WebSocket.
    V09,
    /// Engine.IO 3 with socket.io protocol 4 (socket.io 1.x-2.x): the client pings.
    Eio3,
    /// Engine.IO 4 with socket.io protocol 5 (socket.io 3.x-4.x): the server pings.
    Eio4,
}

impl Version {
    /// The `EIO` query parameter (0.9 has none: `0`).
    pub fn eio_digit(self) -> char {
        match self {
            Version::V09 => '0',
            Version::Eio3 => '3',
            Version::Eio4 => '4',
        }
    }

    /// The version's usual name.
    pub fn name(self) -> &'static str {
        match self {
            Version::V09 => "0.9",
            Version::Eio3 => "EIO 3",
            Version::Eio4 => "EIO 4",
        }
    }
}

/// The CONNECT to the default namespace an Engine.IO 4 client sends after the open packet.
pub const EIO4_CONNECT: &str = "40";

/// What the server sent in one text frame, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server<'a> {
    /// Engine.IO's open packet `0{..}`, with its `sid`, `pingInterval` and `pingTimeout` (ms)
    /// when it has them.
    Open {
        /// `sid` (what polling requests show back), when it is a plain JSON string.
        sid: Option<&'a str>,
        /// `pingInterval`, milliseconds.
        ping_interval_ms: Option<u64>,
        /// `pingTimeout`, milliseconds.
        ping_timeout_ms: Option<u64>,
    },
    /// The default namespace is connected: `40`, `40{"sid":..}` (EIO), `1::` (0.9).
    Connected,
    /// The server's heartbeat, with its data: `2` (EIO 4; answer `3`), `2::` (0.9; answer
    /// `2::`).
    Ping(&'a str),
    /// Engine.IO's `3`: the answer to an EIO 3 client's ping.
    Pong,
    /// A `message` for Pomelo.
    Message(Message<'a>),
    /// socket.io's disconnect (`41`, `0::`) or Engine.IO's close (`1`).
    Disconnect,
    /// A refusal: socket.io's CONNECT_ERROR (`44..`) or 0.9's error (`7:::reason+advice`),
    /// its data.
    Error(&'a str),
    /// What a Pomelo client ignores.
    Other,
}

/// A `message` event's argument, as it is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// Engine.IO: the event array `["message","<the message, JSON-escaped>"]`.
    Event(&'a str),
    /// socket.io 0.9: the message itself (the data of `3:::<message>`).
    Text(&'a str),
}

impl<'a> Message<'a> {
    /// The bytes as received (escaped in an Engine.IO event): what a stamp is looked for in.
    #[inline]
    pub fn raw(&self) -> &'a [u8] {
        match self {
            Message::Event(s) | Message::Text(s) => s.as_bytes(),
        }
    }

    /// The message itself: unescaped (allocating) from an Engine.IO event, borrowed from 0.9.
    pub fn text(&self) -> Result<Cow<'a, str>, SioFault> {
        match *self {
            Message::Text(s) => Ok(Cow::Borrowed(s)),
            Message::Event(data) => {
                let event =
                    SioPacket { kind: SioPacketType::Event, namespace: "/", ack_id: None, data };
                match packet::event_message(&event) {
                    Ok(Some(message)) => Ok(Cow::Owned(message)),
                    Ok(None) => Err(SioFault::Packet("a message event without a string".into())),
                    Err(e) => Err(SioFault::Packet(e.to_string())),
                }
            }
        }
    }
}

/// What a Pomelo message (the text of a `message`) is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PomeloMessage {
    /// `{"id":N,"body":{..}}`, with the body's `code` when it has one.
    Response {
        /// The request id.
        id: u64,
        /// `body.code`.
        code: Option<u64>,
    },
    /// `{"route":"onKick","reason":".."}`.
    Kick(String),
    /// `{"route":"..","body":..}`.
    Push,
    /// Anything else (a batch, JSON that is not an object).
    Other,
}

/// The 0.9 handshake's answer, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V09Handshake<'a> {
    /// The session id the WebSocket shows back.
    pub sid: &'a str,
    /// The heartbeat timeout, seconds (`None` when the server leaves it empty).
    pub heartbeat_secs: Option<u32>,
    /// The close timeout, seconds.
    pub close_secs: Option<u32>,
}

/// Why a Socket.IO answer or packet is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SioFault {
    /// The 0.9 handshake was answered with this status, not 200.
    Status(u16),
    /// The 0.9 handshake's answer is not an HTTP/1.1 response with a `Content-Length`, or its
    /// head is longer than 8 KiB.
    BadAnswer(&'static str),
    /// The 0.9 handshake body is not `sid:heartbeat:close:transports` with `websocket`.
    BadHandshake(String),
    /// A text frame that is not UTF-8.
    NotUtf8,
    /// A packet that does not decode, or that a server does not send.
    Packet(String),
}

impl std::fmt::Display for SioFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SioFault::Status(status) => write!(f, "handshake answered {status}"),
            SioFault::BadAnswer(what) => write!(f, "handshake answer: {what}"),
            SioFault::BadHandshake(body) => write!(f, "handshake body {body:?}"),
            SioFault::NotUtf8 => f.write_str("a text frame that is not UTF-8"),
            SioFault::Packet(what) => f.write_str(what),
        }
    }
}

/// The path of the WebSocket upgrade under the Socket.IO `path` (`/socket.io`): Engine.IO's
/// query, or 0.9's `/1/websocket/<sid>`.
pub fn upgrade_path(version: Version, path: &str, sid: &str) -> String {
    match version {
        Version::V09 => format!("{path}/1/websocket/{sid}"),
        Version::Eio3 => format!("{path}/?EIO=3&transport=websocket"),
        Version::Eio4 => format!("{path}/?EIO=4&transport=websocket"),
    }
}

/// Appends socket.io 0.9's handshake request, `GET {path}/1/`, on a connection of its own.
pub fn encode_v09_handshake(host: &str, path: &str, out: &mut BytesMut) {
    http::encode_get(host, &format!("{path}/1/"), true, out);
}

/// Reads the answer to the 0.9 handshake, which must offer `transport` (`websocket`,
/// `xhr-polling`): `Ok(Some((handshake, bytes used)))` once the whole body is in, `Ok(None)`
/// before.
pub fn decode_v09_handshake<'a>(
    buf: &'a [u8],
    transport: &str,
) -> Result<Option<(V09Handshake<'a>, usize)>, SioFault> {
    let Some((answer, used)) =
        http::decode_response(buf, http::MAX_HEAD).map_err(|e| SioFault::BadAnswer(e.what()))?
    else {
        return Ok(None);
    };
    if answer.status != 200 {
        return Err(SioFault::Status(answer.status));
    }
    let body =
        std::str::from_utf8(answer.body).map_err(|_| SioFault::BadAnswer("body not UTF-8"))?;
    let bad = || SioFault::BadHandshake(body.to_string());
    let mut fields = body.trim_end().splitn(4, ':');
    let (Some(sid), Some(heartbeat), Some(close), Some(transports)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(bad());
    };
    let seconds = |field: &str| match field {
        "" => Ok(None),
        digits => digits.parse::<u32>().map(Some).map_err(|_| bad()),
    };
    if sid.is_empty() || !transports.split(',').any(|t| t == transport) {
        return Err(bad());
    }
    let handshake =
        V09Handshake { sid, heartbeat_secs: seconds(heartbeat)?, close_secs: seconds(close)? };
    Ok(Some((handshake, used)))
}

/// The target of a long-polling request, its `t` (cache buster) numbering it: Engine.IO's
/// query, with the session's `sid` once the open packet gave one; 0.9's
/// `/1/xhr-polling/<sid>`.
pub fn polling_target(version: Version, path: &str, sid: Option<&str>, t: u64) -> String {
    match (version, sid) {
        (Version::V09, sid) => format!("{path}/1/xhr-polling/{}?t={t}", sid.unwrap_or("")),
        (Version::Eio3 | Version::Eio4, None) => {
            format!("{path}/?EIO={}&transport=polling&t={t}", version.eio_digit())
        }
        (Version::Eio3 | Version::Eio4, Some(sid)) => {
            format!("{path}/?EIO={}&transport=polling&t={t}&sid={sid}", version.eio_digit())
        }
    }
}

/// The packets of a poll's answer, each decoded as [`decode_server`] decodes a text frame:
/// Engine.IO 4's packets joined by 0x1E, Engine.IO 3's `<UTF-16 length>:<packet>`s, 0.9's
/// U+FFFD-framed packets (or one packet as is). An empty body holds none.
pub fn decode_poll_body(version: Version, body: &[u8]) -> Result<Vec<Server<'_>>, SioFault> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    match version {
        Version::V09 => {
            let text = std::str::from_utf8(body).map_err(|_| SioFault::NotUtf8)?;
            let packets = v09::decode_frames(text, usize::MAX)
                .map_err(|e| SioFault::Packet(format!("polling body: {e}")))?;
            packets.into_iter().map(decode_v09).collect()
        }
        Version::Eio3 | Version::Eio4 => {
            let eio = if version == Version::Eio3 { EioVersion::V3 } else { EioVersion::V4 };
            let packets = engineio::decode_payload(eio, body, usize::MAX)
                .map_err(|e| SioFault::Packet(format!("polling body: {e}")))?;
            packets.into_iter().map(engine_io_packet).collect()
        }
    }
}

/// Appends a POST's body made of client `packets` (each as [`encode_request`], [`pong`] or
/// [`heartbeat`] give it): Engine.IO's payload, 0.9's frames (one packet as is).
pub fn encode_post_body<'a>(
    version: Version,
    packets: impl IntoIterator<Item = &'a str>,
    out: &mut BytesMut,
) {
    match version {
        Version::V09 => v09::encode_frames(packets, out),
        Version::Eio3 => engineio::encode_payload(EioVersion::V3, packets, out),
        Version::Eio4 => engineio::encode_payload(EioVersion::V4, packets, out),
    }
}

/// Appends a Pomelo request as this version's `message`: `42["message","<request>"]` (EIO),
/// `3:::<request>` (0.9); the request is pomelo-jsclient-socket.io's string (4 chars of id,
/// 1 of route length, the route, the JSON body).
pub fn encode_request(
    version: Version,
    id: u32,
    route: &str,
    body_json: &str,
    out: &mut BytesMut,
) -> Result<(), SioFault> {
    let request = sio_pomelo::encode_request(id, route, body_json)
        .map_err(|e| SioFault::Packet(e.to_string()))?;
    match version {
        Version::V09 => v09::encode(V09Type::Message, "", &request, out),
        Version::Eio3 | Version::Eio4 => packet::encode_message_event(&request, out),
    }
    Ok(())
}

/// The answer to a server ping without data: `3` (EIO), `2::` (0.9).
pub fn pong(version: Version) -> &'static str {
    match version {
        Version::V09 => "2::",
        Version::Eio3 | Version::Eio4 => "3",
    }
}

/// Appends the answer to the server's ping whose data is `data`: `3<data>` (EIO), `2::` (0.9).
pub fn encode_pong(version: Version, data: &str, out: &mut BytesMut) {
    match version {
        Version::V09 => v09::encode(V09Type::Heartbeat, "", "", out),
        Version::Eio3 | Version::Eio4 => engineio::encode_packet(PacketType::Pong, data, out),
    }
}

/// The heartbeat a client sends on its own: `2` (EIO 3, every `pingInterval`), `2::` (0.9,
/// which the server takes at any time); `None` for EIO 4, whose clients only answer.
pub fn heartbeat(version: Version) -> Option<&'static str> {
    match version {
        Version::V09 => Some("2::"),
        Version::Eio3 => Some("2"),
        Version::Eio4 => None,
    }
}

/// Decodes one text frame from the server.
#[inline]
pub fn decode_server(version: Version, payload: &[u8]) -> Result<Server<'_>, SioFault> {
    let text = std::str::from_utf8(payload).map_err(|_| SioFault::NotUtf8)?;
    match version {
        Version::V09 => decode_v09(text),
        Version::Eio3 | Version::Eio4 => decode_engine_io(text),
    }
}

/// The head of an EVENT `message` on `/`, after the Engine.IO and socket.io type digits.
const MESSAGE_EVENT: &str = "[\"message\",";

fn decode_engine_io(text: &str) -> Result<Server<'_>, SioFault> {
    let packet = engineio::decode_packet(text).map_err(|e| SioFault::Packet(e.to_string()))?;
    engine_io_packet(packet)
}

/// The string after `"<key>":"` in a JSON object, up to the next quote; `None` when the key
/// is absent or its string has an escape (a sid never has one).
fn json_plain_string<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!("\"{key}\":\"");
    let at = json.find(&needle)? + needle.len();
    let value = &json[at..json[at..].find('"')? + at];
    (!value.contains('\\')).then_some(value)
}

fn engine_io_packet(packet: engineio::Packet<'_>) -> Result<Server<'_>, SioFault> {
    Ok(match packet.kind {
        PacketType::Open => Server::Open {
            sid: json_plain_string(packet.data, "sid"),
            ping_interval_ms: pomelo::json_number(packet.data.as_bytes(), "pingInterval"),
            ping_timeout_ms: pomelo::json_number(packet.data.as_bytes(), "pingTimeout"),
        },
        PacketType::Close => Server::Disconnect,
        PacketType::Ping => Server::Ping(packet.data),
        PacketType::Pong => Server::Pong,
        PacketType::Upgrade | PacketType::Noop => Server::Other,
        PacketType::Message => {
            let sio = packet::decode(packet.data).map_err(|e| SioFault::Packet(e.to_string()))?;
            if sio.namespace != "/" {
                return Ok(Server::Other);
            }
            match sio.kind {
                SioPacketType::Connect => Server::Connected,
                SioPacketType::Disconnect => Server::Disconnect,
                SioPacketType::Event if sio.data.starts_with(MESSAGE_EVENT) => {
                    Server::Message(Message::Event(sio.data))
                }
                SioPacketType::Event | SioPacketType::Ack => Server::Other,
                SioPacketType::ConnectError => Server::Error(sio.data),
                SioPacketType::BinaryEvent | SioPacketType::BinaryAck => {
                    return Err(SioFault::Packet("a binary packet".into()));
                }
            }
        }
    })
}

fn decode_v09(text: &str) -> Result<Server<'_>, SioFault> {
    let packet = v09::decode(text).map_err(|e| SioFault::Packet(e.to_string()))?;
    if !packet.endpoint.is_empty() {
        return Ok(Server::Other);
    }
    Ok(match packet.kind {
        V09Type::Connect => Server::Connected,
        V09Type::Heartbeat => Server::Ping(""),
        V09Type::Message => Server::Message(Message::Text(packet.data)),
        V09Type::Disconnect => Server::Disconnect,
        V09Type::Error => Server::Error(packet.data),
        V09Type::Json | V09Type::Event | V09Type::Ack | V09Type::Noop => Server::Other,
    })
}

/// What a Pomelo message is (parsed as JSON: for what is not a push).
pub fn classify(message: &str) -> PomeloMessage {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str(message) else {
        return PomeloMessage::Other;
    };
    if let Some(id) = map.get("id").and_then(serde_json::Value::as_u64) {
        let code = map.get("body").and_then(|b| b.get("code")).and_then(|c| c.as_u64());
        return PomeloMessage::Response { id, code };
    }
    match map.get("route").and_then(serde_json::Value::as_str) {
        Some("onKick") => PomeloMessage::Kick(
            map.get("reason").and_then(serde_json::Value::as_str).unwrap_or("kick").to_string(),
        ),
        Some(_) => PomeloMessage::Push,
        None => PomeloMessage::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::stamp;
    use shaddock::protocol::socketio::engineio::{EioVersion, Open};

    /// What shaddock's session writes for a push of `msg` (`push/frame.rs`), before framing.
    fn server_push(version: Version, msg: &str) -> BytesMut {
        let mut message = String::new();
        sio_pomelo::encode_push("onMsg", &format!(r#"{{"msg":"{msg}"}}"#), &mut message);
        let mut out = BytesMut::new();
        match version {
            Version::V09 => v09::encode(V09Type::Message, "", &message, &mut out),
            _ => packet::encode_message_event(&message, &mut out),
        }
        out
    }

    #[test]
    fn upgrade_paths() {
        assert_eq!(
            upgrade_path(Version::Eio4, "/socket.io", ""),
            "/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(upgrade_path(Version::Eio3, "/sio", ""), "/sio/?EIO=3&transport=websocket");
        assert_eq!(
            upgrade_path(Version::V09, "/socket.io", "AbC_d-1"),
            "/socket.io/1/websocket/AbC_d-1"
        );
    }

    #[test]
    fn requests_are_what_the_server_decodes() {
        let body = pomelo::enter_client_body("demo", "c\"7");
        for version in [Version::Eio3, Version::Eio4] {
            let mut out = BytesMut::new();
            encode_request(version, 1, pomelo::ENTER, &body, &mut out).unwrap();
            let text = std::str::from_utf8(&out).unwrap();
            assert!(text.starts_with(r#"42["message","\u0000\u0000\u0000\u0001\u001cconnector"#));
            let eio = engineio::decode_packet(text).unwrap();
            assert_eq!(eio.kind, PacketType::Message);
            let sio = packet::decode(eio.data).unwrap();
            let message = packet::event_message(&sio).unwrap().unwrap();
            let request = sio_pomelo::decode_request(&message).unwrap();
            assert_eq!((request.id, request.route, request.body), (1, pomelo::ENTER, &*body));
        }
        let mut out = BytesMut::new();
        encode_request(Version::V09, 0x0102_0304, "r", "{}", &mut out).unwrap();
        assert_eq!(&out[..], "3:::\u{1}\u{2}\u{3}\u{4}\u{1}r{}".as_bytes());
        let packet = v09::decode(std::str::from_utf8(&out).unwrap()).unwrap();
        let request = sio_pomelo::decode_request(packet.data).unwrap();
        assert_eq!((request.id, request.route, request.body), (0x0102_0304, "r", "{}"));
        let long = "r".repeat(256);
        assert!(encode_request(Version::Eio4, 1, &long, "{}", &mut out).is_err());
    }

    #[test]
    fn engine_io_handshake_and_heartbeats() {
        // The open packet as shaddock writes it.
        let open = Open {
            sid: "s1",
            upgrades: &[],
            ping_interval_ms: 25_000,
            ping_timeout_ms: 20_000,
            max_payload: 65_536,
        };
        for (version, eio) in [(Version::Eio3, EioVersion::V3), (Version::Eio4, EioVersion::V4)] {
            let mut out = BytesMut::new();
            engineio::encode_open(eio, &open, &mut out);
            assert_eq!(
                decode_server(version, &out),
                Ok(Server::Open {
                    sid: Some("s1"),
                    ping_interval_ms: Some(25_000),
                    ping_timeout_ms: Some(20_000)
                })
            );
            let mut connect = BytesMut::new();
            packet::encode_connect(eio, Some("s2"), &mut connect);
            assert_eq!(decode_server(version, &connect), Ok(Server::Connected));
        }
        assert_eq!(decode_server(Version::Eio4, b"40"), Ok(Server::Connected));
        assert_eq!(decode_server(Version::Eio4, b"2"), Ok(Server::Ping("")));
        assert_eq!(decode_server(Version::Eio4, b"2probe"), Ok(Server::Ping("probe")));
        assert_eq!(decode_server(Version::Eio3, b"3"), Ok(Server::Pong));
        let mut pong = BytesMut::new();
        encode_pong(Version::Eio4, "", &mut pong);
        assert_eq!(&pong[..], self::pong(Version::Eio4).as_bytes());
        assert_eq!(&pong[..], b"3");
        encode_pong(Version::Eio4, "probe", &mut pong);
        assert_eq!(&pong[..], b"33probe");
        assert_eq!(heartbeat(Version::Eio3), Some("2"));
        assert_eq!(heartbeat(Version::Eio4), None);
        assert_eq!(EIO4_CONNECT, "40");
    }

    #[test]
    fn engine_io_messages_pushes_and_kicks() {
        let mut msg = BytesMut::new();
        stamp::encode(42, 1_234_567, 100, &mut msg);
        let msg = std::str::from_utf8(&msg).unwrap();
        let push = server_push(Version::Eio4, msg);
        let Ok(Server::Message(m)) = decode_server(Version::Eio4, &push) else {
            panic!("{push:?}");
        };
        assert_eq!(stamp::find(m.raw()), Some((42, 1_234_567)));
        let text = m.text().unwrap();
        assert_eq!(classify(&text), PomeloMessage::Push);
        assert!(text.starts_with(r#"{"route":"onMsg","body":{"msg":"cf:42:"#));

        let mut answer = String::new();
        sio_pomelo::encode_response(1, r#"{"code":200,"msg":"add ok"}"#, &mut answer);
        let mut frame = BytesMut::new();
        packet::encode_message_event(&answer, &mut frame);
        let Ok(Server::Message(m)) = decode_server(Version::Eio4, &frame) else { panic!() };
        assert_eq!(stamp::find(m.raw()), None);
        let text = m.text().unwrap();
        assert_eq!(classify(&text), PomeloMessage::Response { id: 1, code: Some(200) });

        let mut kick = String::new();
        sio_pomelo::encode_kick("heartbeat \"timeout\"", &mut kick);
        let mut frame = BytesMut::new();
        packet::encode_message_event(&kick, &mut frame);
        let Ok(Server::Message(m)) = decode_server(Version::Eio3, &frame) else { panic!() };
        assert_eq!(
            classify(&m.text().unwrap()),
            PomeloMessage::Kick("heartbeat \"timeout\"".into())
        );

        let mut disconnect = BytesMut::new();
        packet::encode_disconnect(&mut disconnect);
        assert_eq!(decode_server(Version::Eio4, &disconnect), Ok(Server::Disconnect));
        assert_eq!(decode_server(Version::Eio4, b"1"), Ok(Server::Disconnect));
        assert_eq!(
            decode_server(Version::Eio4, br#"44{"message":"Invalid namespace"}"#),
            Ok(Server::Error(r#"{"message":"Invalid namespace"}"#))
        );
        // Ignored: other events, other namespaces, acks, noops.
        for other in [&br#"42["chat","x"]"#[..], br#"42/admin,["message","x"]"#, b"431[]", b"6"] {
            assert_eq!(decode_server(Version::Eio4, other), Ok(Server::Other), "{other:?}");
        }
        // Refused: binary packets and events, unknown types, bad UTF-8.
        for bad in [&b"b4AAAA"[..], b"451-[\"message\"]", b"9", b"", b"4", b"\xff"] {
            assert!(decode_server(Version::Eio4, bad).is_err(), "{bad:?}");
        }
        assert!(Message::Event("[\"message\",1]").text().is_err());
        assert!(Message::Event("[\"message\",").text().is_err());
    }

    #[test]
    fn v09_packets() {
        let mut msg = BytesMut::new();
        stamp::encode(7, 99, 100, &mut msg);
        let push = server_push(Version::V09, std::str::from_utf8(&msg).unwrap());
        assert!(push.starts_with(br#"3:::{"route":"onMsg","body":{"msg":"cf:7:99:"#));
        let Ok(Server::Message(m)) = decode_server(Version::V09, &push) else { panic!() };
        assert_eq!(stamp::find(m.raw()), Some((7, 99)));
        assert!(matches!(m.text(), Ok(Cow::Borrowed(_))));
        assert_eq!(classify(&m.text().unwrap()), PomeloMessage::Push);

        let answer = br#"3:::{"id":1,"body":{"code":500,"msg":"duplicate log in"}}"#;
        let Ok(Server::Message(m)) = decode_server(Version::V09, answer) else { panic!() };
        assert_eq!(
            classify(&m.text().unwrap()),
            PomeloMessage::Response { id: 1, code: Some(500) }
        );

        assert_eq!(decode_server(Version::V09, b"1::"), Ok(Server::Connected));
        assert_eq!(decode_server(Version::V09, b"2::"), Ok(Server::Ping("")));
        assert_eq!(decode_server(Version::V09, b"0::"), Ok(Server::Disconnect));
        assert_eq!(decode_server(Version::V09, b"7:::1+0"), Ok(Server::Error("1+0")));
        assert_eq!(decode_server(Version::V09, b"1::/chat"), Ok(Server::Other));
        assert_eq!(decode_server(Version::V09, b"8::"), Ok(Server::Other));
        assert!(decode_server(Version::V09, b"3").is_err());
        let mut pong = BytesMut::new();
        encode_pong(Version::V09, "", &mut pong);
        assert_eq!(&pong[..], b"2::");
        assert_eq!(self::pong(Version::V09), "2::");
        assert_eq!(heartbeat(Version::V09), Some("2::"));
    }

    #[test]
    fn v09_handshake_request_and_answer() {
        let mut out = BytesMut::new();
        encode_v09_handshake("127.0.0.1:3010", "/socket.io", &mut out);
        assert_eq!(
            &out[..],
            b"GET /socket.io/1/ HTTP/1.1\r\nHost: 127.0.0.1:3010\r\nConnection: close\r\n\r\n"
        );

        // What shaddock answers (`http::encode_response` around `v09::encode_handshake`).
        let mut body = BytesMut::new();
        v09::encode_handshake("Zm9v_bar-1", 45, 60, &["websocket"], &mut body);
        let mut answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        answer.extend_from_slice(&body);
        let expected =
            V09Handshake { sid: "Zm9v_bar-1", heartbeat_secs: Some(45), close_secs: Some(60) };
        assert_eq!(decode_v09_handshake(&answer, "websocket"), Ok(Some((expected, answer.len()))));
        for cut in 0..answer.len() {
            assert_eq!(decode_v09_handshake(&answer[..cut], "websocket"), Ok(None), "cut {cut}");
        }
        let mut more = answer.clone();
        more.extend_from_slice(b"trailing");
        assert_eq!(decode_v09_handshake(&more, "websocket").unwrap().unwrap().1, answer.len());

        let ok = |body: &str| {
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len()).into_bytes()
        };
        let none = V09Handshake { sid: "s", heartbeat_secs: None, close_secs: Some(60) };
        let answer = ok("s::60:xhr-polling,websocket");
        assert_eq!(decode_v09_handshake(&answer, "websocket"), Ok(Some((none, answer.len()))));
        for bad in ["s:45:60:xhr-polling", ":45:60:websocket", "s:x:60:websocket", "s:45"] {
            assert!(
                matches!(
                    decode_v09_handshake(&ok(bad), "websocket"),
                    Err(SioFault::BadHandshake(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            decode_v09_handshake(
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
                "websocket"
            ),
            Err(SioFault::Status(403))
        );
        assert!(matches!(
            decode_v09_handshake(b"HTTP/1.1 200 OK\r\n\r\n", "websocket"),
            Err(SioFault::BadAnswer(_))
        ));
        assert!(matches!(
            decode_v09_handshake(&[b'a'; 9000], "websocket"),
            Err(SioFault::BadAnswer(_))
        ));
    }

    #[test]
    fn polling_targets_bodies_and_handshake() {
        assert_eq!(
            polling_target(Version::Eio4, "/socket.io", None, 1),
            "/socket.io/?EIO=4&transport=polling&t=1"
        );
        assert_eq!(
            polling_target(Version::Eio3, "/io", Some("s_1"), 22),
            "/io/?EIO=3&transport=polling&t=22&sid=s_1"
        );
        assert_eq!(
            polling_target(Version::V09, "/socket.io", Some("AbC"), 3),
            "/socket.io/1/xhr-polling/AbC?t=3"
        );
        // Bodies as shaddock writes them (EIO 4: no leading separator; EIO 3: lengths in
        // UTF-16 units; 0.9: framed, or one packet as is).
        let open = r#"0{"sid":"s1","pingInterval":1000,"pingTimeout":2000}"#;
        let eio4 = format!("{open}\u{1e}40\u{1e}2\u{1e}6");
        let eio3 = format!("{}:{open}2:401:3", open.len());
        let expected = [
            Server::Open {
                sid: Some("s1"),
                ping_interval_ms: Some(1000),
                ping_timeout_ms: Some(2000),
            },
            Server::Connected,
        ];
        let four = decode_poll_body(Version::Eio4, eio4.as_bytes()).unwrap();
        assert_eq!(four, [expected[0], expected[1], Server::Ping(""), Server::Other]);
        let three = decode_poll_body(Version::Eio3, eio3.as_bytes()).unwrap();
        assert_eq!(three, [expected[0], expected[1], Server::Pong]);
        let v09 = "\u{fffd}3\u{fffd}1::\u{fffd}3\u{fffd}2::";
        assert_eq!(
            decode_poll_body(Version::V09, v09.as_bytes()).unwrap(),
            [Server::Connected, Server::Ping("")]
        );
        assert_eq!(decode_poll_body(Version::V09, b"2::").unwrap(), [Server::Ping("")]);
        assert_eq!(decode_poll_body(Version::Eio4, b"").unwrap(), []);
        for (version, bad) in
            [(Version::Eio4, &b"9"[..]), (Version::Eio3, b"5:40"), (Version::V09, b"\xef\xbf\xbd2")]
        {
            assert!(decode_poll_body(version, bad).is_err(), "{bad:?}");
        }
        // An escaped sid is not taken.
        let escaped = decode_poll_body(Version::Eio4, br#"0{"sid":"a\"b"}"#).unwrap();
        assert!(matches!(escaped[0], Server::Open { sid: None, .. }));
        let mut body = BytesMut::new();
        encode_post_body(Version::Eio4, ["40", "3"], &mut body);
        assert_eq!(&body[..], b"40\x1e3");
        body.clear();
        encode_post_body(Version::Eio3, ["2", "3"], &mut body);
        assert_eq!(&body[..], b"1:21:3");
        body.clear();
        encode_post_body(Version::V09, ["2::"], &mut body);
        assert_eq!(&body[..], b"2::");
        body.clear();
        encode_post_body(Version::V09, ["2::", "3:::x"], &mut body);
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            "\u{fffd}3\u{fffd}2::\u{fffd}5\u{fffd}3:::x"
        );
        // A polling client needs the handshake to offer xhr-polling.
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\ns:45:60:websocket";
        assert!(matches!(
            decode_v09_handshake(answer, "xhr-polling"),
            Err(SioFault::BadHandshake(_))
        ));
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 29\r\n\r\ns:45:60:websocket,xhr-polling";
        assert_eq!(decode_v09_handshake(answer, "xhr-polling").unwrap().unwrap().0.sid, "s");
    }

    #[test]
    fn classify_what_is_not_a_push() {
        assert_eq!(
            classify(r#"{"id":3,"body":{}}"#),
            PomeloMessage::Response { id: 3, code: None }
        );
        assert_eq!(classify(r#"{"route":"onKick"}"#), PomeloMessage::Kick("kick".into()));
        assert_eq!(classify("[]"), PomeloMessage::Other);
        assert_eq!(classify("not json"), PomeloMessage::Other);
        assert_eq!(classify(r#"{"body":1}"#), PomeloMessage::Other);
    }
}

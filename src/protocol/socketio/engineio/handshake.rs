//! The Engine.IO handshake a server writes: the `open` packet that starts a session, and the
//! JSON body of the HTTP 400 / 403 that refuses a request.
//!
//! ```text
//! EIO 3 (engine.io 3.x):  0{"sid":"<sid>","upgrades":["websocket"],"pingInterval":25000,
//!                           "pingTimeout":5000}
//! EIO 4 (engine.io 6.x):  0{"sid":"<sid>","upgrades":["websocket"],"pingInterval":25000,
//!                           "pingTimeout":20000,"maxPayload":1000000}
//! error body:             {"code":1,"message":"Session ID unknown"}
//! ```
//!
//! # Invariants
//! - Keys are written in the order the reference servers write them (`JSON.stringify` of an
//!   object literal), strings escaped as `JSON.stringify` escapes them.
//! - Encoders never fail.

use bytes::{BufMut, BytesMut};

use crate::protocol::socketio::engineio::EioVersion;
use crate::protocol::socketio::json;

/// The handshake values of the `open` packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open<'a> {
    /// The session id the client sends back as `sid`.
    pub sid: &'a str,
    /// The transports the client may upgrade to (`["websocket"]` on polling, `[]` on a
    /// WebSocket).
    pub upgrades: &'a [&'a str],
    /// `pingInterval`, in milliseconds.
    pub ping_interval_ms: u32,
    /// `pingTimeout`, in milliseconds.
    pub ping_timeout_ms: u32,
    /// `maxPayload` (EIO 4 only): the largest polling body, in bytes, the client may send.
    pub max_payload: u32,
}

/// Appends the `open` packet: `0` and the handshake JSON, keys in the order engine.io 3.x
/// (`sid`, `upgrades`, `pingInterval`, `pingTimeout`) and 6.x (then `maxPayload`) write them.
pub fn encode_open(version: EioVersion, open: &Open<'_>, out: &mut BytesMut) {
    out.put_slice(b"0{\"sid\":");
    json::put_string(open.sid, out);
    out.put_slice(b",\"upgrades\":[");
    for (i, upgrade) in open.upgrades.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        json::put_string(upgrade, out);
    }
    out.put_slice(b"],\"pingInterval\":");
    json::put_decimal(open.ping_interval_ms.into(), out);
    out.put_slice(b",\"pingTimeout\":");
    json::put_decimal(open.ping_timeout_ms.into(), out);
    if version == EioVersion::V4 {
        out.put_slice(b",\"maxPayload\":");
        json::put_decimal(open.max_payload.into(), out);
    }
    out.put_u8(b'}');
}

/// The Engine.IO HTTP error a server answers a bad request with: `code` and `message` in a
/// JSON body (engine.io 3.x `sendErrorMessage`, 6.x `abortRequest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum HttpErrorCode {
    /// 0: the `transport` query value is not one the server serves.
    TransportUnknown = 0,
    /// 1: the `sid` is not a live session (or was sent with a handshake).
    SessionIdUnknown = 1,
    /// 2: a handshake that is not a GET.
    BadHandshakeMethod = 2,
    /// 3: anything else wrong with the request (a second concurrent poll, a bad body, ...).
    BadRequest = 3,
    /// 4: refused by the server (answered with 403).
    Forbidden = 4,
    /// 5: an `EIO` value the server does not speak (engine.io 4.0+).
    UnsupportedProtocolVersion = 5,
}

impl HttpErrorCode {
    /// The message engine.io writes for this code.
    pub fn message(self) -> &'static str {
        match self {
            HttpErrorCode::TransportUnknown => "Transport unknown",
            HttpErrorCode::SessionIdUnknown => "Session ID unknown",
            HttpErrorCode::BadHandshakeMethod => "Bad handshake method",
            HttpErrorCode::BadRequest => "Bad request",
            HttpErrorCode::Forbidden => "Forbidden",
            HttpErrorCode::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// The HTTP status engine.io answers with: 403 for [`HttpErrorCode::Forbidden`], else 400.
    pub fn status(self) -> u16 {
        if self == HttpErrorCode::Forbidden { 403 } else { 400 }
    }

    /// Appends the JSON body `{"code":N,"message":"..."}`.
    pub fn encode_body(self, out: &mut BytesMut) {
        out.put_slice(b"{\"code\":");
        json::put_decimal(self as u64, out);
        out.put_slice(b",\"message\":");
        json::put_string(self.message(), out);
        out.put_u8(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::socketio::engineio::{PacketType, decode_packet};

    use EioVersion::{V3, V4};

    #[test]
    fn open_packets() {
        // The sample session of the Socket.IO protocol documentation.
        let open = Open {
            sid: "lv_VI97HAXpY6yYWAAAC",
            upgrades: &["websocket"],
            ping_interval_ms: 25_000,
            ping_timeout_ms: 5_000,
            max_payload: 1_000_000,
        };
        let mut out = BytesMut::new();
        encode_open(V4, &open, &mut out);
        let v4 = r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000}"#;
        assert_eq!(&out[..], v4.as_bytes());
        let mut out = BytesMut::new();
        encode_open(V3, &Open { upgrades: &[], ..open }, &mut out);
        let v3 = r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":5000}"#;
        assert_eq!(&out[..], v3.as_bytes());
        let mut out = BytesMut::new();
        encode_open(V3, &Open { sid: "a\"b", upgrades: &["websocket", "x"], ..open }, &mut out);
        assert!(out.starts_with(br#"0{"sid":"a\"b","upgrades":["websocket","x"],"#));
        // What comes out is one Open packet carrying JSON.
        let text = std::str::from_utf8(&out).unwrap();
        let packet = decode_packet(text).unwrap();
        assert_eq!(packet.kind, PacketType::Open);
        let json: serde_json::Value = serde_json::from_str(packet.data).unwrap();
        assert_eq!(json["pingTimeout"], 5000);
    }

    #[test]
    fn http_error_bodies() {
        let all = [
            (HttpErrorCode::TransportUnknown, r#"{"code":0,"message":"Transport unknown"}"#),
            (HttpErrorCode::SessionIdUnknown, r#"{"code":1,"message":"Session ID unknown"}"#),
            (HttpErrorCode::BadHandshakeMethod, r#"{"code":2,"message":"Bad handshake method"}"#),
            (HttpErrorCode::BadRequest, r#"{"code":3,"message":"Bad request"}"#),
            (HttpErrorCode::Forbidden, r#"{"code":4,"message":"Forbidden"}"#),
            (
                HttpErrorCode::UnsupportedProtocolVersion,
                r#"{"code":5,"message":"Unsupported protocol version"}"#,
            ),
        ];
        for (code, body) in all {
            let mut out = BytesMut::new();
            code.encode_body(&mut out);
            assert_eq!(&out[..], body.as_bytes());
            assert_eq!(code.status(), if code == HttpErrorCode::Forbidden { 403 } else { 400 });
        }
        assert_eq!(EioVersion::from_query("3"), Some(V3));
        assert_eq!(EioVersion::from_query("4"), Some(V4));
        assert_eq!(EioVersion::from_query("2"), None);
    }
}

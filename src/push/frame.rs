//! Encode once: a push, and its wire forms.
//!
//! A [`Push`] is what the platform sends (a route and a JSON body, serialized once). A [`Frame`]
//! is a push encoded for the [`WireForm`]s its recipients use, each form encoded once and shared
//! by reference count (`Bytes`): every recipient of a broadcast gets the same bytes, with no
//! per-recipient encoding, allocation or copy.
//!
//! # Forms
//! How each frontend encodes a push (the frontend contract's third item) lives here, one arm per
//! form in [`FrameEncoder::encode`], from that frontend's codec under `protocol/`:
//! - `PomeloTcp`: a Pomelo DATA package with a PUSH message, its route compressed by the
//!   route dictionary when the server uses one, its body the push's protobuf body when its
//!   route has a server proto (encoded once, in [`Push::with_protos`]), else the JSON.
//! - `PomeloWebSocket`: the same package behind a binary WebSocket frame header. Server frames
//!   are unmasked, so this form too is the same for every recipient; when both Pomelo forms are
//!   asked for they share one buffer, the header just before the package.
//! - `Mqtt311Tcp` / `Mqtt5Tcp`: a QoS 0 PUBLISH on the push's MQTT topic with its MQTT payload
//!   ([`MqttPush`]); `Mqtt311WebSocket` / `Mqtt5WebSocket`: the same behind a binary frame
//!   header. A QoS 1 recipient gets its own small header (its packet id) and the shared payload:
//!   the frame keeps, per version, the [`SharedPublish`] that makes both
//!   ([`Frame::mqtt`]). A push without an MQTT form (`onAdd`, `onLeave`) leaves them empty.
//! - `SocketIo09WebSocket` / `EngineIoWebSocket`: Pomelo's sioconnector push,
//!   `{"route":..,"body":<the JSON body>}`, as a socket.io 0.9 message packet (`3:::...`) or
//!   a socket.io `message` event (`42["message","..."]`, the same for Engine.IO 3 and 4), each
//!   in one text WebSocket frame. `SocketIo09Polling` / `EngineIo3Polling` /
//!   `EngineIo4Polling`: the same packets as elements of a polling payload (U+FFFD framed,
//!   `<len>:`, `0x1E` in front), appended to each polling member's pending output as they are;
//!   a frame with a polling form has its version's WebSocket form too, for a member that
//!   upgrades while the frame is on its way to its core.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::ids::{Forms, WireForm};
use crate::protocol::ProtocolError;
use crate::protocol::mqtt::{Properties, ProtocolVersion, SharedPublish};
use crate::protocol::pomelo::RouteDict;
use crate::protocol::pomelo::message::{self, Message, Route};
use crate::protocol::pomelo::package::{HEADER_LEN, MAX_BODY_LEN};
use crate::protocol::protobuf::{CodecError, Protos};
use crate::protocol::socketio::engineio::{self, EioVersion};
use crate::protocol::socketio::v09::{self, V09Type};
use crate::protocol::socketio::{packet, pomelo};
use crate::protocol::websocket::frame::{self as ws, OpCode};

/// A push before encoding: the route and the body, shared by every recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub route: &'static str,
    /// The JSON body.
    pub body: Bytes,
    /// What a Pomelo client receives instead of `body`, when the route has a server proto: the
    /// body encoded with it (pomelo-protobuf), once for every recipient.
    pub pomelo_body: Option<Bytes>,
    /// What an MQTT client receives, if this push reaches MQTT clients at all (`onMsg` does).
    pub mqtt: Option<MqttPush>,
}

/// A push as MQTT clients receive it: a PUBLISH on `topic` carrying `payload`. Cloned by
/// reference count (an away session's queue holds clones, never copies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttPush {
    /// `push/{apikey}` for the channel, `push/{apikey}/{clientId}` for one client.
    pub topic: Arc<str>,
    /// The push's `msg`, as JSON.
    pub payload: Bytes,
}

impl Push {
    /// A push of `body` (any JSON value) on `route`.
    pub fn new(route: &'static str, body: &serde_json::Value) -> Push {
        // A `Value` always serializes: its keys are strings.
        let json = serde_json::to_vec(body).unwrap_or_default();
        Push { route, body: Bytes::from(json), pomelo_body: None, mqtt: None }
    }

    /// A push of `body` on `route`, for Pomelo clients encoded with `server`'s proto of the
    /// route if it has one; the error names the field that does not fit it.
    pub fn with_protos(
        route: &'static str,
        body: &serde_json::Value,
        server: &Protos,
    ) -> Result<Push, CodecError> {
        let mut push = Push::new(route, body);
        if server.has(route) {
            let mut encoded = BytesMut::new();
            server.encode(route, body, &mut encoded)?;
            push.pomelo_body = Some(encoded.freeze());
        }
        Ok(push)
    }

    /// The body in a Pomelo message: the protobuf one if there is one, else the JSON.
    pub fn pomelo_body(&self) -> &Bytes {
        self.pomelo_body.as_ref().unwrap_or(&self.body)
    }

    /// A push for MQTT clients only (one an away session kept: its other forms are gone).
    pub fn mqtt_only(mqtt: MqttPush) -> Push {
        Push { route: "onMsg", body: Bytes::new(), pomelo_body: None, mqtt: Some(mqtt) }
    }

    /// The same push, reaching MQTT clients as `payload` on `topic`.
    pub fn with_mqtt(self, topic: String, payload: Bytes) -> Push {
        Push { mqtt: Some(MqttPush { topic: topic.into(), payload }), ..self }
    }
}

/// A push encoded in the forms its recipients need; the others are empty. Cloned per core by
/// reference count: one atomic increment, whatever the forms.
#[derive(Debug, Clone)]
pub struct Frame(Arc<Encoded>);

#[derive(Debug, Default)]
struct Encoded {
    /// Per form, what every recipient of it gets (for MQTT forms: at QoS 0).
    forms: [Bytes; WireForm::COUNT],
    /// Per MQTT version (3.1.1, 5.0), the PUBLISH for QoS 1 recipients, if encoded.
    mqtt: [Option<SharedPublish>; 2],
    /// What MQTT clients receive of the push, when it reaches them.
    source: Option<MqttPush>,
    /// When the push service accepted the push, for the fan-out histogram.
    accepted: Option<Instant>,
}

impl Frame {
    /// The same frame, marked as accepted `at` (a frame not shared yet; a shared one is left as
    /// it is).
    pub fn stamped(mut self, at: Instant) -> Frame {
        if let Some(encoded) = Arc::get_mut(&mut self.0) {
            encoded.accepted = Some(at);
        }
        self
    }

    /// When the push service accepted the push, if it said.
    pub fn accepted(&self) -> Option<Instant> {
        self.0.accepted
    }

    /// The bytes a client of `form` receives; empty if the frame was not encoded for it. For an
    /// MQTT form, the QoS 0 PUBLISH.
    pub fn bytes(&self, form: WireForm) -> &Bytes {
        &self.0.forms[form.index()]
    }

    /// The PUBLISH of this push for MQTT `version` clients at QoS 1 (a per-connection header,
    /// then the shared payload), if the frame was encoded for that version.
    pub fn mqtt(&self, version: ProtocolVersion) -> Option<&SharedPublish> {
        self.0.mqtt[mqtt_index(version)].as_ref()
    }

    /// The push as MQTT clients receive it, if they do (what an away session keeps).
    pub fn mqtt_push(&self) -> Option<&MqttPush> {
        self.0.source.as_ref()
    }

    /// The forms this frame holds.
    pub fn forms(&self) -> Forms {
        WireForm::ALL
            .into_iter()
            .filter(|&f| !self.0.forms[f.index()].is_empty())
            .fold(Forms::NONE, Forms::with)
    }
}

/// Encodes pushes for every frontend: what each needs to know about the server's encoding (for
/// Pomelo, the route dictionary) is resolved once, at start.
#[derive(Debug, Clone)]
pub struct FrameEncoder {
    pomelo_routes: Option<RouteDict>,
    /// `EngineIo3Polling` in engine.io 1.x's payload form (`socketio.engine_io_1x_polling`).
    engine_io_1x_polling: bool,
}

impl FrameEncoder {
    pub fn new(pomelo_routes: Option<RouteDict>) -> FrameEncoder {
        FrameEncoder { pomelo_routes, engine_io_1x_polling: false }
    }

    /// The same encoder, writing Engine.IO 3 polling elements as engine.io 1.x does (each
    /// packet's UTF-8 as a string of bytes).
    pub fn with_engine_io_1x_polling(self, engine_io_1x_polling: bool) -> FrameEncoder {
        FrameEncoder { engine_io_1x_polling, ..self }
    }

    /// How a push route goes on a Pomelo wire: its dictionary code when it has one.
    pub fn pomelo_route(&self, route: &'static str) -> Route<'static> {
        match self.pomelo_routes.as_ref().and_then(|d| d.code(route)) {
            Some(code) => Route::Code(code),
            None => Route::Name(route),
        }
    }

    /// Fails as [`encode`](Self::encode) would for any form, without encoding.
    pub fn check(&self, push: &Push) -> Result<(), ProtocolError> {
        let msg = Message::push(self.pomelo_route(push.route), push.pomelo_body());
        match message::encoded_len(&msg) {
            len if len > MAX_BODY_LEN => Err(ProtocolError::BodyTooLarge(len)),
            _ => Ok(()),
        }
    }

    /// Encodes `push` once for each of `forms`.
    pub fn encode(&self, push: &Push, forms: Forms) -> Result<Frame, ProtocolError> {
        let mut frame = Encoded::default();
        let tcp = forms.contains(WireForm::PomeloTcp);
        let websocket = forms.contains(WireForm::PomeloWebSocket);
        if tcp || websocket {
            let msg = Message::push(self.pomelo_route(push.route), push.pomelo_body());
            let package_len = HEADER_LEN + message::encoded_len(&msg);
            let header_len = if websocket { ws::header_len(package_len) } else { 0 };
            let mut out = BytesMut::with_capacity(header_len + package_len);
            if websocket {
                ws::encode_header(true, OpCode::Binary, package_len, &mut out);
            }
            message::encode_package(&msg, &mut out)?;
            let encoded = out.freeze();
            if tcp {
                frame.forms[WireForm::PomeloTcp.index()] = encoded.slice(header_len..);
            }
            if websocket {
                frame.forms[WireForm::PomeloWebSocket.index()] = encoded;
            }
        }
        if let Some(mqtt) = &push.mqtt {
            frame.source = Some(mqtt.clone());
            for (version, tcp, websocket) in [
                (ProtocolVersion::V311, WireForm::Mqtt311Tcp, WireForm::Mqtt311WebSocket),
                (ProtocolVersion::V5, WireForm::Mqtt5Tcp, WireForm::Mqtt5WebSocket),
            ] {
                if forms.contains(tcp) || forms.contains(websocket) {
                    let publish = encode_mqtt(mqtt, version)?;
                    if forms.contains(websocket) {
                        frame.forms[websocket.index()] = in_ws_frame(&publish.qos0());
                    }
                    frame.forms[tcp.index()] = publish.qos0();
                    frame.mqtt[mqtt_index(version)] = Some(publish);
                }
            }
        }
        let v09_polling = forms.contains(WireForm::SocketIo09Polling);
        let eio3_polling = forms.contains(WireForm::EngineIo3Polling);
        let eio4_polling = forms.contains(WireForm::EngineIo4Polling);
        // A polling member may upgrade while the frame is on its way: it gets the WebSocket
        // form then.
        let v09_ws = forms.contains(WireForm::SocketIo09WebSocket) || v09_polling;
        let eio_ws = forms.contains(WireForm::EngineIoWebSocket) || eio3_polling || eio4_polling;
        if v09_ws || v09_polling || eio_ws || eio3_polling || eio4_polling {
            let body = std::str::from_utf8(&push.body)
                .map_err(|_| ProtocolError::Malformed("a push body that is not UTF-8"))?;
            let mut message = String::with_capacity(push.route.len() + body.len() + 24);
            pomelo::encode_push(push.route, body, &mut message);
            let mut packet = BytesMut::new();
            if v09_ws || v09_polling {
                v09::encode(V09Type::Message, "", &message, &mut packet);
                let text = std::str::from_utf8(&packet).unwrap_or_default();
                if v09_ws {
                    frame.forms[WireForm::SocketIo09WebSocket.index()] = in_text_frame(&packet);
                }
                if v09_polling {
                    let mut framed = BytesMut::new();
                    v09::encode_framed(text, &mut framed);
                    frame.forms[WireForm::SocketIo09Polling.index()] = framed.freeze();
                }
                packet.clear();
            }
            if eio_ws || eio3_polling || eio4_polling {
                packet::encode_message_event(&message, &mut packet);
                let text = std::str::from_utf8(&packet).unwrap_or_default();
                if eio_ws {
                    frame.forms[WireForm::EngineIoWebSocket.index()] = in_text_frame(&packet);
                }
                for (polling, form, eio) in [
                    (eio3_polling, WireForm::EngineIo3Polling, EioVersion::V3),
                    (eio4_polling, WireForm::EngineIo4Polling, EioVersion::V4),
                ] {
                    if polling {
                        let mut item = BytesMut::new();
                        match eio == EioVersion::V3 && self.engine_io_1x_polling {
                            true => {
                                let bytes = engineio::to_byte_string(text);
                                engineio::encode_payload_item(eio, &bytes, &mut item);
                            }
                            false => engineio::encode_payload_item(eio, text, &mut item),
                        }
                        frame.forms[form.index()] = item.freeze();
                    }
                }
            }
        }
        Ok(Frame(Arc::new(frame)))
    }
}

/// `packet` in one text WebSocket frame.
fn in_text_frame(packet: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(ws::header_len(packet.len()) + packet.len());
    ws::encode_header(true, OpCode::Text, packet.len(), &mut out);
    out.extend_from_slice(packet);
    out.freeze()
}

fn mqtt_index(version: ProtocolVersion) -> usize {
    match version {
        ProtocolVersion::V311 => 0,
        ProtocolVersion::V5 => 1,
    }
}

/// The push's PUBLISH for `version` clients, encoded once (no properties, not retained).
pub fn encode_mqtt(
    mqtt: &MqttPush,
    version: ProtocolVersion,
) -> Result<SharedPublish, ProtocolError> {
    SharedPublish::new(version, &mqtt.topic, false, &Properties::default(), mqtt.payload.clone())
        .map_err(|_| ProtocolError::Malformed("the push does not fit an MQTT PUBLISH"))
}

/// `packet` in one binary WebSocket frame.
fn in_ws_frame(packet: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(ws::header_len(packet.len()) + packet.len());
    ws::encode_header(true, OpCode::Binary, packet.len(), &mut out);
    out.extend_from_slice(packet);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hi() -> Push {
        Push::new("onMsg", &serde_json::json!({"msg": "hi"}))
    }

    #[test]
    fn both_pomelo_forms_share_one_buffer() {
        let frame = FrameEncoder::new(None).encode(&hi(), Forms::all()).unwrap();
        let push = hex("04 00 00 13 06 05 6f 6e 4d 73 67 7b 22 6d 73 67 22 3a 22 68 69 22 7d");
        let tcp = frame.bytes(WireForm::PomeloTcp);
        assert_eq!(&tcp[..], &push[..]);
        let ws = frame.bytes(WireForm::PomeloWebSocket);
        assert_eq!(&ws[..2], &[0x82, push.len() as u8]);
        assert_eq!(&ws[2..], &push[..]);
        assert_eq!(ws[2..].as_ptr(), tcp.as_ptr());
    }

    #[test]
    fn only_the_forms_asked_for_are_encoded() {
        let encoder = FrameEncoder::new(None);
        let tcp_only = encoder.encode(&hi(), Forms::one(WireForm::PomeloTcp)).unwrap();
        assert_eq!(tcp_only.forms(), Forms::one(WireForm::PomeloTcp));
        assert_eq!(tcp_only.bytes(WireForm::PomeloTcp)[0], 0x04);
        let ws_only = encoder.encode(&hi(), Forms::one(WireForm::PomeloWebSocket)).unwrap();
        assert_eq!(ws_only.forms(), Forms::one(WireForm::PomeloWebSocket));
        assert_eq!(ws_only.bytes(WireForm::PomeloWebSocket)[0], 0x82);
        assert_eq!(encoder.encode(&hi(), Forms::NONE).unwrap().forms(), Forms::NONE);
    }

    #[test]
    fn the_dictionary_compresses_push_routes() {
        let dict = RouteDict::new(["connector.entryHandler.enter"], ["onMsg"]).unwrap();
        let code = dict.code("onMsg").unwrap();
        let encoder = FrameEncoder::new(Some(dict));
        assert_eq!(encoder.pomelo_route("onMsg"), Route::Code(code));
        assert_eq!(encoder.pomelo_route("onAdd"), Route::Name("onAdd"));
        let frame = encoder.encode(&hi(), Forms::one(WireForm::PomeloTcp)).unwrap();
        let package = frame.bytes(WireForm::PomeloTcp);
        // PUSH with a compressed route: flag 0x07, then the 2-byte code.
        assert_eq!(&package[4..7], &[0x07, (code >> 8) as u8, code as u8]);
    }

    #[test]
    fn mqtt_forms_share_the_payload() {
        let payload = Bytes::from_static(b"{\"a\":1}");
        let push = hi().with_mqtt("push/demo".into(), payload.clone());
        let frame = FrameEncoder::new(None).encode(&push, Forms::all()).unwrap();
        // QoS 0, 3.1.1: 0x30, remaining length, topic, payload.
        let v3 = frame.bytes(WireForm::Mqtt311Tcp);
        assert_eq!(&v3[..], b"\x30\x12\x00\x09push/demo{\"a\":1}");
        // 5.0 adds an empty property length after the topic.
        assert_eq!(&frame.bytes(WireForm::Mqtt5Tcp)[..], b"\x30\x13\x00\x09push/demo\x00{\"a\":1}");
        let ws = frame.bytes(WireForm::Mqtt311WebSocket);
        assert_eq!(&ws[..2], &[0x82, v3.len() as u8]);
        assert_eq!(&ws[2..], &v3[..]);
        // QoS 1: the payload is the push's own allocation.
        let shared = frame.mqtt(ProtocolVersion::V5).unwrap();
        assert_eq!(shared.payload().as_ptr(), payload.as_ptr());
        // A push without an MQTT form encodes none.
        let pomelo_only = FrameEncoder::new(None).encode(&hi(), Forms::all()).unwrap();
        assert!(pomelo_only.bytes(WireForm::Mqtt5Tcp).is_empty());
        assert!(pomelo_only.mqtt(ProtocolVersion::V311).is_none());
    }

    #[test]
    fn socket_io_forms_carry_pomelo_pushes_in_text_frames() {
        let frame = FrameEncoder::new(None).encode(&hi(), Forms::all()).unwrap();
        let v09 = frame.bytes(WireForm::SocketIo09WebSocket);
        let expected = br#"3:::{"route":"onMsg","body":{"msg":"hi"}}"#;
        assert_eq!(&v09[..2], &[0x81, expected.len() as u8]);
        assert_eq!(&v09[2..], &expected[..]);
        let eio = frame.bytes(WireForm::EngineIoWebSocket);
        let expected = br#"42["message","{\"route\":\"onMsg\",\"body\":{\"msg\":\"hi\"}}"]"#;
        assert_eq!(&eio[..2], &[0x81, expected.len() as u8]);
        assert_eq!(&eio[2..], &expected[..]);
    }

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
    }
}

//! The Socket.IO frontend's codecs: Engine.IO packets and polling payloads, socket.io packets,
//! socket.io 0.9 packets and polling frames, and Pomelo's requests inside them.

use bytes::BytesMut;

use super::text;
use crate::protocol::socketio::engineio::{self, EioError, EioVersion};
use crate::protocol::socketio::packet::{self, SioPacketType};
use crate::protocol::socketio::{pomelo, v09};

/// The most packets the targets take in one polling body.
const MAX_PACKETS: usize = 64;

/// An Engine.IO text packet: its encoding is its text.
pub fn eio_packet(data: &[u8]) {
    let Some(Ok(p)) = text(data).map(engineio::decode_packet) else {
        return;
    };
    let mut out = BytesMut::new();
    engineio::encode_packet(p.kind, p.data, &mut out);
    assert_eq!(&out[..], data, "a packet's encoding is its text");
}

/// An EIO 3 polling body, text (`<len>:<packet>...`) or binary (`0x00 <digits> 0xFF
/// <packet>...`): the decoder tells the two apart by the first byte, so one target takes both.
/// See [`payload`].
pub fn eio_payload_v3(data: &[u8]) {
    payload(EioVersion::V3, data);
}

/// An EIO 4 polling body (`<packet> 0x1E <packet>...`). See [`payload`].
pub fn eio_payload_v4(data: &[u8]) {
    payload(EioVersion::V4, data);
}

/// A polling body's packets encode again (a binary EIO 3 body as text, the form the server
/// writes) to a body of the same packets, whether written whole or item by item, and one packet
/// fewer allowed refuses it.
fn payload(version: EioVersion, data: &[u8]) {
    let Ok(packets) = engineio::decode_payload(version, data, MAX_PACKETS) else {
        return;
    };
    let texts: Vec<String> = packets
        .iter()
        .map(|p| {
            let mut out = BytesMut::new();
            engineio::encode_packet(p.kind, p.data, &mut out);
            String::from_utf8(out.to_vec()).expect("a packet is text")
        })
        .collect();
    let mut body = BytesMut::new();
    engineio::encode_payload(version, texts.iter().map(String::as_str), &mut body);
    let again = engineio::decode_payload(version, &body, MAX_PACKETS);
    assert_eq!(again.as_deref(), Ok(&packets[..]), "decode → encode → decode");
    let mut items = BytesMut::new();
    for text in &texts {
        engineio::encode_payload_item(version, text, &mut items);
    }
    assert_eq!(&items[engineio::payload_body_skip(version)..], &body[..], "item by item");
    let fewer = packets.len().saturating_sub(1);
    assert_eq!(
        engineio::decode_payload(version, data, fewer),
        Err(EioError::TooManyPackets(fewer)),
        "one packet fewer allowed"
    );
}

/// A socket.io packet (the text after Engine.IO's `4`): its namespace and data come from the
/// input, and a `"message"` event's argument survives the server's encoder.
pub fn sio_packet(data: &[u8]) {
    let Some(Ok(p)) = text(data).map(packet::decode) else {
        return;
    };
    assert!(p.namespace.starts_with('/'), "namespace {:?}", p.namespace);
    assert!(text(data).is_some_and(|t| t.ends_with(p.data)));
    if p.kind != SioPacketType::Event {
        return;
    }
    let Ok(Some(message)) = packet::event_message(&p) else {
        return;
    };
    let mut out = BytesMut::new();
    packet::encode_message_event(&message, &mut out);
    assert_eq!(out.len(), packet::message_event_len(&message));
    let frame = text(&out).and_then(|t| t.strip_prefix('4')).expect("an Engine.IO message");
    let again = packet::decode(frame).expect("the server's event decodes");
    assert_eq!((again.kind, again.namespace, again.ack_id), (SioPacketType::Event, "/", None));
    assert_eq!(packet::event_message(&again), Ok(Some(message)), "decode → encode → decode");
}

/// A socket.io 0.9 packet: written again without its id, it decodes to the same type,
/// endpoint and data.
pub fn v09_packet(data: &[u8]) {
    let Some(Ok(p)) = text(data).map(v09::decode) else {
        return;
    };
    if p.kind == v09::V09Type::Event {
        let _ = v09::event_message(&p);
    }
    let mut out = BytesMut::new();
    v09::encode(p.kind, p.endpoint, p.data, &mut out);
    let again = text(&out).map(v09::decode).expect("the encoder writes text");
    assert_eq!(again, Ok(v09::V09Packet { id: "", ..p }), "decode → encode → decode");
}

/// A socket.io 0.9 polling body: its packets, framed again, give the same packets, and so do
/// they written as the server writes a body (but for one packet that itself starts with the
/// frame marker, which an unframed body cannot carry).
pub fn v09_frames(data: &[u8]) {
    let Some(Ok(packets)) = text(data).map(|t| v09::decode_frames(t, MAX_PACKETS)) else {
        return;
    };
    for p in &packets {
        let _ = v09::decode(p);
    }
    let mut framed = BytesMut::new();
    for p in &packets {
        v09::encode_framed(p, &mut framed);
    }
    let again = text(&framed).map(|t| v09::decode_frames(t, MAX_PACKETS));
    assert_eq!(again, Some(Ok(packets.clone())), "decode → encode → decode");
    if matches!(&packets[..], [only] if only.starts_with('\u{fffd}')) {
        return;
    }
    let mut body = BytesMut::new();
    v09::encode_frames(packets.iter().copied(), &mut body);
    let again = text(&body).map(|t| v09::decode_frames(t, MAX_PACKETS));
    assert_eq!(again, Some(Ok(packets)), "as the server writes a body");
}

/// A Pomelo request inside a socket.io message: encoded again, it decodes the same.
pub fn pomelo_sio(data: &[u8]) {
    let Some(Ok(request)) = text(data).map(pomelo::decode_request) else {
        return;
    };
    let encoded = pomelo::encode_request(request.id, request.route, request.body)
        .expect("a decoded route is at most 255 units");
    assert_eq!(pomelo::decode_request(&encoded), Ok(request), "decode → encode → decode");
}

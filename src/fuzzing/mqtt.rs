//! MQTT client packets, 3.1.1 and 5.0.

use bytes::BytesMut;

use crate::protocol::mqtt::{
    DISCONNECT_V3, Decoder, Encoder, MqttError, Packet, PacketType, ProtocolVersion, ReasonCode,
};

/// The packet limit of the targets' decoders.
const MAX_PACKET: u32 = 1 << 20;

/// Packets one after another on a 3.1.1 connection (see [`packets`]).
pub fn v311(data: &[u8]) {
    packets(ProtocolVersion::V311, data);
}

/// Packets one after another on a 5.0 connection (see [`packets`]).
pub fn v5(data: &[u8]) {
    packets(ProtocolVersion::V5, data);
}

/// Each packet encodes again (the client-side encoders) to bytes that decode to the same
/// packet, and every strict prefix of one is "need more".
fn packets(version: ProtocolVersion, data: &[u8]) {
    let decoder = Decoder::new(version, MAX_PACKET);
    let mut rest = data;
    while let Ok(Some((packet, used))) = decoder.decode(rest) {
        for cut in [0, 1, used / 2, used - 1] {
            assert_eq!(decoder.decode(&rest[..cut]), Ok(None), "cut at {cut}");
        }
        let mut out = BytesMut::new();
        encode(version, &packet, &mut out).expect("a decoded packet encodes");
        // A CONNECT carries its own level; any decoder reads it.
        let again = decoder.decode(&out).expect("the encoder's packet decodes");
        assert_eq!(again, Some((packet, out.len())), "decode → encode → decode");
        rest = &rest[used..];
    }
}

/// Appends `packet` as a client sends it on a `version` connection.
fn encode(
    version: ProtocolVersion,
    packet: &Packet<'_>,
    out: &mut BytesMut,
) -> Result<(), MqttError> {
    let enc = Encoder::new(version);
    match packet {
        Packet::Connect(c) => Encoder::new(c.version).connect(c, out),
        Packet::Publish(p) => enc.publish(p, out),
        Packet::PubAck(a) => enc.pub_response(PacketType::PubAck, a, out),
        Packet::PubRec(a) => enc.pub_response(PacketType::PubRec, a, out),
        Packet::PubRel(a) => enc.pub_response(PacketType::PubRel, a, out),
        Packet::PubComp(a) => enc.pub_response(PacketType::PubComp, a, out),
        Packet::Subscribe(s) => enc.subscribe(s, out),
        Packet::Unsubscribe(u) => enc.unsubscribe(u, out),
        Packet::PingReq => {
            enc.pingreq(out);
            Ok(())
        }
        Packet::Disconnect(d) if version == ProtocolVersion::V311 => {
            assert_eq!(d.reason, ReasonCode::Success, "a 3.1.1 DISCONNECT has no reason");
            out.extend_from_slice(&DISCONNECT_V3);
            Ok(())
        }
        Packet::Disconnect(d) => enc.disconnect(d, out),
        Packet::Auth(a) => enc.auth(a, out),
    }
}

//! PUBLISH (§3.3) and the four publish responses PUBACK, PUBREC, PUBREL, PUBCOMP (§3.4–3.7).
//!
//! ```text
//! PUBLISH   byte 0: 0011 | DUP | QoS | RETAIN
//!           topic name | [packet id: u16, QoS > 0] | [v5 properties] | payload (the rest)
//! PUBACK..  packet id: u16 | [v5: reason code | [properties]]   (v5 may stop after the id
//!           (Success) or after the reason code (no properties))
//! ```
//!
//! # Invariants
//! - The payload is borrowed from the input, never copied.
//! - QoS 3 is Malformed (checked with the fixed header), as are DUP on QoS 0 and packet id 0
//!   with QoS > 0. A topic with `+` or `#`, or an empty one (5.0: unless a Topic Alias is
//!   given), is Topic Name invalid (0x90).
//! - Left to the session: topic alias resolution and its maximum (0x94), QoS above the
//!   granted maximum (0x9B), an optional UTF-8 check of a payload flagged UTF-8 (0x99).

use bytes::{BufMut, BytesMut};

use crate::protocol::mqtt::MqttError;
use crate::protocol::mqtt::data::{Reader, field_len, put_field};
use crate::protocol::mqtt::packet::{Encoder, PacketType, ProtocolVersion, QoS, first_byte};
use crate::protocol::mqtt::properties::{self, Properties};
use crate::protocol::mqtt::reason::ReasonCode;

/// A PUBLISH, decoded (client → server) or to encode (server → client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish<'a> {
    /// DUP: a redelivery (QoS > 0 only).
    pub dup: bool,
    /// The QoS.
    pub qos: QoS,
    /// RETAIN.
    pub retain: bool,
    /// The topic name (empty only with a v5 Topic Alias).
    pub topic: &'a str,
    /// The packet identifier: 0 for QoS 0, never 0 otherwise.
    pub packet_id: u16,
    /// v5 PUBLISH properties (empty for 3.1.1).
    pub properties: Properties<'a>,
    /// The application message.
    pub payload: &'a [u8],
}

/// Checks a topic name (§4.7): not empty, no wildcard.
pub(crate) fn check_topic_name(topic: &str) -> Result<(), MqttError> {
    if topic.is_empty() {
        return Err(MqttError::TopicNameInvalid("empty topic name"));
    }
    if topic.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(MqttError::TopicNameInvalid("wildcard in a topic name"));
    }
    Ok(())
}

impl<'a> Publish<'a> {
    /// Decodes a PUBLISH body; `flags` is the low nibble of byte 0.
    pub(crate) fn decode(
        flags: u8,
        body: &'a [u8],
        version: ProtocolVersion,
    ) -> Result<Self, MqttError> {
        let qos = QoS::from_bits((flags >> 1) & 0b11)?;
        let dup = flags & 0b1000 != 0;
        if dup && qos == QoS::AtMostOnce {
            return Err(MqttError::Malformed("DUP set on a QoS 0 PUBLISH"));
        }
        let mut r = Reader::new(body);
        let topic = r.string()?;
        let packet_id = if qos == QoS::AtMostOnce {
            0
        } else {
            match r.u16()? {
                0 => return Err(MqttError::Malformed("packet identifier 0")),
                id => id,
            }
        };
        let properties = if version == ProtocolVersion::V5 {
            Properties::decode(&mut r, properties::PUBLISH_FROM_CLIENT)?
        } else {
            Properties::default()
        };
        if !(topic.is_empty() && properties.topic_alias.is_some()) {
            check_topic_name(topic)?;
        }
        Ok(Publish {
            dup,
            qos,
            retain: flags & 1 != 0,
            topic,
            packet_id,
            properties,
            payload: r.rest(),
        })
    }

    /// The first byte: type, DUP, QoS, RETAIN.
    #[inline]
    pub(crate) fn first_byte(&self) -> u8 {
        (PacketType::Publish as u8) << 4
            | u8::from(self.dup) << 3
            | (self.qos as u8) << 1
            | u8::from(self.retain)
    }
}

/// The size of a PUBLISH's variable header (topic, packet id, v5 properties) and the
/// properties' body length, after checking what an encoder must refuse.
pub(crate) fn variable_header_len(p: &Publish<'_>, v5: bool) -> Result<(usize, usize), MqttError> {
    if (p.qos == QoS::AtMostOnce) != (p.packet_id == 0) {
        return Err(MqttError::Encode("packet id must be 0 exactly for QoS 0"));
    }
    if p.dup && p.qos == QoS::AtMostOnce {
        return Err(MqttError::Encode("DUP on QoS 0"));
    }
    if !(v5 && p.topic.is_empty() && p.properties.topic_alias.is_some()) {
        check_topic_name(p.topic).map_err(|_| MqttError::Encode("invalid topic name"))?;
    }
    let mut len = field_len(p.topic.len())? + if p.packet_id != 0 { 2 } else { 0 };
    let mut props_len = 0;
    if v5 {
        len += p.properties.encoded_len(properties::PUBLISH_TO_CLIENT)?;
        props_len = p.properties.body_len()?;
    } else if p.properties != Properties::default() {
        return Err(MqttError::Encode("properties on a 3.1.1 PUBLISH"));
    }
    Ok((len, props_len))
}

/// Writes a checked variable header.
pub(crate) fn put_variable_header(p: &Publish<'_>, v5: bool, props_len: usize, out: &mut BytesMut) {
    put_field(out, p.topic.as_bytes());
    if p.packet_id != 0 {
        out.put_u16(p.packet_id);
    }
    if v5 {
        p.properties.put(props_len, out);
    }
}

impl Encoder {
    /// Appends a whole PUBLISH (payload copied in). For fan-out, see
    /// [`Encoder::publish_header`] and [`SharedPublish`](crate::protocol::mqtt::SharedPublish).
    /// A packet over the client's Maximum Packet Size is refused (the server then drops the
    /// message for this client as if delivered, [MQTT-3.1.2-25]).
    pub fn publish(&self, p: &Publish<'_>, out: &mut BytesMut) -> Result<(), MqttError> {
        let (vh, props_len) = variable_header_len(p, self.v5())?;
        let remaining = vh + p.payload.len();
        let len = self.packet_len(remaining)?;
        Encoder::put_header(p.first_byte(), remaining, len, out);
        put_variable_header(p, self.v5(), props_len, out);
        out.put_slice(p.payload);
        Ok(())
    }

    /// Appends everything of a PUBLISH but its payload, whose length is `payload_len` (and
    /// `p.payload` is ignored): the writer sends these bytes, then the shared payload.
    pub fn publish_header(
        &self,
        p: &Publish<'_>,
        payload_len: usize,
        out: &mut BytesMut,
    ) -> Result<(), MqttError> {
        let (vh, props_len) = variable_header_len(p, self.v5())?;
        let remaining = vh + payload_len;
        let len = self.packet_len(remaining)?;
        Encoder::put_header(p.first_byte(), remaining, len - payload_len, out);
        put_variable_header(p, self.v5(), props_len, out);
        Ok(())
    }

    /// Appends a PUBACK, PUBREC, PUBREL or PUBCOMP (`kind`). On 5.0 the short forms are used
    /// (no reason code for Success without properties, no property length without
    /// properties), and the reason string then user properties are dropped to fit the
    /// client's Maximum Packet Size. On 3.1.1 only the packet id is written.
    pub fn pub_response(
        &self,
        kind: PacketType,
        ack: &PubResponse<'_>,
        out: &mut BytesMut,
    ) -> Result<(), MqttError> {
        if !matches!(
            kind,
            PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp
        ) {
            return Err(MqttError::Encode("not a publish response type"));
        }
        if ack.packet_id == 0 {
            return Err(MqttError::Encode("packet identifier 0"));
        }
        let byte0 = first_byte(kind);
        if !self.v5() {
            out.extend_from_slice(&[byte0, 2]);
            out.put_u16(ack.packet_id);
            return Ok(());
        }
        let (props, props_len, remaining, len) = self.fit(3, &ack.properties, properties::ACK)?;
        if props_len == 0 {
            let short = ack.reason == ReasonCode::Success;
            let remaining = if short { 2 } else { 3 };
            Encoder::put_header(byte0, remaining, remaining + 2, out);
            out.put_u16(ack.packet_id);
            if !short {
                out.put_u8(ack.reason as u8);
            }
            return Ok(());
        }
        Encoder::put_header(byte0, remaining, len, out);
        out.put_u16(ack.packet_id);
        out.put_u8(ack.reason as u8);
        props.put(props_len, out);
        Ok(())
    }

    /// Appends a PUBACK (see [`Encoder::pub_response`]).
    pub fn puback(&self, ack: &PubResponse<'_>, out: &mut BytesMut) -> Result<(), MqttError> {
        self.pub_response(PacketType::PubAck, ack, out)
    }
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP: a packet id and (5.0) a reason code and properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PubResponse<'a> {
    /// The packet identifier being answered (never 0).
    pub packet_id: u16,
    /// The reason code (always Success on 3.1.1).
    pub reason: ReasonCode,
    /// Reason string and user properties (5.0).
    pub properties: Properties<'a>,
}

impl<'a> PubResponse<'a> {
    /// A Success response for `packet_id`.
    pub fn success(packet_id: u16) -> Self {
        PubResponse { packet_id, reason: ReasonCode::Success, properties: Properties::default() }
    }

    /// Decodes the body of `kind`.
    pub(crate) fn decode(
        kind: PacketType,
        body: &'a [u8],
        version: ProtocolVersion,
    ) -> Result<Self, MqttError> {
        let mut r = Reader::new(body);
        let packet_id = match r.u16()? {
            0 => return Err(MqttError::Malformed("packet identifier 0")),
            id => id,
        };
        let mut ack = PubResponse::success(packet_id);
        if version == ProtocolVersion::V5 && !r.is_empty() {
            let code = r.u8()?;
            ack.reason = ReasonCode::try_from(code)
                .map_err(|_| MqttError::Malformed("unknown reason code"))?;
            let valid = match kind {
                PacketType::PubAck | PacketType::PubRec => ack.reason.valid_for_puback(),
                _ => ack.reason.valid_for_pubrel(),
            };
            if !valid {
                return Err(MqttError::Malformed("reason code not allowed in this packet"));
            }
            if !r.is_empty() {
                ack.properties = Properties::decode(&mut r, properties::ACK)?;
            }
        }
        if !r.is_empty() {
            return Err(MqttError::Malformed("bytes after a publish response"));
        }
        Ok(ack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::mqtt::packet::{Decoder, Packet};

    const V3: Decoder = Decoder { version: ProtocolVersion::V311, max_packet_size: 1 << 20 };
    const V5: Decoder = Decoder { version: ProtocolVersion::V5, max_packet_size: 1 << 20 };

    /// QoS 1, retain, topic "a/b", id 10, payload "hi" (§3.3, hand-built).
    const PUBLISH_V3: &[u8] = &[0x33, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0a, b'h', b'i'];
    /// The same on 5.0 with a Topic Alias 1 property.
    const PUBLISH_V5: &[u8] =
        &[0x33, 0x0d, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0a, 0x03, 0x23, 0x00, 0x01, b'h', b'i'];

    #[test]
    fn publish_vectors_both_versions() {
        let Some((Packet::Publish(p), 11)) = V3.decode(PUBLISH_V3).unwrap() else { panic!() };
        assert_eq!(
            (p.qos, p.retain, p.dup, p.topic, p.packet_id, p.payload),
            (QoS::AtLeastOnce, true, false, "a/b", 10, &b"hi"[..])
        );
        let mut out = BytesMut::new();
        Encoder::new(ProtocolVersion::V311).publish(&p, &mut out).unwrap();
        assert_eq!(&out[..], PUBLISH_V3);

        let Some((Packet::Publish(p), 15)) = V5.decode(PUBLISH_V5).unwrap() else { panic!() };
        assert_eq!(p.properties.topic_alias, Some(1));
        out.clear();
        Encoder::new(ProtocolVersion::V5).publish(&p, &mut out).unwrap();
        assert_eq!(&out[..], PUBLISH_V5);
    }

    #[test]
    fn publish_faults() {
        // QoS 3: refused from the first byte.
        assert!(matches!(V3.decode(&[0x36]), Err(MqttError::Malformed(_))));
        // DUP on QoS 0.
        assert!(matches!(V3.decode(&[0x38, 0x03, 0x00, 0x01, b'a']), Err(MqttError::Malformed(_))));
        // Packet id 0 on QoS 1.
        assert!(matches!(
            V3.decode(&[0x32, 0x05, 0x00, 0x01, b'a', 0, 0]),
            Err(MqttError::Malformed(_))
        ));
        // Wildcards and empty topics.
        for topic in [&b"a/+"[..], b"#", b""] {
            let mut b = vec![0x30, 2 + topic.len() as u8, 0, topic.len() as u8];
            b.extend_from_slice(topic);
            assert!(matches!(V3.decode(&b), Err(MqttError::TopicNameInvalid(_))), "{topic:?}");
            assert_eq!(V3.decode(&b).unwrap_err().reason_code(), ReasonCode::TopicNameInvalid);
        }
        // v5: an empty topic is fine with an alias.
        let b = [0x30, 0x06, 0x00, 0x00, 0x03, 0x23, 0x00, 0x05];
        assert!(matches!(V5.decode(&b), Ok(Some((Packet::Publish(_), 8)))));
        // v5: Subscription Identifier from a client is not allowed.
        let b = [0x30, 0x06, 0x00, 0x01, b'a', 0x02, 0x0b, 0x01];
        assert!(matches!(V5.decode(&b), Err(MqttError::Malformed(_))));
        // Truncated topic.
        assert!(matches!(V3.decode(&[0x30, 0x03, 0x00, 0x05, b'a']), Err(MqttError::Malformed(_))));
    }

    #[test]
    fn response_vectors() {
        for (version, bytes, reason) in [
            (ProtocolVersion::V311, &[0x40, 0x02, 0x00, 0x07][..], ReasonCode::Success),
            (ProtocolVersion::V5, &[0x40, 0x02, 0x00, 0x07], ReasonCode::Success),
            (
                ProtocolVersion::V5,
                &[0x40, 0x03, 0x00, 0x07, 0x10],
                ReasonCode::NoMatchingSubscribers,
            ),
        ] {
            let dec = Decoder::new(version, 1 << 20);
            let Some((Packet::PubAck(a), _)) = dec.decode(bytes).unwrap() else { panic!() };
            assert_eq!((a.packet_id, a.reason), (7, reason));
            let mut out = BytesMut::new();
            Encoder::new(version).puback(&a, &mut out).unwrap();
            assert_eq!(&out[..], bytes);
        }
        // PUBREL has flags 0010; PUBREC / PUBCOMP decode too.
        assert!(matches!(V5.decode(&[0x62, 0x02, 0x00, 0x01]), Ok(Some((Packet::PubRel(_), 4)))));
        assert!(matches!(V5.decode(&[0x60, 0x02, 0x00, 0x01]), Err(MqttError::Malformed(_))));
        assert!(matches!(V3.decode(&[0x50, 0x02, 0x00, 0x01]), Ok(Some((Packet::PubRec(_), 4)))));
        assert!(matches!(V3.decode(&[0x70, 0x02, 0x00, 0x01]), Ok(Some((Packet::PubComp(_), 4)))));
        // v3 with a reason byte, a reason code PUBREL does not allow, packet id 0.
        assert!(matches!(V3.decode(&[0x40, 0x03, 0x00, 0x01, 0x00]), Err(MqttError::Malformed(_))));
        assert!(matches!(V5.decode(&[0x62, 0x03, 0x00, 0x01, 0x10]), Err(MqttError::Malformed(_))));
        assert!(matches!(V5.decode(&[0x40, 0x02, 0x00, 0x00]), Err(MqttError::Malformed(_))));
        // Reason string with a 9-byte limit is dropped, keeping the reason code.
        let ack = PubResponse {
            packet_id: 1,
            reason: ReasonCode::QuotaExceeded,
            properties: Properties { reason_string: Some("quota"), ..Properties::default() },
        };
        let mut out = BytesMut::new();
        Encoder::new(ProtocolVersion::V5).puback(&ack, &mut out).unwrap();
        assert_eq!(
            &out[..],
            &[0x40, 0x0c, 0x00, 0x01, 0x97, 0x08, 0x1f, 0x00, 0x05, b'q', b'u', b'o', b't', b'a']
        );
        out.clear();
        Encoder::new(ProtocolVersion::V5).with_max_packet_size(9).puback(&ack, &mut out).unwrap();
        assert_eq!(&out[..], &[0x40, 0x03, 0x00, 0x01, 0x97]);
    }
}

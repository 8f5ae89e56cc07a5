//! Encode once for fan-out: one PUBLISH to many subscribers without copying its payload per
//! recipient (DESIGN §5: a broadcast costs the recipients' `send`s and nothing more).
//!
//! A PUBLISH's packet identifier sits *between* the topic and the properties and payload, so
//! only QoS 0 can be one byte string for everyone. [`SharedPublish`] holds, per wire form
//! (3.1.1 or 5.0):
//!
//! ```text
//! QoS 0, shared whole (Bytes, refcounted):
//! +------+---------+-----------------+--------------------+---------------------+
//! | 0x30 | rem len | topic len+topic | [v5: props len+props] | payload           |
//! +------+---------+-----------------+--------------------+---------------------+
//!
//! QoS 1/2, two buffers for one writev:
//!   per connection, ~10 + topic bytes, copied from a template     shared (Bytes)
//! +------+---------+-----------------+-----------+----------------------++----------+
//! | 0x32 | rem len | topic len+topic | packet id | [v5: props len+props] || payload  |
//! | DUP  |         |                 |  u16 BE   |                      ||          |
//! +------+---------+-----------------+-----------+----------------------++----------+
//!  byte 0 is built per call (QoS, DUP, RETAIN); remaining length counts the payload too
//! ```
//!
//! # Invariants
//! - The payload is held once as [`Bytes`]; [`SharedPublish::qos0`] and
//!   [`SharedPublish::payload`] hand out refcounted clones, never copies.
//! - [`SharedPublish::header`] writes exactly `header_len()` bytes, and
//!   `header ++ payload` is byte for byte what [`Encoder::publish`] writes for the same message.
//! - The session checks each recipient's Maximum Packet Size with [`SharedPublish::qos0_len`]
//!   / [`SharedPublish::qos1_len`] and skips a recipient it does not fit [MQTT-3.1.2-25].

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::mqtt::MqttError;
use crate::protocol::mqtt::data::read_var_int;
use crate::protocol::mqtt::packet::{Encoder, ProtocolVersion, QoS};
use crate::protocol::mqtt::properties::Properties;
use crate::protocol::mqtt::publish::Publish;

/// A PUBLISH encoded once for every subscriber of one wire form (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedPublish {
    version: ProtocolVersion,
    retain: bool,
    qos0: Bytes,
    /// The QoS 1 header with packet id 0 in place; byte 0 and the id are rewritten per call.
    template: Bytes,
    /// Where the packet id sits in `template`.
    id_at: usize,
    payload: Bytes,
}

impl SharedPublish {
    /// Encodes `topic`, `properties` and `payload` once for `version` subscribers.
    pub fn new(
        version: ProtocolVersion,
        topic: &str,
        retain: bool,
        properties: &Properties<'_>,
        payload: Bytes,
    ) -> Result<Self, MqttError> {
        let enc = Encoder::new(version);
        let mut p = Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain,
            topic,
            packet_id: 0,
            properties: *properties,
            payload: &payload,
        };
        let mut qos0 = BytesMut::new();
        enc.publish(&p, &mut qos0)?;
        p.qos = QoS::AtLeastOnce;
        p.packet_id = 1;
        let mut template = BytesMut::new();
        enc.publish_header(&p, payload.len(), &mut template)?;
        // header = byte 0 | rem len | topic | id | props: the id follows the topic.
        let rem_len_len = match read_var_int(template.get(1..).unwrap_or_default())? {
            Some((_, n)) => n,
            None => return Err(MqttError::Encode("PUBLISH header cut short")),
        };
        let id_at = 1 + rem_len_len + 2 + topic.len();
        Ok(SharedPublish {
            version,
            retain,
            qos0: qos0.freeze(),
            template: template.freeze(),
            id_at,
            payload,
        })
    }

    /// The wire form these bytes are for.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The whole QoS 0 packet, the same bytes for every subscriber.
    pub fn qos0(&self) -> Bytes {
        self.qos0.clone()
    }

    /// The QoS 0 packet's size.
    pub fn qos0_len(&self) -> usize {
        self.qos0.len()
    }

    /// The shared payload, sent after [`SharedPublish::header`].
    pub fn payload(&self) -> Bytes {
        self.payload.clone()
    }

    /// The per-connection header's size for QoS 1 and 2.
    pub fn header_len(&self) -> usize {
        self.template.len()
    }

    /// The QoS 1 or 2 packet's whole size: header and payload.
    pub fn qos1_len(&self) -> usize {
        self.template.len() + self.payload.len()
    }

    /// Appends the per-connection header of a QoS 1 or 2 delivery with `packet_id` (never 0).
    /// Send it, then [`SharedPublish::payload`].
    pub fn header(
        &self,
        qos: QoS,
        packet_id: u16,
        dup: bool,
        out: &mut BytesMut,
    ) -> Result<(), MqttError> {
        if qos == QoS::AtMostOnce || packet_id == 0 {
            return Err(MqttError::Encode("a shared header needs QoS 1 or 2 and a packet id"));
        }
        let byte0 = 0x30 | u8::from(dup) << 3 | (qos as u8) << 1 | u8::from(self.retain);
        out.reserve(self.template.len());
        out.put_u8(byte0);
        out.put_slice(self.template.get(1..self.id_at).unwrap_or_default());
        out.put_u16(packet_id);
        out.put_slice(self.template.get(self.id_at + 2..).unwrap_or_default());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::mqtt::UserProperties;

    #[test]
    fn header_and_payload_are_the_whole_packet() {
        let users = [("trace", "1")];
        let props = Properties {
            message_expiry_interval: Some(30),
            user_properties: UserProperties::List(&users),
            ..Properties::default()
        };
        for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
            let props = if version == ProtocolVersion::V5 { props } else { Properties::default() };
            let payload = Bytes::from(vec![7u8; 300]);
            let shared =
                SharedPublish::new(version, "news/1", false, &props, payload.clone()).unwrap();
            // The payload is the same allocation, not a copy.
            assert_eq!(shared.payload().as_ptr(), payload.as_ptr());
            let enc = Encoder::new(version);
            let mut whole = BytesMut::new();
            let p = Publish {
                dup: false,
                qos: QoS::AtMostOnce,
                retain: false,
                topic: "news/1",
                packet_id: 0,
                properties: props,
                payload: &payload,
            };
            enc.publish(&p, &mut whole).unwrap();
            assert_eq!(shared.qos0(), whole.freeze());
            for (qos, id, dup) in [
                (QoS::AtLeastOnce, 1, false),
                (QoS::AtLeastOnce, 0xbeef, true),
                (QoS::ExactlyOnce, 9, false),
            ] {
                let mut header = BytesMut::new();
                shared.header(qos, id, dup, &mut header).unwrap();
                assert_eq!(header.len(), shared.header_len());
                header.extend_from_slice(&shared.payload());
                let mut whole = BytesMut::new();
                enc.publish(&Publish { dup, qos, packet_id: id, ..p }, &mut whole).unwrap();
                assert_eq!(header, whole);
                assert_eq!(shared.qos1_len(), whole.len());
            }
        }
    }

    #[test]
    fn v3_header_bytes() {
        let shared = SharedPublish::new(
            ProtocolVersion::V311,
            "t",
            true,
            &Properties::default(),
            Bytes::from_static(b"xy"),
        )
        .unwrap();
        assert_eq!(&shared.qos0()[..], &[0x31, 0x05, 0x00, 0x01, b't', b'x', b'y']);
        let mut h = BytesMut::new();
        shared.header(QoS::AtLeastOnce, 0x0102, false, &mut h).unwrap();
        assert_eq!(&h[..], &[0x33, 0x07, 0x00, 0x01, b't', 0x01, 0x02]);
        assert!(shared.header(QoS::AtMostOnce, 1, false, &mut h).is_err());
    }
}

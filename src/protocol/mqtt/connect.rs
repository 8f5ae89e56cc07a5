//! CONNECT (§3.1) and CONNACK (§3.2).
//!
//! ```text
//! CONNECT   00 04 "MQTT" | level: 4 or 5 | flags | keep alive: u16 | [v5 properties]
//!           | client id | [v5 will properties | will topic | will payload] | [user] | [password]
//! flags       7 user name   6 password   5 will retain   4..3 will QoS   2 will   1 clean   0 reserved
//! CONNACK   flags: bit 0 session present | v3 return code / v5 reason code | [v5 properties]
//! ```
//!
//! # Invariants
//! - CONNECT is decoded by its own level, whatever the connection's decoder says; a name other
//!   than `MQTT` or a level other than 4 and 5 stop decoding there (0x84 / v3 return code 1:
//!   answer a level-5 CONNECT with a v5 CONNACK, anything else with `20 02 00 01`).
//! - Reserved flag bit 0 set, will QoS 3, will QoS or retain without the will flag, and (3.1.1
//!   only) a password without a user name are Malformed.
//! - Left to the session: an empty client id (3.1.1 with clean session 0 → return code 2), an
//!   authentication method (refused with 0x8C until AUTH is supported), the keep alive.

use bytes::BufMut;
use bytes::BytesMut;

use crate::protocol::mqtt::data::{Reader, field_len, put_field};
use crate::protocol::mqtt::packet::{Encoder, PacketType, ProtocolVersion, QoS, first_byte};
use crate::protocol::mqtt::properties::{self, Properties};
use crate::protocol::mqtt::publish::check_topic_name;
use crate::protocol::mqtt::reason::{ConnectReturnCode, ReasonCode};
use crate::protocol::mqtt::{MqttError, Shed};

const USERNAME: u8 = 0x80;
const PASSWORD: u8 = 0x40;
const WILL_RETAIN: u8 = 0x20;
const WILL_QOS: u8 = 0x18;
const WILL: u8 = 0x04;
const CLEAN_START: u8 = 0x02;
const RESERVED: u8 = 0x01;

/// The will message of a CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Will<'a> {
    /// The will topic (a valid topic name).
    pub topic: &'a str,
    /// The will payload.
    pub payload: &'a [u8],
    /// The will QoS.
    pub qos: QoS,
    /// The will retain flag.
    pub retain: bool,
    /// v5 will properties (empty for 3.1.1).
    pub properties: Properties<'a>,
}

/// A decoded CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connect<'a> {
    /// The level the client asked for.
    pub version: ProtocolVersion,
    /// Clean Session (3.1.1) / Clean Start (5.0).
    pub clean_start: bool,
    /// Keep alive, seconds (0 = none).
    pub keep_alive: u16,
    /// v5 CONNECT properties (empty for 3.1.1).
    pub properties: Properties<'a>,
    /// The client identifier; may be empty (the session decides).
    pub client_id: &'a str,
    /// The will, when the will flag is set.
    pub will: Option<Will<'a>>,
    /// The user name, when its flag is set.
    pub username: Option<&'a str>,
    /// The password, when its flag is set.
    pub password: Option<&'a [u8]>,
}

impl<'a> Connect<'a> {
    /// Decodes a CONNECT body.
    pub(crate) fn decode(body: &'a [u8]) -> Result<Self, MqttError> {
        let mut r = Reader::new(body);
        let name = r.binary()?;
        let level = r.u8()?;
        let version = match (name, level) {
            (b"MQTT", 4) => ProtocolVersion::V311,
            (b"MQTT", 5) => ProtocolVersion::V5,
            (b"MQTT" | b"MQIsdp", level) => {
                return Err(MqttError::UnsupportedProtocolVersion(level));
            }
            _ => return Err(MqttError::UnsupportedProtocolName),
        };
        let v5 = version == ProtocolVersion::V5;
        let flags = r.u8()?;
        if flags & RESERVED != 0 {
            return Err(MqttError::Malformed("CONNECT reserved flag set"));
        }
        let will_qos = QoS::from_bits((flags & WILL_QOS) >> 3)?;
        if flags & WILL == 0 && flags & (WILL_QOS | WILL_RETAIN) != 0 {
            return Err(MqttError::Malformed("will QoS or retain without a will"));
        }
        if !v5 && flags & PASSWORD != 0 && flags & USERNAME == 0 {
            return Err(MqttError::Malformed("password without a user name"));
        }
        let keep_alive = r.u16()?;
        let properties = if v5 {
            Properties::decode(&mut r, properties::CONNECT)?
        } else {
            Properties::default()
        };
        let client_id = r.string()?;
        let will = if flags & WILL != 0 {
            let properties = if v5 {
                Properties::decode(&mut r, properties::WILL)?
            } else {
                Properties::default()
            };
            let topic = r.string()?;
            check_topic_name(topic)?;
            let payload = r.binary()?;
            Some(Will {
                topic,
                payload,
                qos: will_qos,
                retain: flags & WILL_RETAIN != 0,
                properties,
            })
        } else {
            None
        };
        let username = if flags & USERNAME != 0 { Some(r.string()?) } else { None };
        let password = if flags & PASSWORD != 0 { Some(r.binary()?) } else { None };
        if !r.is_empty() {
            return Err(MqttError::Malformed("bytes after the CONNECT payload"));
        }
        Ok(Connect {
            version,
            clean_start: flags & CLEAN_START != 0,
            keep_alive,
            properties,
            client_id,
            will,
            username,
            password,
        })
    }
}

/// A CONNACK to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnAck<'a> {
    /// Whether the server resumes a stored session (forced to false on a refusal).
    pub session_present: bool,
    /// The v5 reason code; on 3.1.1 it is mapped by [`ConnectReturnCode::from_reason`].
    pub reason: ReasonCode,
    /// v5 CONNACK properties (ignored for 3.1.1).
    pub properties: Properties<'a>,
}

impl Encoder {
    /// Appends a CONNACK. On 5.0 the reason string, then the user properties, are dropped if
    /// the packet would exceed the client's Maximum Packet Size [MQTT-3.2.2-19, -20].
    pub fn connack(&self, ack: &ConnAck<'_>, out: &mut BytesMut) -> Result<(), MqttError> {
        let session_present = u8::from(ack.session_present && !ack.reason.is_error());
        if !self.v5() {
            let code = ConnectReturnCode::from_reason(ack.reason) as u8;
            let session_present = session_present & u8::from(code == 0);
            out.extend_from_slice(&[first_byte(PacketType::ConnAck), 2, session_present, code]);
            return Ok(());
        }
        let (props, props_len, remaining, len) =
            self.fit(2, &ack.properties, properties::CONNACK)?;
        Encoder::put_header(first_byte(PacketType::ConnAck), remaining, len, out);
        out.put_u8(session_present);
        out.put_u8(ack.reason as u8);
        props.put(props_len, out);
        Ok(())
    }

    /// Appends a CONNECT (client side; for tests and tools). The level is `connect.version`.
    pub fn connect(&self, c: &Connect<'_>, out: &mut BytesMut) -> Result<(), MqttError> {
        let v5 = c.version == ProtocolVersion::V5;
        let mut flags = 0u8;
        let mut remaining = 6 + 1 + 1 + 2 + field_len(c.client_id.len())?;
        let props_len = c.properties.body_len()?;
        if v5 {
            remaining += c.properties.encoded_len(properties::CONNECT)?;
        } else if c.properties != Properties::default() {
            return Err(MqttError::Encode("properties on a 3.1.1 CONNECT"));
        }
        let mut will_props_len = 0;
        if let Some(w) = &c.will {
            flags |= WILL | ((w.qos as u8) << 3) | if w.retain { WILL_RETAIN } else { 0 };
            remaining += field_len(w.topic.len())? + field_len(w.payload.len())?;
            will_props_len = w.properties.body_len()?;
            if v5 {
                remaining += w.properties.encoded_len(properties::WILL)?;
            }
        }
        if let Some(u) = c.username {
            flags |= USERNAME;
            remaining += field_len(u.len())?;
        }
        if let Some(p) = c.password {
            if !v5 && c.username.is_none() {
                return Err(MqttError::Encode("3.1.1 password without a user name"));
            }
            flags |= PASSWORD;
            remaining += field_len(p.len())?;
        }
        if c.clean_start {
            flags |= CLEAN_START;
        }
        let len = self.packet_len(remaining)?;
        Encoder::put_header(first_byte(PacketType::Connect), remaining, len, out);
        put_field(out, b"MQTT");
        out.put_u8(c.version as u8);
        out.put_u8(flags);
        out.put_u16(c.keep_alive);
        if v5 {
            c.properties.put(props_len, out);
        }
        put_field(out, c.client_id.as_bytes());
        if let Some(w) = &c.will {
            if v5 {
                w.properties.put(will_props_len, out);
            }
            put_field(out, w.topic.as_bytes());
            put_field(out, w.payload);
        }
        if let Some(u) = c.username {
            put_field(out, u.as_bytes());
        }
        if let Some(p) = c.password {
            put_field(out, p);
        }
        Ok(())
    }

    /// For a v5 packet of `fixed` bytes before its properties: the properties that fit the
    /// peer's limit after shedding (reason string, then user properties), their body length,
    /// the remaining length and the whole length.
    pub(crate) fn fit<'p>(
        &self,
        fixed: usize,
        props: &Properties<'p>,
        allowed: u64,
    ) -> Result<Shed<'p>, MqttError> {
        let mut p = *props;
        let mut step = 0;
        loop {
            let remaining = fixed + p.encoded_len(allowed)?;
            match self.packet_len(remaining) {
                Ok(len) => return Ok((p, p.body_len()?, remaining, len)),
                Err(e) if step >= 2 => return Err(e),
                Err(_) => {
                    step += 1;
                    p = p.shed(step);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::mqtt::packet::{Decoder, Packet};

    /// `mosquitto_sub -V mqttv311 -i c1 -k 60 -t t`: a 3.1.1 CONNECT, clean session, no will.
    const CONNECT_V3: &[u8] = &[
        0x10, 0x0e, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x02, b'c',
        b'1',
    ];

    fn decode(bytes: &[u8]) -> Result<Connect<'_>, MqttError> {
        match Decoder::new(ProtocolVersion::V311, 1 << 20).decode(bytes)? {
            Some((Packet::Connect(c), n)) => {
                assert_eq!(n, bytes.len());
                Ok(c)
            }
            other => panic!("not a CONNECT: {other:?}"),
        }
    }

    #[test]
    fn v3_connect_vector() {
        let c = decode(CONNECT_V3).unwrap();
        assert_eq!(c.version, ProtocolVersion::V311);
        assert!(c.clean_start);
        assert_eq!((c.keep_alive, c.client_id), (60, "c1"));
        assert_eq!((c.will, c.username, c.password), (None, None, None));
    }

    #[test]
    fn bad_levels_and_names() {
        let mut b = CONNECT_V3.to_vec();
        b[8] = 3;
        assert_eq!(decode(&b), Err(MqttError::UnsupportedProtocolVersion(3)));
        assert_eq!(
            decode(&b).unwrap_err().connect_return_code(),
            Some(ConnectReturnCode::UnacceptableProtocolVersion)
        );
        assert_eq!(decode(&b).unwrap_err().reason_code(), ReasonCode::UnsupportedProtocolVersion);
        b[8] = 4;
        b[4] = b'X';
        assert_eq!(decode(&b), Err(MqttError::UnsupportedProtocolName));
    }

    #[test]
    fn flag_faults() {
        for (flags, why) in [
            (0x03, "reserved"),
            (0x1e, "will QoS 3"),
            (0x08, "will QoS without will"),
            (0x20, "will retain without will"),
            (0x42, "password without user (3.1.1)"),
        ] {
            let mut b = CONNECT_V3.to_vec();
            b[9] = flags;
            assert!(matches!(decode(&b), Err(MqttError::Malformed(_))), "{why}");
        }
    }

    #[test]
    fn v3_connack_vectors() {
        let enc = Encoder::new(ProtocolVersion::V311);
        let mut out = BytesMut::new();
        let ack = ConnAck {
            session_present: true,
            reason: ReasonCode::Success,
            properties: Properties::default(),
        };
        enc.connack(&ack, &mut out).unwrap();
        assert_eq!(&out[..], &[0x20, 0x02, 0x01, 0x00]);
        out.clear();
        let ack = ConnAck { reason: ReasonCode::NotAuthorized, ..ack };
        enc.connack(&ack, &mut out).unwrap();
        assert_eq!(&out[..], &[0x20, 0x02, 0x00, 0x05]);
    }

    #[test]
    fn v5_connack_vector_and_shedding() {
        let users = [("k", "v")];
        let props = Properties {
            receive_maximum: Some(20),
            topic_alias_maximum: Some(10),
            reason_string: Some("hello"),
            user_properties: crate::protocol::mqtt::UserProperties::List(&users),
            ..Properties::default()
        };
        let ack =
            ConnAck { session_present: false, reason: ReasonCode::Success, properties: props };
        let mut out = BytesMut::new();
        Encoder::new(ProtocolVersion::V5).connack(&ack, &mut out).unwrap();
        assert_eq!(
            &out[..],
            &[
                0x20, 0x18, 0x00, 0x00, 0x15, // props len 21
                0x1f, 0x00, 0x05, b'h', b'e', b'l', b'l', b'o', // reason string
                0x21, 0x00, 0x14, 0x22, 0x00, 0x0a, // receive max 20, alias max 10
                0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v',
            ]
        );
        // 26 bytes in all; a 20-byte limit drops the reason string (8 bytes) and keeps the rest.
        out.clear();
        Encoder::new(ProtocolVersion::V5).with_max_packet_size(20).connack(&ack, &mut out).unwrap();
        assert_eq!(
            &out[..],
            &[0x20, 0x10, 0, 0, 0x0d, 0x21, 0, 20, 0x22, 0, 10, 0x26, 0, 1, b'k', 0, 1, b'v',][..]
        );
        // 12 drops the user property too; 4 is below even the bare CONNACK.
        out.clear();
        Encoder::new(ProtocolVersion::V5).with_max_packet_size(12).connack(&ack, &mut out).unwrap();
        assert_eq!(&out[..], &[0x20, 0x09, 0, 0, 0x06, 0x21, 0, 20, 0x22, 0, 10][..]);
        out.clear();
        assert!(matches!(
            Encoder::new(ProtocolVersion::V5).with_max_packet_size(4).connack(&ack, &mut out),
            Err(MqttError::PacketTooLarge { .. })
        ));
        assert!(out.is_empty());
    }
}

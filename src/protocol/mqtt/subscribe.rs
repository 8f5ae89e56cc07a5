//! SUBSCRIBE (§3.8), SUBACK (§3.9), UNSUBSCRIBE (§3.10) and UNSUBACK (§3.11).
//!
//! ```text
//! SUBSCRIBE    packet id | [v5 properties] | (topic filter | options: u8)+
//! options      v3:  000000 | QoS            v5:  00 | retain handling (2) | RAP | NL | QoS (2)
//! SUBACK       packet id | [v5 properties] | (return / reason code)+
//! UNSUBSCRIBE  packet id | [v5 properties] | topic filter+
//! UNSUBACK     packet id | [v5 properties | reason code+]
//! ```
//!
//! # Invariants
//! - The filter list is validated whole when decoded and kept borrowed
//!   ([`Filters::Raw`]); iterating it never fails and never allocates.
//! - No filter is Protocol Error (v5) / Malformed; packet id 0, an empty filter, QoS 3,
//!   reserved option bits and retain handling 3 are Malformed (retain handling 3 a Protocol
//!   Error), as is No Local on a shared subscription (`$share/...`, [MQTT-3.8.3-4]).
//! - Wildcard placement is *not* refused here: the session answers a bad filter with 0x8F /
//!   0x80 in SUBACK for that filter alone ([`valid_topic_filter`]).

use bytes::{BufMut, BytesMut};

use crate::protocol::mqtt::MqttError;
use crate::protocol::mqtt::data::{Reader, field_len, put_field};
use crate::protocol::mqtt::packet::{Encoder, PacketType, ProtocolVersion, QoS, first_byte};
use crate::protocol::mqtt::properties::{self, Properties};
use crate::protocol::mqtt::reason::ReasonCode;

/// Whether `filter` is a valid topic filter (§4.7.1): non-empty, `#` only as the whole last
/// level, `+` only as a whole level.
pub fn valid_topic_filter(filter: &str) -> bool {
    if filter.is_empty() {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        match level {
            "#" if last => {}
            "+" => {}
            l if l.contains(['+', '#']) => return false,
            _ => {}
        }
    }
    true
}

/// What the server does with retained messages when a subscription is made (v5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RetainHandling {
    /// 0: send retained messages at subscribe time.
    SendAtSubscribe = 0,
    /// 1: send them only if the subscription did not exist.
    SendIfNew = 1,
    /// 2: do not send them.
    DoNotSend = 2,
}

/// The options byte of one filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionOptions {
    /// The maximum QoS.
    pub qos: QoS,
    /// v5 No Local: do not send the client its own publications.
    pub no_local: bool,
    /// v5 Retain As Published.
    pub retain_as_published: bool,
    /// v5 Retain Handling.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options with only a QoS (all a 3.1.1 subscription has).
    pub fn qos(qos: QoS) -> Self {
        SubscriptionOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }

    fn decode(byte: u8, v5: bool) -> Result<Self, MqttError> {
        let reserved = if v5 { 0xc0 } else { 0xfc };
        if byte & reserved != 0 {
            return Err(MqttError::Malformed("reserved subscription option bits"));
        }
        let retain_handling = match (byte >> 4) & 0b11 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(MqttError::Protocol("retain handling 3")),
        };
        Ok(SubscriptionOptions {
            qos: QoS::from_bits(byte & 0b11)?,
            no_local: byte & 0x04 != 0,
            retain_as_published: byte & 0x08 != 0,
            retain_handling,
        })
    }

    fn byte(&self, v5: bool) -> Result<u8, MqttError> {
        let extra = u8::from(self.no_local) << 2
            | u8::from(self.retain_as_published) << 3
            | (self.retain_handling as u8) << 4;
        if !v5 && extra != 0 {
            return Err(MqttError::Encode("v5 subscription options on 3.1.1"));
        }
        Ok(self.qos as u8 | extra)
    }
}

/// The topic filters of a SUBSCRIBE (with options, `T = SubscriptionOptions`) or of an
/// UNSUBSCRIBE (`T = ()`).
#[derive(Clone, Copy)]
pub enum Filters<'a, T: 'static> {
    /// Decoded: the validated list as it sits in the input, and whether it is v5.
    Raw(&'a [u8], bool),
    /// To encode.
    List(&'a [(&'a str, T)]),
}

impl<'a, T: Copy + FilterEntry> Filters<'a, T> {
    /// The filters in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, T)> + 'a {
        let (raw, v5, list) = match *self {
            Filters::Raw(raw, v5) => (raw, v5, &[][..]),
            Filters::List(list) => (&[][..], false, list),
        };
        let mut r = Reader::new(raw);
        std::iter::from_fn(move || if r.is_empty() { None } else { T::read(&mut r, v5).ok() })
            .chain(list.iter().copied())
    }

    /// The number of filters.
    pub fn entry_len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are none (never, once decoded).
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl<T: Copy + FilterEntry + PartialEq> PartialEq for Filters<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<T: Copy + FilterEntry + Eq> Eq for Filters<'_, T> {}

impl<T: Copy + FilterEntry + std::fmt::Debug> std::fmt::Debug for Filters<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One entry of a filter list: what follows the filter string.
pub trait FilterEntry: Sized {
    /// Reads a filter and its entry.
    fn read<'a>(r: &mut Reader<'a>, v5: bool) -> Result<(&'a str, Self), MqttError>;
    /// The bytes after the filter string.
    fn entry_len(&self) -> usize;
    /// Writes them.
    fn put(&self, v5: bool, out: &mut BytesMut) -> Result<(), MqttError>;
}

fn read_filter<'a>(r: &mut Reader<'a>) -> Result<&'a str, MqttError> {
    let filter = r.string()?;
    if filter.is_empty() {
        return Err(MqttError::Malformed("empty topic filter"));
    }
    Ok(filter)
}

impl FilterEntry for SubscriptionOptions {
    fn read<'a>(r: &mut Reader<'a>, v5: bool) -> Result<(&'a str, Self), MqttError> {
        let filter = read_filter(r)?;
        let options = SubscriptionOptions::decode(r.u8()?, v5)?;
        if options.no_local && filter.starts_with("$share/") {
            return Err(MqttError::Protocol("No Local on a shared subscription"));
        }
        Ok((filter, options))
    }
    fn entry_len(&self) -> usize {
        1
    }
    fn put(&self, v5: bool, out: &mut BytesMut) -> Result<(), MqttError> {
        out.put_u8(self.byte(v5)?);
        Ok(())
    }
}

impl FilterEntry for () {
    fn read<'a>(r: &mut Reader<'a>, _: bool) -> Result<(&'a str, Self), MqttError> {
        Ok((read_filter(r)?, ()))
    }
    fn entry_len(&self) -> usize {
        0
    }
    fn put(&self, _: bool, _: &mut BytesMut) -> Result<(), MqttError> {
        Ok(())
    }
}

/// Reads a packet id (never 0), v5 properties and a non-empty filter list.
fn decode_filters<'a, T: Copy + FilterEntry>(
    body: &'a [u8],
    version: ProtocolVersion,
    allowed: u64,
) -> Result<(u16, Properties<'a>, Filters<'a, T>), MqttError> {
    let mut r = Reader::new(body);
    let packet_id = match r.u16()? {
        0 => return Err(MqttError::Malformed("packet identifier 0")),
        id => id,
    };
    let v5 = version == ProtocolVersion::V5;
    let properties = if v5 { Properties::decode(&mut r, allowed)? } else { Properties::default() };
    let list = r.rest();
    if list.is_empty() {
        return Err(if v5 {
            MqttError::Protocol("no topic filter")
        } else {
            MqttError::Malformed("no topic filter")
        });
    }
    let mut check = Reader::new(list);
    while !check.is_empty() {
        T::read(&mut check, v5)?;
    }
    Ok((packet_id, properties, Filters::Raw(list, v5)))
}

/// A SUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribe<'a> {
    /// The packet identifier (never 0).
    pub packet_id: u16,
    /// v5: Subscription Identifier and user properties.
    pub properties: Properties<'a>,
    /// The filters with their options (at least one).
    pub filters: Filters<'a, SubscriptionOptions>,
}

impl<'a> Subscribe<'a> {
    pub(crate) fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, MqttError> {
        let (packet_id, properties, filters) =
            decode_filters(body, version, properties::SUBSCRIBE)?;
        Ok(Subscribe { packet_id, properties, filters })
    }
}

/// An UNSUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsubscribe<'a> {
    /// The packet identifier (never 0).
    pub packet_id: u16,
    /// v5: user properties.
    pub properties: Properties<'a>,
    /// The filters (at least one).
    pub filters: Filters<'a, ()>,
}

impl<'a> Unsubscribe<'a> {
    pub(crate) fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, MqttError> {
        let (packet_id, properties, filters) =
            decode_filters(body, version, properties::UNSUBSCRIBE)?;
        Ok(Unsubscribe { packet_id, properties, filters })
    }
}

impl Encoder {
    fn filters<T: Copy + FilterEntry>(
        &self,
        kind: PacketType,
        packet_id: u16,
        props: &Properties<'_>,
        allowed: u64,
        filters: &Filters<'_, T>,
        out: &mut BytesMut,
    ) -> Result<(), MqttError> {
        if packet_id == 0 || filters.is_empty() {
            return Err(MqttError::Encode("packet id 0 or no filter"));
        }
        let mut remaining = 2;
        let mut props_len = 0;
        if self.v5() {
            remaining += props.encoded_len(allowed)?;
            props_len = props.body_len()?;
        } else if *props != Properties::default() {
            return Err(MqttError::Encode("properties on 3.1.1"));
        }
        for (f, entry) in filters.iter() {
            if f.is_empty() {
                return Err(MqttError::Encode("empty topic filter"));
            }
            remaining += field_len(f.len())? + entry.entry_len();
        }
        let len = self.packet_len(remaining)?;
        // The option bytes are checked before anything is written.
        let mut tail = BytesMut::new();
        for (_, entry) in filters.iter() {
            entry.put(self.v5(), &mut tail)?;
        }
        Encoder::put_header(first_byte(kind), remaining, len, out);
        out.put_u16(packet_id);
        if self.v5() {
            props.put(props_len, out);
        }
        for (f, entry) in filters.iter() {
            put_field(out, f.as_bytes());
            // Checked above; cannot fail now.
            let _ = entry.put(self.v5(), out);
        }
        Ok(())
    }

    /// Appends a SUBSCRIBE (client side; for tests and tools).
    pub fn subscribe(&self, s: &Subscribe<'_>, out: &mut BytesMut) -> Result<(), MqttError> {
        self.filters(
            PacketType::Subscribe,
            s.packet_id,
            &s.properties,
            properties::SUBSCRIBE,
            &s.filters,
            out,
        )
    }

    /// Appends an UNSUBSCRIBE (client side; for tests and tools).
    pub fn unsubscribe(&self, u: &Unsubscribe<'_>, out: &mut BytesMut) -> Result<(), MqttError> {
        self.filters(
            PacketType::Unsubscribe,
            u.packet_id,
            &u.properties,
            properties::UNSUBSCRIBE,
            &u.filters,
            out,
        )
    }

    /// Appends a SUBACK with one code per filter, in order. On 3.1.1 each code is mapped by
    /// [`ReasonCode::suback_v3`] and properties are ignored; on 5.0 the reason string then
    /// user properties are dropped to fit the client's Maximum Packet Size.
    pub fn suback(
        &self,
        packet_id: u16,
        properties: &Properties<'_>,
        codes: &[ReasonCode],
        out: &mut BytesMut,
    ) -> Result<(), MqttError> {
        self.acks(PacketType::SubAck, packet_id, properties, codes, out)
    }

    /// Appends an UNSUBACK. On 3.1.1 it carries the packet id only (`codes` is ignored); on
    /// 5.0 one reason code per filter (Success, 0x11 No subscription existed, or an error).
    pub fn unsuback(
        &self,
        packet_id: u16,
        properties: &Properties<'_>,
        codes: &[ReasonCode],
        out: &mut BytesMut,
    ) -> Result<(), MqttError> {
        self.acks(PacketType::UnsubAck, packet_id, properties, codes, out)
    }

    fn acks(
        &self,
        kind: PacketType,
        packet_id: u16,
        props: &Properties<'_>,
        codes: &[ReasonCode],
        out: &mut BytesMut,
    ) -> Result<(), MqttError> {
        if packet_id == 0 {
            return Err(MqttError::Encode("packet identifier 0"));
        }
        let byte0 = first_byte(kind);
        if !self.v5() {
            let codes = if kind == PacketType::SubAck { codes } else { &[] };
            let remaining = 2 + codes.len();
            let len = self.packet_len(remaining)?;
            Encoder::put_header(byte0, remaining, len, out);
            out.put_u16(packet_id);
            for code in codes {
                out.put_u8(code.suback_v3());
            }
            return Ok(());
        }
        if codes.is_empty() {
            return Err(MqttError::Encode("no reason code"));
        }
        let (props, props_len, remaining, len) =
            self.fit(2 + codes.len(), props, properties::ACK)?;
        Encoder::put_header(byte0, remaining, len, out);
        out.put_u16(packet_id);
        props.put(props_len, out);
        for &code in codes {
            out.put_u8(code as u8);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::mqtt::packet::{Decoder, Packet};

    /// SUBSCRIBE id 1, "a/#" QoS 1 (3.1.1).
    const SUBSCRIBE_V3: &[u8] = &[0x82, 0x08, 0x00, 0x01, 0x00, 0x03, b'a', b'/', b'#', 0x01];
    /// SUBSCRIBE id 1, subscription identifier 5, "a/#" QoS 2 + NL + RAP + RH 2 (5.0).
    const SUBSCRIBE_V5: &[u8] =
        &[0x82, 0x0b, 0x00, 0x01, 0x02, 0x0b, 0x05, 0x00, 0x03, b'a', b'/', b'#', 0x2e];

    fn dec(v: ProtocolVersion) -> Decoder {
        Decoder::new(v, 1 << 20)
    }

    #[test]
    fn subscribe_vectors() {
        let Some((Packet::Subscribe(s), 10)) =
            dec(ProtocolVersion::V311).decode(SUBSCRIBE_V3).unwrap()
        else {
            panic!()
        };
        assert_eq!(s.packet_id, 1);
        assert_eq!(
            s.filters.iter().collect::<Vec<_>>(),
            [("a/#", SubscriptionOptions::qos(QoS::AtLeastOnce))]
        );
        let mut out = BytesMut::new();
        Encoder::new(ProtocolVersion::V311).subscribe(&s, &mut out).unwrap();
        assert_eq!(&out[..], SUBSCRIBE_V3);

        let Some((Packet::Subscribe(s), 13)) =
            dec(ProtocolVersion::V5).decode(SUBSCRIBE_V5).unwrap()
        else {
            panic!()
        };
        assert_eq!(s.properties.subscription_identifier, Some(5));
        let (f, o) = s.filters.iter().next().unwrap();
        assert_eq!(f, "a/#");
        assert_eq!(
            o,
            SubscriptionOptions {
                qos: QoS::ExactlyOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::DoNotSend
            }
        );
        out.clear();
        Encoder::new(ProtocolVersion::V5).subscribe(&s, &mut out).unwrap();
        assert_eq!(&out[..], SUBSCRIBE_V5);
    }

    #[test]
    fn subscribe_faults() {
        let v3 = dec(ProtocolVersion::V311);
        let v5 = dec(ProtocolVersion::V5);
        // Wrong fixed header flags.
        assert!(matches!(v3.decode(&[0x80, 0x02, 0x00, 0x01]), Err(MqttError::Malformed(_))));
        // No filter.
        assert!(matches!(v3.decode(&[0x82, 0x02, 0x00, 0x01]), Err(MqttError::Malformed(_))));
        assert!(matches!(v5.decode(&[0x82, 0x03, 0x00, 0x01, 0x00]), Err(MqttError::Protocol(_))));
        // Packet id 0.
        assert!(matches!(
            v3.decode(&[0x82, 0x06, 0x00, 0x00, 0x00, 0x01, b'a', 0x00]),
            Err(MqttError::Malformed(_))
        ));
        // Empty filter, QoS 3, v5 bits on 3.1.1, reserved bits on 5.0, retain handling 3.
        assert!(matches!(
            v3.decode(&[0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00]),
            Err(MqttError::Malformed(_))
        ));
        assert!(matches!(
            v3.decode(&[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x03]),
            Err(MqttError::Malformed(_))
        ));
        assert!(matches!(
            v3.decode(&[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x04]),
            Err(MqttError::Malformed(_))
        ));
        assert!(matches!(
            v5.decode(&[0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'a', 0x40]),
            Err(MqttError::Malformed(_))
        ));
        assert!(matches!(
            v5.decode(&[0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'a', 0x30]),
            Err(MqttError::Protocol(_))
        ));
        // Subscription identifier repeated; subscription identifier 0.
        assert!(matches!(
            v5.decode(&[
                0x82, 0x0b, 0x00, 0x01, 0x04, 0x0b, 0x01, 0x0b, 0x02, 0x00, 0x01, b'a', 0x00
            ]),
            Err(MqttError::Protocol(_))
        ));
        assert!(matches!(
            v5.decode(&[0x82, 0x09, 0x00, 0x01, 0x02, 0x0b, 0x00, 0x00, 0x01, b'a', 0x00]),
            Err(MqttError::Protocol(_))
        ));
        // Truncated options byte.
        assert!(matches!(
            v3.decode(&[0x82, 0x05, 0x00, 0x01, 0x00, 0x01, b'a']),
            Err(MqttError::Malformed(_))
        ));
    }

    #[test]
    fn topic_filter_validity() {
        for ok in ["a", "a/b", "#", "+", "a/+/b", "a/#", "+/+", "/", "$share/g/a"] {
            assert!(valid_topic_filter(ok), "{ok}");
        }
        for bad in ["", "a#", "a/#/b", "a+", "a/b+", "#/a"] {
            assert!(!valid_topic_filter(bad), "{bad}");
        }
    }

    #[test]
    fn suback_and_unsuback_vectors() {
        let codes = [
            ReasonCode::Success,
            ReasonCode::GrantedQos1,
            ReasonCode::GrantedQos2,
            ReasonCode::NotAuthorized,
        ];
        let mut out = BytesMut::new();
        Encoder::new(ProtocolVersion::V311)
            .suback(1, &Properties::default(), &codes, &mut out)
            .unwrap();
        assert_eq!(&out[..], &[0x90, 0x06, 0x00, 0x01, 0x00, 0x01, 0x02, 0x80]);
        out.clear();
        Encoder::new(ProtocolVersion::V5)
            .suback(1, &Properties::default(), &codes, &mut out)
            .unwrap();
        assert_eq!(&out[..], &[0x90, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 0x02, 0x87]);
        out.clear();
        Encoder::new(ProtocolVersion::V311)
            .unsuback(9, &Properties::default(), &codes, &mut out)
            .unwrap();
        assert_eq!(&out[..], &[0xb0, 0x02, 0x00, 0x09]);
        out.clear();
        Encoder::new(ProtocolVersion::V5)
            .unsuback(9, &Properties::default(), &[ReasonCode::NoSubscriptionExisted], &mut out)
            .unwrap();
        assert_eq!(&out[..], &[0xb0, 0x04, 0x00, 0x09, 0x00, 0x11]);
    }

    #[test]
    fn unsubscribe_vectors() {
        let v3 = [0xa2, 0x07, 0x00, 0x02, 0x00, 0x03, b'a', b'/', b'b'];
        let Some((Packet::Unsubscribe(u), 9)) = dec(ProtocolVersion::V311).decode(&v3).unwrap()
        else {
            panic!()
        };
        assert_eq!((u.packet_id, u.filters.iter().collect::<Vec<_>>()), (2, vec![("a/b", ())]));
        let v5 = [0xa2, 0x08, 0x00, 0x02, 0x00, 0x00, 0x03, b'a', b'/', b'b'];
        let Some((Packet::Unsubscribe(u5), 10)) = dec(ProtocolVersion::V5).decode(&v5).unwrap()
        else {
            panic!()
        };
        assert_eq!(u5.filters, u.filters);
        let mut out = BytesMut::new();
        Encoder::new(ProtocolVersion::V5).unsubscribe(&u5, &mut out).unwrap();
        assert_eq!(&out[..], &v5);
    }
}

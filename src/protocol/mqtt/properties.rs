//! MQTT 5.0 properties (§2.2.2): a variable byte integer length, then `identifier | value`
//! pairs. One [`Properties`] type carries every property; each packet allows a subset
//! (the `*` masks below), checked on decode and on encode.
//!
//! ```text
//! properties: length: var int | (id: var int | value)*      value by id:
//!   byte: 01 17 19 24 25 28 29 2A    u16: 13 21 22 23    u32: 02 11 18 27
//!   var int: 0B    string: 03 08 12 15 1A 1C 1F    binary: 09 16    string pair: 26
//! ```
//!
//! # Invariants
//! - Decoding borrows every string and binary value; user properties stay in the input as
//!   [`UserProperties::Raw`] and are iterated on demand, so decoding never allocates.
//! - An unknown identifier, or one the packet does not allow, is Malformed (§2.2.2.2); a
//!   property given twice (all but User Property) is a Protocol Error, as are the values the
//!   spec forbids: 0 for Receive Maximum, Maximum Packet Size, Topic Alias and Subscription
//!   Identifier, and anything but 0/1 for the boolean bytes (and for Maximum QoS).
//! - Encoders write properties in identifier order, user properties last.

use bytes::{BufMut, BytesMut};

use crate::protocol::mqtt::MqttError;
use crate::protocol::mqtt::data::{Reader, field_len, put_field, put_var_int, var_int_len};

/// The user properties of a packet (id 0x26, a name/value string pair, repeatable, ordered).
#[derive(Clone, Copy)]
pub enum UserProperties<'a> {
    /// Decoded: the validated property block they sit in (other properties are skipped).
    Raw(&'a [u8]),
    /// To encode: the pairs, in order.
    List(&'a [(&'a str, &'a str)]),
}

impl Default for UserProperties<'_> {
    fn default() -> Self {
        UserProperties::List(&[])
    }
}

impl<'a> UserProperties<'a> {
    /// The pairs, in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let (raw, list) = match *self {
            UserProperties::Raw(raw) => (raw, &[][..]),
            UserProperties::List(list) => (&[][..], list),
        };
        let mut r = Reader::new(raw);
        let from_raw = std::iter::from_fn(move || {
            while !r.is_empty() {
                // The block was validated when it was decoded, so these reads succeed.
                let id = r.var_int().ok()?;
                if id == USER_PROPERTY {
                    return Some((r.string().ok()?, r.string().ok()?));
                }
                skip(id, &mut r).ok()?;
            }
            None
        });
        from_raw.chain(list.iter().copied())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    fn encoded_len(&self) -> Result<usize, MqttError> {
        let mut len = 0;
        for (k, v) in self.iter() {
            len += 1 + field_len(k.len())? + field_len(v.len())?;
        }
        Ok(len)
    }
}

impl PartialEq for UserProperties<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for UserProperties<'_> {}

impl std::fmt::Debug for UserProperties<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The User Property identifier.
pub const USER_PROPERTY: u32 = 0x26;

fn read_bool(r: &mut Reader<'_>) -> Result<u8, MqttError> {
    match r.u8()? {
        b @ (0 | 1) => Ok(b),
        _ => Err(MqttError::Protocol("property byte other than 0 or 1")),
    }
}

fn read_nonzero_u16(r: &mut Reader<'_>) -> Result<u16, MqttError> {
    match r.u16()? {
        0 => Err(MqttError::Protocol("property value 0 not allowed")),
        v => Ok(v),
    }
}

fn read_nonzero_u32(r: &mut Reader<'_>) -> Result<u32, MqttError> {
    match r.u32()? {
        0 => Err(MqttError::Protocol("property value 0 not allowed")),
        v => Ok(v),
    }
}

fn read_nonzero_var(r: &mut Reader<'_>) -> Result<u32, MqttError> {
    match r.var_int()? {
        0 => Err(MqttError::Protocol("subscription identifier 0")),
        v => Ok(v),
    }
}

fn len_u8(_: &u8) -> Result<usize, MqttError> {
    Ok(1)
}
fn len_u16(_: &u16) -> Result<usize, MqttError> {
    Ok(2)
}
fn len_u32(_: &u32) -> Result<usize, MqttError> {
    Ok(4)
}
fn len_var(v: &u32) -> Result<usize, MqttError> {
    if *v == 0 || *v > crate::protocol::mqtt::data::MAX_VAR_INT {
        return Err(MqttError::Encode("subscription identifier out of 1..=268435455"));
    }
    Ok(var_int_len(*v))
}
fn len_str(s: &&str) -> Result<usize, MqttError> {
    field_len(s.len())
}
fn len_bin(b: &&[u8]) -> Result<usize, MqttError> {
    field_len(b.len())
}
fn put_u8(out: &mut BytesMut, v: &u8) {
    out.put_u8(*v);
}
fn put_u16(out: &mut BytesMut, v: &u16) {
    out.put_u16(*v);
}
fn put_u32(out: &mut BytesMut, v: &u32) {
    out.put_u32(*v);
}
fn put_var(out: &mut BytesMut, v: &u32) {
    put_var_int(out, *v);
}
fn put_str(out: &mut BytesMut, s: &&str) {
    put_field(out, s.as_bytes());
}
fn put_bin(out: &mut BytesMut, b: &&[u8]) {
    put_field(out, b);
}

macro_rules! properties {
    ($( $(#[$doc:meta])* $id:literal $field:ident: $ty:ty, $read:expr, $len:ident, $put:ident; )*) => {
        /// The properties of one MQTT 5.0 packet; `None` / empty means absent.
        ///
        /// Which ones a packet may carry is in §3.x.2.2 of each packet (and the masks in this
        /// module); absent properties take the spec's default, which the session applies.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct Properties<'a> {
            $( $(#[$doc])* pub $field: Option<$ty>, )*
            /// 0x26 User Property, repeatable.
            pub user_properties: UserProperties<'a>,
        }

        /// Reads one value of property `id` and sets it; a repeat is a Protocol Error.
        fn set<'a>(p: &mut Properties<'a>, id: u32, r: &mut Reader<'a>) -> Result<(), MqttError> {
            match id {
                $( $id => {
                    let value: $ty = $read(r)?;
                    if p.$field.replace(value).is_some() {
                        return Err(MqttError::Protocol("property repeated"));
                    }
                } )*
                USER_PROPERTY => {
                    r.string()?;
                    r.string()?;
                }
                _ => return Err(MqttError::Malformed("unknown property identifier")),
            }
            Ok(())
        }

        /// Skips one value of a known property `id`.
        fn skip(id: u32, r: &mut Reader<'_>) -> Result<(), MqttError> {
            let mut scratch = Properties::default();
            set(&mut scratch, id, r)
        }

        impl Properties<'_> {
            /// The identifiers present, as bits (`1 << id`).
            pub fn mask(&self) -> u64 {
                let mut m = 0u64;
                $( if self.$field.is_some() { m |= 1 << $id; } )*
                if !self.user_properties.is_empty() { m |= 1 << USER_PROPERTY; }
                m
            }

            /// The bytes of the property block, without its length prefix.
            pub fn body_len(&self) -> Result<usize, MqttError> {
                let mut len = self.user_properties.encoded_len()?;
                $( if let Some(v) = &self.$field { len += 1 + $len(v)?; } )*
                Ok(len)
            }

            fn put_body(&self, out: &mut BytesMut) {
                $( if let Some(v) = &self.$field { out.put_u8($id); $put(out, v); } )*
                for (k, v) in self.user_properties.iter() {
                    out.put_u8(USER_PROPERTY as u8);
                    put_field(out, k.as_bytes());
                    put_field(out, v.as_bytes());
                }
            }
        }
    };
}

properties! {
    /// 0x01 Payload Format Indicator: 0 bytes, 1 UTF-8.
    0x01 payload_format_indicator: u8, read_bool, len_u8, put_u8;
    /// 0x02 Message Expiry Interval, seconds.
    0x02 message_expiry_interval: u32, Reader::u32, len_u32, put_u32;
    /// 0x03 Content Type.
    0x03 content_type: &'a str, Reader::string, len_str, put_str;
    /// 0x08 Response Topic.
    0x08 response_topic: &'a str, Reader::string, len_str, put_str;
    /// 0x09 Correlation Data.
    0x09 correlation_data: &'a [u8], Reader::binary, len_bin, put_bin;
    /// 0x0B Subscription Identifier (1..=268 435 455). One per packet here: a server that
    /// matches several identified subscriptions sends one PUBLISH per subscription (§3.3.4).
    0x0B subscription_identifier: u32, read_nonzero_var, len_var, put_var;
    /// 0x11 Session Expiry Interval, seconds.
    0x11 session_expiry_interval: u32, Reader::u32, len_u32, put_u32;
    /// 0x12 Assigned Client Identifier (CONNACK).
    0x12 assigned_client_identifier: &'a str, Reader::string, len_str, put_str;
    /// 0x13 Server Keep Alive, seconds (CONNACK).
    0x13 server_keep_alive: u16, Reader::u16, len_u16, put_u16;
    /// 0x15 Authentication Method.
    0x15 authentication_method: &'a str, Reader::string, len_str, put_str;
    /// 0x16 Authentication Data.
    0x16 authentication_data: &'a [u8], Reader::binary, len_bin, put_bin;
    /// 0x17 Request Problem Information (CONNECT), 0 or 1.
    0x17 request_problem_information: u8, read_bool, len_u8, put_u8;
    /// 0x18 Will Delay Interval, seconds (will properties).
    0x18 will_delay_interval: u32, Reader::u32, len_u32, put_u32;
    /// 0x19 Request Response Information (CONNECT), 0 or 1.
    0x19 request_response_information: u8, read_bool, len_u8, put_u8;
    /// 0x1A Response Information (CONNACK).
    0x1A response_information: &'a str, Reader::string, len_str, put_str;
    /// 0x1C Server Reference (CONNACK, DISCONNECT).
    0x1C server_reference: &'a str, Reader::string, len_str, put_str;
    /// 0x1F Reason String: human readable, droppable to fit a maximum packet size.
    0x1F reason_string: &'a str, Reader::string, len_str, put_str;
    /// 0x21 Receive Maximum (1..=65 535).
    0x21 receive_maximum: u16, read_nonzero_u16, len_u16, put_u16;
    /// 0x22 Topic Alias Maximum.
    0x22 topic_alias_maximum: u16, Reader::u16, len_u16, put_u16;
    /// 0x23 Topic Alias (1..).
    0x23 topic_alias: u16, read_nonzero_u16, len_u16, put_u16;
    /// 0x24 Maximum QoS (CONNACK), 0 or 1.
    0x24 maximum_qos: u8, read_bool, len_u8, put_u8;
    /// 0x25 Retain Available (CONNACK), 0 or 1.
    0x25 retain_available: u8, read_bool, len_u8, put_u8;
    /// 0x27 Maximum Packet Size (1..).
    0x27 maximum_packet_size: u32, read_nonzero_u32, len_u32, put_u32;
    /// 0x28 Wildcard Subscription Available (CONNACK), 0 or 1.
    0x28 wildcard_subscription_available: u8, read_bool, len_u8, put_u8;
    /// 0x29 Subscription Identifier Available (CONNACK), 0 or 1.
    0x29 subscription_identifier_available: u8, read_bool, len_u8, put_u8;
    /// 0x2A Shared Subscription Available (CONNACK), 0 or 1.
    0x2A shared_subscription_available: u8, read_bool, len_u8, put_u8;
}

const fn bits(ids: &[u32]) -> u64 {
    let mut m = 0u64;
    let mut i = 0;
    while i < ids.len() {
        m |= 1 << ids[i];
        i += 1;
    }
    m
}

/// CONNECT (§3.1.2.11).
pub(crate) const CONNECT: u64 =
    bits(&[0x11, 0x21, 0x27, 0x22, 0x19, 0x17, USER_PROPERTY, 0x15, 0x16]);
/// Will properties (§3.1.3.2).
pub(crate) const WILL: u64 = bits(&[0x18, 0x01, 0x02, 0x03, 0x08, 0x09, USER_PROPERTY]);
/// PUBLISH from a client: no Subscription Identifier [MQTT-3.3.4-6].
pub(crate) const PUBLISH_FROM_CLIENT: u64 =
    bits(&[0x01, 0x02, 0x23, 0x08, 0x09, USER_PROPERTY, 0x03]);
/// PUBLISH to a client (§3.3.2.3).
pub(crate) const PUBLISH_TO_CLIENT: u64 = PUBLISH_FROM_CLIENT | bits(&[0x0B]);
/// PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, UNSUBSCRIBE (reason string only where
/// the packet has one: UNSUBSCRIBE carries user properties only).
pub(crate) const ACK: u64 = bits(&[0x1F, USER_PROPERTY]);
/// UNSUBSCRIBE (§3.10.2.1).
pub(crate) const UNSUBSCRIBE: u64 = bits(&[USER_PROPERTY]);
/// SUBSCRIBE (§3.8.2.1).
pub(crate) const SUBSCRIBE: u64 = bits(&[0x0B, USER_PROPERTY]);
/// DISCONNECT (§3.14.2.2).
pub(crate) const DISCONNECT: u64 = bits(&[0x11, 0x1F, USER_PROPERTY, 0x1C]);
/// AUTH (§3.15.2.2).
pub(crate) const AUTH: u64 = bits(&[0x15, 0x16, 0x1F, USER_PROPERTY]);
/// CONNACK (§3.2.2.3).
pub(crate) const CONNACK: u64 = bits(&[
    0x11,
    0x21,
    0x24,
    0x25,
    0x27,
    0x12,
    0x22,
    0x1F,
    USER_PROPERTY,
    0x28,
    0x29,
    0x2A,
    0x13,
    0x1A,
    0x1C,
    0x15,
    0x16,
]);

impl<'a> Properties<'a> {
    /// Reads a property block (length and properties) allowed by `allowed`.
    pub(crate) fn decode(r: &mut Reader<'a>, allowed: u64) -> Result<Self, MqttError> {
        let len = r.var_int()? as usize;
        let block = r.take(len, "property length past the end of the packet")?;
        let mut p = Properties::default();
        let mut br = Reader::new(block);
        let mut users = false;
        while !br.is_empty() {
            let id = br.var_int()?;
            if id >= 64 || allowed & (1 << id) == 0 {
                return Err(MqttError::Malformed(if id < 64 && (1 << id) & ALL != 0 {
                    "property not allowed in this packet"
                } else {
                    "unknown property identifier"
                }));
            }
            users |= id == USER_PROPERTY;
            set(&mut p, id, &mut br)?;
        }
        if users {
            p.user_properties = UserProperties::Raw(block);
        }
        Ok(p)
    }

    /// The whole block's size: length prefix and body.
    pub(crate) fn encoded_len(&self, allowed: u64) -> Result<usize, MqttError> {
        if self.mask() & !allowed != 0 {
            return Err(MqttError::Encode("property not allowed in this packet"));
        }
        let body = self.body_len()?;
        Ok(var_int_len(body as u32) + body)
    }

    /// Writes the block; `body_len` is [`Properties::body_len`], checked by `encoded_len`.
    pub(crate) fn put(&self, body_len: usize, out: &mut BytesMut) {
        put_var_int(out, body_len as u32);
        self.put_body(out);
    }

    /// These properties without what §3.x says a sender drops first when a packet would
    /// exceed the peer's Maximum Packet Size: the reason string, then the user properties.
    pub(crate) fn shed(mut self, step: u8) -> Self {
        self.reason_string = None;
        if step >= 2 {
            self.user_properties = UserProperties::default();
        }
        self
    }
}

/// Every identifier the spec defines.
const ALL: u64 = CONNECT | WILL | PUBLISH_TO_CLIENT | ACK | SUBSCRIBE | DISCONNECT | AUTH | CONNACK;

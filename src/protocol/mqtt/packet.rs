//! The fixed header every MQTT packet starts with (§2.1), the [`Packet`] a client sends, the
//! [`Decoder`] and the [`Encoder`].
//!
//! ```text
//!   7   6   5   4   3   2   1   0
//! +---------------+---------------+
//! |  packet type  |     flags     |   PUBLISH flags: DUP | QoS (2 bits) | RETAIN
//! +---------------+---------------+   SUBSCRIBE, UNSUBSCRIBE, PUBREL: 0010; others 0000
//! | remaining length: var int, 1..=4 bytes | variable header | payload
//! ```
//!
//! # Invariants
//! - As soon as the fixed header is complete, the type and flags are checked and
//!   `header + remaining length` is compared with the maximum packet size, so an oversize
//!   packet is refused before any of its body is awaited.
//! - Every body decoder reads exactly the remaining length: trailing bytes are Malformed.
//! - [`Encoder`] methods compute the packet's exact size, check it against the peer's maximum
//!   packet size, reserve once, then write it whole; on error nothing is written.

use bytes::{BufMut, BytesMut};

use crate::protocol::mqtt::MqttError;
use crate::protocol::mqtt::connect::Connect;
use crate::protocol::mqtt::control::{Auth, Disconnect};
use crate::protocol::mqtt::data::{MAX_VAR_INT, put_var_int, read_var_int, var_int_len};
use crate::protocol::mqtt::publish::{PubResponse, Publish};
use crate::protocol::mqtt::subscribe::{Subscribe, Unsubscribe};

/// The protocol level of a connection: byte 7 of CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ProtocolVersion {
    /// MQTT 3.1.1 (level 4).
    V311 = 4,
    /// MQTT 5.0 (level 5).
    V5 = 5,
}

/// A quality of service level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum QoS {
    /// 0: at most once.
    AtMostOnce = 0,
    /// 1: at least once.
    AtLeastOnce = 1,
    /// 2: exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS of two bits; 3 is Malformed.
    pub(crate) fn from_bits(bits: u8) -> Result<Self, MqttError> {
        match bits {
            0 => Ok(QoS::AtMostOnce),
            1 => Ok(QoS::AtLeastOnce),
            2 => Ok(QoS::ExactlyOnce),
            _ => Err(MqttError::Malformed("QoS 3")),
        }
    }
}

/// The packet type, the high nibble of byte 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// 1 client → server: connection request.
    Connect = 1,
    /// 2 server → client: connect acknowledgment.
    ConnAck = 2,
    /// 3 both: publish message.
    Publish = 3,
    /// 4 both: QoS 1 acknowledgment.
    PubAck = 4,
    /// 5 both: QoS 2 part 1.
    PubRec = 5,
    /// 6 both: QoS 2 part 2.
    PubRel = 6,
    /// 7 both: QoS 2 part 3.
    PubComp = 7,
    /// 8 client → server: subscribe.
    Subscribe = 8,
    /// 9 server → client: subscribe acknowledgment.
    SubAck = 9,
    /// 10 client → server: unsubscribe.
    Unsubscribe = 10,
    /// 11 server → client: unsubscribe acknowledgment.
    UnsubAck = 11,
    /// 12 client → server: ping.
    PingReq = 12,
    /// 13 server → client: ping answer.
    PingResp = 13,
    /// 14 both (server → client only in 5.0): disconnect.
    Disconnect = 14,
    /// 15 both, 5.0 only: authentication exchange.
    Auth = 15,
}

/// The first byte of a packet with no flags; PUBLISH's byte is built by its encoder.
#[inline]
pub(crate) fn first_byte(kind: PacketType) -> u8 {
    let flags = match kind {
        PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => 0b0010,
        _ => 0,
    };
    ((kind as u8) << 4) | flags
}

/// A decoded fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// The packet type.
    pub kind: PacketType,
    /// The low nibble of byte 0 (checked: only PUBLISH has variable flags).
    pub flags: u8,
    /// The bytes after the fixed header.
    pub remaining_len: usize,
    /// The fixed header's own length, 2..=5.
    pub header_len: usize,
}

impl FixedHeader {
    /// The whole packet's size.
    #[inline]
    pub fn packet_len(&self) -> usize {
        self.header_len + self.remaining_len
    }
}

/// Decodes a fixed header from the front of `buf`, for a client → server packet on a
/// `version` connection: `Ok(None)` until it is complete. Checks the type, the flags, and
/// the whole packet's size against `max_packet_size`.
pub fn decode_fixed_header(
    buf: &[u8],
    version: ProtocolVersion,
    max_packet_size: u32,
) -> Result<Option<FixedHeader>, MqttError> {
    let Some((&byte0, rest)) = buf.split_first() else {
        return Ok(None);
    };
    let flags = byte0 & 0x0f;
    let kind = match byte0 >> 4 {
        0 => return Err(MqttError::Malformed("reserved packet type 0")),
        1 => PacketType::Connect,
        2 => PacketType::ConnAck,
        3 => PacketType::Publish,
        4 => PacketType::PubAck,
        5 => PacketType::PubRec,
        6 => PacketType::PubRel,
        7 => PacketType::PubComp,
        8 => PacketType::Subscribe,
        9 => PacketType::SubAck,
        10 => PacketType::Unsubscribe,
        11 => PacketType::UnsubAck,
        12 => PacketType::PingReq,
        13 => PacketType::PingResp,
        14 => PacketType::Disconnect,
        _ if version == ProtocolVersion::V311 => {
            return Err(MqttError::Malformed("reserved packet type 15 in MQTT 3.1.1"));
        }
        _ => PacketType::Auth,
    };
    if matches!(
        kind,
        PacketType::ConnAck | PacketType::SubAck | PacketType::UnsubAck | PacketType::PingResp
    ) {
        return Err(MqttError::Protocol("server-only packet sent by a client"));
    }
    if kind == PacketType::Publish {
        QoS::from_bits((flags >> 1) & 0b11)?;
    } else if byte0 != first_byte(kind) {
        return Err(MqttError::Malformed("reserved fixed header flags"));
    }
    let Some((remaining, n)) = read_var_int(rest)? else {
        return Ok(None);
    };
    let header = FixedHeader { kind, flags, remaining_len: remaining as usize, header_len: 1 + n };
    let max = max_packet_size as usize;
    if header.packet_len() > max {
        return Err(MqttError::PacketTooLarge { len: header.packet_len(), max });
    }
    Ok(Some(header))
}

/// A packet a client sends, borrowing its strings and payload from the input.
///
/// CONNECT is the largest variant (two property sets, ~600 bytes); a `Packet` lives on the
/// stack for one call, and boxing CONNECT would allocate, so the variants stay inline.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// CONNECT.
    Connect(Connect<'a>),
    /// PUBLISH.
    Publish(Publish<'a>),
    /// PUBACK.
    PubAck(PubResponse<'a>),
    /// PUBREC.
    PubRec(PubResponse<'a>),
    /// PUBREL.
    PubRel(PubResponse<'a>),
    /// PUBCOMP.
    PubComp(PubResponse<'a>),
    /// SUBSCRIBE.
    Subscribe(Subscribe<'a>),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe<'a>),
    /// PINGREQ.
    PingReq,
    /// DISCONNECT.
    Disconnect(Disconnect<'a>),
    /// AUTH (5.0).
    Auth(Auth<'a>),
}

/// The client → server decoder of one connection.
///
/// `version` is the connection's level once CONNECT is decoded (before that, any value: a
/// CONNECT carries its own level and is decoded by it). `max_packet_size` is the server's
/// limit (the Maximum Packet Size it announces in a v5 CONNACK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder {
    /// The connection's protocol version.
    pub version: ProtocolVersion,
    /// The largest whole packet accepted, fixed header included.
    pub max_packet_size: u32,
}

impl Decoder {
    /// A decoder for `version` with a limit of `max_packet_size` bytes per packet.
    pub fn new(version: ProtocolVersion, max_packet_size: u32) -> Self {
        Decoder { version, max_packet_size }
    }

    /// Decodes one packet from the front of `buf`: the packet and the bytes it took, or
    /// `Ok(None)` for "need more bytes" (nothing of `buf` is consumed).
    pub fn decode<'a>(&self, buf: &'a [u8]) -> Result<Option<(Packet<'a>, usize)>, MqttError> {
        let Some(h) = decode_fixed_header(buf, self.version, self.max_packet_size)? else {
            return Ok(None);
        };
        let Some(body) = buf.get(h.header_len..h.packet_len()) else {
            return Ok(None);
        };
        let v = self.version;
        let packet = match h.kind {
            PacketType::Connect => Packet::Connect(Connect::decode(body)?),
            PacketType::Publish => Packet::Publish(Publish::decode(h.flags, body, v)?),
            PacketType::PubAck => Packet::PubAck(PubResponse::decode(h.kind, body, v)?),
            PacketType::PubRec => Packet::PubRec(PubResponse::decode(h.kind, body, v)?),
            PacketType::PubRel => Packet::PubRel(PubResponse::decode(h.kind, body, v)?),
            PacketType::PubComp => Packet::PubComp(PubResponse::decode(h.kind, body, v)?),
            PacketType::Subscribe => Packet::Subscribe(Subscribe::decode(body, v)?),
            PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::decode(body, v)?),
            PacketType::PingReq if body.is_empty() => Packet::PingReq,
            PacketType::PingReq => return Err(MqttError::Malformed("PINGREQ with a body")),
            PacketType::Disconnect => Packet::Disconnect(Disconnect::decode(body, v)?),
            PacketType::Auth => Packet::Auth(Auth::decode(body)?),
            // decode_fixed_header refused them.
            PacketType::ConnAck
            | PacketType::SubAck
            | PacketType::UnsubAck
            | PacketType::PingResp => {
                return Err(MqttError::Protocol("server-only packet sent by a client"));
            }
        };
        Ok(Some((packet, h.packet_len())))
    }
}

/// A whole PINGRESP.
pub const PINGRESP: [u8; 2] = [0xd0, 0x00];
/// A whole PINGREQ.
pub const PINGREQ: [u8; 2] = [0xc0, 0x00];

/// The encoder for the packets a server sends on one connection (and, for tests and tools,
/// the ones a client sends).
///
/// `max_packet_size` is the *peer's* limit: the Maximum Packet Size from a v5 CONNECT, or
/// [`MAX_PACKET_SIZE`] when it gave none (and always for 3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoder {
    /// The connection's protocol version.
    pub version: ProtocolVersion,
    /// The largest whole packet the peer accepts.
    pub max_packet_size: u32,
}

/// The largest packet MQTT can frame: a 4-byte remaining length of 268 435 455 and 5 bytes
/// of fixed header.
pub const MAX_PACKET_SIZE: u32 = MAX_VAR_INT + 5;

impl Encoder {
    /// An encoder for `version` with no limit but the protocol's.
    pub fn new(version: ProtocolVersion) -> Self {
        Encoder { version, max_packet_size: MAX_PACKET_SIZE }
    }

    /// The same encoder bounded by the peer's Maximum Packet Size.
    pub fn with_max_packet_size(self, max_packet_size: u32) -> Self {
        Encoder { max_packet_size, ..self }
    }

    /// Whether this is a 5.0 connection.
    #[inline]
    pub(crate) fn v5(&self) -> bool {
        self.version == ProtocolVersion::V5
    }

    /// The whole packet's size for a `remaining` byte body, checked against both limits.
    pub(crate) fn packet_len(&self, remaining: usize) -> Result<usize, MqttError> {
        if remaining > MAX_VAR_INT as usize {
            return Err(MqttError::PacketTooLarge {
                len: remaining + 5,
                max: self.max_packet_size as usize,
            });
        }
        let len = 1 + var_int_len(remaining as u32) + remaining;
        if len > self.max_packet_size as usize {
            return Err(MqttError::PacketTooLarge { len, max: self.max_packet_size as usize });
        }
        Ok(len)
    }

    /// Reserves the whole packet and writes its fixed header; `remaining` was checked by
    /// [`Encoder::packet_len`], whose answer is `len`.
    pub(crate) fn put_header(byte0: u8, remaining: usize, len: usize, out: &mut BytesMut) {
        out.reserve(len);
        out.put_u8(byte0);
        put_var_int(out, remaining as u32);
    }

    /// Appends a PINGRESP.
    pub fn pingresp(&self, out: &mut BytesMut) {
        out.extend_from_slice(&PINGRESP);
    }

    /// Appends a PINGREQ (client side; for tests and tools).
    pub fn pingreq(&self, out: &mut BytesMut) {
        out.extend_from_slice(&PINGREQ);
    }
}

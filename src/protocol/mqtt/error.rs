//! The error type of the MQTT codec: every fault names the 5.0 reason code a server sends
//! (in CONNACK or DISCONNECT) before it closes the connection.
//!
//! # Invariants
//! - No variant means "need more bytes" (that is `Ok(None)`).
//! - [`MqttError::reason_code`] is total; on a 3.1.1 connection there is no DISCONNECT from
//!   the server, so the session just closes, except that a refused protocol level is answered
//!   with CONNACK return code 1 ([`MqttError::connect_return_code`]).

use crate::protocol::mqtt::reason::{ConnectReturnCode, ReasonCode};

/// A protocol fault found while decoding, or a packet refused while encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MqttError {
    /// The bytes break the wire format (§1.5, §2): 0x81 Malformed Packet.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// Well-formed bytes that break a protocol rule (a repeated property, a zero receive
    /// maximum, a server-only packet from a client, ...): 0x82 Protocol Error.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A packet larger than the maximum packet size: 0x95 Packet too large. When decoding, it
    /// is found from the fixed header alone; when encoding, nothing was written.
    #[error("packet too large: {len} bytes (max {max})")]
    PacketTooLarge {
        /// The whole packet's size: fixed header and remaining length.
        len: usize,
        /// The limit it broke.
        max: usize,
    },
    /// CONNECT with a protocol level other than 4 (3.1.1) or 5 (5.0): 0x84 Unsupported
    /// Protocol Version, v3 return code 1.
    #[error("unsupported protocol level {0}")]
    UnsupportedProtocolVersion(u8),
    /// CONNECT whose protocol name is not `MQTT` (or `MQIsdp` for 3.1): 0x84, v3 return code 1.
    #[error("unsupported protocol name")]
    UnsupportedProtocolName,
    /// A PUBLISH or will topic that is empty (without an alias) or holds `+` / `#`: 0x90.
    #[error("topic name invalid: {0}")]
    TopicNameInvalid(&'static str),
    /// Encoding: the caller passed something no valid packet holds (packet id 0 with QoS 1, a
    /// string over 65 535 bytes, a property the packet does not allow, ...). Nothing was written.
    #[error("cannot encode: {0}")]
    Encode(&'static str),
}

impl MqttError {
    /// The reason code for a v5 CONNACK (before CONNECT is accepted) or DISCONNECT.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            MqttError::Malformed(_) => ReasonCode::MalformedPacket,
            MqttError::Protocol(_) => ReasonCode::ProtocolError,
            MqttError::PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            MqttError::UnsupportedProtocolVersion(_) | MqttError::UnsupportedProtocolName => {
                ReasonCode::UnsupportedProtocolVersion
            }
            MqttError::TopicNameInvalid(_) => ReasonCode::TopicNameInvalid,
            MqttError::Encode(_) => ReasonCode::ImplementationSpecificError,
        }
    }

    /// The v3.1.1 CONNACK return code, where 3.1.1 answers the fault with one: only a refused
    /// protocol (return code 1, §3.1.2.2). For everything else 3.1.1 closes the connection.
    pub fn connect_return_code(&self) -> Option<ConnectReturnCode> {
        match self {
            MqttError::UnsupportedProtocolVersion(_) | MqttError::UnsupportedProtocolName => {
                Some(ConnectReturnCode::UnacceptableProtocolVersion)
            }
            _ => None,
        }
    }
}

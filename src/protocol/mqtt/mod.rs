//! MQTT 3.1.1 (OASIS, 2014) and 5.0 (OASIS, 2019) packets, sans-IO: the client → server
//! decoder and the server → client encoder a broker frontend needs.
//!
//! Hand-written rather than a crate: the maintained codecs (rumqttc's `mqttbytes`,
//! `mqtt-protocol`) decode into owned `String`/`Bytes` and report faults without the 5.0 reason
//! code each needs. shaddock needs borrowing decode (no allocation per packet), a reason code
//! per fault, and a PUBLISH split into a per-connection header and a shared payload for
//! fan-out ([`fanout`]).
//!
//! # Layout
//! - [`packet`]: fixed header, [`Packet`], [`Decoder`], [`Encoder`], PINGREQ / PINGRESP.
//! - [`connect`]: CONNECT and CONNACK. [`publish`]: PUBLISH and PUBACK / PUBREC / PUBREL /
//!   PUBCOMP. [`subscribe`]: SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK. [`control`]:
//!   DISCONNECT and AUTH.
//! - [`properties`]: 5.0 properties. [`reason`]: reason codes and 3.1.1 return codes.
//!   [`data`]: integers, variable byte integers, strings. [`error`]: [`MqttError`].
//! - [`fanout`]: [`SharedPublish`], one PUBLISH encoded once for many subscribers.
//!
//! # Use
//! ```
//! use bytes::BytesMut;
//! use shaddock::protocol::mqtt::{Decoder, Encoder, Packet, ProtocolVersion, PubResponse};
//!
//! let dec = Decoder::new(ProtocolVersion::V311, 64 * 1024);
//! // PUBLISH QoS 1, topic "a", packet id 7, payload "x".
//! let input = [0x32, 0x06, 0x00, 0x01, b'a', 0x00, 0x07, b'x'];
//! let Some((Packet::Publish(p), used)) = dec.decode(&input).unwrap() else { panic!() };
//! assert_eq!((p.topic, p.payload, used), ("a", &b"x"[..], 8));
//! let mut out = BytesMut::new();
//! Encoder::new(ProtocolVersion::V311).puback(&PubResponse::success(p.packet_id), &mut out).unwrap();
//! assert_eq!(&out[..], &[0x40, 0x02, 0x00, 0x07]);
//! ```
//!
//! # Invariants
//! - Input is a `&[u8]`, output goes into a `BytesMut`; "need more bytes" is `Ok(None)` and
//!   leaves the input to the caller. Decoded packets borrow strings and payloads from it.
//! - The maximum packet size is checked from the fixed header alone, before the body is
//!   awaited ([`packet::decode_fixed_header`]).
//! - Every decode fault is an [`MqttError`] with its 5.0 reason code
//!   ([`MqttError::reason_code`]): 0x81 Malformed Packet, 0x82 Protocol Error, 0x84
//!   Unsupported Protocol Version (3.1.1 return code 1), 0x90 Topic Name invalid, 0x95 Packet
//!   too large. Nothing panics on any input.
//! - The decoder takes the connection's version as a parameter (packets differ between 3.1.1
//!   and 5.0 after CONNECT); CONNECT carries its own.
//! - Encoders write a whole packet or nothing, and never exceed the peer's Maximum Packet
//!   Size: CONNACK, PUBACK.., SUBACK, UNSUBACK, DISCONNECT and AUTH drop the reason string,
//!   then the user properties, to fit (§3.x "MUST NOT send ... if it would increase the size
//!   beyond the Maximum Packet Size"); a PUBLISH that does not fit is refused
//!   ([`MqttError::PacketTooLarge`]) and the session drops it for that client.
//! - Strings are MQTT UTF-8: well formed, no U+0000; other control characters are accepted
//!   ([`data`] says why).
//! - Left to the session (the next step): CONNECT first and once, keep alive, topic aliases,
//!   receive maximum, packet id bookkeeping, authentication methods, QoS 2 refusal.

pub mod connect;
pub mod control;
pub mod data;
pub mod error;
pub mod fanout;
pub mod packet;
pub mod properties;
pub mod publish;
pub mod reason;
pub mod subscribe;

#[cfg(test)]
mod tests;

pub use connect::{ConnAck, Connect, Will};
pub use control::{Auth, DISCONNECT_V3, Disconnect};
pub use error::MqttError;
pub use fanout::SharedPublish;
pub use packet::{
    Decoder, Encoder, FixedHeader, MAX_PACKET_SIZE, PINGREQ, PINGRESP, Packet, PacketType,
    ProtocolVersion, QoS,
};
pub use properties::{Properties, UserProperties};
pub use publish::{PubResponse, Publish};
pub use reason::{ConnectReturnCode, ReasonCode};
pub use subscribe::{
    Filters, RetainHandling, Subscribe, SubscriptionOptions, Unsubscribe, valid_topic_filter,
};

/// Properties shed to fit a limit: the properties, their body length, the remaining length
/// and the whole packet length.
pub(crate) type Shed<'p> = (Properties<'p>, usize, usize, usize);

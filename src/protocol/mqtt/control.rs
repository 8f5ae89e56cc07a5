//! DISCONNECT (§3.14) and AUTH (§3.15, 5.0 only).
//!
//! ```text
//! DISCONNECT  v3: empty    v5: [reason code | [properties]]   (empty = Normal disconnection)
//! AUTH        v5: [reason code | [properties]]                (empty = Success)
//! ```
//!
//! # Invariants
//! - A 3.1.1 DISCONNECT has no body; a 3.1.1 server never sends one ([`Encoder::disconnect`]
//!   refuses: close the connection instead).
//! - A client's DISCONNECT reason must be one a client may send (§3.14.2.1), an AUTH reason one
//!   of 0x00, 0x18, 0x19; anything else is Malformed.

use bytes::{BufMut, BytesMut};

use crate::protocol::mqtt::MqttError;
use crate::protocol::mqtt::data::Reader;
use crate::protocol::mqtt::packet::{Encoder, PacketType, ProtocolVersion, first_byte};
use crate::protocol::mqtt::properties::{self, Properties};
use crate::protocol::mqtt::reason::ReasonCode;

/// A DISCONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disconnect<'a> {
    /// The reason (Success = Normal disconnection; always Success on 3.1.1).
    pub reason: ReasonCode,
    /// Session expiry, reason string, user properties, server reference (5.0).
    pub properties: Properties<'a>,
}

/// An AUTH (5.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Auth<'a> {
    /// Success, Continue authentication or Re-authenticate.
    pub reason: ReasonCode,
    /// Authentication method and data, reason string, user properties.
    pub properties: Properties<'a>,
}

/// Reads `[reason code | [properties]]`.
fn reason_and_properties<'a>(
    body: &'a [u8],
    allowed: u64,
    valid: fn(ReasonCode) -> bool,
) -> Result<(ReasonCode, Properties<'a>), MqttError> {
    let mut r = Reader::new(body);
    if r.is_empty() {
        return Ok((ReasonCode::Success, Properties::default()));
    }
    let reason = ReasonCode::try_from(r.u8()?)
        .ok()
        .filter(|&c| valid(c))
        .ok_or(MqttError::Malformed("reason code not allowed in this packet"))?;
    let properties =
        if r.is_empty() { Properties::default() } else { Properties::decode(&mut r, allowed)? };
    if !r.is_empty() {
        return Err(MqttError::Malformed("bytes after the properties"));
    }
    Ok((reason, properties))
}

impl<'a> Disconnect<'a> {
    pub(crate) fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, MqttError> {
        if version == ProtocolVersion::V311 {
            if !body.is_empty() {
                return Err(MqttError::Malformed("3.1.1 DISCONNECT with a body"));
            }
            return Ok(Disconnect {
                reason: ReasonCode::Success,
                properties: Properties::default(),
            });
        }
        let (reason, properties) = reason_and_properties(
            body,
            properties::DISCONNECT,
            ReasonCode::valid_for_client_disconnect,
        )?;
        Ok(Disconnect { reason, properties })
    }
}

impl<'a> Auth<'a> {
    pub(crate) fn decode(body: &'a [u8]) -> Result<Self, MqttError> {
        let (reason, properties) =
            reason_and_properties(body, properties::AUTH, ReasonCode::valid_for_auth)?;
        Ok(Auth { reason, properties })
    }
}

impl Encoder {
    fn reason_packet(
        &self,
        kind: PacketType,
        reason: ReasonCode,
        props: &Properties<'_>,
        allowed: u64,
        out: &mut BytesMut,
    ) -> Result<(), MqttError> {
        let byte0 = first_byte(kind);
        let (props, props_len, remaining, len) = self.fit(1, props, allowed)?;
        if props_len == 0 {
            // The short forms: nothing for Success, the reason code alone otherwise.
            if reason == ReasonCode::Success {
                out.extend_from_slice(&[byte0, 0]);
            } else {
                out.extend_from_slice(&[byte0, 1, reason as u8]);
            }
            return Ok(());
        }
        Encoder::put_header(byte0, remaining, len, out);
        out.put_u8(reason as u8);
        props.put(props_len, out);
        Ok(())
    }

    /// Appends a 5.0 DISCONNECT; the reason string, then user properties, are dropped to fit
    /// the client's Maximum Packet Size. On 3.1.1 (no server DISCONNECT exists) it is refused:
    /// the server closes the connection instead. For tests and tools, a 3.1.1 *client*
    /// DISCONNECT is [`DISCONNECT_V3`].
    pub fn disconnect(&self, d: &Disconnect<'_>, out: &mut BytesMut) -> Result<(), MqttError> {
        if !self.v5() {
            return Err(MqttError::Encode("3.1.1 has no server DISCONNECT"));
        }
        self.reason_packet(
            PacketType::Disconnect,
            d.reason,
            &d.properties,
            properties::DISCONNECT,
            out,
        )
    }

    /// Appends a 5.0 AUTH.
    pub fn auth(&self, a: &Auth<'_>, out: &mut BytesMut) -> Result<(), MqttError> {
        if !self.v5() {
            return Err(MqttError::Encode("AUTH is 5.0 only"));
        }
        self.reason_packet(PacketType::Auth, a.reason, &a.properties, properties::AUTH, out)
    }
}

/// A whole 3.1.1 DISCONNECT (client → server).
pub const DISCONNECT_V3: [u8; 2] = [0xe0, 0x00];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::mqtt::packet::{Decoder, Packet};

    #[test]
    fn disconnect_vectors() {
        let v3 = Decoder::new(ProtocolVersion::V311, 1 << 20);
        let v5 = Decoder::new(ProtocolVersion::V5, 1 << 20);
        let Some((Packet::Disconnect(d), 2)) = v3.decode(&DISCONNECT_V3).unwrap() else { panic!() };
        assert_eq!(d.reason, ReasonCode::Success);
        assert!(matches!(v3.decode(&[0xe0, 0x01, 0x00]), Err(MqttError::Malformed(_))));
        assert!(matches!(v5.decode(&[0xe0, 0x00]), Ok(Some((Packet::Disconnect(_), 2)))));
        let Some((Packet::Disconnect(d), 3)) = v5.decode(&[0xe0, 0x01, 0x04]).unwrap() else {
            panic!()
        };
        assert_eq!(d.reason, ReasonCode::DisconnectWithWill);
        // A server-only reason from a client; session expiry 0x11 with its value.
        assert!(matches!(v5.decode(&[0xe0, 0x01, 0x8b]), Err(MqttError::Malformed(_))));
        let b = [0xe0, 0x07, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x0a];
        let Some((Packet::Disconnect(d), 9)) = v5.decode(&b).unwrap() else { panic!() };
        assert_eq!(d.properties.session_expiry_interval, Some(10));

        let enc = Encoder::new(ProtocolVersion::V5);
        let mut out = BytesMut::new();
        let d = Disconnect {
            reason: ReasonCode::SessionTakenOver,
            properties: Properties { reason_string: Some("dup"), ..Properties::default() },
        };
        enc.disconnect(&d, &mut out).unwrap();
        assert_eq!(&out[..], &[0xe0, 0x08, 0x8e, 0x06, 0x1f, 0x00, 0x03, b'd', b'u', b'p']);
        out.clear();
        enc.with_max_packet_size(5).disconnect(&d, &mut out).unwrap();
        assert_eq!(&out[..], &[0xe0, 0x01, 0x8e]);
        out.clear();
        assert!(Encoder::new(ProtocolVersion::V311).disconnect(&d, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn auth_vectors() {
        let v3 = Decoder::new(ProtocolVersion::V311, 1 << 20);
        let v5 = Decoder::new(ProtocolVersion::V5, 1 << 20);
        assert!(matches!(v3.decode(&[0xf0, 0x00]), Err(MqttError::Malformed(_))));
        let b = [0xf0, 0x08, 0x18, 0x06, 0x15, 0x00, 0x03, b'a', b'b', b'c'];
        let Some((Packet::Auth(a), 10)) = v5.decode(&b).unwrap() else { panic!() };
        assert_eq!(
            (a.reason, a.properties.authentication_method),
            (ReasonCode::ContinueAuthentication, Some("abc"))
        );
        let mut out = BytesMut::new();
        Encoder::new(ProtocolVersion::V5).auth(&a, &mut out).unwrap();
        assert_eq!(&out[..], &b);
        assert!(matches!(v5.decode(&[0xf0, 0x01, 0x87]), Err(MqttError::Malformed(_))));
    }
}

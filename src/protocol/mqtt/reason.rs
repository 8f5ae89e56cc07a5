//! Reason codes: MQTT 5.0 §2.4 (one byte in CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK,
//! UNSUBACK, DISCONNECT and AUTH) and the MQTT 3.1.1 CONNACK return codes (§3.2.2.3) and SUBACK
//! return codes (§3.9.3).
//!
//! # Invariants
//! - [`ReasonCode`] holds exactly the values of the 5.0 table; any other byte is refused by
//!   `TryFrom<u8>` (a decoder turns that into Malformed Packet).
//! - [`ConnectReturnCode::from_reason`] and [`ReasonCode::suback_v3`] are total: every v5 code
//!   has one v3 answer, so one session can answer both versions from one decision.

/// An MQTT 5.0 reason code (§2.4). `0x00` is Success, Normal disconnection and Granted QoS 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ReasonCode {
    /// 0x00 Success / Normal disconnection / Granted QoS 0.
    Success = 0x00,
    /// 0x01 Granted QoS 1 (SUBACK).
    GrantedQos1 = 0x01,
    /// 0x02 Granted QoS 2 (SUBACK).
    GrantedQos2 = 0x02,
    /// 0x04 Disconnect with Will Message (client DISCONNECT).
    DisconnectWithWill = 0x04,
    /// 0x10 No matching subscribers (PUBACK, PUBREC).
    NoMatchingSubscribers = 0x10,
    /// 0x11 No subscription existed (UNSUBACK).
    NoSubscriptionExisted = 0x11,
    /// 0x18 Continue authentication (AUTH).
    ContinueAuthentication = 0x18,
    /// 0x19 Re-authenticate (AUTH).
    ReAuthenticate = 0x19,
    /// 0x80 Unspecified error.
    UnspecifiedError = 0x80,
    /// 0x81 Malformed Packet.
    MalformedPacket = 0x81,
    /// 0x82 Protocol Error.
    ProtocolError = 0x82,
    /// 0x83 Implementation specific error.
    ImplementationSpecificError = 0x83,
    /// 0x84 Unsupported Protocol Version (CONNACK).
    UnsupportedProtocolVersion = 0x84,
    /// 0x85 Client Identifier not valid (CONNACK).
    ClientIdentifierNotValid = 0x85,
    /// 0x86 Bad User Name or Password (CONNACK).
    BadUserNameOrPassword = 0x86,
    /// 0x87 Not authorized.
    NotAuthorized = 0x87,
    /// 0x88 Server unavailable (CONNACK).
    ServerUnavailable = 0x88,
    /// 0x89 Server busy.
    ServerBusy = 0x89,
    /// 0x8A Banned (CONNACK).
    Banned = 0x8A,
    /// 0x8B Server shutting down (DISCONNECT).
    ServerShuttingDown = 0x8B,
    /// 0x8C Bad authentication method.
    BadAuthenticationMethod = 0x8C,
    /// 0x8D Keep Alive timeout (DISCONNECT).
    KeepAliveTimeout = 0x8D,
    /// 0x8E Session taken over (DISCONNECT).
    SessionTakenOver = 0x8E,
    /// 0x8F Topic Filter invalid.
    TopicFilterInvalid = 0x8F,
    /// 0x90 Topic Name invalid.
    TopicNameInvalid = 0x90,
    /// 0x91 Packet Identifier in use.
    PacketIdentifierInUse = 0x91,
    /// 0x92 Packet Identifier not found.
    PacketIdentifierNotFound = 0x92,
    /// 0x93 Receive Maximum exceeded (DISCONNECT).
    ReceiveMaximumExceeded = 0x93,
    /// 0x94 Topic Alias invalid (DISCONNECT).
    TopicAliasInvalid = 0x94,
    /// 0x95 Packet too large.
    PacketTooLarge = 0x95,
    /// 0x96 Message rate too high (DISCONNECT).
    MessageRateTooHigh = 0x96,
    /// 0x97 Quota exceeded.
    QuotaExceeded = 0x97,
    /// 0x98 Administrative action (DISCONNECT).
    AdministrativeAction = 0x98,
    /// 0x99 Payload format invalid.
    PayloadFormatInvalid = 0x99,
    /// 0x9A Retain not supported.
    RetainNotSupported = 0x9A,
    /// 0x9B QoS not supported.
    QosNotSupported = 0x9B,
    /// 0x9C Use another server.
    UseAnotherServer = 0x9C,
    /// 0x9D Server moved.
    ServerMoved = 0x9D,
    /// 0x9E Shared Subscriptions not supported.
    SharedSubscriptionsNotSupported = 0x9E,
    /// 0x9F Connection rate exceeded.
    ConnectionRateExceeded = 0x9F,
    /// 0xA0 Maximum connect time (DISCONNECT).
    MaximumConnectTime = 0xA0,
    /// 0xA1 Subscription Identifiers not supported.
    SubscriptionIdentifiersNotSupported = 0xA1,
    /// 0xA2 Wildcard Subscriptions not supported.
    WildcardSubscriptionsNotSupported = 0xA2,
}

impl TryFrom<u8> for ReasonCode {
    type Error = u8;

    fn try_from(byte: u8) -> Result<Self, u8> {
        use ReasonCode::*;
        Ok(match byte {
            0x00 => Success,
            0x01 => GrantedQos1,
            0x02 => GrantedQos2,
            0x04 => DisconnectWithWill,
            0x10 => NoMatchingSubscribers,
            0x11 => NoSubscriptionExisted,
            0x18 => ContinueAuthentication,
            0x19 => ReAuthenticate,
            0x80 => UnspecifiedError,
            0x81 => MalformedPacket,
            0x82 => ProtocolError,
            0x83 => ImplementationSpecificError,
            0x84 => UnsupportedProtocolVersion,
            0x85 => ClientIdentifierNotValid,
            0x86 => BadUserNameOrPassword,
            0x87 => NotAuthorized,
            0x88 => ServerUnavailable,
            0x89 => ServerBusy,
            0x8A => Banned,
            0x8B => ServerShuttingDown,
            0x8C => BadAuthenticationMethod,
            0x8D => KeepAliveTimeout,
            0x8E => SessionTakenOver,
            0x8F => TopicFilterInvalid,
            0x90 => TopicNameInvalid,
            0x91 => PacketIdentifierInUse,
            0x92 => PacketIdentifierNotFound,
            0x93 => ReceiveMaximumExceeded,
            0x94 => TopicAliasInvalid,
            0x95 => PacketTooLarge,
            0x96 => MessageRateTooHigh,
            0x97 => QuotaExceeded,
            0x98 => AdministrativeAction,
            0x99 => PayloadFormatInvalid,
            0x9A => RetainNotSupported,
            0x9B => QosNotSupported,
            0x9C => UseAnotherServer,
            0x9D => ServerMoved,
            0x9E => SharedSubscriptionsNotSupported,
            0x9F => ConnectionRateExceeded,
            0xA0 => MaximumConnectTime,
            0xA1 => SubscriptionIdentifiersNotSupported,
            0xA2 => WildcardSubscriptionsNotSupported,
            other => return Err(other),
        })
    }
}

impl ReasonCode {
    /// Whether this is an error (`>= 0x80`).
    #[inline]
    pub fn is_error(self) -> bool {
        self as u8 >= 0x80
    }

    /// Whether a client may send this code in PUBACK / PUBREC (§3.4.2.1).
    pub(crate) fn valid_for_puback(self) -> bool {
        use ReasonCode::*;
        matches!(
            self,
            Success
                | NoMatchingSubscribers
                | UnspecifiedError
                | ImplementationSpecificError
                | NotAuthorized
                | TopicNameInvalid
                | PacketIdentifierInUse
                | QuotaExceeded
                | PayloadFormatInvalid
        )
    }

    /// Whether this code may appear in PUBREL / PUBCOMP (§3.6.2.1, §3.7.2.1).
    pub(crate) fn valid_for_pubrel(self) -> bool {
        matches!(self, ReasonCode::Success | ReasonCode::PacketIdentifierNotFound)
    }

    /// Whether a client may send this code in DISCONNECT (§3.14.2.1: the server-only codes
    /// 0x8B..0x8E, 0x93, 0x94, 0x9C, 0x9D, 0xA0.. are refused, as are the CONNACK/SUBACK ones).
    pub(crate) fn valid_for_client_disconnect(self) -> bool {
        use ReasonCode::*;
        matches!(
            self,
            Success
                | DisconnectWithWill
                | UnspecifiedError
                | MalformedPacket
                | ProtocolError
                | ImplementationSpecificError
                | TopicNameInvalid
                | ReceiveMaximumExceeded
                | TopicAliasInvalid
                | PacketTooLarge
                | MessageRateTooHigh
                | QuotaExceeded
                | AdministrativeAction
                | PayloadFormatInvalid
        )
    }

    /// Whether this code may appear in AUTH (§3.15.2.1).
    pub(crate) fn valid_for_auth(self) -> bool {
        use ReasonCode::*;
        matches!(self, Success | ContinueAuthentication | ReAuthenticate)
    }

    /// The MQTT 3.1.1 SUBACK return code for this v5 SUBACK code: `0x00..=0x02` are the granted
    /// QoS, every error is `0x80` Failure (§3.9.3).
    #[inline]
    pub fn suback_v3(self) -> u8 {
        match self {
            ReasonCode::Success => 0x00,
            ReasonCode::GrantedQos1 => 0x01,
            ReasonCode::GrantedQos2 => 0x02,
            _ => 0x80,
        }
    }
}

/// An MQTT 3.1.1 CONNACK return code (§3.2.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ConnectReturnCode {
    /// 0 Connection accepted.
    Accepted = 0,
    /// 1 The server does not support the level of the MQTT protocol requested.
    UnacceptableProtocolVersion = 1,
    /// 2 The client identifier is correct UTF-8 but not allowed by the server.
    IdentifierRejected = 2,
    /// 3 The network connection was made but the MQTT service is unavailable.
    ServerUnavailable = 3,
    /// 4 The data in the user name or password is malformed.
    BadUserNameOrPassword = 4,
    /// 5 The client is not authorized to connect.
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The 3.1.1 return code that answers a v5 CONNACK reason code:
    /// Success → 0, 0x84 → 1, 0x85 → 2, 0x86 → 4, 0x87 / 0x8A Banned / 0x8C → 5, and every
    /// other code (server busy, quota, unavailable, ...) → 3 Server unavailable.
    pub fn from_reason(reason: ReasonCode) -> Self {
        use ReasonCode as R;
        match reason {
            R::Success => ConnectReturnCode::Accepted,
            R::UnsupportedProtocolVersion => ConnectReturnCode::UnacceptableProtocolVersion,
            R::ClientIdentifierNotValid => ConnectReturnCode::IdentifierRejected,
            R::BadUserNameOrPassword => ConnectReturnCode::BadUserNameOrPassword,
            R::NotAuthorized | R::Banned | R::BadAuthenticationMethod => {
                ConnectReturnCode::NotAuthorized
            }
            _ => ConnectReturnCode::ServerUnavailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips_or_is_refused() {
        let mut known = 0;
        for byte in 0..=u8::MAX {
            if let Ok(code) = ReasonCode::try_from(byte) {
                assert_eq!(code as u8, byte);
                assert_eq!(code.is_error(), byte >= 0x80);
                known += 1;
            }
        }
        // The 5.0 table (§2.4) has 43 distinct values.
        assert_eq!(known, 43);
        assert_eq!(ReasonCode::try_from(0x03), Err(0x03));
        assert_eq!(ReasonCode::try_from(0xA3), Err(0xA3));
    }

    #[test]
    fn v3_mappings() {
        assert_eq!(ConnectReturnCode::from_reason(ReasonCode::Success) as u8, 0);
        assert_eq!(ConnectReturnCode::from_reason(ReasonCode::UnsupportedProtocolVersion) as u8, 1);
        assert_eq!(ConnectReturnCode::from_reason(ReasonCode::ClientIdentifierNotValid) as u8, 2);
        assert_eq!(ConnectReturnCode::from_reason(ReasonCode::ServerBusy) as u8, 3);
        assert_eq!(ConnectReturnCode::from_reason(ReasonCode::BadUserNameOrPassword) as u8, 4);
        assert_eq!(ConnectReturnCode::from_reason(ReasonCode::Banned) as u8, 5);
        assert_eq!(ReasonCode::GrantedQos1.suback_v3(), 1);
        assert_eq!(ReasonCode::QuotaExceeded.suback_v3(), 0x80);
    }
}

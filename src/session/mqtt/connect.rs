//! CONNECT: who the connection is (the username names the app, the password makes it a
//! management session), its keep alive and limits, answered with CONNACK.
//!
//! Refusals, in this order, each the version's own (v5 reason code / v3.1.1 return code):
//! an authentication method (0x8C / 4), no username or an unknown app (0x86 / 4), a wrong
//! secret (0x86 / 4), a client with a will or a manager's will outside its app (0x87 / 5), a
//! clientId that cannot be one (0x85 / 2). A refused CONNECT closes the connection after its
//! CONNACK [MQTT-3.2.2-5].

use bytes::BytesMut;

use super::flight::ManagerWill;
use super::{Flags, MqttSession};
use crate::channel::{ClientId, client_id};
use crate::protocol::mqtt::{
    ConnAck, Connect, Encoder, MqttError, Properties, ProtocolVersion, ReasonCode,
};
use crate::push::topic::{self, Topic};
use crate::session::{Context, Flow};

/// What the server tells every v5 client in CONNACK: retained messages yes, wildcards,
/// subscription identifiers and shared subscriptions no. No Maximum QoS: a manager may publish
/// at QoS 2 (a client's publish is refused whatever its QoS); subscriptions are granted QoS 1
/// at most in the SUBACK.
fn server_properties(max_packet: u32) -> Properties<'static> {
    Properties {
        retain_available: Some(1),
        wildcard_subscription_available: Some(0),
        subscription_identifier_available: Some(0),
        shared_subscription_available: Some(0),
        maximum_packet_size: Some(max_packet),
        ..Properties::default()
    }
}

impl MqttSession {
    pub(super) fn on_connect(&mut self, connect: &Connect<'_>, cx: &mut Context<'_>) -> Flow {
        self.set_flag(Flags::V5, connect.version == ProtocolVersion::V5);
        let accepted = match self.admit(connect, cx) {
            Ok(accepted) => accepted,
            Err((reason, why)) => {
                tracing::debug!(conn = %cx.me, reason = reason as u8, why, "MQTT CONNECT refused");
                let properties = Properties { reason_string: Some(why), ..Properties::default() };
                let ack = ConnAck { session_present: false, reason, properties };
                self.send(cx, |enc, out| enc.connack(&ack, out));
                return Flow::Close;
            }
        };
        let max_keepalive = cx.settings.mqtt.max_keepalive_secs;
        let keepalive = match connect.keep_alive {
            0 => max_keepalive,
            asked => asked.min(max_keepalive),
        };
        self.span = (u32::from(keepalive) * 3).div_ceil(2).min(u32::from(u16::MAX)) as u16;
        self.since = cx.now.secs;
        self.set_flag(Flags::CONNECTED, true);
        self.set_flag(Flags::MANAGER, accepted.manager);
        let max_packet = u32::try_from(cx.settings.max_package_bytes).unwrap_or(u32::MAX);
        let mut properties = server_properties(max_packet);
        if keepalive != connect.keep_alive {
            properties.server_keep_alive = Some(keepalive);
        }
        let assigned = accepted.assigned.then(|| accepted.client_id.clone());
        properties.assigned_client_identifier = assigned.as_deref();
        let limits = &connect.properties;
        let expiry = (!accepted.manager).then(|| self.session_expiry(connect, cx)).flatten();
        if connect.version == ProtocolVersion::V5
            && expiry != limits.session_expiry_interval.filter(|&s| s > 0)
        {
            // The server shortened it (or keeps no session): say so (MQTT 5.0 §3.2.2.3.2).
            properties.session_expiry_interval = Some(expiry.unwrap_or(0));
        }
        self.set_flag(Flags::PERSISTENT, expiry.is_some());
        let extra_needed = !accepted.manager
            || accepted.will.is_some()
            || limits.maximum_packet_size.is_some()
            || limits.receive_maximum.is_some();
        if extra_needed {
            let extra = cx.per_core.mqtt.entry(cx.me);
            extra.max_packet = limits.maximum_packet_size;
            extra.receive_max = limits.receive_maximum;
            extra.will = accepted.will;
            extra.session_expiry = expiry;
            if !accepted.manager {
                extra.client_id = Some(ClientId::new(&accepted.client_id));
            }
            self.set_flag(Flags::EXTRA, true);
        }
        // Clean start drops a parked session; otherwise the client takes it back.
        let parked = if accepted.manager {
            None
        } else {
            let parked = cx.push.unpark(self.app, &accepted.client_id, cx.now.at);
            parked.filter(|_| !connect.clean_start)
        };
        if accepted.manager {
            cx.push.enter_manager(self.app, cx.me);
        }
        // A session taken back enters the channel before CONNACK says it is present; one that
        // cannot (the app is full) goes back where it was, and the client hears no session.
        let parked = parked.and_then(|parked| self.reenter(parked, &accepted.client_id, cx));
        let session_present = parked.is_some();
        let ack = ConnAck { session_present, reason: ReasonCode::Success, properties };
        self.send(cx, |enc, out| enc.connack(&ack, out));
        if let Some(parked) = parked {
            self.resume(parked, cx);
        }
        Flow::Continue
    }

    /// The first packet could not be decoded: a CONNECT of a protocol level not spoken here
    /// (3.1's MQIsdp, or a future one) gets the 3.1.1 CONNACK with return code 1
    /// [MQTT-3.1.2-2]; anything else is closed at once, with nothing to say to a peer that never
    /// connected.
    pub fn refuse_connect(&self, error: &MqttError, cx: &mut Context<'_>) -> Flow {
        tracing::debug!(conn = %cx.me, %error, "MQTT CONNECT undecodable");
        match error {
            MqttError::UnsupportedProtocolVersion(_) | MqttError::UnsupportedProtocolName => {
                let ack = ConnAck {
                    session_present: false,
                    reason: ReasonCode::UnsupportedProtocolVersion,
                    properties: Properties::default(),
                };
                let mut packet = BytesMut::new();
                if Encoder::new(ProtocolVersion::V311).connack(&ack, &mut packet).is_ok() {
                    self.frame_into(&packet, cx.transmit);
                }
                Flow::Close
            }
            _ => Flow::Abort,
        }
    }

    /// Decides who `connect` is, or the refusal and why.
    fn admit(
        &mut self,
        connect: &Connect<'_>,
        cx: &mut Context<'_>,
    ) -> Result<Accepted, (ReasonCode, &'static str)> {
        if connect.properties.authentication_method.is_some() {
            return Err((
                ReasonCode::BadAuthenticationMethod,
                "no authentication method is spoken",
            ));
        }
        let bad_login = ReasonCode::BadUserNameOrPassword;
        let apikey =
            connect.username.ok_or((bad_login, "the username must be the app's apikey"))?;
        let app = cx.push.lookup(apikey).map_err(|_| (bad_login, "no app has this apikey"))?;
        self.app = app;
        // With signed clientIds (the app's `client_key`), a client's password is its token: a
        // password shaped like one is checked as one, below, once the clientId is known.
        let password = connect.password.map(|p| std::str::from_utf8(p).ok());
        let token = match password {
            Some(Some(text)) if cx.push.requires_client_tokens(app) && looks_like_token(text) => {
                Some(text)
            }
            _ => None,
        };
        let manager = match password {
            None => false,
            Some(_) if token.is_some() => false,
            Some(secret) => {
                cx.push
                    .authenticate(apikey, secret, cx.now.at)
                    .map_err(|_| (bad_login, "the password is not the app's secret"))?;
                true
            }
        };
        let will = match (&connect.will, manager) {
            (None, _) => None,
            (Some(_), false) => {
                return Err((ReasonCode::NotAuthorized, "clients may not leave a will"));
            }
            (Some(will), true) => {
                let client_id = match topic::parse(will.topic) {
                    Some(Topic::Channel { apikey: a }) if a == apikey => None,
                    Some(Topic::Client { apikey: a, client_id }) if a == apikey => {
                        Some(client_id.to_owned())
                    }
                    _ => {
                        return Err((ReasonCode::NotAuthorized, "a will goes to the app's topics"));
                    }
                };
                let msg = super::publish::payload_msg(will.payload)
                    .ok_or((ReasonCode::PayloadFormatInvalid, "a will's payload is UTF-8"))?;
                Some(Box::new(ManagerWill { client_id, msg, retain: will.retain }))
            }
        };
        let (client_id, assigned) = match connect.client_id {
            "" if connect.clean_start || connect.version == ProtocolVersion::V5 => {
                (assigned_id(cx), true)
            }
            "" => {
                return Err((
                    ReasonCode::ClientIdentifierNotValid,
                    "an empty client identifier needs a clean session",
                ));
            }
            // Its own topic push/{apikey}/{clientId} must be a topic: no `/`, `+` or `#` in it.
            id => match client_id::fault(id).is_some() || id.contains(['/', '+', '#']) {
                true => {
                    return Err((
                        ReasonCode::ClientIdentifierNotValid,
                        "a client identifier is 1 to 256 bytes, without control characters, \
                         '/', '+' or '#'",
                    ));
                }
                false => (id.to_owned(), false),
            },
        };
        if !manager {
            cx.push.check_client_token(app, &client_id, token, cx.now.unix).map_err(|_| {
                (
                    bad_login,
                    "this app takes signed clientIds: the password must be the clientId's token",
                )
            })?;
        }
        // The same clientId online elsewhere: it is taken over [MQTT-3.1.4-2] (kicked with
        // "replaced", v5 DISCONNECT 0x8E), or refused with `duplicate = "refuse"`.
        if !manager && !cx.push.take_over(app, &client_id, cx.me, cx.outlet) {
            return Err((
                ReasonCode::ClientIdentifierNotValid,
                "duplicate log in: the clientId is online",
            ));
        }
        Ok(Accepted { manager, client_id, assigned, will })
    }
}

/// Who a CONNECT turned out to be.
struct Accepted {
    manager: bool,
    client_id: String,
    /// The server made the clientId up (the client sent an empty one).
    assigned: bool,
    will: Option<Box<ManagerWill>>,
}

/// `{expiry}.{signature}`, as `push::identity` makes them: digits, a dot, base64url.
fn looks_like_token(text: &str) -> bool {
    text.split_once('.').is_some_and(|(expiry, signature)| {
        !expiry.is_empty()
            && expiry.bytes().all(|b| b.is_ascii_digit())
            && !signature.is_empty()
            && signature.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// A clientId no other connection of this server holds now: the connection's own id.
fn assigned_id(cx: &Context<'_>) -> String {
    let me = cx.me;
    format!("mqtt-{:x}-{:x}-{:x}", me.core(), me.index(), me.generation())
}

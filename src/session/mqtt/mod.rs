//! The MQTT session (3.1.1 and 5.0), sans-IO: a phone or a backend on MQTT in the push
//! platform's channels. The mapping (README "MQTT"):
//!
//! ```text
//! CONNECT  username = apikey, client identifier = clientId; no password = a client,
//!          the app's secret = a management session
//! SUBSCRIBE   push/{apikey}             a client enters the channel (granted QoS <= 1)
//!             push/{apikey}/{clientId}  its own topic: granted, personal pushes arrive there
//!             anything else             refused in the SUBACK (0x87 / 0x80)
//! PUBLISH  from a manager: push/{apikey} = pushAll (RETAIN keeps it for new subscribers),
//!          push/{apikey}/{clientId} = a personal push; from a client: refused
//! ```
//!
//! ```text
//! Opening --0x10 CONNECT--> Connected(Client | Manager)    (raw TCP: the CONNECT is the sniff)
//! WebSocket upgrade "mqtt" --> AwaitConnect --CONNECT--> Connected(..)
//! Connected(Client) --SUBSCRIBE push/{apikey}--> member of the channel
//! ```
//!
//! # Invariants
//! - **Inline and small**: 13 bytes, packed into the connection's slot (see `Session`'s size
//!   test); an idle session at QoS 0 holds nothing else. What some sessions need beyond that (a
//!   QoS 1 in-flight window, a v5 client's limits, a manager's will) lives in the core's
//!   [`MqttConns`], only while it is not empty.
//! - `since` is the accept time until CONNECT, then the time of the last packet; the deadline
//!   is `since` + 1.5 × keep alive (`span`), or the handshake timeout before CONNECT.
//! - **Every refusal is the version's own**: CONNACK return codes on 3.1.1, reason codes (with a
//!   reason string where the packet allows one) on 5.0; a packet that breaks the protocol ends
//!   the connection (v5: DISCONNECT with the fault's reason code first).
//! - Replies go into the context's `transmit`, each packet framed for the transport.

mod connect;
mod flight;
mod persist;
mod publish;
mod subscribe;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use bytes::BytesMut;

use super::{Context, Flow, Kick};
use crate::channel::PresenceKey;
pub use crate::config::MqttConfig;
use crate::ids::{AppId, ConnId, Frontend, Transport, WireForm};
use crate::protocol::mqtt::{
    Decoder, Disconnect, Encoder, MqttError, Packet, Properties, ProtocolVersion, ReasonCode,
};
use crate::protocol::websocket::frame::{self as ws, OpCode};
use crate::push::{Outlet, PushService};
use crate::stats::KickReason;
pub use flight::{MqttConns, Staged};

/// What the session is, one bit each (see [`MqttSession`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Flags(u8);

impl Flags {
    const V5: u8 = 1;
    const WEBSOCKET: u8 = 1 << 1;
    /// CONNECT has been accepted.
    const CONNECTED: u8 = 1 << 2;
    /// Connected with the app's secret.
    const MANAGER: u8 = 1 << 3;
    /// Subscribed to the channel topic: a member of the channel.
    const MEMBER: u8 = 1 << 4;
    /// Deliveries at QoS 1 (else 0).
    const QOS1: u8 = 1 << 5;
    /// The core's [`MqttConns`] may hold something for this connection (limits, flight, will).
    const EXTRA: u8 = 1 << 6;
    /// The session outlives the connection (3.1.1 clean session 0, 5.0 session expiry > 0).
    const PERSISTENT: u8 = 1 << 7;

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.0 |= bit;
        } else {
            self.0 &= !bit;
        }
    }
}

/// One MQTT connection's session. See the module doc. Packed: it lives in the connection's
/// slot beside the other frontends' sessions, and every field is read by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed)]
pub struct MqttSession {
    since: u32,
    /// Finds this client's clientId in its channel's presence (members only).
    key: PresenceKey,
    /// The app named at CONNECT (the username).
    app: AppId,
    /// 1.5 × the keep alive in force, seconds; 0 until CONNECT.
    span: u16,
    flags: Flags,
}

impl MqttSession {
    /// A session on a WebSocket that chose the `mqtt` subprotocol, accepted at `since`; its
    /// CONNECT is still to come.
    pub fn awaiting_connect(since: u32) -> MqttSession {
        MqttSession {
            since,
            key: PresenceKey(0),
            app: AppId::NONE,
            span: 0,
            flags: Flags(Flags::WEBSOCKET),
        }
    }

    /// A session on raw TCP whose first byte was a CONNECT's, accepted at `since`.
    pub fn on_tcp(since: u32) -> MqttSession {
        MqttSession { flags: Flags(0), ..MqttSession::awaiting_connect(since) }
    }

    fn flags(&self) -> Flags {
        self.flags
    }

    fn set_flag(&mut self, bit: u8, on: bool) {
        let mut flags = self.flags;
        flags.set(bit, on);
        self.flags = flags;
    }

    pub fn transport(&self) -> Transport {
        if self.flags().has(Flags::WEBSOCKET) { Transport::WebSocket } else { Transport::Tcp }
    }

    pub fn version(&self) -> ProtocolVersion {
        if self.flags().has(Flags::V5) { ProtocolVersion::V5 } else { ProtocolVersion::V311 }
    }

    pub fn form(&self) -> WireForm {
        let frontend = match self.version() {
            ProtocolVersion::V311 => Frontend::Mqtt311,
            ProtocolVersion::V5 => Frontend::Mqtt5,
        };
        WireForm::new(frontend, self.transport())
    }

    /// CONNECT was accepted: a close must say why.
    pub fn is_working(&self) -> bool {
        self.flags().has(Flags::CONNECTED)
    }

    fn is_manager(&self) -> bool {
        self.flags().has(Flags::MANAGER)
    }

    /// The app whose channel this session is a member of (subscribed to its topic).
    pub fn member_of(&self) -> Option<AppId> {
        self.flags().has(Flags::MEMBER).then_some(self.app)
    }

    /// The session outlives its connection.
    pub fn is_persistent(&self) -> bool {
        self.flags().has(Flags::PERSISTENT)
    }

    /// Deliveries to this session go at QoS 1.
    pub fn at_qos1(&self) -> bool {
        self.flags().has(Flags::QOS1)
    }

    /// The second after which, without a packet, the session expires.
    pub fn deadline(&self, settings: &super::SessionSettings) -> u32 {
        let span =
            if self.is_working() { u32::from(self.span) } else { settings.handshake_timeout_secs };
        self.since.saturating_add(span)
    }

    /// The deadline passed: a connected session is closed for its keep alive (v5: DISCONNECT
    /// 0x8D), one still without CONNECT simply closed.
    pub fn expire(&self) -> Flow {
        if self.is_working() {
            Flow::Kick(Kick::new(KickReason::HeartbeatTimeout))
        } else {
            Flow::Abort
        }
    }

    /// The decoder for this connection's next packet (before CONNECT, any version: CONNECT
    /// carries its own).
    pub fn decoder(&self, max_packet: usize) -> Decoder {
        Decoder::new(self.version(), u32::try_from(max_packet).unwrap_or(u32::MAX))
    }

    fn encoder(&self) -> Encoder {
        Encoder::new(self.version())
    }

    /// Handles one packet from the client.
    pub fn handle_packet(&mut self, packet: Packet<'_>, cx: &mut Context<'_>) -> Flow {
        if self.is_working() {
            self.since = cx.now.secs;
        }
        match packet {
            Packet::Connect(connect) if !self.is_working() => self.on_connect(&connect, cx),
            _ if !self.is_working() => {
                // The first packet must be CONNECT [MQTT-3.1.0-1]: close, nothing to say.
                Flow::Abort
            }
            Packet::Connect(_) => self.fault(&MqttError::Protocol("a second CONNECT"), cx),
            Packet::Subscribe(subscribe) => self.on_subscribe(&subscribe, cx),
            Packet::Unsubscribe(unsubscribe) => self.on_unsubscribe(&unsubscribe, cx),
            Packet::Publish(publish) => self.on_publish(&publish, cx),
            Packet::PubAck(ack) => self.on_puback(ack.packet_id, cx),
            Packet::PubRel(rel) => {
                // The second half of a manager's QoS 2 PUBLISH, already pushed at PUBREC.
                self.send(cx, |enc, out| {
                    enc.pub_response(
                        crate::protocol::mqtt::PacketType::PubComp,
                        &crate::protocol::mqtt::PubResponse::success(rel.packet_id),
                        out,
                    )
                });
                Flow::Continue
            }
            // The server never sends QoS 2, so nothing it sent is received or completed.
            Packet::PubRec(_) | Packet::PubComp(_) => {
                self.fault(&MqttError::Protocol("PUBREC/PUBCOMP for no QoS 2 delivery"), cx)
            }
            Packet::PingReq => {
                self.send(cx, |enc, out| {
                    enc.pingresp(out);
                    Ok(())
                });
                Flow::Continue
            }
            Packet::Disconnect(disconnect) => {
                // A normal disconnection: a manager's will is discarded [MQTT-3.14.4-3] (not with
                // v5 reason 0x04, Disconnect with Will Message); a v5
                // client may change its session's expiry (not from 0 [MQTT-3.14.2-2]).
                let expiry = disconnect.properties.session_expiry_interval;
                if expiry.is_some_and(|secs| secs > 0) && !self.is_persistent() {
                    let error = MqttError::Protocol("a session expiry set at DISCONNECT after 0");
                    return self.fault(&error, cx);
                }
                let with_will = disconnect.reason == ReasonCode::DisconnectWithWill;
                let most = cx.settings.mqtt.session_expiry_secs;
                cx.per_core.mqtt.on_disconnect(cx.me, with_will, expiry, most);
                Flow::Close
            }
            Packet::Auth(_) => {
                self.fault(&MqttError::Protocol("AUTH without an authentication method"), cx)
            }
        }
    }

    /// A packet broke the protocol: v5 hears why (DISCONNECT with the fault's reason code),
    /// 3.1.1 is closed [MQTT-4.8.0-1].
    pub fn fault(&self, error: &MqttError, cx: &mut Context<'_>) -> Flow {
        tracing::debug!(conn = %cx.me, %error, "MQTT protocol error");
        let reason = match error {
            MqttError::PacketTooLarge { .. } => KickReason::PackageTooLarge,
            _ => KickReason::ProtocolError,
        };
        let text = match error {
            MqttError::PacketTooLarge { .. } => Cow::Borrowed(reason.as_str()),
            _ => Cow::Owned(format!("protocol error: {error}")),
        };
        Flow::Kick(Kick { reason, text, ..Kick::new(reason) }.with_mqtt(error.reason_code()))
    }

    /// Appends what the peer gets before a server close: on 5.0 a DISCONNECT with the kick's
    /// reason code and text; then (WebSocket) a close frame with the kick's close code.
    pub fn encode_kick(&self, kick: &Kick, out: &mut BytesMut) {
        if self.is_working() && self.version() == ProtocolVersion::V5 {
            let reason = kick.mqtt.unwrap_or_else(|| disconnect_reason(kick.reason));
            let properties =
                Properties { reason_string: Some(&kick.text), ..Properties::default() };
            let mut packet = BytesMut::new();
            let disconnect = Disconnect { reason, properties };
            if self.encoder().disconnect(&disconnect, &mut packet).is_ok() {
                self.frame_into(&packet, out);
            }
        }
        if self.transport() == Transport::WebSocket {
            ws::encode_close(kick.close_code, &kick.text, out);
        }
    }

    /// Leaves what the session entered; returns the app whose member list the connection was
    /// on. A manager's will is published when it did not disconnect normally.
    pub fn leave(
        &mut self,
        me: ConnId,
        push: &PushService,
        outlet: &mut dyn Outlet,
        per_core: &mut super::PerCore,
        now: std::time::Instant,
    ) -> Option<AppId> {
        let mut extra = per_core.mqtt.remove(me);
        if let Some(will) = extra.as_mut().and_then(|e| e.will.take()) {
            will.publish(self.app, push, now, outlet);
        }
        if self.is_manager() && self.is_working() {
            push.leave_manager(self.app, me);
            // Left once: a second leave (the close after a kick) finds nothing to leave.
            self.set_flag(Flags::MANAGER, false);
        }
        let member = self.member_of();
        if let Some(app) = member {
            self.park(app, me, extra.as_mut(), push, now);
            push.leave_client(app, me, self.form(), self.key, outlet);
            self.set_flag(Flags::MEMBER, false);
        }
        member
    }

    /// Encodes a packet with this connection's encoder and appends it to `transmit`, framed
    /// for the transport. An encoding failure (nothing valid to send) is logged and dropped.
    fn send(
        &self,
        cx: &mut Context<'_>,
        encode: impl FnOnce(&Encoder, &mut BytesMut) -> Result<(), MqttError>,
    ) {
        let mut packet = BytesMut::new();
        // A v5 client's Maximum Packet Size: the encoders drop reason strings to fit it.
        let mut encoder = self.encoder();
        if self.flags().has(Flags::EXTRA) {
            if let Some(max) = cx.per_core.mqtt.get(cx.me).and_then(|e| e.max_packet) {
                encoder = encoder.with_max_packet_size(max);
            }
        }
        match encode(&encoder, &mut packet) {
            Ok(()) => self.frame_into(&packet, cx.transmit),
            Err(e) => tracing::warn!(conn = %cx.me, error = %e, "MQTT packet not encodable"),
        }
    }

    /// Appends `packet` to `out` as the transport carries it.
    fn frame_into(&self, packet: &[u8], out: &mut BytesMut) {
        if self.transport() == Transport::WebSocket {
            ws::encode_frame(OpCode::Binary, packet, out);
        } else {
            out.extend_from_slice(packet);
        }
    }
}

/// The v5 DISCONNECT reason code of a kick that did not name one.
fn disconnect_reason(reason: KickReason) -> ReasonCode {
    match reason {
        KickReason::HeartbeatTimeout => ReasonCode::KeepAliveTimeout,
        KickReason::Replaced => ReasonCode::SessionTakenOver,
        KickReason::Slow => ReasonCode::QuotaExceeded,
        KickReason::ProtocolError | KickReason::Attack => ReasonCode::ProtocolError,
        KickReason::PackageTooLarge => ReasonCode::PacketTooLarge,
        KickReason::Shutdown => ReasonCode::ServerShuttingDown,
        KickReason::Disconnected => ReasonCode::AdministrativeAction,
    }
}

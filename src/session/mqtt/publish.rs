//! PUBLISH from the client, and PUBACK of the server's deliveries.
//!
//! A management session's PUBLISH to `push/{apikey}` is a pushAll, to `push/{apikey}/{clientId}`
//! a personal push, through the push service like every other edge's; its answer is the
//! acknowledgement its QoS asks for, with the push service's verdict as the v5 reason code.
//! A client's PUBLISH is refused: clients receive, they do not publish.

use serde_json::Value;

use super::MqttSession;
use crate::ids::Edge;
use crate::protocol::mqtt::{PacketType, Properties, PubResponse, Publish, QoS, ReasonCode};
use crate::push::Refusal;
use crate::push::topic::{self, Topic};
use crate::session::{Context, Flow, Kick};
use crate::stats::KickReason;

/// A PUBLISH payload as a push's `msg`: JSON if it is JSON, else its UTF-8 text as a string;
/// `None` if it is not UTF-8.
pub fn payload_msg(payload: &[u8]) -> Option<Value> {
    match serde_json::from_slice(payload) {
        Ok(value) => Some(value),
        Err(_) => std::str::from_utf8(payload).ok().map(|text| Value::String(text.to_owned())),
    }
}

/// The v5 reason code for a push service refusal.
fn refusal_reason(refusal: &Refusal) -> ReasonCode {
    match refusal.code {
        404 => ReasonCode::NoMatchingSubscribers,
        429 => ReasonCode::QuotaExceeded,
        400 => ReasonCode::PayloadFormatInvalid,
        503 => ReasonCode::ServerUnavailable,
        401 | 403 => ReasonCode::NotAuthorized,
        _ => ReasonCode::ImplementationSpecificError,
    }
}

impl MqttSession {
    pub(super) fn on_publish(&mut self, publish: &Publish<'_>, cx: &mut Context<'_>) -> Flow {
        if publish.properties.topic_alias.is_some() {
            // CONNACK left Topic Alias Maximum at 0 [MQTT-3.3.2-8].
            let kick = Kick::mqtt(
                KickReason::ProtocolError,
                ReasonCode::TopicAliasInvalid,
                "topic aliases are not accepted",
            );
            return Flow::Kick(kick);
        }
        if !self.is_manager() {
            return self.refuse_client_publish(publish, cx);
        }
        let (reason, why) = self.push_published(publish, cx);
        if reason != ReasonCode::Success {
            tracing::debug!(conn = %cx.me, reason = reason as u8, why, "MQTT PUBLISH not pushed");
        }
        let ack = PubResponse {
            packet_id: publish.packet_id,
            reason,
            properties: Properties { reason_string: why, ..Properties::default() },
        };
        match publish.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => {
                self.send(cx, |enc, out| enc.pub_response(PacketType::PubAck, &ack, out))
            }
            QoS::ExactlyOnce => {
                self.send(cx, |enc, out| enc.pub_response(PacketType::PubRec, &ack, out))
            }
        }
        Flow::Continue
    }

    /// Pushes what a manager published; the reason code and text for its acknowledgement.
    fn push_published(
        &self,
        publish: &Publish<'_>,
        cx: &mut Context<'_>,
    ) -> (ReasonCode, Option<&'static str>) {
        let app = self.app;
        let target = match topic::parse(publish.topic) {
            Some(target) if target.apikey() == cx.push.apikey(app) => target,
            _ => {
                return (
                    ReasonCode::NotAuthorized,
                    Some("publish to push/{apikey} or push/{apikey}/{clientId}"),
                );
            }
        };
        if publish.retain && publish.payload.is_empty() {
            // An empty retained message clears the retained one and is not pushed.
            if let Topic::Channel { .. } = target {
                cx.push.retain(app, None);
            }
            return (ReasonCode::Success, None);
        }
        let Some(msg) = payload_msg(publish.payload) else {
            return (
                ReasonCode::PayloadFormatInvalid,
                Some("the payload must be UTF-8 (JSON or text)"),
            );
        };
        let now = cx.now.at;
        let sent = match target {
            Topic::Channel { .. } => cx.push.push_all(Edge::Socket, app, &msg, now, cx.outlet),
            Topic::Client { client_id, .. } => {
                cx.push.push_to(Edge::Socket, app, client_id, &msg, now, cx.outlet)
            }
        };
        match sent {
            Ok(recipients) => {
                if publish.retain && matches!(target, Topic::Channel { .. }) {
                    cx.push.retain(app, Some(&msg));
                }
                if recipients == 0 {
                    (ReasonCode::NoMatchingSubscribers, None)
                } else {
                    (ReasonCode::Success, None)
                }
            }
            Err(refusal) => (refusal_reason(&refusal), Some(refusal_text(refusal.code))),
        }
    }

    /// A client published: v5 QoS 1 and 2 get 0x87 in their acknowledgement; anything else
    /// ends the connection (v5: DISCONNECT 0x87; 3.1.1 cannot say why [MQTT-3.3.5-2]).
    fn refuse_client_publish(&self, publish: &Publish<'_>, cx: &mut Context<'_>) -> Flow {
        const WHY: &str = "not authorized: clients do not publish";
        let ack = PubResponse {
            packet_id: publish.packet_id,
            reason: ReasonCode::NotAuthorized,
            properties: Properties { reason_string: Some(WHY), ..Properties::default() },
        };
        match (self.version(), publish.qos) {
            (crate::protocol::mqtt::ProtocolVersion::V5, QoS::AtLeastOnce) => {
                self.send(cx, |enc, out| enc.pub_response(PacketType::PubAck, &ack, out));
                Flow::Continue
            }
            (crate::protocol::mqtt::ProtocolVersion::V5, QoS::ExactlyOnce) => {
                self.send(cx, |enc, out| enc.pub_response(PacketType::PubRec, &ack, out));
                Flow::Continue
            }
            _ => Flow::Kick(Kick::mqtt(KickReason::ProtocolError, ReasonCode::NotAuthorized, WHY)),
        }
    }

    /// The client acknowledged a QoS 1 delivery: the window moves, and what waited behind it
    /// goes out.
    pub(super) fn on_puback(&mut self, packet_id: u16, cx: &mut Context<'_>) -> Flow {
        let me = cx.me;
        let conns = &mut cx.per_core.mqtt;
        let acked = conns.get(me).is_some() && conns.entry(me).flight.ack(packet_id);
        if acked {
            let mut released = bytes::BytesMut::new();
            conns.release(self, me, &cx.settings.mqtt, &mut released);
            cx.transmit.extend_from_slice(&released);
        }
        conns.tidy(me);
        // A PUBACK for an id not in flight is ignored, as brokers do (a late duplicate).
        Flow::Continue
    }
}

/// The reason string of a refused push, by the push service's code.
fn refusal_text(code: u16) -> &'static str {
    match code {
        404 => "no such client is online",
        429 => "the app's push rate is exceeded",
        400 => "the push cannot be encoded",
        503 => "the server is shutting down",
        _ => "the push was refused",
    }
}

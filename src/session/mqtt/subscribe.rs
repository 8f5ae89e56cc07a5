//! SUBSCRIBE and UNSUBSCRIBE: entering and leaving the app's channel.
//!
//! Only two filters mean anything: the channel topic `push/{apikey}` (a client enters the
//! channel, granted QoS 0 or 1; QoS 2 is granted as 1) and the client's own
//! `push/{apikey}/{clientId}` (granted; its personal pushes arrive there). Every other filter is
//! refused in the SUBACK: wildcards 0xA2, shared subscriptions 0x9E, the rest 0x87 (3.1.1:
//! 0x80). A new member gets the app's retained message first, right after the SUBACK.

use super::{Flags, MqttSession};
use crate::channel::ClientId;
use crate::protocol::mqtt::{
    Properties, Publish, QoS, ReasonCode, RetainHandling, Subscribe, SubscriptionOptions,
    Unsubscribe,
};
use crate::push::ClientJoin;
use crate::push::frame::{MqttPush, Push};
use crate::push::topic::{self, Topic};
use crate::session::{Context, Flow, Kick};
use crate::stats::KickReason;

/// The reason string of a SUBACK that refused a filter.
const ONLY_OURS: &str = "only push/{apikey} and push/{apikey}/{clientId} can be subscribed";

impl MqttSession {
    pub(super) fn on_subscribe(&mut self, subscribe: &Subscribe<'_>, cx: &mut Context<'_>) -> Flow {
        if subscribe.properties.subscription_identifier.is_some() {
            // CONNACK said Subscription Identifier Available 0 (MQTT 5.0 §3.2.2.3.12).
            return Flow::Kick(Kick::mqtt(
                KickReason::ProtocolError,
                ReasonCode::SubscriptionIdentifiersNotSupported,
                "subscription identifiers are not supported",
            ));
        }
        let mut codes = Vec::with_capacity(subscribe.filters.iter().count());
        let mut why = None;
        let mut retained = false;
        for (filter, options) in subscribe.filters.iter() {
            let was_member = self.member_of().is_some();
            let (code, reason) = self.subscribe_one(filter, options, cx);
            // The retained message after every SUBSCRIBE of the channel [MQTT-3.8.4-3], as v5's
            // Retain Handling asks (0: always, 1: for a new subscription, 2: never).
            let channel = Some(Topic::Channel { apikey: cx.push.apikey(self.app) });
            let entered = !code.is_error() && topic::parse(filter) == channel;
            retained |= entered
                && match options.retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendIfNew => !was_member,
                    RetainHandling::DoNotSend => false,
                };
            why = why.or(reason);
            codes.push(code);
        }
        let properties = Properties { reason_string: why, ..Properties::default() };
        self.send(cx, |enc, out| enc.suback(subscribe.packet_id, &properties, &codes, out));
        if retained && self.member_of().is_some() {
            self.send_retained(cx);
        }
        Flow::Continue
    }

    /// One filter of a SUBSCRIBE: its SUBACK code, and why when refused.
    fn subscribe_one(
        &mut self,
        filter: &str,
        options: SubscriptionOptions,
        cx: &mut Context<'_>,
    ) -> (ReasonCode, Option<&'static str>) {
        let granted = match options.qos {
            QoS::AtMostOnce => ReasonCode::Success,
            QoS::AtLeastOnce | QoS::ExactlyOnce => ReasonCode::GrantedQos1,
        };
        if filter.starts_with("$share/") {
            return (ReasonCode::SharedSubscriptionsNotSupported, Some(ONLY_OURS));
        }
        if filter.contains(['+', '#']) {
            return (ReasonCode::WildcardSubscriptionsNotSupported, Some(ONLY_OURS));
        }
        if self.is_manager() {
            return (
                ReasonCode::NotAuthorized,
                Some("management sessions publish, they do not subscribe"),
            );
        }
        let apikey = cx.push.apikey(self.app);
        match topic::parse(filter) {
            Some(Topic::Channel { apikey: a }) if a == apikey => {
                if self.member_of().is_none() {
                    if let Err(refused) = self.enter(cx) {
                        return refused;
                    }
                }
                self.set_flag(Flags::QOS1, granted == ReasonCode::GrantedQos1);
                (granted, None)
            }
            Some(Topic::Client { apikey: a, client_id })
                if a == apikey && self.client_id(cx).is_some_and(|id| id.as_str() == client_id) =>
            {
                (granted, None)
            }
            _ => (ReasonCode::NotAuthorized, Some(ONLY_OURS)),
        }
    }

    /// Enters the app's channel with the clientId kept since CONNECT.
    pub(super) fn enter(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Result<(), (ReasonCode, Option<&'static str>)> {
        let me = cx.me;
        let Some(client_id) = cx.per_core.mqtt.get(me).and_then(|e| e.client_id.clone()) else {
            return Err((
                ReasonCode::UnspecifiedError,
                Some("the session lost its client identifier"),
            ));
        };
        let joined = cx.push.enter_client(
            self.app,
            me,
            self.form(),
            client_id.as_str(),
            cx.now.at,
            cx.outlet,
        );
        match joined {
            Ok(ClientJoin::Joined(key)) => {
                // A session the clientId parked while this connection was opening (its older
                // connection left after the takeover) is stale now: this one holds the clientId.
                let _ = cx.push.unpark(self.app, client_id.as_str(), cx.now.at);
                self.key = key;
                self.set_flag(Flags::MEMBER, true);
                cx.per_core.mqtt.entry(me).client_id = None;
                cx.per_core.mqtt.tidy(me);
                Ok(())
            }
            Ok(ClientJoin::Duplicate) => {
                Err((ReasonCode::NotAuthorized, Some("duplicate log in: the clientId is online")))
            }
            Err(refusal) if refusal.code == 429 => {
                Err((ReasonCode::QuotaExceeded, Some("flapping: this clientId joined too often")))
            }
            Err(_) => Err((ReasonCode::QuotaExceeded, Some("the app's client limit is reached"))),
        }
    }

    /// This client's clientId: presence holds it while a member, the core's extras before.
    fn client_id(&self, cx: &Context<'_>) -> Option<ClientId> {
        match self.member_of() {
            Some(app) => cx.push.client_id_of(app, self.key, cx.me),
            None => cx.per_core.mqtt.get(cx.me).and_then(|e| e.client_id.clone()),
        }
    }

    /// The app's retained message, with RETAIN set (behind the deliveries waiting for the
    /// in-flight window, without RETAIN, when the window is full).
    fn send_retained(&self, cx: &mut Context<'_>) {
        let Some(payload) = cx.push.retained(self.app) else { return };
        let topic = topic::channel(cx.push.apikey(self.app));
        if self.at_qos1() && !cx.per_core.mqtt.has_room(cx.me, &cx.settings.mqtt) {
            let push = MqttPush { topic: topic.as_str().into(), payload };
            let form = crate::ids::Forms::one(self.form());
            if let Ok(frame) = cx.push.encoder().encode(&Push::mqtt_only(push), form) {
                cx.per_core.mqtt.entry(cx.me).flight.waiting.push_back(frame);
            }
            return;
        }
        let (qos, packet_id) = if self.at_qos1() {
            let flight = &mut cx.per_core.mqtt.entry(cx.me).flight;
            let id = flight.take_id();
            if self.is_persistent() {
                let kept = MqttPush { topic: topic.as_str().into(), payload: payload.clone() };
                flight.keep(kept);
            }
            (QoS::AtLeastOnce, id)
        } else {
            (QoS::AtMostOnce, 0)
        };
        let publish = Publish {
            dup: false,
            qos,
            retain: true,
            topic: &topic,
            packet_id,
            properties: Properties::default(),
            payload: &payload,
        };
        self.send(cx, |enc, out| enc.publish(&publish, out));
    }

    pub(super) fn on_unsubscribe(
        &mut self,
        unsubscribe: &Unsubscribe<'_>,
        cx: &mut Context<'_>,
    ) -> Flow {
        let mut codes = Vec::with_capacity(unsubscribe.filters.iter().count());
        for (filter, ()) in unsubscribe.filters.iter() {
            let apikey = cx.push.apikey(self.app);
            let code = match topic::parse(filter) {
                Some(Topic::Channel { apikey: a }) if a == apikey && self.member_of().is_some() => {
                    self.leave_channel(cx);
                    ReasonCode::Success
                }
                Some(Topic::Client { apikey: a, client_id })
                    if a == apikey
                        && self.client_id(cx).is_some_and(|id| id.as_str() == client_id) =>
                {
                    ReasonCode::Success
                }
                _ => ReasonCode::NoSubscriptionExisted,
            };
            codes.push(code);
        }
        let properties = Properties::default();
        self.send(cx, |enc, out| enc.unsuback(unsubscribe.packet_id, &properties, &codes, out));
        Flow::Continue
    }

    /// Leaves the channel but stays connected: the clientId goes back to the core's extras, so
    /// that a later SUBSCRIBE enters again.
    fn leave_channel(&mut self, cx: &mut Context<'_>) {
        let Some(app) = self.member_of() else { return };
        let client_id = cx.push.client_id_of(app, self.key, cx.me);
        cx.push.leave_client(app, cx.me, self.form(), self.key, cx.outlet);
        self.set_flag(Flags::MEMBER, false);
        self.set_flag(Flags::QOS1, false);
        if let Some(client_id) = client_id {
            cx.per_core.mqtt.entry(cx.me).client_id = Some(client_id);
        }
    }
}

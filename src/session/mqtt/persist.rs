//! Persistent sessions: a client that connects with clean session 0 (3.1.1) or a Session
//! Expiry Interval above 0 (5.0) keeps its channel subscription and its QoS 1 deliveries when
//! its connection ends; the push service parks them ([`crate::push::parked`]) and queues what is
//! pushed meanwhile; reconnecting without clean start takes them back (CONNACK session present
//! 1): the subscription is entered again, unacknowledged deliveries are sent again with DUP and
//! their packet ids [MQTT-4.4.0-1], then the queued ones, through the in-flight window.
//!
//! # Invariants
//! - A session is parked only by the connection that still holds its clientId: one replaced by
//!   a newer connection leaves nothing behind (what it had in flight is lost with it).
//! - Clean start (clean session 1) drops any parked session of the clientId.
//! - Parked pushes are [`MqttPush`](crate::push::frame::MqttPush) clones; a resumed session
//!   encodes each once for itself (its own version), sharing the payload.

use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::flight::{Extra, header};
use super::{Flags, MqttSession};
use crate::ids::{AppId, ConnId, Forms};
use crate::protocol::mqtt::{Connect, ProtocolVersion};
use crate::push::frame::{MqttPush, Push};
use crate::push::parked::ParkedSession;
use crate::push::{Frame, PushService};
use crate::session::Context;

impl MqttSession {
    /// How long this client's session outlives its connection (`None`: not at all), from its
    /// CONNECT and `mqtt.session_expiry_secs`.
    pub(super) fn session_expiry(&self, connect: &Connect<'_>, cx: &Context<'_>) -> Option<u32> {
        let most = cx.settings.mqtt.session_expiry_secs;
        let asked = match connect.version {
            ProtocolVersion::V311 if !connect.clean_start => most,
            ProtocolVersion::V311 => 0,
            ProtocolVersion::V5 => connect.properties.session_expiry_interval.unwrap_or(0),
        };
        Some(asked.min(most)).filter(|&secs| secs > 0)
    }

    /// Before CONNACK: enters the channel again with the parked subscription; the session back,
    /// or `None` (parked again) when it cannot enter.
    pub(super) fn reenter(
        &mut self,
        parked: ParkedSession,
        client_id: &str,
        cx: &mut Context<'_>,
    ) -> Option<ParkedSession> {
        self.set_flag(Flags::QOS1, parked.qos1);
        match self.enter(cx) {
            Ok(()) => Some(parked),
            Err((reason, why)) => {
                tracing::debug!(conn = %cx.me, reason = reason as u8, why, "a resumed session could not enter");
                self.set_flag(Flags::QOS1, false);
                cx.push.park(self.app, client_id, parked, cx.now.at);
                None
            }
        }
    }

    /// After CONNACK with session present: sends the unacknowledged deliveries again (DUP) and
    /// the queued ones behind them.
    pub(super) fn resume(&mut self, parked: ParkedSession, cx: &mut Context<'_>) {
        let (me, version, transport) = (cx.me, self.version(), self.transport());
        let encode = |push: MqttPush| -> Option<Frame> {
            let form = Forms::one(self.form());
            cx.push.encoder().encode(&Push::mqtt_only(push), form).ok()
        };
        let mut out = BytesMut::new();
        for (id, push) in &parked.unacked {
            match encode(push.clone()).as_ref().and_then(|f| f.mqtt(version).cloned()) {
                Some(shared) => {
                    header(transport, &shared, *id, true, &mut out);
                    out.extend_from_slice(&shared.payload());
                }
                // Cannot happen (it was encoded once already); the id stays in the run, and the
                // client's next acknowledgement releases it.
                None => tracing::warn!(conn = %me, id, "an unacknowledged delivery not encodable"),
            }
        }
        let again = parked.unacked.into_iter();
        let queued: Vec<Frame> = parked.queued.into_iter().filter_map(encode).collect();
        if parked.dropped > 0 {
            tracing::info!(conn = %me, dropped = parked.dropped, "a resumed session lost pushes to its caps");
        }
        let extra = cx.per_core.mqtt.entry(me);
        extra.flight.resume(again);
        if self.at_qos1() {
            extra.flight.waiting.extend(queued);
        } else {
            for frame in &queued {
                self.frame_into_raw(frame, &mut out);
            }
        }
        cx.per_core.mqtt.release(self, me, &cx.settings.mqtt, &mut out);
        cx.transmit.extend_from_slice(&out);
    }

    /// A QoS 0 delivery of `frame`, as every member of this form gets it.
    fn frame_into_raw(&self, frame: &Frame, out: &mut BytesMut) {
        out.extend_from_slice(frame.bytes(self.form()));
    }

    /// The connection ends: a persistent member parks its session (subscription, unacknowledged
    /// and waiting deliveries) for its expiry. Called by `leave`, before the channel is left.
    pub(super) fn park(
        &self,
        app: AppId,
        me: ConnId,
        extra: Option<&mut Extra>,
        push: &PushService,
        now: Instant,
    ) {
        let Some(extra) = extra else { return };
        let Some(expiry) = extra.session_expiry else { return };
        // Only the holder of the clientId parks it: a replaced connection does not.
        let Some(client_id) = push.client_id_of(app, self.key, me) else { return };
        let unacked = extra.flight.kept().collect();
        let expiry = Duration::from_secs(expiry.into());
        let mut session = ParkedSession::new(self.at_qos1(), unacked, now, expiry);
        for frame in extra.flight.waiting.drain(..) {
            if let Some(p) = frame.mqtt_push() {
                session.push_back(p.clone());
            }
        }
        if !push.park(app, client_id.as_str(), session, now) {
            tracing::info!(%app, "no room for another away session: it ends with its connection");
        }
    }
}

//! What MQTT sessions keep off their connections' slots, per core and only while it is not
//! empty: the QoS 1 in-flight window, a v5 client's limits, the clientId between CONNECT and
//! the channel SUBSCRIBE, a manager's will. And the staging of one delivery for one member.
//!
//! # The in-flight window
//! A QoS 1 delivery takes the next packet id; the client acknowledges them in order
//! [MQTT-4.6.0-2], so the ids in flight are always a run `first..first + in_flight` of a
//! sequence (ids 1..=65535, wrapping). A PUBACK for an id in the run acknowledges it and every
//! older one (a client that acks out of order loses nothing it has not already received). At
//! most `min(Receive Maximum, mqtt.max_inflight)` are in flight; later deliveries wait behind
//! (sharing the frame's payload, never a copy) and leave as PUBACKs free the window, up to
//! `mqtt.max_queued`, past which the client is a slow consumer.
//!
//! # Invariants
//! - An entry exists only while something in it is not the default; an idle QoS 0 session and
//!   an idle QoS 1 session with nothing in flight hold none.
//! - The table is the core's own: no lock, and the reactor's broadcast stages each member
//!   without allocating per member (headers are cut from one shared scratch buffer; the table
//!   and the queues grow amortized).

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use serde_json::Value;

use super::{MqttConfig, MqttSession};
use crate::channel::ClientId;
use crate::ids::{AppId, ConnId, Edge, Transport};
use crate::protocol::mqtt::{QoS, SharedPublish};
use crate::protocol::websocket::frame::{self as ws, OpCode};
use crate::push::frame::MqttPush;
use crate::push::{Frame, Outlet, PushService};

/// The MQTT sessions' per-connection extras on one core.
#[derive(Debug, Default)]
pub struct MqttConns {
    table: HashMap<ConnId, Extra>,
}

/// One connection's extras.
#[derive(Debug, Default)]
pub(super) struct Extra {
    /// The clientId from CONNECT, until presence holds it (the channel SUBSCRIBE).
    pub client_id: Option<ClientId>,
    /// A v5 client's Maximum Packet Size.
    pub max_packet: Option<u32>,
    /// A v5 client's Receive Maximum.
    pub receive_max: Option<u16>,
    pub flight: Flight,
    pub will: Option<Box<ManagerWill>>,
    /// A persistent session's expiry, seconds (the session is parked when the connection ends).
    pub session_expiry: Option<u32>,
}

impl Extra {
    fn is_empty(&self) -> bool {
        self.client_id.is_none()
            && self.max_packet.is_none()
            && self.receive_max.is_none()
            && self.flight.is_empty()
            && self.will.is_none()
            && self.session_expiry.is_none()
    }
}

/// QoS 1 deliveries sent and not acknowledged, and those waiting for room.
#[derive(Debug, Default)]
pub(super) struct Flight {
    /// The sequence number of the next delivery; its packet id is `next + 1`.
    next: u16,
    in_flight: u16,
    /// A persistent session's deliveries in flight, oldest first, one per id of the run, so
    /// that they outlive the connection.
    sent: VecDeque<MqttPush>,
    /// Deliveries waiting for room in the window, oldest first.
    pub waiting: VecDeque<Frame>,
}

/// Packet ids run 1..=65535: sequence numbers 0..65535.
const IDS: u32 = 65_535;

impl Flight {
    fn is_empty(&self) -> bool {
        self.in_flight == 0 && self.waiting.is_empty()
    }

    /// Remembers the delivery just given the last id (persistent sessions only).
    pub fn keep(&mut self, push: MqttPush) {
        self.sent.push_back(push);
    }

    /// The kept deliveries in flight with their packet ids, oldest first (consecutive: one per
    /// id of the run).
    pub fn kept(&mut self) -> impl Iterator<Item = (u16, MqttPush)> + '_ {
        let first = (u32::from(self.next) + IDS - u32::from(self.in_flight)) % IDS;
        let ids = (0..).map(move |i: u32| ((first + i) % IDS + 1) as u16);
        ids.zip(self.sent.drain(..))
    }

    /// Takes up a run of ids in flight again (a resumed session's unacknowledged deliveries,
    /// sent again with their ids): `ids` are consecutive, oldest first, as [`kept`](Self::kept)
    /// gave them.
    pub fn resume(&mut self, ids: impl Iterator<Item = (u16, MqttPush)>) {
        for (id, push) in ids {
            self.next = (u32::from(id) % IDS) as u16;
            self.in_flight += 1;
            self.sent.push_back(push);
        }
    }

    /// Takes the next packet id.
    pub fn take_id(&mut self) -> u16 {
        let id = self.next + 1;
        self.next = ((u32::from(self.next) + 1) % IDS) as u16;
        self.in_flight += 1;
        id
    }

    /// The client acknowledged `id`: it and every older delivery in flight are done. Returns
    /// whether `id` was in flight.
    pub fn ack(&mut self, id: u16) -> bool {
        if id == 0 || self.in_flight == 0 {
            return false;
        }
        let first = (u32::from(self.next) + IDS - u32::from(self.in_flight)) % IDS;
        let age = (u32::from(id - 1) + IDS - first) % IDS;
        if age >= u32::from(self.in_flight) {
            return false;
        }
        let acked = age as u16 + 1;
        self.in_flight -= acked;
        let kept = usize::from(acked).min(self.sent.len());
        self.sent.drain(..kept);
        true
    }
}

/// What a management session's will does when its connection ends without DISCONNECT.
#[derive(Debug)]
pub(super) struct ManagerWill {
    /// `None` = the channel, else one client.
    pub client_id: Option<String>,
    pub msg: Value,
    pub retain: bool,
}

impl ManagerWill {
    pub fn publish(&self, app: AppId, push: &PushService, now: Instant, outlet: &mut dyn Outlet) {
        let sent = match &self.client_id {
            None => push.push_all(Edge::Socket, app, &self.msg, now, outlet),
            Some(client_id) => push.push_to(Edge::Socket, app, client_id, &self.msg, now, outlet),
        };
        match sent {
            Ok(_) if self.retain && self.client_id.is_none() => push.retain(app, Some(&self.msg)),
            Ok(_) => {}
            Err(refusal) => tracing::debug!(%app, msg = %refusal.msg, "a manager's will not sent"),
        }
    }
}

/// One delivery, staged for one member.
#[derive(Debug)]
pub enum Staged<'f> {
    /// Send these bytes, the frame's own (QoS 0).
    Whole(&'f Bytes),
    /// Send this connection's header, then the shared payload (QoS 1).
    Split { header: Bytes, payload: Bytes },
    /// Nothing to send now: the frame has no form for this member, it does not fit the
    /// member's Maximum Packet Size, or it waits for room in the window.
    Nothing,
    /// The window is full and the queue behind it too: kick the member as slow.
    Slow,
}

impl MqttConns {
    pub(super) fn get(&self, me: ConnId) -> Option<&Extra> {
        self.table.get(&me)
    }

    pub(super) fn entry(&mut self, me: ConnId) -> &mut Extra {
        self.table.entry(me).or_default()
    }

    /// Drops `me`'s entry if nothing in it is needed any more.
    pub(super) fn tidy(&mut self, me: ConnId) {
        if self.table.get(&me).is_some_and(Extra::is_empty) {
            self.table.remove(&me);
        }
    }

    pub(super) fn remove(&mut self, me: ConnId) -> Option<Extra> {
        self.table.remove(&me)
    }

    /// A DISCONNECT: the manager's will is not sent unless the reason asks for it (v5 0x04),
    /// and a persistent session's expiry becomes `expiry` if the client names one (at most
    /// `most`).
    pub(super) fn on_disconnect(
        &mut self,
        me: ConnId,
        with_will: bool,
        expiry: Option<u32>,
        most: u32,
    ) {
        if let Some(extra) = self.table.get_mut(&me) {
            if !with_will {
                extra.will = None;
            }
            if let (Some(_), Some(secs)) = (extra.session_expiry, expiry) {
                extra.session_expiry = Some(secs.min(most)).filter(|&s| s > 0);
            }
        }
        self.tidy(me);
    }

    /// Whether `me`'s window has room for another QoS 1 delivery now.
    pub(super) fn has_room(&self, me: ConnId, settings: &MqttConfig) -> bool {
        self.get(me)
            .is_none_or(|e| e.flight.in_flight < window(e, settings) && e.flight.waiting.is_empty())
    }

    /// How many connections hold extras (for tests and gauges).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Stages `frame` for `session`, the member `me`: the QoS 0 bytes every member shares, or a
    /// QoS 1 header with the next packet id cut from `scratch` and the shared payload, or a
    /// place in the queue behind a full window.
    pub fn stage<'f>(
        &mut self,
        session: &MqttSession,
        me: ConnId,
        settings: &MqttConfig,
        frame: &'f Frame,
        scratch: &mut BytesMut,
    ) -> Staged<'f> {
        let Some(shared) = frame.mqtt(session.version()) else { return Staged::Nothing };
        let limited = session.flags().has(super::Flags::EXTRA);
        let max_packet = limited.then(|| self.get(me).and_then(|e| e.max_packet)).flatten();
        if !session.at_qos1() {
            if max_packet.is_some_and(|max| shared.qos0_len() > max as usize) {
                return Staged::Nothing;
            }
            return Staged::Whole(frame.bytes(session.form()));
        }
        if max_packet.is_some_and(|max| shared.qos1_len() > max as usize) {
            return Staged::Nothing;
        }
        let extra = self.entry(me);
        let window = window(extra, settings);
        let flight = &mut extra.flight;
        if flight.in_flight >= window || !flight.waiting.is_empty() {
            // A persistent session may come back with its whole parked queue waiting.
            let mut most = settings.max_queued as usize;
            if session.is_persistent() {
                most = most.max(settings.session_max_messages);
            }
            let full = flight.waiting.len() >= most;
            // Kept even when full: a persistent session parks it (its caps then drop the oldest).
            flight.waiting.push_back(frame.clone());
            return if full { Staged::Slow } else { Staged::Nothing };
        }
        let id = flight.take_id();
        if let Some(push) = frame.mqtt_push().filter(|_| session.is_persistent()) {
            flight.keep(push.clone());
        }
        if scratch.capacity() < 1024 {
            scratch.reserve(64 * 1024);
        }
        header(session.transport(), shared, id, false, scratch);
        Staged::Split { header: scratch.split().freeze(), payload: shared.payload() }
    }

    /// Sends what waits behind the window while it has room, into `out` (copied: only
    /// deliveries that once waited pay for it).
    pub(super) fn release(
        &mut self,
        session: &MqttSession,
        me: ConnId,
        settings: &MqttConfig,
        out: &mut BytesMut,
    ) {
        let Some(extra) = self.table.get_mut(&me) else { return };
        let window = window(extra, settings);
        let flight = &mut extra.flight;
        while flight.in_flight < window {
            let Some(frame) = flight.waiting.pop_front() else { break };
            let Some(shared) = frame.mqtt(session.version()) else { continue };
            let id = flight.take_id();
            header(session.transport(), shared, id, false, out);
            out.extend_from_slice(&shared.payload());
            if let Some(push) = frame.mqtt_push().filter(|_| session.is_persistent()) {
                flight.keep(push.clone());
            }
        }
    }
}

/// The most QoS 1 deliveries `extra`'s client may have in flight.
fn window(extra: &Extra, settings: &MqttConfig) -> u16 {
    extra.receive_max.unwrap_or(u16::MAX).min(settings.max_inflight).max(1)
}

/// Appends a QoS 1 delivery's header with `id` (behind a binary frame header on WebSocket),
/// with DUP when it is sent again.
pub(super) fn header(
    transport: Transport,
    shared: &SharedPublish,
    id: u16,
    dup: bool,
    out: &mut BytesMut,
) {
    if transport == Transport::WebSocket {
        ws::encode_header(true, OpCode::Binary, shared.qos1_len(), out);
    }
    // `id` is never 0 and the QoS is 1: the header always encodes.
    let _ = shared.header(QoS::AtLeastOnce, id, dup, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_run_from_1_and_wrap_past_65535() {
        let mut flight = Flight::default();
        assert_eq!((flight.take_id(), flight.take_id()), (1, 2));
        assert!(flight.ack(1) && flight.ack(2));
        assert!(flight.is_empty());
        flight.next = 65_534;
        assert_eq!((flight.take_id(), flight.take_id(), flight.take_id()), (65_535, 1, 2));
        // An ack acknowledges every older one too.
        assert!(flight.ack(1));
        assert_eq!(flight.in_flight, 1);
        assert!(!flight.ack(65_535), "already acknowledged");
        assert!(!flight.ack(3), "never sent");
        assert!(!flight.ack(0));
        assert!(flight.ack(2) && flight.is_empty());
    }
}

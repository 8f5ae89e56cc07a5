//! A reactor's input path: the bytes that arrived for a connection go to its session, with
//! `now` and a context, and the reactor does what the session's [`Flow`] says.
//!
//! # Invariants
//! - The session decodes in place, from the buffer the backend lent; only an unfinished unit is
//!   kept on the connection ([`InputRest`](crate::session::InputRest)), and only while
//!   unfinished.
//! - Whatever the session transmits for this connection goes into the reactor's `transmit`
//!   buffer and leaves in one write after the input.
//! - Effects on *other* connections (onAdd/onLeave, pushes, kicking a replaced session) are
//!   commands, run after this turn's events, so the connection being read is the only one whose
//!   state changes while its input is decoded.
//! - What the session's transitions mean for the reactor (the transport chosen, the handshake
//!   done, a join to the core's member list, a new deadline) is applied after the input and
//!   before its flow, so that a kick's leave undoes a join of the same input.

use super::inbox::Dispatch;
use super::{Liveness, Reactor};
use bytes::BytesMut;

use crate::ids::ConnId;
use crate::session::{self, Context, Flow, Session};
use crate::stats;

impl Reactor {
    /// Hands `data`, just received, to the connection's session.
    pub(super) fn on_input(&mut self, index: usize, data: &mut [u8]) -> Liveness {
        let Some(conn) = self.conns.get_mut(index) else { return Liveness::Gone };
        let me = ConnId::new(self.core, index, conn.generation);
        let mut rest = conn.read_rest.take();
        let before = conn.session;
        let mut session = before;
        self.transmitting = index;
        let mut transmit = std::mem::take(&mut self.transmit);
        let flow = self.with_context(me, &mut transmit, |cx| {
            session::transport::handle_input(&mut session, data, &mut rest, cx)
        });
        self.transmit = transmit;
        if let Some(conn) = self.conns.get_mut(index) {
            conn.session = session;
            if flow.keeps_input() {
                conn.read_rest = rest.filter(|r| !r.is_empty());
            }
        }
        self.after_input(index, &before, &session);
        let upgrade = flow == Flow::Upgrade;
        let liveness = match flow {
            Flow::Continue => self.flush_transmit(index),
            Flow::Close => {
                if self.flush_transmit(index) == Liveness::Open {
                    self.begin_closing(index);
                }
                Liveness::Gone
            }
            Flow::Abort => {
                self.close(index);
                Liveness::Gone
            }
            Flow::Kick(kick) => {
                self.kick(index, &kick);
                Liveness::Gone
            }
            Flow::Poll(request) => match self.flush_transmit(index) {
                Liveness::Open => self.serve_poll(index, *request),
                Liveness::Gone => Liveness::Gone,
            },
            Flow::Move { core } => {
                self.move_conn(index, core);
                Liveness::Gone
            }
            Flow::Upgrade => self.flush_transmit(index),
        };
        self.transmitting = usize::MAX;
        self.run_sio_actions();
        if upgrade && liveness == Liveness::Open {
            return self.read_on(index);
        }
        liveness
    }

    /// Decodes what the connection kept of its input, if anything (after an upgrade).
    fn read_on(&mut self, index: usize) -> Liveness {
        match self.conns.get(index) {
            None => Liveness::Gone,
            Some(conn) if conn.read_rest.as_ref().is_some_and(|r| !r.tail.is_empty()) => {
                self.on_input(index, &mut [])
            }
            Some(_) => Liveness::Open,
        }
    }

    /// Runs `f` with a session's context: `me` is its connection, `out` takes its bytes.
    pub(super) fn with_context<R>(
        &mut self,
        me: ConnId,
        out: &mut BytesMut,
        f: impl FnOnce(&mut Context<'_>) -> R,
    ) -> R {
        let now = self.now();
        let shared = &*self.shared;
        let mut outlet = Dispatch::from_reactor(self.core, &mut self.local, &shared.inboxes);
        let mut cx = Context {
            now,
            me,
            settings: &shared.sessions,
            push: &shared.push,
            outlet: &mut outlet,
            transmit: out,
            per_core: &mut self.per_core,
        };
        f(&mut cx)
    }

    /// Applies what the session's transitions mean here: gauges, the member list, the deadline.
    pub(super) fn after_input(&mut self, index: usize, before: &Session, after: &Session) {
        let counters = &self.shared.reactors[self.core];
        if before.transport() != after.transport() {
            stats::sub(self.gauge_of(before), 1);
            stats::add(self.gauge_of(after), 1);
        }
        if !before.is_working() && after.is_working() {
            // A carrier of polls has no handshake of its own: its session counts one.
            if !matches!(after, Session::Carrier(_)) {
                stats::add(&counters.handshakes, 1);
            }
            stats::sub(&counters.handshaking, 1);
        }
        match (before.member_of(), after.member_of()) {
            (None, Some(app)) => {
                let slot = self.members.add(app, index as u32);
                if let Some(conn) = self.conns.get_mut(index) {
                    conn.member_slot = slot;
                }
            }
            // Left the channel and stays connected (an MQTT UNSUBSCRIBE).
            (Some(app), None) => self.remove_member(index, app),
            _ => {}
        }
        self.schedule(index, after.deadline(&self.shared.sessions) + 1);
    }

    /// Takes the connection out of what its session entered (the push service's presence and
    /// management lists, and this core's member list).
    pub(super) fn leave_session(&mut self, index: usize) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        let me = ConnId::new(self.core, index, conn.generation);
        let shared = &*self.shared;
        let mut outlet = Dispatch::from_reactor(self.core, &mut self.local, &shared.inboxes);
        let left =
            conn.session.leave(me, &shared.push, &mut outlet, &mut self.per_core, self.now_at);
        if let Some(app) = left {
            self.remove_member(index, app);
        }
    }

    /// Takes the connection off this core's member list of `app`'s channel.
    fn remove_member(&mut self, index: usize, app: crate::ids::AppId) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        let slot = std::mem::replace(&mut conn.member_slot, u32::MAX);
        if let Some(moved) = self.members.remove(app, slot) {
            if let Some(moved_conn) = self.conns.get_mut(moved as usize) {
                moved_conn.member_slot = slot;
            }
        }
    }
}

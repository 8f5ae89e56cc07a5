//! Socket.IO long-polling on a reactor: polling sessions (slots without a socket), the polls
//! their carriers bring, and the upgrade that moves a session onto its WebSocket.
//!
//! ```text
//! carrier --Flow::Poll--> serve_poll --GET, pending--> answer now (head + the pending frames)
//!                                   --GET, nothing--> the carrier waits (SioConns::waiting)
//!                                   --POST--> the session's packets (its output queued), "ok"
//! any write to a polling session (a push, a ping, a kick) --> answer_poll: its waiting carrier
//!                                                             gets everything pending
//! WebSocket "2probe" --> a waiting poll gets a noop;  "5" --> upgrade: same slot in the member
//! list, presence re-pointed, pending packets re-framed onto the WebSocket, the slot freed
//! ```
//!
//! # Invariants
//! - Everything here happens on the session's own core: a request for another core's session
//!   has moved its connection there first (`handover.rs`), so a session's pushes, polls and
//!   upgrade are ordered by this one thread, and nothing is lost or doubled at the upgrade.
//! - A poll's answer takes the pending frames as they are (shared `Bytes`, no copy); only the
//!   head is new.
//! - A poll is answered at most once; a carrier whose poll is answered reads its next request.

use bytes::{Bytes, BytesMut};

use super::conn::Conn;
use super::{Liveness, Reactor};
use crate::ids::ConnId;
use crate::session::socketio::polling::{self, PollSession, SioAction, Waiting};
use crate::session::socketio::{SioSession, SioVersion};
use crate::session::{Flow, PollRequest, Session};
use crate::stats;

impl Reactor {
    /// Serves the polling request the carrier at `carrier` read.
    pub(super) fn serve_poll(&mut self, carrier: usize, request: PollRequest) -> Liveness {
        let target = match request.session {
            PollSession::Open(version) => Some(self.open_polling(version)),
            PollSession::Eio { version, sid } => self.polling_session(sid, version),
            PollSession::V09 { token, fresh } => {
                let known = self.per_core.socketio.v09.get(&token).copied();
                match known.and_then(|sid| self.polling_session(sid, SioVersion::V09)) {
                    Some(session) => Some(session),
                    None if fresh && request.body.is_none() => {
                        let session = self.open_polling(SioVersion::V09);
                        let id = self.conn_id(session);
                        self.per_core.socketio.v09.insert(token, id);
                        Some(session)
                    }
                    None => None,
                }
            }
        };
        let origin = request.origin.as_deref();
        let Some(session) = target else {
            let version = match request.session {
                PollSession::Open(v) | PollSession::Eio { version: v, .. } => v,
                PollSession::V09 { .. } => SioVersion::V09,
            };
            let mut answer = BytesMut::new();
            polling::encode_unknown_session(version, origin, &mut answer);
            return self.answer_and_close(carrier, &answer);
        };
        match &request.body {
            None => self.poll_get(carrier, session, &request),
            Some(body) => self.poll_post(carrier, session, body, &request),
        }
    }

    /// The live polling session `sid` names, of `version`.
    fn polling_session(&self, sid: ConnId, version: SioVersion) -> Option<usize> {
        let conn = self.conns.get(sid.index()).filter(|c| c.generation == sid.generation())?;
        match conn.session {
            Session::SocketIo(s) if s.is_polling() && s.version() == version => Some(sid.index()),
            _ => None,
        }
    }

    fn conn_id(&self, index: usize) -> ConnId {
        let generation = self.conns.get(index).map_or(0, |c| c.generation);
        ConnId::new(self.core, index, generation)
    }

    /// A new polling session of `version`: its slot, and what it says first, pending.
    fn open_polling(&mut self, version: SioVersion) -> usize {
        let generation = self.conns.next_generation();
        let engine_io_1x = self.shared.sessions.socketio.engine_io_1x_polling;
        let session = SioSession::on_polling(version, engine_io_1x, self.now);
        let index = self.conns.insert(Conn::detached(generation, Session::SocketIo(session)));
        let counters = self.counters();
        stats::add(&counters.polling, 1);
        if !session.is_working() {
            stats::add(&counters.handshaking, 1);
        }
        let sid = self.shared.sessions.socketio.sid_key.issue(self.conn_id(index), self.now);
        let mut opening = BytesMut::new();
        session.put_opening(&sid, &self.shared.sessions, &mut opening);
        let _ = self.send_slice(index, &opening);
        self.schedule(index, session.deadline(&self.shared.sessions) + 1);
        index
    }

    /// A GET: answered now if the session has something pending (or is being upgraded: a
    /// noop), else it waits.
    fn poll_get(&mut self, carrier: usize, session: usize, request: &PollRequest) -> Liveness {
        let carrier_id = self.conn_id(carrier);
        let sio = &mut self.per_core.socketio;
        let key = session as u32;
        if sio.waiting.contains_key(&key) {
            // Engine.IO's "overlap from client": one poll at a time.
            let mut answer = BytesMut::new();
            let code = crate::protocol::socketio::engineio::HttpErrorCode::BadRequest;
            polling::encode_eio_refusal(code, &mut answer);
            return self.answer_and_close(carrier, &answer);
        }
        let waiting = Waiting {
            carrier: carrier_id,
            keep_alive: request.keep_alive,
            origin: request.origin.clone(),
        };
        let probed = sio.upgrading.contains_key(&key);
        let Some(conn) = self.conns.get(session) else { return Liveness::Gone };
        let (generation, pending) = (conn.generation, conn.pending_bytes());
        if pending == 0 && conn.flags.is_closing() {
            // Kicked, and its last words already went: the session is over.
            let Session::SocketIo(sio) = conn.session else { return Liveness::Gone };
            let mut answer = BytesMut::new();
            polling::encode_unknown_session(sio.version(), request.origin.as_deref(), &mut answer);
            return self.answer_and_close(carrier, &answer);
        }
        self.per_core.socketio.waiting.insert(key, waiting);
        if pending > 0 {
            return self.answer_poll(session);
        }
        if probed {
            return self.answer_noop(session);
        }
        if let Some(conn) = self.conns.get_mut(carrier)
            && let Session::Carrier(c) = &mut conn.session
        {
            c.wait_for(session, generation, self.now);
        }
        self.reschedule_session(carrier);
        Liveness::Open
    }

    /// A POST: its packets go to the session (its answers queued for its next poll), and the
    /// carrier hears `ok`.
    fn poll_post(
        &mut self,
        carrier: usize,
        session: usize,
        body: &[u8],
        request: &PollRequest,
    ) -> Liveness {
        let Some(conn) = self.conns.get_mut(session) else { return Liveness::Gone };
        let before = conn.session;
        let Session::SocketIo(mut sio) = before else { return Liveness::Gone };
        let version = sio.version();
        let me = ConnId::new(self.core, session, conn.generation);
        let mut out = BytesMut::new();
        let flow = self.with_context(me, &mut out, |cx| sio.on_payload(body, cx));
        let after = Session::SocketIo(sio);
        if let Some(conn) = self.conns.get_mut(session) {
            conn.session = after;
        }
        self.after_input(session, &before, &after);
        let mut answer = BytesMut::new();
        let origin = request.origin.as_deref();
        polling::encode_post_answer(version, origin, request.keep_alive, &mut answer);
        let carried = self.answer_carrier(carrier, &[Bytes::from(answer)], request.keep_alive);
        if self.send_slice(session, &out) == Liveness::Open {
            match flow {
                Flow::Kick(kick) => self.kick(session, &kick),
                Flow::Continue | Flow::Poll(_) | Flow::Move { .. } | Flow::Upgrade => {}
                Flow::Close | Flow::Abort => self.close(session),
            }
        }
        carried
    }

    /// Hands everything the session has pending to its waiting poll, if it has one.
    pub(super) fn answer_poll(&mut self, session: usize) -> Liveness {
        let Some(conn) = self.conns.get_mut(session) else { return Liveness::Gone };
        let Session::SocketIo(sio) = conn.session else { return Liveness::Gone };
        if conn.pending_bytes() == 0 {
            // Nothing to say: the poll waits on (a poll is never answered empty).
            return Liveness::Open;
        }
        let key = session as u32;
        let Some(waiting) = self.per_core.socketio.waiting.remove(&key) else {
            return Liveness::Open;
        };
        let carrier = waiting.carrier;
        if self.conns.get_live(carrier.index(), carrier.generation()).is_none() {
            return Liveness::Open; // what is pending waits for the next poll
        }
        let Some(conn) = self.conns.get_mut(session) else { return Liveness::Gone };
        let frames = conn.out.as_mut().map(|out| out.take_all()).unwrap_or_default();
        let taken: usize = frames.iter().map(Bytes::len).sum();
        stats::sub(&self.counters().queued_bytes, taken as u64);
        let skip = polling::body_skip(sio.version());
        let mut parts = Vec::with_capacity(frames.len() + 1);
        let mut head = BytesMut::new();
        let body_len = taken.saturating_sub(skip);
        polling::encode_answer_head(
            body_len,
            waiting.origin.as_deref(),
            waiting.keep_alive,
            &mut head,
        );
        parts.push(head.freeze());
        for (i, frame) in frames.into_iter().enumerate() {
            parts.push(if i == 0 { frame.slice(skip.min(frame.len())..) } else { frame });
        }
        self.answer_carrier(carrier.index(), &parts, waiting.keep_alive)
    }

    /// Answers the session's waiting poll (if any) with a noop, so that the client may pause.
    fn answer_noop(&mut self, session: usize) -> Liveness {
        let Some(conn) = self.conns.get(session) else { return Liveness::Gone };
        let Session::SocketIo(sio) = conn.session else { return Liveness::Gone };
        if conn.pending_bytes() > 0 {
            return self.answer_poll(session);
        }
        let Some(waiting) = self.per_core.socketio.waiting.remove(&(session as u32)) else {
            return Liveness::Open;
        };
        let carrier = waiting.carrier;
        if self.conns.get_live(carrier.index(), carrier.generation()).is_none() {
            return Liveness::Open;
        }
        let mut answer = BytesMut::new();
        let origin = waiting.origin.as_deref();
        polling::encode_noop_answer(sio.version(), origin, waiting.keep_alive, &mut answer);
        self.answer_carrier(carrier.index(), &[answer.freeze()], waiting.keep_alive)
    }

    /// Writes a poll's answer on its carrier, which then reads its next request (or closes).
    fn answer_carrier(&mut self, carrier: usize, parts: &[Bytes], keep_alive: bool) -> Liveness {
        if let Some(conn) = self.conns.get_mut(carrier)
            && let Session::Carrier(c) = &mut conn.session
        {
            c.answered(self.now);
        }
        if self.send_parts(carrier, parts, |part| part, 0) == Liveness::Gone {
            return Liveness::Gone;
        }
        if !keep_alive {
            self.begin_closing(carrier);
            return Liveness::Gone;
        }
        self.reschedule_session(carrier);
        Liveness::Open
    }

    /// Answers with `answer` and closes the connection after it.
    fn answer_and_close(&mut self, carrier: usize, answer: &[u8]) -> Liveness {
        if self.send_slice(carrier, answer) == Liveness::Open {
            self.begin_closing(carrier);
        }
        Liveness::Gone
    }

    /// The poll waiting for the session at `index` (about to close), taken from its entry.
    pub(super) fn take_waiting_poll(&mut self, index: usize) -> Option<(ConnId, SioVersion)> {
        let conn = self.conns.get(index).filter(|c| c.is_detached())?;
        let Session::SocketIo(sio) = conn.session else { return None };
        let waiting = self.per_core.socketio.waiting.remove(&(index as u32))?;
        Some((waiting.carrier, sio.version()))
    }

    /// The session a poll waited for is gone: the poll hears so, and its carrier closes.
    pub(super) fn end_waiting_poll(&mut self, carrier: ConnId, version: SioVersion) {
        if self.conns.get_live(carrier.index(), carrier.generation()).is_none() {
            return;
        }
        let mut answer = BytesMut::new();
        polling::encode_unknown_session(version, None, &mut answer);
        if let Some(conn) = self.conns.get_mut(carrier.index())
            && let Session::Carrier(c) = &mut conn.session
        {
            c.answered(self.now);
        }
        let _ = self.answer_and_close(carrier.index(), &answer);
    }

    /// Puts the connection's timer at its session's deadline, earlier or later.
    fn reschedule_session(&mut self, index: usize) {
        if let Some(conn) = self.conns.get(index) {
            let deadline = conn.session.deadline(&self.shared.sessions);
            self.reschedule(index, deadline + 1);
        }
    }

    /// What Socket.IO sessions asked during the last input: upgrades.
    pub(super) fn run_sio_actions(&mut self) {
        if self.per_core.socketio.actions.is_empty() {
            return;
        }
        for action in std::mem::take(&mut self.per_core.socketio.actions) {
            match action {
                SioAction::Probed { ws } => self.on_probed(ws),
                SioAction::Upgrade { ws } => self.upgrade(ws),
            }
        }
    }

    /// The WebSocket `ws` answered its probe: its session's waiting poll returns (a noop), and
    /// so does every poll until the upgrade.
    fn on_probed(&mut self, ws: ConnId) {
        let sio = &mut self.per_core.socketio;
        let Some(&session) = sio.upgrades.get(&(ws.index() as u32)) else { return };
        if self.conns.get_live(session.index(), session.generation()).is_none() {
            return;
        }
        sio.upgrading.insert(session.index() as u32, ws.index() as u32);
        let _ = self.answer_noop(session.index());
    }

    /// The client sent `5` on `ws`: its polling session goes on as the WebSocket, in the same
    /// place of the member list, with what it had pending written first.
    fn upgrade(&mut self, ws: ConnId) {
        let sio = &mut self.per_core.socketio;
        let Some(sid) = sio.upgrades.remove(&(ws.index() as u32)) else { return };
        sio.upgrading.remove(&(sid.index() as u32));
        if self.conns.get_live(ws.index(), ws.generation()).is_none() {
            return;
        }
        let polling = self.conns.get(sid.index()).filter(|c| c.generation == sid.generation());
        let Some(Session::SocketIo(session)) = polling.map(|c| c.session) else {
            tracing::debug!(core = self.core, "upgrade of a polling session that is gone");
            self.close(ws.index());
            return;
        };
        if !session.is_polling() || polling.is_some_and(|c| c.flags.is_closing()) {
            self.close(ws.index());
            return;
        }
        let _ = self.answer_noop(sid.index());
        let upgraded = session.upgraded(self.now);
        session.rehome(sid, ws, &self.shared.push);
        self.per_core.socketio.note_upgrade(sid, ws, self.now);
        let Some(mut old) = self.conns.remove(sid.index()) else { return };
        let pending = old.out.take().map(|mut out| out.take_all()).unwrap_or_default();
        let pending_len: usize = pending.iter().map(Bytes::len).sum();
        let counters = self.counters();
        stats::sub(&counters.queued_bytes, pending_len as u64);
        stats::sub(&counters.polling, 1);
        if !session.is_working() {
            stats::sub(&counters.handshaking, 1);
        }
        let Some(conn) = self.conns.get_mut(ws.index()) else { return };
        let before = conn.session;
        conn.session = Session::SocketIo(upgraded);
        if let Some(app) = session.member_of() {
            self.members.replace(app, old.member_slot, ws.index() as u32);
            conn.member_slot = old.member_slot;
        }
        if before.is_working() && !upgraded.is_working() {
            stats::add(&self.counters().handshaking, 1);
        }
        let mut joined = Vec::with_capacity(pending_len);
        pending.iter().for_each(|frame| joined.extend_from_slice(frame));
        let mut frames = BytesMut::new();
        let byte_strings = session.has_byte_string_payloads();
        for packet in polling::pending_packets(session.version(), byte_strings, &joined) {
            upgraded.put_packet(packet.as_bytes(), &mut frames);
        }
        tracing::debug!(core = self.core, ws = ws.index(), "polling session upgraded");
        if self.send_slice(ws.index(), &frames) == Liveness::Open {
            self.reschedule_session(ws.index());
        }
    }
}

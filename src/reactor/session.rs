//! A connection's session: Pomelo's lifecycle (handshake → ack → working, heartbeats) and the
//! push platform's routes, executed against the channel registry.
//!
//! # Invariants
//! - Replies to the connection being read go into `reply` and leave in one write after the read.
//! - Effects on *other* connections (onAdd/onLeave, pushes, kicking a replaced session) are
//!   commands, run after this turn's events, so the connection being read is the only one whose
//!   state changes while its input is decoded.

use std::sync::Arc;

use serde_json::Value;

use super::Reactor;
use bytes::BytesMut;

use super::conn::{ConnState, Role, Transport};
use super::inbox::Command;
use super::stats::{self, KickReason};
use crate::broadcast::{self, Frame};
use crate::channel::Join;
use crate::protocol::ProtocolError;
use crate::protocol::pomelo::handshake;
use crate::protocol::pomelo::message::{self, Message, MessageType, Route};
use crate::protocol::pomelo::package::{HEADER_LEN, HEARTBEAT, Package, PackageType};
use crate::protocol::websocket::frame::{self as ws, OpCode};
use crate::push::AppId;
use crate::push::reply;
use crate::push::request::{self, Refusal, Request};
use crate::push::route::{self, ON_ADD, ON_LEAVE, ON_MSG, Resolved};

/// Most clientIds listed in a management session's enter response.
const USERS_IN_ENTER_RESPONSE: usize = 10_000;

impl Reactor {
    /// Handles one package from the connection at `index`; false if the connection stops
    /// reading (closed, closing or kicked).
    pub(super) fn on_package(&mut self, index: usize, pkg: Package<'_>) -> bool {
        let now = self.now;
        let Some(conn) = self.conns.get_mut(index) else {
            return false;
        };
        match (conn.state, pkg.kind) {
            (ConnState::Handshaking, PackageType::Handshake) => {
                match handshake::decode_request(pkg.body) {
                    Ok(request) => {
                        conn.state = ConnState::WaitAck;
                        let shared = Arc::clone(&self.shared);
                        let answer =
                            shared.settings.handshake_reply(request.dict_version.as_deref());
                        self.reply_package(index, answer);
                        true
                    }
                    Err(rejection) => {
                        tracing::debug!(
                            core = self.core,
                            conn = index,
                            ?rejection,
                            "handshake refused"
                        );
                        let mut package = BytesMut::new();
                        handshake::encode_rejection(rejection, &mut package);
                        self.reply_package(index, &package);
                        self.flush_reply_then_close(index);
                        false
                    }
                }
            }
            (ConnState::WaitAck, PackageType::HandshakeAck) => {
                conn.state = ConnState::Working;
                conn.last_seen = now;
                self.reply_package(index, &HEARTBEAT);
                self.schedule(index, now + self.shared.settings.heartbeat_timeout_secs + 1);
                stats::add(&self.shared.stats[self.core].handshakes, 1);
                true
            }
            (ConnState::Working, PackageType::Heartbeat) => {
                conn.last_seen = now;
                self.reply_package(index, &HEARTBEAT);
                true
            }
            (ConnState::Working, PackageType::Data) => match message::decode(pkg.body) {
                Ok(msg) => self.on_message(index, msg),
                Err(e) => {
                    self.protocol_fault(index, &e);
                    false
                }
            },
            // Pomelo ignores a repeated handshake, an early or repeated ack and early heartbeats.
            (_, PackageType::Handshake | PackageType::HandshakeAck | PackageType::Heartbeat) => {
                true
            }
            (_, PackageType::Data) => {
                self.protocol_fault(index, &ProtocolError::Malformed("data before the handshake"));
                false
            }
            (_, PackageType::Kick) => {
                self.protocol_fault(index, &ProtocolError::Malformed("kick from a client"));
                false
            }
        }
    }

    /// Appends a package for the connection being read to `reply`, framed for its transport.
    pub(super) fn reply_package(&mut self, index: usize, package: &[u8]) {
        if self.conns.get(index).is_some_and(|c| c.transport() == Transport::WebSocket) {
            ws::encode_header(true, OpCode::Binary, package.len(), &mut self.reply);
        }
        self.reply.extend_from_slice(package);
    }

    pub(super) fn flush_reply_then_close(&mut self, index: usize) {
        let reply = std::mem::take(&mut self.reply);
        let alive = self.send_slice(index, &reply);
        self.reply = reply;
        self.reply.clear();
        if alive {
            self.begin_closing(index);
        }
    }

    fn on_message(&mut self, index: usize, msg: Message<'_>) -> bool {
        if !matches!(msg.kind, MessageType::Request | MessageType::Notify) {
            let error = ProtocolError::Malformed("a client may send only requests and notifies");
            self.protocol_fault(index, &error);
            return false;
        }
        let shared = Arc::clone(&self.shared);
        let route = match msg.route {
            Route::Name(name) => name,
            Route::Code(code) => match shared.settings.route_of_code(code) {
                Some(name) => name,
                None => {
                    let refusal = Refusal::new(404, format!("unknown route code {code}"));
                    self.respond(index, msg.id, &reply::refusal(&refusal));
                    return true;
                }
            },
            Route::None => {
                self.protocol_fault(index, &ProtocolError::Malformed("request without a route"));
                return false;
            }
        };
        let answer = match route::resolve(route) {
            Resolved::Attack => {
                self.kick(index, KickReason::Attack, KickReason::Attack.as_str());
                return false;
            }
            Resolved::Unknown => {
                reply::refusal(&Refusal::new(404, format!("unknown route {route:?}")))
            }
            Resolved::Known(name) => match request::parse(name, msg.body) {
                Ok(request) => match self.execute(index, request) {
                    Ok(answer) => answer,
                    Err(refusal) => reply::refusal(&refusal),
                },
                Err(refusal) => reply::refusal(&refusal),
            },
        };
        self.respond(index, msg.id, &answer);
        true
    }

    /// Queues a RESPONSE for request `id` (nothing for a notify, whose id is 0).
    fn respond(&mut self, index: usize, id: u32, body: &Value) {
        if id == 0 {
            return;
        }
        let body = serde_json::to_vec(body).unwrap_or_else(|_| b"{\"code\":500}".to_vec());
        let msg = Message { kind: MessageType::Response, id, route: Route::None, body: &body };
        let mut package = BytesMut::with_capacity(HEADER_LEN + message::encoded_len(&msg));
        match message::encode_package(&msg, &mut package) {
            Ok(()) => self.reply_package(index, &package),
            Err(e) => tracing::warn!(core = self.core, error = %e, "response could not be encoded"),
        }
    }

    fn execute(&mut self, index: usize, request: Request) -> Result<Value, Refusal> {
        let shared = Arc::clone(&self.shared);
        let me = self.conn_id(index).ok_or_else(|| Refusal::new(500, "connection is gone"))?;
        match request {
            Request::EnterClient { apikey, client_id } => {
                let app = self.lookup_app(&apikey)?;
                self.check_not_entered(index)?;
                let channel = shared.channels.get(app);
                let settings = &shared.settings;
                let max_clients = shared.apps.get(app).max_clients;
                let (count, replaced, key) =
                    match channel.join(&client_id, me, settings.duplicate, max_clients) {
                        Join::Duplicate => return Ok(reply::duplicate_login()),
                        Join::Full => {
                            return Err(Refusal::new(503, "the app's client limit is reached"));
                        }
                        Join::Joined { count, replaced, key } => (count, replaced, key),
                    };
                let slot = self.members.add(app, index as u32);
                channel.member_added(self.core);
                if let Some(conn) = self.conns.get_mut(index) {
                    conn.tags.set_role(Role::Client);
                    conn.app = app;
                    conn.member_slot = slot;
                    conn.presence_key = key;
                }
                stats::add(&shared.stats[self.core].joins, 1);
                if let Some(old) = replaced {
                    self.dispatch(
                        old.core(),
                        Command::Kick { conn: old, reason: KickReason::Replaced },
                    );
                }
                let limit = settings.on_add_users_limit;
                let users = (count <= limit).then(|| channel.users(limit).0);
                self.notify_managers(
                    app,
                    ON_ADD,
                    &reply::on_add(&client_id, count, users.as_deref()),
                );
                Ok(reply::client_entered())
            }
            Request::EnterServer { apikey, secret } => {
                let app = self.lookup_app(&apikey)?;
                match secret {
                    None => return Err(Refusal::new(401, "missing secret")),
                    Some(s) if !shared.apps.get(app).secret_matches(&s) => {
                        return Err(Refusal::new(401, "wrong secret"));
                    }
                    Some(_) => {}
                }
                self.check_not_entered(index)?;
                if let Some(conn) = self.conns.get_mut(index) {
                    conn.tags.set_role(Role::Server);
                    conn.app = app;
                }
                let channel = shared.channels.get(app);
                channel.add_manager(me);
                let (users, count) = channel.users(USERS_IN_ENTER_RESPONSE);
                Ok(reply::server_entered(&users, count))
            }
            Request::PushAll { apikey, msg } => {
                let app = self.lookup_app(&apikey)?;
                self.check_manages(index, app)?;
                let frame = self.push_frame(ON_MSG, &reply::on_msg(&msg))?;
                let channel = shared.channels.get(app);
                let recipients = broadcast::fan_out(app, channel, &frame, |core, command| {
                    self.dispatch(core, command)
                });
                stats::add(&shared.stats[self.core].pushes, 1);
                Ok(reply::pushed(recipients))
            }
            Request::PushByClientId { apikey, client_id, msg } => {
                let app = self.lookup_app(&apikey)?;
                self.check_manages(index, app)?;
                let Some(target) = shared.channels.get(app).find(&client_id) else {
                    return Err(Refusal::new(404, "no such client"));
                };
                let frame = self.push_frame(ON_MSG, &reply::on_msg(&msg))?;
                self.dispatch(target.core(), Command::Deliver { conn: target, frame });
                stats::add(&shared.stats[self.core].pushes, 1);
                Ok(reply::pushed(1))
            }
        }
    }

    fn lookup_app(&self, apikey: &str) -> Result<AppId, Refusal> {
        self.shared
            .apps
            .lookup(apikey)
            .ok_or_else(|| Refusal::new(404, format!("unknown apikey {apikey:?}")))
    }

    fn check_not_entered(&self, index: usize) -> Result<(), Refusal> {
        match self.conns.get(index).map(|c| c.role()) {
            Some(Role::None) => Ok(()),
            _ => Err(Refusal::new(409, "this session has already entered")),
        }
    }

    /// Only the app's own management session may push to its channel.
    fn check_manages(&self, index: usize, app: AppId) -> Result<(), Refusal> {
        match self.conns.get(index) {
            Some(conn) if conn.role() == Role::Server && conn.app == app => Ok(()),
            _ => Err(Refusal::new(403, "only a management session of this app may push to it")),
        }
    }

    fn push_frame(&self, route: &'static str, body: &Value) -> Result<Frame, Refusal> {
        let body = serde_json::to_vec(body).map_err(|e| Refusal::new(500, e.to_string()))?;
        Frame::push(self.shared.settings.push_route(route), &body)
            .map_err(|e| Refusal::new(400, format!("push cannot be encoded: {e}")))
    }

    /// Pushes `route` with `body` to every management session of `app`.
    fn notify_managers(&mut self, app: AppId, route: &'static str, body: &Value) {
        let managers = self.shared.channels.get(app).managers_snapshot();
        if managers.is_empty() {
            return;
        }
        let Ok(frame) = self.push_frame(route, body) else {
            return;
        };
        for manager in managers {
            let command = Command::Deliver { conn: manager, frame: frame.clone() };
            self.dispatch(manager.core(), command);
        }
    }

    /// Takes the connection out of its channel (presence, member list, management list);
    /// management sessions hear `onLeave` when a client's clientId goes offline.
    pub(super) fn leave_session(&mut self, index: usize) {
        let Some(me) = self.conn_id(index) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        let role = conn.role();
        conn.tags.set_role(Role::None);
        let app = conn.app;
        let shared = Arc::clone(&self.shared);
        let channel = shared.channels.get(app);
        match role {
            Role::None => {}
            Role::Server => channel.remove_manager(me),
            Role::Client => {
                stats::add(&shared.stats[self.core].leaves, 1);
                let slot = std::mem::replace(&mut conn.member_slot, u32::MAX);
                let key = conn.presence_key;
                if let Some(moved) = self.members.remove(app, slot) {
                    if let Some(moved_conn) = self.conns.get_mut(moved as usize) {
                        moved_conn.member_slot = slot;
                    }
                }
                channel.member_removed(self.core);
                if let Some((client_id, count)) = channel.leave(key, me) {
                    let body = reply::on_leave(client_id.as_str(), count);
                    self.notify_managers(app, ON_LEAVE, &body);
                }
            }
        }
    }
}

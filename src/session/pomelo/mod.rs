//! The Pomelo hybrid session (pomelo 2.x, hybridsocket: INITED → WAIT_ACK → WORKING), sans-IO,
//! and the push platform's routes on it.
//!
//! ```text
//! Handshaking --HANDSHAKE--> WaitAck --HANDSHAKE_ACK--> Working(None)
//!                                         enter role "client" --> Working(Client)
//!                                         enter role "server" --> Working(Manager)
//! ```
//!
//! # Invariants
//! - **Inline and small**: 13 bytes, packed, in the connection's slot; no buffer, no allocation while
//!   idle. `since` is the accept time until the ack, then the time of the last heartbeat: every
//!   deadline derives from it.
//! - **Errors are answers.** A request that cannot be served gets a RESPONSE with `code` and a
//!   human `msg` (see [`response`]), never silence; a package that breaks the protocol is a
//!   [`Flow::Kick`] with the reason.
//! - **Pomelo's leniency is kept**: a repeated handshake, an early or repeated ack and early
//!   heartbeats are ignored.
//! - Replies go into the context's `transmit`, each package in the connection's framing (its own
//!   binary WebSocket message over WebSocket).

pub mod request;
pub mod response;
pub mod route;
mod settings;

use bytes::BytesMut;
use serde_json::Value;

use super::{Context, Flow, Kick};
use crate::channel::PresenceKey;
use crate::ids::{AppId, ConnId, Edge, Frontend, Transport, WireForm};
use crate::protocol::ProtocolError;
use crate::protocol::pomelo::message::{self, Message, MessageType, Route};
use crate::protocol::pomelo::package::{HEADER_LEN, HEARTBEAT, Package, PackageType};
use crate::protocol::pomelo::{handshake, kick};
use crate::protocol::websocket::frame::{self as ws, MAX_SERVER_HEADER_LEN, OpCode};
use crate::push::refusal::quoted;
use crate::push::{ClientJoin, Outlet, PushService, Refusal};
use crate::stats::KickReason;
use request::Request;
use route::{Resolved, RouteName};
pub use settings::PomeloSettings;

/// Where a session is in Pomelo's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the client's HANDSHAKE.
    Handshaking,
    /// Handshake answered; waiting for HANDSHAKE_ACK.
    WaitAck,
    /// Acked: heartbeats and requests flow.
    Working(Role),
}

/// What a working session has entered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    None,
    /// A client of `app`'s channel (receives `onMsg`).
    Client,
    /// A management session of `app` (pushes, hears `onAdd`/`onLeave`).
    Manager,
}

/// One Pomelo connection's session. See the module doc. Packed, so that it fits the
/// connection's slot beside the other frontends' sessions; every field is read by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed)]
pub struct PomeloSession {
    since: u32,
    /// Finds this client's clientId in its channel's presence (clients only).
    key: PresenceKey,
    /// The app the session entered; before it enters, the app its handshake named
    /// (`user.apikey`), or [`AppId::NONE`]. Its protos are the connection's protos.
    app: AppId,
    state: State,
    transport: Transport,
    /// Wrong or missing secrets this connection sent (at [`MAX_WRONG_SECRETS`] it is kicked).
    wrong_secrets: u8,
}

/// Wrong secrets one connection may send before it is kicked (`attack`): a mistyped secret is
/// answered 401 and may be corrected, guessing costs a connection per few tries.
pub const MAX_WRONG_SECRETS: u8 = 3;

impl PomeloSession {
    /// A session on `transport` for a connection accepted at `since`.
    pub fn new(since: u32, transport: Transport) -> PomeloSession {
        PomeloSession {
            since,
            key: PresenceKey(0),
            app: AppId::NONE,
            state: State::Handshaking,
            transport,
            wrong_secrets: 0,
        }
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    pub fn form(&self) -> WireForm {
        WireForm::new(Frontend::Pomelo, self.transport)
    }

    pub fn is_working(&self) -> bool {
        matches!(self.state, State::Working(_))
    }

    /// The app whose channel this session joined as a client.
    pub fn member_of(&self) -> Option<AppId> {
        (self.state == State::Working(Role::Client)).then_some(self.app)
    }

    /// The second after which, without activity, the session expires: the handshake's deadline
    /// from the accept, then the heartbeat's from the last heartbeat.
    pub fn deadline(&self, settings: &super::SessionSettings) -> u32 {
        let timeout = match self.state {
            State::Handshaking | State::WaitAck => settings.handshake_timeout_secs,
            State::Working(_) => settings.pomelo.heartbeat_timeout_secs,
        };
        self.since.saturating_add(timeout)
    }

    /// The deadline passed: a working session is kicked, any other simply closed.
    pub fn expire(&self) -> Flow {
        match self.state {
            State::Working(_) => Flow::Kick(Kick::new(KickReason::HeartbeatTimeout)),
            State::Handshaking | State::WaitAck => Flow::Abort,
        }
    }

    /// Handles one package from the client.
    pub fn handle_package(&mut self, pkg: Package<'_>, cx: &mut Context<'_>) -> Flow {
        match (self.state, pkg.kind) {
            (State::Handshaking, PackageType::Handshake) => {
                match handshake::decode_request(pkg.body) {
                    Ok(request) => {
                        self.state = State::WaitAck;
                        let named = request.user_apikey.as_deref().map(|k| cx.push.lookup(k));
                        if let Some(Ok(app)) = named {
                            self.app = app;
                        }
                        let answer = cx.settings.pomelo.handshake_reply(
                            cx.push.protos().id_of(self.app),
                            request.dict_version.as_deref(),
                            request.proto_version.as_deref(),
                        );
                        self.put_package(answer, cx.transmit);
                        Flow::Continue
                    }
                    Err(rejection) => {
                        tracing::debug!(conn = ?cx.me, ?rejection, "handshake refused");
                        let mut package = BytesMut::new();
                        handshake::encode_rejection(rejection, &mut package);
                        self.put_package(&package, cx.transmit);
                        Flow::Close
                    }
                }
            }
            (State::WaitAck, PackageType::HandshakeAck) => {
                self.state = State::Working(Role::None);
                self.since = cx.now.secs;
                self.put_package(&HEARTBEAT, cx.transmit);
                Flow::Continue
            }
            (State::Working(_), PackageType::Heartbeat) => {
                self.since = cx.now.secs;
                self.put_package(&HEARTBEAT, cx.transmit);
                Flow::Continue
            }
            (State::Working(_), PackageType::Data) => match message::decode(pkg.body) {
                Ok(msg) => self.handle_message(msg, cx),
                Err(e) => Flow::Kick(Kick::protocol_fault(&e)),
            },
            (_, PackageType::Handshake | PackageType::HandshakeAck | PackageType::Heartbeat) => {
                Flow::Continue
            }
            (_, PackageType::Data) => {
                let error = ProtocolError::Malformed("data before the handshake");
                Flow::Kick(Kick::protocol_fault(&error))
            }
            (_, PackageType::Kick) => {
                Flow::Kick(Kick::protocol_fault(&ProtocolError::Malformed("kick from a client")))
            }
        }
    }

    /// Appends the KICK package with the kick's reason, then (WebSocket) a close frame.
    pub fn encode_kick(&self, kick: &Kick, out: &mut BytesMut) {
        let mut package = BytesMut::new();
        kick::encode(&kick.text, &mut package);
        match self.transport {
            Transport::Tcp => out.extend_from_slice(&package),
            Transport::WebSocket => {
                out.reserve(package.len() + 2 * MAX_SERVER_HEADER_LEN + 125);
                ws::encode_frame(OpCode::Binary, &package, out);
                ws::encode_close(kick.close_code, &kick.text, out);
            }
        }
    }

    /// Leaves what the session entered: its channel (a client), the app's management list (a
    /// manager). Returns the app whose member list the connection was on.
    pub fn leave(
        &mut self,
        me: ConnId,
        push: &PushService,
        outlet: &mut dyn Outlet,
    ) -> Option<AppId> {
        let State::Working(role) = self.state else { return None };
        self.state = State::Working(Role::None);
        match role {
            Role::None => None,
            Role::Manager => {
                push.leave_manager(self.app, me);
                None
            }
            Role::Client => {
                push.leave_client(self.app, me, self.form(), self.key, outlet);
                Some(self.app)
            }
        }
    }

    /// Appends one package in this connection's framing.
    fn put_package(&self, package: &[u8], out: &mut BytesMut) {
        if self.transport == Transport::WebSocket {
            ws::encode_header(true, OpCode::Binary, package.len(), out);
        }
        out.extend_from_slice(package);
    }

    fn handle_message(&mut self, msg: Message<'_>, cx: &mut Context<'_>) -> Flow {
        if !matches!(msg.kind, MessageType::Request | MessageType::Notify) {
            let error = ProtocolError::Malformed("a client may send only requests and notifies");
            return Flow::Kick(Kick::protocol_fault(&error));
        }
        let route = match msg.route {
            Route::Name(name) => name,
            Route::Code(code) => match cx.settings.pomelo.route_of_code(code) {
                Some(name) => name,
                None => {
                    let refusal = Refusal::new(404, format!("unknown route code {code}"));
                    self.respond(msg.id, "", &response::refusal(&refusal), cx);
                    return Flow::Continue;
                }
            },
            Route::None => {
                let error = ProtocolError::Malformed("request without a route");
                return Flow::Kick(Kick::protocol_fault(&error));
            }
        };
        let answer = match route::resolve(route) {
            Resolved::Attack => return Flow::Kick(Kick::new(KickReason::Attack)),
            Resolved::Unknown => {
                response::refusal(&Refusal::new(404, format!("unknown route {}", quoted(route))))
            }
            Resolved::Known(name) => match self.parse_request(name, route, msg.body, cx) {
                Ok(request) => match self.execute(request, cx) {
                    Ok(answer) => answer,
                    Err(refusal) if refusal.code == 401 => {
                        self.wrong_secrets = self.wrong_secrets.saturating_add(1);
                        response::refusal(&refusal)
                    }
                    Err(refusal) => response::refusal(&refusal),
                },
                Err(refusal) => response::refusal(&refusal),
            },
        };
        self.respond(msg.id, route, &answer, cx);
        if self.wrong_secrets >= MAX_WRONG_SECRETS {
            // Guessing: the answer goes first, then the kick.
            let text = "attack: too many wrong secrets";
            return Flow::Kick(Kick { text: text.into(), ..Kick::new(KickReason::Attack) });
        }
        Flow::Continue
    }

    /// The request in `body`: protobuf if the connection's client protos have `route`, else
    /// JSON.
    fn parse_request(
        &self,
        name: RouteName,
        route: &str,
        body: &[u8],
        cx: &Context<'_>,
    ) -> Result<Request, Refusal> {
        let client = &cx.push.protos().of(self.app).client;
        if !client.has(route) {
            return request::parse(name, body);
        }
        let value = client.decode(route, body).map_err(|e| {
            Refusal::bad_request(format!("the body does not decode with the {route} proto: {e}"))
        })?;
        request::parse_value(name, value)
    }

    /// Queues a RESPONSE for request `id` to `route` (nothing for a notify, whose id is 0):
    /// protobuf if the connection's server protos have the route, else JSON.
    fn respond(&self, id: u32, route: &str, body: &Value, cx: &mut Context<'_>) {
        if id == 0 {
            return;
        }
        let server = &cx.push.protos().of(self.app).server;
        let body = if server.has(route) {
            let mut encoded = BytesMut::new();
            if let Err(e) = server.encode(route, body, &mut encoded) {
                // Only for a route shaddock does not serve (its own routes' protos were
                // checked at start); Pomelo too answers with an empty body then.
                tracing::debug!(route, error = %e, "response does not fit the route's proto");
            }
            encoded.to_vec()
        } else {
            serde_json::to_vec(body).unwrap_or_else(|_| b"{\"code\":500}".to_vec())
        };
        let out = &mut *cx.transmit;
        let msg = Message::response(id, &body);
        let mut package = BytesMut::with_capacity(HEADER_LEN + message::encoded_len(&msg));
        match message::encode_package(&msg, &mut package) {
            Ok(()) => self.put_package(&package, out),
            Err(e) => tracing::warn!(error = %e, "response could not be encoded"),
        }
    }

    /// Serves a request through the push service; the answer's body, or the refusal.
    fn execute(&mut self, request: Request, cx: &mut Context<'_>) -> Result<Value, Refusal> {
        let push = cx.push;
        match request {
            Request::EnterClient { apikey, client_id } => {
                let app = push.lookup(&apikey)?;
                self.check_not_entered()?;
                self.check_protos(app, push)?;
                let now = cx.now.at;
                match push.enter_client(app, cx.me, self.form(), &client_id, now, cx.outlet)? {
                    ClientJoin::Duplicate => Ok(response::duplicate_login()),
                    ClientJoin::Joined(key) => {
                        self.state = State::Working(Role::Client);
                        self.app = app;
                        self.key = key;
                        Ok(response::client_entered())
                    }
                }
            }
            Request::EnterServer { apikey, secret } => {
                let app = push.authenticate(&apikey, secret.as_deref(), cx.now.at)?;
                self.check_not_entered()?;
                self.check_protos(app, push)?;
                self.state = State::Working(Role::Manager);
                self.app = app;
                let (users, count) = push.enter_manager(app, cx.me);
                Ok(response::server_entered(&users, count))
            }
            Request::PushAll { apikey, msg } => {
                let app = push.lookup(&apikey)?;
                self.check_manages(app)?;
                let recipients = push.push_all(Edge::Socket, app, &msg, cx.now.at, cx.outlet)?;
                Ok(response::pushed(recipients))
            }
            Request::PushByClientId { apikey, client_id, msg } => {
                let app = push.lookup(&apikey)?;
                self.check_manages(app)?;
                let now = cx.now.at;
                let recipients =
                    push.push_to(Edge::Socket, app, &client_id, &msg, now, cx.outlet)?;
                Ok(response::pushed(recipients))
            }
        }
    }

    fn check_not_entered(&self) -> Result<(), Refusal> {
        match self.state {
            State::Working(Role::None) => Ok(()),
            _ => Err(Refusal::new(409, "this session has already entered")),
        }
    }

    /// The app entered must use the protos the handshake sent (those of the app it named, or
    /// the global ones).
    fn check_protos(&self, app: AppId, push: &PushService) -> Result<(), Refusal> {
        let protos = push.protos();
        if protos.id_of(app) == protos.id_of(self.app) {
            return Ok(());
        }
        Err(Refusal::bad_request(
            "this app has protos of its own: name it in the handshake (user.apikey)",
        ))
    }

    /// Only the app's own management session may push to its channel.
    fn check_manages(&self, app: AppId) -> Result<(), Refusal> {
        match self.state {
            State::Working(Role::Manager) if { self.app } == app => Ok(()),
            _ => Err(Refusal::new(403, "only a management session of this app may push to it")),
        }
    }
}

#[cfg(test)]
mod tests;

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

pub mod membership;
pub mod request;
pub mod response;
pub mod route;
mod settings;

use bytes::BytesMut;
use serde_json::Value;

use super::{Context, Flow, Kick};
use crate::ids::{AppId, ConnId, Frontend, Transport, WireForm};
use crate::protocol::ProtocolError;
use crate::protocol::pomelo::message::{self, Message, MessageType, Route};
use crate::protocol::pomelo::package::{HEADER_LEN, HEARTBEAT, Package, PackageType};
use crate::protocol::pomelo::{handshake, kick};
use crate::protocol::websocket::frame::{self as ws, MAX_SERVER_HEADER_LEN, OpCode};
use crate::push::{Outlet, PushService, Refusal};
use crate::stats::KickReason;
pub use membership::{MAX_WRONG_SECRETS, Membership};
use request::Request;
use route::RouteName;
pub use settings::PomeloSettings;

/// Where a session is in Pomelo's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the client's HANDSHAKE.
    Handshaking,
    /// Handshake answered; waiting for HANDSHAKE_ACK.
    WaitAck,
    /// Acked: heartbeats and requests flow; what it entered is its [`Membership`].
    Working,
}

/// One Pomelo connection's session. See the module doc. Packed, so that it fits the
/// connection's slot beside the other frontends' sessions; every field is read by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed)]
pub struct PomeloSession {
    since: u32,
    /// What the session entered; before it enters, the app its handshake named
    /// (`user.apikey`), whose protos are the connection's protos.
    member: Membership,
    state: State,
    transport: Transport,
}

impl PomeloSession {
    /// A session on `transport` for a connection accepted at `since`.
    pub fn new(since: u32, transport: Transport) -> PomeloSession {
        PomeloSession { since, member: Membership::new(), state: State::Handshaking, transport }
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    pub fn form(&self) -> WireForm {
        WireForm::new(Frontend::Pomelo, self.transport)
    }

    pub fn is_working(&self) -> bool {
        self.state == State::Working
    }

    /// The app whose channel this session joined as a client.
    pub fn member_of(&self) -> Option<AppId> {
        let member = self.member;
        member.member_of()
    }

    /// The second after which, without activity, the session expires: the handshake's deadline
    /// from the accept, then the heartbeat's from the last heartbeat.
    pub fn deadline(&self, settings: &super::SessionSettings) -> u32 {
        let timeout = match self.state {
            State::Handshaking | State::WaitAck => settings.handshake_timeout_secs,
            State::Working => settings.pomelo.heartbeat_timeout_secs,
        };
        self.since.saturating_add(timeout)
    }

    /// The deadline passed: a working session is kicked, any other simply closed.
    pub fn expire(&self) -> Flow {
        match self.state {
            State::Working => Flow::Kick(Kick::new(KickReason::HeartbeatTimeout)),
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
                            self.member.name_app(app);
                        }
                        let answer = cx.settings.pomelo.handshake_reply(
                            cx.push.protos().id_of(self.app()),
                            request.dict_version.as_deref(),
                            request.proto_version.as_deref(),
                        );
                        self.put_package(answer, cx.transmit);
                        Flow::Continue
                    }
                    Err(rejection) => {
                        tracing::debug!(conn = %cx.me, code = rejection.code(), "handshake refused");
                        let mut package = BytesMut::new();
                        handshake::encode_rejection(rejection, &mut package);
                        self.put_package(&package, cx.transmit);
                        Flow::Close
                    }
                }
            }
            (State::WaitAck, PackageType::HandshakeAck) => {
                self.state = State::Working;
                self.since = cx.now.secs;
                self.put_package(&HEARTBEAT, cx.transmit);
                Flow::Continue
            }
            (State::Working, PackageType::Heartbeat) => {
                self.since = cx.now.secs;
                self.put_package(&HEARTBEAT, cx.transmit);
                Flow::Continue
            }
            (State::Working, PackageType::Data) => match message::decode(pkg.body) {
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
            // A Pomelo session is never polling.
            Transport::Tcp | Transport::Polling => out.extend_from_slice(&package),
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
        let form = self.form();
        let mut member = self.member;
        let left = member.leave(me, form, push, outlet);
        self.member = member;
        left
    }

    /// The app whose protos are this connection's (see [`Membership::app`]).
    fn app(&self) -> AppId {
        let member = self.member;
        member.app()
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
        let form = self.form();
        let mut member = self.member;
        let served = member.serve(
            route,
            form,
            |name, cx| self.parse_request(name, route, msg.body, cx),
            |app, push| self.check_protos(app, push),
            cx,
        );
        self.member = member;
        if let Some(answer) = &served.answer {
            self.respond(msg.id, route, answer, cx);
        }
        match served.kick {
            Some(kick) => Flow::Kick(kick),
            None => Flow::Continue,
        }
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
        let client = &cx.push.protos().of(self.app()).client;
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
        let server = &cx.push.protos().of(self.app()).server;
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

    /// The app entered must use the protos the handshake sent (those of the app it named, or
    /// the global ones).
    fn check_protos(&self, app: AppId, push: &PushService) -> Result<(), Refusal> {
        let protos = push.protos();
        if protos.id_of(app) == protos.id_of(self.app()) {
            return Ok(());
        }
        Err(Refusal::bad_request(
            "this app has protos of its own: name it in the handshake (user.apikey)",
        ))
    }
}

#[cfg(test)]
mod tests;

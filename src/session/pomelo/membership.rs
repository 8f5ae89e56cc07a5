//! What a Pomelo connection has entered, and the push platform's routes served on it: the part
//! of a Pomelo session that does not depend on how its messages travel. The hybrid connector's
//! session ([`PomeloSession`](super::PomeloSession)) and the sioconnector's
//! ([`SioSession`](crate::session::socketio::SioSession)) both keep one and hand it their
//! requests, so a client on either is the same member of the same channel, with the same
//! routes, roles, secrets and error codes.
//!
//! ```text
//! None --enter role "client"--> Client (a member of `app`'s channel, receives onMsg)
//!      --enter role "server"--> Manager (pushes to `app`, hears onAdd / onLeave)
//! ```
//!
//! # Invariants
//! - **Inline and small**: 8 bytes, packed into its session.
//! - `app` is the app entered; before `enter`, the app the session named (a hybrid handshake's
//!   `user.apikey`), or [`AppId::NONE`].
//! - Every request ends in an answer body (a refusal is `{code, msg}`), and the answer goes out
//!   before any kick that follows it ([`Served::kick`]).

use serde_json::Value;

use super::request::Request;
use super::response;
use super::route::{self, Resolved, RouteName};
use crate::channel::PresenceKey;
use crate::ids::{AppId, ConnId, Edge, WireForm};
use crate::push::refusal::quoted;
use crate::push::{ClientJoin, Outlet, PushService, Refusal};
use crate::session::{Context, Kick};
use crate::stats::KickReason;

/// The kick reason of `pushHandler.kick` when the manager gives none.
const KICK_REASON: &str = "kicked by the app";

/// Wrong secrets one connection may send before it is kicked (`attack`): a mistyped secret is
/// answered 401 and may be corrected, guessing costs a connection per few tries.
pub const MAX_WRONG_SECRETS: u8 = 3;

/// What a session has entered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    None,
    /// A client of `app`'s channel (receives `onMsg`).
    Client,
    /// A management session of `app` (pushes, hears `onAdd`/`onLeave`).
    Manager,
}

/// A connection's standing in the push platform. See the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed)]
pub struct Membership {
    /// Finds this client's clientId in its channel's presence (clients only).
    key: PresenceKey,
    app: AppId,
    role: Role,
    /// Wrong or missing secrets this connection sent (at [`MAX_WRONG_SECRETS`] it is kicked).
    wrong_secrets: u8,
}

/// What serving one request gives: the answer's body (none for an attack), and the kick that
/// follows it, if any.
#[derive(Debug)]
pub struct Served {
    pub answer: Option<Value>,
    pub kick: Option<Kick>,
}

impl Served {
    fn answer(answer: Value) -> Served {
        Served { answer: Some(answer), kick: None }
    }

    fn refusal(refusal: &Refusal) -> Served {
        Served::answer(response::refusal(refusal))
    }
}

impl Default for Membership {
    fn default() -> Self {
        Membership::new()
    }
}

impl Membership {
    pub const fn new() -> Membership {
        Membership { key: PresenceKey(0), app: AppId::NONE, role: Role::None, wrong_secrets: 0 }
    }

    /// The app entered, or before `enter` the app named, or [`AppId::NONE`].
    pub fn app(&self) -> AppId {
        self.app
    }

    /// Names the app before `enter` (a hybrid handshake's `user.apikey`).
    pub fn name_app(&mut self, app: AppId) {
        if self.role == Role::None {
            self.app = app;
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The app whose channel this session joined as a client.
    pub fn member_of(&self) -> Option<AppId> {
        (self.role == Role::Client).then_some(self.app)
    }

    /// Resolves `route` and serves it: `parse` reads the body for a known route (JSON, or
    /// protobuf where the session's protos say so), `check_app` is the session's own check of
    /// the app a request enters (the hybrid session's protos). `form` is how this connection
    /// receives pushes.
    pub fn serve(
        &mut self,
        route: &str,
        form: WireForm,
        parse: impl FnOnce(RouteName, &Context<'_>) -> Result<Request, Refusal>,
        check_app: impl Fn(AppId, &PushService) -> Result<(), Refusal>,
        cx: &mut Context<'_>,
    ) -> Served {
        let name = match route::resolve(route) {
            Resolved::Attack => {
                return Served { answer: None, kick: Some(Kick::new(KickReason::Attack)) };
            }
            Resolved::Unknown => {
                let refusal = Refusal::new(404, format!("unknown route {}", quoted(route)));
                return Served::refusal(&refusal);
            }
            Resolved::Known(name) => name,
        };
        let outcome =
            parse(name, cx).and_then(|request| self.execute(request, form, &check_app, cx));
        let mut served = match outcome {
            Ok(answer) => Served::answer(answer),
            Err(refusal) => {
                if refusal.code == 401 {
                    self.wrong_secrets = self.wrong_secrets.saturating_add(1);
                }
                Served::refusal(&refusal)
            }
        };
        if self.wrong_secrets >= MAX_WRONG_SECRETS {
            // Guessing: the answer goes first, then the kick.
            let text = "attack: too many wrong secrets";
            served.kick = Some(Kick { text: text.into(), ..Kick::new(KickReason::Attack) });
        }
        served
    }

    /// Serves a request through the push service; the answer's body, or the refusal.
    fn execute(
        &mut self,
        request: Request,
        form: WireForm,
        check_app: &impl Fn(AppId, &PushService) -> Result<(), Refusal>,
        cx: &mut Context<'_>,
    ) -> Result<Value, Refusal> {
        let push = cx.push;
        match request {
            Request::EnterClient { apikey, client_id, token } => {
                let app = push.lookup(&apikey)?;
                self.check_not_entered()?;
                check_app(app, push)?;
                push.check_client_token(app, &client_id, token.as_deref(), cx.now.unix)?;
                let now = cx.now.at;
                match push.enter_client(app, cx.me, form, &client_id, now, cx.outlet)? {
                    ClientJoin::Duplicate => Ok(response::duplicate_login()),
                    ClientJoin::Joined(key) => {
                        self.role = Role::Client;
                        self.app = app;
                        self.key = key;
                        Ok(response::client_entered())
                    }
                }
            }
            Request::EnterServer { apikey, secret } => {
                let app = push.authenticate(&apikey, secret.as_deref(), cx.now.at)?;
                self.check_not_entered()?;
                check_app(app, push)?;
                self.role = Role::Manager;
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
            Request::Kick { apikey, client_id, reason } => {
                let app = push.lookup(&apikey)?;
                self.check_manages(app)?;
                let reason = reason.as_deref().unwrap_or(KICK_REASON);
                let disconnected = push.disconnect(app, &client_id, reason, cx.outlet)?;
                Ok(response::kicked(disconnected))
            }
        }
    }

    fn check_not_entered(&self) -> Result<(), Refusal> {
        match self.role {
            Role::None => Ok(()),
            _ => Err(Refusal::new(409, "this session has already entered")),
        }
    }

    /// Only the app's own management session may push to its channel.
    fn check_manages(&self, app: AppId) -> Result<(), Refusal> {
        match self.role {
            Role::Manager if { self.app } == app => Ok(()),
            _ => Err(Refusal::new(403, "only a management session of this app may push to it")),
        }
    }

    /// What `from` entered goes on as `to` (same core, forms `from_form` → `to_form`): a
    /// polling session's membership carried on by its WebSocket.
    pub fn rehome(&self, from: (ConnId, WireForm), to: (ConnId, WireForm), push: &PushService) {
        match self.role {
            Role::None => {}
            Role::Manager => push.rehome_manager(self.app, from.0, to.0),
            Role::Client => {
                push.rehome_client(self.app, self.key, from, to);
            }
        }
    }

    /// Leaves what was entered: the channel (a client), the app's management list (a manager).
    /// Returns the app whose member list the connection was on.
    pub fn leave(
        &mut self,
        me: ConnId,
        form: WireForm,
        push: &PushService,
        outlet: &mut dyn Outlet,
    ) -> Option<AppId> {
        let role = std::mem::replace(&mut self.role, Role::None);
        match role {
            Role::None => None,
            Role::Manager => {
                push.leave_manager(self.app, me);
                None
            }
            Role::Client => {
                push.leave_client(self.app, me, form, self.key, outlet);
                Some(self.app)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_membership_is_eight_bytes() {
        assert_eq!(std::mem::size_of::<Membership>(), 8);
        assert_eq!(std::mem::align_of::<Membership>(), 1);
    }

    #[test]
    fn an_app_named_before_enter_sticks_until_then() {
        let mut member = Membership::new();
        assert_eq!(member.app(), AppId::NONE);
        member.name_app(AppId(3));
        assert_eq!((member.app(), member.member_of()), (AppId(3), None));
    }
}

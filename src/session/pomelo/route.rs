//! The routes a Pomelo client may call on shaddock, and the dictionary's route lists.
//!
//! A route is `serverType.handler.method`. The server type is whatever frontend name the client
//! was built against (`connector`, `hybrid-connector`, `sio-connector`, `pushserver`, ...); only
//! `handler.method` decides. The method name `constructor` is Pomelo's "attack" case.

use crate::push::body::{ON_ADD, ON_LEAVE, ON_MSG};

/// A route shaddock serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteName {
    /// `*.entryHandler.enter`: join the app's channel as a client or management session.
    Enter,
    /// `*.pushHandler.pushAll`: push `onMsg` to the whole channel.
    PushAll,
    /// `*.pushHandler.pushByClientId`: push `onMsg` to one client.
    PushByClientId,
    /// `*.pushHandler.kick`: disconnect one client, with a reason (the management page's kick
    /// button; the admin API's `DELETE .../clients/{clientId}` for a management session).
    Kick,
}

/// What a route string resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    Known(RouteName),
    /// The method is `constructor`: Pomelo kicks such sessions with reason "attack".
    Attack,
    Unknown,
}

/// The handler routes in Pomelo's dictionary order source (sorted by the dictionary itself).
/// `pushHandler.kick` is not among them: adding it would renumber the others for clients that
/// kept a dictionary, and a kick is rare enough to send its route in full.
pub const HANDLER_ROUTES: [&str; 3] = [
    "connector.entryHandler.enter",
    "pushserver.pushHandler.pushAll",
    "pushserver.pushHandler.pushByClientId",
];

/// The push routes shaddock sends; the dictionary numbers them after the handler routes.
pub const PUSH_ROUTES: [&str; 3] = [ON_ADD, ON_MSG, ON_LEAVE];

pub fn resolve(route: &str) -> Resolved {
    let mut parts = route.splitn(3, '.');
    let (Some(server), Some(handler), Some(method)) = (parts.next(), parts.next(), parts.next())
    else {
        return Resolved::Unknown;
    };
    if server.is_empty() {
        return Resolved::Unknown;
    }
    if method == "constructor" {
        return Resolved::Attack;
    }
    match (handler, method) {
        ("entryHandler", "enter") => Resolved::Known(RouteName::Enter),
        ("pushHandler", "pushAll") => Resolved::Known(RouteName::PushAll),
        ("pushHandler", "pushByClientId") => Resolved::Known(RouteName::PushByClientId),
        ("pushHandler", "kick") => Resolved::Known(RouteName::Kick),
        _ => Resolved::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontend_prefixes_are_accepted() {
        for r in [
            "connector.entryHandler.enter",
            "hybrid-connector.entryHandler.enter",
            "sio-connector.entryHandler.enter",
        ] {
            assert_eq!(resolve(r), Resolved::Known(RouteName::Enter), "{r}");
        }
        assert_eq!(resolve("pushserver.pushHandler.pushAll"), Resolved::Known(RouteName::PushAll));
        assert_eq!(
            resolve("pushserver.pushHandler.pushByClientId"),
            Resolved::Known(RouteName::PushByClientId)
        );
        assert_eq!(resolve("pushserver.pushHandler.kick"), Resolved::Known(RouteName::Kick));
    }

    #[test]
    fn unknown_and_attack_routes() {
        assert_eq!(resolve("connector.entryHandler.constructor"), Resolved::Attack);
        for r in [
            "",
            "enter",
            "entryHandler.enter",
            ".entryHandler.enter",
            "connector.entryHandler.leave",
            "a.b.c.d",
        ] {
            assert_eq!(resolve(r), Resolved::Unknown, "{r}");
        }
    }
}

//! Frontend sessions, sans-IO: what a client connection means, from its first byte to its last.
//!
//! A session takes inputs (`handle_*`: bytes decoded into packages, a deadline passing) with
//! `now` passed in, and returns effects: bytes for its own connection (into the context's
//! `transmit`), requests to the [`PushService`] (enter, leave, push; their effects on *other*
//! connections leave through the context's [`Outlet`]), a [`Flow`] that says whether to go on,
//! close or kick with a reason (or, for Socket.IO polling, serve a poll against the session's
//! slot or hand the connection to the core that holds its session), requests to the reactor
//! about this core's other connections in [`PerCore`] (a Socket.IO upgrade), and the deadline
//! it wants to be woken at. No socket, no clock
//! read, no reactor inside: the tests beside each session drive it byte for byte.
//!
//! # The frontend contract
//! A frontend is a protocol clients speak on the client port. Every frontend provides:
//!
//! 1. **Recognition.** How its first bytes are told apart from every other frontend's, in
//!    [`transport::decode`]'s opening step (an HTTP request at `socketio.path` is Socket.IO's,
//!    any other HTTP request line a WebSocket upgrade, an MQTT CONNECT is `0x10`, which no Pomelo
//!    package starts with, anything else is Pomelo) and, over WebSocket, by the upgrade (its
//!    subprotocol: `mqtt`).
//! 2. **A codec** under `protocol/`: bytes in, bytes out, no state beyond one unit.
//! 3. **A session type**, one variant of [`Session`]: small enough to live inline in the
//!    reactor's connection slot (an idle connection holds no buffer), with `handle_package`-style
//!    inputs, `deadline` / `handle_timeout` (which may write, a server ping, and go on),
//!    `encode_kick`, `leave` and the [`WireForm`] it
//!    receives pushes in. A session keeps its identity in the push service (the app it entered,
//!    its presence key) and gives it back on `leave`. What it needs beyond its slot goes in the
//!    core's [`PerCore`], only while it is needed.
//! 4. **How it encodes a push**: its [`WireForm`]s in `ids` and one arm in
//!    [`FrameEncoder::encode`](crate::push::FrameEncoder::encode).
//!
//! The reactor drives every session the same way ([`transport::decode`] for input,
//! [`Session::handle_timeout`] for deadlines, [`Session::encode_kick`] and [`Session::leave`] on
//! the way out), so adding a frontend is a codec, a session module and the lines above, not
//! edits across the reactor.
//!
//! # Layout
//! - [`transport`]: the choice of transport on the first bytes, the WebSocket upgrade and
//!   frames, and the frontend's units inside them.
//! - [`pomelo`]: the Pomelo hybrid session (handshake → ack → working, heartbeats, the push
//!   routes).
//! - [`mqtt`]: the MQTT 3.1.1 / 5.0 session (CONNECT, subscriptions as channel joins, QoS 1
//!   deliveries, a manager's publishes as pushes).
//! - [`socketio`]: the Socket.IO session (Pomelo's sioconnector: socket.io 0.9, Engine.IO 3
//!   and 4; its first request, heartbeats in each version's direction, Pomelo's messages).

pub mod mqtt;
pub mod pomelo;
pub mod socketio;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod testing;
pub mod transport;

use std::borrow::Cow;
use std::time::Instant;

use bytes::BytesMut;

use crate::ids::{AppId, ConnId, Transport, WireForm};
use crate::protocol::ProtocolError;
use crate::protocol::mqtt::ReasonCode;
use crate::push::{Outlet, PushService};
use crate::stats::KickReason;
pub use mqtt::{MqttConfig, MqttConns, MqttSession};
pub use pomelo::{PomeloSession, PomeloSettings};
pub use socketio::{Carrier, PollRequest, SioConns, SioSession, SocketIoSettings};
pub use transport::InputRest;

/// The settings every session reads, resolved once at start.
#[derive(Debug)]
pub struct SessionSettings {
    pub pomelo: PomeloSettings,
    pub mqtt: MqttConfig,
    pub socketio: SocketIoSettings,
    /// Largest package (and WebSocket message payload) accepted, bytes.
    pub max_package_bytes: usize,
    /// WebSocket `Origin`s allowed to upgrade; empty = any.
    pub allowed_origins: Vec<String>,
    /// How long a connection may take from accept to a finished handshake, seconds.
    pub handshake_timeout_secs: u32,
}

/// The time, as a session sees it: whole seconds on the reactor's clock (deadlines), the
/// instant (rate limits), and Unix seconds (the expiry of a signed clientId). Passed in; a
/// session never reads a clock.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub secs: u32,
    pub at: Instant,
    pub unix: u64,
}

/// What the sessions of one core keep off their connections' slots, per connection and only
/// while they need it. The reactor owns it; the sessions alone read and write it.
#[derive(Debug, Default)]
pub struct PerCore {
    pub mqtt: MqttConns,
    pub socketio: SioConns,
}

/// What a session is given with each input.
pub struct Context<'a> {
    pub now: Now,
    /// The connection this session runs on.
    pub me: ConnId,
    pub settings: &'a SessionSettings,
    pub push: &'a PushService,
    /// Where the push service's effects on other connections go.
    pub outlet: &'a mut dyn Outlet,
    /// Bytes for this connection, already framed for its transport, sent after the input.
    pub transmit: &'a mut BytesMut,
    /// The core's per-connection session extras.
    pub per_core: &'a mut PerCore,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("now", &self.now)
            .field("me", &self.me)
            .field("transmit", &self.transmit.len())
            .finish_non_exhaustive()
    }
}

/// What the connection does after an input.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// Go on reading.
    Continue,
    /// Send what `transmit` holds, then close gracefully (no kick): the handshake or upgrade was
    /// refused, or the peer closed the WebSocket.
    Close,
    /// Close at once, sending nothing more (a deadline passed before the handshake finished).
    Abort,
    /// Send what `transmit` holds, then kick: a working session hears why before the close;
    /// any other is closed at once.
    Kick(Kick),
    /// A Socket.IO polling request for a session of this core, for the reactor to serve
    /// (`socketio::polling`); the connection is a [`Carrier`] and reads on after the answer.
    Poll(Box<PollRequest>),
    /// The input is for a session of another core: hand the connection, with its input
    /// unread, to that core's reactor.
    Move { core: usize },
    /// A WebSocket said `5` (Engine.IO's upgrade): the reactor puts it in its polling session's
    /// place now, then decodes the rest of the input, which is the upgraded session's (the
    /// client flushes what it buffered right behind the `5`).
    Upgrade,
}

impl Flow {
    /// Whether the connection keeps what it did not decode of its input (to decode later, or
    /// to carry to another core).
    pub fn keeps_input(&self) -> bool {
        matches!(self, Flow::Continue | Flow::Poll(_) | Flow::Move { .. } | Flow::Upgrade)
    }
}

/// A server-initiated close of a working session, with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kick {
    pub reason: KickReason,
    /// The reason on the wire (the reason's own text, or with a detail after a colon).
    pub text: Cow<'static, str>,
    /// The close code a WebSocket client gets after the kick.
    pub close_code: u16,
    /// The reason code an MQTT 5.0 client's DISCONNECT carries, when the kick names one (else
    /// the MQTT session picks one for `reason`).
    pub mqtt: Option<ReasonCode>,
}

impl Kick {
    /// A kick with the reason's own text and close code.
    pub fn new(reason: KickReason) -> Kick {
        let close_code = match reason {
            KickReason::ProtocolError | KickReason::Attack => 1002,
            KickReason::PackageTooLarge => 1009,
            KickReason::Shutdown => 1001,
            _ => 1000,
        };
        Kick { reason, text: Cow::Borrowed(reason.as_str()), close_code, mqtt: None }
    }

    /// A kick by the admin API with the caller's `text` (MQTT 5.0: Administrative action).
    pub fn disconnected(text: Box<str>) -> Kick {
        let kick = Kick { text: Cow::Owned(text.into()), ..Kick::new(KickReason::Disconnected) };
        kick.with_mqtt(ReasonCode::AdministrativeAction)
    }

    /// A kick of an MQTT session with its 5.0 reason code and text.
    pub fn mqtt(reason: KickReason, code: ReasonCode, text: &'static str) -> Kick {
        Kick { text: Cow::Borrowed(text), ..Kick::new(reason) }.with_mqtt(code)
    }

    /// The same kick, with `code` as its MQTT 5.0 reason code.
    pub fn with_mqtt(self, code: ReasonCode) -> Kick {
        Kick { mqtt: Some(code), ..self }
    }

    /// The kick for a protocol error: `package too large`, or `protocol error: ...`.
    pub fn protocol_fault(error: &ProtocolError) -> Kick {
        let reason = match error {
            ProtocolError::PackageTooLarge { .. } => KickReason::PackageTooLarge,
            _ => KickReason::ProtocolError,
        };
        Kick { text: Cow::Owned(error.kick_reason()), ..Kick::new(reason) }
    }
}

/// A connection's session: which frontend, and where it is in that frontend's lifecycle. It
/// lives inline in the connection's slot (at most 15 bytes, 1-aligned: the frontends' sessions
/// are packed; see the size test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// Accepted at `since`; the first bytes will say which frontend and transport.
    Opening {
        since: Secs,
    },
    Pomelo(PomeloSession),
    Mqtt(MqttSession),
    SocketIo(SioSession),
    /// An HTTP connection carrying Socket.IO polling requests.
    Carrier(Carrier),
}

/// A second on the reactor's clock, 1-aligned so that a [`Session`] packs into its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed)]
pub struct Secs(pub u32);

impl Session {
    pub fn new(now: u32) -> Session {
        Session::Opening { since: Secs(now) }
    }

    /// The transport, once the first bytes chose it.
    pub fn transport(&self) -> Option<Transport> {
        match self {
            Session::Opening { .. } => None,
            Session::Pomelo(s) => Some(s.transport()),
            Session::Mqtt(s) => Some(s.transport()),
            Session::SocketIo(s) => Some(s.transport()),
            Session::Carrier(_) => Some(Transport::Tcp),
        }
    }

    /// The form this connection receives pushes in, once it is known.
    pub fn form(&self) -> Option<WireForm> {
        match self {
            Session::Opening { .. } => None,
            Session::Pomelo(s) => Some(s.form()),
            Session::Mqtt(s) => Some(s.form()),
            Session::SocketIo(s) => Some(s.form()),
            Session::Carrier(_) => None,
        }
    }

    /// The handshake is done: a close must be a kick with a reason. A carrier is past its
    /// opening (it carried a request of a session), and has nothing to say at a kick.
    pub fn is_working(&self) -> bool {
        match self {
            Session::Opening { .. } => false,
            Session::Pomelo(s) => s.is_working(),
            Session::Mqtt(s) => s.is_working(),
            Session::SocketIo(s) => s.is_working(),
            Session::Carrier(_) => true,
        }
    }

    /// The app whose channel this session is a client member of.
    pub fn member_of(&self) -> Option<AppId> {
        match self {
            Session::Opening { .. } => None,
            Session::Pomelo(s) => s.member_of(),
            Session::Mqtt(s) => s.member_of(),
            Session::SocketIo(s) => s.member_of(),
            Session::Carrier(_) => None,
        }
    }

    /// The second after which, without activity, [`handle_timeout`](Self::handle_timeout) acts.
    pub fn deadline(&self, settings: &SessionSettings) -> u32 {
        match self {
            Session::Opening { since } => {
                let Secs(since) = *since;
                since.saturating_add(settings.handshake_timeout_secs)
            }
            Session::Pomelo(s) => s.deadline(settings),
            Session::Mqtt(s) => s.deadline(settings),
            Session::SocketIo(s) => s.deadline(settings),
            Session::Carrier(s) => s.deadline(settings),
        }
    }

    /// A deadline came due at `now`: [`Flow::Continue`] if activity moved it or the session
    /// acted and goes on (a server ping, into `out`; ask [`deadline`](Self::deadline) again),
    /// else how the connection ends.
    pub fn handle_timeout(
        &mut self,
        now: u32,
        settings: &SessionSettings,
        out: &mut BytesMut,
    ) -> Flow {
        if now <= self.deadline(settings) {
            return Flow::Continue;
        }
        match self {
            Session::Opening { .. } => Flow::Abort,
            Session::Pomelo(s) => s.expire(),
            Session::Mqtt(s) => s.expire(),
            Session::SocketIo(s) => s.handle_timeout(now, out),
            Session::Carrier(_) => Flow::Close,
        }
    }

    /// Appends what a working session's peer gets before a server close: the frontend's kick
    /// with `kick`'s reason, then (WebSocket) a close frame with its code.
    pub fn encode_kick(&self, kick: &Kick, out: &mut BytesMut) {
        match self {
            Session::Opening { .. } | Session::Carrier(_) => {}
            Session::Pomelo(s) => s.encode_kick(kick, out),
            Session::Mqtt(s) => s.encode_kick(kick, out),
            Session::SocketIo(s) => s.encode_kick(kick, out),
        }
    }

    /// Leaves whatever the session entered and drops what it kept in `per_core`; returns the
    /// app whose member list the connection was on (a client), so that its core takes it off.
    /// `now` is for what leaving sends (an MQTT manager's will).
    pub fn leave(
        &mut self,
        me: ConnId,
        push: &PushService,
        outlet: &mut dyn Outlet,
        per_core: &mut PerCore,
        now: Instant,
    ) -> Option<AppId> {
        match self {
            Session::Opening { .. } => None,
            Session::Pomelo(s) => s.leave(me, push, outlet),
            Session::Mqtt(s) => s.leave(me, push, outlet, per_core, now),
            Session::SocketIo(s) => s.leave(me, push, outlet, &mut per_core.socketio),
            Session::Carrier(s) => {
                s.leave(me, &mut per_core.socketio);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_fits_its_slot() {
        assert!(std::mem::size_of::<Session>() <= 15, "{}", std::mem::size_of::<Session>());
        assert!(std::mem::align_of::<Session>() == 1, "{}", std::mem::align_of::<Session>());
    }

    #[test]
    fn kicks_carry_their_close_codes() {
        assert_eq!(Kick::new(KickReason::Shutdown).close_code, 1001);
        assert_eq!(Kick::new(KickReason::Replaced).text, "replaced");
        let too_large = Kick::protocol_fault(&ProtocolError::PackageTooLarge { len: 9, max: 8 });
        assert_eq!((too_large.reason, too_large.close_code), (KickReason::PackageTooLarge, 1009));
        assert_eq!(too_large.text, "package too large");
        let bad = Kick::protocol_fault(&ProtocolError::Malformed("x"));
        assert_eq!(
            (bad.reason, bad.text.as_ref()),
            (KickReason::ProtocolError, "protocol error: x")
        );
    }
}

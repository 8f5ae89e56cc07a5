//! The Socket.IO session (Pomelo's sioconnector), sans-IO: Pomelo's messages over socket.io
//! 0.9, Engine.IO 3 (socket.io 1.x–2.x) and Engine.IO 4 (socket.io 3.x–4.x), on WebSocket.
//!
//! ```text
//! 0.9:   GET /socket.io/1/ -> "sid:45:60:websocket"; WebSocket /socket.io/1/websocket/{sid}
//!        -> "1::" -> Working <-> "2::" heartbeats, the server asking; "3:::{pomelo message}"
//! EIO 3: WebSocket /socket.io/?EIO=3&transport=websocket -> open, "40" -> Working;
//!        the client pings ("2"), the server answers ("3")
//! EIO 4: WebSocket /socket.io/?EIO=4&transport=websocket -> open -> Connecting
//!        --"40"--> "40{sid}" -> Working; the server pings ("2"), the client answers ("3")
//! ```
//!
//! A Pomelo request travels as a socket.io `message`: the string Pomelo's socket.io client
//! builds (`protocol::socketio::pomelo`), answered `{id, body}`; pushes are `{route, body}` and
//! a kick is `{route: "onKick", reason}` followed by socket.io's disconnect. The routes, roles,
//! secrets and error codes are the hybrid connector's: the session keeps a [`Membership`].
//!
//! # Invariants
//! - **Inline and small**: 14 bytes, packed, in the connection's slot; an idle connection holds
//!   no buffer. `since` is the accept time while connecting, then the time of the last heartbeat
//!   (0.9 and EIO 4: the last answer to the server's ping, or the ping itself while one is
//!   awaited; EIO 3: the client's last ping): every deadline derives from it.
//! - A server ping is written by [`SioSession::handle_timeout`] when the interval passes; a
//!   ping unanswered within the timeout is a `heartbeat timeout` kick.
//! - Every reply is one text WebSocket message.
//! - Only HTTP long-polling is missing so far: a polling request is refused with Engine.IO's
//!   `Transport unknown` (and socket.io 0.9's handshake offers `websocket` alone), so that
//!   clients that can use WebSocket do.

mod message;
pub mod opening;
pub mod sid;

use bytes::BytesMut;

use super::pomelo::Membership;
use super::{Flow, Kick, SessionSettings};
use crate::config::SocketIoConfig;
use crate::ids::{AppId, ConnId, Transport, WireForm};
use crate::protocol::socketio::engineio::{self, PacketType};
use crate::protocol::socketio::v09::{self, V09Type};
use crate::protocol::socketio::{packet, pomelo};
use crate::protocol::websocket::frame::{self as ws, OpCode};
use crate::push::{Outlet, PushService};
use crate::stats::KickReason;
pub use sid::SidKey;

/// The Socket.IO frontend's settings, resolved once at start.
#[derive(Debug, Clone)]
pub struct SocketIoSettings {
    pub enabled: bool,
    /// Requests whose path starts with this (no trailing `/`) are Socket.IO's.
    pub path: String,
    pub ping_interval_secs: u32,
    pub ping_timeout_secs: u32,
    /// Signs socket.io 0.9's handshake sids.
    pub sid_key: SidKey,
}

impl SocketIoSettings {
    /// The settings of `[socketio]`, with a fresh sid key.
    pub fn from_config(config: &SocketIoConfig) -> SocketIoSettings {
        SocketIoSettings {
            enabled: config.enabled,
            path: config.path.clone(),
            ping_interval_secs: config.ping_interval_secs,
            ping_timeout_secs: config.ping_timeout_secs,
            sid_key: SidKey::random(),
        }
    }

    /// Whether a request for `path` is Socket.IO's.
    pub fn claims(&self, path: &str) -> bool {
        self.enabled
            && path
                .strip_prefix(self.path.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// socket.io 0.9's heartbeat timeout as its handshake states it: the client closes after
    /// hearing nothing for this long.
    pub fn v09_heartbeat_timeout_secs(&self) -> u32 {
        self.ping_interval_secs + self.ping_timeout_secs
    }
}

/// The socket.io generation a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SioVersion {
    /// socket.io 0.9 (protocol 1).
    V09,
    /// Engine.IO 3 with socket.io protocol 4 (socket.io 1.x–2.x).
    Eio3,
    /// Engine.IO 4 with socket.io protocol 5 (socket.io 3.x–4.x).
    Eio4,
}

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// EIO 4: opened, waiting for the client's socket.io CONNECT.
    Connecting,
    /// Connected; no server ping awaits its answer.
    Working,
    /// Connected; the server's ping of `since` awaits its answer.
    AwaitingPong,
}

/// One Socket.IO connection's session. See the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed)]
pub struct SioSession {
    since: u32,
    member: Membership,
    version: SioVersion,
    state: State,
}

impl SioSession {
    /// A session whose WebSocket opened at `now`: 0.9 and EIO 3 are connected at once (their
    /// servers say so unasked), EIO 4 waits for the client's CONNECT.
    pub fn on_websocket(version: SioVersion, now: u32) -> SioSession {
        let state = match version {
            SioVersion::Eio4 => State::Connecting,
            SioVersion::V09 | SioVersion::Eio3 => State::Working,
        };
        SioSession { since: now, member: Membership::new(), version, state }
    }

    pub fn version(&self) -> SioVersion {
        self.version
    }

    pub fn transport(&self) -> Transport {
        Transport::WebSocket
    }

    pub fn form(&self) -> WireForm {
        match self.version {
            SioVersion::V09 => WireForm::SocketIo09WebSocket,
            SioVersion::Eio3 | SioVersion::Eio4 => WireForm::EngineIoWebSocket,
        }
    }

    pub fn is_working(&self) -> bool {
        self.state != State::Connecting
    }

    pub fn member_of(&self) -> Option<AppId> {
        let member = self.member;
        member.member_of()
    }

    /// The second after which, without activity, [`handle_timeout`](Self::handle_timeout)
    /// acts: the handshake's deadline, the next server ping, or a heartbeat's timeout.
    pub fn deadline(&self, settings: &SessionSettings) -> u32 {
        let sio = &settings.socketio;
        let wait = match (self.state, self.version) {
            (State::Connecting, _) => settings.handshake_timeout_secs,
            (State::AwaitingPong, _) => sio.ping_timeout_secs,
            (State::Working, SioVersion::Eio3) => sio.ping_interval_secs + sio.ping_timeout_secs,
            // A deadline acts once `now` is past it: the ping goes out at `since + interval`.
            (State::Working, SioVersion::V09 | SioVersion::Eio4) => sio.ping_interval_secs - 1,
        };
        self.since.saturating_add(wait)
    }

    /// The deadline passed at `now`: ping (into `out`) and go on, or end the connection.
    pub fn handle_timeout(&mut self, now: u32, out: &mut BytesMut) -> Flow {
        match (self.state, self.version) {
            (State::Connecting, _) => Flow::Abort,
            (State::Working, SioVersion::V09 | SioVersion::Eio4) => {
                self.put_ping(out);
                self.state = State::AwaitingPong;
                self.since = now;
                Flow::Continue
            }
            (State::AwaitingPong, _) | (State::Working, SioVersion::Eio3) => {
                Flow::Kick(Kick::new(KickReason::HeartbeatTimeout))
            }
        }
    }

    /// The client answered a server ping (or, EIO 3, pinged): the heartbeat starts again.
    fn heard_heartbeat(&mut self, now: u32) {
        if self.state != State::Connecting {
            self.state = State::Working;
            self.since = now;
        }
    }

    /// Appends what the peer gets before a server close: Pomelo's `onKick` message with the
    /// reason, socket.io's disconnect, and the WebSocket close with the kick's code.
    pub fn encode_kick(&self, kick: &Kick, out: &mut BytesMut) {
        if self.is_working() {
            let mut message = String::new();
            pomelo::encode_kick(&kick.text, &mut message);
            self.put_message(&message, out);
            let mut disconnect = BytesMut::new();
            match self.version {
                SioVersion::V09 => v09::encode(V09Type::Disconnect, "", "", &mut disconnect),
                SioVersion::Eio3 | SioVersion::Eio4 => packet::encode_disconnect(&mut disconnect),
            }
            ws::encode_frame(OpCode::Text, &disconnect, out);
        }
        ws::encode_close(kick.close_code, &kick.text, out);
    }

    /// Leaves what the session entered; returns the app whose member list the connection was
    /// on.
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

    /// Appends a Pomelo message (a JSON string) as this version's socket.io message, in a text
    /// WebSocket message.
    fn put_message(&self, message: &str, out: &mut BytesMut) {
        let mut packet = BytesMut::new();
        match self.version {
            SioVersion::V09 => v09::encode(V09Type::Message, "", message, &mut packet),
            SioVersion::Eio3 | SioVersion::Eio4 => {
                packet::encode_message_event(message, &mut packet)
            }
        }
        ws::encode_frame(OpCode::Text, &packet, out);
    }

    /// The server's ping: `2::` (0.9), `2` (EIO 4).
    fn put_ping(&self, out: &mut BytesMut) {
        let mut ping = BytesMut::new();
        match self.version {
            SioVersion::V09 => v09::encode(V09Type::Heartbeat, "", "", &mut ping),
            SioVersion::Eio3 | SioVersion::Eio4 => {
                engineio::encode_packet(PacketType::Ping, "", &mut ping);
            }
        }
        ws::encode_frame(OpCode::Text, &ping, out);
    }
}

#[cfg(test)]
mod tests;

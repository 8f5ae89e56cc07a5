//! The Socket.IO session (Pomelo's sioconnector), sans-IO: Pomelo's messages over socket.io
//! 0.9, Engine.IO 3 (socket.io 1.x–2.x) and Engine.IO 4 (socket.io 3.x–4.x), on WebSocket or
//! HTTP long-polling.
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
//! - Every packet the session writes goes out in its transport's framing ([`SioSession::put_packet`]):
//!   one text WebSocket message, or one element of a polling payload (EIO 3 `<len>:`, EIO 4
//!   `0x1E`, 0.9 U+FFFD framing) that waits in the session's queue for the next poll.
//! - A polling session (`polling.rs`) is a connection slot without a socket: its queue is
//!   its pending output, bounded by `max_pending_bytes` like any connection's, and each poll is
//!   answered on the connection that carried it (`carrier.rs`); the upgrade to WebSocket moves
//!   the session, membership and pending packets, onto the WebSocket's slot on the same core.

pub mod carrier;
mod message;
pub mod opening;
pub mod polling;
pub mod sid;

use bytes::BytesMut;

use super::pomelo::Membership;
use super::{Flow, Kick, SessionSettings};
use crate::config::SocketIoConfig;
use crate::ids::{AppId, ConnId, Frontend, Transport, WireForm};
use crate::protocol::socketio::engineio::{self, EioVersion, PacketType};
use crate::protocol::socketio::v09::{self, V09Type};
use crate::protocol::socketio::{packet, pomelo};
use crate::protocol::websocket::frame::{self as ws, OpCode};
use crate::push::{Outlet, PushService};
use crate::stats::KickReason;
pub use carrier::Carrier;
pub use polling::{PollRequest, PollTarget, SioAction, SioConns};
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
    /// Engine.IO 3 polling payloads as engine.io 1.x writes them (see the config).
    pub engine_io_1x_polling: bool,
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
            engine_io_1x_polling: config.engine_io_1x_polling,
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

impl SioVersion {
    /// The Engine.IO revision (0.9 has none: its packets are its own).
    pub fn eio(self) -> Option<EioVersion> {
        match self {
            SioVersion::V09 => None,
            SioVersion::Eio3 => Some(EioVersion::V3),
            SioVersion::Eio4 => Some(EioVersion::V4),
        }
    }
}

/// A session's version and transport, in one byte so that the session packs into its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    V09WebSocket,
    V09Polling,
    Eio3WebSocket,
    Eio3Polling,
    /// Engine.IO 3 polling with engine.io 1.x's UTF-8 byte strings in payloads.
    Eio3Polling1x,
    Eio4WebSocket,
    Eio4Polling,
}

impl Kind {
    fn new(version: SioVersion, polling: bool) -> Kind {
        match (version, polling) {
            (SioVersion::V09, false) => Kind::V09WebSocket,
            (SioVersion::V09, true) => Kind::V09Polling,
            (SioVersion::Eio3, false) => Kind::Eio3WebSocket,
            (SioVersion::Eio3, true) => Kind::Eio3Polling,
            (SioVersion::Eio4, false) => Kind::Eio4WebSocket,
            (SioVersion::Eio4, true) => Kind::Eio4Polling,
        }
    }

    fn version(self) -> SioVersion {
        match self {
            Kind::V09WebSocket | Kind::V09Polling => SioVersion::V09,
            Kind::Eio3WebSocket | Kind::Eio3Polling | Kind::Eio3Polling1x => SioVersion::Eio3,
            Kind::Eio4WebSocket | Kind::Eio4Polling => SioVersion::Eio4,
        }
    }

    fn polling(self) -> bool {
        matches!(
            self,
            Kind::V09Polling | Kind::Eio3Polling | Kind::Eio3Polling1x | Kind::Eio4Polling
        )
    }
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
    /// A WebSocket that will take over a polling session of this core (named in the core's
    /// [`SioConns`]): the probe (`2probe` → `3probe`) and the client's `5` come first.
    Upgrading,
}

/// One Socket.IO connection's session. See the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed)]
pub struct SioSession {
    since: u32,
    member: Membership,
    kind: Kind,
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
        SioSession { since: now, member: Membership::new(), kind: Kind::new(version, false), state }
    }

    /// A polling session opened at `now`: connected at once but for EIO 4, as over WebSocket.
    /// `engine_io_1x`: an EIO 3 session's payloads are engine.io 1.x's.
    pub fn on_polling(version: SioVersion, engine_io_1x: bool, now: u32) -> SioSession {
        let kind = match Kind::new(version, true) {
            Kind::Eio3Polling if engine_io_1x => Kind::Eio3Polling1x,
            kind => kind,
        };
        SioSession { kind, ..SioSession::on_websocket(version, now) }
    }

    /// An EIO 3 polling session whose payloads are engine.io 1.x's UTF-8 byte strings.
    pub fn has_byte_string_payloads(&self) -> bool {
        self.kind == Kind::Eio3Polling1x
    }

    /// A WebSocket opened at `now` to take over a polling session of `version` (its probe and
    /// upgrade packets come first).
    pub fn on_upgrade(version: SioVersion, now: u32) -> SioSession {
        SioSession { state: State::Upgrading, ..SioSession::on_websocket(version, now) }
    }

    /// This polling session, carried on by a WebSocket from `now` on: the same membership and
    /// connection state, the heartbeat starting again.
    pub fn upgraded(&self, now: u32) -> SioSession {
        let state = match self.state {
            State::Connecting => State::Connecting,
            _ => State::Working,
        };
        SioSession {
            since: now,
            member: self.member,
            kind: Kind::new(self.version(), false),
            state,
        }
    }

    pub fn version(&self) -> SioVersion {
        self.kind.version()
    }

    /// A polling session: no socket of its own.
    pub fn is_polling(&self) -> bool {
        self.kind.polling()
    }

    /// A WebSocket waiting to take over a polling session.
    pub fn is_upgrading(&self) -> bool {
        self.state == State::Upgrading
    }

    pub fn transport(&self) -> Transport {
        match self.kind.polling() {
            true => Transport::Polling,
            false => Transport::WebSocket,
        }
    }

    pub fn form(&self) -> WireForm {
        let frontend = match self.version() {
            SioVersion::V09 => Frontend::SocketIo09,
            SioVersion::Eio3 => Frontend::EngineIo3,
            SioVersion::Eio4 => Frontend::EngineIo4,
        };
        WireForm::new(frontend, self.transport())
    }

    /// Connected (or taking over a connected polling session): a close is a kick.
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
        let wait = match (self.state, self.version()) {
            (State::Connecting | State::Upgrading, _) => settings.handshake_timeout_secs,
            (State::AwaitingPong, _) => sio.ping_timeout_secs,
            (State::Working, SioVersion::Eio3) => sio.ping_interval_secs + sio.ping_timeout_secs,
            // A deadline acts once `now` is past it: the ping goes out at `since + interval`.
            (State::Working, SioVersion::V09 | SioVersion::Eio4) => sio.ping_interval_secs - 1,
        };
        self.since.saturating_add(wait)
    }

    /// The deadline passed at `now`: ping (into `out`) and go on, or end the connection.
    pub fn handle_timeout(&mut self, now: u32, out: &mut BytesMut) -> Flow {
        match (self.state, self.version()) {
            (State::Connecting | State::Upgrading, _) => Flow::Abort,
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
        if matches!(self.state, State::Working | State::AwaitingPong) {
            self.state = State::Working;
            self.since = now;
        }
    }

    /// Appends what the peer gets before a server close: Pomelo's `onKick` message with the
    /// reason and socket.io's disconnect, then (WebSocket) the close with the kick's code.
    pub fn encode_kick(&self, kick: &Kick, out: &mut BytesMut) {
        if self.is_working() && self.state != State::Upgrading {
            let mut message = String::new();
            pomelo::encode_kick(&kick.text, &mut message);
            self.put_message(&message, out);
            let mut disconnect = BytesMut::new();
            match self.version() {
                SioVersion::V09 => v09::encode(V09Type::Disconnect, "", "", &mut disconnect),
                SioVersion::Eio3 | SioVersion::Eio4 => packet::encode_disconnect(&mut disconnect),
            }
            self.put_packet(&disconnect, out);
        }
        if self.kind.polling() {
            // The client closes on socket.io's disconnect; Engine.IO's close packet in the same
            // answer would close it before it reads the kick.
            return;
        }
        ws::encode_close(kick.close_code, &kick.text, out);
    }

    /// What this polling session (`from`) entered goes on as `to`, the WebSocket whose session
    /// is now [`upgraded`](Self::upgraded).
    pub fn rehome(&self, from: ConnId, to: ConnId, push: &PushService) {
        let member = self.member;
        let to_form = self.upgraded(0).form();
        member.rehome((from, self.form()), (to, to_form), push);
    }

    /// Writes what a new polling session says first, `sid` naming it: Engine.IO's open packet
    /// (offering the WebSocket upgrade) and, EIO 3, socket.io's CONNECT; 0.9's connect packet.
    pub fn put_opening(&self, sid: &str, settings: &SessionSettings, out: &mut BytesMut) {
        let mut packet = BytesMut::new();
        let Some(eio) = self.version().eio() else {
            v09::encode(V09Type::Connect, "", "", &mut packet);
            self.put_packet(&packet, out);
            return;
        };
        encode_open_packet(eio, sid, &["websocket"], settings, &mut packet);
        self.put_packet(&packet, out);
        if eio == EioVersion::V3 {
            // socket.io 2.x servers connect the default namespace unasked.
            packet.clear();
            packet::encode_connect(EioVersion::V3, None, &mut packet);
            self.put_packet(&packet, out);
        }
    }

    /// Leaves what the session entered; returns the app whose member list the connection was
    /// on.
    pub fn leave(
        &mut self,
        me: ConnId,
        push: &PushService,
        outlet: &mut dyn Outlet,
        conns: &mut SioConns,
    ) -> Option<AppId> {
        let index = me.index() as u32;
        if self.state == State::Upgrading {
            conns.upgrades.remove(&index);
            conns.upgrading.retain(|_, ws| *ws != index);
        }
        if self.kind.polling() {
            conns.upgrading.remove(&index);
            if self.version() == SioVersion::V09 {
                conns.v09.retain(|_, session| *session != me);
            }
            conns.waiting.remove(&index);
        }
        let form = self.form();
        let mut member = self.member;
        let left = member.leave(me, form, push, outlet);
        self.member = member;
        left
    }

    /// Appends a Pomelo message (a JSON string) as this version's socket.io message.
    fn put_message(&self, message: &str, out: &mut BytesMut) {
        let mut packet = BytesMut::new();
        match self.version() {
            SioVersion::V09 => v09::encode(V09Type::Message, "", message, &mut packet),
            SioVersion::Eio3 | SioVersion::Eio4 => {
                packet::encode_message_event(message, &mut packet)
            }
        }
        self.put_packet(&packet, out);
    }

    /// The server's ping: `2::` (0.9), `2` (EIO 4).
    fn put_ping(&self, out: &mut BytesMut) {
        let mut ping = BytesMut::new();
        match self.version() {
            SioVersion::V09 => v09::encode(V09Type::Heartbeat, "", "", &mut ping),
            SioVersion::Eio3 | SioVersion::Eio4 => {
                engineio::encode_packet(PacketType::Ping, "", &mut ping);
            }
        }
        self.put_packet(&ping, out);
    }

    /// Appends one encoded packet (text) in this session's transport: a text WebSocket
    /// message, or an element of a polling payload.
    pub fn put_packet(&self, packet: &[u8], out: &mut BytesMut) {
        if !self.kind.polling() {
            ws::encode_frame(OpCode::Text, packet, out);
            return;
        }
        // Every packet is encoded here from text.
        let text = std::str::from_utf8(packet).unwrap_or_default();
        match self.version().eio() {
            Some(eio) if self.has_byte_string_payloads() => {
                engineio::encode_payload_item(eio, &engineio::to_byte_string(text), out)
            }
            Some(eio) => engineio::encode_payload_item(eio, text, out),
            None => v09::encode_framed(text, out),
        }
    }
}

/// The open packet of a session with `sid`, offering `upgrades`, with the configured
/// heartbeat and the largest payload taken.
pub fn encode_open_packet(
    eio: EioVersion,
    sid: &str,
    upgrades: &[&str],
    settings: &SessionSettings,
    out: &mut BytesMut,
) {
    let sio = &settings.socketio;
    let open = engineio::Open {
        sid,
        upgrades,
        ping_interval_ms: sio.ping_interval_secs * 1000,
        ping_timeout_ms: sio.ping_timeout_secs * 1000,
        max_payload: u32::try_from(settings.max_package_bytes).unwrap_or(u32::MAX),
    };
    engineio::encode_open(eio, &open, out);
}

#[cfg(test)]
mod polling_tests;
#[cfg(test)]
mod tests;

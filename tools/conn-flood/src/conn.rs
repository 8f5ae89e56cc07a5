//! One connection's protocol, as a sans-IO state machine: bytes in, bytes out, stage changes
//! and deliveries recorded; the event loop (`flood.rs`) owns the socket.
//!
//! ```text
//! Pomelo/TCP   Connecting ─► Handshaking ─► Entering ─► Entered
//! Pomelo/WS    Connecting ─► Upgrading ─► Handshaking ─► Entering ─► Entered
//! Redis        Connecting ─► Entering (SUBSCRIBE sent) ─► Entered (confirmed)
//! MQTT         Connecting ─► Handshaking (CONNECT sent) ─► Entering (SUBSCRIBE sent) ─► Entered
//! Socket.IO    Connecting ─► Upgrading ─► Handshaking (101 in) ─► Entering ─► Entered
//! sio 0.9      Connecting ─► Requesting (GET {path}/1/) ─► Redialing (sid in; the loop connects
//!              again) ─► Connecting ─► Upgrading (…/1/websocket/<sid>) ─► Handshaking ─► …
//! sio polling  Connecting ─► Requesting (first GET) ─► Handshaking (open in) ─► Entering ─► …;
//!              0.9: Requesting (GET {path}/1/) ─► Redialing ─► Connecting ─► Handshaking
//!              (GET …/1/xhr-polling/<sid>) ─► …  (conn/polling.rs: GETs on the socket, POSTs
//!              on a second one, Channel::Post)
//!
//! Handshaking: HANDSHAKE sent; on the answer (code 200) send HANDSHAKE_ACK + enter request id 1
//! Entering:    on response id 1 with code 200 → Entered; any other code → Fault::Refused
//! Entered:     pushes → stamp → PhaseBook::deliver; heartbeats answered by the server ignored
//! anywhere:    KICK → Fault::Kicked, WebSocket close → Fault::Closed
//!
//! MQTT:        CONNACK code 0 → SUBSCRIBE `push/{apikey}` (packet id 1) at the run's QoS;
//!              SUBACK id 1 granted (< 0x80) → Entered; PUBLISH → stamp → deliver, and at QoS 1
//!              PUBACK its packet id; server DISCONNECT → Fault::Kicked; heartbeats are PINGREQ
//!
//! Socket.IO:   Handshaking: EIO 4 open → `40`; EIO 3 open → learn pingInterval (the client's
//!              heartbeat); then the connect (`40..`, 0.9 `1::`) → enter id 1 as a `message`;
//!              Entering/Entered as Pomelo's, the messages inside text frames (wire/socketio.rs);
//!              server pings `2` → `3`, 0.9 `2::` → `2::`; an `onKick` message → Fault::Kicked,
//!              socket.io's disconnect → Fault::Closed
//! ```
//!
//! # Invariants
//! - [`Conn::receive`] consumes only whole units (packages, frames, replies) and returns how many
//!   bytes it used; the caller keeps the rest for the next read.
//! - Past the handshake nothing allocates: pushes are decoded in place and their stamp parsed
//!   from the borrowed body (a Socket.IO push is known by its stamp, so only the messages that
//!   are not pushes are unescaped and parsed). Socket.IO polling is the exception: each poll
//!   and POST is a new request, and each answer's packets are listed.
//! - A socket.io 0.9 sid lives in the connection from the handshake's answer until the
//!   WebSocket's upgrade takes it; every other start begins with a fresh handshake.

use std::borrow::Cow;

use bytes::BytesMut;
use shaddock::protocol::pomelo::message::{self, MessageType};
use shaddock::protocol::pomelo::package::{self, Package, PackageType};
use shaddock::protocol::pomelo::{handshake, kick};

use crate::phase::{PhaseBook, Tally};
use crate::wire::mqtt::{self, Packet as MqttPacket};
use crate::wire::resp::{self, Item};
use crate::wire::socketio::{self, PomeloMessage, Server as SioServer};
use crate::wire::{pomelo, stamp, ws};

/// The mask of every client WebSocket frame (RFC 6455 wants it unpredictable to defeat proxy
/// cache poisoning, which a loopback load tool has no use for).
const MASK: [u8; 4] = [0x5a, 0xc3, 0x3c, 0xa5];

/// A Redis `PING`.
const REDIS_PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

/// The protocol of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Pomelo over raw TCP.
    PomeloTcp,
    /// Pomelo inside WebSocket binary frames.
    PomeloWs,
    /// Redis `SUBSCRIBE`.
    Redis,
    /// MQTT `SUBSCRIBE push/{apikey}`.
    Mqtt(MqttOptions),
    /// Pomelo's messages over Socket.IO on WebSocket (`Identity::ws_path` is the Socket.IO
    /// path).
    SocketIo(socketio::Version),
    /// The same over HTTP long-polling, never upgraded: GETs on the connection's socket, POSTs
    /// on a second one ([`Channel::Post`]); see `conn/polling.rs`.
    SocketIoPolling(socketio::Version),
}

impl Protocol {
    /// The sockets a connection of this protocol holds at most.
    pub fn sockets(self) -> u64 {
        match self {
            Protocol::SocketIoPolling(_) => 2,
            _ => 1,
        }
    }
}

/// Which of a connection's sockets bytes came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The connection's socket (every protocol's only one; a polling client's GETs).
    Main,
    /// A polling client's second socket, for its POSTs.
    Post,
}

/// How MQTT subscribers connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MqttOptions {
    /// 3.1.1 or 5.0.
    pub version: mqtt::Version,
    /// The QoS subscribed at, 0 or 1.
    pub qos: u8,
    /// The keep alive CONNECT asks for, seconds.
    pub keep_alive: u16,
}

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// No socket (not started, waiting for a retry, or given up).
    Idle,
    /// TCP connect in progress.
    Connecting,
    /// socket.io 0.9: the HTTP handshake (`GET {path}/1/`) sent.
    Requesting,
    /// socket.io 0.9: the handshake gave a sid; the loop closes this socket and connects again
    /// for the WebSocket.
    Redialing,
    /// WebSocket upgrade sent.
    Upgrading,
    /// Pomelo handshake sent (MQTT: CONNECT sent; Socket.IO: the WebSocket is open, the
    /// socket.io connect awaited).
    Handshaking,
    /// Enter (or SUBSCRIBE) sent.
    Entering,
    /// In the channel.
    Entered,
}

/// Who a connection is, for its first messages.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// `Host` of the WebSocket upgrade.
    pub host: &'a str,
    /// Path of the WebSocket upgrade.
    pub ws_path: &'a str,
    /// The apikey (Redis: the channel).
    pub apikey: &'a str,
    /// The clientId is this prefix followed by the index.
    pub client_prefix: &'a str,
    /// See `client_prefix`.
    pub client_index: u64,
}

/// What the first handshake of a loop taught it, reused by the next ones.
#[derive(Debug, Default)]
pub struct Learned {
    /// The server's dictionary version: sent back so later handshakes leave the dictionary out.
    pub dict_version: Option<String>,
    /// The heartbeat interval the server asked for, seconds.
    pub heartbeat_secs: Option<u32>,
    /// Socket.IO: the server's ping interval and timeout together, seconds (the handshake's
    /// `pingInterval + pingTimeout`, 0.9's heartbeat timeout): within it (and some slack) a
    /// poll is answered.
    pub poll_wait_secs: Option<u32>,
}

/// The loop's side of one call: the time, the phase book, where output goes.
#[derive(Debug)]
pub struct Io<'a> {
    /// `CLOCK_MONOTONIC` ns when the bytes were read.
    pub now_ns: u64,
    /// The phase's accounting.
    pub book: &'a mut PhaseBook,
    /// Bytes to send on this connection.
    pub out: &'a mut BytesMut,
    /// Bytes to send on its [`Channel::Post`] socket (polling only; the loop opens the socket
    /// when there are some and it has none).
    pub post: &'a mut BytesMut,
    /// What handshakes taught the loop.
    pub learned: &'a mut Learned,
    /// The largest package, frame or reply accepted.
    pub max_package: usize,
}

/// Why a connection must close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The server kicked it, with this reason.
    Kicked(String),
    /// The handshake or the enter was refused.
    Refused(String),
    /// The server closed it (WebSocket close frame).
    Closed,
    /// The server broke the protocol.
    Protocol(String),
}

impl Fault {
    /// A short description, the key under which failures are counted.
    pub fn describe(&self) -> String {
        match self {
            Fault::Kicked(reason) => format!("kicked: {reason}"),
            Fault::Refused(what) => format!("refused: {what}"),
            Fault::Closed => "closed by server".to_string(),
            Fault::Protocol(what) => format!("protocol: {what}"),
        }
    }
}

/// One connection's protocol state.
#[derive(Debug, Clone)]
pub struct Conn {
    /// Its protocol.
    pub protocol: Protocol,
    /// Its stage.
    pub stage: Stage,
    /// Its counters for the current phase.
    pub tally: Tally,
    /// socket.io 0.9: the sid of the handshake, until the WebSocket upgrade (or the first
    /// poll) takes it.
    pub sid: Option<Box<str>>,
    /// Socket.IO polling: the session's requests, from the first poll on.
    pub polling: Option<Box<Polling>>,
}

impl Conn {
    /// A connection not started yet.
    pub fn new(protocol: Protocol) -> Conn {
        Conn { protocol, stage: Stage::Idle, tally: Tally::default(), sid: None, polling: None }
    }

    /// The TCP connect completed: write the first message.
    pub fn start(&mut self, id: &Identity<'_>, io: &mut Io<'_>) {
        match self.protocol {
            Protocol::PomeloTcp => {
                pomelo::encode_handshake(io.learned.dict_version.as_deref(), io.out);
                self.stage = Stage::Handshaking;
            }
            Protocol::PomeloWs => {
                ws::encode_upgrade(id.host, id.ws_path, io.out);
                self.stage = Stage::Upgrading;
            }
            Protocol::Redis => {
                resp::encode_command(&[b"SUBSCRIBE", id.apikey.as_bytes()], io.out);
                self.stage = Stage::Entering;
            }
            Protocol::Mqtt(opts) => {
                let client_id = format!("{}{}", id.client_prefix, id.client_index);
                let connect = mqtt::Connect {
                    version: opts.version,
                    client_id: &client_id,
                    username: Some(id.apikey),
                    password: None,
                    keep_alive: opts.keep_alive,
                    clean: true,
                    receive_maximum: None,
                };
                mqtt::encode_connect(&connect, io.out);
                self.stage = Stage::Handshaking;
            }
            Protocol::SocketIo(version) => match (version, self.sid.take()) {
                (socketio::Version::V09, None) => {
                    socketio::encode_v09_handshake(id.host, id.ws_path, io.out);
                    self.stage = Stage::Requesting;
                }
                (_, sid) => {
                    let path =
                        socketio::upgrade_path(version, id.ws_path, sid.as_deref().unwrap_or(""));
                    ws::encode_upgrade(id.host, &path, io.out);
                    self.stage = Stage::Upgrading;
                }
            },
            Protocol::SocketIoPolling(version) => self.start_polling(version, id, io),
        }
    }

    /// Appends a heartbeat (Redis: a `PING`; Socket.IO polling: a POST, or a packet queued
    /// behind the POST in flight).
    pub fn heartbeat(&mut self, id: &Identity<'_>, io: &mut Io<'_>) {
        let out = &mut *io.out;
        match self.protocol {
            Protocol::PomeloTcp => pomelo::encode_heartbeat(out),
            Protocol::PomeloWs => {
                ws::encode_client_frame(ws::OP_BINARY, &package::HEARTBEAT, MASK, out);
            }
            Protocol::Redis => out.extend_from_slice(REDIS_PING),
            Protocol::Mqtt(_) => out.extend_from_slice(&mqtt::PINGREQ),
            Protocol::SocketIo(version) => {
                if let Some(ping) = socketio::heartbeat(version) {
                    ws::encode_client_frame(ws::OP_TEXT, ping.as_bytes(), MASK, out);
                }
            }
            Protocol::SocketIoPolling(version) => {
                if let Some(ping) = socketio::heartbeat(version) {
                    self.post_packet(version, Cow::Borrowed(ping), id, io);
                }
            }
        }
    }

    /// Handles every whole unit at the front of `input`; returns the bytes used.
    pub fn receive(
        &mut self,
        input: &[u8],
        id: &Identity<'_>,
        io: &mut Io<'_>,
    ) -> Result<usize, Fault> {
        self.receive_on(Channel::Main, input, id, io)
    }

    /// [`receive`](Self::receive) for bytes from `channel` (only polling clients have a
    /// [`Channel::Post`]).
    pub fn receive_on(
        &mut self,
        channel: Channel,
        input: &[u8],
        id: &Identity<'_>,
        io: &mut Io<'_>,
    ) -> Result<usize, Fault> {
        match self.protocol {
            Protocol::PomeloTcp => {
                let mut used = 0;
                while let Some((pkg, n)) = package::decode(&input[used..], io.max_package)
                    .map_err(|e| Fault::Protocol(e.to_string()))?
                {
                    self.on_package(pkg, id, io)?;
                    used += n;
                }
                Ok(used)
            }
            Protocol::PomeloWs => self.receive_ws(input, id, io),
            Protocol::Redis => self.receive_redis(input, io),
            Protocol::Mqtt(opts) => self.receive_mqtt(opts, input, id, io),
            Protocol::SocketIo(version) => self.receive_sio(version, input, id, io),
            Protocol::SocketIoPolling(version) => {
                self.receive_polling(version, channel, input, id, io)
            }
        }
    }

    fn receive_sio(
        &mut self,
        version: socketio::Version,
        input: &[u8],
        id: &Identity<'_>,
        io: &mut Io<'_>,
    ) -> Result<usize, Fault> {
        let mut used = 0;
        match self.stage {
            Stage::Requesting => return self.v09_handshake(input, "websocket", io),
            // The loop closes this socket before it reads again.
            Stage::Redialing => return Ok(0),
            Stage::Upgrading => {
                match ws::decode_upgrade_answer(input) {
                    Ok(Some(n)) => used = n,
                    Ok(None) => return Ok(0),
                    Err(fault) => {
                        return Err(Fault::Refused(format!("websocket upgrade: {fault:?}")));
                    }
                }
                self.stage = Stage::Handshaking;
            }
            _ => {}
        }
        while let Some((frame, n)) = ws::decode_server_frame(&input[used..], io.max_package)
            .map_err(|e| Fault::Protocol(format!("websocket: {e:?}")))?
        {
            match (frame.opcode, frame.fin) {
                (ws::OP_TEXT, true) => self.on_sio_text(version, frame.payload, id, io)?,
                (ws::OP_PING, _) => {
                    ws::encode_client_frame(ws::OP_PONG, frame.payload, MASK, io.out);
                }
                (ws::OP_PONG, _) => {}
                (ws::OP_CLOSE, _) => return Err(Fault::Closed),
                (opcode, fin) => {
                    return Err(Fault::Protocol(format!(
                        "websocket frame opcode {opcode} fin {fin}"
                    )));
                }
            }
            used += n;
        }
        Ok(used)
    }

    /// socket.io 0.9's handshake answer, which must offer `transport`: the sid for the next
    /// connection (the loop redials).
    fn v09_handshake(
        &mut self,
        input: &[u8],
        transport: &str,
        io: &mut Io<'_>,
    ) -> Result<usize, Fault> {
        match socketio::decode_v09_handshake(input, transport) {
            Ok(Some((handshake, n))) => {
                self.sid = Some(handshake.sid.into());
                if io.learned.poll_wait_secs.is_none() {
                    io.learned.poll_wait_secs = handshake.heartbeat_secs;
                }
                self.stage = Stage::Redialing;
                Ok(n)
            }
            Ok(None) => Ok(0),
            Err(fault) => Err(Fault::Refused(format!("socket.io 0.9 {fault}"))),
        }
    }

    /// One Socket.IO text frame.
    fn on_sio_text(
        &mut self,
        version: socketio::Version,
        payload: &[u8],
        id: &Identity<'_>,
        io: &mut Io<'_>,
    ) -> Result<(), Fault> {
        let packet = socketio::decode_server(version, payload)
            .map_err(|e| Fault::Protocol(format!("socket.io: {e}")))?;
        if let Some(reply) = self.on_sio_packet(version, packet, id, io)? {
            ws::encode_client_frame(ws::OP_TEXT, reply.as_bytes(), MASK, io.out);
        }
        Ok(())
    }

    /// One Socket.IO packet from the server, from a text frame or a poll's answer; returns the
    /// client packet it calls for, if any (`40`, the enter, a pong), for the caller to frame or
    /// post.
    fn on_sio_packet(
        &mut self,
        version: socketio::Version,
        packet: SioServer<'_>,
        id: &Identity<'_>,
        io: &mut Io<'_>,
    ) -> Result<Option<Cow<'static, str>>, Fault> {
        match packet {
            SioServer::Message(message) => {
                if let Some((seq, send_ns)) = stamp::find(message.raw()) {
                    io.book.deliver(&mut self.tally, seq, send_ns, io.now_ns);
                    return Ok(None);
                }
                let text =
                    message.text().map_err(|e| Fault::Protocol(format!("socket.io: {e}")))?;
                match socketio::classify(&text) {
                    PomeloMessage::Response { id: 1, code } if self.stage == Stage::Entering => {
                        if code != Some(200) {
                            return Err(Fault::Refused(format!("enter: {text}")));
                        }
                        self.stage = Stage::Entered;
                    }
                    PomeloMessage::Kick(reason) => return Err(Fault::Kicked(reason)),
                    PomeloMessage::Response { .. } | PomeloMessage::Push | PomeloMessage::Other => {
                    }
                }
            }
            SioServer::Ping("") => return Ok(Some(Cow::Borrowed(socketio::pong(version)))),
            SioServer::Ping(data) => {
                let mut pong = BytesMut::new();
                socketio::encode_pong(version, data, &mut pong);
                return Ok(Some(Cow::Owned(String::from_utf8_lossy(&pong).into_owned())));
            }
            SioServer::Open { ping_interval_ms, ping_timeout_ms, .. }
                if self.stage == Stage::Handshaking =>
            {
                if io.learned.poll_wait_secs.is_none() {
                    let ms = ping_interval_ms.unwrap_or(0) + ping_timeout_ms.unwrap_or(0);
                    io.learned.poll_wait_secs =
                        (ms > 0).then(|| u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX));
                }
                match version {
                    socketio::Version::Eio4 => {
                        return Ok(Some(Cow::Borrowed(socketio::EIO4_CONNECT)));
                    }
                    socketio::Version::Eio3 if io.learned.heartbeat_secs.is_none() => {
                        // The client pings every pingInterval.
                        io.learned.heartbeat_secs = ping_interval_ms
                            .map(|ms| u32::try_from(ms / 1000).unwrap_or(u32::MAX).max(1));
                    }
                    _ => {}
                }
            }
            SioServer::Open { .. } => {
                return Err(Fault::Protocol("socket.io: an unexpected open packet".into()));
            }
            SioServer::Connected if self.stage == Stage::Handshaking => {
                let client_id = format!("{}{}", id.client_prefix, id.client_index);
                let body = pomelo::enter_client_body(id.apikey, &client_id);
                let mut request = BytesMut::new();
                socketio::encode_request(version, 1, pomelo::ENTER, &body, &mut request)
                    .map_err(|e| Fault::Protocol(e.to_string()))?;
                self.stage = Stage::Entering;
                let request = String::from_utf8(request.to_vec())
                    .map_err(|_| Fault::Protocol("a request that is not UTF-8".into()))?;
                return Ok(Some(Cow::Owned(request)));
            }
            SioServer::Error(data) => {
                return Err(Fault::Refused(format!("socket.io error {data}")));
            }
            SioServer::Disconnect => return Err(Fault::Closed),
            SioServer::Connected | SioServer::Pong | SioServer::Other => {}
        }
        Ok(None)
    }

    fn receive_mqtt(
        &mut self,
        opts: MqttOptions,
        input: &[u8],
        id: &Identity<'_>,
        io: &mut Io<'_>,
    ) -> Result<usize, Fault> {
        let mut used = 0;
        while let Some((packet, n)) = mqtt::decode(&input[used..], opts.version, io.max_package)
            .map_err(|e| Fault::Protocol(format!("mqtt: {e:?}")))?
        {
            match packet {
                MqttPacket::Publish { qos, packet_id, payload, .. } => {
                    if let Some((seq, send_ns)) = stamp::find(payload) {
                        io.book.deliver(&mut self.tally, seq, send_ns, io.now_ns);
                    }
                    match qos {
                        0 => {}
                        1 => mqtt::encode_puback(packet_id, io.out),
                        _ => return Err(Fault::Protocol("a QoS 2 PUBLISH".into())),
                    }
                }
                MqttPacket::ConnAck { code, server_keep_alive, .. }
                    if self.stage == Stage::Handshaking =>
                {
                    if code != 0 {
                        return Err(Fault::Refused(format!("CONNACK code 0x{code:02x}")));
                    }
                    if io.learned.heartbeat_secs.is_none() {
                        // PINGREQ at half the keep alive the server holds us to.
                        let keep_alive = server_keep_alive.unwrap_or(opts.keep_alive);
                        io.learned.heartbeat_secs =
                            (keep_alive > 0).then(|| (u32::from(keep_alive) / 2).max(1));
                    }
                    let filter = format!("push/{}", id.apikey);
                    mqtt::encode_subscribe(opts.version, 1, &filter, opts.qos, io.out);
                    self.stage = Stage::Entering;
                }
                MqttPacket::SubAck { packet_id: 1, code } if self.stage == Stage::Entering => {
                    if code >= 0x80 {
                        return Err(Fault::Refused(format!("SUBACK code 0x{code:02x}")));
                    }
                    self.stage = Stage::Entered;
                }
                MqttPacket::ConnAck { .. } | MqttPacket::SubAck { .. } => {
                    return Err(Fault::Protocol(format!("unexpected {packet:?}")));
                }
                MqttPacket::Disconnect { reason } => {
                    return Err(Fault::Kicked(format!("DISCONNECT 0x{reason:02x}")));
                }
                MqttPacket::PingResp | MqttPacket::PubAck { .. } | MqttPacket::Other(_) => {}
            }
            used += n;
        }
        Ok(used)
    }

    fn receive_ws(
        &mut self,
        input: &[u8],
        id: &Identity<'_>,
        io: &mut Io<'_>,
    ) -> Result<usize, Fault> {
        let mut used = 0;
        if self.stage == Stage::Upgrading {
            match ws::decode_upgrade_answer(input) {
                Ok(Some(n)) => used = n,
                Ok(None) => return Ok(0),
                Err(fault) => return Err(Fault::Refused(format!("websocket upgrade: {fault:?}"))),
            }
            let mut hello = BytesMut::new();
            pomelo::encode_handshake(io.learned.dict_version.as_deref(), &mut hello);
            ws::encode_client_frame(ws::OP_BINARY, &hello, MASK, io.out);
            self.stage = Stage::Handshaking;
        }
        while let Some((frame, n)) = ws::decode_server_frame(&input[used..], io.max_package)
            .map_err(|e| Fault::Protocol(format!("websocket: {e:?}")))?
        {
            match (frame.opcode, frame.fin) {
                (ws::OP_BINARY, true) => {
                    let mut at = 0;
                    while let Some((pkg, n)) = package::decode(&frame.payload[at..], io.max_package)
                        .map_err(|e| Fault::Protocol(e.to_string()))?
                    {
                        self.on_package(pkg, id, io)?;
                        at += n;
                    }
                    if at != frame.payload.len() {
                        return Err(Fault::Protocol("package split across frames".into()));
                    }
                }
                (ws::OP_PING, _) => {
                    ws::encode_client_frame(ws::OP_PONG, frame.payload, MASK, io.out);
                }
                (ws::OP_PONG, _) => {}
                (ws::OP_CLOSE, _) => return Err(Fault::Closed),
                (opcode, fin) => {
                    return Err(Fault::Protocol(format!(
                        "websocket frame opcode {opcode} fin {fin}"
                    )));
                }
            }
            used += n;
        }
        Ok(used)
    }

    fn receive_redis(&mut self, input: &[u8], io: &mut Io<'_>) -> Result<usize, Fault> {
        let mut used = 0;
        while let Some((reply, n)) = resp::decode(&input[used..], io.max_package)
            .map_err(|e| Fault::Protocol(format!("resp: {e:?}")))?
        {
            match reply.items() {
                [Item::Bulk(Some(b"message")), _, Item::Bulk(Some(payload))] => {
                    if let Some((seq, send_ns)) = stamp::find(payload) {
                        io.book.deliver(&mut self.tally, seq, send_ns, io.now_ns);
                    }
                }
                [Item::Bulk(Some(b"subscribe")), ..] if self.stage == Stage::Entering => {
                    self.stage = Stage::Entered;
                }
                [Item::Error(e)] => {
                    return Err(Fault::Refused(String::from_utf8_lossy(e).into_owned()));
                }
                _ => {}
            }
            used += n;
        }
        Ok(used)
    }

    fn on_package(
        &mut self,
        pkg: Package<'_>,
        id: &Identity<'_>,
        io: &mut Io<'_>,
    ) -> Result<(), Fault> {
        match pkg.kind {
            PackageType::Data => {
                let msg = message::decode(pkg.body).map_err(|e| Fault::Protocol(e.to_string()))?;
                match msg.kind {
                    MessageType::Push => {
                        if let Some((seq, send_ns)) = stamp::find(msg.body) {
                            io.book.deliver(&mut self.tally, seq, send_ns, io.now_ns);
                        }
                    }
                    MessageType::Response if msg.id == 1 && self.stage == Stage::Entering => {
                        match pomelo::json_number(msg.body, "code") {
                            Some(200) => self.stage = Stage::Entered,
                            _ => {
                                return Err(Fault::Refused(format!(
                                    "enter: {}",
                                    String::from_utf8_lossy(msg.body)
                                )));
                            }
                        }
                    }
                    _ => {}
                }
            }
            PackageType::Heartbeat | PackageType::HandshakeAck => {}
            PackageType::Handshake if self.stage == Stage::Handshaking => {
                let answer = handshake::decode_response(pkg.body)
                    .map_err(|e| Fault::Protocol(e.to_string()))?;
                if answer.code != 200 {
                    return Err(Fault::Refused(format!("handshake code {}", answer.code)));
                }
                if io.learned.dict_version.is_none() {
                    io.learned.dict_version = answer.dict_version;
                }
                if io.learned.heartbeat_secs.is_none() {
                    io.learned.heartbeat_secs = answer.heartbeat;
                }
                let client_id = format!("{}{}", id.client_prefix, id.client_index);
                let body = pomelo::enter_client_body(id.apikey, &client_id);
                self.send_packages(io.out, |out| {
                    pomelo::encode_ack(out);
                    pomelo::encode_request(1, pomelo::ENTER, body.as_bytes(), out)
                        .map_err(|e| Fault::Protocol(e.to_string()))
                })?;
                self.stage = Stage::Entering;
            }
            PackageType::Handshake => {
                return Err(Fault::Protocol("unexpected handshake".into()));
            }
            PackageType::Kick => {
                let reason = kick::decode(pkg.body).ok().flatten();
                return Err(Fault::Kicked(reason.unwrap_or_else(|| "kick".into())));
            }
        }
        Ok(())
    }

    /// Writes packages, each in its own binary frame over WebSocket.
    fn send_packages(
        &self,
        out: &mut BytesMut,
        write: impl FnOnce(&mut BytesMut) -> Result<(), Fault>,
    ) -> Result<(), Fault> {
        if self.protocol != Protocol::PomeloWs {
            return write(out);
        }
        let mut packages = BytesMut::new();
        write(&mut packages)?;
        let mut at = 0;
        while let Some((_, n)) = package::decode(&packages[at..], usize::MAX)
            .map_err(|e| Fault::Protocol(e.to_string()))?
        {
            ws::encode_client_frame(ws::OP_BINARY, &packages[at..at + n], MASK, out);
            at += n;
        }
        Ok(())
    }
}

pub mod polling;
#[cfg(test)]
mod polling_tests;
#[cfg(test)]
mod tests;

pub use polling::Polling;

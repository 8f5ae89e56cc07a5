//! HTTP long-polling, sans-IO: what a polling request asks for ([`PollRequest`]), what a core
//! keeps while polls wait ([`SioConns`]), and the responses' bytes.
//!
//! ```text
//! EIO:  GET  {path}/?EIO=3|4&transport=polling          -> a new session: its open packet
//!       GET  {path}/?EIO=3|4&transport=polling&sid=S    -> the session's pending packets, or
//!                                                          wait until it has some
//!       POST {path}/?EIO=3|4&transport=polling&sid=S    -> its packets to the session; "ok"
//! 0.9:  GET  {path}/1/xhr-polling/{sid}                 -> the first opens the session ("1::")
//!       POST {path}/1/xhr-polling/{sid}                 -> "1"
//! ```
//!
//! A polling session lives on the core that opened it, in a connection slot without a socket
//! (its sid names that slot: [`SidKey`](super::SidKey)); a request on another core's
//! connection is handed, connection and all, to the session's core (`Flow::Move`), as
//! @socket.io/sticky hands a socket to the worker that owns the session. So everything a poll
//! does happens on one core, in order: the reactor serves the request ([`PollRequest`]) against
//! the session's slot.
//!
//! # Invariants
//! - A session has at most one waiting poll ([`SioConns::waiting`]); a second is refused
//!   (Engine.IO's `400 {"code":3}`) and closes its own connection, and the first waits on
//!   (Engine.IO also ends the session: nothing is gained by losing what it has pending).
//! - A response takes everything the session has pending, at once; what a session has pending
//!   is bounded by `max_pending_bytes` (a slow consumer is kicked, as over a socket).
//! - Entries here are dropped by their owner's leave: a carrier's wait, an upgrading
//!   WebSocket's link, a 0.9 session's token.

use std::collections::HashMap;

use bytes::BytesMut;

use super::SioVersion;
use crate::ids::ConnId;
use crate::protocol::http::{self, Response};
use crate::protocol::socketio::engineio::{self, HttpErrorCode, PacketType};
use crate::protocol::socketio::v09::{self, V09Advice, V09ErrorReason};

/// The content type of every polling body: text payloads only.
pub const PAYLOAD_TYPE: &str = "text/plain; charset=UTF-8";

/// A polling request, for the reactor to serve against a session of its core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollRequest {
    pub session: PollSession,
    /// A POST's body; `None` for a GET.
    pub body: Option<Vec<u8>>,
    /// The answer keeps the connection open for the next request.
    pub keep_alive: bool,
    /// An allowed `Origin` to answer with CORS headers.
    pub origin: Option<Box<str>>,
}

/// Which session a polling request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollSession {
    /// A new Engine.IO session (a handshake).
    Open(SioVersion),
    /// An Engine.IO session by its sid (the session's slot on this core).
    Eio { version: SioVersion, sid: ConnId },
    /// A socket.io 0.9 session by its handshake's token; `fresh`: the handshake is recent
    /// enough to open the session if it does not exist yet.
    V09 { token: ConnId, fresh: bool },
}

/// A session a polling request names, once found.
pub type PollTarget = ConnId;

/// What a Socket.IO session asks of its reactor beyond its own connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SioAction {
    /// The WebSocket `ws` answered its probe: the session it takes over answers a waiting
    /// poll with a noop, so the client can pause polling.
    Probed { ws: ConnId },
    /// The client sent the upgrade packet on `ws`: the session moves onto it.
    Upgrade { ws: ConnId },
}

/// A poll waiting for its session's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// The connection that carried the poll.
    pub carrier: ConnId,
    pub keep_alive: bool,
    pub origin: Option<Box<str>>,
}

/// What one core's Socket.IO sessions keep off their slots, only while they need it.
#[derive(Debug, Default)]
pub struct SioConns {
    /// Waiting polls, by their session's slab index.
    pub waiting: HashMap<u32, Waiting>,
    /// The polling session each upgrading WebSocket takes over, by the WebSocket's slab index.
    pub upgrades: HashMap<u32, ConnId>,
    /// Polling sessions whose WebSocket answered its probe (every poll is answered at once
    /// until the upgrade), with that WebSocket's slab index.
    pub upgrading: HashMap<u32, u32>,
    /// socket.io 0.9 polling sessions, by their handshake's token.
    pub v09: HashMap<ConnId, ConnId>,
    /// What sessions asked during the last input, for the reactor.
    pub actions: Vec<SioAction>,
    /// Polling sessions that went on as a WebSocket, with that WebSocket and the second until
    /// which commands still on their way to the session (a push to it, a kick) go to it.
    pub upgraded: Vec<(ConnId, ConnId, u32)>,
    /// Numbers 0.9 handshakes on this core, so that each gets its own token.
    next_token: u32,
}

/// How long commands for an upgraded polling session are passed on to its WebSocket: they
/// were sent before the upgrade, so they are at most a moment late.
pub const UPGRADED_FORWARD_SECS: u32 = 5;

impl SioConns {
    /// The WebSocket an upgraded polling session `conn` went on as, if it did lately.
    pub fn upgraded_to(&self, conn: ConnId) -> Option<ConnId> {
        self.upgraded.iter().find(|(from, _, _)| *from == conn).map(|&(_, to, _)| to)
    }

    /// Notes that `from` went on as `to` at `now`, forgetting what is past forwarding.
    pub fn note_upgrade(&mut self, from: ConnId, to: ConnId, now: u32) {
        self.upgraded.retain(|&(_, _, until)| until >= now);
        self.upgraded.push((from, to, now + UPGRADED_FORWARD_SECS));
    }

    /// A token for a 0.9 handshake on `core`: a sid that names the core and no two handshakes.
    pub fn next_token(&mut self, core: usize) -> ConnId {
        self.next_token = self.next_token.wrapping_add(1);
        ConnId::new(core, self.next_token as usize, 0)
    }
}

/// The head of a poll's answer: 200, a text payload of `body_len` bytes.
pub fn encode_answer_head(
    body_len: usize,
    origin: Option<&str>,
    keep_alive: bool,
    out: &mut BytesMut,
) {
    let cors = cors_headers(origin);
    let response =
        Response { status: 200, content_type: PAYLOAD_TYPE, headers: cors.as_slice(), body: &[] };
    http::encode_head(&response, body_len, keep_alive, out);
}

/// The CORS headers that let an XHR from `origin` (an allowed one) read the answer, cookies
/// and all; none without an `Origin`.
pub fn cors_headers(origin: Option<&str>) -> Vec<(&'static str, &str)> {
    match origin {
        Some(origin) => vec![
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Credentials", "true"),
        ],
        None => Vec::new(),
    }
}

/// A whole 200 answer with `body`.
pub fn encode_answer(body: &[u8], origin: Option<&str>, keep_alive: bool, out: &mut BytesMut) {
    encode_answer_head(body.len(), origin, keep_alive, out);
    out.extend_from_slice(body);
}

/// The answer to a POST the session took: Engine.IO's `ok`, 0.9's `1`.
pub fn encode_post_answer(
    version: SioVersion,
    origin: Option<&str>,
    keep_alive: bool,
    out: &mut BytesMut,
) {
    let body: &[u8] = if version == SioVersion::V09 { b"1" } else { b"ok" };
    encode_answer(body, origin, keep_alive, out);
}

/// A GET's answer when its session has nothing to say but must answer (the WebSocket probe
/// succeeded, the session moved): Engine.IO's noop, 0.9's noop.
pub fn encode_noop_answer(
    version: SioVersion,
    origin: Option<&str>,
    keep_alive: bool,
    out: &mut BytesMut,
) {
    let mut body = BytesMut::new();
    match version.eio() {
        Some(eio) => {
            let mut noop = BytesMut::new();
            engineio::encode_packet(PacketType::Noop, "", &mut noop);
            let noop = std::str::from_utf8(&noop).unwrap_or_default();
            engineio::encode_payload(eio, [noop], &mut body);
        }
        None => v09::encode(v09::V09Type::Noop, "", "", &mut body),
    }
    encode_answer(&body, origin, keep_alive, out);
}

/// The refusal of a request for a session that does not exist (any more): Engine.IO's 400
/// `Session ID unknown`; socket.io 0.9's error packet telling the client to handshake again.
pub fn encode_unknown_session(version: SioVersion, origin: Option<&str>, out: &mut BytesMut) {
    match version.eio() {
        Some(_) => encode_eio_refusal(HttpErrorCode::SessionIdUnknown, out),
        None => {
            let mut body = BytesMut::new();
            let reason = V09ErrorReason::ClientNotHandshaken;
            v09::encode_error(reason, Some(V09Advice::Reconnect), &mut body);
            encode_answer(&body, origin, false, out);
        }
    }
}

/// Engine.IO's refusal: a 400 (403 for `Forbidden`) with its JSON error body; the connection
/// closes after it.
pub fn encode_eio_refusal(code: HttpErrorCode, out: &mut BytesMut) {
    let mut body = BytesMut::new();
    code.encode_body(&mut body);
    let status = if code == HttpErrorCode::Forbidden { 403 } else { 400 };
    let response = Response { status, content_type: "application/json", headers: &[], body: &body };
    http::encode_response(&response, out);
}

/// How many leading bytes of a session's pending output its answer leaves out (EIO 4's first
/// record separator).
pub fn body_skip(version: SioVersion) -> usize {
    version.eio().map_or(0, engineio::payload_body_skip)
}

/// Splits a session's pending output (elements of its version's payload; `byte_strings`:
/// engine.io 1.x's) back into packets, for the WebSocket that takes the session over.
pub fn pending_packets(version: SioVersion, byte_strings: bool, pending: &[u8]) -> Vec<String> {
    let skip = body_skip(version).min(pending.len());
    let body = &pending[skip..];
    if body.is_empty() {
        return Vec::new();
    }
    let texts: Vec<String> = match version.eio() {
        Some(eio) => match engineio::decode_payload(eio, body, usize::MAX) {
            Ok(packets) => packets
                .iter()
                .map(|p| {
                    let data = match byte_strings {
                        true => engineio::from_byte_string(p.data).unwrap_or_default(),
                        false => p.data.to_owned(),
                    };
                    let mut text = BytesMut::new();
                    engineio::encode_packet(p.kind, &data, &mut text);
                    String::from_utf8_lossy(&text).into_owned()
                })
                .collect(),
            Err(_) => Vec::new(),
        },
        None => match std::str::from_utf8(body).map(|t| v09::decode_frames(t, usize::MAX)) {
            Ok(Ok(packets)) => packets.into_iter().map(str::to_owned).collect(),
            _ => Vec::new(),
        },
    };
    texts
}

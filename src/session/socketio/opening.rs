//! The first request of a Socket.IO connection, at the configured path (`/socket.io`):
//!
//! ```text
//! GET {path}/1/                        socket.io 0.9 handshake: 200 "sid:45:60:websocket"
//! GET {path}/1/websocket/{sid}         0.9 WebSocket: 101, "1::"        (unknown sid: "7:::1+0")
//! GET {path}/?EIO=3&transport=websocket  101, open packet, "40"
//! GET {path}/?EIO=4&transport=websocket  101, open packet; the client's "40" connects
//! ```
//!
//! # Invariants
//! - Every refusal is a whole HTTP response and the connection closes after it: Engine.IO's
//!   `400 {"code":N,"message":...}` (unknown transport, unknown session, bad request,
//!   unsupported version), a WebSocket upgrade's own refusal, or a short text for 0.9.
//! - A 0.9 handshake is answered on its own connection, which then closes; its sid is signed
//!   ([`SidKey`](super::SidKey)), so the WebSocket that shows it back may land on any core.
//! - Origins are checked as for every WebSocket (`client.allowed_origins`), and the 0.9
//!   handshake, an XHR, answers only an allowed `Origin` with CORS headers.

use bytes::BytesMut;

use super::{SioSession, SioVersion};
use crate::protocol::http::{self, RequestHead, Response};
use crate::protocol::socketio::engineio::{self, EioVersion, HttpErrorCode, Open};
use crate::protocol::socketio::packet;
use crate::protocol::socketio::v09::{self, V09ErrorReason, V09Type};
use crate::protocol::websocket::frame::{self as ws, OpCode};
use crate::protocol::websocket::upgrade::{self, UpgradeError};
use crate::session::transport::MAX_REQUEST_HEAD;
use crate::session::{Context, Flow, Session};

/// How long a 0.9 handshake's sid may wait for its WebSocket, seconds (socket.io 0.9's close
/// timeout, which the handshake states).
pub const V09_CLOSE_TIMEOUT_SECS: u32 = 60;

/// What the first request did.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    /// The head is not complete yet.
    NeedMore,
    /// A WebSocket opened: the session is set, the head took this many bytes.
    Upgraded(usize),
    /// Answered (or refused) in `transmit`: the connection ends as the flow says.
    Answered(Flow),
}

/// Handles the first request, whose path [`SocketIoSettings::claims`](super::SocketIoSettings::claims).
pub fn open(session: &mut Session, buf: &[u8], cx: &mut Context<'_>) -> Opened {
    let head = match http::decode_head(buf, MAX_REQUEST_HEAD) {
        Ok(Some(head)) => head,
        Ok(None) => return Opened::NeedMore,
        Err(e) => return answer_text(e.status(), &e.to_string(), cx),
    };
    let rest = head.path.strip_prefix(cx.settings.socketio.path.as_str()).unwrap_or("");
    match rest.strip_prefix("/1") {
        Some("" | "/") => v09_handshake(&head, cx),
        Some(transport) => v09_transport(session, transport, buf, cx),
        None => engine_io(session, &head, rest, buf, cx),
    }
}

/// `GET {path}/1/`: a sid, the heartbeat and close timeouts, the transports offered.
fn v09_handshake(head: &RequestHead<'_>, cx: &mut Context<'_>) -> Opened {
    if head.method != "GET" && head.method != "POST" {
        return answer_text(405, "a socket.io handshake is a GET", cx);
    }
    let origin = head.header("Origin").and_then(|o| std::str::from_utf8(o).ok());
    let allowed = &cx.settings.allowed_origins;
    if let Some(origin) = origin
        && !allowed.is_empty()
        && !allowed.iter().any(|a| a.eq_ignore_ascii_case(origin))
    {
        return answer_text(403, "origin not allowed", cx);
    }
    let sio = &cx.settings.socketio;
    let sid = sio.sid_key.issue(cx.me, cx.now.secs);
    let mut body = BytesMut::new();
    v09::encode_handshake(
        &sid,
        sio.v09_heartbeat_timeout_secs(),
        V09_CLOSE_TIMEOUT_SECS,
        &["websocket"],
        &mut body,
    );
    let cors;
    let headers: &[(&str, &str)] = match origin {
        Some(origin) => {
            cors = [
                ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Allow-Credentials", "true"),
            ];
            &cors
        }
        None => &[],
    };
    let response = Response { status: 200, content_type: "text/plain", headers, body: &body };
    http::encode_response(&response, cx.transmit);
    Opened::Answered(Flow::Close)
}

/// `GET {path}/1/{transport}/{sid}`: only `websocket` is served.
fn v09_transport(session: &mut Session, rest: &str, buf: &[u8], cx: &mut Context<'_>) -> Opened {
    let mut parts = rest.trim_start_matches('/').splitn(2, '/');
    let (transport, sid) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if transport != "websocket" {
        return answer_text(400, "transport not supported", cx);
    }
    let (key, used) = match accept(buf, cx) {
        Ok(accepted) => accepted,
        Err(opened) => return opened,
    };
    upgrade::encode_accept(&key, None, cx.transmit);
    let sio = &cx.settings.socketio;
    let mut packet = BytesMut::new();
    let sid = sid.trim_end_matches('/');
    if !sio.sid_key.verify(sid, cx.now.secs, V09_CLOSE_TIMEOUT_SECS) {
        // What the 0.9 server says to a sid it does not know: reconnect (a new handshake).
        v09::encode_error(
            V09ErrorReason::ClientNotHandshaken,
            Some(v09::V09Advice::Reconnect),
            &mut packet,
        );
        ws::encode_frame(OpCode::Text, &packet, cx.transmit);
        ws::encode_close(1000, "", cx.transmit);
        return Opened::Answered(Flow::Close);
    }
    v09::encode(V09Type::Connect, "", "", &mut packet);
    ws::encode_frame(OpCode::Text, &packet, cx.transmit);
    *session = Session::SocketIo(SioSession::on_websocket(SioVersion::V09, cx.now.secs));
    Opened::Upgraded(used)
}

/// `GET {path}/?EIO=3|4&transport=websocket`.
fn engine_io(
    session: &mut Session,
    head: &RequestHead<'_>,
    rest: &str,
    buf: &[u8],
    cx: &mut Context<'_>,
) -> Opened {
    if !rest.is_empty() && rest != "/" {
        return answer_text(404, "not found", cx);
    }
    let (version, eio) = match head.query_param("EIO") {
        Some("3") => (SioVersion::Eio3, EioVersion::V3),
        Some("4") => (SioVersion::Eio4, EioVersion::V4),
        _ => return answer_eio(HttpErrorCode::UnsupportedProtocolVersion, cx),
    };
    match head.query_param("transport") {
        Some("websocket") => {}
        // Long-polling is not served yet: clients that can, use WebSocket.
        _ => return answer_eio(HttpErrorCode::TransportUnknown, cx),
    }
    if head.query_param("sid").is_some() {
        // An upgrade of a polling session: there are none to upgrade.
        return answer_eio(HttpErrorCode::SessionIdUnknown, cx);
    }
    if head.method != "GET" {
        return answer_eio(HttpErrorCode::BadHandshakeMethod, cx);
    }
    if !head.is_upgrade() {
        return answer_eio(HttpErrorCode::BadRequest, cx);
    }
    let (key, used) = match accept(buf, cx) {
        Ok(accepted) => accepted,
        Err(opened) => return opened,
    };
    upgrade::encode_accept(&key, None, cx.transmit);
    let settings = cx.settings;
    let sio = &settings.socketio;
    let sid = sio.sid_key.issue(cx.me, cx.now.secs);
    let open = Open {
        sid: &sid,
        upgrades: &[],
        ping_interval_ms: sio.ping_interval_secs * 1000,
        ping_timeout_ms: sio.ping_timeout_secs * 1000,
        max_payload: u32::try_from(settings.max_package_bytes).unwrap_or(u32::MAX),
    };
    let mut packet = BytesMut::new();
    engineio::encode_open(eio, &open, &mut packet);
    ws::encode_frame(OpCode::Text, &packet, cx.transmit);
    if version == SioVersion::Eio3 {
        // socket.io 2.x servers connect the default namespace unasked.
        packet.clear();
        packet::encode_connect(EioVersion::V3, None, &mut packet);
        ws::encode_frame(OpCode::Text, &packet, cx.transmit);
    }
    *session = Session::SocketIo(SioSession::on_websocket(version, cx.now.secs));
    Opened::Upgraded(used)
}

/// The WebSocket checks of an upgrade request: its key and head length, or the refusal.
fn accept(buf: &[u8], cx: &mut Context<'_>) -> Result<(String, usize), Opened> {
    let refuse = |e: &UpgradeError, cx: &mut Context<'_>| {
        tracing::debug!(conn = ?cx.me, error = %e, "Socket.IO WebSocket upgrade refused");
        upgrade::encode_rejection(e, cx.transmit);
        Opened::Answered(Flow::Close)
    };
    match upgrade::decode_request(buf, MAX_REQUEST_HEAD) {
        Ok(Some((request, used))) => {
            match upgrade::check_origin(&request, &cx.settings.allowed_origins) {
                Ok(()) => Ok((request.key.to_owned(), used)),
                Err(e) => Err(refuse(&e, cx)),
            }
        }
        Ok(None) => Err(Opened::NeedMore),
        Err(e) => Err(refuse(&e, cx)),
    }
}

/// Engine.IO's refusal: a 400 (403 for `Forbidden`) with its JSON error body.
fn answer_eio(code: HttpErrorCode, cx: &mut Context<'_>) -> Opened {
    tracing::debug!(conn = ?cx.me, message = code.message(), "Engine.IO request refused");
    let mut body = BytesMut::new();
    code.encode_body(&mut body);
    let status = if code == HttpErrorCode::Forbidden { 403 } else { 400 };
    let response = Response { status, content_type: "application/json", headers: &[], body: &body };
    http::encode_response(&response, cx.transmit);
    Opened::Answered(Flow::Close)
}

/// A short text answer.
fn answer_text(status: u16, text: &str, cx: &mut Context<'_>) -> Opened {
    tracing::debug!(conn = ?cx.me, status, text, "Socket.IO request refused");
    let body = format!("{text}\n");
    let response = Response {
        status,
        content_type: "text/plain; charset=utf-8",
        headers: &[],
        body: body.as_bytes(),
    };
    http::encode_response(&response, cx.transmit);
    Opened::Answered(Flow::Close)
}

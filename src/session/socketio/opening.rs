//! The first request of a Socket.IO connection, at the configured path (`/socket.io`):
//!
//! ```text
//! GET {path}/1/                        socket.io 0.9 handshake: 200 "sid:45:60:websocket,xhr-polling"
//! GET {path}/1/websocket/{sid}         0.9 WebSocket: 101, "1::"        (unknown sid: "7:::1+0")
//! GET|POST {path}/1/xhr-polling/{sid}  0.9 polling (`polling.rs`)
//! GET {path}/?EIO=3&transport=websocket  101, open packet, "40"
//! GET {path}/?EIO=4&transport=websocket  101, open packet; the client's "40" connects
//! GET {path}/?EIO=3|4&transport=websocket&sid=S   101; takes over polling session S
//! GET|POST {path}/?EIO=3|4&transport=polling[&sid=S]   polling (`polling.rs`)
//! ```
//!
//! A request for a session of another core (its sid names the core) is not answered here:
//! the connection moves to that core ([`Opened::Move`]) and is opened there.
//!
//! # Invariants
//! - Every refusal is a whole HTTP response and the connection closes after it: Engine.IO's
//!   `400 {"code":N,"message":...}` (unknown transport, unknown session, bad request,
//!   unsupported version), a WebSocket upgrade's own refusal, or a short text for 0.9.
//! - A 0.9 handshake is answered on its own connection, which then closes; its sid is signed
//!   ([`SidKey`](super::SidKey)), so the WebSocket that shows it back may land on any core.
//! - Origins are checked as for every WebSocket (`client.allowed_origins`), and the 0.9
//!   handshake and polling requests, XHRs, answer an allowed `Origin` with CORS headers.
//! - A POST's body is taken whole, and only up to `max_package_bytes`.

use bytes::BytesMut;

use super::polling::{self, PollRequest, PollSession};
use super::{Carrier, SioSession, SioVersion};
use crate::protocol::http::{self, RequestHead, Response};
use crate::protocol::socketio::engineio::{EioVersion, HttpErrorCode};
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
    /// A polling request of `usize` bytes (head and body), for the reactor to serve; the
    /// connection is a carrier now.
    Poll(Box<PollRequest>, usize),
    /// The request is for a session of another core: the connection goes there, unread.
    Move(usize),
}

/// Handles the first request, whose path [`SocketIoSettings::claims`](super::SocketIoSettings::claims).
pub fn open(session: &mut Session, buf: &[u8], cx: &mut Context<'_>) -> Opened {
    let head = match http::decode_head(buf, MAX_REQUEST_HEAD) {
        Ok(Some(head)) => head,
        Ok(None) => return Opened::NeedMore,
        Err(e) => return answer_text(e.status(), &e.to_string(), cx),
    };
    let rest = head.path.strip_prefix(cx.settings.socketio.path.as_str()).unwrap_or("");
    let origin = match allowed_origin(&head, cx) {
        Ok(origin) => origin,
        Err(()) => return answer_text(403, "origin not allowed", cx),
    };
    match rest.strip_prefix("/1") {
        Some("" | "/") => v09_handshake(origin, cx),
        Some(transport) => v09_transport(session, &head, transport, origin, buf, cx),
        None => engine_io(session, &head, rest, origin, buf, cx),
    }
}

/// The request's `Origin`, if it has one and it is allowed (`Err` if it is not).
fn allowed_origin<'a>(head: &RequestHead<'a>, cx: &Context<'_>) -> Result<Option<&'a str>, ()> {
    let origin = head.header("Origin").and_then(|o| std::str::from_utf8(o).ok());
    let allowed = &cx.settings.allowed_origins;
    match origin {
        Some(origin)
            if !allowed.is_empty() && !allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) =>
        {
            Err(())
        }
        origin => Ok(origin),
    }
}

/// A polling request for `target`: a GET, or a POST with its whole body.
fn poll(
    session: &mut Session,
    head: &RequestHead<'_>,
    target: PollSession,
    origin: Option<&str>,
    buf: &[u8],
    cx: &mut Context<'_>,
) -> Opened {
    let (body, used) = match head.method {
        "GET" if head.query_param("disconnect").is_some() => (Some(b"0::".to_vec()), head.len),
        "GET" => (None, head.len),
        "POST" => {
            let Some(len) = head.content_length() else {
                return answer_text(411, "a polling POST needs a Content-Length", cx);
            };
            if len > cx.settings.max_package_bytes {
                return answer_text(413, "payload too large", cx);
            }
            let Some(body) = buf.get(head.len..head.len + len) else { return Opened::NeedMore };
            (Some(body.to_vec()), head.len + len)
        }
        _ => return answer_text(405, "a poll is a GET or a POST", cx),
    };
    if let Session::Opening { .. } = session {
        *session = Session::Carrier(Carrier::new(cx.now.secs));
    }
    if let (PollSession::Open(_), Session::Carrier(carrier)) = (target, &mut *session)
        && !carrier.open_session()
    {
        return answer_text(429, "too many sessions opened on one connection", cx);
    }
    let request = PollRequest {
        session: target,
        body,
        keep_alive: head.keep_alive(),
        origin: origin.map(Box::from),
    };
    Opened::Poll(Box::new(request), used)
}

/// `GET {path}/1/`: a sid, the heartbeat and close timeouts, the transports offered. The sid
/// names this core and a token of its own, so that its polling session is found here.
fn v09_handshake(origin: Option<&str>, cx: &mut Context<'_>) -> Opened {
    let sio = &cx.settings.socketio;
    let token = cx.per_core.socketio.next_token(cx.me.core());
    let sid = sio.sid_key.issue(token, cx.now.secs);
    let mut body = BytesMut::new();
    v09::encode_handshake(
        &sid,
        sio.v09_heartbeat_timeout_secs(),
        V09_CLOSE_TIMEOUT_SECS,
        &["websocket", "xhr-polling"],
        &mut body,
    );
    let cors = polling::cors_headers(origin);
    let response =
        Response { status: 200, content_type: "text/plain", headers: cors.as_slice(), body: &body };
    http::encode_response(&response, cx.transmit);
    Opened::Answered(Flow::Close)
}

/// `GET {path}/1/{transport}/{sid}`: `websocket` and `xhr-polling` are served.
fn v09_transport(
    session: &mut Session,
    head: &RequestHead<'_>,
    rest: &str,
    origin: Option<&str>,
    buf: &[u8],
    cx: &mut Context<'_>,
) -> Opened {
    let mut parts = rest.trim_start_matches('/').splitn(2, '/');
    let (transport, sid) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if transport == "xhr-polling" {
        let sid = sid.trim_end_matches('/');
        let Some((issued, token)) = cx.settings.socketio.sid_key.open(sid) else {
            polling::encode_unknown_session(SioVersion::V09, origin, cx.transmit);
            return Opened::Answered(Flow::Close);
        };
        if token.core() != cx.me.core() {
            return Opened::Move(token.core());
        }
        let fresh = issued <= cx.now.secs && cx.now.secs - issued <= V09_CLOSE_TIMEOUT_SECS;
        return poll(session, head, PollSession::V09 { token, fresh }, origin, buf, cx);
    }
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

/// `{path}/?EIO=3|4&transport=websocket|polling[&sid=S]`.
fn engine_io(
    session: &mut Session,
    head: &RequestHead<'_>,
    rest: &str,
    origin: Option<&str>,
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
    let polling = match head.query_param("transport") {
        Some("websocket") => false,
        // JSONP polling (`j=`) is not served: XHR polling and WebSocket are.
        Some("polling") if head.query_param("j").is_none() => true,
        _ => return answer_eio(HttpErrorCode::TransportUnknown, cx),
    };
    let sid = match head.query_param("sid") {
        None => None,
        Some(sid) => match cx.settings.socketio.sid_key.open(sid) {
            Some((_, sid)) if sid.core() != cx.me.core() => return Opened::Move(sid.core()),
            Some((_, sid)) => Some(sid),
            None => return answer_eio(HttpErrorCode::SessionIdUnknown, cx),
        },
    };
    match (polling, sid) {
        (true, Some(sid)) => {
            poll(session, head, PollSession::Eio { version, sid }, origin, buf, cx)
        }
        (true, None) if head.method != "GET" => answer_eio(HttpErrorCode::BadHandshakeMethod, cx),
        (true, None) => poll(session, head, PollSession::Open(version), origin, buf, cx),
        (false, sid) => websocket(session, head, version, eio, sid, buf, cx),
    }
}

/// An Engine.IO WebSocket: a new session, or (`sid`) the upgrade of a polling session.
fn websocket(
    session: &mut Session,
    head: &RequestHead<'_>,
    version: SioVersion,
    eio: EioVersion,
    sid: Option<crate::ids::ConnId>,
    buf: &[u8],
    cx: &mut Context<'_>,
) -> Opened {
    if head.method != "GET" {
        return answer_eio(HttpErrorCode::BadHandshakeMethod, cx);
    }
    if !head.is_upgrade() {
        return answer_eio(HttpErrorCode::BadRequest, cx);
    }
    if !matches!(session, Session::Opening { .. } | Session::Carrier(_)) {
        return answer_eio(HttpErrorCode::BadRequest, cx);
    }
    let (key, used) = match accept(buf, cx) {
        Ok(accepted) => accepted,
        Err(opened) => return opened,
    };
    upgrade::encode_accept(&key, None, cx.transmit);
    if let Some(sid) = sid {
        // The probe and the upgrade packet come next (`message.rs`); the reactor checks that
        // the session is there when they do.
        cx.per_core.socketio.upgrades.insert(cx.me.index() as u32, sid);
        *session = Session::SocketIo(SioSession::on_upgrade(version, cx.now.secs));
        return Opened::Upgraded(used);
    }
    let sid = cx.settings.socketio.sid_key.issue(cx.me, cx.now.secs);
    let mut packet = BytesMut::new();
    super::encode_open_packet(eio, &sid, &[], cx.settings, &mut packet);
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
        tracing::debug!(conn = %cx.me, error = %e, "Socket.IO WebSocket upgrade refused");
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
    tracing::debug!(conn = %cx.me, message = code.message(), "Engine.IO request refused");
    polling::encode_eio_refusal(code, cx.transmit);
    Opened::Answered(Flow::Close)
}

/// A short text answer; the connection closes after it.
pub fn answer_text(status: u16, text: &str, cx: &mut Context<'_>) -> Opened {
    tracing::debug!(conn = %cx.me, status, text, "Socket.IO request refused");
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

//! A connection's input, sans-IO: the choice of transport and frontend on the first bytes, the
//! WebSocket upgrade and frames, and the frontend's packages inside them.
//!
//! ```text
//! Opening --"GET / HTTP/1.1 ... Upgrade: websocket"--> 101, WebSocket frames --> Pomelo packages
//!         --the same with "Sec-WebSocket-Protocol: mqtt"--> 101 "mqtt", frames --> MQTT packets
//!         --"GET {socketio.path}/..." (socket.io)------> the Socket.IO opening (session::socketio)
//!         --0x10 (an MQTT CONNECT)--------------------> MQTT packets on the TCP stream
//!         --anything else-----------------------------> Pomelo packages on the TCP stream
//! ```
//!
//! # Invariants
//! - Input is decoded in place; only what [`decode`] did not use (an unfinished package, frame
//!   or request head) is kept, by [`handle_input`], in the connection's [`InputRest`], and so is
//!   a fragmented WebSocket message's payload so far, only while the message is unfinished, and
//!   an MQTT packet cut between two WebSocket messages (MQTT over WebSocket is a byte stream).
//! - Every size is checked before anything is buffered: a request head past
//!   [`MAX_REQUEST_HEAD`], a frame or package past `max_package_bytes` (past
//!   [`MAX_PACKAGE_BEFORE_ACK`] until the handshake is acked) is refused as soon as its header
//!   says so.
//! - Which of Socket.IO and a WebSocket upgrade answers an HTTP request is decided on its whole
//!   request line, so never on where the reads cut it (fuzzed: `fuzz/`, target `session`).
//! - Answers of the transport itself (101, a refusal, pong, close) go into the context's
//!   `transmit`, like the session's.

use super::socketio::opening::{self, Opened};
use super::{Context, Flow, Kick, MqttSession, PomeloSession, Secs, Session, SioSession};
use crate::ids::Transport;
use crate::protocol::ProtocolError;
use crate::protocol::http;
use crate::protocol::mqtt::MqttError;
use crate::protocol::pomelo::package::{self, HEADER_LEN};
use crate::protocol::sniff::{self, Sniffed};
use crate::protocol::websocket::frame::{self, ClientFrame, MAX_CONTROL_PAYLOAD, OpCode, WsError};
use crate::protocol::websocket::upgrade::{self, UpgradeError};
use crate::stats::KickReason;

/// The largest WebSocket upgrade request head accepted, bytes.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// The largest package a session takes before its handshake is acked (a handshake is a few
/// hundred bytes), so that connections nobody has admitted cannot each hold `max_package_bytes`
/// of half-sent package until the handshake timeout.
pub const MAX_PACKAGE_BEFORE_ACK: usize = 16 * 1024;

/// The largest package (or MQTT packet) a session may send now: `max_package_bytes` once it
/// works, much less before.
fn max_package(working: bool, cx: &Context<'_>) -> usize {
    let max = cx.settings.max_package_bytes;
    if working { max } else { max.min(MAX_PACKAGE_BEFORE_ACK) }
}

/// What a connection keeps of its input between reads, only while it has any.
#[derive(Debug, Default)]
pub struct InputRest {
    /// Received bytes not decoded yet: an unfinished package, frame or request head.
    pub tail: Vec<u8>,
    /// The payload so far of a fragmented WebSocket message.
    pub fragments: Vec<u8>,
    /// A fragmented WebSocket message has started and not finished.
    pub in_message: bool,
    /// That message is a text message.
    pub text: bool,
    /// MQTT over WebSocket: the start of a packet that the next message continues.
    pub stream: Vec<u8>,
}

impl InputRest {
    pub fn is_empty(&self) -> bool {
        self.tail.is_empty() && !self.in_message && self.stream.is_empty()
    }
}

/// What one decoding step did.
enum Step {
    /// This many bytes were used (0 when only the state changed).
    Consumed(usize),
    /// The rest is an unfinished unit: keep it.
    NeedMore,
    /// Stop decoding: the connection goes on as the flow says (never `Continue`).
    Stop(Flow),
    /// This many bytes were used, then stop as the flow says.
    Then(usize, Flow),
}

/// Handles bytes that arrived for a connection: decodes them after the unfinished unit the
/// connection kept in `rest`, and keeps in `rest` what is not decoded now (only while the flow
/// [keeps input](Flow::keeps_input): a connection that stops reading keeps nothing).
pub fn handle_input(
    session: &mut Session,
    data: &mut [u8],
    rest: &mut Option<Box<InputRest>>,
    cx: &mut Context<'_>,
) -> Flow {
    match rest.as_mut().filter(|r| !r.tail.is_empty()) {
        Some(saved) => {
            saved.tail.extend_from_slice(data);
            let mut tail = std::mem::take(&mut saved.tail);
            let (consumed, flow) = decode(session, &mut tail, rest, cx);
            tail.drain(..consumed);
            rest.get_or_insert_default().tail = tail;
            flow
        }
        None => {
            let (consumed, flow) = decode(session, data, rest, cx);
            if flow.keeps_input() && consumed < data.len() {
                rest.get_or_insert_default().tail.extend_from_slice(&data[consumed..]);
            }
            flow
        }
    }
}

/// Decodes `buf`, the connection's input (after whatever it kept): returns how many bytes were
/// used and how the connection goes on. A `Flow` other than `Continue` ends the input.
pub fn decode(
    session: &mut Session,
    buf: &mut [u8],
    rest: &mut Option<Box<InputRest>>,
    cx: &mut Context<'_>,
) -> (usize, Flow) {
    let mut at = 0;
    loop {
        let step = match session {
            &mut Session::Opening { since: Secs(since) } => {
                decode_opening(session, since, &buf[at..], cx)
            }
            // Pomelo and MQTT sessions are never polling.
            Session::Pomelo(s) => match s.transport() {
                Transport::WebSocket => decode_frame(s, &mut buf[at..], rest, cx),
                Transport::Tcp | Transport::Polling => decode_package(s, &buf[at..], cx),
            },
            Session::Mqtt(s) => match s.transport() {
                Transport::WebSocket => decode_frame(s, &mut buf[at..], rest, cx),
                Transport::Tcp | Transport::Polling => decode_mqtt(s, &buf[at..], cx),
            },
            // A polling session has no socket: its input comes in polls (`Flow::Poll`).
            Session::SocketIo(s) if s.is_polling() => Step::Stop(Flow::Abort),
            Session::SocketIo(s) => decode_frame(s, &mut buf[at..], rest, cx),
            Session::Carrier(carrier) if carrier.waiting().is_some() => Step::Stop(Flow::Close),
            Session::Carrier(_) => decode_carried(session, &buf[at..], cx),
        };
        match step {
            Step::Consumed(n) => at += n,
            Step::NeedMore => return (at, Flow::Continue),
            Step::Stop(flow) => return (at, flow),
            Step::Then(n, flow) => return (at + n, flow),
        }
    }
}

/// The first bytes: raw Pomelo, raw MQTT, or a WebSocket upgrade whose whole head must arrive.
fn decode_opening(session: &mut Session, since: u32, buf: &[u8], cx: &mut Context<'_>) -> Step {
    match sniff::sniff(buf) {
        None => Step::NeedMore,
        Some(Sniffed::Pomelo) => {
            *session = Session::Pomelo(PomeloSession::new(since, Transport::Tcp));
            Step::Consumed(0)
        }
        Some(Sniffed::Mqtt) => {
            *session = Session::Mqtt(MqttSession::on_tcp(since));
            Step::Consumed(0)
        }
        // The path decides between Socket.IO and a WebSocket upgrade: wait for the whole
        // request line (as `decode_carried` does), so that where a read cut it cannot change
        // which of the two answers a malformed request.
        Some(Sniffed::Http) if buf.len() < MAX_REQUEST_HEAD && !buf.contains(&b'\n') => {
            Step::NeedMore
        }
        Some(Sniffed::Http)
            if http::request_path(buf).is_some_and(|p| cx.settings.socketio.claims(p)) =>
        {
            open_socketio(session, buf, cx)
        }
        Some(Sniffed::Http) => match upgrade::decode_request(buf, MAX_REQUEST_HEAD) {
            Ok(None) => Step::NeedMore,
            Ok(Some((request, used))) => {
                if let Err(e) = upgrade::check_origin(&request, &cx.settings.allowed_origins) {
                    return refuse_upgrade(&e, cx);
                }
                if request.mqtt {
                    upgrade::encode_accept(
                        request.key,
                        Some(upgrade::MQTT_SUBPROTOCOL),
                        cx.transmit,
                    );
                    *session = Session::Mqtt(MqttSession::awaiting_connect(since));
                } else {
                    upgrade::encode_accept(request.key, None, cx.transmit);
                    *session = Session::Pomelo(PomeloSession::new(since, Transport::WebSocket));
                }
                Step::Consumed(used)
            }
            Err(e) => refuse_upgrade(&e, cx),
        },
    }
}

/// A Socket.IO request: a WebSocket, a polling request, or an answer that ends the connection.
fn open_socketio(session: &mut Session, buf: &[u8], cx: &mut Context<'_>) -> Step {
    match opening::open(session, buf, cx) {
        Opened::NeedMore => Step::NeedMore,
        Opened::Upgraded(used) => Step::Consumed(used),
        Opened::Answered(flow) => Step::Stop(flow),
        Opened::Poll(request, used) => Step::Then(used, Flow::Poll(request)),
        Opened::Move(core) => Step::Stop(Flow::Move { core }),
    }
}

/// The next request on a carrier: Socket.IO's, or refused.
fn decode_carried(session: &mut Session, buf: &[u8], cx: &mut Context<'_>) -> Step {
    match http::request_path(buf) {
        None if buf.len() < MAX_REQUEST_HEAD && !buf.contains(&b'\n') => Step::NeedMore,
        Some(path) if cx.settings.socketio.claims(path) => open_socketio(session, buf, cx),
        _ => {
            opening::answer_text(404, "not found", cx);
            Step::Stop(Flow::Close)
        }
    }
}

fn refuse_upgrade(error: &UpgradeError, cx: &mut Context<'_>) -> Step {
    tracing::debug!(conn = %cx.me, %error, "WebSocket upgrade refused");
    upgrade::encode_rejection(error, cx.transmit);
    Step::Stop(Flow::Close)
}

fn decode_package(session: &mut PomeloSession, buf: &[u8], cx: &mut Context<'_>) -> Step {
    match package::decode(buf, max_package(session.is_working(), cx)) {
        Ok(Some((pkg, used))) => match session.handle_package(pkg, cx) {
            Flow::Continue => Step::Consumed(used),
            flow => Step::Stop(flow),
        },
        Ok(None) => Step::NeedMore,
        Err(e) => Step::Stop(Flow::Kick(Kick::protocol_fault(&e))),
    }
}

/// MQTT packets on the TCP stream, one step: a whole packet to the session.
fn decode_mqtt(session: &mut MqttSession, buf: &[u8], cx: &mut Context<'_>) -> Step {
    let decoder = session.decoder(max_package(session.is_working(), cx));
    match decoder.decode(buf) {
        Ok(Some((packet, used))) => match session.handle_packet(packet, cx) {
            Flow::Continue => Step::Consumed(used),
            flow => Step::Stop(flow),
        },
        Ok(None) => Step::NeedMore,
        Err(e) => Step::Stop(mqtt_fault(session, &e, cx)),
    }
}

/// A packet that could not be decoded: before CONNECT an unsupported version still gets its
/// CONNACK; anything else ends the connection ([`MqttSession::fault`]).
fn mqtt_fault(session: &MqttSession, error: &MqttError, cx: &mut Context<'_>) -> Flow {
    if session.is_working() {
        return session.fault(error, cx);
    }
    session.refuse_connect(error, cx)
}

/// A frontend inside WebSocket messages.
trait InWebSocket {
    fn is_working(&self) -> bool;
    /// The largest message this session takes now.
    fn max_message(&self, cx: &Context<'_>) -> usize;
    /// A whole binary message.
    fn on_message(
        &mut self,
        message: &[u8],
        rest: &mut Option<Box<InputRest>>,
        cx: &mut Context<'_>,
    ) -> Flow;
    /// A whole text message (valid UTF-8); refused unless the frontend speaks text.
    fn on_text(&mut self, _text: &str, cx: &mut Context<'_>) -> Flow
    where
        Self: Sized,
    {
        let error = WsError { close_code: 1003, reason: Self::NOT_TEXT };
        ws_fault(self, error, cx)
    }
    /// Why a text frame is refused.
    const NOT_TEXT: &'static str;
}

impl InWebSocket for PomeloSession {
    const NOT_TEXT: &'static str = "text frames are not Pomelo packages";

    fn is_working(&self) -> bool {
        PomeloSession::is_working(self)
    }

    /// A message carries one package.
    fn max_message(&self, cx: &Context<'_>) -> usize {
        max_package(self.is_working(), cx) + HEADER_LEN
    }

    fn on_message(
        &mut self,
        message: &[u8],
        _rest: &mut Option<Box<InputRest>>,
        cx: &mut Context<'_>,
    ) -> Flow {
        on_message(self, message, cx)
    }
}

impl InWebSocket for MqttSession {
    const NOT_TEXT: &'static str = "text frames are not MQTT packets";

    fn is_working(&self) -> bool {
        MqttSession::is_working(self)
    }

    /// A message carries any part of the packet stream; one packet at most, as clients send.
    fn max_message(&self, cx: &Context<'_>) -> usize {
        max_package(self.is_working(), cx)
    }

    fn on_message(
        &mut self,
        message: &[u8],
        rest: &mut Option<Box<InputRest>>,
        cx: &mut Context<'_>,
    ) -> Flow {
        let mut stream = rest.as_mut().map(|r| std::mem::take(&mut r.stream)).unwrap_or_default();
        if stream.is_empty() {
            let (consumed, flow) = decode_mqtt_stream(self, message, cx);
            if flow == Flow::Continue && consumed < message.len() {
                rest.get_or_insert_default().stream = message[consumed..].to_vec();
            }
            return flow;
        }
        stream.extend_from_slice(message);
        let (consumed, flow) = decode_mqtt_stream(self, &stream, cx);
        stream.drain(..consumed);
        if flow == Flow::Continue && !stream.is_empty() {
            rest.get_or_insert_default().stream = stream;
        }
        flow
    }
}

impl InWebSocket for SioSession {
    const NOT_TEXT: &'static str = "";

    fn is_working(&self) -> bool {
        SioSession::is_working(self)
    }

    /// A message carries one socket.io packet.
    fn max_message(&self, cx: &Context<'_>) -> usize {
        max_package(self.is_working(), cx)
    }

    /// Binary messages carry socket.io's binary attachments, which Pomelo never sends.
    fn on_message(
        &mut self,
        _message: &[u8],
        _rest: &mut Option<Box<InputRest>>,
        cx: &mut Context<'_>,
    ) -> Flow {
        let error = WsError { close_code: 1003, reason: "binary messages are not served" };
        ws_fault(self, error, cx)
    }

    fn on_text(&mut self, text: &str, cx: &mut Context<'_>) -> Flow {
        SioSession::on_text(self, text, cx)
    }
}

/// Every whole MQTT packet in `buf`; how many bytes they took.
fn decode_mqtt_stream(
    session: &mut MqttSession,
    buf: &[u8],
    cx: &mut Context<'_>,
) -> (usize, Flow) {
    let mut at = 0;
    loop {
        match decode_mqtt(session, &buf[at..], cx) {
            Step::Consumed(n) => at += n,
            Step::NeedMore => return (at, Flow::Continue),
            Step::Stop(flow) => return (at, flow),
            Step::Then(n, flow) => return (at + n, flow),
        }
    }
}

fn decode_frame<S: InWebSocket>(
    session: &mut S,
    buf: &mut [u8],
    rest: &mut Option<Box<InputRest>>,
    cx: &mut Context<'_>,
) -> Step {
    // A frame may bring what the message still has room for (control frames, up to 125 bytes,
    // may come between fragments).
    let max_message = session.max_message(cx);
    let so_far = rest.as_ref().map_or(0, |r| r.fragments.len());
    let max_payload = max_message.saturating_sub(so_far).max(MAX_CONTROL_PAYLOAD);
    let (frame, used) = match frame::decode_client_frame(buf, max_payload) {
        Ok(Some(decoded)) => decoded,
        Ok(None) => return Step::NeedMore,
        Err(e) => return Step::Stop(ws_fault(session, e, cx)),
    };
    let flow = match frame.opcode {
        OpCode::Binary | OpCode::Text | OpCode::Continuation => {
            on_data_frame(session, frame, rest, cx)
        }
        OpCode::Ping => {
            frame::encode_frame(OpCode::Pong, frame.payload, cx.transmit);
            Flow::Continue
        }
        OpCode::Pong => Flow::Continue,
        OpCode::Close => match frame::decode_close(frame.payload) {
            Ok(Some((code, _))) => {
                frame::encode_close(code, "", cx.transmit);
                Flow::Close
            }
            Ok(None) => {
                frame::encode_frame(OpCode::Close, &[], cx.transmit);
                Flow::Close
            }
            Err(e) => ws_fault(session, e, cx),
        },
    };
    match flow {
        Flow::Continue => Step::Consumed(used),
        // The frame is used (and unmasked): what follows is the upgraded session's.
        Flow::Upgrade => Step::Then(used, Flow::Upgrade),
        flow => Step::Stop(flow),
    }
}

/// A binary frame, whole or a fragment; a finished message goes to the session.
fn on_data_frame<S: InWebSocket>(
    session: &mut S,
    frame: ClientFrame<'_>,
    rest: &mut Option<Box<InputRest>>,
    cx: &mut Context<'_>,
) -> Flow {
    let in_message = rest.as_ref().is_some_and(|r| r.in_message);
    match (frame.opcode, in_message) {
        (OpCode::Binary, false) if frame.fin => session.on_message(frame.payload, rest, cx),
        (OpCode::Text, false) if frame.fin => on_text_message(session, frame.payload, cx),
        (OpCode::Binary | OpCode::Text, false) => {
            let saved = rest.get_or_insert_default();
            saved.in_message = true;
            saved.text = frame.opcode == OpCode::Text;
            saved.fragments.extend_from_slice(frame.payload);
            Flow::Continue
        }
        (OpCode::Continuation, true) => {
            let max = session.max_message(cx);
            let saved = rest.get_or_insert_default();
            if saved.fragments.len() + frame.payload.len() > max {
                let error = WsError { close_code: 1009, reason: "message too large" };
                return ws_fault(session, error, cx);
            }
            saved.fragments.extend_from_slice(frame.payload);
            if !frame.fin {
                return Flow::Continue;
            }
            saved.in_message = false;
            let message = std::mem::take(&mut saved.fragments);
            if saved.text {
                return on_text_message(session, &message, cx);
            }
            session.on_message(&message, rest, cx)
        }
        (OpCode::Continuation, false) => {
            let error =
                WsError { close_code: 1002, reason: "continuation frame outside a message" };
            ws_fault(session, error, cx)
        }
        _ => {
            let error = WsError { close_code: 1002, reason: "new message inside a fragmented one" };
            ws_fault(session, error, cx)
        }
    }
}

/// A whole text message: UTF-8 (else closed 1007, RFC 6455 §8.1), to the session.
fn on_text_message<S: InWebSocket>(session: &mut S, payload: &[u8], cx: &mut Context<'_>) -> Flow {
    match std::str::from_utf8(payload) {
        Ok(text) => session.on_text(text, cx),
        Err(_) => {
            let error = WsError { close_code: 1007, reason: "a text message that is not UTF-8" };
            ws_fault(session, error, cx)
        }
    }
}

/// A whole binary WebSocket message: Pomelo packages, none of them cut at the end.
fn on_message(session: &mut PomeloSession, message: &[u8], cx: &mut Context<'_>) -> Flow {
    let mut at = 0;
    while at < message.len() {
        match package::decode(&message[at..], max_package(session.is_working(), cx)) {
            Ok(Some((pkg, used))) => {
                at += used;
                match session.handle_package(pkg, cx) {
                    Flow::Continue => {}
                    flow => return flow,
                }
            }
            Ok(None) => {
                let error = ProtocolError::Malformed("a WebSocket message ends inside a package");
                return Flow::Kick(Kick::protocol_fault(&error));
            }
            Err(e) => return Flow::Kick(Kick::protocol_fault(&e)),
        }
    }
    Flow::Continue
}

/// A WebSocket protocol error: a working session is kicked (the close frame after the kick
/// carries the error's code); any other gets the close frame with the error's code.
fn ws_fault<S: InWebSocket>(session: &S, error: WsError, cx: &mut Context<'_>) -> Flow {
    tracing::debug!(conn = %cx.me, %error, "WebSocket protocol error");
    if session.is_working() {
        let kick = if error.close_code == 1009 {
            Kick::new(KickReason::PackageTooLarge)
        } else {
            Kick {
                text: format!("protocol error: {}", error.reason).into(),
                ..Kick::new(KickReason::ProtocolError)
            }
        };
        Flow::Kick(Kick { close_code: error.close_code, ..kick })
    } else {
        frame::encode_close(error.close_code, error.reason, cx.transmit);
        Flow::Close
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::testing::{Conn, World};

    /// Found by fuzzing (`fuzz/corpus/session/`): a malformed request to the Socket.IO path
    /// whose request line was cut by a read was refused as a WebSocket upgrade (400 "invalid
    /// request line") rather than by Socket.IO (400 "malformed HTTP request head"), as when it
    /// arrived whole.
    #[test]
    fn a_request_line_cut_by_reads_is_routed_as_if_whole() {
        let stream: &[u8] = b"POST /socket.io/2?EI\x1eO=3&transport=polling&sid=abc LTTP/1.1\r\n\
            Host0 x\r\nContent-Length: 3\r\n\r\n1:2";
        let whole = Conn::new(1).input(&mut World::new(), 1, stream);
        assert!(whole.0.ends_with(b"malformed HTTP request head\n"), "{whole:?}");
        let world = &mut World::new();
        let mut conn = Conn::new(1);
        let (mut sent, mut flow) = (Vec::new(), Flow::Continue);
        for piece in [&stream[..1], &stream[1..4], &stream[4..11], &stream[11..41], &stream[41..]] {
            let (out, then) = conn.input(world, 1, piece);
            sent.extend_from_slice(&out);
            flow = then;
            if flow != Flow::Continue {
                break;
            }
        }
        assert_eq!((sent, flow), whole);
    }
}

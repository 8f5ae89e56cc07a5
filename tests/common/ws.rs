//! The tests' WebSocket view of the server: a blocking Pomelo client over WebSocket, with the
//! WebSocket layer done by tungstenite (an implementation nobody here wrote) and the Pomelo layer
//! by the hand-written codec in [`super::pomelo`], so neither side shares code with
//! `shaddock::protocol`.
//!
//! Besides the well-behaved [`WsPomeloClient`], this module has the raw pieces the misbehaviour
//! tests need: hand-built client frames ([`client_frame`], [`frame_header`]) written straight to
//! the socket under tungstenite, and a raw HTTP exchange ([`raw_upgrade`], [`refused`]) for
//! upgrade requests tungstenite would never send.
//!
//! Every wait is bounded ([`IO_TIMEOUT`] by default): a server that hangs fails the test with a
//! message instead of hanging the suite.

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Error as WsError, HandshakeError, Message, WebSocket};

use super::pomelo::{self, ServerMessage, decode_kick, decode_message, decode_package};
use super::{Closed, ENTER, HANDSHAKE_BODY, IO_TIMEOUT, PUSH_ALL, PUSH_BY_CLIENT_ID};

/// Opcode 0x0: a continuation frame.
pub const OP_CONTINUATION: u8 = 0x0;
/// Opcode 0x1: a text frame.
pub const OP_TEXT: u8 = 0x1;
/// Opcode 0x2: a binary frame.
pub const OP_BINARY: u8 = 0x2;
/// Opcode 0x8: close.
pub const OP_CLOSE: u8 = 0x8;
/// Opcode 0x9: ping.
pub const OP_PING: u8 = 0x9;

/// Close code 1002: protocol error (e.g. an unmasked client frame).
pub const CLOSE_PROTOCOL: u16 = 1002;
/// Close code 1003: unsupported data (e.g. a text frame).
pub const CLOSE_UNSUPPORTED: u16 = 1003;
/// Close code 1009: message too big.
pub const CLOSE_TOO_BIG: u16 = 1009;

/// The key of RFC 6455 §1.3, and the accept value the RFC gives for it.
pub const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// `Sec-WebSocket-Accept` for [`SAMPLE_KEY`], from RFC 6455 §1.3 (not computed here).
pub const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// tungstenite's configuration for the tests: a small read buffer (1,000 clients in one process)
/// and every message written at once (no write buffering to forget to flush).
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0)
}

/// Opens a TCP connection with bounded reads and writes.
pub fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| {
        panic!("connect to {addr}: {e} (with many clients, check `ulimit -n`)")
    });
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

// ---- raw client frames ----------------------------------------------------------------------

/// A frame header as a client writes it: FIN bit, `opcode`, the *declared* payload length (in the
/// shortest of the 7-bit, 16-bit and 64-bit forms) and, when `mask` is given, the mask bit and key.
/// Send it alone to declare a payload that never comes.
pub fn frame_header(fin: bool, opcode: u8, declared_len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (opcode & 0x0f)];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if declared_len <= 125 {
        out.push(mask_bit | declared_len as u8);
    } else if declared_len <= 0xffff {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(declared_len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&declared_len.to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out
}

/// A whole client frame: [`frame_header`] and the payload, masked with `mask` when given.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = frame_header(fin, opcode, payload.len() as u64, mask);
    match mask {
        Some(key) => out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4])),
        None => out.extend_from_slice(payload),
    }
    out
}

/// A mask key for hand-built frames (any value is valid; this one is not all zero, so a server
/// that forgets to unmask sees garbage).
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

// ---- raw HTTP -------------------------------------------------------------------------------

/// An HTTP response as read off the socket.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status line, e.g. `HTTP/1.1 400 Bad Request`.
    pub status_line: String,
    /// The status code.
    pub status: u16,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// Everything after the head that was read (for a refusal: the whole body, up to the close).
    pub rest: Vec<u8>,
}

impl HttpResponse {
    /// The first header `name` (ASCII case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Reads a response head (up to and including the blank line) within [`IO_TIMEOUT`]; bytes read
/// past it are in `rest`.
pub fn read_response_head(stream: &mut TcpStream) -> HttpResponse {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        assert!(
            buf.len() < 64 * 1024,
            "response head over 64 KiB: {:?}",
            String::from_utf8_lossy(&buf[..300])
        );
        let now = Instant::now();
        assert!(
            now < deadline,
            "timed out waiting for a response head; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        stream.set_read_timeout(Some(deadline - now)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => panic!(
                "connection closed before a whole response head; got {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                panic!("reading a response head: {e}; got {:?}", String::from_utf8_lossy(&buf))
            }
        }
    };
    let head = std::str::from_utf8(&buf[..end])
        .unwrap_or_else(|e| panic!("response head is not UTF-8 ({e}): {:02x?}", &buf[..end]));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("").to_owned();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    assert_eq!(version, "HTTP/1.1", "status line {status_line:?}");
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no status code in {status_line:?}"));
    let headers = lines
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("header line without a colon: {line:?} in {head:?}"));
            (name.to_owned(), value.trim().to_owned())
        })
        .collect();
    HttpResponse { status_line, status, headers, rest: buf[end + 4..].to_vec() }
}

/// Sends `request` on a new connection and reads the response head; the socket is returned for
/// what comes next (frames after a 101, or the close after a refusal).
pub fn raw_upgrade(addr: SocketAddr, request: &[u8]) -> (TcpStream, HttpResponse) {
    let mut stream = tcp_connect(addr);
    stream
        .write_all(request)
        .unwrap_or_else(|e| panic!("write a {}-byte request: {e}", request.len()));
    let response = read_response_head(&mut stream);
    (stream, response)
}

/// Reads until the peer closes (EOF or reset) within [`IO_TIMEOUT`], appending what arrives to
/// `into`; returns how it closed.
pub fn read_to_close(stream: &mut TcpStream, into: &mut Vec<u8>) -> Closed {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut chunk = [0u8; 4096];
    loop {
        let now = Instant::now();
        assert!(
            now < deadline,
            "timed out after {IO_TIMEOUT:?} waiting for the server to close; got {:?}",
            String::from_utf8_lossy(into)
        );
        stream.set_read_timeout(Some(deadline - now)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => return Closed::Eof,
            Ok(n) => into.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                return Closed::Reset;
            }
            Err(e) => panic!(
                "waiting for the server to close: {e}; got {:?}",
                String::from_utf8_lossy(into)
            ),
        }
    }
}

/// Sends `request`, reads the response, and asserts that it is a refusal with `status`: not a
/// 101, a `Content-Length` (if any) that matches the body, and the connection closed after it.
pub fn refused(addr: SocketAddr, request: &[u8], status: u16) -> HttpResponse {
    let (mut stream, mut response) = raw_upgrade(addr, request);
    let what = String::from_utf8_lossy(&request[..request.len().min(120)]).into_owned();
    assert_eq!(
        response.status, status,
        "request {what:?} answered {:?} {:?}",
        response.status_line, response.headers
    );
    read_to_close(&mut stream, &mut response.rest);
    if let Some(len) = response.header("Content-Length") {
        assert_eq!(
            len.parse::<usize>().ok(),
            Some(response.rest.len()),
            "request {what:?}: Content-Length {len} but the body is {:?}",
            String::from_utf8_lossy(&response.rest)
        );
    }
    assert!(
        response.header("Sec-WebSocket-Accept").is_none(),
        "a refusal with an accept key: {response:?}"
    );
    response
}

// ---- the client -----------------------------------------------------------------------------

/// How the server ended a WebSocket session, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsEnd {
    /// The kick's reason, when a kick package came before the close.
    pub kick: Option<String>,
    /// The close frame's code (`None` for a close frame without one, or no close frame).
    pub code: Option<u16>,
    /// Whether a close frame came at all (rather than the TCP connection just ending).
    pub close_frame: bool,
    /// Pushes that arrived before the end.
    pub pushes: Vec<(String, Value)>,
}

enum Event {
    Package(u8, Vec<u8>),
    Pong(Vec<u8>),
    /// A close frame: code and reason.
    Close(Option<u16>, String),
    /// The TCP connection ended (after a close frame, or without one).
    Ended(Closed),
}

/// A blocking Pomelo hybrid client over WebSocket, the WebSocket twin of
/// [`PomeloClient`](super::PomeloClient).
///
/// Every binary message from the server must hold exactly one Pomelo package. Pushes that arrive
/// while the client waits for something else are queued for [`next_push`](Self::next_push).
#[derive(Debug)]
pub struct WsPomeloClient {
    ws: WebSocket<TcpStream>,
    label: String,
    ended: Option<Closed>,
    next_id: u64,
    pushes: VecDeque<(String, Value)>,
    handshake: Option<Value>,
    code_to_route: HashMap<u16, String>,
    timeout: Duration,
}

impl WsPomeloClient {
    /// Upgrades to WebSocket and completes the Pomelo handshake (handshake, response, ack, first
    /// heartbeat).
    pub fn connect(addr: SocketAddr) -> Self {
        Self::connect_with(addr, &[])
    }

    /// [`connect`](Self::connect) with extra upgrade request headers (e.g. `Origin`).
    pub fn connect_with(addr: SocketAddr, headers: &[(&str, &str)]) -> Self {
        let mut c = Self::connect_raw_with(addr, headers);
        c.pomelo_handshake();
        c
    }

    /// Only the WebSocket upgrade, done by tungstenite: no Pomelo handshake.
    pub fn connect_raw(addr: SocketAddr) -> Self {
        Self::connect_raw_with(addr, &[])
    }

    /// [`connect_raw`](Self::connect_raw) with extra upgrade request headers.
    pub fn connect_raw_with(addr: SocketAddr, headers: &[(&str, &str)]) -> Self {
        let stream = tcp_connect(addr);
        let mut request = format!("ws://{addr}/").into_client_request().expect("a valid ws:// URL");
        for (name, value) in headers {
            request.headers_mut().insert(
                HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"),
                HeaderValue::from_str(value).expect("a valid header value"),
            );
        }
        let (ws, response) =
            match tungstenite::client::client_with_config(request, stream, Some(ws_config())) {
                Ok(done) => done,
                Err(HandshakeError::Interrupted(_)) => {
                    panic!("WebSocket upgrade to {addr}: no response within {IO_TIMEOUT:?}")
                }
                Err(HandshakeError::Failure(WsError::Http(response))) => panic!(
                    "WebSocket upgrade to {addr} refused: {} {:?} {:?}",
                    response.status(),
                    response.headers(),
                    response.body().as_deref().map(String::from_utf8_lossy)
                ),
                Err(HandshakeError::Failure(e)) => panic!("WebSocket upgrade to {addr}: {e}"),
            };
        // tungstenite does not check this one (RFC 6455 §4.1 step 5 is a TODO there), and the
        // server must never negotiate an extension.
        assert!(
            response.headers().get("sec-websocket-extensions").is_none(),
            "the server negotiated an extension: {:?}",
            response.headers()
        );
        Self::from_websocket(ws)
    }

    /// A client over a socket that was upgraded by hand ([`raw_upgrade`]); `leftover` is what was
    /// read past the response head.
    pub fn from_upgraded(stream: TcpStream, leftover: Vec<u8>) -> Self {
        Self::from_websocket(WebSocket::from_partially_read(
            stream,
            leftover,
            Role::Client,
            Some(ws_config()),
        ))
    }

    fn from_websocket(ws: WebSocket<TcpStream>) -> Self {
        let label = ws.get_ref().local_addr().map(|a| format!("ws {a}")).unwrap_or_default();
        WsPomeloClient {
            ws,
            label,
            ended: None,
            next_id: 1,
            pushes: VecDeque::new(),
            handshake: None,
            code_to_route: HashMap::new(),
            timeout: IO_TIMEOUT,
        }
    }

    /// Changes how long one wait may take (default [`IO_TIMEOUT`]).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The client's local address, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    // ---- sending ------------------------------------------------------------------------

    fn send(&mut self, message: Message) {
        let what = format!("{message:?}");
        self.ws.send(message).unwrap_or_else(|e| {
            panic!("[{}] send {}: {e}", self.label, &what[..what.len().min(120)])
        });
    }

    /// Sends one Pomelo package as one binary message.
    pub fn send_package(&mut self, kind: u8, body: &[u8]) {
        self.send(Message::binary(pomelo::encode_package(kind, body)));
    }

    /// Sends a text message (which the server must refuse).
    pub fn send_text(&mut self, text: &str) {
        self.send(Message::text(text));
    }

    /// Sends a ping with `payload`.
    pub fn send_ping(&mut self, payload: &[u8]) {
        self.send(Message::Ping(payload.to_vec().into()));
    }

    /// Writes raw bytes straight to the socket, under tungstenite (which has nothing buffered:
    /// every message is written at once).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.ws
            .get_mut()
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("[{}] write {} raw bytes: {e}", self.label, bytes.len()));
    }

    // ---- the Pomelo handshake -----------------------------------------------------------

    /// Handshake, response (code 200), ack, and the server's first heartbeat.
    pub fn pomelo_handshake(&mut self) {
        self.send_handshake();
        self.read_handshake_response();
        self.send_ack();
        self.read_heartbeat();
    }

    /// Sends the HANDSHAKE package.
    pub fn send_handshake(&mut self) {
        self.send_package(pomelo::HANDSHAKE, HANDSHAKE_BODY.as_bytes());
    }

    /// Reads the handshake response, asserts code 200, and remembers its dict.
    pub fn read_handshake_response(&mut self) -> Value {
        let response = match self.next_event("the handshake response") {
            Event::Package(pomelo::HANDSHAKE, body) => serde_json::from_slice::<Value>(&body)
                .unwrap_or_else(|e| {
                    panic!("[{}] handshake response is not JSON ({e}): {body:02x?}", self.label)
                }),
            other => {
                panic!("[{}] expected the handshake response, got {}", self.label, describe(&other))
            }
        };
        assert_eq!(response["code"], 200, "[{}] handshake response: {response}", self.label);
        self.code_to_route = pomelo::dict_from_handshake(&response);
        self.handshake = Some(response.clone());
        response
    }

    /// Sends HANDSHAKE_ACK.
    pub fn send_ack(&mut self) {
        self.send_package(pomelo::HANDSHAKE_ACK, &[]);
    }

    /// Reads one HEARTBEAT (queueing pushes that come before it).
    pub fn read_heartbeat(&mut self) {
        loop {
            match self.next_event("a heartbeat") {
                Event::Package(pomelo::HEARTBEAT, _) => return,
                Event::Package(pomelo::DATA, body) => match self.decode(&body) {
                    ServerMessage::Push { route, body } => self.pushes.push_back((route, body)),
                    other => panic!("[{}] waiting for a heartbeat, got {other:?}", self.label),
                },
                other => {
                    panic!("[{}] waiting for a heartbeat, got {}", self.label, describe(&other))
                }
            }
        }
    }

    /// Sends a heartbeat and waits for the server's answer.
    pub fn heartbeat(&mut self) {
        self.send_package(pomelo::HEARTBEAT, &[]);
        self.read_heartbeat();
    }

    // ---- requests -----------------------------------------------------------------------

    /// Sends a request with an uncompressed route and JSON body; returns the response body.
    pub fn request(&mut self, route: &str, body: Value) -> Value {
        let id = self.send_request(route, body.to_string().as_bytes());
        self.read_response(id, route)
    }

    /// Sends a request without waiting; returns its id.
    pub fn send_request(&mut self, route: &str, body: &[u8]) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send_package(pomelo::DATA, &pomelo::encode_request(id, route, body));
        id
    }

    /// Reads until the response to request `id` arrives, queueing pushes.
    pub fn read_response(&mut self, id: u64, route: &str) -> Value {
        let what = format!("the response to request {id} ({route})");
        loop {
            match self.next_event(&what) {
                Event::Package(pomelo::DATA, body) => match self.decode(&body) {
                    ServerMessage::Response { id: got, body } if got == id => return body,
                    ServerMessage::Response { id: got, body } => panic!(
                        "[{}] waiting for {what}, got a response to id {got}: {body}",
                        self.label
                    ),
                    ServerMessage::Push { route, body } => self.pushes.push_back((route, body)),
                },
                Event::Package(pomelo::HEARTBEAT, _) => {}
                other => panic!("[{}] waiting for {what}, got {}", self.label, describe(&other)),
            }
        }
    }

    /// `connector.entryHandler.enter {role:"client", apikey, clientId}`.
    pub fn enter_client(&mut self, apikey: &str, client_id: &str) -> Value {
        self.request(ENTER, json!({"role": "client", "apikey": apikey, "clientId": client_id}))
    }

    /// `connector.entryHandler.enter {role:"server", apikey, secret}`.
    pub fn enter_server(&mut self, apikey: &str, secret: &str) -> Value {
        self.request(ENTER, json!({"role": "server", "apikey": apikey, "secret": secret}))
    }

    /// `pushserver.pushHandler.pushAll {apikey, msg}`.
    pub fn push_all(&mut self, apikey: &str, msg: Value) -> Value {
        self.request(PUSH_ALL, json!({"apikey": apikey, "msg": msg}))
    }

    /// `pushserver.pushHandler.pushByClientId {apikey, clientId, msg}`.
    pub fn push_by_client_id(&mut self, apikey: &str, client_id: &str, msg: Value) -> Value {
        self.request(
            PUSH_BY_CLIENT_ID,
            json!({"apikey": apikey, "clientId": client_id, "msg": msg}),
        )
    }

    // ---- pushes, pongs, kicks, closes ---------------------------------------------------

    /// The next push `(route, body)`.
    pub fn next_push(&mut self) -> (String, Value) {
        if let Some(push) = self.pushes.pop_front() {
            return push;
        }
        loop {
            match self.next_event("a push") {
                Event::Package(pomelo::DATA, body) => match self.decode(&body) {
                    ServerMessage::Push { route, body } => return (route, body),
                    other => panic!("[{}] waiting for a push, got {other:?}", self.label),
                },
                Event::Package(pomelo::HEARTBEAT, _) => {}
                other => panic!("[{}] waiting for a push, got {}", self.label, describe(&other)),
            }
        }
    }

    /// Waits for a pong; asserts it echoes `payload` (pushes meanwhile are queued).
    pub fn expect_pong(&mut self, payload: &[u8]) {
        loop {
            match self.next_event("a pong") {
                Event::Pong(got) => {
                    assert_eq!(got, payload, "[{}] the pong's payload", self.label);
                    return;
                }
                Event::Package(pomelo::DATA, body) => match self.decode(&body) {
                    ServerMessage::Push { route, body } => self.pushes.push_back((route, body)),
                    other => panic!("[{}] waiting for a pong, got {other:?}", self.label),
                },
                Event::Package(pomelo::HEARTBEAT, _) => {}
                other => panic!("[{}] waiting for a pong, got {}", self.label, describe(&other)),
            }
        }
    }

    /// Asserts that no push is queued or already readable, without waiting, and that the
    /// session is still open. Heartbeats are fine.
    pub fn assert_no_pending_push(&mut self) {
        if let Some(push) = self.pushes.front() {
            panic!("[{}] unexpected extra push {push:?}", self.label);
        }
        assert_eq!(self.ended, None, "[{}] already closed", self.label);
        self.ws.get_ref().set_nonblocking(true).unwrap();
        let result = loop {
            match self.ws.read() {
                Ok(Message::Binary(data)) => match one_package(&self.label, &data) {
                    (pomelo::HEARTBEAT, _) => {}
                    (pomelo::DATA, body) => {
                        break Err(format!("unexpected extra message {:?}", self.decode(&body)));
                    }
                    (kind, body) => {
                        break Err(format!("unexpected package type {kind}: {body:02x?}"));
                    }
                },
                Ok(other) => break Err(format!("unexpected {other:?}")),
                Err(WsError::Io(e)) if e.kind() == ErrorKind::WouldBlock => break Ok(()),
                Err(WsError::Io(e)) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Err(format!("non-blocking read: {e}")),
            }
        };
        self.ws.get_ref().set_nonblocking(false).unwrap();
        if let Err(e) = result {
            panic!("[{}] {e}", self.label);
        }
    }

    /// Waits for a kick and returns its reason, asserting that a close frame follows it and
    /// then the connection ends; returns the reason and the close code.
    pub fn expect_kick(&mut self) -> (String, Option<u16>) {
        let end = self.read_to_end();
        let reason = end.kick.unwrap_or_else(|| {
            panic!(
                "[{}] the session ended without a kick (close code {:?}, close frame {})",
                self.label, end.code, end.close_frame
            )
        });
        assert!(end.close_frame, "[{}] kick {reason:?} not followed by a close frame", self.label);
        self.pushes.extend(end.pushes);
        (reason, end.code)
    }

    /// Reads everything until the session ends: pushes, at most one kick, then a close frame
    /// (if the server sends one) and the end of the TCP connection. Whatever follows a kick must
    /// be the close frame; whatever follows the close frame must be the end.
    pub fn read_to_end(&mut self) -> WsEnd {
        let mut pushes: Vec<_> = self.pushes.drain(..).collect();
        let mut kick = None;
        let mut code = None;
        let mut close_frame = false;
        loop {
            match self.next_event("the session to end") {
                Event::Ended(_) => {
                    return WsEnd { kick, code, close_frame, pushes };
                }
                Event::Close(c, _) => {
                    assert!(!close_frame, "[{}] a second close frame", self.label);
                    close_frame = true;
                    code = c;
                }
                other => {
                    assert!(
                        !close_frame,
                        "[{}] {} after the close frame",
                        self.label,
                        describe(&other)
                    );
                    assert!(
                        kick.is_none(),
                        "[{}] {} after kick {kick:?}",
                        self.label,
                        describe(&other)
                    );
                    match other {
                        Event::Package(pomelo::KICK, body) => {
                            kick = Some(decode_kick(&body).unwrap_or_else(|e| {
                                panic!("[{}] bad kick package: {e}", self.label)
                            }));
                        }
                        Event::Package(pomelo::HEARTBEAT, _) | Event::Pong(_) => {}
                        Event::Package(pomelo::DATA, body) => match self.decode(&body) {
                            ServerMessage::Push { route, body } => pushes.push((route, body)),
                            other => panic!("[{}] unexpected {other:?}", self.label),
                        },
                        other => panic!("[{}] unexpected {}", self.label, describe(&other)),
                    }
                }
            }
        }
    }

    /// Closes from the client side (close frame with `code`), and asserts the server answers
    /// with a close frame and then ends the connection; returns the server's close code.
    pub fn close(&mut self, code: u16) -> Option<u16> {
        let frame = tungstenite::protocol::CloseFrame { code: code.into(), reason: "bye".into() };
        self.ws
            .close(Some(frame))
            .unwrap_or_else(|e| panic!("[{}] send a close frame: {e}", self.label));
        let end = self.read_to_end();
        assert_eq!(end.kick, None, "[{}] kicked after closing", self.label);
        assert!(
            end.close_frame,
            "[{}] the server did not answer the close frame with one",
            self.label
        );
        end.code
    }

    // ---- reading ------------------------------------------------------------------------

    fn decode(&self, body: &[u8]) -> ServerMessage {
        decode_message(body, &self.code_to_route)
            .unwrap_or_else(|e| panic!("[{}] undecodable message from the server: {e}", self.label))
    }

    fn next_event(&mut self, what: &str) -> Event {
        if let Some(how) = self.ended {
            return Event::Ended(how);
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            let now = Instant::now();
            assert!(
                now < deadline,
                "[{}] timed out after {:?} waiting for {what}",
                self.label,
                self.timeout
            );
            self.ws.get_ref().set_read_timeout(Some(deadline - now)).unwrap();
            match self.ws.read() {
                Ok(Message::Binary(data)) => {
                    let (kind, body) = one_package(&self.label, &data);
                    return Event::Package(kind, body);
                }
                Ok(Message::Text(text)) => {
                    panic!("[{}] the server sent a text message {text:?}", self.label)
                }
                Ok(Message::Ping(_)) => {} // tungstenite answers it
                Ok(Message::Pong(payload)) => return Event::Pong(payload.to_vec()),
                Ok(Message::Close(frame)) => {
                    return match frame {
                        Some(f) => Event::Close(Some(u16::from(f.code)), f.reason.to_string()),
                        None => Event::Close(None, String::new()),
                    };
                }
                Ok(Message::Frame(_)) => unreachable!("tungstenite never reads a raw frame"),
                Err(WsError::Io(e)) if e.kind() == ErrorKind::Interrupted => {}
                Err(WsError::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    panic!("[{}] timed out after {:?} waiting for {what}", self.label, self.timeout)
                }
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {
                    self.ended = Some(Closed::Eof);
                    return Event::Ended(Closed::Eof);
                }
                Err(WsError::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                )) => {
                    self.ended = Some(Closed::Eof);
                    return Event::Ended(Closed::Eof);
                }
                Err(WsError::Io(e))
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset
                            | ErrorKind::ConnectionAborted
                            | ErrorKind::BrokenPipe
                    ) =>
                {
                    // After a close frame, our answer to it may meet a socket the server has
                    // already closed; that is an end like any other.
                    self.ended = Some(Closed::Reset);
                    return Event::Ended(Closed::Reset);
                }
                Err(e) => panic!(
                    "[{}] WebSocket error from tungstenite while waiting for {what}: {e}",
                    self.label
                ),
            }
        }
    }
}

/// The one Pomelo package a binary message must hold.
fn one_package(label: &str, data: &[u8]) -> (u8, Vec<u8>) {
    let (kind, body, used) = decode_package(data).unwrap_or_else(|| {
        panic!(
            "[{label}] a binary message of {} bytes that is not a whole package: {:02x?}",
            data.len(),
            &data[..data.len().min(32)]
        )
    });
    assert_eq!(
        used,
        data.len(),
        "[{label}] a binary message holds more than one package (first is type {kind})"
    );
    (kind, body.to_vec())
}

fn describe(event: &Event) -> String {
    match event {
        Event::Ended(how) => format!("the connection ended ({how:?})"),
        Event::Close(code, reason) => format!("a close frame ({code:?}, {reason:?})"),
        Event::Pong(payload) => format!("a pong {payload:02x?}"),
        Event::Package(pomelo::KICK, body) => format!("a kick {:?}", String::from_utf8_lossy(body)),
        Event::Package(kind, body) => format!(
            "package type {kind} with body {:?}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ),
    }
}

/// Upgrades, handshakes and enters `apikey`'s channel as client `client_id` over WebSocket,
/// asserting `{code:200, msg:"add ok"}`.
pub fn ws_client(addr: SocketAddr, apikey: &str, client_id: &str) -> WsPomeloClient {
    ws_client_with(addr, &[], apikey, client_id)
}

/// [`ws_client`] with extra upgrade request headers (e.g. an allowed `Origin`).
pub fn ws_client_with(
    addr: SocketAddr,
    headers: &[(&str, &str)],
    apikey: &str,
    client_id: &str,
) -> WsPomeloClient {
    let mut c = WsPomeloClient::connect_with(addr, headers);
    let response = c.enter_client(apikey, client_id);
    assert_eq!(
        response,
        json!({"code": 200, "msg": "add ok"}),
        "ws client {client_id} enters {apikey}"
    );
    c
}

/// Upgrades, handshakes and enters as `apikey`'s management over WebSocket; returns the session
/// and the enter response.
pub fn ws_management(addr: SocketAddr, apikey: &str, secret: &str) -> (WsPomeloClient, Value) {
    let mut c = WsPomeloClient::connect(addr);
    let response = c.enter_server(apikey, secret);
    assert_eq!(response["code"], 200, "ws management enters {apikey}: {response}");
    assert_eq!(response["msg"], "push server is ok.", "ws management enters {apikey}: {response}");
    (c, response)
}

//! The tests' WebSocket view of the server: the Pomelo [`Session`] over WebSocket, with the
//! WebSocket layer done by tungstenite (an implementation nobody here wrote) and the Pomelo layer
//! by the hand-written codec in [`super::pomelo`], so neither side shares code with
//! `shaddock::protocol`.
//!
//! This file owns the transport, [`Ws`] (one package per binary message; pongs and close frames
//! as [`WsControl`] events), and what only a WebSocket session has: [`WsPomeloClient`]'s text
//! messages, pings, raw writes under tungstenite, close codes, and how a session ends ([`WsEnd`]).
//! The raw pieces the misbehaviour tests need, hand-built frames and a raw HTTP exchange, are in
//! [`raw`] and re-exported here.
//!
//! Every wait is bounded ([`IO_TIMEOUT`] by default): a server that hangs fails the test with a
//! message instead of hanging the suite.

mod raw;

#[allow(unused_imports)] // each test binary uses a different part
pub use raw::{
    HttpResponse, MASK, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_TEXT, SAMPLE_ACCEPT,
    SAMPLE_KEY, client_frame, frame_header, raw_upgrade, read_response_head, read_to_close,
    refused,
};

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::error::ProtocolError;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Error as WsError, HandshakeError, Message, WebSocket};

use super::IO_TIMEOUT;
use super::pomelo::decode_package;
use super::session::{Closed, Event, Incoming, Session, Wire};

/// Close code 1002: protocol error (e.g. an unmasked client frame).
pub const CLOSE_PROTOCOL: u16 = 1002;
/// Close code 1003: unsupported data (e.g. a text frame).
pub const CLOSE_UNSUPPORTED: u16 = 1003;
/// Close code 1009: message too big.
pub const CLOSE_TOO_BIG: u16 = 1009;

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

/// A socket under tungstenite that retries a read or write interrupted by a signal (`EINTR`).
///
/// A socket with a timeout is never restarted by the kernel after a signal, not even a stop and
/// continue of the whole test process (signal(7)); `std`'s `read` passes that on, and tungstenite
/// turns it into a failed handshake or a failed send.
#[derive(Debug)]
pub struct Patient(TcpStream);

impl std::ops::Deref for Patient {
    type Target = TcpStream;

    fn deref(&self) -> &TcpStream {
        &self.0
    }
}

impl Read for Patient {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                done => return done,
            }
        }
    }
}

impl Write for Patient {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        loop {
            match self.0.write(buf) {
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                done => return done,
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

// ---- the client -----------------------------------------------------------------------------

/// A blocking Pomelo hybrid client over WebSocket, the WebSocket twin of
/// [`PomeloClient`](super::PomeloClient).
///
/// Every binary message from the server must hold exactly one Pomelo package.
pub type WsPomeloClient = Session<Ws>;

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
    let response = c.enter_as_management(apikey, secret);
    (c, response)
}

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

impl Session<Ws> {
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
        Session::new(Ws::connect(addr, headers))
    }

    /// A client over a socket that was upgraded by hand ([`raw_upgrade`]); `leftover` is what was
    /// read past the response head.
    pub fn from_upgraded(stream: TcpStream, leftover: Vec<u8>) -> Self {
        Session::new(Ws::new(WebSocket::from_partially_read(
            Patient(stream),
            leftover,
            Role::Client,
            Some(ws_config()),
        )))
    }

    /// Sends a text message (which the server must refuse).
    pub fn send_text(&mut self, text: &str) {
        self.wire.send(Message::text(text));
    }

    /// Sends a ping with `payload`.
    pub fn send_ping(&mut self, payload: &[u8]) {
        self.wire.send(Message::Ping(payload.to_vec().into()));
    }

    /// Writes raw bytes straight to the socket, under tungstenite (which has nothing buffered:
    /// every message is written at once).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let label = &self.wire.label;
        self.wire
            .ws
            .get_mut()
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("[{label}] write {} raw bytes: {e}", bytes.len()));
    }

    /// Waits for a pong; asserts it echoes `payload` (pushes meanwhile are queued).
    pub fn expect_pong(&mut self, payload: &[u8]) {
        let got = self.wait_for("a pong", |_, incoming| match incoming {
            Incoming::Other(Event::Control(WsControl::Pong(got))) => Ok(got),
            other => Err(other),
        });
        assert_eq!(got, payload, "[{}] the pong's payload", self.label());
    }

    /// Waits for a kick and returns its reason, asserting that a close frame follows it and
    /// then the connection ends; returns the reason and the close code.
    pub fn expect_kick(&mut self) -> (String, Option<u16>) {
        let end = self.read_to_end();
        let reason = end.kick.unwrap_or_else(|| {
            panic!(
                "[{}] the session ended without a kick (close code {:?}, close frame {})",
                self.label(),
                end.code,
                end.close_frame
            )
        });
        assert!(
            end.close_frame,
            "[{}] kick {reason:?} not followed by a close frame",
            self.label()
        );
        self.requeue_pushes(end.pushes);
        (reason, end.code)
    }

    /// Reads everything until the session ends: pushes, at most one kick, then a close frame
    /// (if the server sends one) and the end of the TCP connection. Whatever follows a kick must
    /// be the close frame; whatever follows the close frame must be the end.
    pub fn read_to_end(&mut self) -> WsEnd {
        let mut pushes = self.take_pushes();
        let mut kick = None;
        let mut code = None;
        let mut close_frame = false;
        loop {
            match self.next_event("the session to end") {
                Event::Ended(_) => return WsEnd { kick, code, close_frame, pushes },
                Event::Control(WsControl::Close(c, _)) => {
                    assert!(!close_frame, "[{}] a second close frame", self.label());
                    close_frame = true;
                    code = c;
                }
                other if close_frame => {
                    panic!("[{}] {other} after the close frame", self.label())
                }
                Event::Package(kind, body) => {
                    self.drain_package(kind, &body, &mut pushes, &mut kick)
                }
                Event::Control(pong) => {
                    assert!(kick.is_none(), "[{}] {pong} after kick {kick:?}", self.label())
                }
            }
        }
    }

    /// Closes from the client side (close frame with `code`), and asserts the server answers
    /// with a close frame and then ends the connection; returns the server's close code.
    pub fn close(&mut self, code: u16) -> Option<u16> {
        let frame = tungstenite::protocol::CloseFrame { code: code.into(), reason: "bye".into() };
        let label = &self.wire.label;
        self.wire
            .ws
            .close(Some(frame))
            .unwrap_or_else(|e| panic!("[{label}] send a close frame: {e}"));
        let end = self.read_to_end();
        assert_eq!(end.kick, None, "[{}] kicked after closing", self.label());
        assert!(
            end.close_frame,
            "[{}] the server did not answer the close frame with one",
            self.label()
        );
        end.code
    }
}

// ---- the transport --------------------------------------------------------------------------

/// What a WebSocket carries besides Pomelo packages.
#[derive(Debug)]
pub enum WsControl {
    /// A pong and its payload.
    Pong(Vec<u8>),
    /// A close frame: code and reason.
    Close(Option<u16>, String),
}

impl fmt::Display for WsControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsControl::Pong(payload) => write!(f, "a pong {payload:02x?}"),
            WsControl::Close(code, reason) => write!(f, "a close frame ({code:?}, {reason:?})"),
        }
    }
}

/// A WebSocket client connection (tungstenite) carrying one Pomelo package per binary message.
#[derive(Debug)]
pub struct Ws {
    /// Boxed: tungstenite's state is large, and tests keep TCP and WebSocket sessions side by side
    /// in one enum.
    ws: Box<WebSocket<Patient>>,
    label: String,
    ended: Option<Closed>,
}

impl Ws {
    /// Upgrades a new connection to `addr` with tungstenite, sending `headers` as well.
    pub fn connect(addr: SocketAddr, headers: &[(&str, &str)]) -> Self {
        let stream = Patient(tcp_connect(addr));
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
        Self::new(ws)
    }

    fn new(ws: WebSocket<Patient>) -> Self {
        let label = ws.get_ref().local_addr().map(|a| format!("ws {a}")).unwrap_or_default();
        Ws { ws: Box::new(ws), label, ended: None }
    }

    fn send(&mut self, message: Message) {
        let what = format!("{message:?}");
        self.ws.send(message).unwrap_or_else(|e| {
            panic!("[{}] send {}: {e}", self.label, &what[..what.len().min(120)])
        });
    }

    /// What one `read` gave: an event, `None` for one to pass over (a ping, which tungstenite
    /// answers), or the read's I/O error when it would block or timed out.
    /// An end is remembered, so every later read reports it again.
    fn event(
        &mut self,
        read: Result<Message, WsError>,
        what: &str,
    ) -> Result<Option<Event<WsControl>>, std::io::Error> {
        let how = match read {
            Ok(Message::Binary(data)) => {
                let (kind, body) = one_package(&self.label, &data);
                return Ok(Some(Event::Package(kind, body)));
            }
            Ok(Message::Text(text)) => {
                panic!("[{}] the server sent a text message {text:?}", self.label)
            }
            Ok(Message::Ping(_)) => return Ok(None),
            Ok(Message::Pong(payload)) => {
                return Ok(Some(Event::Control(WsControl::Pong(payload.into()))));
            }
            Ok(Message::Close(frame)) => {
                return Ok(Some(Event::Control(match frame {
                    Some(f) => WsControl::Close(Some(u16::from(f.code)), f.reason.to_string()),
                    None => WsControl::Close(None, String::new()),
                })));
            }
            Ok(Message::Frame(_)) => unreachable!("tungstenite never reads a raw frame"),
            Err(WsError::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                return Err(e);
            }
            Err(
                WsError::ConnectionClosed
                | WsError::AlreadyClosed
                | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake),
            ) => Closed::Eof,
            // After a close frame, our answer to it may meet a socket the server has already
            // closed; that is an end like any other.
            Err(WsError::Io(e))
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                ) =>
            {
                Closed::Reset
            }
            Err(e) => panic!(
                "[{}] WebSocket error from tungstenite while waiting for {what}: {e}",
                self.label
            ),
        };
        self.ended = Some(how);
        Ok(Some(Event::Ended(how)))
    }
}

impl Wire for Ws {
    type Control = WsControl;

    fn label(&self) -> &str {
        &self.label
    }

    fn send_package(&mut self, package: Vec<u8>) {
        self.send(Message::binary(package));
    }

    fn next_event(&mut self, timeout: Duration, what: &str) -> Event<WsControl> {
        if let Some(how) = self.ended {
            return Event::Ended(how);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let now = Instant::now();
            assert!(
                now < deadline,
                "[{}] timed out after {timeout:?} waiting for {what}",
                self.label
            );
            self.ws.get_ref().set_read_timeout(Some(deadline - now)).unwrap();
            let read = self.ws.read();
            match self.event(read, what) {
                Ok(Some(event)) => return event,
                Ok(None) => {}
                Err(_) => panic!("[{}] timed out after {timeout:?} waiting for {what}", self.label),
            }
        }
    }

    fn try_next_event(&mut self) -> Option<Event<WsControl>> {
        if let Some(how) = self.ended {
            return Some(Event::Ended(how));
        }
        self.ws.get_ref().set_nonblocking(true).unwrap();
        let event = loop {
            let read = self.ws.read();
            match self.event(read, "whatever is already readable") {
                Ok(Some(event)) => break Some(event),
                Ok(None) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break None,
                Err(e) => panic!("[{}] non-blocking read: {e}", self.label),
            }
        };
        self.ws.get_ref().set_nonblocking(false).unwrap();
        event
    }

    fn partial_bytes(&self) -> usize {
        0 // tungstenite delivers whole messages, and each holds one whole package
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

//! The tests' Pomelo session, written once for every transport: the handshake and its dictionary,
//! request ids and response matching, pushes queued while a wait is for something else,
//! heartbeats, and the "nothing more is pending" check.
//!
//! A transport is a [`Wire`]: it sends an encoded package and hands back the next [`Event`]
//! within a deadline. [`super::tcp`] cuts packages out of a raw TCP stream; [`super::ws`] carries
//! one package in each binary WebSocket message and reports pongs and close frames as its own
//! [`Wire::Control`] events. What only one transport has (half-closing and quiet periods on TCP;
//! close codes, pings, text and raw frames on WebSocket), and how a session ends on it, lives in
//! that transport's `impl Session<..>` block.
//!
//! Every wait is bounded ([`IO_TIMEOUT`] unless [`Session::set_timeout`] says otherwise): a server
//! that hangs fails the test with the client's label and what it was waiting for.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, ErrorKind};
use std::time::Duration;

use serde_json::{Value, json};

use shaddock::protocol::protobuf::Protos;

use super::pomelo::{
    self, BodyOf, ServerMessage, decode_json, decode_kick, decode_message_with, encode_package,
};
use super::{ENTER, HANDSHAKE_BODY, IO_TIMEOUT, PUSH_ALL, PUSH_BY_CLIENT_ID};

/// How a connection ended, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// An orderly FIN.
    Eof,
    /// A reset (the server closed with data it had not read, or aborted).
    Reset,
}

/// Whether a read error means the peer reset (or aborted) the connection: an end, [`Closed::Reset`],
/// rather than a failure.
pub fn reset_by_peer(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted)
}

/// What a transport hands the session: a package, one of the transport's own control events, or
/// the end of the connection.
#[derive(Debug)]
pub enum Event<C> {
    /// A whole Pomelo package: type and body.
    Package(u8, Vec<u8>),
    /// A transport event that is not a package (WebSocket: a pong or a close frame).
    Control(C),
    /// The connection ended; a transport reports it again on every later read.
    Ended(Closed),
}

impl<C: fmt::Display> fmt::Display for Event<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Ended(how) => write!(f, "the connection closed ({how:?})"),
            Event::Control(control) => control.fmt(f),
            Event::Package(pomelo::KICK, body) => {
                write!(f, "a kick {:?}", String::from_utf8_lossy(body))
            }
            Event::Package(kind, body) => write!(
                f,
                "package type {kind} with body {:?}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ),
        }
    }
}

/// An [`Event`] as a wait sees it: a DATA package already decoded with the handshake dictionary.
#[derive(Debug)]
pub enum Incoming<C> {
    /// A DATA package's message.
    Message(ServerMessage),
    /// Anything else.
    Other(Event<C>),
}

impl<C: fmt::Display> fmt::Display for Incoming<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Incoming::Message(ServerMessage::Response { id, body }) => {
                write!(f, "a response to request {id}: {body}")
            }
            Incoming::Message(ServerMessage::Push { route, body }) => {
                write!(f, "a push on {route}: {body}")
            }
            Incoming::Other(event) => event.fmt(f),
        }
    }
}

/// A transport the Pomelo session runs over.
///
/// Every transport provides:
/// - [`label`](Self::label): the client's name in failure messages (its local address);
/// - [`send_package`](Self::send_package): writes one encoded package, failing the test if the
///   write fails;
/// - [`next_event`](Self::next_event): the next package, control event or end within `timeout`,
///   failing the test with `what` (and the label and timeout) when nothing comes in time. The
///   connection may end inside a package here: whether that fails the test is the session's call,
///   from [`partial_bytes`](Self::partial_bytes);
/// - [`try_next_event`](Self::try_next_event): the same without waiting, `None` when a read would
///   block;
/// - [`partial_bytes`](Self::partial_bytes): bytes of an unfinished package held (always 0 on a
///   transport that delivers whole packages).
pub trait Wire {
    /// The transport's events besides packages and the end, named in failure messages.
    type Control: fmt::Display;

    /// The client's name in failure messages.
    fn label(&self) -> &str;

    /// Writes one encoded package.
    fn send_package(&mut self, package: Vec<u8>);

    /// The next event within `timeout`; `what` names what the caller awaits.
    fn next_event(&mut self, timeout: Duration, what: &str) -> Event<Self::Control>;

    /// The next event that is already buffered or readable, without waiting.
    fn try_next_event(&mut self) -> Option<Event<Self::Control>>;

    /// Bytes of an unfinished package held.
    fn partial_bytes(&self) -> usize;
}

/// A blocking Pomelo hybrid client over the transport `W`, the tests' view of the server.
///
/// Pushes that arrive while the client waits for something else (a response, a heartbeat, a pong,
/// a kick) are queued for [`next_push`](Self::next_push), never lost.
#[derive(Debug)]
pub struct Session<W> {
    pub(super) wire: W,
    next_id: u64,
    pushes: VecDeque<(String, Value)>,
    handshake: Option<Value>,
    code_to_route: HashMap<u16, String>,
    route_to_code: HashMap<String, u16>,
    timeout: Duration,
    /// Set by [`use_protos`](Self::use_protos): requests and bodies of routes with a proto are
    /// protobuf, as a client that received them in the handshake does.
    protos: Option<Box<ClientProtos>>,
    /// The route of each request sent, to decode its response with the route's proto.
    routes_by_id: HashMap<u64, String>,
}

/// The protos a client holds: `server` decodes what the server sends, `client` encodes requests.
#[derive(Debug)]
pub struct ClientProtos {
    pub server: Protos,
    pub client: Protos,
}

impl<W: Wire> Session<W> {
    /// A session over a connected transport, before any Pomelo handshake.
    pub fn new(wire: W) -> Self {
        Session {
            wire,
            next_id: 1,
            pushes: VecDeque::new(),
            handshake: None,
            code_to_route: HashMap::new(),
            route_to_code: HashMap::new(),
            timeout: IO_TIMEOUT,
            protos: None,
            routes_by_id: HashMap::new(),
        }
    }

    /// From now on, requests on routes with a client proto are sent protobuf-encoded and bodies
    /// on routes with a server proto are decoded with it (the protos in Pomelo's own format).
    pub fn use_protos(&mut self, server: &Value, client: &Value) {
        let parse = |raw: &Value| Protos::parse(raw).expect("the test's protos parse");
        self.protos = Some(Box::new(ClientProtos { server: parse(server), client: parse(client) }));
    }

    /// Changes how long one wait may take (default [`IO_TIMEOUT`]).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The client's local address, for messages.
    pub fn label(&self) -> &str {
        self.wire.label()
    }

    /// Sends one package.
    pub fn send_package(&mut self, kind: u8, body: &[u8]) {
        self.wire.send_package(encode_package(kind, body));
    }

    // ---- handshake ------------------------------------------------------------------------

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

    /// Handshake with `body` (e.g. one that names a cached `protoVersion`), response, ack and
    /// the first heartbeat; returns the handshake response.
    pub fn pomelo_handshake_with(&mut self, body: &Value) -> Value {
        self.send_package(pomelo::HANDSHAKE, body.to_string().as_bytes());
        let response = self.read_handshake_response();
        self.send_ack();
        self.read_heartbeat();
        response
    }

    /// Reads the handshake response, asserts code 200, and remembers its dict and heartbeat.
    pub fn read_handshake_response(&mut self) -> Value {
        let response = match self.next_event("the handshake response") {
            Event::Package(pomelo::HANDSHAKE, body) => serde_json::from_slice::<Value>(&body)
                .unwrap_or_else(|e| {
                    panic!("[{}] handshake response is not JSON ({e}): {body:02x?}", self.label())
                }),
            other => panic!("[{}] expected the handshake response, got {other}", self.label()),
        };
        assert_eq!(response["code"], 200, "[{}] handshake response: {response}", self.label());
        self.code_to_route = pomelo::dict_from_handshake(&response);
        self.route_to_code = self.code_to_route.iter().map(|(c, r)| (r.clone(), *c)).collect();
        self.handshake = Some(response.clone());
        response
    }

    /// Sends HANDSHAKE_ACK.
    pub fn send_ack(&mut self) {
        self.send_package(pomelo::HANDSHAKE_ACK, &[]);
    }

    /// Reads one HEARTBEAT (queueing pushes that come before it).
    pub fn read_heartbeat(&mut self) {
        self.wait_for("a heartbeat", |_, incoming| match incoming {
            Incoming::Other(Event::Package(pomelo::HEARTBEAT, _)) => Ok(()),
            other => Err(other),
        });
    }

    /// The handshake response, once read.
    pub fn handshake_response(&self) -> &Value {
        self.handshake.as_ref().expect("handshake response read")
    }

    /// `sys.heartbeat` from the handshake response, if the server sent one.
    pub fn heartbeat_secs(&self) -> Option<u64> {
        self.handshake_response()["sys"]["heartbeat"].as_u64()
    }

    /// The handshake dictionary, route → code.
    pub fn dict(&self) -> &HashMap<String, u16> {
        &self.route_to_code
    }

    /// Sends a heartbeat and waits for the server's answer (pushes meanwhile are queued).
    pub fn heartbeat(&mut self) {
        self.send_package(pomelo::HEARTBEAT, &[]);
        self.read_heartbeat();
    }

    // ---- requests -------------------------------------------------------------------------

    /// Sends a request with an uncompressed route and a JSON body (protobuf if the route has a
    /// client proto, see [`use_protos`](Self::use_protos)), and returns the response body.
    pub fn request(&mut self, route: &str, body: Value) -> Value {
        let bytes = match &self.protos {
            Some(protos) if protos.client.has(route) => {
                let mut out = bytes::BytesMut::new();
                protos.client.encode(route, &body, &mut out).expect("the body fits its proto");
                out.to_vec()
            }
            _ => body.to_string().into_bytes(),
        };
        self.request_bytes(route, &bytes)
    }

    /// Sends a request whose body is arbitrary bytes (e.g. malformed JSON); returns the response.
    pub fn request_bytes(&mut self, route: &str, body: &[u8]) -> Value {
        let id = self.send_request(route, body);
        self.read_response(id, route)
    }

    /// Sends a request with the route given as its handshake dictionary code, as the JS client
    /// does once it has a dictionary.
    pub fn request_via_dict(&mut self, route: &str, body: Value) -> Value {
        let code = *self.route_to_code.get(route).unwrap_or_else(|| {
            panic!("[{}] route {route} is not in the handshake dict", self.label())
        });
        let id = self.take_id();
        let message = pomelo::encode_request_with_code(id, code, body.to_string().as_bytes());
        self.send_package(pomelo::DATA, &message);
        self.read_response(id, route)
    }

    /// Sends a request without waiting; returns its id for [`read_response`](Self::read_response).
    pub fn send_request(&mut self, route: &str, body: &[u8]) -> u64 {
        let id = self.take_id();
        self.routes_by_id.insert(id, route.to_owned());
        let message = pomelo::encode_request(id, route, body);
        self.send_package(pomelo::DATA, &message);
        id
    }

    /// Reads until the response to request `id` arrives, queueing pushes.
    pub fn read_response(&mut self, id: u64, route: &str) -> Value {
        let what = format!("the response to request {id} ({route})");
        self.wait_for(&what, |_, incoming| match incoming {
            Incoming::Message(ServerMessage::Response { id: got, body }) if got == id => Ok(body),
            other => Err(other),
        })
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// `connector.entryHandler.enter {role:"client", apikey, clientId}`; returns the response.
    pub fn enter_client(&mut self, apikey: &str, client_id: &str) -> Value {
        self.request(ENTER, json!({"role": "client", "apikey": apikey, "clientId": client_id}))
    }

    /// `connector.entryHandler.enter {role:"server", apikey, secret}`; returns the response.
    pub fn enter_server(&mut self, apikey: &str, secret: &str) -> Value {
        self.request(ENTER, json!({"role": "server", "apikey": apikey, "secret": secret}))
    }

    /// [`enter_server`](Self::enter_server), asserting `{code:200, msg:"push server is ok."}`.
    pub fn enter_as_management(&mut self, apikey: &str, secret: &str) -> Value {
        let response = self.enter_server(apikey, secret);
        let label = self.label();
        assert_eq!(response["code"], 200, "[{label}] management enters {apikey}: {response}");
        assert_eq!(
            response["msg"], "push server is ok.",
            "[{label}] management enters {apikey}: {response}"
        );
        response
    }

    /// `pushserver.pushHandler.pushAll {apikey, msg}`; returns the response.
    pub fn push_all(&mut self, apikey: &str, msg: Value) -> Value {
        self.request(PUSH_ALL, json!({"apikey": apikey, "msg": msg}))
    }

    /// `pushserver.pushHandler.pushByClientId {apikey, clientId, msg}`; returns the response.
    pub fn push_by_client_id(&mut self, apikey: &str, client_id: &str, msg: Value) -> Value {
        self.request(
            PUSH_BY_CLIENT_ID,
            json!({"apikey": apikey, "clientId": client_id, "msg": msg}),
        )
    }

    // ---- pushes ---------------------------------------------------------------------------

    /// The next push `(route, body)`, dict codes resolved to routes.
    pub fn next_push(&mut self) -> (String, Value) {
        if let Some(push) = self.pushes.pop_front() {
            return push;
        }
        self.wait_for("a push", |_, incoming| match incoming {
            Incoming::Message(ServerMessage::Push { route, body }) => Ok((route, body)),
            other => Err(other),
        })
    }

    /// Asserts that no push is queued or already readable, without waiting, and that the
    /// connection is still open. Heartbeats are fine.
    pub fn assert_no_pending_push(&mut self) {
        if let Some(push) = self.pushes.front() {
            panic!("[{}] unexpected extra push {push:?}", self.label());
        }
        while let Some(event) = self.wire.try_next_event() {
            match self.incoming(event) {
                Incoming::Other(Event::Package(pomelo::HEARTBEAT, _)) => {}
                Incoming::Other(Event::Ended(how)) => {
                    panic!("[{}] connection closed unexpectedly ({how:?})", self.label())
                }
                other => panic!("[{}] expected nothing pending, got {other}", self.label()),
            }
        }
    }

    // ---- for the transports' own waits ----------------------------------------------------

    /// Reads until `take` accepts what arrived (returning `Ok`). Of what it hands back (`Err`),
    /// heartbeats are passed over and pushes queued; anything else fails the test, saying it came
    /// while waiting for `what`.
    pub(super) fn wait_for<T>(
        &mut self,
        what: &str,
        mut take: impl FnMut(&Self, Incoming<W::Control>) -> Result<T, Incoming<W::Control>>,
    ) -> T {
        loop {
            let event = self.next_event(what);
            let incoming = self.incoming(event);
            match take(self, incoming) {
                Ok(done) => return done,
                Err(Incoming::Other(Event::Package(pomelo::HEARTBEAT, _))) => {}
                Err(Incoming::Message(ServerMessage::Push { route, body })) => {
                    self.pushes.push_back((route, body))
                }
                Err(other) => panic!("[{}] waiting for {what}, got {other}", self.label()),
            }
        }
    }

    /// The next event; the connection ending inside a package fails the test.
    pub(super) fn next_event(&mut self, what: &str) -> Event<W::Control> {
        let event = self.next_event_lenient(what);
        if let Event::Ended(Closed::Eof) = event {
            let left = self.wire.partial_bytes();
            assert_eq!(
                left,
                0,
                "[{}] the server closed inside a package ({left} bytes of it)",
                self.label()
            );
        }
        event
    }

    /// The next event, where the connection may end inside a package.
    pub(super) fn next_event_lenient(&mut self, what: &str) -> Event<W::Control> {
        self.wire.next_event(self.timeout, what)
    }

    /// Takes the queued pushes (a read to the end reports them with the rest; a long-lived
    /// session counts them instead of letting them pile up).
    pub fn take_pushes(&mut self) -> Vec<(String, Value)> {
        self.pushes.drain(..).collect()
    }

    /// Queues pushes again, in front of any that came later.
    pub(super) fn requeue_pushes(&mut self, pushes: Vec<(String, Value)>) {
        for push in pushes.into_iter().rev() {
            self.pushes.push_front(push);
        }
    }

    /// One package of a read to the end: a push is collected, a heartbeat passed over, a kick
    /// kept; nothing may follow the kick, and any other package fails the test.
    pub(super) fn drain_package(
        &self,
        kind: u8,
        body: &[u8],
        pushes: &mut Vec<(String, Value)>,
        kick: &mut Option<String>,
    ) {
        assert!(kick.is_none(), "[{}] package type {kind} after kick {kick:?}", self.label());
        match kind {
            pomelo::KICK => *kick = Some(self.decode_kick(body)),
            pomelo::HEARTBEAT => {}
            pomelo::DATA => match self.decode(body) {
                ServerMessage::Push { route, body } => pushes.push((route, body)),
                other => panic!("[{}] unexpected {other:?}", self.label()),
            },
            other => panic!("[{}] unexpected package type {other}", self.label()),
        }
    }

    /// A kick's reason, or a failed test if the KICK package is malformed.
    pub(super) fn decode_kick(&self, body: &[u8]) -> String {
        decode_kick(body).unwrap_or_else(|e| panic!("[{}] bad kick package: {e}", self.label()))
    }

    fn incoming(&self, event: Event<W::Control>) -> Incoming<W::Control> {
        match event {
            Event::Package(pomelo::DATA, body) => Incoming::Message(self.decode(&body)),
            other => Incoming::Other(other),
        }
    }

    fn decode(&self, body: &[u8]) -> ServerMessage {
        let decode_body = |of: BodyOf<'_>, bytes: &[u8]| {
            let route = match of {
                BodyOf::Push(route) => Some(route),
                BodyOf::Response(id) => self.routes_by_id.get(&id).map(String::as_str),
            };
            match (&self.protos, route) {
                (Some(protos), Some(route)) if protos.server.has(route) => {
                    protos.server.decode(route, bytes).map_err(|e| e.to_string())
                }
                _ => decode_json(bytes),
            }
        };
        decode_message_with(body, &self.code_to_route, &decode_body).unwrap_or_else(|e| {
            panic!("[{}] undecodable message from the server: {e}", self.label())
        })
    }
}

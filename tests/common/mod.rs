//! Shared helpers for the integration tests: a test configuration, an in-process server that is
//! stopped with a bound, and a blocking Pomelo client written independently of `shaddock::protocol`.
//!
//! Every wait is a socket read (or, for counters, a poll) with a deadline, so a server that hangs
//! makes a test fail with a message instead of hanging the suite.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod http;
pub mod pomelo;
pub mod ws;

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shaddock::Server;
use shaddock::config::{AppConfig, Config};

use pomelo::{ServerMessage, decode_kick, decode_message, decode_package, encode_package};

/// The demo app every test configuration has.
pub const DEMO: &str = "demo";
/// The demo app's management secret.
pub const DEMO_SECRET: &str = "test-secret-123";
/// A second app, to check that one app's management cannot touch another's channel.
pub const OTHER: &str = "other";
/// The second app's management secret.
pub const OTHER_SECRET: &str = "other-secret-123";

/// Route of DESIGN §1: join a channel as a client, or enter as an app's management.
pub const ENTER: &str = "connector.entryHandler.enter";
/// Route of DESIGN §1: management pushes to the whole channel.
pub const PUSH_ALL: &str = "pushserver.pushHandler.pushAll";
/// Route of DESIGN §1: management pushes to one client.
pub const PUSH_BY_CLIENT_ID: &str = "pushserver.pushHandler.pushByClientId";

/// How long any single wait on the server may take before the test fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// What the test client says about itself in its handshake.
pub const HANDSHAKE_BODY: &str = r#"{"sys":{"type":"shaddock-test","version":"0.0.1"},"user":{}}"#;

/// A configuration for an in-process server: client and control ports on `127.0.0.1:0`,
/// `reactors` reactors, no pinning, no drain window, two apps (`demo` and `other`), and the
/// backend named by `SHADDOCK_BACKEND` (`scripts/test` runs the suite once per backend), else
/// the default.
pub fn test_config(reactors: usize) -> Config {
    let mut config = Config {
        reactors,
        pin_cores: false,
        apps: vec![
            AppConfig {
                apikey: DEMO.into(),
                secret: DEMO_SECRET.into(),
                max_clients: None,
                push_rate_per_sec: None,
            },
            AppConfig {
                apikey: OTHER.into(),
                secret: OTHER_SECRET.into(),
                max_clients: None,
                push_rate_per_sec: None,
            },
        ],
        ..Config::default()
    };
    config.client.listen = "127.0.0.1:0".parse().unwrap();
    config.client.drain_secs = 0;
    config.control.listen = "127.0.0.1:0".parse().unwrap();
    config.apply_backend_env().expect("SHADDOCK_BACKEND names a backend");
    config
}

/// An in-process server, shut down gracefully (and within a bound) when dropped.
///
/// Declare it before its clients: locals drop in reverse order, so the clients close first and
/// the shutdown drain has no connection left to linger on. When the test is already failing, the
/// server is only dropped (which stops it at once), so a failure never turns into a second panic.
#[derive(Debug)]
pub struct TestServer {
    server: Option<Server>,
}

impl std::ops::Deref for TestServer {
    type Target = Server;

    fn deref(&self) -> &Server {
        self.server.as_ref().expect("server is running")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            if thread::panicking() {
                drop(server);
            } else {
                shutdown_within(server, Duration::from_secs(15));
            }
        }
    }
}

impl From<Server> for TestServer {
    /// Wraps a server started some other way (e.g. with a forced probe).
    fn from(server: Server) -> TestServer {
        TestServer { server: Some(server) }
    }
}

/// Starts an in-process server, failing the test if it does not start.
pub fn start(config: Config) -> TestServer {
    TestServer { server: Some(Server::start(config).expect("server starts")) }
}

/// Shuts the server down, failing the test if that errs, panics, or takes longer than `limit`.
pub fn shutdown_within(server: Server, limit: Duration) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(server.shutdown());
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("server shutdown failed: {e}"),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("server shutdown took more than {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("server shutdown panicked"),
    }
}

/// Polls `cond` every few milliseconds until it holds, failing the test after `timeout`. For
/// state that no socket read can await (counters); anything a client can observe is awaited by
/// reading instead.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting until {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Asserts an error response: this `code` and a non-empty human `msg`.
pub fn assert_error(response: &Value, code: u64) {
    assert_eq!(response["code"], code, "expected a {code} error, got {response}");
    let msg = response["msg"].as_str().unwrap_or("");
    assert!(!msg.trim().is_empty(), "error response without a human msg: {response}");
}

/// Connects, handshakes and enters `apikey`'s channel as client `client_id`, asserting
/// `{code:200, msg:"add ok"}`.
pub fn client(addr: SocketAddr, apikey: &str, client_id: &str) -> PomeloClient {
    let mut c = PomeloClient::connect(addr);
    let response = c.enter_client(apikey, client_id);
    assert_eq!(response["code"], 200, "client {client_id} enters {apikey}: {response}");
    assert_eq!(response["msg"], "add ok", "client {client_id} enters {apikey}: {response}");
    c
}

/// Connects, handshakes and enters as `apikey`'s management, asserting
/// `{code:200, msg:"push server is ok."}`; returns the session and the enter response.
pub fn management(addr: SocketAddr, apikey: &str, secret: &str) -> (PomeloClient, Value) {
    let mut c = PomeloClient::connect(addr);
    let response = c.enter_server(apikey, secret);
    assert_eq!(response["code"], 200, "management enters {apikey}: {response}");
    assert_eq!(response["msg"], "push server is ok.", "management enters {apikey}: {response}");
    (c, response)
}

/// How a connection ended, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// An orderly FIN.
    Eof,
    /// A reset (the server closed with data it had not read, or aborted).
    Reset,
}

/// Everything a connection delivered until it closed (see [`PomeloClient::drain_to_close`]).
#[derive(Debug)]
pub struct Drained {
    /// Pushes, in order.
    pub pushes: Vec<(String, Value)>,
    /// The reason of the kick, if one arrived (always the last package when it did).
    pub kick: Option<String>,
    /// How the connection ended.
    pub closed: Closed,
    /// Bytes of an unfinished package left when the connection ended.
    pub trailing_bytes: usize,
}

enum Event {
    Package(u8, Vec<u8>),
    Closed(Closed),
}

/// A blocking Pomelo hybrid client over raw TCP, the tests' view of the server.
///
/// Packages the server sends back to back in one read, and packages split across reads, are
/// reassembled from one buffer. Pushes that arrive while the client waits for something else (a
/// response, a heartbeat, a kick) are queued for [`next_push`](Self::next_push), never lost.
#[derive(Debug)]
pub struct PomeloClient {
    stream: TcpStream,
    label: String,
    buf: Vec<u8>,
    start: usize,
    closed: Option<Closed>,
    next_id: u64,
    pushes: VecDeque<(String, Value)>,
    handshake: Option<Value>,
    code_to_route: HashMap<u16, String>,
    route_to_code: HashMap<String, u16>,
    timeout: Duration,
}

impl PomeloClient {
    /// Connects and completes the Pomelo handshake: handshake, response (code 200), ack, and the
    /// server's first heartbeat.
    pub fn connect(addr: SocketAddr) -> Self {
        let mut c = Self::connect_raw(addr);
        c.send_handshake();
        c.read_handshake_response();
        c.send_ack();
        c.read_heartbeat();
        c
    }

    /// Only the TCP connection: no handshake.
    pub fn connect_raw(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| {
            panic!("connect to {addr}: {e} (with many clients, check `ulimit -n`)")
        });
        stream.set_nodelay(true).unwrap();
        let label = stream.local_addr().map(|a| a.to_string()).unwrap_or_default();
        PomeloClient {
            stream,
            label,
            buf: Vec::new(),
            start: 0,
            closed: None,
            next_id: 1,
            pushes: VecDeque::new(),
            handshake: None,
            code_to_route: HashMap::new(),
            route_to_code: HashMap::new(),
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

    // ---- raw bytes ------------------------------------------------------------------------

    /// Writes raw bytes.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("[{}] write {} bytes: {e}", self.label, bytes.len()));
    }

    /// Writes one package.
    pub fn send_package(&mut self, kind: u8, body: &[u8]) {
        self.send_bytes(&encode_package(kind, body));
    }

    /// Half-closes the write side.
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    // ---- handshake ------------------------------------------------------------------------

    /// Sends the HANDSHAKE package.
    pub fn send_handshake(&mut self) {
        self.send_package(pomelo::HANDSHAKE, HANDSHAKE_BODY.as_bytes());
    }

    /// Reads the handshake response, asserts code 200, and remembers its dict and heartbeat.
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

    /// Sends a request with an uncompressed route and JSON body, and returns the response body.
    pub fn request(&mut self, route: &str, body: Value) -> Value {
        self.request_bytes(route, body.to_string().as_bytes())
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
            panic!("[{}] route {route} is not in the handshake dict", self.label)
        });
        let id = self.take_id();
        let message = pomelo::encode_request_with_code(id, code, body.to_string().as_bytes());
        self.send_package(pomelo::DATA, &message);
        self.read_response(id, route)
    }

    /// Sends a request without waiting; returns its id for [`read_response`](Self::read_response).
    pub fn send_request(&mut self, route: &str, body: &[u8]) -> u64 {
        let id = self.take_id();
        let message = pomelo::encode_request(id, route, body);
        self.send_package(pomelo::DATA, &message);
        id
    }

    /// Reads until the response to request `id` arrives, queueing pushes.
    pub fn read_response(&mut self, id: u64, route: &str) -> Value {
        let what = format!("the response to request {id} ({route})");
        loop {
            match self.next_event(&what) {
                Event::Package(pomelo::DATA, body) => match self.decode(&body) {
                    ServerMessage::Response { id: got, body } if got == id => return body,
                    ServerMessage::Response { id: got, body } => {
                        panic!(
                            "[{}] waiting for {what}, got a response to id {got}: {body}",
                            self.label
                        )
                    }
                    ServerMessage::Push { route, body } => self.pushes.push_back((route, body)),
                },
                Event::Package(pomelo::HEARTBEAT, _) => {}
                other => panic!("[{}] waiting for {what}, got {}", self.label, describe(&other)),
            }
        }
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

    // ---- pushes, kicks, closes ------------------------------------------------------------

    /// The next push `(route, body)`, dict codes resolved to routes.
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

    /// Asserts that no push is queued or already readable, without waiting. Heartbeats are fine.
    pub fn assert_no_pending_push(&mut self) {
        if let Some(push) = self.pushes.front() {
            panic!("[{}] unexpected extra push {push:?}", self.label);
        }
        if self.closed.is_none() {
            self.stream.set_nonblocking(true).unwrap();
            loop {
                match self.read_some() {
                    Ok(0) => {
                        self.closed = Some(Closed::Eof);
                        break;
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => panic!("[{}] non-blocking read: {e}", self.label),
                }
            }
            self.stream.set_nonblocking(false).unwrap();
        }
        while let Some((kind, body)) = self.take_package() {
            match kind {
                pomelo::HEARTBEAT => {}
                pomelo::DATA => {
                    panic!("[{}] unexpected extra message {:?}", self.label, self.decode(&body))
                }
                other => panic!("[{}] unexpected package type {other}: {body:02x?}", self.label),
            }
        }
        assert_eq!(self.closed, None, "[{}] connection closed unexpectedly", self.label);
    }

    /// Waits for a kick and returns its reason; then asserts the connection closes with nothing
    /// after the kick. Pushes before the kick are queued.
    pub fn expect_kick(&mut self) -> String {
        let reason = loop {
            match self.next_event("a kick") {
                Event::Package(pomelo::KICK, body) => {
                    break decode_kick(&body)
                        .unwrap_or_else(|e| panic!("[{}] bad kick package: {e}", self.label));
                }
                Event::Package(pomelo::DATA, body) => match self.decode(&body) {
                    ServerMessage::Push { route, body } => self.pushes.push_back((route, body)),
                    other => panic!("[{}] waiting for a kick, got {other:?}", self.label),
                },
                Event::Package(pomelo::HEARTBEAT, _) => {}
                other => panic!("[{}] waiting for a kick, got {}", self.label, describe(&other)),
            }
        };
        match self.next_event(&format!("the close after kick {reason:?}")) {
            Event::Closed(_) => reason,
            other => panic!("[{}] after kick {reason:?}, got {}", self.label, describe(&other)),
        }
    }

    /// Asserts that the server closes the connection without sending anything (no kick).
    pub fn expect_eof(&mut self) -> Closed {
        match self.next_event("the connection to close") {
            Event::Closed(how) => how,
            other => panic!(
                "[{}] waiting for the connection to close, got {}",
                self.label,
                describe(&other)
            ),
        }
    }

    /// Reads everything until the connection closes, tolerating a stream cut inside a package.
    pub fn drain_to_close(&mut self) -> Drained {
        let mut pushes: Vec<_> = self.pushes.drain(..).collect();
        let mut kick = None;
        loop {
            match self.next_event_lenient("the connection to close") {
                Event::Closed(closed) => {
                    let trailing_bytes = self.buf.len() - self.start;
                    return Drained { pushes, kick, closed, trailing_bytes };
                }
                Event::Package(kind, body) => {
                    assert!(
                        kick.is_none(),
                        "[{}] package type {kind} after kick {kick:?}",
                        self.label
                    );
                    match kind {
                        pomelo::KICK => {
                            kick = Some(
                                decode_kick(&body)
                                    .unwrap_or_else(|e| panic!("[{}] {e}", self.label)),
                            );
                        }
                        pomelo::HEARTBEAT => {}
                        pomelo::DATA => match self.decode(&body) {
                            ServerMessage::Push { route, body } => pushes.push((route, body)),
                            other => panic!("[{}] unexpected {other:?}", self.label),
                        },
                        other => panic!("[{}] unexpected package type {other}", self.label),
                    }
                }
            }
        }
    }

    /// Asserts that nothing at all arrives, and the connection stays open, for `quiet`.
    pub fn expect_quiet_for(&mut self, quiet: Duration) {
        assert_eq!(
            self.buf.len(),
            self.start,
            "[{}] unread bytes before a quiet period",
            self.label
        );
        assert_eq!(self.closed, None, "[{}] already closed", self.label);
        let deadline = Instant::now() + quiet;
        let mut chunk = [0u8; 1024];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            self.stream.set_read_timeout(Some(deadline - now)).unwrap();
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("[{}] closed during a period that should be quiet", self.label),
                Ok(n) => panic!(
                    "[{}] received {:02x?} during a period that should be quiet",
                    self.label,
                    &chunk[..n.min(64)]
                ),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("[{}] during a quiet period: {e}", self.label),
            }
        }
    }

    // ---- reading --------------------------------------------------------------------------

    fn decode(&self, body: &[u8]) -> ServerMessage {
        decode_message(body, &self.code_to_route)
            .unwrap_or_else(|e| panic!("[{}] undecodable message from the server: {e}", self.label))
    }

    fn take_package(&mut self) -> Option<(u8, Vec<u8>)> {
        let (kind, body, used) = decode_package(&self.buf[self.start..])?;
        let package = (kind, body.to_vec());
        self.start += used;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Some(package)
    }

    /// The next package, or the close; a close inside a package is a failure.
    fn next_event(&mut self, what: &str) -> Event {
        let event = self.next_event_lenient(what);
        if let Event::Closed(Closed::Eof) = event {
            let left = self.buf.len() - self.start;
            assert_eq!(
                left, 0,
                "[{}] the server closed inside a package ({left} bytes of it)",
                self.label
            );
        }
        event
    }

    /// One `read` appended to `buf`.
    fn read_some(&mut self) -> std::io::Result<usize> {
        const READ_SIZE: usize = 16 * 1024;
        let len = self.buf.len();
        self.buf.resize(len + READ_SIZE, 0);
        let result = self.stream.read(&mut self.buf[len..]);
        self.buf.truncate(len + result.as_ref().map_or(0, |n| *n));
        result
    }

    fn next_event_lenient(&mut self, what: &str) -> Event {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some((kind, body)) = self.take_package() {
                return Event::Package(kind, body);
            }
            if let Some(closed) = self.closed {
                return Event::Closed(closed);
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "[{}] timed out after {:?} waiting for {what}",
                self.label,
                self.timeout
            );
            self.stream.set_read_timeout(Some(deadline - now)).unwrap();
            match self.read_some() {
                Ok(0) => self.closed = Some(Closed::Eof),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!("[{}] timed out after {:?} waiting for {what}", self.label, self.timeout)
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                    ) =>
                {
                    self.closed = Some(Closed::Reset)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("[{}] read while waiting for {what}: {e}", self.label),
            }
        }
    }
}

fn describe(event: &Event) -> String {
    match event {
        Event::Closed(how) => format!("the connection closed ({how:?})"),
        Event::Package(pomelo::KICK, body) => format!("a kick {:?}", String::from_utf8_lossy(body)),
        Event::Package(kind, body) => {
            format!(
                "package type {kind} with body {:?}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            )
        }
    }
}

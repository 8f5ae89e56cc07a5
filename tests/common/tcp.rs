//! The Pomelo session over raw TCP: [`Tcp`] cuts packages out of the byte stream, and
//! [`PomeloClient`] adds what only a raw stream can do or see (raw bytes, a half-close, a quiet
//! period, an end inside a package) and how a TCP session ends (a kick, then the close).

use std::convert::Infallible;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::pomelo::{self, decode_package};
use super::session::{Closed, Event, Incoming, Session, Wire, reset_by_peer};

/// A blocking Pomelo hybrid client over raw TCP.
///
/// Packages the server sends back to back in one read, and packages split across reads, are
/// reassembled from one buffer.
pub type PomeloClient = Session<Tcp>;

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
    let response = c.enter_as_management(apikey, secret);
    (c, response)
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

impl Session<Tcp> {
    /// Connects and completes the Pomelo handshake: handshake, response (code 200), ack, and the
    /// server's first heartbeat.
    pub fn connect(addr: SocketAddr) -> Self {
        let mut c = Self::connect_raw(addr);
        c.pomelo_handshake();
        c
    }

    /// Only the TCP connection: no handshake.
    pub fn connect_raw(addr: SocketAddr) -> Self {
        Session::new(Tcp::connect(addr))
    }

    /// Connects over TLS (trusting what `config` trusts) and completes the Pomelo handshake.
    pub fn connect_tls(addr: SocketAddr, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        let mut c = Session::new(Tcp::connect_tls(addr, config));
        c.pomelo_handshake();
        c
    }

    /// Writes raw bytes.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.wire.write(bytes);
    }

    /// The client's own address (what the server sees as the peer).
    pub fn local_addr(&self) -> SocketAddr {
        self.wire.stream.socket().local_addr().unwrap()
    }

    /// Half-closes the write side.
    pub fn shutdown_write(&mut self) {
        let _ = self.wire.stream.socket().shutdown(Shutdown::Write);
    }

    /// Waits for a kick and returns its reason; then asserts the connection closes with nothing
    /// after the kick. Pushes before the kick are queued.
    pub fn expect_kick(&mut self) -> String {
        let reason = self.wait_for("a kick", |s, incoming| match incoming {
            Incoming::Other(Event::Package(pomelo::KICK, body)) => Ok(s.decode_kick(&body)),
            other => Err(other),
        });
        match self.next_event(&format!("the close after kick {reason:?}")) {
            Event::Ended(_) => reason,
            other => panic!("[{}] after kick {reason:?}, got {other}", self.label()),
        }
    }

    /// Asserts that the server closes the connection without sending anything (no kick).
    pub fn expect_eof(&mut self) -> Closed {
        match self.next_event("the connection to close") {
            Event::Ended(how) => how,
            other => {
                panic!("[{}] waiting for the connection to close, got {other}", self.label())
            }
        }
    }

    /// Reads everything until the connection closes, tolerating a stream cut inside a package.
    pub fn drain_to_close(&mut self) -> Drained {
        let mut pushes = self.take_pushes();
        let mut kick = None;
        loop {
            match self.next_event_lenient("the connection to close") {
                Event::Ended(closed) => {
                    let trailing_bytes = self.wire.partial_bytes();
                    return Drained { pushes, kick, closed, trailing_bytes };
                }
                Event::Package(kind, body) => {
                    self.drain_package(kind, &body, &mut pushes, &mut kick)
                }
                Event::Control(never) => match never {},
            }
        }
    }

    /// Asserts that nothing at all arrives, and the connection stays open, for `quiet`.
    pub fn expect_quiet_for(&mut self, quiet: Duration) {
        self.wire.expect_quiet_for(quiet);
    }
}

/// The byte stream under [`Tcp`]: the socket itself, or TLS over it (rustls's client).
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    /// The socket, for timeouts and shutdowns.
    pub fn socket(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            // An end without close_notify is an end all the same here (the server aborts
            // connections that failed without one).
            Stream::Tls(s) => match s.read(buf) {
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A raw TCP connection (or TLS over one) carrying Pomelo packages back to back.
#[derive(Debug)]
pub struct Tcp {
    stream: Stream,
    label: String,
    /// Bytes read and not yet taken as packages start at `buf[start]`.
    buf: Vec<u8>,
    start: usize,
    closed: Option<Closed>,
}

impl Tcp {
    /// Connects, with Nagle off so every package leaves at once.
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| {
            panic!("connect to {addr}: {e} (with many clients, check `ulimit -n`)")
        });
        stream.set_nodelay(true).unwrap();
        let label = stream.local_addr().map(|a| a.to_string()).unwrap_or_default();
        Tcp { stream: Stream::Plain(stream), label, buf: Vec::new(), start: 0, closed: None }
    }

    /// Connects over TLS with `config`, verifying the server as `localhost`; the handshake
    /// runs with the first write or read.
    pub fn connect_tls(addr: SocketAddr, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        let mut tcp = Tcp::connect(addr);
        let Stream::Plain(socket) = tcp.stream else { unreachable!("just connected") };
        let name = "localhost".try_into().expect("a server name");
        let conn = rustls::ClientConnection::new(config, name).expect("a TLS client");
        tcp.stream = Stream::Tls(Box::new(rustls::StreamOwned::new(conn, socket)));
        tcp.label.insert_str(0, "tls ");
        tcp
    }

    fn write(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("[{}] write {} bytes: {e}", self.label, bytes.len()));
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

    /// A buffered package, or the end once it has been read.
    fn buffered(&mut self) -> Option<Event<Infallible>> {
        if let Some((kind, body)) = self.take_package() {
            return Some(Event::Package(kind, body));
        }
        self.closed.map(Event::Ended)
    }

    /// One `read` appended to `buf`; an EOF or a reset is recorded in `closed`. The errors left
    /// (a timeout, would-block, anything unexpected) are the caller's.
    fn fill(&mut self) -> io::Result<()> {
        const READ_SIZE: usize = 16 * 1024;
        let len = self.buf.len();
        self.buf.resize(len + READ_SIZE, 0);
        let result = self.stream.read(&mut self.buf[len..]);
        self.buf.truncate(len + result.as_ref().map_or(0, |n| *n));
        match result {
            Ok(0) => self.closed = Some(Closed::Eof),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if reset_by_peer(&e) => self.closed = Some(Closed::Reset),
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn expect_quiet_for(&mut self, quiet: Duration) {
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
            self.stream.socket().set_read_timeout(Some(deadline - now)).unwrap();
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
}

impl Wire for Tcp {
    type Control = Infallible;

    fn label(&self) -> &str {
        &self.label
    }

    fn send_package(&mut self, package: Vec<u8>) {
        self.write(&package);
    }

    fn next_event(&mut self, timeout: Duration, what: &str) -> Event<Infallible> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(event) = self.buffered() {
                return event;
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "[{}] timed out after {timeout:?} waiting for {what}",
                self.label
            );
            self.stream.socket().set_read_timeout(Some(deadline - now)).unwrap();
            match self.fill() {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!("[{}] timed out after {timeout:?} waiting for {what}", self.label)
                }
                Err(e) => panic!("[{}] read while waiting for {what}: {e}", self.label),
            }
        }
    }

    fn try_next_event(&mut self) -> Option<Event<Infallible>> {
        loop {
            if let Some(event) = self.buffered() {
                return Some(event);
            }
            self.stream.socket().set_nonblocking(true).unwrap();
            let result = self.fill();
            self.stream.socket().set_nonblocking(false).unwrap();
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                Err(e) => panic!("[{}] non-blocking read: {e}", self.label),
            }
        }
    }

    fn partial_bytes(&self) -> usize {
        self.buf.len() - self.start
    }
}

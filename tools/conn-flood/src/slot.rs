//! One connection's place in an event loop: its protocol state, its socket, and the socket
//! operations (open with a source address, write now or queue, flush, close).
//!
//! # Invariants
//! - A slot's [`Token`] carries its index, a generation that every `open` bumps, so an event
//!   for a socket that was closed and replaced never reaches the new one, and the channel: a
//!   Socket.IO polling client's second socket, for its POSTs ([`Side`]), has [`POST_BIT`] set.
//! - An idle connection holds no buffer: `partial` (an unfinished unit read) and `pending`
//!   (bytes the socket would not take) are empty and freed when a socket closes; a slot
//!   without a post socket holds no [`Side`].
//! - With `--tls` the main socket carries a [`Tls`] session, made by every `open`, dropped by
//!   `close`: the slot is connected once its handshake is done, reads and writes go through
//!   it, and what the socket would not take waits in the session instead of `pending`. The post
//!   socket never has TLS (`--tls` refuses long-polling).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use socket2::{Domain, Socket, Type};

use crate::conn::{Channel, Conn, Protocol, Stage};
use crate::tls::{self, Tls};

/// The bit of a token's index half that names a slot's post socket.
pub const POST_BIT: usize = 1 << 31;

/// A Socket.IO polling client's second socket, for its POSTs (opened when the first POST goes,
/// dropped when the server closes it; the next POST opens another).
#[derive(Debug)]
pub struct Side {
    /// The socket.
    pub socket: TcpStream,
    /// Its connect is in progress: what it is to send waits in `pending`.
    pub connecting: bool,
    /// An unfinished answer from the last read.
    pub partial: Vec<u8>,
    /// Bytes waiting for the socket to take them.
    pub pending: Vec<u8>,
}

/// One connection of an event loop.
#[derive(Debug)]
pub struct Slot {
    /// Its protocol state.
    pub conn: Conn,
    /// Its socket, while one is open.
    pub socket: Option<TcpStream>,
    /// Bumped by every open; half of the token.
    pub generation: u32,
    /// The run-wide connection number (clientId, source address, apikey).
    pub index: u64,
    /// When the current connect started (ns).
    pub started_ns: u64,
    /// Connect attempts since the connection was last entered.
    pub attempts: u8,
    /// The connection was closed on purpose and is coming back.
    pub reconnecting: bool,
    /// An unfinished unit from the last read.
    pub partial: Vec<u8>,
    /// Bytes waiting for the socket to take them.
    pub pending: Vec<u8>,
    /// Socket.IO polling: the post socket, while one is open.
    pub post: Option<Box<Side>>,
    /// `--tls`: the main socket's session, while one is open.
    pub tls: Option<Box<Tls>>,
}

impl Slot {
    /// A slot for connection `index`, not connected.
    pub fn new(protocol: Protocol, index: u64) -> Slot {
        Slot {
            conn: Conn::new(protocol),
            socket: None,
            generation: 0,
            index,
            started_ns: 0,
            attempts: 0,
            reconnecting: false,
            partial: Vec::new(),
            pending: Vec::new(),
            post: None,
            tls: None,
        }
    }

    /// The token of slot `at`'s `channel` in its current generation.
    pub fn token(&self, at: usize, channel: Channel) -> Token {
        let bit = if channel == Channel::Post { POST_BIT } else { 0 };
        Token((self.generation as usize) << 32 | bit | at)
    }

    /// Splits a token into slot index, generation and channel.
    pub fn untoken(token: Token) -> (usize, u32, Channel) {
        let channel = if token.0 & POST_BIT != 0 { Channel::Post } else { Channel::Main };
        (token.0 & (POST_BIT - 1), (token.0 >> 32) as u32, channel)
    }

    /// Starts a non-blocking connect from `source` (port chosen by the kernel) to `target`, and
    /// registers the socket as slot `at`; with `tls`, a session for it.
    pub fn open(
        &mut self,
        at: usize,
        source: Ipv4Addr,
        target: SocketAddr,
        tls: Option<&tls::Client>,
        registry: &Registry,
        now_ns: u64,
    ) -> io::Result<()> {
        self.generation = self.generation.wrapping_add(1);
        self.attempts = self.attempts.saturating_add(1);
        self.started_ns = now_ns;
        self.tls = tls.map(|client| client.connect().map(Box::new)).transpose()?;
        let mut stream = connect_from(source, target)?;
        let token = self.token(at, Channel::Main);
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        self.socket = Some(stream);
        self.conn.stage = Stage::Connecting;
        Ok(())
    }

    /// Whether a connect in progress has completed (with TLS: and its handshake, driven here,
    /// reading through the loop's `cipher` buffer): `Ok(true)` connected, `Ok(false)` not yet.
    pub fn connected(&mut self, cipher: &mut [u8]) -> io::Result<bool> {
        let Some(socket) = &mut self.socket else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        match self.tls.as_deref_mut() {
            None => stream_connected(socket),
            Some(tls) if !tls.began() && !stream_connected(socket)? => Ok(false),
            Some(tls) => tls.handshake(socket, cipher),
        }
    }

    /// Whether bytes wait for the socket to take them.
    pub fn wants_flush(&self) -> bool {
        !self.pending.is_empty() || self.tls.as_ref().is_some_and(|tls| tls.wants_write())
    }

    /// Whether a read would find bytes without the socket having new ones (TLS only: plaintext
    /// or ciphertext its session holds).
    pub fn buffered(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.buffered())
    }

    /// Sends `bytes` on the post socket, opening one (from `source`, as slot `at`) if there is
    /// none; while it connects they wait.
    pub fn send_post(
        &mut self,
        bytes: &[u8],
        at: usize,
        source: Ipv4Addr,
        target: SocketAddr,
        registry: &Registry,
    ) -> io::Result<()> {
        if self.post.is_none() {
            let mut socket = connect_from(source, target)?;
            let token = self.token(at, Channel::Post);
            registry.register(&mut socket, token, Interest::READABLE | Interest::WRITABLE)?;
            let side = Side { socket, connecting: true, partial: Vec::new(), pending: Vec::new() };
            self.post = Some(Box::new(side));
        }
        let Some(side) = self.post.as_deref_mut() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        if side.connecting || !side.pending.is_empty() {
            side.pending.extend_from_slice(bytes);
            return Ok(());
        }
        let written = write_some(&mut side.socket, bytes)?;
        side.pending.extend_from_slice(&bytes[written..]);
        Ok(())
    }

    /// The post socket: whether its connect completed (`Ok(true)`, and then it writes what
    /// waited), `Ok(false)` not yet, or failed.
    pub fn post_connected(&mut self) -> io::Result<bool> {
        let Some(side) = self.post.as_deref_mut() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        if side.connecting && !stream_connected(&side.socket)? {
            return Ok(false);
        }
        side.connecting = false;
        Ok(true)
    }

    /// Writes what waits for the post socket, as far as it takes it.
    pub fn flush_post(&mut self) -> io::Result<()> {
        match self.post.as_deref_mut().filter(|s| !s.connecting) {
            Some(side) => flush_pending(&mut side.socket, &mut side.pending),
            None => Ok(()),
        }
    }

    /// Deregisters and closes the post socket, if any.
    pub fn close_post(&mut self, registry: &Registry) {
        if let Some(mut side) = self.post.take() {
            let _ = registry.deregister(&mut side.socket);
        }
    }

    /// Writes `bytes` now, queueing what the socket will not take (after anything queued).
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let (Some(tls), Some(socket)) = (self.tls.as_deref_mut(), self.socket.as_mut()) {
            return tls.send(socket, bytes);
        }
        if !self.pending.is_empty() {
            self.pending.extend_from_slice(bytes);
            return Ok(());
        }
        let Some(socket) = &mut self.socket else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let written = write_some(socket, bytes)?;
        self.pending.extend_from_slice(&bytes[written..]);
        Ok(())
    }

    /// Writes what is queued, as far as the socket takes it.
    pub fn flush(&mut self) -> io::Result<()> {
        match (&mut self.socket, self.tls.as_deref_mut()) {
            (Some(socket), Some(tls)) => tls.flush(socket),
            (Some(socket), None) => flush_pending(socket, &mut self.pending),
            (None, _) => Ok(()),
        }
    }

    /// Deregisters and closes the socket (with TLS, after close_notify) and frees the buffers;
    /// the stage goes back to `Idle`.
    pub fn close(&mut self, registry: &Registry) {
        if let (Some(tls), Some(socket)) = (self.tls.as_deref_mut(), self.socket.as_mut()) {
            tls.close(socket);
        }
        if let Some(mut socket) = self.socket.take() {
            let _ = registry.deregister(&mut socket);
        }
        self.close_post(registry);
        self.tls = None;
        self.partial = Vec::new();
        self.pending = Vec::new();
        self.conn.stage = Stage::Idle;
        self.conn.polling = None;
    }
}

/// Reads from `socket` into `buf`, through `tls` when there is a session (with the loop's
/// `cipher` buffer): a plain `read`'s results either way.
pub fn read_stream(
    socket: &mut TcpStream,
    tls: Option<&mut Tls>,
    cipher: &mut [u8],
    buf: &mut [u8],
) -> io::Result<usize> {
    match tls {
        Some(tls) => tls.read(socket, cipher, buf),
        None => socket.read(buf),
    }
}

/// A non-blocking socket bound to `source` (port chosen by the kernel; unspecified: any
/// address), its connect to `target` started.
fn connect_from(source: Ipv4Addr, target: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.set_nodelay(true)?;
    if !source.is_unspecified() {
        bind_address_no_port(&socket)?;
        socket.bind(&SocketAddr::from((source, 0)).into())?;
    }
    match socket.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// Whether `socket`'s connect completed: `Ok(true)`, `Ok(false)` not yet, or its error.
fn stream_connected(socket: &TcpStream) -> io::Result<bool> {
    if let Some(e) = socket.take_error()? {
        return Err(e);
    }
    match socket.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes what `pending` holds, as far as the socket takes it; frees it once empty.
fn flush_pending(socket: &mut TcpStream, pending: &mut Vec<u8>) -> io::Result<()> {
    let written = write_some(socket, pending)?;
    pending.drain(..written);
    if pending.is_empty() {
        *pending = Vec::new();
    }
    Ok(())
}

/// Writes as much of `bytes` as the socket takes without blocking; returns how much.
fn write_some(socket: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
    let mut at = 0;
    while at < bytes.len() {
        match socket.write(&bytes[at..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(at)
}

/// Sets `IP_BIND_ADDRESS_NO_PORT`, so that binding a source address leaves the choice of port to
/// `connect`, which may reuse a port for another destination: without it every bind takes a port
/// of its own, and runs after runs exhaust the range among connections in TIME_WAIT.
#[allow(unsafe_code)]
fn bind_address_no_port(socket: &socket2::Socket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: the descriptor is a live socket owned by `socket` for the whole call, and the
    // option value points at a `c_int` that outlives the call, with its exact size passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_index_and_generation() {
        let mut slot = Slot::new(Protocol::PomeloTcp, 9);
        slot.generation = 7;
        let token = slot.token(12_345, Channel::Main);
        assert_eq!(Slot::untoken(token), (12_345, 7, Channel::Main));
        let token = slot.token(12_345, Channel::Post);
        assert_eq!(Slot::untoken(token), (12_345, 7, Channel::Post));
        slot.generation = u32::MAX;
        assert_eq!(Slot::untoken(slot.token(0, Channel::Main)), (0, u32::MAX, Channel::Main));
    }

    #[test]
    fn opens_from_a_source_address_and_queues_what_the_socket_refuses() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap();
        let poll = mio::Poll::new().unwrap();
        let mut slot = Slot::new(Protocol::PomeloTcp, 0);
        slot.open(3, Ipv4Addr::new(127, 0, 0, 2), target, None, poll.registry(), 1).unwrap();
        assert_eq!(slot.conn.stage, Stage::Connecting);
        let (peer, from) = listener.accept().unwrap();
        assert_eq!(from.ip(), Ipv4Addr::new(127, 0, 0, 2));
        // Wait (bounded) for the connect to complete on our side.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !slot.connected(&mut []).unwrap() {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // The peer never reads: a large enough write ends up partly queued.
        let big = vec![7u8; 16 << 20];
        slot.send(&big).unwrap();
        assert!(!slot.pending.is_empty());
        slot.send(b"tail").unwrap();
        assert!(slot.pending.ends_with(b"tail"));
        slot.close(poll.registry());
        assert!(slot.socket.is_none() && slot.pending.is_empty());
        assert_eq!(slot.conn.stage, Stage::Idle);
        drop(peer);
    }
}

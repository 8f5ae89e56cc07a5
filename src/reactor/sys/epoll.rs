//! The epoll backend, through `mio`: readiness, non-blocking sockets, `read` into one per-core
//! scratch buffer, direct `writev`s.
//!
//! # Invariants
//! - Connections are registered once for read and write interest, edge-triggered, under the
//!   token `generation << 32 | index`; write interest is thus always armed and costs nothing.
//! - Every listener's token ([`listener_token`]: the `i`th below `LISTENERS`) and `WAKER` have
//!   all generation bits set, which no connection has (generations are 24 bits), so no
//!   connection token collides with them.
//! - Listeners are edge-triggered: one is `ready` from its event until an accept on it fails
//!   with `WouldBlock`, and [`Epoll::accept`] takes from the ready ones in turn, so that no
//!   listener is forgotten with connections queued and none starves another.
//! - The scratch buffer is lent by [`Epoll::recv`] and given back by [`Epoll::recycle`]; between
//!   the two, `scratch` is empty (a `recv` without a `recycle` would allocate a new one).
//! - A released connection ([`Epoll::release`]) is deregistered at once, and what the last wait
//!   observed for it but did not deliver yet is forgotten. Its unread bytes stay in its socket:
//!   being edge-triggered, the next owner's registration reports them.

use std::io::{self, IoSlice, Read, Write};
use std::net::{self, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use bytes::Bytes;
use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::{Event, MAX_IOVECS, Recv, RecvBuf};

pub(super) const WAKER: Token = Token(usize::MAX - 2);
/// The first listener's token; the `i`th is `LISTENERS - i`.
const LISTENERS: usize = usize::MAX - 3;

/// The token of listener `i` (there are far fewer than 2^32 listeners).
fn listener_token(i: usize) -> Token {
    Token(LISTENERS - i)
}

/// The listener whose token this is, if it is one.
fn listener_index(token: usize) -> Option<usize> {
    (token >> 32 == 0xFFFF_FFFF && token <= LISTENERS).then(|| LISTENERS - token)
}

/// The per-core read buffer.
const SCRATCH_BYTES: usize = 64 * 1024;

/// One reactor's epoll instance and listeners.
#[derive(Debug)]
pub struct Epoll {
    poll: Poll,
    events: Events,
    /// What the last wait observed, in delivery order, and how much of it was delivered.
    ready: Vec<Event>,
    delivered: usize,
    /// Emptied by `stop_accepting`.
    listeners: Vec<Listening>,
    /// The listener `accept` tries first.
    next_listener: usize,
    scratch: Vec<u8>,
}

/// A listener, and whether it may have connections queued (edge-triggered: until an accept on
/// it fails with `WouldBlock`).
#[derive(Debug)]
struct Listening {
    listener: TcpListener,
    ready: bool,
}

impl Epoll {
    /// Takes the core's poll (whose registry already holds the inbox's waker under `WAKER`)
    /// and its non-blocking listeners.
    pub fn new(poll: Poll, listeners: Vec<net::TcpListener>) -> io::Result<Epoll> {
        let mut listening = Vec::with_capacity(listeners.len());
        for (i, listener) in listeners.into_iter().enumerate() {
            let mut listener = TcpListener::from_std(listener);
            poll.registry().register(&mut listener, listener_token(i), Interest::READABLE)?;
            // Ready until first seen empty: costs one accept, misses nothing queued before.
            listening.push(Listening { listener, ready: true });
        }
        Ok(Epoll {
            poll,
            events: Events::with_capacity(1024),
            ready: Vec::with_capacity(1024),
            delivered: 0,
            listeners: listening,
            next_listener: 0,
            scratch: vec![0; SCRATCH_BYTES],
        })
    }

    pub fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        self.ready.clear();
        self.delivered = 0;
        if let Err(e) = self.poll.poll(&mut self.events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        for event in self.events.iter() {
            match event.token() {
                WAKER => self.ready.push(Event::Wake),
                Token(token) => {
                    if let Some(i) = listener_index(token) {
                        if let Some(listening) = self.listeners.get_mut(i) {
                            listening.ready = true;
                            self.ready.push(Event::Accept);
                        }
                        continue;
                    }
                    let index = token & 0xFFFF_FFFF;
                    let generation = (token >> 32) as u32;
                    if event.is_writable() {
                        self.ready.push(Event::Writable { index, generation });
                    }
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        self.ready.push(Event::Input { index, generation });
                    }
                }
            }
        }
        Ok(())
    }

    pub fn next_event(&mut self) -> Option<Event> {
        let event = self.ready.get(self.delivered).copied();
        self.delivered += 1;
        event
    }

    /// One connection from the ready listeners, taken in turn (the next call starts at the
    /// listener after this one's); a listener found empty is no longer ready. `WouldBlock` when
    /// none is ready.
    pub fn accept(&mut self) -> io::Result<TcpStream> {
        let count = self.listeners.len();
        for step in 0..count {
            let i = (self.next_listener + step) % count;
            let listening = &mut self.listeners[i];
            if !listening.ready {
                continue;
            }
            match listening.listener.accept() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => listening.ready = false,
                result => {
                    // Taken, or failed some other way (still ready: the reactor comes back).
                    self.next_listener = (i + 1) % count;
                    return result.map(|(stream, _)| stream.into());
                }
            }
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    pub fn stop_accepting(&mut self) {
        for mut listening in self.listeners.drain(..) {
            let _ = self.poll.registry().deregister(&mut listening.listener);
        }
    }

    pub fn open(&mut self, index: usize, generation: u32, stream: &TcpStream) -> io::Result<()> {
        let token = Token((generation as usize) << 32 | index);
        let interest = Interest::READABLE | Interest::WRITABLE;
        self.poll.registry().register(&mut SourceFd(&stream.as_raw_fd()), token, interest)
    }

    /// Reads once into the scratch buffer (retrying `EINTR`).
    pub fn recv(&mut self, mut stream: &TcpStream) -> Recv {
        let mut buf = std::mem::take(&mut self.scratch);
        if buf.is_empty() {
            buf = vec![0; SCRATCH_BYTES];
        }
        loop {
            match stream.read(&mut buf) {
                Ok(0) => {
                    self.scratch = buf;
                    return Recv::Closed;
                }
                Ok(len) => return Recv::Data(RecvBuf::Scratch { buf, len }),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.scratch = buf;
                    return match e.kind() {
                        io::ErrorKind::WouldBlock => Recv::WouldBlock,
                        _ => Recv::Failed(e),
                    };
                }
            }
        }
    }

    pub fn recycle(&mut self, buf: RecvBuf) {
        #[allow(irrefutable_let_patterns)] // the only variant in a build without io_uring
        if let RecvBuf::Scratch { buf, .. } = buf {
            self.scratch = buf;
        }
    }

    /// One `writev` of up to [`MAX_IOVECS`] buffers; `WouldBlock` is 0 bytes taken.
    pub fn send(
        &mut self,
        _index: usize,
        stream: &TcpStream,
        bufs: &[&Bytes],
        offset: usize,
    ) -> io::Result<usize> {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let count = bufs.len().min(MAX_IOVECS);
        for (i, (slice, buf)) in slices.iter_mut().zip(bufs).enumerate() {
            *slice = IoSlice::new(if i == 0 { &buf[offset..] } else { buf });
        }
        write_vectored(stream, &slices[..count])
    }

    pub fn send_copy(
        &mut self,
        _index: usize,
        stream: &TcpStream,
        data: &[u8],
    ) -> io::Result<usize> {
        write_vectored(stream, &[IoSlice::new(data)])
    }

    /// Deregisters the connection without closing it, and drops its events not delivered yet:
    /// released at once (true).
    pub fn release(&mut self, index: usize, generation: u32, stream: &TcpStream) -> bool {
        let _ = self.poll.registry().deregister(&mut SourceFd(&stream.as_raw_fd()));
        let (delivered, mut at) = (self.delivered, 0);
        self.ready.retain(|&event| {
            at += 1;
            let of_it = matches!(event,
                Event::Input { index: i, generation: g } | Event::Writable { index: i, generation: g }
                    if (i, g) == (index, generation));
            at <= delivered || !of_it
        });
        true
    }

    pub fn close(&mut self, _index: usize, stream: TcpStream) {
        let _ = self.poll.registry().deregister(&mut SourceFd(&stream.as_raw_fd()));
        drop(stream);
    }
}

/// One `writev`, retried on `EINTR`; `WouldBlock` is 0 bytes written.
fn write_vectored(mut stream: &TcpStream, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    loop {
        match stream.write_vectored(slices) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

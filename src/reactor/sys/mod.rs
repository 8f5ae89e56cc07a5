//! A reactor's I/O backend, behind one contract: epoll (through `mio`, [`epoll`]) or io_uring
//! (`uring`, cargo feature `io-uring`, Linux).
//!
//! Nothing above this module names epoll or io_uring: the reactor (accept, read, write, close)
//! speaks only to its [`Driver`], and the driver hands every call to the backend it was built
//! with. Three names, one each: the operator's [`BackendChoice`] (`backend = "epoll" |
//! "io_uring" | "auto"`), the [`Backend`] the server runs on once the choice is resolved
//! ([`resolve`]), and each reactor's [`Driver`], its instance of that backend. The server
//! resolves the choice once, makes each reactor's [`Seed`] and inbox [`Waker`] ([`seed`]), and
//! each reactor thread builds its driver from its seed ([`Driver::new`]), so that a ring is set
//! up by the thread that uses it.
//!
//! # The contract
//! Every backend provides, for one reactor and on that reactor's thread only:
//!
//! 1. **Accept on the core's listeners.** The backend owns the core's `SO_REUSEPORT` listeners,
//!    one per port (each one of its port's [`bind_listeners`], handed to [`Driver::new`]: the
//!    client port's first, then `mqtt.listen`'s when set). [`Event::Accept`] says connections
//!    may be waiting on one of them; [`Driver::accept`] hands them out one at a time, from any
//!    listener that has one and none starving another, and fails with `WouldBlock` only when no
//!    listener has one for now (so the reactor may stop early and come back next turn: what is
//!    not taken stays queued, on every listener). [`Driver::stop_accepting`] closes all of them
//!    for good.
//! 2. **Open a connection.** [`Driver::open`] starts watching a newly accepted socket under the
//!    reactor's `(index, generation)` for it. Every event names that pair, so the reactor can
//!    drop an event for a connection that closed and whose slot was reused.
//! 3. **Deliver "bytes arrived".** [`Event::Input`] says a connection has input (or end of
//!    stream, or an error). [`Driver::recv`] hands it out as a [`RecvBuf`] the reactor decodes in
//!    place, and the reactor gives it back with [`Driver::recycle`] before the next `recv`.
//!    `Recv::WouldBlock` means "nothing more for now": a new [`Event::Input`] will follow.
//!    [`Driver::input_waits_in_socket`] says whether the reactor may leave an event unread and
//!    come back later (epoll: the event is a readiness edge, the bytes wait in the socket) or
//!    must `recv` before the next event (io_uring: the event carries a completed receive).
//! 4. **Deliver "writable".** [`Event::Writable`] says a connection that was refused bytes can
//!    take more now, or that the bytes the backend held for it have left (item 6). A backend may
//!    also deliver it for a connection that was refused nothing: the reactor checks its own
//!    state (a queue, a closing connection whose write side is still open), not the event.
//! 5. **Arm and disarm write interest.** A [`Driver::send`] that takes fewer bytes than offered
//!    arms write interest for that connection; the next [`Event::Writable`] disarms it. The
//!    reactor never asks for it explicitly (epoll registers read and write interest once,
//!    edge-triggered, so arming costs no syscall).
//! 6. **Send, vectored.** [`Driver::send`] takes as many bytes of a list of shared buffers (from
//!    an offset into the first; at most [`MAX_IOVECS`] buffers) as it can without blocking and
//!    says how many; what it did not take stays the caller's to queue, in order.
//!    [`Driver::send_copy`] does the same for bytes that are not shared. [`Driver::sending`] says
//!    whether the backend still holds bytes of the connection it took but has not handed to the
//!    kernel's socket yet (the write side is shut only after); a backend that holds bytes
//!    delivers [`Event::Writable`] when they have left.
//! 7. **Close.** [`Driver::close`] stops watching the socket and closes it; nothing for it is
//!    delivered afterwards except events the reactor drops by generation.
//! 8. **Wake from another core.** A waker (the inbox's) makes the backend deliver
//!    [`Event::Wake`]; a burst of wakes may be delivered as one.
//! 9. **Wait with a timeout.** [`Driver::wait`] blocks until something happened or the timeout
//!    passed (zero: only look), and [`Driver::next_event`] then returns what happened, one event
//!    at a time, until `None`. It is the reactor's only blocking call.
//! 10. **Release a connection.** [`Driver::release`] stops watching a connection without
//!     closing its socket, so that another reactor may [`Driver::open`] it (a hand-over). True:
//!     released at once, nothing more is delivered for it. False: [`Event::Released`] follows,
//!     exactly once, and until then [`Event::Input`] may still hand out bytes that arrived before
//!     the release took effect (the caller keeps them with the connection). No byte is lost:
//!     what the backend did not hand out stays in the socket for its next owner, who may `open`
//!     it once released. The caller releases only a connection whose bytes have all left
//!     (`!sending`, nothing queued), sends nothing to it afterwards, and keeps owning the socket
//!     (epoll: deregistered, true; io_uring: its receive cancelled, false unless none was armed).
//!     A connection closed while being released is closed; a `Released` that still comes for it
//!     is one the reactor drops by generation.
//!
//! Besides, [`Driver::reserve`] sizes the backend's per-connection table once, and
//! [`Driver::publish`] copies a backend's own gauges into the reactor's stats (io_uring: its
//! receive buffers and sends in flight).

pub mod epoll;
mod listener;
#[cfg(all(feature = "io-uring", target_os = "linux"))]
pub mod uring;

use std::io;
use std::net::{TcpListener, TcpStream};
use std::ops::{Deref, DerefMut};
use std::os::fd::OwnedFd;
use std::time::Duration;

use bytes::Bytes;
use mio::Poll;

use crate::config::BackendChoice;
use crate::stats::RingGauges;
pub use epoll::Epoll;
use epoll::WAKER;
pub use listener::{SocketBuffers, bind_listeners, bind_listeners_with, ensure_unshared};

/// Receive buffers (1 KiB each) in each io_uring reactor's provided-buffer ring (a power of two):
/// a fixed 512 KiB per reactor, whatever the number of connections.
pub const RING_BUFFERS: u16 = 512;

/// Contract 6: the most buffers one [`Driver::send`] takes (the rest of its list stays the
/// caller's).
pub const MAX_IOVECS: usize = 64;

/// The backend a server runs on: the operator's [`BackendChoice`], `auto` resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Epoll,
    IoUring,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Epoll => "epoll",
            Backend::IoUring => "io_uring",
        }
    }
}

/// Checks that io_uring can run the backend here (see `uring::probe`); fails in a build without
/// the io_uring backend.
pub fn probe_io_uring() -> io::Result<()> {
    #[cfg(all(feature = "io-uring", target_os = "linux"))]
    return uring::probe();
    #[cfg(not(all(feature = "io-uring", target_os = "linux")))]
    Err(io::Error::new(io::ErrorKind::Unsupported, "built without the io_uring backend"))
}

/// The backend for `choice`: `"io_uring"` must pass `probe` (else the error says why), `"auto"`
/// falls back to epoll with a logged warning when it does not. `probe` is [`probe_io_uring`]
/// except in tests that force a failure.
pub fn resolve(choice: BackendChoice, probe: fn() -> io::Result<()>) -> io::Result<Backend> {
    match choice {
        BackendChoice::Epoll => Ok(Backend::Epoll),
        BackendChoice::IoUring => match probe() {
            Ok(()) => Ok(Backend::IoUring),
            Err(e) => Err(io::Error::new(e.kind(), format!("backend = \"io_uring\": {e}"))),
        },
        BackendChoice::Auto => match probe() {
            Ok(()) => Ok(Backend::IoUring),
            Err(e) => {
                tracing::warn!(error = %e, "io_uring is not available: falling back to epoll");
                Ok(Backend::Epoll)
            }
        },
    }
}

/// What a reactor thread builds its backend from, made before the thread starts.
#[derive(Debug)]
pub enum Seed {
    /// The poll, whose registry holds the inbox's waker.
    Epoll(Poll),
    /// The ring's end of the inbox's eventfd.
    IoUring(OwnedFd),
}

/// A reactor's seed and the waker its inbox uses, for `backend`.
pub fn seed(backend: Backend) -> io::Result<(Seed, Waker)> {
    match backend {
        Backend::Epoll => {
            let poll = Poll::new()?;
            let waker = mio::Waker::new(poll.registry(), WAKER)?;
            Ok((Seed::Epoll(poll), Waker::Mio(waker)))
        }
        Backend::IoUring => {
            let flags = rustix::event::EventfdFlags::CLOEXEC;
            let fd = rustix::event::eventfd(0, flags)?;
            Ok((Seed::IoUring(fd.try_clone()?), Waker::EventFd(fd)))
        }
    }
}

/// A driver of `backend` on its own loopback listener (bound to a free port: the address), and the
/// waker of its inbox: for tests of what sits above the backend.
#[cfg(test)]
pub(crate) fn loopback(backend: Backend) -> io::Result<(Driver, Waker, std::net::SocketAddr)> {
    let listener = bind_listeners(([127, 0, 0, 1], 0).into(), 1)?.remove(0);
    let addr = listener.local_addr()?;
    let (seed, waker) = seed(backend)?;
    Ok((Driver::new(seed, vec![listener])?, waker, addr))
}

/// Contract 8: wakes a reactor from another thread.
#[derive(Debug)]
pub enum Waker {
    /// epoll: mio's eventfd, registered in the poll.
    Mio(mio::Waker),
    /// io_uring: an eventfd the ring keeps a read on.
    EventFd(OwnedFd),
}

impl Waker {
    /// One syscall: an eventfd write.
    pub fn wake(&self) -> io::Result<()> {
        match self {
            Waker::Mio(waker) => waker.wake(),
            Waker::EventFd(fd) => {
                rustix::io::write(fd, &1u64.to_ne_bytes())?;
                Ok(())
            }
        }
    }
}

/// Something a backend observed; see the contract in the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// One of the listeners may have connections to accept.
    Accept,
    /// The inbox's waker fired.
    Wake,
    /// The connection has input, end of stream or an error to hand out with [`Driver::recv`].
    Input { index: usize, generation: u32 },
    /// The connection can take more bytes.
    Writable { index: usize, generation: u32 },
    /// Contract 10: the connection's release took effect; nothing more comes for it, and its
    /// socket may be opened by another reactor.
    Released { index: usize, generation: u32 },
}

/// What [`Driver::recv`] found for a connection.
#[derive(Debug)]
pub enum Recv {
    /// Bytes, to decode in place and give back with [`Driver::recycle`].
    Data(RecvBuf),
    /// Nothing more for now.
    WouldBlock,
    /// The peer closed its side.
    Closed,
    /// The connection failed.
    Failed(io::Error),
}

/// Received bytes, lent by the backend until [`Driver::recycle`].
#[derive(Debug)]
pub enum RecvBuf {
    /// The first `len` bytes of the per-core scratch buffer (epoll).
    Scratch { buf: Vec<u8>, len: usize },
    /// A buffer of the reactor's buffer ring (io_uring); it goes back to the ring on drop.
    #[cfg(all(feature = "io-uring", target_os = "linux"))]
    Ring(uring::RingBuf),
}

impl Deref for RecvBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            RecvBuf::Scratch { buf, len } => &buf[..*len],
            #[cfg(all(feature = "io-uring", target_os = "linux"))]
            RecvBuf::Ring(buf) => buf.bytes(),
        }
    }
}

impl DerefMut for RecvBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            RecvBuf::Scratch { buf, len } => &mut buf[..*len],
            #[cfg(all(feature = "io-uring", target_os = "linux"))]
            RecvBuf::Ring(buf) => buf.bytes_mut(),
        }
    }
}

/// A reactor's driver: its instance of the [`Backend`]; every method is an item of the contract
/// in the module doc.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per reactor, never moved after start
pub enum Driver {
    Epoll(Epoll),
    #[cfg(all(feature = "io-uring", target_os = "linux"))]
    IoUring(uring::Uring),
}

/// Calls the same method on whichever backend `$driver` is.
macro_rules! each {
    ($driver:expr, $b:ident => $call:expr) => {
        match $driver {
            Driver::Epoll($b) => $call,
            #[cfg(all(feature = "io-uring", target_os = "linux"))]
            Driver::IoUring($b) => $call,
        }
    };
}

impl Driver {
    /// Builds the backend on the reactor's thread, with the core's listeners (one of each
    /// port's [`bind_listeners`]: the client port's first).
    pub fn new(seed: Seed, listeners: Vec<TcpListener>) -> io::Result<Driver> {
        match seed {
            Seed::Epoll(poll) => Ok(Driver::Epoll(Epoll::new(poll, listeners)?)),
            #[cfg(all(feature = "io-uring", target_os = "linux"))]
            Seed::IoUring(wake) => Ok(Driver::IoUring(uring::Uring::new(listeners, wake)?)),
            #[cfg(not(all(feature = "io-uring", target_os = "linux")))]
            Seed::IoUring(_) => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Driver::Epoll(_) => Backend::Epoll,
            #[cfg(all(feature = "io-uring", target_os = "linux"))]
            Driver::IoUring(_) => Backend::IoUring,
        }
    }

    /// Contract 9: blocks until an event or `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        each!(self, b => b.wait(timeout))
    }

    /// Contract 9: the next event the last [`wait`](Self::wait) observed.
    pub fn next_event(&mut self) -> Option<Event> {
        each!(self, b => b.next_event())
    }

    /// Contract 1: one accepted connection from any listener, or `WouldBlock` when none has one.
    pub fn accept(&mut self) -> io::Result<TcpStream> {
        each!(self, b => b.accept())
    }

    /// Contract 1: closes every listener; `accept` fails with `WouldBlock` from now on.
    pub fn stop_accepting(&mut self) {
        each!(self, b => b.stop_accepting())
    }

    /// Contract 2: starts watching a new connection.
    pub fn open(&mut self, index: usize, generation: u32, stream: &TcpStream) -> io::Result<()> {
        each!(self, b => b.open(index, generation, stream))
    }

    /// Contract 3: whether input left unread after an [`Event::Input`] waits in the socket for a
    /// later [`recv`](Self::recv) (epoll), rather than being lost to the next event (io_uring).
    pub fn input_waits_in_socket(&self) -> bool {
        matches!(self, Driver::Epoll(_))
    }

    /// Contract 3: the connection's input, if any.
    pub fn recv(&mut self, stream: &TcpStream) -> Recv {
        each!(self, b => b.recv(stream))
    }

    /// Contract 3: gives back what [`recv`](Self::recv) lent.
    pub fn recycle(&mut self, buf: RecvBuf) {
        match (self, buf) {
            (Driver::Epoll(b), buf) => b.recycle(buf),
            // A ring buffer goes back to its ring when it drops.
            #[cfg(all(feature = "io-uring", target_os = "linux"))]
            (Driver::IoUring(_), buf) => drop(buf),
        }
    }

    /// Contract 6: sends `bufs`, the first from `offset`; returns the bytes taken.
    pub fn send(
        &mut self,
        index: usize,
        stream: &TcpStream,
        bufs: &[&Bytes],
        offset: usize,
    ) -> io::Result<usize> {
        each!(self, b => b.send(index, stream, bufs, offset))
    }

    /// Contract 6: sends bytes that are not shared; returns the bytes taken.
    pub fn send_copy(
        &mut self,
        index: usize,
        stream: &TcpStream,
        data: &[u8],
    ) -> io::Result<usize> {
        each!(self, b => b.send_copy(index, stream, data))
    }

    /// Contract 6: the backend still holds bytes it took for this connection.
    pub fn sending(&self, index: usize) -> bool {
        match self {
            Driver::Epoll(_) => {
                let _ = index; // epoll's sends are synchronous
                false
            }
            #[cfg(all(feature = "io-uring", target_os = "linux"))]
            Driver::IoUring(b) => b.sending(index),
        }
    }

    /// Contract 10: stops watching the connection without closing its socket, so that another
    /// reactor may `open` it. True: released now, nothing more comes for (index, generation).
    /// False: an `Event::Released { index, generation }` follows; until then `Event::Input` may
    /// still hand out bytes that arrived before the release took effect (the caller keeps them
    /// with the connection). The caller releases only a connection whose bytes have all left
    /// (`!sending(index)` and nothing queued), and keeps owning `stream` (it is not dropped here).
    pub fn release(&mut self, index: usize, generation: u32, stream: &TcpStream) -> bool {
        each!(self, b => b.release(index, generation, stream))
    }

    /// Contract 7: stops watching the connection and closes its socket.
    pub fn close(&mut self, index: usize, stream: TcpStream) {
        each!(self, b => b.close(index, stream))
    }

    /// Reserves (address space, not memory: pages are touched as connections come) what the
    /// backend keeps per connection, for `conns` connections, as the reactor's table does.
    pub fn reserve(&mut self, conns: usize) {
        match self {
            Driver::Epoll(_) => {
                let _ = conns; // epoll keeps nothing per connection in user space
            }
            #[cfg(all(feature = "io-uring", target_os = "linux"))]
            Driver::IoUring(b) => b.reserve_conns(conns),
        }
    }

    /// Copies the backend's gauges into `gauges` (io_uring: its receive buffers, how often a
    /// receive found the ring empty, its sends in flight).
    pub fn publish(&self, gauges: &RingGauges) {
        match self {
            Driver::Epoll(_) => {
                let _ = gauges; // epoll has no gauges of its own
            }
            #[cfg(all(feature = "io-uring", target_os = "linux"))]
            Driver::IoUring(b) => {
                use std::sync::atomic::Ordering;
                let (total, free, exhaustions, sends) = b.counters();
                gauges.recv_buffers.store(total, Ordering::Relaxed);
                gauges.recv_buffers_free.store(free, Ordering::Relaxed);
                gauges.recv_buffer_exhaustions.store(exhaustions, Ordering::Relaxed);
                gauges.sends_in_flight.store(sends, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests;

//! A reactor's I/O backend, behind one contract: epoll (through `mio`) today.
//!
//! Nothing above this module names epoll: the reactor (accept, read, write, close) speaks only
//! to [`Sys`], and [`Sys`] hands every call to the backend it was built with.
//!
//! # The contract
//! Every backend provides, for one reactor and on that reactor's thread only:
//!
//! 1. **Accept on the core's listener.** The backend owns the core's `SO_REUSEPORT` listener.
//!    [`Event::Accept`] says connections may be waiting; [`Sys::accept`] hands them out one at a
//!    time and fails with `WouldBlock` when there is none for now (so the reactor may stop early
//!    and come back next turn: what is not taken stays queued). [`Sys::stop_accepting`] closes
//!    the listener for good.
//! 2. **Open a connection.** [`Sys::open`] starts watching a newly accepted socket under the
//!    reactor's `(index, generation)` for it. Every event names that pair, so the reactor can
//!    drop an event for a connection that closed and whose slot was reused.
//! 3. **Deliver "bytes arrived".** [`Event::Input`] says a connection has input (or end of
//!    stream, or an error). [`Sys::recv`] hands it out as a [`RecvBuf`] the reactor decodes in
//!    place, and the reactor gives it back with [`Sys::recycle`] before the next `recv`.
//!    `Recv::WouldBlock` means "nothing more for now": a new [`Event::Input`] will follow.
//! 4. **Deliver "writable".** [`Event::Writable`] says a connection that was refused bytes can
//!    take more now.
//! 5. **Arm and disarm write interest.** A [`Sys::send`] that takes fewer bytes than offered arms
//!    write interest for that connection; the next [`Event::Writable`] disarms it. The reactor
//!    never asks for it explicitly (epoll registers read and write interest once, edge-triggered,
//!    so arming costs no syscall).
//! 6. **Send, vectored.** [`Sys::send`] takes as many bytes of a list of shared buffers (from an
//!    offset into the first) as it can without blocking and says how many; what it did not take
//!    stays the caller's to queue, in order. [`Sys::send_copy`] does the same for bytes that are
//!    not shared. [`Sys::sending`] says whether the backend still holds bytes of the connection
//!    it took but has not handed to the kernel's socket yet (the write side is shut only after).
//! 7. **Close.** [`Sys::close`] stops watching the socket and closes it; nothing for it is
//!    delivered afterwards except events the reactor drops by generation.
//! 8. **Wake from another core.** A waker (the inbox's) makes the backend deliver
//!    [`Event::Wake`]; a burst of wakes may be delivered as one.
//! 9. **Wait with a timeout.** [`Sys::wait`] blocks until something happened or the timeout
//!    passed (zero: only look), and [`Sys::next_event`] then returns what happened, one event at
//!    a time, until `None`. It is the reactor's only blocking call.

mod epoll;

use std::io;
use std::net::TcpStream;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use bytes::Bytes;

pub use epoll::{Epoll, LISTENER, WAKER};

/// Something a backend observed; see the contract in the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The listener may have connections to accept.
    Accept,
    /// The inbox's waker fired.
    Wake,
    /// The connection has input, end of stream or an error to hand out with [`Sys::recv`].
    Input { index: usize, generation: u32 },
    /// The connection can take more bytes.
    Writable { index: usize, generation: u32 },
}

/// What [`Sys::recv`] found for a connection.
#[derive(Debug)]
pub enum Recv {
    /// Bytes, to decode in place and give back with [`Sys::recycle`].
    Data(RecvBuf),
    /// Nothing more for now.
    WouldBlock,
    /// The peer closed its side.
    Closed,
    /// The connection failed.
    Failed(io::Error),
}

/// Received bytes, lent by the backend until [`Sys::recycle`].
#[derive(Debug)]
pub enum RecvBuf {
    /// The first `len` bytes of the per-core scratch buffer (epoll).
    Scratch { buf: Vec<u8>, len: usize },
}

impl Deref for RecvBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            RecvBuf::Scratch { buf, len } => &buf[..*len],
        }
    }
}

impl DerefMut for RecvBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            RecvBuf::Scratch { buf, len } => &mut buf[..*len],
        }
    }
}

/// A reactor's backend; every method is item of the contract in the module doc.
#[derive(Debug)]
pub enum Sys {
    Epoll(Epoll),
}

impl Sys {
    /// Contract 9: blocks until an event or `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        match self {
            Sys::Epoll(b) => b.wait(timeout),
        }
    }

    /// Contract 9: the next event the last [`wait`](Self::wait) observed.
    pub fn next_event(&mut self) -> Option<Event> {
        match self {
            Sys::Epoll(b) => b.next_event(),
        }
    }

    /// Contract 1: one accepted connection, or `WouldBlock`.
    pub fn accept(&mut self) -> io::Result<TcpStream> {
        match self {
            Sys::Epoll(b) => b.accept(),
        }
    }

    /// Contract 1: closes the listener; `accept` fails with `WouldBlock` from now on.
    pub fn stop_accepting(&mut self) {
        match self {
            Sys::Epoll(b) => b.stop_accepting(),
        }
    }

    /// Contract 2: starts watching a new connection.
    pub fn open(&mut self, index: usize, generation: u32, stream: &TcpStream) -> io::Result<()> {
        match self {
            Sys::Epoll(b) => b.open(index, generation, stream),
        }
    }

    /// Contract 3: the connection's input, if any.
    pub fn recv(&mut self, stream: &TcpStream) -> Recv {
        match self {
            Sys::Epoll(b) => b.recv(stream),
        }
    }

    /// Contract 3: gives back what [`recv`](Self::recv) lent.
    pub fn recycle(&mut self, buf: RecvBuf) {
        match self {
            Sys::Epoll(b) => b.recycle(buf),
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
        match self {
            Sys::Epoll(b) => b.send(index, stream, bufs, offset),
        }
    }

    /// Contract 6: sends bytes that are not shared; returns the bytes taken.
    pub fn send_copy(
        &mut self,
        index: usize,
        stream: &TcpStream,
        data: &[u8],
    ) -> io::Result<usize> {
        match self {
            Sys::Epoll(b) => b.send_copy(index, stream, data),
        }
    }

    /// Contract 6: the backend still holds bytes it took for this connection.
    pub fn sending(&self, index: usize) -> bool {
        match self {
            Sys::Epoll(_) => {
                let _ = index;
                false
            }
        }
    }

    /// Contract 7: stops watching the connection and closes its socket.
    pub fn close(&mut self, index: usize, stream: TcpStream) {
        match self {
            Sys::Epoll(b) => b.close(index, stream),
        }
    }
}

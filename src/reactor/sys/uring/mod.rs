//! The io_uring backend: one ring per reactor, a multishot accept on each of the core's
//! listeners, one provided-buffer ring per reactor with one multishot receive per connection on
//! it, sends batched into few `io_uring_enter`s, and the inbox's eventfd read by the ring.
//!
//! This file sets the ring up, queues submissions and turns completions into events; each
//! operation's side stands beside it: `accept.rs` (the listeners), `recv.rs` (receives on the
//! buffer ring of `buf_ring.rs`), `send.rs` (one op per connection per turn, its bytes held by
//! the pin sets of `pins.rs`), `close.rs` (a connection's close, and the ring's own when it
//! drops) and `release.rs` (a connection handed to another reactor: its receive cancelled, its
//! socket kept open).
//!
//! # Invariants
//! - **No receive buffer per connection.** A connection's multishot receive takes a buffer from
//!   the reactor's buffer ring only when bytes arrive. The reactor decodes in place from that
//!   buffer (a [`RingBuf`]) and the buffer goes back to the ring when the `RingBuf` drops, before
//!   the next completion is looked at. A completion without the MORE flag re-arms the receive at
//!   the end of the batch, and so does `ENOBUFS` (counted), once the batch gave its buffers back;
//!   never for a connection being released, whose slot is empty.
//! - **Memory the kernel uses outlives the operation.** A send's iovecs and `msghdr` are in its
//!   boxed `SendOp`, and the bytes they point into are held by the turn's pin set
//!   (`pins`: one reference per buffer per turn, not per send), both until the send's final
//!   completion; the eventfd read buffer, the buffer ring and its buffers live until [`Drop`]
//!   has seen the final completion of every operation (`outstanding` counts them) and
//!   unregistered the ring.
//! - **One send per connection per turn, one in flight**, so bytes leave in order. Every `send`
//!   to a connection in one loop turn goes into one op (up to [`MAX_IOVECS`](super::MAX_IOVECS)
//!   buffers), queued to the kernel with every other connection's just before the ring waits;
//!   once queued, `send` takes nothing for that connection until its completion (the reactor
//!   queues meanwhile). A partial send continues from its offset.
//! - **Stale completions miss.** Receives carry `(generation, index)` in their user data and a
//!   closed connection's slot is marked dead at once, so completions for it (a final
//!   `ECANCELED`, a last buffer) are dropped, their buffers recycled. A connection being
//!   released has left its slot too, but waits in `releasing`: its receive's completions still
//!   bring its bytes, and the final one is its `Released` (`release.rs`).
//! - Sockets are blocking descriptors (the ring waits for readiness itself) and are closed by the
//!   ring after their operations are cancelled, in one submission.
//!
//! # Unsafe
//! This is the only module of the crate allowed `unsafe`: pushing submission entries (the kernel
//! reads and writes the memory they name), the shared buffer-ring memory, and adopting the
//! descriptors the kernel creates. Every block says why it is sound.
#![allow(unsafe_code)] // io_uring hands the kernel raw pointers: see "Unsafe" above.

mod accept;
mod buf_ring;
mod close;
mod pins;
mod recv;
mod release;
mod send;

use std::collections::VecDeque;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use io_uring::types::{Fd, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue};

use super::{Event, RING_BUFFERS, Recv};
use accept::Listening;
pub use buf_ring::RingBuf;
use buf_ring::{BUF_GROUP, BufRing};
use pins::Pins;
use release::Releasing;
use send::SendOp;

/// Submission queue entries: a send batch and the receives, cancels and closes of a turn; the
/// queue is handed to the kernel whenever it fills.
const SQ_ENTRIES: u32 = 256;
/// Completion queue entries (the kernel keeps overflow beyond it, but should rarely need to).
const CQ_ENTRIES: u32 = 32 * 1024;

/// What a completion is for: the top 4 bits of its user data.
const ACCEPT: u64 = 1;
const WAKE: u64 = 2;
const RECV: u64 = 3;
const SEND: u64 = 4;
/// Cancellations and closes: nothing to do on completion.
const CLOSE: u64 = 5;
/// A release's cancel of a connection's receive (`release.rs`).
const RELEASE: u64 = 6;

fn user_data(kind: u64, payload: u64) -> u64 {
    kind << 60 | payload
}

/// The user data of a connection's receive (`on_recv` takes it apart with [`conn_of`]).
fn recv_data(index: usize, generation: u32) -> u64 {
    user_data(RECV, u64::from(generation) << 32 | index as u64)
}

/// The `(index, generation)` in the payload of a connection's user data.
fn conn_of(payload: u64) -> (usize, u32) {
    ((payload & 0xFFFF_FFFF) as usize, (payload >> 32) as u32)
}

/// The generation of a slot with no connection (generations are 24 bits).
const DEAD: u32 = u32::MAX;
/// No send in flight.
const NO_SEND: u32 = u32::MAX;

/// The backend's view of one connection slot: 12 bytes per slot index.
#[derive(Debug, Clone, Copy)]
struct Slot {
    generation: u32,
    fd: RawFd,
    send: u32,
}

impl Slot {
    const EMPTY: Slot = Slot { generation: DEAD, fd: -1, send: NO_SEND };
}

/// Checks that this kernel lets us build the reactor's ring: io_uring is there and allowed (not
/// `kernel.io_uring_disabled`, not a seccomp filter), with every feature the backend uses.
pub fn probe() -> io::Result<()> {
    let ring = build_ring(8)?;
    let mut probe = io_uring::Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    let codes = [
        opcode::AcceptMulti::CODE,
        opcode::RecvMulti::CODE,
        opcode::Send::CODE,
        opcode::SendMsg::CODE,
        opcode::Read::CODE,
        opcode::AsyncCancel::CODE,
        opcode::Close::CODE,
    ];
    if let Some(code) = codes.into_iter().find(|&c| !probe.is_supported(c)) {
        let e = format!("io_uring opcode {code} is not supported");
        return Err(io::Error::new(io::ErrorKind::Unsupported, e));
    }
    let bufs = BufRing::new(8)?;
    // SAFETY: no operation is ever submitted to `ring`; the group is unregistered below and
    // `ring` is dropped before `bufs` (reverse declaration order).
    unsafe { bufs.register(&ring)? };
    ring.submitter().unregister_buf_ring(BUF_GROUP)
}

/// A ring set up for one reactor thread: completions are processed only when the reactor waits
/// (`DEFER_TASKRUN`, which needs `SINGLE_ISSUER`: the ring is built on the reactor's thread).
fn build_ring(entries: u32) -> io::Result<IoUring> {
    IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_submit_all()
        .setup_cqsize(CQ_ENTRIES.max(entries * 2))
        .build(entries)
}

/// One reactor's ring. See the module doc for its invariants.
pub struct Uring {
    ring: IoUring,
    bufs: Rc<BufRing>,
    /// The core's listeners, each with its multishot accept; emptied by `stop_accepting`.
    listeners: Vec<Listening>,
    accepted: VecDeque<io::Result<TcpStream>>,
    wake: OwnedFd,
    wake_buf: Box<u64>,
    slots: Vec<Slot>,
    /// Boxed: the kernel holds pointers into an op, which must not move when the Vec grows.
    #[allow(clippy::vec_box)]
    sends: Vec<Box<SendOp>>,
    free_sends: Vec<u32>,
    sends_in_flight: u64,
    /// The bytes the ops point into, held per loop turn.
    pins: Pins,
    /// Ops collecting this turn's sends, queued to the kernel when the ring next waits.
    collecting: Vec<u32>,
    /// Receives to re-arm once this batch of completions gave its buffers back.
    rearm: Vec<(usize, u32)>,
    /// Connections being released, until their `Released` (a few at a time: hand-overs).
    releasing: Vec<Releasing>,
    /// An event to deliver before the next completion: the `Released` behind the last bytes of
    /// a released connection's receive.
    announced: Option<Event>,
    /// What `recv` hands out for the event just delivered.
    pending: Option<Recv>,
    /// Operations submitted whose final completion has not been seen.
    outstanding: usize,
    exhaustions: u64,
}

impl std::fmt::Debug for Uring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uring")
            .field("listeners", &self.listeners.len())
            .field("outstanding", &self.outstanding)
            .field("sends_in_flight", &self.sends_in_flight)
            .field("recv_buffers_lent", &self.bufs.lent.get())
            .finish_non_exhaustive()
    }
}

impl Uring {
    /// Builds the ring (on the reactor's thread), registers the buffer ring, and arms a
    /// multishot accept on each of `listeners` and the read of the inbox's eventfd `wake`.
    pub fn new(listeners: Vec<TcpListener>, wake: OwnedFd) -> io::Result<Uring> {
        let mut listening = Vec::with_capacity(listeners.len());
        for listener in listeners {
            listener.set_nonblocking(false)?;
            listening.push(Listening { listener, armed: false });
        }
        let ring = build_ring(SQ_ENTRIES)?;
        let bufs = Rc::new(BufRing::new(RING_BUFFERS)?);
        // SAFETY: `bufs` stays in this `Uring`, whose `Drop` waits for every operation and
        // unregisters the group before the last `Rc` goes.
        unsafe { bufs.register(&ring)? };
        let mut uring = Uring {
            ring,
            bufs,
            listeners: listening,
            accepted: VecDeque::new(),
            wake,
            wake_buf: Box::new(0),
            slots: Vec::new(),
            sends: Vec::new(),
            free_sends: Vec::new(),
            sends_in_flight: 0,
            pins: Pins::default(),
            collecting: Vec::new(),
            rearm: Vec::new(),
            releasing: Vec::new(),
            announced: None,
            pending: None,
            outstanding: 0,
            exhaustions: 0,
        };
        uring.arm_wake()?;
        for i in 0..uring.listeners.len() {
            uring.arm_accept(i)?;
        }
        Ok(uring)
    }

    /// Queues `entry`, first handing a full queue to the kernel.
    ///
    /// # Safety
    /// Every pointer in `entry` must stay valid until the operation's final completion.
    unsafe fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the caller guarantees what `entry` points to outlives the operation.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                self.outstanding += 1;
                return Ok(());
            }
            self.submit()?;
        }
    }

    /// Hands the queued entries to the kernel (several connections' sends in one enter).
    fn submit(&mut self) -> io::Result<()> {
        match self.ring.submit() {
            Err(e) if e.raw_os_error() != Some(libc::EINTR) => Err(e),
            _ => Ok(()),
        }
    }

    /// Makes room for `n` entries, so that a linked pair is submitted together.
    fn reserve(&mut self, n: usize) -> io::Result<()> {
        while {
            let sq = self.ring.submission();
            sq.capacity() - sq.len() < n
        } {
            self.submit()?;
        }
        Ok(())
    }

    fn arm_wake(&mut self) -> io::Result<()> {
        let buf = (&raw mut *self.wake_buf).cast::<u8>();
        let entry = opcode::Read::new(Fd(self.wake.as_raw_fd()), buf, 8)
            .build()
            .user_data(user_data(WAKE, 0));
        // SAFETY: `wake_buf` is boxed and kept until `Drop` saw every final completion.
        unsafe { self.push(&entry) }
    }

    /// Queues this turn's sends, then submits everything queued and waits for a completion.
    pub fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        self.pending = None;
        let timeout = if self.queue_sends() { timeout } else { Duration::ZERO };
        self.enter(timeout)
    }

    /// Submits what is queued and waits up to `timeout` for a completion.
    fn enter(&mut self, timeout: Duration) -> io::Result<()> {
        let timespec = Timespec::from(timeout);
        let args = SubmitArgs::new().timespec(&timespec);
        match self.ring.submitter().submit_with_args(1, &args) {
            Err(e)
                if !matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR | libc::EBUSY)) =>
            {
                Err(e)
            }
            _ => Ok(()),
        }
    }

    pub fn next_event(&mut self) -> Option<Event> {
        // An input the reactor did not take (its connection had gone): its buffer goes back.
        self.pending = None;
        if let Some(event) = self.announced.take() {
            return Some(event);
        }
        loop {
            let Some(cqe) = self.ring.completion().next() else {
                self.rearm_receives();
                self.retry_release_cancels();
                return None;
            };
            let (data, result, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
            let more = cqueue::more(flags);
            if !more {
                self.outstanding -= 1;
            }
            let payload = data & ((1 << 60) - 1);
            let event = match data >> 60 {
                ACCEPT => self.on_accept(payload as usize, result, more),
                WAKE => {
                    if let Err(e) = self.arm_wake() {
                        tracing::error!(error = %e, "could not re-arm the inbox's wake read");
                    }
                    Some(Event::Wake)
                }
                RECV => self.on_recv(payload, result, flags),
                SEND => self.on_send(payload as u32, result),
                RELEASE => self.on_release_cancel(payload, result),
                _ => None,
            };
            if event.is_some() {
                return event;
            }
        }
    }

    pub fn reserve_conns(&mut self, conns: usize) {
        self.slots.reserve_exact(conns.saturating_sub(self.slots.len()));
    }

    pub fn open(&mut self, index: usize, generation: u32, stream: &TcpStream) -> io::Result<()> {
        if self.slots.len() <= index {
            self.slots.resize(index + 1, Slot::EMPTY);
        }
        let fd = stream.as_raw_fd();
        self.slots[index] = Slot { generation, fd, send: NO_SEND };
        let armed = self.arm_recv(index, generation, fd);
        if armed.is_err() {
            self.slots[index] = Slot::EMPTY;
        }
        armed
    }

    /// Receive buffers in the ring, buffers the kernel may fill now, receives that found the
    /// ring empty so far, and sends in flight.
    pub fn counters(&self) -> (u64, u64, u64, u64) {
        let free = self.bufs.free(&self.ring);
        (u64::from(self.bufs.count), free, self.exhaustions, self.sends_in_flight)
    }
}

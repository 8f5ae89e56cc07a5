//! The io_uring backend: one ring per reactor, multishot accept on the core's listener, one
//! provided-buffer ring per reactor with one multishot receive per connection on it, sends
//! batched into few `io_uring_enter`s, and the inbox's eventfd read by the ring.
//!
//! # Invariants
//! - **No receive buffer per connection.** A connection's multishot receive takes a buffer from
//!   the reactor's buffer ring only when bytes arrive. The reactor decodes in place from that
//!   buffer (a [`RingBuf`]) and the buffer goes back to the ring when the `RingBuf` drops, before
//!   the next completion is looked at. A completion without the MORE flag re-arms the receive at
//!   the end of the batch, and so does `ENOBUFS` (counted), once the batch gave its buffers back.
//! - **Memory the kernel uses outlives the operation.** A send's iovecs and `msghdr` are in its
//!   boxed [`SendOp`], and the bytes they point into are held by the turn's pin set
//!   ([`pins`]: one reference per buffer per turn, not per send), both until the send's final
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
//!   `ECANCELED`, a last buffer) are dropped, their buffers recycled.
//! - Sockets are blocking descriptors (the ring waits for readiness itself) and are closed by the
//!   ring after their operations are cancelled, in one submission.
//!
//! # Unsafe
//! This is the only module of the crate allowed `unsafe`: pushing submission entries (the kernel
//! reads and writes the memory they name), the shared buffer-ring memory, and adopting the
//! descriptors the kernel creates. Every block says why it is sound.
#![allow(unsafe_code)] // io_uring hands the kernel raw pointers: see "Unsafe" above.

mod buf_ring;
mod pins;
mod send;

use std::collections::VecDeque;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use io_uring::types::{CancelBuilder, Fd, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue};

use super::{Event, RING_BUFFERS, Recv, RecvBuf};
pub use buf_ring::RingBuf;
use buf_ring::{BUF_GROUP, BufRing};
use pins::Pins;
use send::SendOp;

/// Sends handed to the kernel per `io_uring_enter`. The kernel runs a whole submission before
/// the reactor's thread can be preempted, so the readers it wakes wait for all of it: on a
/// loaded machine, 4096 sends per enter put ~50 ms on the p99 of a sustained fan-out
/// (conn-flood, 10,000 connections); 64 keep it with epoll's, for 1/64 of the system calls.
const SEND_BATCH: usize = 64;
/// Submission queue entries: a send batch and the receives, cancels and closes of a turn; the
/// queue is handed to the kernel whenever it fills.
const SQ_ENTRIES: u32 = 256;
/// Completion queue entries (the kernel keeps overflow beyond it, but should rarely need to).
const CQ_ENTRIES: u32 = 32 * 1024;
/// Capacity the queue of accepted connections keeps once drained.
const ACCEPTED_KEPT: usize = 256;
/// How long dropping a ring may wait for its cancelled operations.
const DROP_GRACE: Duration = Duration::from_secs(2);

/// What a completion is for: the top 4 bits of its user data.
const ACCEPT: u64 = 1;
const WAKE: u64 = 2;
const RECV: u64 = 3;
const SEND: u64 = 4;
/// Cancellations and closes: nothing to do on completion.
const CLOSE: u64 = 5;

fn user_data(kind: u64, payload: u64) -> u64 {
    kind << 60 | payload
}

/// The user data of a connection's receive (`on_recv` takes it apart).
fn recv_data(index: usize, generation: u32) -> u64 {
    user_data(RECV, u64::from(generation) << 32 | index as u64)
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
    listener: Option<TcpListener>,
    accept_armed: bool,
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
    /// What `recv` hands out for the event just delivered.
    pending: Option<Recv>,
    /// Operations submitted whose final completion has not been seen.
    outstanding: usize,
    exhaustions: u64,
}

impl std::fmt::Debug for Uring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uring")
            .field("listening", &self.listener.is_some())
            .field("outstanding", &self.outstanding)
            .field("sends_in_flight", &self.sends_in_flight)
            .field("recv_buffers_lent", &self.bufs.lent.get())
            .finish_non_exhaustive()
    }
}

impl Uring {
    /// Builds the ring (on the reactor's thread), registers the buffer ring, and arms the
    /// multishot accept on `listener` and the read of the inbox's eventfd `wake`.
    pub fn new(listener: TcpListener, wake: OwnedFd) -> io::Result<Uring> {
        listener.set_nonblocking(false)?;
        let ring = build_ring(SQ_ENTRIES)?;
        let bufs = Rc::new(BufRing::new(RING_BUFFERS)?);
        // SAFETY: `bufs` stays in this `Uring`, whose `Drop` waits for every operation and
        // unregisters the group before the last `Rc` goes.
        unsafe { bufs.register(&ring)? };
        let mut uring = Uring {
            ring,
            bufs,
            listener: Some(listener),
            accept_armed: false,
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
            pending: None,
            outstanding: 0,
            exhaustions: 0,
        };
        uring.arm_wake()?;
        uring.arm_accept()?;
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

    fn arm_accept(&mut self) -> io::Result<()> {
        let Some(listener) = self.listener.as_ref() else { return Ok(()) };
        let entry = opcode::AcceptMulti::new(Fd(listener.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(user_data(ACCEPT, 0));
        // SAFETY: the entry names no memory.
        unsafe { self.push(&entry)? };
        self.accept_armed = true;
        Ok(())
    }

    fn arm_recv(&mut self, index: usize, generation: u32, fd: RawFd) -> io::Result<()> {
        let data = recv_data(index, generation);
        let entry = opcode::RecvMulti::new(Fd(fd), BUF_GROUP).build().user_data(data);
        // SAFETY: the receive writes only into ring buffers, which live until `Drop`.
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

    /// Hands the kernel one send per connection that was sent to this turn; false if some could
    /// not be queued yet (they stay, and go with the next wait).
    fn queue_sends(&mut self) -> bool {
        let mut collecting = std::mem::take(&mut self.collecting);
        let mut done = 0;
        for &id in &collecting {
            let op = &mut self.sends[id as usize];
            let live = self
                .slots
                .get(op.index)
                .is_some_and(|s| s.generation == op.generation && s.send == id);
            if !live || op.is_empty() {
                if live {
                    self.slots[op.index].send = NO_SEND;
                }
                self.release_send(id);
                done += 1;
                continue;
            }
            op.queued = true;
            let entry = op.entry().user_data(user_data(SEND, u64::from(id)));
            // SAFETY: the op is boxed and kept, with clones of its buffers, until its final
            // completion (`release_send` runs only from a completion once it is queued).
            if let Err(e) = unsafe { self.push(&entry) } {
                self.sends[id as usize].queued = false;
                let left = collecting.len() - done;
                tracing::warn!(error = %e, left, "could not queue sends yet");
                break;
            }
            done += 1;
            if done % SEND_BATCH == 0 {
                // Not fatal here: what the kernel did not take goes with the next enter.
                let _ = self.submit();
            }
        }
        collecting.drain(..done);
        // The turn is over: its sends are queued (or will go with the next wait).
        self.pins.close();
        let all_queued = collecting.is_empty();
        collecting.append(&mut self.collecting);
        self.collecting = collecting;
        all_queued
    }

    pub fn next_event(&mut self) -> Option<Event> {
        // An input the reactor did not take (its connection had gone): its buffer goes back.
        self.pending = None;
        loop {
            let Some(cqe) = self.ring.completion().next() else {
                self.rearm_receives();
                return None;
            };
            let (data, result, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
            let more = cqueue::more(flags);
            if !more {
                self.outstanding -= 1;
            }
            let payload = data & ((1 << 60) - 1);
            let event = match data >> 60 {
                ACCEPT => self.on_accept(result, more),
                WAKE => {
                    if let Err(e) = self.arm_wake() {
                        tracing::error!(error = %e, "could not re-arm the inbox's wake read");
                    }
                    Some(Event::Wake)
                }
                RECV => self.on_recv(payload, result, flags),
                SEND => self.on_send(payload as u32, result),
                _ => None,
            };
            if event.is_some() {
                return event;
            }
        }
    }

    fn on_accept(&mut self, result: i32, more: bool) -> Option<Event> {
        if !more {
            self.accept_armed = false;
        }
        if result >= 0 {
            // SAFETY: the kernel just created this descriptor for us; nothing else owns it.
            let stream = TcpStream::from(unsafe { OwnedFd::from_raw_fd(result) });
            // Accepted as the listener closed: dropping it closes it.
            self.listener.as_ref()?;
            self.accepted.push_back(Ok(stream));
            if !more {
                let _ = self.arm_accept();
            }
        } else if result == -libc::ECANCELED {
            return None;
        } else {
            // Left unarmed: `accept` re-arms once the reactor comes back for more (after a
            // pause when descriptors ran out).
            self.accepted.push_back(Err(io::Error::from_raw_os_error(-result)));
        }
        Some(Event::Accept)
    }

    fn on_recv(&mut self, payload: u64, result: i32, flags: u32) -> Option<Event> {
        let index = (payload & 0xFFFF_FFFF) as usize;
        let generation = (payload >> 32) as u32;
        // Take the buffer first, so that it goes back to the ring whatever happens next.
        let buf = cqueue::buffer_select(flags).map(|bid| self.bufs.lend(bid, result.max(0) as _));
        let live = self.slots.get(index).is_some_and(|s| s.generation == generation);
        if !live {
            return None;
        }
        let more = cqueue::more(flags);
        let recv = match (result, buf) {
            (1.., Some(buf)) => Recv::Data(RecvBuf::Ring(buf)),
            (0, _) => Recv::Closed,
            (e, _) if e == -libc::ENOBUFS || e == -libc::ECANCELED => {
                self.exhaustions += u64::from(e == -libc::ENOBUFS);
                if !more {
                    self.rearm.push((index, generation));
                }
                return None;
            }
            (1.., None) => Recv::Failed(io::Error::other("receive completed without a buffer")),
            (e, _) => Recv::Failed(io::Error::from_raw_os_error(-e)),
        };
        if !more && matches!(recv, Recv::Data(_)) {
            self.rearm.push((index, generation));
        }
        self.pending = Some(recv);
        Some(Event::Input { index, generation })
    }

    fn rearm_receives(&mut self) {
        for (index, generation) in std::mem::take(&mut self.rearm) {
            let Some(slot) = self.slots.get(index).filter(|s| s.generation == generation) else {
                continue;
            };
            let fd = slot.fd;
            if let Err(e) = self.arm_recv(index, generation, fd) {
                tracing::warn!(conn = index, error = %e, "could not re-arm a receive");
                self.pending = Some(Recv::Failed(e));
            }
        }
    }

    fn on_send(&mut self, id: u32, result: i32) -> Option<Event> {
        let op = &mut self.sends[id as usize];
        let (index, generation) = (op.index, op.generation);
        let live =
            self.slots.get(index).is_some_and(|s| s.generation == generation && s.send == id);
        let retry = result == -libc::EINTR || result == -libc::EAGAIN;
        if live && (retry || (result > 0 && (result as usize) < op.left)) {
            if result > 0 {
                op.advance(result as usize); // a partial send: go on from the offset
            }
            if !op.own_pins {
                // It outlives its turn: what it has left moves into a set of its own, so that a
                // stalled peer keeps only its own bytes alive, not its whole turn's.
                let rest = op.copy_rest();
                op.rebase(&rest);
                let turn = std::mem::replace(&mut op.pins, self.pins.add_op_alone());
                op.own_pins = true;
                self.pins.hold(op.pins, &[&rest]);
                self.pins.release(turn);
            }
            let entry = op.entry().user_data(user_data(SEND, u64::from(id)));
            // SAFETY: the op is boxed and kept, with its buffers, until its final completion.
            match unsafe { self.push(&entry) } {
                Ok(()) => return None,
                Err(e) => return self.finish_send(id, Err(e)),
            }
        }
        let outcome = match result {
            e if e < 0 => Err(io::Error::from_raw_os_error(-e)),
            0 => Err(io::ErrorKind::WriteZero.into()),
            _ => Ok(()),
        };
        if live {
            return self.finish_send(id, outcome);
        }
        self.release_send(id);
        None
    }

    /// The connection's send is over: writable again, or failed (delivered as its input).
    fn finish_send(&mut self, id: u32, outcome: io::Result<()>) -> Option<Event> {
        let op = &self.sends[id as usize];
        let (index, generation) = (op.index, op.generation);
        self.release_send(id);
        self.slots[index].send = NO_SEND;
        match outcome {
            Ok(()) => Some(Event::Writable { index, generation }),
            Err(e) => {
                self.pending = Some(Recv::Failed(e));
                Some(Event::Input { index, generation })
            }
        }
    }

    /// Drops the op's buffers and makes it free for the next send.
    fn release_send(&mut self, id: u32) {
        let op = &mut self.sends[id as usize];
        let pins = op.pins;
        op.reset();
        self.pins.release(pins);
        self.free_sends.push(id);
        self.sends_in_flight -= 1;
    }

    pub fn accept(&mut self) -> io::Result<TcpStream> {
        if let Some(accepted) = self.accepted.pop_front() {
            return accepted;
        }
        // A burst of connections may have queued thousands; idle, the queue keeps little.
        if self.accepted.capacity() > ACCEPTED_KEPT {
            self.accepted.shrink_to(ACCEPTED_KEPT);
        }
        if self.listener.is_some() && !self.accept_armed {
            self.arm_accept()?;
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    pub fn stop_accepting(&mut self) {
        let Some(listener) = self.listener.take() else { return };
        self.accepted.clear();
        if !self.accept_armed || self.reserve(2).is_err() {
            return; // nothing in flight on it: dropping it closes it
        }
        let fd = listener.as_raw_fd();
        let cancel = opcode::AsyncCancel::new(user_data(ACCEPT, 0))
            .build()
            .flags(squeue::Flags::IO_HARDLINK)
            .user_data(user_data(CLOSE, 0));
        let close = opcode::Close::new(Fd(fd)).build().user_data(user_data(CLOSE, 0));
        // SAFETY: neither entry names memory; the descriptor is handed to the ring to close.
        let pushed = unsafe { self.push(&cancel).and_then(|()| self.push(&close)) };
        if pushed.is_ok() {
            let _ = listener.into_raw_fd();
        }
        self.accept_armed = false;
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

    pub fn recv(&mut self, _stream: &TcpStream) -> Recv {
        self.pending.take().unwrap_or(Recv::WouldBlock)
    }

    /// Takes as many of `bufs` (the first from `offset`) as this turn's op for the connection
    /// holds, none once its send was queued to the kernel.
    pub fn send(
        &mut self,
        index: usize,
        _stream: &TcpStream,
        bufs: &[&Bytes],
        offset: usize,
    ) -> io::Result<usize> {
        let Some(slot) = self.slots.get(index).copied() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let id = if slot.send != NO_SEND { slot.send } else { self.start_send(index, slot) };
        let op = &mut self.sends[id as usize];
        let (count, taken) = op.append(bufs, offset);
        self.pins.hold(op.pins, &bufs[..count]);
        Ok(taken)
    }

    /// A new, empty op collecting the connection's sends for this turn.
    fn start_send(&mut self, index: usize, slot: Slot) -> u32 {
        let id = match self.free_sends.pop() {
            Some(id) => id,
            None => {
                self.sends.push(SendOp::new());
                (self.sends.len() - 1) as u32
            }
        };
        self.sends_in_flight += 1;
        let op = &mut self.sends[id as usize];
        op.reset();
        op.index = index;
        op.generation = slot.generation;
        op.fd = slot.fd;
        op.pins = self.pins.add_op();
        self.collecting.push(id);
        self.slots[index].send = id;
        id
    }

    pub fn send_copy(
        &mut self,
        index: usize,
        stream: &TcpStream,
        data: &[u8],
    ) -> io::Result<usize> {
        let queued = self.slots.get(index).is_some_and(|s| self.queued_send(s).is_some());
        if queued || data.is_empty() {
            return Ok(0);
        }
        self.send(index, stream, &[&Bytes::copy_from_slice(data)], 0)
    }

    /// The slot's send, if it was handed to the kernel (not one still collecting).
    fn queued_send(&self, slot: &Slot) -> Option<u32> {
        (slot.send != NO_SEND && self.sends[slot.send as usize].queued).then_some(slot.send)
    }

    pub fn sending(&self, index: usize) -> bool {
        self.slots.get(index).is_some_and(|s| s.send != NO_SEND)
    }

    /// Cancels the connection's operations and closes its socket, linked in one submission.
    ///
    /// Each operation is cancelled by its user data, which the kernel finds in a hash table;
    /// cancelling by descriptor would scan every armed operation of the ring, once per close.
    pub fn close(&mut self, index: usize, stream: TcpStream) {
        let Some(slot) = self.slots.get_mut(index).map(|s| std::mem::replace(s, Slot::EMPTY))
        else {
            drop(stream);
            return;
        };
        let recv = recv_data(index, slot.generation);
        // A send still collecting was never queued: `queue_sends` drops it.
        let send = self.queued_send(&slot).map(|id| user_data(SEND, u64::from(id)));
        if self.reserve(3).is_err() {
            // Cannot queue: shutting both sides ends its receive and send; dropping closes it.
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        let fd = stream.into_raw_fd();
        let cancel = |data| {
            opcode::AsyncCancel::new(data)
                .build()
                .flags(squeue::Flags::IO_HARDLINK)
                .user_data(user_data(CLOSE, 0))
        };
        let close = opcode::Close::new(Fd(fd)).build().user_data(user_data(CLOSE, 0));
        // SAFETY: none of the entries names memory; `reserve` made room for all of them, so no
        // push fails and the ring owns (and closes) the descriptor.
        unsafe {
            let _ = self.push(&cancel(recv));
            if let Some(send) = send {
                let _ = self.push(&cancel(send));
            }
            let _ = self.push(&close);
        }
    }

    /// Receive buffers in the ring, buffers the kernel may fill now, receives that found the
    /// ring empty so far, and sends in flight.
    pub fn counters(&self) -> (u64, u64, u64, u64) {
        let free = self.bufs.free(&self.ring);
        (u64::from(self.bufs.count), free, self.exhaustions, self.sends_in_flight)
    }
}

impl Drop for Uring {
    /// Cancels every operation and waits for their final completions, so that the kernel never
    /// touches memory freed below; if it takes too long, that memory is leaked instead.
    fn drop(&mut self) {
        self.pending = None;
        // Sends still collecting were never handed to the kernel: they go now, and no later
        // wait may queue them behind the cancel below.
        for id in std::mem::take(&mut self.collecting) {
            self.release_send(id);
        }
        let cancel =
            opcode::AsyncCancel2::new(CancelBuilder::any()).build().user_data(user_data(CLOSE, 0));
        // SAFETY: the entry names no memory.
        let _ = unsafe { self.push(&cancel) };
        let deadline = Instant::now() + DROP_GRACE;
        while self.outstanding > 0 && Instant::now() < deadline {
            let _ = self.enter(Duration::from_millis(50));
            while let Some(cqe) = self.ring.completion().next() {
                if !cqueue::more(cqe.flags()) {
                    self.outstanding -= 1;
                }
                if let Some(bid) = cqueue::buffer_select(cqe.flags()) {
                    drop(self.bufs.lend(bid, 0));
                }
                if cqe.user_data() >> 60 == ACCEPT && cqe.result() >= 0 {
                    // SAFETY: a descriptor the kernel created for us; closing it is ours to do.
                    drop(unsafe { OwnedFd::from_raw_fd(cqe.result()) });
                }
            }
        }
        if self.outstanding > 0 {
            tracing::warn!(outstanding = self.outstanding, "io_uring operations outlived the ring");
            std::mem::forget(Rc::clone(&self.bufs));
            std::mem::forget(std::mem::take(&mut self.sends));
            std::mem::forget(std::mem::take(&mut self.pins));
            std::mem::forget(std::mem::replace(&mut self.wake_buf, Box::new(0)));
        } else {
            let _ = self.ring.submitter().unregister_buf_ring(BUF_GROUP);
        }
    }
}

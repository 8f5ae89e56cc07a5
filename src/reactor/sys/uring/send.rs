//! Sending: every `send` to a connection in one loop turn collects into one op, and the ops are
//! queued to the kernel, [`SEND_BATCH`] per enter, just before the ring waits; a partial send
//! goes on from its offset. An op ([`SendOp`]) holds the iovecs and `msghdr` the kernel reads
//! from.
//!
//! # Invariants
//! - An op lives in a `Box` that never moves or drops while its send is in flight, so the
//!   pointers in its submission entry (its iovecs, its `msghdr`) stay valid until the final
//!   completion. The bytes its iovecs point into are held by its pin set ([`super::pins`]).
//! - `left` is the bytes not yet confirmed sent: the iovecs from `first` on, whose lengths
//!   shrink as partial sends complete.
//! - Until it is `queued`, an op only collects buffers (every send of one loop turn to its
//!   connection, up to [`MAX_IOVECS`]); once queued, only a completion changes it.

use std::io;
use std::net::TcpStream;
use std::os::fd::RawFd;

use bytes::Bytes;
use io_uring::types::Fd;
use io_uring::{opcode, squeue};

use super::{DEAD, NO_SEND, SEND, Slot, Uring, user_data};
use crate::reactor::sys::{Event, MAX_IOVECS, Recv};

/// Sends handed to the kernel per `io_uring_enter`. The kernel runs a whole submission before
/// the reactor's thread can be preempted, so the readers it wakes wait for all of it: on a
/// loaded machine, 4096 sends per enter put ~50 ms on the p99 of a sustained fan-out
/// (conn-flood, 10,000 connections); 64 keep it with epoll's, for 1/64 of the system calls.
const SEND_BATCH: usize = 64;

impl Uring {
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
    pub(super) fn queued_send(&self, slot: &Slot) -> Option<u32> {
        (slot.send != NO_SEND && self.sends[slot.send as usize].queued).then_some(slot.send)
    }

    pub fn sending(&self, index: usize) -> bool {
        self.slots.get(index).is_some_and(|s| s.send != NO_SEND)
    }

    /// Hands the kernel one send per connection that was sent to this turn; false if some could
    /// not be queued yet (they stay, and go with the next wait).
    pub(super) fn queue_sends(&mut self) -> bool {
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

    pub(super) fn on_send(&mut self, id: u32, result: i32) -> Option<Event> {
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
    pub(super) fn release_send(&mut self, id: u32) {
        let op = &mut self.sends[id as usize];
        let pins = op.pins;
        op.reset();
        self.pins.release(pins);
        self.free_sends.push(id);
        self.sends_in_flight -= 1;
    }
}

/// Iovecs kept in the op itself; a send of more spills to `spill` (its capacity is kept).
const INLINE_IOVECS: usize = 4;

const EMPTY_IOVEC: libc::iovec = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };

/// One connection's send, kept until its final completion.
pub struct SendOp {
    pub index: usize,
    pub generation: u32,
    pub fd: RawFd,
    /// The pin set holding the bytes the iovecs point into.
    pub pins: u32,
    /// That set is the op's own (it outlived its turn), not its turn's.
    pub own_pins: bool,
    /// Its submission entry is in the ring: nothing may be added to it any more.
    pub queued: bool,
    /// Bytes not confirmed sent yet.
    pub left: usize,
    /// The first iovec not wholly sent, and how many there are.
    first: usize,
    len: usize,
    inline: [libc::iovec; INLINE_IOVECS],
    spill: Vec<libc::iovec>,
    msg: libc::msghdr,
}

impl SendOp {
    pub fn new() -> Box<SendOp> {
        Box::new(SendOp {
            index: 0,
            generation: DEAD,
            fd: -1,
            pins: 0,
            own_pins: false,
            queued: false,
            left: 0,
            first: 0,
            len: 0,
            inline: [EMPTY_IOVEC; INLINE_IOVECS],
            spill: Vec::new(),
            // SAFETY: `msghdr` is plain data: null pointers and zero lengths are its empty value.
            msg: unsafe { std::mem::zeroed() },
        })
    }

    /// Makes the op empty, for the next connection (keeping the spill's capacity).
    pub fn reset(&mut self) {
        self.generation = DEAD;
        self.own_pins = false;
        self.queued = false;
        self.left = 0;
        self.first = 0;
        self.len = 0;
        self.spill.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn iovecs(&mut self) -> &mut [libc::iovec] {
        if self.len <= INLINE_IOVECS {
            &mut self.inline[..self.len]
        } else {
            &mut self.spill[..self.len]
        }
    }

    /// Adds as many of `bufs` (the first from `offset`) as fit behind what the op holds, if it
    /// is still collecting; returns how many buffers and bytes it took. The caller keeps the
    /// taken buffers alive (pins them) until the op is released.
    pub fn append(&mut self, bufs: &[&Bytes], offset: usize) -> (usize, usize) {
        let room = MAX_IOVECS - self.len;
        // An offset can only apply to the op's first buffer.
        if self.queued || room == 0 || bufs.is_empty() || (offset > 0 && self.len > 0) {
            return (0, 0);
        }
        let bufs = &bufs[..bufs.len().min(room)];
        let spilled = self.len + bufs.len() > INLINE_IOVECS;
        if spilled && self.len <= INLINE_IOVECS {
            self.spill.clear();
            self.spill.extend_from_slice(&self.inline[..self.len]);
        }
        let mut taken = 0;
        for (i, buf) in bufs.iter().enumerate() {
            let part = if i == 0 { &buf[offset..] } else { &buf[..] };
            let iovec = libc::iovec { iov_base: part.as_ptr() as *mut _, iov_len: part.len() };
            if spilled {
                self.spill.push(iovec);
            } else {
                self.inline[self.len] = iovec;
            }
            self.len += 1;
            taken += part.len();
        }
        self.left += taken;
        (bufs.len(), taken)
    }

    /// Forgets the first `n` bytes: they were sent.
    pub fn advance(&mut self, mut n: usize) {
        self.left -= n;
        let mut first = self.first;
        let iovecs = self.iovecs();
        while n > 0 && first < iovecs.len() {
            let iovec = &mut iovecs[first];
            if n < iovec.iov_len {
                // SAFETY: `n < iov_len`, so the new base is still inside the same buffer.
                iovec.iov_base = unsafe { iovec.iov_base.cast::<u8>().add(n) }.cast();
                iovec.iov_len -= n;
                break;
            }
            n -= iovec.iov_len;
            first += 1;
        }
        self.first = first;
    }

    /// The bytes not sent yet, copied into one buffer.
    pub fn copy_rest(&mut self) -> Bytes {
        let mut rest = bytes::BytesMut::with_capacity(self.left);
        let first = self.first;
        for iovec in &self.iovecs()[first..] {
            // SAFETY: every iovec points into bytes the op's pin set holds until the op is
            // released, and `iov_len` of them are left.
            let part = unsafe { std::slice::from_raw_parts(iovec.iov_base.cast(), iovec.iov_len) };
            rest.extend_from_slice(part);
        }
        rest.freeze()
    }

    /// Points the op at `rest` alone: what it had left, copied (the caller pins it).
    pub fn rebase(&mut self, rest: &Bytes) {
        self.spill.clear();
        self.inline[0] = libc::iovec { iov_base: rest.as_ptr() as *mut _, iov_len: rest.len() };
        (self.first, self.len, self.left) = (0, 1, rest.len());
    }

    /// The submission entry for what is left: `send` for one buffer, `sendmsg` for several.
    /// Nothing else touches the iovecs or `msg` until the operation completes.
    pub fn entry(&mut self) -> squeue::Entry {
        let (fd, first) = (self.fd, self.first);
        let rest = &mut self.iovecs()[first..];
        if let [one] = rest {
            return opcode::Send::new(Fd(fd), one.iov_base.cast(), one.iov_len as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build();
        }
        let (iov, count) = (rest.as_mut_ptr(), rest.len());
        self.msg.msg_iov = iov;
        self.msg.msg_iovlen = count as _;
        opcode::SendMsg::new(Fd(fd), &raw const self.msg).flags(libc::MSG_NOSIGNAL as u32).build()
    }

    #[cfg(test)]
    fn remaining(&mut self) -> Vec<usize> {
        let first = self.first;
        self.iovecs()[first..].iter().map(|v| v.iov_len).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_send_continues_from_the_offset() {
        let (abc, defg) = (Bytes::from_static(b"abc"), Bytes::from_static(b"defg"));
        let mut op = SendOp::new();
        assert_eq!(op.append(&[&abc, &defg], 1), (2, 6));
        op.advance(1); // "b"
        assert_eq!((op.remaining(), op.left), (vec![1, 4], 5));
        let _ = op.entry();
        op.advance(3); // "c", "de"
        assert_eq!((op.remaining(), op.left), (vec![2], 2));
        op.advance(2);
        assert!(op.remaining().is_empty() && op.left == 0);
    }

    #[test]
    fn what_is_left_moves_into_a_copy() {
        let (abc, defg) = (Bytes::from_static(b"abc"), Bytes::from_static(b"defg"));
        let mut op = SendOp::new();
        op.append(&[&abc, &defg, &abc, &defg, &abc], 0);
        op.advance(5); // "abc", "de"
        let rest = op.copy_rest();
        assert_eq!(&rest[..], b"fgabcdefgabc");
        op.rebase(&rest);
        assert_eq!((op.remaining(), op.left), (vec![12], 12));
        op.advance(4);
        assert_eq!((op.remaining(), op.left), (vec![8], 8));
    }

    #[test]
    fn a_collecting_op_takes_whole_buffers_until_it_is_full_or_queued() {
        let frame = Bytes::from_static(b"0123456789");
        let mut op = SendOp::new();
        // The first buffers may start at an offset; later ones may not.
        assert_eq!(op.append(&[&frame, &frame], 4), (2, 16));
        assert_eq!(op.append(&[&frame], 2), (0, 0));
        assert_eq!(op.remaining(), [6, 10]);
        // Past the inline iovecs, and only what fits in MAX_IOVECS, whole buffers only.
        let many = vec![&frame; MAX_IOVECS];
        assert_eq!(op.append(&many, 0), (MAX_IOVECS - 2, (MAX_IOVECS - 2) * 10));
        assert_eq!((op.remaining().len(), op.left), (MAX_IOVECS, 16 + (MAX_IOVECS - 2) * 10));
        assert_eq!(op.remaining()[..3], [6, 10, 10]);
        assert_eq!(op.append(&[&frame], 0), (0, 0));
        // More than the inline iovecs at once, into an empty op.
        op.reset();
        assert_eq!(op.append(&[&frame; 6], 3), (6, 57));
        assert_eq!(op.remaining(), [7, 10, 10, 10, 10, 10]);
        // Once queued, the kernel reads it: nothing more goes in.
        op.reset();
        assert_eq!(op.append(&[&frame], 0), (1, 10));
        op.queued = true;
        assert_eq!(op.append(&[&frame], 0), (0, 0));
        assert_eq!(op.append(&[], 0), (0, 0));
    }
}

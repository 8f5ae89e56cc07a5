//! One connection's send: the iovecs and `msghdr` the kernel reads from.
//!
//! # Invariants
//! - An op lives in a `Box` that never moves or drops while its send is in flight, so the
//!   pointers in its submission entry (its iovecs, its `msghdr`) stay valid until the final
//!   completion. The bytes its iovecs point into are held by its pin set ([`super::pins`]).
//! - `left` is the bytes not yet confirmed sent: the iovecs from `first` on, whose lengths
//!   shrink as partial sends complete.
//! - Until it is `queued`, an op only collects buffers (every send of one loop turn to its
//!   connection, up to [`MAX_IOVECS`]); once queued, only a completion changes it.

use bytes::Bytes;
use io_uring::types::Fd;
use io_uring::{opcode, squeue};
use std::os::fd::RawFd;

use super::DEAD;
use crate::reactor::sys::MAX_IOVECS;

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

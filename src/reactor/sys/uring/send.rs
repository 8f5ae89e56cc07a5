//! One connection's send in flight: the buffers, iovecs and `msghdr` the kernel reads from.
//!
//! # Invariants
//! - An op lives in a `Box` that never moves or drops while its send is in flight, and holds a
//!   clone of every buffer it names, so every pointer in its submission entry stays valid until
//!   the final completion.
//! - `left` is the bytes not yet confirmed sent; the first buffer starts at `offset`.
//! - Until it is `queued`, an op only collects buffers (every send of one loop turn to its
//!   connection, up to [`MAX_IOVECS`]); once queued, its buffers and iovecs are the kernel's to
//!   read and only a completion changes them.

use bytes::Bytes;
use io_uring::types::Fd;
use io_uring::{opcode, squeue};
use std::os::fd::RawFd;

use super::DEAD;

/// Most buffers handed to one send.
pub const MAX_IOVECS: usize = 64;

/// One connection's send in flight: what the kernel reads from, kept until the final completion.
pub struct SendOp {
    pub index: usize,
    pub generation: u32,
    pub fd: RawFd,
    /// The buffers; the first from `offset`.
    pub bufs: Vec<Bytes>,
    pub offset: usize,
    /// Bytes not confirmed sent yet.
    pub left: usize,
    /// Its submission entry is in the ring: nothing may be added to it any more.
    pub queued: bool,
    /// Filled only for a send of several buffers (its capacity is kept for the next one).
    iov: Vec<libc::iovec>,
    msg: libc::msghdr,
}

impl SendOp {
    pub fn new() -> Box<SendOp> {
        Box::new(SendOp {
            index: 0,
            generation: DEAD,
            fd: -1,
            bufs: Vec::new(),
            offset: 0,
            left: 0,
            queued: false,
            iov: Vec::new(),
            // SAFETY: `msghdr` is plain data: null pointers and zero lengths are its empty value.
            msg: unsafe { std::mem::zeroed() },
        })
    }

    /// Adds as many of `bufs` (the first from `offset`) as fit behind what the op holds, if it
    /// is still collecting; returns the bytes taken (0: none).
    pub fn append(&mut self, bufs: &[&Bytes], offset: usize) -> usize {
        let room = MAX_IOVECS - self.bufs.len();
        // An offset can only apply to the op's first buffer.
        if self.queued || room == 0 || bufs.is_empty() || (offset > 0 && !self.bufs.is_empty()) {
            return 0;
        }
        if self.bufs.is_empty() {
            self.offset = offset;
        }
        let bufs = &bufs[..bufs.len().min(room)];
        let taken = bufs.iter().map(|b| b.len()).sum::<usize>() - offset;
        self.bufs.extend(bufs.iter().map(|&b| b.clone()));
        self.left += taken;
        taken
    }

    /// Forgets the first `n` bytes: they were sent.
    pub fn advance(&mut self, mut n: usize) {
        self.left -= n;
        let mut done = 0;
        for buf in &self.bufs {
            let rest = buf.len() - self.offset;
            if n < rest {
                self.offset += n;
                break;
            }
            n -= rest;
            self.offset = 0;
            done += 1;
        }
        self.bufs.drain(..done);
    }

    /// The submission entry for what is left: `send` for one buffer, `sendmsg` for several.
    /// Nothing else touches `iov` or `msg` until the operation completes.
    pub fn entry(&mut self) -> squeue::Entry {
        let count = self.bufs.len().min(MAX_IOVECS);
        if count == 1 {
            let part = &self.bufs[0][self.offset..];
            return opcode::Send::new(Fd(self.fd), part.as_ptr(), part.len() as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build();
        }
        self.iov.clear();
        for (i, buf) in self.bufs.iter().take(count).enumerate() {
            let part = if i == 0 { &buf[self.offset..] } else { &buf[..] };
            self.iov.push(libc::iovec { iov_base: part.as_ptr() as *mut _, iov_len: part.len() });
        }
        self.msg.msg_iov = self.iov.as_mut_ptr();
        self.msg.msg_iovlen = count as _;
        opcode::SendMsg::new(Fd(self.fd), &raw const self.msg)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_send_continues_from_the_offset() {
        let mut op = SendOp::new();
        op.bufs = vec![Bytes::from_static(b"abc"), Bytes::from_static(b"defg")];
        op.offset = 1;
        op.left = 6;
        op.advance(1); // "b"
        assert_eq!((op.bufs.len(), op.offset, op.left), (2, 2, 5));
        let _ = op.entry();
        assert_eq!(op.iov.iter().map(|v| v.iov_len).collect::<Vec<_>>(), [1, 4]);
        op.advance(3); // "c", "de"
        assert_eq!((op.bufs.len(), op.offset, op.left), (1, 2, 2));
        op.advance(2);
        assert!(op.bufs.is_empty() && op.left == 0);
    }

    #[test]
    fn a_collecting_op_takes_whole_buffers_until_it_is_full_or_queued() {
        let frame = Bytes::from_static(b"0123456789");
        let mut op = SendOp::new();
        // The first buffers may start at an offset; later ones may not.
        assert_eq!(op.append(&[&frame, &frame], 4), 16);
        assert_eq!(op.append(&[&frame], 2), 0);
        assert_eq!((op.bufs.len(), op.offset, op.left), (2, 4, 16));
        // Only what fits in MAX_IOVECS, whole buffers only.
        let many = vec![&frame; MAX_IOVECS];
        assert_eq!(op.append(&many, 0), (MAX_IOVECS - 2) * 10);
        assert_eq!((op.bufs.len(), op.left), (MAX_IOVECS, 16 + (MAX_IOVECS - 2) * 10));
        assert_eq!(op.append(&[&frame], 0), 0);
        // Once queued, the kernel reads it: nothing more goes in.
        let mut op = SendOp::new();
        assert_eq!(op.append(&[&frame], 0), 10);
        op.queued = true;
        assert_eq!(op.append(&[&frame], 0), 0);
        assert_eq!(op.append(&[], 0), 0);
    }
}

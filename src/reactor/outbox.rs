//! A connection's queue of bytes the socket would not take yet.
//!
//! # Invariants
//! - Frames are shared (`Bytes`): queueing a broadcast frame for a slow member copies nothing.
//! - `offset` is the number of bytes of the front frame already written; it is 0 whenever the
//!   queue is at a package boundary, so a kick can be appended without splitting a package.
//! - `len` is the total of unwritten bytes, compared against `max_pending_bytes`.

use std::collections::VecDeque;
use std::io;

use bytes::Bytes;

use super::sys::MAX_IOVECS;

/// Fills the unused part of a list of frames.
pub(super) static NO_BYTES: Bytes = Bytes::new();

#[derive(Debug, Default)]
pub struct Outbox {
    frames: VecDeque<Bytes>,
    offset: usize,
    len: usize,
}

impl Outbox {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, frame: Bytes) {
        if !frame.is_empty() {
            self.len += frame.len();
            self.frames.push_back(frame);
        }
    }

    /// Queues a frame of which the first `written` bytes already went out (queue must be empty).
    pub fn push_written(&mut self, frame: Bytes, written: usize) {
        debug_assert!(self.frames.is_empty() && written < frame.len());
        self.len += frame.len() - written;
        self.offset = written;
        self.frames.push_back(frame);
    }

    /// Takes every queued frame (none may be partly written: a polling session's queue).
    pub fn take_all(&mut self) -> Vec<Bytes> {
        debug_assert_eq!(self.offset, 0);
        self.len = 0;
        self.offset = 0;
        self.frames.drain(..).collect()
    }

    /// Drops every frame the peer has not started to receive, keeping only the rest of a frame
    /// already partly written (so the stream stays at a package boundary afterwards).
    pub fn keep_started(&mut self) {
        if self.offset == 0 {
            self.frames.clear();
            self.len = 0;
        } else {
            self.frames.truncate(1);
            self.len = self.frames.front().map_or(0, |f| f.len() - self.offset);
        }
    }

    /// Hands the queue to `send` (up to [`MAX_IOVECS`] frames at a time, the first from the offset already
    /// written) until it is empty or `send` takes nothing; returns the bytes taken. `send` is a
    /// backend's vectored send: it returns how many bytes it took, 0 when it would block.
    pub fn flush_with(
        &mut self,
        mut send: impl FnMut(&[&Bytes], usize) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let mut written = 0;
        while !self.frames.is_empty() {
            let mut bufs = [&NO_BYTES; MAX_IOVECS];
            let mut count = 0;
            for (buf, frame) in bufs.iter_mut().zip(self.frames.iter()) {
                *buf = frame;
                count += 1;
            }
            match send(&bufs[..count], self.offset)? {
                0 => return Ok(written),
                n => {
                    self.consume(n);
                    written += n;
                }
            }
        }
        Ok(written)
    }

    fn consume(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let Some(front) = self.frames.front() else {
                break;
            };
            let left = front.len() - self.offset;
            if n >= left {
                n -= left;
                self.offset = 0;
                self.frames.pop_front();
            } else {
                self.offset += n;
                n = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A send that takes at most `cap` bytes per call, `calls_left` times, then blocks.
    struct Trickle {
        got: Vec<u8>,
        cap: usize,
        calls_left: usize,
    }

    impl Trickle {
        fn send(&mut self, bufs: &[&Bytes], offset: usize) -> io::Result<usize> {
            if self.calls_left == 0 {
                return Ok(0);
            }
            self.calls_left -= 1;
            let mut n = 0;
            for (i, b) in bufs.iter().enumerate() {
                let b = if i == 0 { &b[offset..] } else { &b[..] };
                let take = (self.cap - n).min(b.len());
                self.got.extend_from_slice(&b[..take]);
                n += take;
                if n == self.cap {
                    break;
                }
            }
            Ok(n)
        }
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        let mut out = Outbox::default();
        out.push(Bytes::from_static(b"hello "));
        out.push(Bytes::from_static(b"big "));
        out.push(Bytes::from_static(b"world"));
        assert_eq!(out.len(), 15);
        let mut sink = Trickle { got: Vec::new(), cap: 4, calls_left: 2 };
        assert_eq!(out.flush_with(|b, o| sink.send(b, o)).unwrap(), 8);
        assert_eq!(out.len(), 7);
        assert_ne!(out.offset, 0, "stopped inside a frame");
        sink.calls_left = 10;
        assert_eq!(out.flush_with(|b, o| sink.send(b, o)).unwrap(), 7);
        assert_eq!(sink.got, b"hello big world");
        assert!(out.is_empty() && out.offset == 0);
    }

    #[test]
    fn keep_started_keeps_only_a_partly_written_frame() {
        let mut out = Outbox::default();
        out.push(Bytes::from_static(b"abc"));
        out.push(Bytes::from_static(b"def"));
        out.keep_started();
        assert!(out.is_empty());

        out.push_written(Bytes::from_static(b"abcd"), 1);
        out.push(Bytes::from_static(b"ef"));
        out.keep_started();
        assert_eq!(out.len(), 3);
        let mut sink = Trickle { got: Vec::new(), cap: 100, calls_left: 1 };
        assert_eq!(out.flush_with(|b, o| sink.send(b, o)).unwrap(), 3);
        assert_eq!(sink.got, b"bcd");
    }
}

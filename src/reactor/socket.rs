//! A reactor's socket work: accept, read into the scratch buffer, write (directly, or queued
//! when the socket is full), kick and close.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mio::net::TcpStream;
use mio::{Interest, Token};

use super::conn::{Conn, ConnState, Transport};
use super::outbox::Outbox;
use super::stats::KickReason;
use super::{ACCEPTS_PER_TURN, LINGER_SECS, READS_PER_TURN, Reactor};
use crate::broadcast::Frame;
use crate::protocol::ProtocolError;
use crate::protocol::pomelo::kick;
use crate::protocol::websocket::frame::{self, MAX_SERVER_HEADER_LEN, OpCode};

/// Most frames handed to one direct `writev`.
const MAX_IOVECS: usize = 64;

impl Reactor {
    pub(super) fn accept(&mut self) {
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((stream, _)) => self.admit(stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_again = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_resource_exhaustion(&e) => {
                    // Out of file descriptors or memory: back off, the backlog keeps the rest.
                    tracing::warn!(core = self.core, error = %e, "accept failed, pausing accepts for 100 ms");
                    self.accept_again = true;
                    self.accept_paused_until = Some(Instant::now() + Duration::from_millis(100));
                    return;
                }
                Err(e) => tracing::debug!(core = self.core, error = %e, "accept failed"),
            }
        }
        self.accept_again = true;
    }

    fn admit(&mut self, mut stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let index = self.conns.next_index();
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.poll.registry().register(&mut stream, Token(index), interest) {
            tracing::warn!(core = self.core, error = %e, "could not register a new connection");
            return;
        }
        let generation = self.conns.next_generation();
        let inserted = self.conns.insert(Conn::new(stream, generation, self.now));
        debug_assert_eq!(inserted, index);
        self.schedule(index, self.now + self.shared.settings.handshake_timeout_secs + 1);
        let stats = &self.shared.stats[self.core];
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        stats.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads until `WouldBlock`, at most `READS_PER_TURN` times.
    pub(super) fn on_readable(&mut self, index: usize) {
        for _ in 0..READS_PER_TURN {
            let Some(conn) = self.conns.get_mut(index) else {
                return;
            };
            let closing = conn.state == ConnState::Closing;
            let mut scratch = std::mem::take(&mut self.scratch);
            let result = conn.stream.read(&mut scratch);
            let alive = match result {
                Ok(0) => {
                    self.close(index);
                    false
                }
                Ok(_) if closing => true, // a closing connection's input is discarded
                Ok(n) => self.on_input(index, &mut scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.scratch = scratch;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
                Err(_) => {
                    self.close(index);
                    false
                }
            };
            self.scratch = scratch;
            if !alive {
                return;
            }
        }
        if let Some(conn) = self.conns.get(index) {
            self.retry_reads.push((index, conn.generation));
        }
    }

    /// A protocol error: a working connection is kicked with the reason, others are closed.
    pub(super) fn protocol_fault(&mut self, index: usize, error: &ProtocolError) {
        tracing::debug!(core = self.core, conn = index, %error, "protocol error");
        let reason = match error {
            ProtocolError::PackageTooLarge { .. } => KickReason::PackageTooLarge,
            _ => KickReason::ProtocolError,
        };
        self.kick(index, reason, &error.kick_reason());
    }

    /// Sends what `reply` holds for the connection being read; false if that closed it.
    pub(super) fn flush_reply(&mut self, index: usize) -> bool {
        if self.reply.is_empty() {
            return true;
        }
        let reply = std::mem::take(&mut self.reply);
        let alive = self.send_slice(index, &reply);
        self.reply = reply;
        self.reply.clear();
        alive
    }

    pub(super) fn on_writable(&mut self, index: usize) {
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        let Some(out) = conn.out.as_mut() else { return };
        match out.flush(&mut conn.stream) {
            Ok(true) => {
                conn.out = None;
                if conn.state == ConnState::Closing {
                    let _ = conn.stream.shutdown(Shutdown::Write);
                }
            }
            Ok(false) => {}
            Err(_) => self.close(index),
        }
    }

    /// Writes `frames` to the connection, each in the form its transport needs, behind anything
    /// already queued; only what the socket refuses is queued (sharing the frames, not copying
    /// them). False if the connection was closed or kicked as a result.
    pub(super) fn send(&mut self, index: usize, frames: &[Frame]) -> bool {
        let Some(conn) = self.conns.get_mut(index) else { return false };
        if conn.state == ConnState::Closing {
            return true;
        }
        let transport = conn.transport();
        if let Some(out) = conn.out.as_mut() {
            frames.iter().for_each(|f| out.push(f.bytes(transport).clone()));
            return self.check_pending(index);
        }
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let count = frames.len().min(MAX_IOVECS);
        for (slice, frame) in slices.iter_mut().zip(frames) {
            *slice = IoSlice::new(frame.bytes(transport));
        }
        let mut written = match write_vectored(&mut conn.stream, &slices[..count]) {
            Ok(n) => n,
            Err(_) => {
                self.close(index);
                return false;
            }
        };
        let total: usize = frames.iter().map(|f| f.bytes(transport).len()).sum();
        if written == total {
            return true;
        }
        let mut out = Box::<Outbox>::default();
        for frame in frames.iter().map(|f| f.bytes(transport)) {
            if written >= frame.len() {
                written -= frame.len();
            } else if out.is_empty() {
                out.push_written(frame.clone(), written);
                written = 0;
            } else {
                out.push(frame.clone());
            }
        }
        conn.out = Some(out);
        self.check_pending(index)
    }

    /// Like [`send`](Self::send) for bytes that are not shared: copied only if queued.
    pub(super) fn send_slice(&mut self, index: usize, data: &[u8]) -> bool {
        let Some(conn) = self.conns.get_mut(index) else {
            return false;
        };
        if let Some(out) = conn.out.as_mut() {
            out.push(Bytes::copy_from_slice(data));
            return self.check_pending(index);
        }
        let written = match write_vectored(&mut conn.stream, &[IoSlice::new(data)]) {
            Ok(n) => n,
            Err(_) => {
                self.close(index);
                return false;
            }
        };
        if written < data.len() {
            let mut out = Box::<Outbox>::default();
            out.push_written(Bytes::copy_from_slice(data), written);
            conn.out = Some(out);
            return self.check_pending(index);
        }
        true
    }

    /// Kicks a slow consumer whose queue passed `max_pending_bytes`; false if it did.
    fn check_pending(&mut self, index: usize) -> bool {
        let Some(conn) = self.conns.get(index) else {
            return false;
        };
        if conn.pending_bytes() > self.shared.settings.max_pending_bytes
            && conn.state != ConnState::Closing
        {
            self.kick(index, KickReason::Slow, KickReason::Slow.as_str());
            return false;
        }
        true
    }

    /// Server-initiated close. A working connection gets a KICK with `text` first, then the write
    /// side is shut and the connection lingers until the peer closes; others are closed at once.
    /// The kick goes after what is already queued, except for a slow consumer: its queue is
    /// dropped but for the rest of a package already partly written, so the stream stays aligned
    /// and the client still reads why it was dropped.
    pub(super) fn kick(&mut self, index: usize, reason: KickReason, text: &str) {
        let close_code = match reason {
            KickReason::ProtocolError | KickReason::Attack => 1002,
            KickReason::PackageTooLarge => 1009,
            KickReason::Shutdown => 1001,
            _ => 1000,
        };
        self.kick_with_code(index, reason, text, close_code);
    }

    /// [`kick`](Self::kick) with the close code a WebSocket client gets after the kick package.
    pub(super) fn kick_with_code(
        &mut self,
        index: usize,
        reason: KickReason,
        text: &str,
        close_code: u16,
    ) {
        if self.replying == index {
            self.flush_reply(index);
        }
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        match conn.state {
            ConnState::Closing => return,
            ConnState::Opening | ConnState::Handshaking | ConnState::WaitAck => {
                self.close(index);
                return;
            }
            ConnState::Working => {}
        }
        tracing::debug!(core = self.core, conn = index, reason = text, "kick");
        self.shared.stats[self.core].kicked(reason);
        if reason == KickReason::Slow {
            if let Some(out) = conn.out.as_mut() {
                out.keep_started();
                if out.is_empty() {
                    conn.out = None;
                }
            }
        }
        // Closing from here on: nothing else is queued, so the kick cannot overflow the queue.
        conn.state = ConnState::Closing;
        let mut package = BytesMut::new();
        kick::encode(text, &mut package);
        if conn.transport() == Transport::WebSocket {
            let mut framed =
                BytesMut::with_capacity(package.len() + 2 * MAX_SERVER_HEADER_LEN + 125);
            frame::encode_frame(OpCode::Binary, &package, &mut framed);
            frame::encode_close(close_code, text, &mut framed);
            package = framed;
        }
        self.send_last(index, &package);
        self.begin_closing(index);
    }

    /// Writes or queues the last bytes a closing connection gets, with no queue limit.
    fn send_last(&mut self, index: usize, data: &[u8]) {
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        if let Some(out) = conn.out.as_mut() {
            out.push(Bytes::copy_from_slice(data));
            return;
        }
        match write_vectored(&mut conn.stream, &[IoSlice::new(data)]) {
            Ok(n) if n < data.len() => {
                let mut out = Box::<Outbox>::default();
                out.push_written(Bytes::copy_from_slice(data), n);
                conn.out = Some(out);
            }
            // All written, or the peer is gone: the linger deadline or EOF ends it either way.
            Ok(_) | Err(_) => {}
        }
    }

    /// Leaves the channel, shuts the write side once the queue is out, and lingers.
    pub(super) fn begin_closing(&mut self, index: usize) {
        self.leave_session(index);
        let now = self.now;
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        conn.state = ConnState::Closing;
        conn.last_seen = now;
        conn.read_rest = None;
        if conn.out.is_none() {
            let _ = conn.stream.shutdown(Shutdown::Write);
        }
        self.schedule(index, now + LINGER_SECS + 1);
    }

    /// Closes the socket and forgets the connection.
    pub(super) fn close(&mut self, index: usize) {
        if self.replying == index {
            self.reply.clear();
        }
        self.leave_session(index);
        if let Some(mut conn) = self.conns.remove(index) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.shared.stats[self.core].connections.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// One `writev`, retried on `EINTR`; `WouldBlock` is 0 bytes written.
fn write_vectored(stream: &mut TcpStream, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    loop {
        match stream.write_vectored(slices) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn is_resource_exhaustion(e: &io::Error) -> bool {
    // EMFILE 24, ENFILE 23, ENOBUFS 105, ENOMEM 12 on Linux.
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12))
}

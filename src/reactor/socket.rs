//! A reactor's socket work through its backend: accept, read (into a buffer the backend lends),
//! kick and close.

use std::io;
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::conn::{Conn, ConnState, Transport};
use super::stats::{self, KickReason};
use super::sys::Recv;
use super::{ACCEPTS_PER_TURN, LINGER_SECS, READS_PER_TURN, Reactor};
use crate::protocol::ProtocolError;
use crate::protocol::pomelo::kick;
use crate::protocol::websocket::frame::{self, MAX_SERVER_HEADER_LEN, OpCode};

impl Reactor {
    pub(super) fn accept(&mut self) {
        for _ in 0..ACCEPTS_PER_TURN {
            match self.sys.accept() {
                Ok(stream) => self.admit(stream),
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

    /// Takes a new connection (its `TCP_NODELAY` is inherited from the listener).
    fn admit(&mut self, stream: TcpStream) {
        let index = self.conns.next_index();
        let generation = self.conns.next_generation();
        if let Err(e) = self.sys.open(index, generation, &stream) {
            tracing::warn!(core = self.core, error = %e, "could not register a new connection");
            return;
        }
        let inserted = self.conns.insert(Conn::new(stream, generation, self.now));
        debug_assert_eq!(inserted, index);
        self.schedule(index, self.now + self.shared.settings.handshake_timeout_secs + 1);
        let stats = &self.shared.stats[self.core];
        stats::add(&stats.accepted, 1);
        stats::add(&stats.opening, 1);
    }

    /// Reads until `WouldBlock`, at most `READS_PER_TURN` times.
    pub(super) fn on_readable(&mut self, index: usize) {
        for _ in 0..READS_PER_TURN {
            let Some(conn) = self.conns.get(index) else {
                return;
            };
            let closing = conn.state == ConnState::Closing;
            let alive = match self.sys.recv(&conn.stream) {
                Recv::Data(mut buf) => {
                    // A closing connection's input is discarded.
                    let alive = closing || self.on_input(index, &mut buf);
                    self.sys.recycle(buf);
                    alive
                }
                Recv::WouldBlock => return,
                Recv::Closed | Recv::Failed(_) => {
                    self.close(index);
                    false
                }
            };
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
                let before = out.len();
                out.keep_started();
                stats::sub(&self.shared.stats[self.core].queued_bytes, (before - out.len()) as u64);
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
        if conn.out.is_none() && !self.sys.sending(index) {
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
        if let Some(conn) = self.conns.remove(index) {
            let stats = &self.shared.stats[self.core];
            stats::sub(&stats.queued_bytes, conn.pending_bytes() as u64);
            stats::add(&stats.closed, 1);
            let gauge = match (conn.tags.transport_chosen(), conn.transport()) {
                (false, _) => &stats.opening,
                (true, Transport::Tcp) => &stats.tcp,
                (true, Transport::WebSocket) => &stats.websocket,
            };
            stats::sub(gauge, 1);
            self.sys.close(index, conn.stream);
        }
    }
}

fn is_resource_exhaustion(e: &io::Error) -> bool {
    // EMFILE 24, ENFILE 23, ENOBUFS 105, ENOMEM 12 on Linux.
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12))
}

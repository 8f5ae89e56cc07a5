//! A reactor's socket work through its backend: accept, read (into a buffer the backend lends),
//! kick and close.

use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::admission::SourceSlot;
use super::conn::Conn;
use super::sys::Recv;
use super::{ACCEPTS_PER_TURN, LINGER_SECS, Liveness, READS_PER_TURN, Reactor};
use crate::ids::Transport;
use crate::session::Kick;
use crate::stats::{self, KickReason, Refused};

/// How often a reactor logs refusals by one admission limit.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

impl Reactor {
    pub(super) fn accept(&mut self) {
        for _ in 0..ACCEPTS_PER_TURN {
            match self.driver.accept() {
                Ok(stream) => {
                    if std::mem::take(&mut self.accept_exhausted) {
                        tracing::info!(core = self.core, "accepting connections again");
                    }
                    self.admit(stream)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_again = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_resource_exhaustion(&e) => {
                    stats::add(&self.counters().accept_exhausted, 1);
                    // Out of file descriptors or memory: back off, the backlog keeps the rest.
                    // Logged once until an accept succeeds again, not every 100 ms.
                    if !std::mem::replace(&mut self.accept_exhausted, true) {
                        tracing::warn!(
                            core = self.core,
                            error = %e,
                            "accept failed: retrying every 100 ms, serving the connections held"
                        );
                    }
                    self.accept_again = true;
                    self.accept_paused_until = Some(Instant::now() + Duration::from_millis(100));
                    return;
                }
                Err(e) => tracing::debug!(core = self.core, error = %e, "accept failed"),
            }
        }
        self.accept_again = true;
    }

    /// Takes a new connection (its `TCP_NODELAY` is inherited from the listener), if the
    /// admission limits let it stay; a refused one is closed unread.
    fn admit(&mut self, stream: TcpStream) {
        let source = stream.peer_addr().ok().map(|addr| addr.ip());
        let opening = self.shared.reactors.iter().map(|r| stats::read(&r.handshaking)).sum::<u64>();
        let slot = match self.shared.admission.admit(source, opening as usize, Instant::now()) {
            Ok(slot) => slot,
            Err(reason) => {
                self.counters().refused(reason);
                self.log_refusal(reason, source);
                return;
            }
        };
        if self.install(stream, slot).is_some() {
            stats::add(&self.counters().accepted, 1);
        }
    }

    /// Watches `stream` as a new opening connection with admission entry `source` (released if
    /// the backend cannot take it); returns its slab index.
    pub(super) fn install(&mut self, stream: TcpStream, source: SourceSlot) -> Option<usize> {
        let index = self.conns.next_index();
        let generation = self.conns.next_generation();
        if let Err(e) = self.driver.open(index, generation, &stream) {
            tracing::warn!(core = self.core, error = %e, "could not register a connection");
            self.shared.admission.release(source);
            return None;
        }
        if self.sources.len() <= index {
            self.sources.resize(index + 1, SourceSlot::NONE);
        }
        self.sources[index] = source;
        let conn = Conn::new(stream, generation, self.now);
        let deadline = conn.session.deadline(&self.shared.sessions);
        let inserted = self.conns.insert(conn);
        debug_assert_eq!(inserted, index);
        self.schedule(index, deadline + 1);
        let counters = self.counters();
        stats::add(&counters.opening, 1);
        stats::add(&counters.handshaking, 1);
        Some(index)
    }

    /// Logs a refusal, at most once per 10 s per limit on this reactor (the counter has them
    /// all).
    fn log_refusal(&mut self, reason: Refused, source: Option<std::net::IpAddr>) {
        let now = Instant::now();
        let last = &mut self.refusals_logged[reason as usize];
        if last.is_some_and(|at| now.duration_since(at) < REFUSAL_LOG_EVERY) {
            return;
        }
        *last = Some(now);
        let source = source.map(|ip| ip.to_string()).unwrap_or_default();
        tracing::warn!(core = self.core, %source, reason = reason.as_str(), "connection refused");
    }

    /// Reads until `WouldBlock`, at most `READS_PER_TURN` times; on epoll a connection with more
    /// to read is queued for the next turn (`retry_reads`). On io_uring an input event carries
    /// one completed receive, taken here; the next comes as its own event, so nothing is queued
    /// (and `recv` is never called outside an event, where the driver's pending slot is not this
    /// connection's).
    pub(super) fn on_readable(&mut self, index: usize) {
        for _ in 0..READS_PER_TURN {
            let Some(conn) = self.conns.get(index) else {
                return;
            };
            let closing = conn.flags.is_closing();
            let moving = conn.flags.is_moving();
            let Some(stream) = conn.stream.as_ref() else { return };
            let liveness = match self.driver.recv(stream) {
                // A closing connection's input is discarded.
                Recv::Data(buf) if closing => {
                    self.driver.recycle(buf);
                    Liveness::Open
                }
                // A moving connection's input goes with it, undecoded (a TLS one's, opened).
                Recv::Data(mut buf) if moving && conn.flags.is_tls() => {
                    let liveness = self.on_bytes(index, &mut buf);
                    self.driver.recycle(buf);
                    liveness
                }
                Recv::Data(buf) if moving => {
                    if let Some(conn) = self.conns.get_mut(index) {
                        conn.read_rest.get_or_insert_default().tail.extend_from_slice(&buf);
                    }
                    self.driver.recycle(buf);
                    Liveness::Open
                }
                Recv::Data(mut buf) => {
                    let liveness = self.on_bytes(index, &mut buf);
                    self.driver.recycle(buf);
                    liveness
                }
                Recv::WouldBlock => return,
                Recv::Closed | Recv::Failed(_) => {
                    self.close(index);
                    Liveness::Gone
                }
            };
            if liveness == Liveness::Gone {
                return;
            }
        }
        if !self.driver.input_waits_in_socket() {
            return;
        }
        if let Some(conn) = self.conns.get_mut(index) {
            conn.flags.set_read_deferred(true);
            self.retry_reads.push((index, conn.generation));
        }
    }

    /// Server-initiated close. A working session gets its frontend's kick with the reason
    /// first (and a close frame with the kick's code over WebSocket), then the write side is
    /// shut and the connection lingers until the peer closes; others are closed at once. The
    /// kick goes after what is already queued, except for a slow consumer: its queue is dropped
    /// but for the rest of a package already partly written, so the stream stays aligned and
    /// the client still reads why it was dropped.
    pub(super) fn kick(&mut self, index: usize, kick: &Kick) {
        if self.transmitting == index {
            let _ = self.flush_transmit(index);
        }
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        if conn.flags.is_closing() {
            return;
        }
        if !conn.session.is_working() {
            self.close(index);
            return;
        }
        tracing::debug!(core = self.core, conn = index, reason = %kick.text, "kick");
        let counters = &self.shared.reactors[self.core];
        counters.kicked(kick.reason);
        if let Some(app) = conn.session.member_of() {
            self.shared.push.client_kicked(app);
        }
        if kick.reason == KickReason::Slow {
            if let Some(out) = conn.out.as_mut() {
                let before = out.len();
                out.keep_started();
                stats::sub(&counters.queued_bytes, (before - out.len()) as u64);
                if out.is_empty() {
                    conn.out = None;
                }
            }
        }
        // Closing from here on: nothing else is queued, so the kick cannot overflow the queue.
        conn.flags.set_closing();
        let mut bytes = BytesMut::new();
        conn.session.encode_kick(kick, &mut bytes);
        self.send_last(index, &bytes);
        self.begin_closing(index);
    }

    /// Leaves the channel, shuts the write side once the queue is out, and lingers.
    pub(super) fn begin_closing(&mut self, index: usize) {
        self.leave_session(index);
        if self.conns.get(index).is_some_and(|c| c.flags.is_tls()) {
            self.close_notify(index);
        }
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        conn.flags.set_closing();
        conn.read_rest = None;
        if let Some(stream) = conn.stream.as_ref().filter(|_| conn.out.is_none())
            && !self.driver.sending(index)
        {
            let _ = stream.shutdown(Shutdown::Write);
            conn.flags.set_write_shut();
        }
        self.reschedule(index, self.now + LINGER_SECS + 1);
    }

    /// Closes the socket and forgets the connection (a polling session: ends it, and closes
    /// the connection of a poll still waiting for it).
    pub(super) fn close(&mut self, index: usize) {
        if self.transmitting == index {
            self.transmit.clear();
        }
        let waiting = self.take_waiting_poll(index);
        self.moves.retain(|m| m.index != index);
        self.releasing.retain(|m| m.index != index);
        self.leave_session(index);
        let Some(conn) = self.conns.remove(index) else { return };
        if conn.flags.is_tls() && matches!(self.tls.remove(index), super::tls::Removed::Unfinished)
        {
            // A handshake that never finished (the peer left, e.g. not trusting the chain,
            // or the deadline passed): a failure, as a refused certificate is.
            stats::add(&self.shared.reactors[self.core].tls.failures, 1);
        }
        let counters = &self.shared.reactors[self.core];
        stats::sub(&counters.queued_bytes, conn.pending_bytes() as u64);
        if !conn.session.is_working() {
            stats::sub(&counters.handshaking, 1);
        }
        stats::sub(self.gauge_of(&conn.session), 1);
        let Some(stream) = conn.stream else {
            if let Some((carrier, version)) = waiting {
                self.end_waiting_poll(carrier, version);
            }
            return;
        };
        stats::add(&counters.closed, 1);
        let slot = self.sources.get_mut(index).map(|s| std::mem::replace(s, SourceSlot::NONE));
        self.shared.admission.release(slot.unwrap_or(SourceSlot::NONE));
        self.driver.close(index, stream);
    }

    /// The gauge that counts a connection with `session`.
    pub(super) fn gauge_of(&self, session: &crate::session::Session) -> &AtomicU64 {
        let counters = &self.shared.reactors[self.core];
        match session.transport() {
            None => &counters.opening,
            Some(Transport::Tcp) => &counters.tcp,
            Some(Transport::WebSocket) => &counters.websocket,
            Some(Transport::Polling) => &counters.polling,
        }
    }
}

fn is_resource_exhaustion(e: &io::Error) -> bool {
    // EMFILE 24, ENFILE 23, ENOBUFS 105, ENOMEM 12 on Linux.
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12))
}

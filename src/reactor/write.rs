//! A reactor's write path: direct sends through the backend, and a queue only for what the
//! backend refuses.
//!
//! # Invariants
//! - A connection with nothing queued is sent to directly; a connection with a queue gets
//!   new bytes appended to it (order is kept), and the queue drains on writable events.
//! - Queued broadcast frames are shared, never copied; only unshared bytes (replies) are copied,
//!   and only when the socket refused them, and so are an MQTT member's own small headers (cut
//!   from a shared scratch block they must not pin).
//! - A queue past `max_pending_bytes` is a slow consumer and is kicked; nobody else waits for it.
//! - `bytes_written` and the `queued_bytes` gauge follow every write and every queue change.

use std::net::Shutdown;

use bytes::Bytes;

use super::outbox::{NO_BYTES, Outbox};
use super::sys::MAX_IOVECS;
use super::{Liveness, Reactor};
use crate::ids::ConnId;
use crate::push::Frame;
use crate::session::mqtt::Staged;
use crate::session::{Kick, MqttSession, Session};
use crate::stats::{self, KickReason};

/// Parts this small are copied when queued rather than shared (see [`Reactor::send_parts`]).
const SMALL_PART: usize = 256;

impl Reactor {
    /// Sends what `transmit` holds for the connection being read.
    pub(super) fn flush_transmit(&mut self, index: usize) -> Liveness {
        if self.transmit.is_empty() {
            return Liveness::Open;
        }
        let transmit = std::mem::take(&mut self.transmit);
        let liveness = self.send_slice(index, &transmit);
        self.transmit = transmit;
        self.transmit.clear();
        liveness
    }

    /// The connection can take more: its queue goes out, and a closing connection whose bytes
    /// have all left (queue drained, nothing held by the backend) gets its write side shut.
    pub(super) fn on_writable(&mut self, index: usize) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        let Some(stream) = conn.stream.as_ref() else { return };
        if let Some(out) = conn.out.as_mut() {
            let driver = &mut self.driver;
            let before = out.len();
            let result = out.flush_with(|bufs, offset| driver.send(index, stream, bufs, offset));
            // Count what left even when the flush ended in an error.
            let written = (before - out.len()) as u64;
            let counters = &self.shared.reactors[self.core];
            stats::add(&counters.bytes_written, written);
            stats::sub(&counters.queued_bytes, written);
            if result.is_err() {
                self.close(index);
                return;
            }
            if !out.is_empty() {
                return;
            }
            conn.out = None;
        }
        let closing = conn.flags;
        if closing.is_closing() && !closing.is_write_shut() && !self.driver.sending(index) {
            let _ = stream.shutdown(Shutdown::Write);
            conn.flags.set_write_shut();
        }
        if closing.is_moving() && !self.driver.sending(index) {
            self.on_drained(index);
        }
    }

    /// Writes `frames` to the connection, each in the connection's wire form, behind anything
    /// already queued; only what the socket refuses is queued (sharing the frames, not copying
    /// them).
    pub(super) fn send(&mut self, index: usize, frames: &[Frame]) -> Liveness {
        let Some(conn) = self.conns.get(index) else { return Liveness::Gone };
        let Some(form) = conn.session.form() else { return Liveness::Open };
        if conn.flags.is_closing() {
            return Liveness::Open;
        }
        if let Session::Mqtt(session) = conn.session {
            let me = ConnId::new(self.core, index, conn.generation);
            return self.send_mqtt(index, me, &session, frames);
        }
        self.send_parts(index, frames, |frame| frame.bytes(form), 0)
    }

    /// An MQTT member: each frame staged by its session (the shared QoS 0 packet, or its own
    /// QoS 1 header and the shared payload, or nothing while its window is full).
    fn send_mqtt(
        &mut self,
        index: usize,
        me: ConnId,
        session: &MqttSession,
        frames: &[Frame],
    ) -> Liveness {
        let mut parts = std::mem::take(&mut self.parts);
        let settings = &self.shared.sessions.mqtt;
        let mut slow = false;
        for frame in frames {
            match self.per_core.mqtt.stage(session, me, settings, frame, &mut self.headers) {
                Staged::Whole(bytes) if !bytes.is_empty() => parts.push(bytes.clone()),
                Staged::Whole(_) | Staged::Nothing => {}
                Staged::Split { header, payload } => {
                    parts.push(header);
                    parts.push(payload);
                }
                Staged::Slow => slow = true,
            }
        }
        let liveness = if slow {
            self.kick(index, &Kick::new(KickReason::Slow));
            Liveness::Gone
        } else {
            // Headers are cut from 64 KiB scratch blocks: queued, each is copied out, so that a
            // stalled member pins a few bytes, not the blocks.
            self.send_parts(index, &parts, |part| part, SMALL_PART)
        };
        parts.clear();
        self.parts = parts;
        liveness
    }

    /// Writes `bytes` of each of `parts` behind anything already queued; only what the socket
    /// refuses is queued (sharing the parts' bytes, not copying them, but for parts of at most
    /// `copy_up_to` bytes). A TLS connection's parts are sealed first, into records that are
    /// copied if queued.
    pub(super) fn send_parts<'p, T>(
        &mut self,
        index: usize,
        parts: &'p [T],
        bytes: impl Fn(&'p T) -> &'p Bytes,
        copy_up_to: usize,
    ) -> Liveness {
        if self.conns.get(index).is_some_and(|c| c.flags.is_tls()) {
            let sealed = match self.seal(index, parts.iter().map(|p| &bytes(p)[..])) {
                Ok(sealed) => sealed,
                Err(e) => {
                    tracing::debug!(core = self.core, conn = index, error = %e, "TLS seal failed");
                    self.close(index);
                    return Liveness::Gone;
                }
            };
            return self.send_raw_parts(index, std::slice::from_ref(&sealed), |b| b, usize::MAX);
        }
        self.send_raw_parts(index, parts, bytes, copy_up_to)
    }

    /// [`send_parts`](Self::send_parts) of bytes that go to the socket as they are.
    fn send_raw_parts<'p, T>(
        &mut self,
        index: usize,
        parts: &'p [T],
        bytes: impl Fn(&'p T) -> &'p Bytes,
        copy_up_to: usize,
    ) -> Liveness {
        let keep = |part: &Bytes| match part.len() {
            len if len <= copy_up_to => Bytes::copy_from_slice(part),
            _ => part.clone(),
        };
        let Some(conn) = self.conns.get_mut(index) else { return Liveness::Gone };
        if parts.is_empty() {
            return Liveness::Open;
        }
        let detached = conn.is_detached();
        if detached {
            conn.out.get_or_insert_default();
        }
        if let Some(out) = conn.out.as_mut() {
            let before = out.len();
            parts.iter().for_each(|p| out.push(keep(bytes(p))));
            let queued = (out.len() - before) as u64;
            stats::add(&self.shared.reactors[self.core].queued_bytes, queued);
            let liveness = self.check_pending(index);
            if detached && liveness == Liveness::Open {
                let _ = self.answer_poll(index);
            }
            return liveness;
        }
        let Some(stream) = conn.stream.as_ref() else { return Liveness::Gone };
        let mut bufs = [&NO_BYTES; MAX_IOVECS];
        let count = parts.len().min(MAX_IOVECS);
        for (buf, part) in bufs.iter_mut().zip(parts) {
            *buf = bytes(part);
        }
        let offered: usize = bufs[..count].iter().map(|b| b.len()).sum();
        let Ok(written) = self.driver.send(index, stream, &bufs[..count], 0) else {
            self.close(index);
            return Liveness::Gone;
        };
        let counters = &self.shared.reactors[self.core];
        stats::add(&counters.bytes_written, written as u64);
        let total: usize = parts.iter().map(|p| bytes(p).len()).sum();
        if written == total {
            return Liveness::Open;
        }
        let socket_full = written < offered;
        let mut written = written;
        let mut out = Box::<Outbox>::default();
        for part in parts.iter().map(&bytes) {
            if written >= part.len() {
                written -= part.len();
            } else if out.is_empty() {
                out.push_written(keep(part), written);
                written = 0;
            } else {
                out.push(keep(part));
            }
        }
        stats::add(&counters.queued_bytes, out.len() as u64);
        conn.out = Some(out);
        if !socket_full {
            // More parts than one writev takes, and the socket took them all: no writable
            // event is coming, so keep writing now.
            self.on_writable(index);
        }
        self.check_pending(index)
    }

    /// Like [`send`](Self::send) for bytes that are not shared: copied only if queued.
    pub(super) fn send_slice(&mut self, index: usize, data: &[u8]) -> Liveness {
        self.write_or_queue(index, data);
        self.check_pending(index)
    }

    /// Writes or queues the last bytes a closing connection gets, with no queue limit.
    pub(super) fn send_last(&mut self, index: usize, data: &[u8]) {
        self.write_or_queue(index, data);
    }

    /// Writes `data` directly when nothing is queued, and queues (a copy of) what is left (a
    /// polling session: queues it, for its poll); a TLS connection's, sealed.
    fn write_or_queue(&mut self, index: usize, data: &[u8]) {
        if !self.conns.get(index).is_some_and(|c| c.flags.is_tls()) {
            return self.write_or_queue_raw(index, data);
        }
        match self.seal(index, [data]) {
            Ok(sealed) => self.write_or_queue_raw(index, &sealed),
            Err(e) => {
                tracing::debug!(core = self.core, conn = index, error = %e, "TLS seal failed");
                self.close(index);
            }
        }
    }

    /// Bytes for the socket as they are (TLS records, sealed or from the handshake).
    pub(super) fn write_raw(&mut self, index: usize, data: &[u8]) -> Liveness {
        self.write_or_queue_raw(index, data);
        self.check_pending(index)
    }

    /// [`write_or_queue`](Self::write_or_queue) of bytes that go to the socket as they are.
    fn write_or_queue_raw(&mut self, index: usize, data: &[u8]) {
        let Some(conn) = self.conns.get_mut(index) else { return };
        let counters = &self.shared.reactors[self.core];
        let Some(stream) = conn.stream.as_ref() else {
            if data.is_empty() {
                return;
            }
            conn.out.get_or_insert_default().push(Bytes::copy_from_slice(data));
            stats::add(&counters.queued_bytes, data.len() as u64);
            let _ = self.answer_poll(index);
            return;
        };
        if let Some(out) = conn.out.as_mut() {
            out.push(Bytes::copy_from_slice(data));
            stats::add(&counters.queued_bytes, data.len() as u64);
            return;
        }
        match self.driver.send_copy(index, stream, data) {
            Ok(written) => {
                stats::add(&counters.bytes_written, written as u64);
                if written < data.len() {
                    let mut out = Box::<Outbox>::default();
                    out.push_written(Bytes::copy_from_slice(data), written);
                    stats::add(&counters.queued_bytes, out.len() as u64);
                    conn.out = Some(out);
                }
            }
            // The peer is gone: its EOF or the next deadline closes the connection.
            Err(e) => tracing::debug!(core = self.core, conn = index, error = %e, "write failed"),
        }
    }

    /// Kicks a slow consumer whose queue passed `max_pending_bytes`.
    fn check_pending(&mut self, index: usize) -> Liveness {
        let Some(conn) = self.conns.get(index) else { return Liveness::Gone };
        let over = conn.pending_bytes() > self.shared.limits.max_pending_bytes;
        if over && !conn.flags.is_closing() {
            self.kick(index, &Kick::new(KickReason::Slow));
            return Liveness::Gone;
        }
        Liveness::Open
    }
}

//! Handing a connection to another core: a Socket.IO request for a session of another reactor
//! moves its connection there, unread (as @socket.io/sticky hands a socket to the worker that
//! owns the session), so that a session's polls and its upgrade are served by its own core.
//!
//! ```text
//! this core:  Flow::Move{core} --nothing queued or in flight (else at its writable event)-->
//!             Driver::release
//!             --released (epoll at once; io_uring at Event::Released, input read meanwhile kept)-->
//!             slot freed, gauges down  --Command::Adopt{stream, input, source, tls}--> that core
//! that core:  Driver::open, a new slot (Opening), gauges up, the input decoded as if just read
//! ```
//!
//! # Invariants
//! - A connection is released only once every byte for it has left (nothing queued, nothing
//!   held by the backend), and bytes that arrive before the backend let go are kept with the
//!   connection and carried: nothing is lost or reordered in either direction.
//! - The admission entry (per-source count) travels with the connection; the connection
//!   gauges follow it; `accepted` / `closed` count it once, where it was accepted and where it
//!   closes.
//! - A draining reactor adopts nothing (it closes what it is handed).
//! - A TLS connection moves with its records (its keys and sequence numbers), and what it read
//!   meanwhile travels opened: the new core goes on with the same TLS session.

use std::net::TcpStream;

use super::Reactor;
use super::admission::SourceSlot;
use super::inbox::Command;
use crate::stats;
use crate::tls::Records;

/// A connection on its way to another core.
#[derive(Debug, Clone, Copy)]
pub(super) struct Moving {
    pub index: usize,
    pub generation: u32,
    pub core: usize,
}

impl Reactor {
    /// The connection's input is for a session of `core`: hand it over (now, or once its
    /// bytes have left and the backend let go).
    pub(super) fn move_conn(&mut self, index: usize, core: usize) {
        if core == self.core || core >= self.shared.inboxes.len() || self.drain.is_some() {
            tracing::debug!(core = self.core, to = core, "connection not moved: closing it");
            self.close(index);
            return;
        }
        let Some(conn) = self.conns.get_mut(index) else { return };
        conn.flags.set_moving();
        let moving = Moving { index, generation: conn.generation, core };
        self.try_release(moving);
    }

    /// Releases the connection if all its bytes have left; else its writable event, once they
    /// have, comes back here ([`Reactor::on_writable`]).
    fn try_release(&mut self, moving: Moving) {
        let Some(conn) = self.conns.get_live(moving.index, moving.generation) else { return };
        let Some(stream) = conn.stream.as_ref() else { return };
        if conn.out.is_some() || self.driver.sending(moving.index) {
            self.moves.push(moving);
            return;
        }
        if self.driver.release(moving.index, moving.generation, stream) {
            self.finish_move(moving);
        } else {
            self.releasing.push(moving);
        }
    }

    /// The connection's bytes have all left: if it is waiting to move, it goes now.
    pub(super) fn on_drained(&mut self, index: usize) {
        let Some(at) = self.moves.iter().position(|m| m.index == index) else { return };
        let moving = self.moves.swap_remove(at);
        self.try_release(moving);
    }

    /// The backend let go of a connection being released: it goes.
    pub(super) fn on_released(&mut self, index: usize, generation: u32) {
        let Some(at) =
            self.releasing.iter().position(|m| m.index == index && m.generation == generation)
        else {
            return;
        };
        let moving = self.releasing.swap_remove(at);
        self.finish_move(moving);
    }

    /// Frees the slot and sends the socket, with what was read and not decoded, to its core.
    fn finish_move(&mut self, moving: Moving) {
        if self.conns.get_live(moving.index, moving.generation).is_none() {
            return;
        }
        // An opening connection or an idle carrier: nothing entered, nothing to leave but
        // what a carrier keeps.
        self.leave_session(moving.index);
        let Some(conn) = self.conns.remove(moving.index) else { return };
        let tls = if conn.flags.is_tls() { self.tls.remove(moving.index).records() } else { None };
        let counters = self.counters();
        if !conn.session.is_working() {
            stats::sub(&counters.handshaking, 1);
        }
        stats::sub(self.gauge_of(&conn.session), 1);
        stats::add(&self.counters().moved, 1);
        let source = self
            .sources
            .get_mut(moving.index)
            .map_or(SourceSlot::NONE, |s| std::mem::replace(s, SourceSlot::NONE));
        let input = conn.read_rest.map(|rest| rest.tail).unwrap_or_default();
        let Some(stream) = conn.stream else { return };
        self.shared.inboxes.send(moving.core, Command::Adopt { stream, input, source, tls });
    }

    /// Takes a connection another core handed over, and decodes what it brought.
    pub(super) fn adopt(
        &mut self,
        stream: TcpStream,
        mut input: Vec<u8>,
        source: SourceSlot,
        tls: Option<Box<Records>>,
    ) {
        if self.drain.is_some() {
            self.shared.admission.release(source);
            return;
        }
        let Some(index) = self.install(stream, source) else { return };
        if let Some(records) = tls {
            self.tls.insert_open(index, records);
            if let Some(conn) = self.conns.get_mut(index) {
                conn.flags.set_tls();
            }
        }
        if !input.is_empty() {
            let _ = self.on_input(index, &mut input);
        }
    }
}

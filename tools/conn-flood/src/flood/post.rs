//! A Socket.IO polling client's second socket, for its POSTs, as the loop drives it: its
//! events, its loss (the POST in flight goes again on a new one), and sending on it.

use std::io;

use mio::event::Event;

use super::Flood;
use crate::clock::now_ns;
use crate::conn::{Channel, Io};

impl Flood {
    /// An event on slot `at`'s post socket (Socket.IO polling).
    pub(super) fn on_post_event(&mut self, at: usize, event: &Event) {
        match self.slots[at].post_connected() {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
            Err(e) => return self.post_lost(at, false, format!("post connect: {e}")),
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.read(at, Channel::Post);
        }
        let slot = &mut self.slots[at];
        if event.is_writable() && slot.post.as_ref().is_some_and(|p| !p.pending.is_empty()) {
            if let Err(e) = slot.flush_post() {
                self.post_lost(at, false, format!("post write: {e}"));
            }
        }
    }

    /// Slot `at`'s post socket closed or broke (`leftover`: with part of an answer read): the
    /// POST in flight goes again on a new one, or the connection fails.
    pub(super) fn post_lost(&mut self, at: usize, leftover: bool, reason: String) {
        let Flood { slots, out, post_out, book, learned, spec, host, ws_path, poll, .. } = self;
        let slot = &mut slots[at];
        slot.close_post(poll.registry());
        let id = Self::identity(spec, host, ws_path, slot.index);
        post_out.clear();
        let mut io = Io {
            now_ns: now_ns(),
            book,
            out,
            post: post_out,
            learned,
            max_package: spec.max_package,
        };
        match slot.conn.post_closed(leftover, &id, &mut io) {
            Ok(()) => self.send_post(at),
            Err(fault) => self.fail(at, format!("{} ({reason})", fault.describe())),
        }
    }

    /// Sends what `post_out` holds on slot `at`'s post socket, opening one if need be.
    pub(super) fn send_post(&mut self, at: usize) {
        if self.post_out.is_empty() {
            return;
        }
        let source = self.source(at);
        let slot = &mut self.slots[at];
        let sent =
            slot.send_post(&self.post_out, at, source, self.spec.target, self.poll.registry());
        self.post_out.clear();
        if let Err(e) = sent {
            self.post_lost(at, false, format!("post: {e}"));
        }
    }
}

//! Releasing (contract 10): a connection handed to another reactor stops being watched here
//! without its socket being closed. Its multishot receive is cancelled by its user data; until
//! the receive's final completion, the bytes it still brings are delivered as input, and that
//! completion becomes [`Event::Released`].
//!
//! # Invariants
//! - A connection being released has left its slot (the slot is empty: its receive is never
//!   re-armed, and no send starts for it) and is in `releasing` until its `Released` is
//!   delivered, exactly once: by its receive's final completion, whatever its result (bytes
//!   first, as input, then `Released`), or by its cancel's completion when that found no
//!   receive (`ENOENT`: none was armed, e.g. after the peer's end of stream).
//! - A connection whose receive waits in `rearm` (ended this batch, not re-armed yet) has none
//!   armed and none coming: it is released at once, without a cancel.
//! - Nothing here closes the socket: it stays the caller's. What no completion brought stays in
//!   the socket, for the next owner's receive.
//! - Each cancel is an operation like any other: counted in `outstanding` from its push to its
//!   completion, so that `Drop` waits for it.

use std::net::TcpStream;

use io_uring::opcode;

use super::buf_ring::RingBuf;
use super::{NO_SEND, RELEASE, Slot, Uring, conn_of, recv_data, user_data};
use crate::reactor::sys::{Event, Recv, RecvBuf};

/// A connection whose receive is being cancelled for its release.
#[derive(Debug, Clone, Copy)]
pub(super) struct Releasing {
    index: usize,
    generation: u32,
    /// Its cancel is in the ring (else it is queued again at the end of the batch).
    cancel_queued: bool,
}

impl Releasing {
    fn is(&self, index: usize, generation: u32) -> bool {
        (self.index, self.generation) == (index, generation)
    }
}

impl Uring {
    /// Empties the connection's slot and cancels its receive: false, `Released` follows. True
    /// when no receive is armed and none is coming (it waits in `rearm`), or the slot does not
    /// hold this connection (nothing is watched).
    pub fn release(&mut self, index: usize, generation: u32, _stream: &TcpStream) -> bool {
        if self.releasing.iter().any(|r| r.is(index, generation)) {
            return false; // released twice: its `Released` is still on its way
        }
        let Some(slot) = self.slots.get_mut(index).filter(|s| s.generation == generation) else {
            return true;
        };
        debug_assert_eq!(slot.send, NO_SEND, "a connection is released once its bytes have left");
        *slot = Slot::EMPTY;
        if let Some(at) = self.rearm.iter().position(|&r| r == (index, generation)) {
            self.rearm.swap_remove(at);
            return true;
        }
        let cancel_queued = self.cancel_recv(index, generation);
        self.releasing.push(Releasing { index, generation, cancel_queued });
        false
    }

    /// Queues the cancel of the connection's receive, under a user data of its own; false when
    /// the submission queue could not take it.
    fn cancel_recv(&mut self, index: usize, generation: u32) -> bool {
        let data = user_data(RELEASE, u64::from(generation) << 32 | index as u64);
        let entry = opcode::AsyncCancel::new(recv_data(index, generation)).build().user_data(data);
        // SAFETY: the entry names no memory.
        match unsafe { self.push(&entry) } {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(conn = index, error = %e, "could not cancel a receive to release");
                false
            }
        }
    }

    /// Queues again the cancels the submission queue could not take (at the end of a batch).
    pub(super) fn retry_release_cancels(&mut self) {
        for i in 0..self.releasing.len() {
            let Releasing { index, generation, cancel_queued } = self.releasing[i];
            if !cancel_queued {
                self.releasing[i].cancel_queued = self.cancel_recv(index, generation);
            }
        }
    }

    /// A completion of a receive whose connection is not in its slot: a connection being
    /// released gets its bytes as input, and its `Released` with the final completion (right
    /// away, or behind the bytes that completion brings); any other's is dropped (closed).
    pub(super) fn on_released_recv(
        &mut self,
        index: usize,
        generation: u32,
        result: i32,
        more: bool,
        buf: Option<RingBuf>,
    ) -> Option<Event> {
        let at = self.releasing.iter().position(|r| r.is(index, generation))?;
        self.exhaustions += u64::from(result == -libc::ENOBUFS);
        let released = Event::Released { index, generation };
        if !more {
            self.releasing.swap_remove(at);
        }
        match (result, buf) {
            (1.., Some(buf)) => {
                self.pending = Some(Recv::Data(RecvBuf::Ring(buf)));
                self.announced = (!more).then_some(released);
                Some(Event::Input { index, generation })
            }
            // The end of the stream or an error stays the socket's, for its next owner to see.
            _ => (!more).then_some(released),
        }
    }

    /// The completion of a release's cancel. Found (0) or running (`EALREADY`): the receive's
    /// final completion comes, or came, and ends the release. Not found (`ENOENT`): no receive
    /// was armed, so nothing else will end it (unless a final completion already did).
    pub(super) fn on_release_cancel(&mut self, payload: u64, result: i32) -> Option<Event> {
        let (index, generation) = conn_of(payload);
        if result != -libc::ENOENT {
            if result < 0 && result != -libc::EALREADY {
                let error = std::io::Error::from_raw_os_error(-result);
                // The receive goes on bringing input; its final completion (at the latest
                // with the peer's end of stream) still ends the release.
                tracing::warn!(conn = index, %error, "a release's cancel failed");
            }
            return None;
        }
        let at = self.releasing.iter().position(|r| r.is(index, generation))?;
        self.releasing.swap_remove(at);
        Some(Event::Released { index, generation })
    }
}

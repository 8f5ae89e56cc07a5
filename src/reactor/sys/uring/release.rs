//! Releasing (contract item 10): a connection's receive cancelled and its descriptor left
//! open, so that another reactor may take it. The receive's final completion (or, when none is
//! armed, at once) ends the release with [`Event::Released`]; bytes its last completions bring
//! are handed out before, as input.

use std::net::TcpStream;

use io_uring::opcode;

use super::{RELEASE, Slot, Uring, recv_data, user_data};
use crate::reactor::sys::Event;

impl Uring {
    /// Starts releasing the connection; true when nothing was armed (released at once).
    pub fn release(&mut self, index: usize, generation: u32, _stream: &TcpStream) -> bool {
        if self.slots.get(index).is_none_or(|s| s.generation != generation) {
            return true;
        }
        if let Some(at) = self.rearm.iter().position(|&r| r == (index, generation)) {
            // Its receive ended and waits to be re-armed: nothing to cancel.
            self.rearm.swap_remove(at);
            self.slots[index] = Slot::EMPTY;
            return true;
        }
        let payload = u64::from(generation) << 32 | index as u64;
        let cancel = opcode::AsyncCancel::new(recv_data(index, generation))
            .build()
            .user_data(user_data(RELEASE, payload));
        // SAFETY: the entry names no memory.
        if let Err(e) = unsafe { self.push(&cancel) } {
            tracing::warn!(conn = index, error = %e, "could not cancel a receive to release it");
            self.slots[index] = Slot::EMPTY;
            return true;
        }
        self.releasing.push((index, generation));
        false
    }

    /// Whether the connection is being released.
    pub(super) fn is_releasing(&self, index: usize, generation: u32) -> bool {
        self.releasing.contains(&(index, generation))
    }

    /// The receive of a connection being released ended: the slot is free, the release done.
    pub(super) fn released(&mut self, index: usize, generation: u32) -> Event {
        self.releasing.retain(|&r| r != (index, generation));
        if let Some(slot) = self.slots.get_mut(index).filter(|s| s.generation == generation) {
            *slot = Slot::EMPTY;
        }
        Event::Released { index, generation }
    }

    /// The cancel's own completion: `ENOENT` means no receive was armed any more and its final
    /// completion was already seen, so the release ends here if it has not yet.
    pub(super) fn on_release_cancel(&mut self, payload: u64, result: i32) -> Option<Event> {
        let (index, generation) = ((payload & 0xFFFF_FFFF) as usize, (payload >> 32) as u32);
        (result == -libc::ENOENT && self.is_releasing(index, generation))
            .then(|| self.released(index, generation))
    }
}

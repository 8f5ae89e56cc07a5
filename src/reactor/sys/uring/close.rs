//! Closing: a connection's operations cancelled and its socket closed, linked in one
//! submission; and the ring's own end ([`Drop`]), which cancels everything and waits for the
//! final completions before the memory the kernel may touch is freed.

use std::net::TcpStream;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use io_uring::types::{CancelBuilder, Fd};
use io_uring::{cqueue, opcode, squeue};

use super::buf_ring::BUF_GROUP;
use super::{ACCEPT, CLOSE, SEND, Slot, Uring, recv_data, user_data};

/// How long dropping a ring may wait for its cancelled operations.
const DROP_GRACE: Duration = Duration::from_secs(2);

impl Uring {
    /// Cancels the connection's operations and closes its socket, linked in one submission.
    ///
    /// Each operation is cancelled by its user data, which the kernel finds in a hash table;
    /// cancelling by descriptor would scan every armed operation of the ring, once per close.
    pub fn close(&mut self, index: usize, stream: TcpStream) {
        let Some(slot) = self.slots.get_mut(index).map(|s| std::mem::replace(s, Slot::EMPTY))
        else {
            drop(stream);
            return;
        };
        let recv = recv_data(index, slot.generation);
        // A send still collecting was never queued: `queue_sends` drops it.
        let send = self.queued_send(&slot).map(|id| user_data(SEND, u64::from(id)));
        if self.reserve(3).is_err() {
            // Cannot queue: shutting both sides ends its receive and send; dropping closes it.
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        let fd = stream.into_raw_fd();
        let cancel = |data| {
            opcode::AsyncCancel::new(data)
                .build()
                .flags(squeue::Flags::IO_HARDLINK)
                .user_data(user_data(CLOSE, 0))
        };
        let close = opcode::Close::new(Fd(fd)).build().user_data(user_data(CLOSE, 0));
        // SAFETY: none of the entries names memory; `reserve` made room for all of them, so no
        // push fails and the ring owns (and closes) the descriptor.
        unsafe {
            let _ = self.push(&cancel(recv));
            if let Some(send) = send {
                let _ = self.push(&cancel(send));
            }
            let _ = self.push(&close);
        }
    }
}

impl Drop for Uring {
    /// Cancels every operation and waits for their final completions, so that the kernel never
    /// touches memory freed below; if it takes too long, that memory is leaked instead.
    fn drop(&mut self) {
        self.pending = None;
        // Sends still collecting were never handed to the kernel: they go now, and no later
        // wait may queue them behind the cancel below.
        for id in std::mem::take(&mut self.collecting) {
            self.release_send(id);
        }
        let cancel =
            opcode::AsyncCancel2::new(CancelBuilder::any()).build().user_data(user_data(CLOSE, 0));
        // SAFETY: the entry names no memory.
        let _ = unsafe { self.push(&cancel) };
        let deadline = Instant::now() + DROP_GRACE;
        while self.outstanding > 0 && Instant::now() < deadline {
            let _ = self.enter(Duration::from_millis(50));
            while let Some(cqe) = self.ring.completion().next() {
                if !cqueue::more(cqe.flags()) {
                    self.outstanding -= 1;
                }
                if let Some(bid) = cqueue::buffer_select(cqe.flags()) {
                    drop(self.bufs.lend(bid, 0));
                }
                if cqe.user_data() >> 60 == ACCEPT && cqe.result() >= 0 {
                    // SAFETY: a descriptor the kernel created for us; closing it is ours to do.
                    drop(unsafe { OwnedFd::from_raw_fd(cqe.result()) });
                }
            }
        }
        if self.outstanding > 0 {
            tracing::warn!(outstanding = self.outstanding, "io_uring operations outlived the ring");
            std::mem::forget(Rc::clone(&self.bufs));
            std::mem::forget(std::mem::take(&mut self.sends));
            std::mem::forget(std::mem::take(&mut self.pins));
            std::mem::forget(std::mem::replace(&mut self.wake_buf, Box::new(0)));
        } else {
            let _ = self.ring.submitter().unregister_buf_ring(BUF_GROUP);
        }
    }
}

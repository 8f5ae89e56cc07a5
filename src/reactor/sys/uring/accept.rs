//! Accepting: one multishot accept on the core's listener, the connections it brings queued
//! until the reactor takes them, and the listener closed by the ring once the accept is
//! cancelled.

use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

use io_uring::types::Fd;
use io_uring::{opcode, squeue};

use super::{ACCEPT, CLOSE, Uring, user_data};
use crate::reactor::sys::Event;

/// Capacity the queue of accepted connections keeps once drained.
const ACCEPTED_KEPT: usize = 256;

impl Uring {
    pub(super) fn arm_accept(&mut self) -> io::Result<()> {
        let Some(listener) = self.listener.as_ref() else { return Ok(()) };
        let entry = opcode::AcceptMulti::new(Fd(listener.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(user_data(ACCEPT, 0));
        // SAFETY: the entry names no memory.
        unsafe { self.push(&entry)? };
        self.accept_armed = true;
        Ok(())
    }

    pub(super) fn on_accept(&mut self, result: i32, more: bool) -> Option<Event> {
        if !more {
            self.accept_armed = false;
        }
        if result >= 0 {
            // SAFETY: the kernel just created this descriptor for us; nothing else owns it.
            let stream = TcpStream::from(unsafe { OwnedFd::from_raw_fd(result) });
            // Accepted as the listener closed: dropping it closes it.
            self.listener.as_ref()?;
            self.accepted.push_back(Ok(stream));
            if !more {
                let _ = self.arm_accept();
            }
        } else if result == -libc::ECANCELED {
            return None;
        } else {
            // Left unarmed: `accept` re-arms once the reactor comes back for more (after a
            // pause when descriptors ran out).
            self.accepted.push_back(Err(io::Error::from_raw_os_error(-result)));
        }
        Some(Event::Accept)
    }

    pub fn accept(&mut self) -> io::Result<TcpStream> {
        if let Some(accepted) = self.accepted.pop_front() {
            return accepted;
        }
        // A burst of connections may have queued thousands; idle, the queue keeps little.
        if self.accepted.capacity() > ACCEPTED_KEPT {
            self.accepted.shrink_to(ACCEPTED_KEPT);
        }
        if self.listener.is_some() && !self.accept_armed {
            self.arm_accept()?;
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    pub fn stop_accepting(&mut self) {
        let Some(listener) = self.listener.take() else { return };
        self.accepted.clear();
        if !self.accept_armed || self.reserve(2).is_err() {
            return; // nothing in flight on it: dropping it closes it
        }
        let fd = listener.as_raw_fd();
        let cancel = opcode::AsyncCancel::new(user_data(ACCEPT, 0))
            .build()
            .flags(squeue::Flags::IO_HARDLINK)
            .user_data(user_data(CLOSE, 0));
        let close = opcode::Close::new(Fd(fd)).build().user_data(user_data(CLOSE, 0));
        // SAFETY: neither entry names memory; the descriptor is handed to the ring to close.
        let pushed = unsafe { self.push(&cancel).and_then(|()| self.push(&close)) };
        if pushed.is_ok() {
            let _ = listener.into_raw_fd();
        }
        self.accept_armed = false;
    }
}

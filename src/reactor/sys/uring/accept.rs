//! Accepting: one multishot accept on each of the core's listeners (its user data carries the
//! listener's index), the connections they bring queued together, in completion order, until the
//! reactor takes them, and each listener closed by the ring once its accept is cancelled.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

use io_uring::types::Fd;
use io_uring::{opcode, squeue};

use super::{ACCEPT, CLOSE, Uring, user_data};
use crate::reactor::sys::Event;

/// Capacity the queue of accepted connections keeps once drained.
const ACCEPTED_KEPT: usize = 256;

/// A listener, and whether its multishot accept is armed.
#[derive(Debug)]
pub(super) struct Listening {
    pub(super) listener: TcpListener,
    pub(super) armed: bool,
}

impl Uring {
    /// Arms the multishot accept of listener `i`.
    pub(super) fn arm_accept(&mut self, i: usize) -> io::Result<()> {
        let Some(listening) = self.listeners.get(i) else { return Ok(()) };
        let entry = opcode::AcceptMulti::new(Fd(listening.listener.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(user_data(ACCEPT, i as u64));
        // SAFETY: the entry names no memory.
        unsafe { self.push(&entry)? };
        self.listeners[i].armed = true;
        Ok(())
    }

    /// A completion of listener `i`'s accept.
    pub(super) fn on_accept(&mut self, i: usize, result: i32, more: bool) -> Option<Event> {
        if !more && let Some(listening) = self.listeners.get_mut(i) {
            listening.armed = false;
        }
        if result >= 0 {
            // SAFETY: the kernel just created this descriptor for us; nothing else owns it.
            let stream = TcpStream::from(unsafe { OwnedFd::from_raw_fd(result) });
            // Accepted as the listeners closed: dropping it closes it.
            self.listeners.get(i)?;
            self.accepted.push_back(Ok(stream));
            if !more {
                let _ = self.arm_accept(i);
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
        for i in 0..self.listeners.len() {
            if !self.listeners[i].armed {
                self.arm_accept(i)?;
            }
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    /// Cancels each listener's accept and closes the listener, linked in one submission each.
    pub fn stop_accepting(&mut self) {
        self.accepted.clear();
        for (i, Listening { listener, armed }) in
            std::mem::take(&mut self.listeners).into_iter().enumerate()
        {
            if !armed || self.reserve(2).is_err() {
                continue; // nothing in flight on it: dropping it closes it
            }
            let fd = listener.as_raw_fd();
            let cancel = opcode::AsyncCancel::new(user_data(ACCEPT, i as u64))
                .build()
                .flags(squeue::Flags::IO_HARDLINK)
                .user_data(user_data(CLOSE, 0));
            let close = opcode::Close::new(Fd(fd)).build().user_data(user_data(CLOSE, 0));
            // SAFETY: neither entry names memory; the descriptor is handed to the ring to close.
            let pushed = unsafe { self.push(&cancel).and_then(|()| self.push(&close)) };
            if pushed.is_ok() {
                let _ = listener.into_raw_fd();
            }
        }
    }
}

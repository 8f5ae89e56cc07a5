//! Receiving: one multishot receive per connection on the reactor's buffer ring. What a
//! completion brings waits in `pending` for the reactor's `recv`; a receive the kernel ended is
//! re-armed once the batch of completions gave its buffers back. A completion for a connection
//! no longer in its slot goes to `release.rs` (it may be one being released).

use std::io;
use std::net::TcpStream;
use std::os::fd::RawFd;

use io_uring::types::Fd;
use io_uring::{cqueue, opcode};

use super::buf_ring::BUF_GROUP;
use super::{Uring, conn_of, recv_data};
use crate::reactor::sys::{Event, Recv, RecvBuf};

impl Uring {
    pub(super) fn arm_recv(&mut self, index: usize, generation: u32, fd: RawFd) -> io::Result<()> {
        let data = recv_data(index, generation);
        let entry = opcode::RecvMulti::new(Fd(fd), BUF_GROUP).build().user_data(data);
        // SAFETY: the receive writes only into ring buffers, which live until `Drop`.
        unsafe { self.push(&entry) }
    }

    pub(super) fn on_recv(&mut self, payload: u64, result: i32, flags: u32) -> Option<Event> {
        let (index, generation) = conn_of(payload);
        // Take the buffer first, so that it goes back to the ring whatever happens next.
        let buf = cqueue::buffer_select(flags).map(|bid| self.bufs.lend(bid, result.max(0) as _));
        let live = self.slots.get(index).is_some_and(|s| s.generation == generation);
        let more = cqueue::more(flags);
        if !live {
            return self.on_released_recv(index, generation, result, more, buf);
        }
        let recv = match (result, buf) {
            (1.., Some(buf)) => Recv::Data(RecvBuf::Ring(buf)),
            (0, _) => Recv::Closed,
            (e, _) if e == -libc::ENOBUFS || e == -libc::ECANCELED => {
                self.exhaustions += u64::from(e == -libc::ENOBUFS);
                if !more {
                    self.rearm.push((index, generation));
                }
                return None;
            }
            (1.., None) => Recv::Failed(io::Error::other("receive completed without a buffer")),
            (e, _) => Recv::Failed(io::Error::from_raw_os_error(-e)),
        };
        if !more && matches!(recv, Recv::Data(_)) {
            self.rearm.push((index, generation));
        }
        self.pending = Some(recv);
        Some(Event::Input { index, generation })
    }

    pub(super) fn rearm_receives(&mut self) {
        for (index, generation) in std::mem::take(&mut self.rearm) {
            let Some(slot) = self.slots.get(index).filter(|s| s.generation == generation) else {
                continue;
            };
            let fd = slot.fd;
            if let Err(e) = self.arm_recv(index, generation, fd) {
                tracing::warn!(conn = index, error = %e, "could not re-arm a receive");
                self.pending = Some(Recv::Failed(e));
            }
        }
    }

    pub fn recv(&mut self, _stream: &TcpStream) -> Recv {
        self.pending.take().unwrap_or(Recv::WouldBlock)
    }
}

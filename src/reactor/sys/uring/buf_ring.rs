//! The provided-buffer ring of one reactor: the memory the kernel picks receive buffers from,
//! and [`RingBuf`], a buffer lent to the reactor until it drops.
//!
//! # Invariants
//! - A buffer id is in exactly one place: in the ring (the kernel may fill it) or lent out in
//!   one [`RingBuf`] (only that `RingBuf` touches it); a `RingBuf` puts it back when it drops.
//! - The ring's memory is freed only when the last `Rc<BufRing>` goes, which the owning
//!   `Uring` lets happen only after the kernel is done with it.

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::IoUring;

/// The buffer group of the reactor's buffer ring.
pub const BUF_GROUP: u16 = 0;
/// Bytes per ring buffer; a longer input arrives in several completions. Client input is small
/// (heartbeats, handshakes, requests), so 1 KiB keeps the ring's fixed memory small.
pub const BUFFER_BYTES: usize = 1024;

/// `struct io_uring_buf`: one entry of a buffer ring. The `resv` field of entry 0 is the ring's
/// tail, written by us and read by the kernel.
#[repr(C)]
struct BufEntry {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

/// `struct io_uring_buf_status`, for `IORING_REGISTER_PBUF_STATUS`.
#[repr(C)]
struct BufStatus {
    buf_group: u32,
    head: u32,
    resv: [u32; 8],
}

const IORING_REGISTER_PBUF_STATUS: libc::c_long = 26;

/// A provided-buffer ring and its buffers, shared with the kernel.
///
/// # Invariants
/// - `entries` is `count` page-aligned `BufEntry`s, `buffers` `count * BUFFER_BYTES` bytes; both
///   are allocated by `new` and freed only by `drop`.
/// - A buffer id is in exactly one place: in the ring (the kernel may fill it), or lent out in a
///   [`RingBuf`] (only that `RingBuf` touches it).
pub struct BufRing {
    entries: NonNull<BufEntry>,
    buffers: NonNull<u8>,
    pub count: u16,
    tail: Cell<u16>,
    pub lent: Cell<u32>,
}

impl BufRing {
    fn layouts(count: u16) -> (Layout, Layout) {
        let count = usize::from(count);
        let entries = Layout::from_size_align(count * size_of::<BufEntry>(), 4096);
        let buffers = Layout::from_size_align(count * BUFFER_BYTES, 4096);
        (entries.expect("ring layout"), buffers.expect("buffer layout"))
    }

    /// Allocates a ring of `count` buffers (a power of two), every buffer in it.
    pub fn new(count: u16) -> io::Result<BufRing> {
        assert!(count.is_power_of_two() && size_of::<BufEntry>() == 16);
        let (entries_layout, buffers_layout) = BufRing::layouts(count);
        // SAFETY: both layouts have a non-zero size (count >= 1).
        let entries = NonNull::new(unsafe { alloc::alloc_zeroed(entries_layout) });
        // SAFETY: as above.
        let buffers = NonNull::new(unsafe { alloc::alloc(buffers_layout) });
        let (Some(entries), Some(buffers)) = (entries, buffers) else {
            return Err(io::ErrorKind::OutOfMemory.into());
        };
        // Touch every page now: the ring is a fixed cost of the reactor, paid at start, not a
        // cost that seems to grow with the first connections whose input lands in it.
        // SAFETY: `buffers` was just allocated with `buffers_layout`'s size and nobody else
        // has it yet.
        unsafe { buffers.as_ptr().write_bytes(0, buffers_layout.size()) };
        let ring = BufRing {
            entries: entries.cast(),
            buffers,
            count,
            tail: Cell::new(0),
            lent: Cell::new(0),
        };
        (0..count).for_each(|bid| ring.give(bid));
        Ok(ring)
    }

    /// Registers the ring with `ring` under [`BUF_GROUP`].
    ///
    /// # Safety
    /// The caller must keep `self` alive until the group is unregistered or `ring` is gone, and
    /// must not let it go while an operation that may pick a buffer from it is in flight.
    pub unsafe fn register(&self, ring: &IoUring) -> io::Result<()> {
        let addr = self.entries.as_ptr() as u64;
        // SAFETY: `entries` is page aligned and holds `count` entries (type invariant); the
        // caller keeps it alive as long as the kernel may use it.
        unsafe { ring.submitter().register_buf_ring_with_flags(addr, self.count, BUF_GROUP, 0) }
    }

    /// Puts buffer `bid` back at the tail, for the kernel to fill.
    fn give(&self, bid: u16) {
        debug_assert!(bid < self.count);
        let tail = self.tail.get();
        let slot = usize::from(tail & (self.count - 1));
        let addr = self.buffers.as_ptr() as u64 + u64::from(bid) * BUFFER_BYTES as u64;
        // SAFETY: `slot < count`, so the entry is inside the allocation. The kernel reads
        // entries only between its head and the published tail, and this one is past the tail.
        // Fields are written one by one so that entry 0's `resv` (the tail) is never touched.
        unsafe {
            let entry = self.entries.as_ptr().add(slot);
            (&raw mut (*entry).addr).write(addr);
            (&raw mut (*entry).len).write(BUFFER_BYTES as u32);
            (&raw mut (*entry).bid).write(bid);
        }
        let tail = tail.wrapping_add(1);
        self.tail.set(tail);
        // SAFETY: entry 0's `resv` is a live, 2-aligned u16 that the kernel only reads; the
        // release store publishes the entry written above before the kernel can see it.
        unsafe { AtomicU16::from_ptr(&raw mut (*self.entries.as_ptr()).resv) }
            .store(tail, Ordering::Release);
    }

    /// Lends out buffer `bid`, which a completion says holds `len` received bytes.
    pub fn lend(self: &Rc<BufRing>, bid: u16, len: usize) -> RingBuf {
        self.lent.set(self.lent.get() + 1);
        RingBuf { ring: Rc::clone(self), bid, len: len.min(BUFFER_BYTES) as u32 }
    }

    /// Buffers the kernel may fill now, by its own head (`IORING_REGISTER_PBUF_STATUS`, Linux
    /// 6.8), or by what is not lent out when the kernel cannot say.
    pub fn free(&self, ring: &IoUring) -> u64 {
        let mut status = BufStatus { buf_group: u32::from(BUF_GROUP), head: 0, resv: [0; 8] };
        // SAFETY: the call writes one `io_uring_buf_status` (this layout) into `status`, which
        // lives for the call; it reads nothing else of ours.
        let done = unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                ring.as_raw_fd(),
                IORING_REGISTER_PBUF_STATUS,
                &raw mut status,
                1,
            )
        };
        if done == 0 {
            u64::from(self.tail.get().wrapping_sub(status.head as u16))
        } else {
            u64::from(self.count) - u64::from(self.lent.get())
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        let (entries_layout, buffers_layout) = BufRing::layouts(self.count);
        // SAFETY: allocated in `new` with these layouts; the owner (`Uring`) drops the last
        // `Rc` only after the kernel is done with the ring (see `Uring`'s `Drop`).
        unsafe {
            alloc::dealloc(self.entries.as_ptr().cast(), entries_layout);
            alloc::dealloc(self.buffers.as_ptr(), buffers_layout);
        }
    }
}

/// Received bytes in a ring buffer, lent to the reactor; dropping it gives the buffer back.
pub struct RingBuf {
    ring: Rc<BufRing>,
    bid: u16,
    len: u32,
}

impl RingBuf {
    fn start(&self) -> *mut u8 {
        // SAFETY: `bid < count`, so the offset stays inside the buffers allocation.
        unsafe { self.ring.buffers.as_ptr().add(usize::from(self.bid) * BUFFER_BYTES) }
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: buffer `bid` is lent to this `RingBuf` alone (the kernel no longer has it and
        // nobody else was given it); `len <= BUFFER_BYTES` bytes were written by the kernel.
        unsafe { std::slice::from_raw_parts(self.start(), self.len as usize) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.start(), self.len as usize) }
    }
}

impl Drop for RingBuf {
    fn drop(&mut self) {
        self.ring.lent.set(self.ring.lent.get() - 1);
        self.ring.give(self.bid);
    }
}

impl std::fmt::Debug for RingBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingBuf").field("bid", &self.bid).field("len", &self.len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lent_buffer_goes_back_to_the_tail_when_it_drops() {
        let ring = Rc::new(BufRing::new(8).unwrap());
        assert_eq!((ring.tail.get(), ring.lent.get()), (8, 0));
        let mut buf = ring.lend(3, 5);
        buf.bytes_mut().copy_from_slice(b"hello");
        assert_eq!(buf.bytes(), b"hello");
        assert_eq!(ring.lent.get(), 1);
        drop(buf);
        assert_eq!((ring.tail.get(), ring.lent.get()), (9, 0));
        // SAFETY: the ring is alive and not shared with a kernel; slot 0 was rewritten by the
        // give above (tail 8 & 7 == 0).
        let entry = unsafe { &*ring.entries.as_ptr() };
        assert_eq!((entry.bid, entry.len as usize), (3, BUFFER_BYTES));
    }
}

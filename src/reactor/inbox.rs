//! A reactor's inbox: how other threads hand it work.
//!
//! A lock-free queue paired with the reactor's [`Waker`] (an eventfd, whichever the backend) and a
//! "wake pending" flag, so a burst of commands costs one wake (one eventfd write) per core, not
//! one per command.
//!
//! # Invariants
//! - The reactor clears `wake_pending` *before* it drains the queue, so a command pushed after the
//!   drain started always causes a fresh wake.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_queue::SegQueue;

use super::ConnId;
use super::stats::KickReason;
use super::sys::Waker;
use crate::broadcast::Frame;
use crate::push::AppId;

/// Work for a reactor, from another reactor, the control thread or the daemon.
#[derive(Debug)]
pub enum Command {
    /// Write `frame` to every local client member of `app`'s channel.
    Broadcast { app: AppId, frame: Frame },
    /// Write `frame` to one connection, if it still exists.
    Deliver { conn: ConnId, frame: Frame },
    /// Kick one connection with `reason`, if it still exists.
    Kick { conn: ConnId, reason: KickReason },
    /// Stop accepting, kick everyone with reason "shutdown" over `drain_secs`, then exit.
    Shutdown { drain_secs: u32 },
}

#[derive(Debug)]
pub struct Inbox {
    queue: SegQueue<Command>,
    waker: Waker,
    wake_pending: AtomicBool,
}

impl Inbox {
    pub fn new(waker: Waker) -> Inbox {
        Inbox { queue: SegQueue::new(), waker, wake_pending: AtomicBool::new(false) }
    }

    /// Queues a command and wakes the reactor unless a wake is already on its way.
    pub fn send(&self, command: Command) {
        self.queue.push(command);
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.waker.wake() {
                tracing::error!(error = %e, "reactor wake failed");
            }
        }
    }

    /// Called by the owning reactor when its waker fired, before draining.
    pub fn woken(&self) {
        self.wake_pending.store(false, Ordering::Release);
    }

    /// Takes the next command, if any (owning reactor only).
    pub fn pop(&self) -> Option<Command> {
        self.queue.pop()
    }

    /// Wakes the reactor without a command (used to re-check state).
    pub fn wake(&self) -> io::Result<()> {
        self.waker.wake()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::reactor::sys::{self, Backend, Driver, Event};

    fn kick(index: u32) -> Command {
        let conn = ConnId::new(0, index as usize, 1);
        Command::Kick { conn, reason: KickReason::Slow }
    }

    /// The wakes one wait of the reactor's backend delivers.
    fn wakes(driver: &mut Driver) -> usize {
        driver.wait(Duration::from_millis(50)).unwrap();
        std::iter::from_fn(|| driver.next_event()).filter(|&e| e == Event::Wake).count()
    }

    #[test]
    fn a_burst_costs_one_wake_and_no_command_is_stranded() {
        let (mut driver, waker, _) = sys::loopback(Backend::Epoll).unwrap();
        let inbox = Inbox::new(waker);
        for i in 0..100 {
            inbox.send(kick(i));
        }
        assert_eq!(wakes(&mut driver), 1);
        inbox.woken();
        let mut drained = 0;
        while inbox.pop().is_some() {
            drained += 1;
        }
        assert_eq!(drained, 100);
        // A command sent after the drain started wakes the reactor again.
        inbox.send(kick(100));
        assert_eq!(wakes(&mut driver), 1);
        assert!(matches!(inbox.pop(), Some(Command::Kick { .. })));
        assert_eq!(wakes(&mut driver), 0);
    }
}

//! A reactor's inbox: how other threads hand it work.
//!
//! A lock-free queue paired with the reactor's [`Waker`] (an eventfd, whichever the backend) and a
//! "wake pending" flag, so a burst of commands costs one wake (one eventfd write) per core, not
//! one per command. [`Inboxes`] holds every core's; a [`Dispatch`] over them is the push
//! service's [`Outlet`].
//!
//! # Invariants
//! - The reactor clears `wake_pending` *before* it drains the queue, so a command pushed after the
//!   drain started always causes a fresh wake.

use std::collections::VecDeque;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_queue::SegQueue;

use super::admission::SourceSlot;
use super::sys::Waker;
use crate::ids::{AppId, ConnId};
use crate::push::{Frame, Outlet, Push};
use crate::stats::KickReason;

/// Work for a reactor, from another reactor, the control thread or the daemon.
#[derive(Debug)]
pub enum Command {
    /// Write `frame` to every local client member of `app`'s channel.
    Broadcast { app: AppId, frame: Frame },
    /// Encode `push` for one connection, in its form, and write it, if the connection still
    /// exists.
    Deliver { conn: ConnId, push: Push },
    /// Kick one connection with `reason`, if it still exists.
    Kick { conn: ConnId, reason: KickReason },
    /// Kick one connection as disconnected by the admin API, with its `text`.
    Disconnect { conn: ConnId, text: Box<str> },
    /// Say what the connection is (the admin API's client details) on `reply`.
    Describe { conn: ConnId, reply: super::describe::DescribeReply },
    /// Take over a connection another core accepted (a Socket.IO request for a session of this
    /// core), with what it read and did not decode, and its admission entry.
    Adopt {
        stream: TcpStream,
        input: Vec<u8>,
        source: SourceSlot,
        /// A TLS connection's records (its handshake is done before any request moves it).
        tls: Option<Box<crate::tls::Records>>,
    },
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
}

/// Every reactor's inbox, indexed by core.
#[derive(Debug)]
pub struct Inboxes(Box<[Arc<Inbox>]>);

impl Inboxes {
    pub fn new(inboxes: Vec<Arc<Inbox>>) -> Inboxes {
        Inboxes(inboxes.into_boxed_slice())
    }

    /// How many reactors there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sends `command` to `core`'s inbox (nothing if there is no such core).
    pub fn send(&self, core: usize, command: Command) {
        if let Some(inbox) = self.0.get(core) {
            inbox.send(command);
        }
    }

    /// Sends a copy of a command to every core.
    pub fn send_all(&self, command: impl Fn() -> Command) {
        self.0.iter().for_each(|inbox| inbox.send(command()));
    }
}

/// The push service's outlet: each command to its core's inbox, except that a reactor keeps
/// what is for its own core in its local queue (run after this turn's events, with no wake).
#[derive(Debug)]
pub struct Dispatch<'a> {
    /// The calling reactor's core and local queue, if a reactor calls.
    here: Option<(usize, &'a mut VecDeque<Command>)>,
    inboxes: &'a Inboxes,
}

impl<'a> Dispatch<'a> {
    /// For a thread that holds no connection: everything goes to the inboxes.
    pub fn to_inboxes(inboxes: &'a Inboxes) -> Dispatch<'a> {
        Dispatch { here: None, inboxes }
    }

    /// For the reactor of `core`, whose own commands go to `local`.
    pub fn from_reactor(
        core: usize,
        local: &'a mut VecDeque<Command>,
        inboxes: &'a Inboxes,
    ) -> Dispatch<'a> {
        Dispatch { here: Some((core, local)), inboxes }
    }

    pub fn send(&mut self, core: usize, command: Command) {
        match &mut self.here {
            Some((here, local)) if *here == core => local.push_back(command),
            _ => self.inboxes.send(core, command),
        }
    }
}

impl Outlet for Dispatch<'_> {
    fn broadcast(&mut self, core: usize, app: AppId, frame: Frame) {
        self.send(core, Command::Broadcast { app, frame });
    }

    fn deliver(&mut self, conn: ConnId, push: Push) {
        self.send(conn.core(), Command::Deliver { conn, push });
    }

    fn kick(&mut self, conn: ConnId, reason: KickReason) {
        self.send(conn.core(), Command::Kick { conn, reason });
    }

    fn disconnect(&mut self, conn: ConnId, text: Box<str>) {
        self.send(conn.core(), Command::Disconnect { conn, text });
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

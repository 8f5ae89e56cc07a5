//! The data plane: one reactor thread per core.
//!
//! # What a reactor owns
//! A reactor is one thread with its own I/O backend ([`sys::Driver`]: epoll or io_uring), its own
//! `SO_REUSEPORT` listeners (the client port's, and `mqtt.listen`'s when set; held by the
//! backend, their connections handled alike), its [`ConnTable`], its timer wheel, its local
//! member lists and its [`Inbox`].
//! Nothing outside this module touches a connection; other threads talk to a reactor only by
//! sending it [`Command`]s.
//!
//! # Never blocks
//! The only blocking call is the backend's wait ([`sys::Driver::wait`]). Every
//! readiness is drained until `WouldBlock`, except that one connection gets at most
//! `READS_PER_TURN` reads per loop turn (a connection with more waits in the retry list for its
//! next turn, once) and the listeners `ACCEPTS_PER_TURN` accepts between
//! them (the backend takes from each in turn), after which they are revisited on the next turn
//! (fairness), and the push path takes no lock.
//!
//! # No buffer for an idle connection
//! Reads go into a buffer the backend lends (epoll: one per-core scratch buffer; io_uring: a
//! buffer of the per-core buffer ring, taken by the kernel only when bytes arrive) and are
//! decoded in place. Only an unfinished package tail is copied into the
//! connection, and only bytes the socket refused are queued on it; both are freed when drained.
//!
//! # Sessions and the push path
//! A connection's meaning is its [`Session`](crate::session::Session), inline in its slot: the
//! reactor hands it the bytes that arrived and `now` ([`session::transport::handle_input`]),
//! writes what it transmits, and does what its [`Flow`] says (go on, close, kick). Requests go
//! from the session to the push service, whose effects on other connections come back as
//! [`Command`]s through an [`inbox::Dispatch`]: into this reactor's local queue for its own
//! connections, into the other cores' inboxes for theirs.
//!
//! [`session::transport::handle_input`]: crate::session::transport::handle_input
//!
//! # One turn
//! Wait → accept / read / write per event → run commands (inbox and local) → retry
//! fairness-capped reads → expire timers → drain step when shutting down.

pub mod admission;
pub mod conn;
pub mod describe;
mod handover;
pub mod inbox;
mod input;
pub mod outbox;
mod polling;
pub mod shared;
mod socket;
pub mod sys;
pub mod table;
pub mod timer;
mod tls;
mod write;

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::channel::LocalMembers;
use crate::ids::{AppId, ConnId, Forms};
use crate::push::Frame;
use crate::session::{Flow, Kick, Now, PerCore};
use crate::stats::{self, KickReason, ReactorCounters};
use inbox::{Command, Inbox};
use shared::Shared;
use sys::{Driver, Event};
use table::ConnTable;
use timer::{TimerEntry, TimerWheel};

/// Whether a connection is still read after what was just done to it.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Liveness {
    /// Open and read as before.
    Open,
    /// Closed, closing or kicked: nothing more is read from it.
    Gone,
}

/// Reads one connection may do in one turn before others get theirs: one buffer (epoll: 64 KiB;
/// io_uring: a completion), so a turn costs at most a buffer per busy connection and an
/// innocent one waits for one round of the others (BENCHMARKS.md, "Fairness": 16 reads let 200
/// flooders hold an innocent heartbeat 2.3 s at p99 on epoll; one, 15 ms).
const READS_PER_TURN: usize = 1;
/// Accepts per turn before connections get a turn.
const ACCEPTS_PER_TURN: usize = 256;
/// Commands taken from the inbox per turn.
const COMMANDS_PER_TURN: usize = 4096;
/// Capacity of the due-timer buffer kept between turns (entries).
const DUE_BUFFER_KEPT: usize = 1024;
/// How long a closing connection may take to read its kick and close its side.
const LINGER_SECS: u32 = 2;

/// A graceful drain in progress.
#[derive(Debug)]
struct Drain {
    started: Instant,
    window: Duration,
    /// Connections still to kick, in kick order.
    pending: Vec<(usize, u32)>,
    total: usize,
}

/// One core's event loop. See the module doc for its invariants.
#[derive(Debug)]
pub struct Reactor {
    core: usize,
    driver: Driver,
    conns: ConnTable,
    timers: TimerWheel,
    due: Vec<(TimerEntry, u32)>,
    inbox: Arc<Inbox>,
    /// Commands this core raised for itself, run after the events of the turn, in order.
    local: VecDeque<Command>,
    commands: Vec<Command>,
    shared: Arc<Shared>,
    members: LocalMembers,
    /// Bytes for the connection whose input is being decoded, written once after the read.
    transmit: BytesMut,
    /// The connection `transmit` belongs to (`usize::MAX` when none).
    transmitting: usize,
    batch: Vec<Frame>,
    /// What sessions keep per connection off the slots (MQTT's in-flight windows...).
    per_core: PerCore,
    /// Where per-member headers (an MQTT QoS 1 delivery's packet id) are cut from.
    headers: BytesMut,
    /// One MQTT member's parts to send, kept between members.
    parts: Vec<bytes::Bytes>,
    /// Each connection's entry in the admission's per-source counts, by slab index.
    sources: Vec<admission::SourceSlot>,
    /// When each admission limit's refusals were last logged.
    refusals_logged: [Option<Instant>; stats::Refused::ALL.len()],
    epoch: Instant,
    /// Unix seconds at `epoch` (the wall clock, read once at start).
    unix_at_epoch: u64,
    /// Seconds since `epoch`, read once per turn.
    now: u32,
    /// The instant `now` was read at.
    now_at: Instant,
    retry_reads: Vec<(usize, u32)>,
    accept_again: bool,
    accept_paused_until: Option<Instant>,
    /// Accepts are failing for want of descriptors or memory (logged once until they succeed).
    accept_exhausted: bool,
    drain: Option<Drain>,
    /// The TLS connections' states (only theirs).
    tls: tls::TlsConns,
    /// Connections to hand to another core once their bytes have left (a few, briefly).
    moves: Vec<handover::Moving>,
    /// Connections the backend is letting go of, for another core.
    releasing: Vec<handover::Moving>,
}

impl Reactor {
    pub fn new(core: usize, mut driver: Driver, inbox: Arc<Inbox>, shared: Arc<Shared>) -> Reactor {
        let members = LocalMembers::new(shared.apps());
        driver.reserve(shared.limits.conn_capacity);
        Reactor {
            core,
            driver,
            conns: ConnTable::with_capacity(shared.limits.conn_capacity),
            timers: TimerWheel::new(0),
            due: Vec::new(),
            inbox,
            local: VecDeque::new(),
            commands: Vec::new(),
            shared,
            members,
            transmit: BytesMut::new(),
            transmitting: usize::MAX,
            batch: Vec::new(),
            per_core: PerCore::default(),
            headers: BytesMut::new(),
            parts: Vec::new(),
            sources: Vec::new(),
            refusals_logged: [None; stats::Refused::ALL.len()],
            epoch: Instant::now(),
            unix_at_epoch: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            now: 0,
            now_at: Instant::now(),
            retry_reads: Vec::new(),
            accept_again: false,
            accept_paused_until: None,
            accept_exhausted: false,
            drain: None,
            tls: tls::TlsConns::default(),
            moves: Vec::new(),
            releasing: Vec::new(),
        }
    }

    /// Runs until a shutdown command has drained every connection.
    pub fn run(mut self) -> io::Result<()> {
        loop {
            let timeout = self.poll_timeout();
            self.driver.wait(timeout)?;
            self.now_at = Instant::now();
            let now = self.now_at.duration_since(self.epoch).as_secs() as u32;
            if now != self.now {
                self.driver.publish(&self.counters().ring);
                let open = self.tls.len() as u64;
                self.counters().tls.open.store(open, std::sync::atomic::Ordering::Relaxed);
            }
            self.now = now;
            while let Some(event) = self.driver.next_event() {
                match event {
                    Event::Accept => self.accept(),
                    Event::Wake => self.inbox.woken(),
                    Event::Writable { index, generation } => {
                        if self.conns.get_live(index, generation).is_some() {
                            self.on_writable(index);
                        }
                    }
                    Event::Input { index, generation } => {
                        // On epoll a deferred connection reads in its turn in `retry_reads`
                        // (once per turn); io_uring's event carries bytes to take now.
                        let waits = self.driver.input_waits_in_socket();
                        let live = self.conns.get_live(index, generation);
                        if live.is_some_and(|conn| !(waits && conn.flags.is_read_deferred())) {
                            self.on_readable(index);
                        }
                    }
                    Event::Released { index, generation } => self.on_released(index, generation),
                }
            }
            self.run_commands();
            self.retry();
            self.expire_timers();
            if self.drain.is_some() && self.drain_step() {
                return Ok(());
            }
        }
    }

    fn poll_timeout(&self) -> Duration {
        let work_left = !self.retry_reads.is_empty()
            || !self.local.is_empty()
            || (self.accept_again && self.accept_paused_until.is_none());
        if work_left {
            return Duration::ZERO;
        }
        let ms_into_second = self.epoch.elapsed().subsec_millis() as u64;
        let mut timeout = Duration::from_millis(1000 - ms_into_second);
        if let Some(until) = self.accept_paused_until {
            timeout = timeout.min(until.saturating_duration_since(Instant::now()));
        }
        if self.drain.is_some() {
            timeout = timeout.min(Duration::from_millis(50));
        }
        timeout
    }

    fn retry(&mut self) {
        if self.accept_paused_until.is_some_and(|until| Instant::now() >= until) {
            self.accept_paused_until = None;
        }
        if self.accept_again && self.accept_paused_until.is_none() {
            self.accept();
        }
        for (index, generation) in std::mem::take(&mut self.retry_reads) {
            if let Some(conn) = self.conns.get_live(index, generation) {
                conn.flags.set_read_deferred(false);
                self.on_readable(index);
            }
        }
    }

    /// This reactor's counters.
    fn counters(&self) -> &ReactorCounters {
        &self.shared.reactors[self.core]
    }

    /// The time as sessions see it.
    fn now(&self) -> Now {
        Now { secs: self.now, at: self.now_at, unix: self.unix_at_epoch + u64::from(self.now) }
    }

    fn run_commands(&mut self) {
        let mut commands = std::mem::take(&mut self.commands);
        commands.extend(self.local.drain(..));
        while commands.len() < COMMANDS_PER_TURN {
            match self.inbox.pop() {
                Some(command) => commands.push(command),
                None => break,
            }
        }
        let mut batch = std::mem::take(&mut self.batch);
        let mut iter = commands.drain(..).peekable();
        while let Some(command) = iter.next() {
            match command {
                Command::Broadcast { app, frame } => {
                    // Consecutive broadcasts to one channel leave in one writev per member.
                    batch.push(frame);
                    while let Some(Command::Broadcast { app: next, .. }) = iter.peek() {
                        if *next != app {
                            break;
                        }
                        if let Some(Command::Broadcast { frame, .. }) = iter.next() {
                            batch.push(frame);
                        }
                    }
                    self.broadcast(app, &batch);
                    batch.clear();
                }
                Command::Deliver { conn, push } => {
                    let Some(conn) = self.addressee(conn) else { continue };
                    let index = conn.index();
                    let Some(live) = self.conns.get_live(index, conn.generation()) else {
                        continue;
                    };
                    let Some(form) = live.session.form() else { continue };
                    // One recipient: encoded here, once, in its own form.
                    match self.shared.push.encoder().encode(&push, Forms::one(form)) {
                        Ok(frame) => {
                            if self.send(index, std::slice::from_ref(&frame)) == Liveness::Open {
                                stats::add(&self.counters().deliveries, 1);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(core = self.core, error = %e, "push not encodable")
                        }
                    }
                }
                Command::Kick { conn, reason } => {
                    if let Some(conn) = self.addressee(conn) {
                        self.kick(conn.index(), &Kick::new(reason));
                    }
                }
                Command::Disconnect { conn, text } => {
                    if let Some(conn) = self.addressee(conn) {
                        self.kick(conn.index(), &Kick::disconnected(text));
                    }
                }
                Command::Describe { conn, reply } => self.describe(conn, reply),
                Command::Adopt { stream, input, source, tls } => {
                    self.adopt(stream, input, source, tls)
                }
                Command::Shutdown { drain_secs } => self.start_drain(drain_secs),
            }
        }
        drop(iter);
        self.batch = batch;
        self.commands = commands;
        // Commands raised while running these (kicks of replaced sessions...) run next turn,
        // which starts at once because `local` is not empty.
    }

    /// The live connection a command for `conn` goes to: `conn`, or the WebSocket an upgraded
    /// polling session `conn` went on as.
    fn addressee(&mut self, conn: ConnId) -> Option<ConnId> {
        let live =
            |c: ConnId, conns: &mut ConnTable| conns.get_live(c.index(), c.generation()).is_some();
        if live(conn, &mut self.conns) {
            return Some(conn);
        }
        let to = self.per_core.socketio.upgraded_to(conn)?;
        live(to, &mut self.conns).then_some(to)
    }

    /// Writes `frames` to every local member of `app`'s channel.
    fn broadcast(&mut self, app: AppId, frames: &[Frame]) {
        let mut position = 0;
        let mut delivered = 0u64;
        while let Some(index) = self.members.get(app, position) {
            if self.send(index as usize, frames) == Liveness::Open {
                delivered += 1;
                position += 1;
            } else if self.members.get(app, position) == Some(index) {
                // Still listed (should not happen): never loop on it.
                position += 1;
            }
            // Otherwise the member was kicked and another moved into `position`.
        }
        stats::add(&self.counters().deliveries, delivered * frames.len() as u64);
        if let Some(accepted) = frames.first().and_then(Frame::accepted) {
            self.counters().fanout.record(Instant::now().saturating_duration_since(accepted));
        }
    }

    /// Puts the connection's timer entry at `deadline` if that is earlier than its current one.
    fn schedule(&mut self, index: usize, deadline: u32) {
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        if deadline < conn.timer_at {
            let entry = TimerEntry { index: index as u32, generation: conn.generation };
            conn.timer_at = self.timers.insert(entry, deadline);
        }
    }

    /// Puts the connection's timer entry at `deadline`, earlier or later than its current one
    /// (which is dropped when it comes due).
    fn reschedule(&mut self, index: usize, deadline: u32) {
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        let entry = TimerEntry { index: index as u32, generation: conn.generation };
        conn.timer_at = self.timers.insert(entry, deadline);
    }

    fn expire_timers(&mut self) {
        let mut due = std::mem::take(&mut self.due);
        self.timers.expire(self.now, &mut due);
        for (entry, tick) in due.drain(..) {
            let index = entry.index as usize;
            let Some(conn) = self.conns.get_live(index, entry.generation) else {
                continue;
            };
            if conn.timer_at != tick {
                continue; // superseded by an earlier entry
            }
            if conn.flags.is_closing() {
                self.close(index); // the linger is over
                continue;
            }
            if conn.flags.is_moving() && self.releasing.iter().any(|m| m.index == index) {
                // The backend lets go of it any moment now.
                conn.timer_at = self.timers.insert(entry, self.now + 1);
                continue;
            }
            let mut session = conn.session;
            let flow = session.handle_timeout(self.now, &self.shared.sessions, &mut self.transmit);
            conn.session = session;
            if !session.is_working() && !matches!(flow, Flow::Continue) {
                stats::add(&self.shared.reactors[self.core].handshake_timeouts, 1);
            }
            match flow {
                // Activity moved the deadline, or the session pinged: come back then (deadlines
                // are whole seconds, so `now > deadline` means at least the full timeout has
                // passed).
                Flow::Continue => {
                    let deadline = session.deadline(&self.shared.sessions);
                    conn.timer_at = self.timers.insert(entry, deadline + 1);
                    let _ = self.flush_transmit(index);
                }
                Flow::Kick(kick) => {
                    tracing::debug!(core = self.core, conn = index, reason = %kick.text, "deadline");
                    self.kick(index, &kick);
                }
                Flow::Close | Flow::Abort | Flow::Poll(_) | Flow::Move { .. } | Flow::Upgrade => {
                    tracing::debug!(core = self.core, conn = index, "deadline passed, closing");
                    self.close(index);
                }
            }
        }
        // Keep a buffer for the usual number of due entries, not for the largest burst seen.
        if due.capacity() > DUE_BUFFER_KEPT {
            due = Vec::new();
        }
        self.due = due;
    }

    fn start_drain(&mut self, drain_secs: u32) {
        if self.drain.is_some() {
            return;
        }
        self.driver.stop_accepting();
        self.accept_again = false;
        let pending = self.conns.ids();
        tracing::info!(core = self.core, connections = pending.len(), drain_secs, "draining");
        self.drain = Some(Drain {
            started: Instant::now(),
            window: Duration::from_secs(drain_secs.into()),
            total: pending.len(),
            pending,
        });
    }

    /// Kicks the share of connections due by now; true when the reactor may exit.
    fn drain_step(&mut self) -> bool {
        let Some(drain) = self.drain.as_mut() else {
            return false;
        };
        let elapsed = drain.started.elapsed();
        let due = if drain.window.is_zero() || elapsed >= drain.window {
            drain.total
        } else {
            (drain.total as u128 * elapsed.as_millis() / drain.window.as_millis()) as usize + 1
        };
        let kicked_so_far = drain.total - drain.pending.len();
        let take = due.saturating_sub(kicked_so_far).min(drain.pending.len());
        let batch: Vec<(usize, u32)> = drain.pending.drain(..take).collect();
        let hard_stop = drain.window + Duration::from_secs(u64::from(LINGER_SECS) + 1);
        let out_of_time = elapsed >= hard_stop;
        let all_kicked = drain.pending.is_empty();
        for (index, generation) in batch {
            if self.conns.get_live(index, generation).is_some() {
                self.kick(index, &Kick::new(KickReason::Shutdown));
            }
        }
        all_kicked && (self.conns.is_empty() || out_of_time)
    }
}

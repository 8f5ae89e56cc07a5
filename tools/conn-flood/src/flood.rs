//! The event loop: one thread, one `mio` poll, a share of the connections, driven through the
//! phases by commands from the coordinator (`report.rs`).
//!
//! Here: the loop, its events, connects and reads. `flood/phases.rs`: the coordinator's
//! commands (a phase's begin, wait and end); `flood/timed.rs`: the work of each turn (connects
//! from the queue, heartbeats, the polling watch, churn); `flood/post.rs`: a polling client's
//! post socket.
//!
//! # Invariants
//! - One thread owns its connections; the coordinator reaches it only through its command
//!   channel and waker, and hears from it only through reports.
//! - Reads go into one scratch buffer per loop, large enough for many packages, until the socket
//!   is drained (a short read means drained: the poll is edge-triggered and a later arrival
//!   raises a new edge). Every whole unit is handled in place; only an unfinished tail is copied
//!   into the connection, and freed as soon as it completes.
//! - With `--tls` reads go through the connection's session (`tls.rs`), which reads the socket
//!   into a second scratch buffer and keeps the drained rule; a connection counts as connected
//!   (and its protocol starts) once its handshake is done, so the connect rate includes it.
//! - Nothing runs unbounded: connects in flight are capped by the window, every timer queue is
//!   drained only up to "now", churn catches up at most [`CHURN_BURST`] reconnects per turn, and
//!   the loop stops by itself after `max_secs`.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use bytes::BytesMut;
use mio::event::Event;
use mio::{Events, Poll, Token};

use crate::clock::{now_ns, secs_to_ns};
use crate::conn::{Channel, Identity, Io, Learned, Protocol, Stage};
use crate::latency::Latency;
use crate::phase::PhaseBook;
use crate::report::{Command, Envelope, LoopSpec, Mode, PhaseKind};
use crate::report::{Progress, Report};
use crate::slot::{self, Slot};
use crate::tls;

/// The waker's token; slot tokens never reach it (their generation is below 2^32 - 1 and
/// their index below 2^32 - 1 on 64-bit).
pub const WAKER: Token = Token(usize::MAX);
/// Bytes read per `read` call.
const SCRATCH_BYTES: usize = 256 * 1024;
/// How long a failed connect waits before the next attempt.
const RETRY_DELAY_NS: u64 = 200_000_000;
/// The most reconnects churn starts in one loop turn.
const CHURN_BURST: u64 = 1_000;
/// Failure reasons are cut to this many bytes (they are counted by reason).
const MAX_REASON: usize = 160;
/// How often the loop looks for polls and POSTs that waited too long.
const WATCH_EVERY_NS: u64 = 1_000_000_000;
/// The longest the loop sleeps in its poll.
const TICK: Duration = Duration::from_millis(10);

/// Runs a loop for `spec` on the calling thread until `Quit`, the end of `inbox`, or
/// `max_secs`; `poll` has the waker registered under [`WAKER`].
pub fn run(mut spec: LoopSpec, poll: Poll, inbox: Receiver<Command>, reports: Sender<Envelope>) {
    if !spec.targets.is_empty() {
        spec.target = spec.targets[spec.loop_id % spec.targets.len()];
    }
    let tls = match spec.tls.as_ref().map(tls::Client::new).transpose() {
        Ok(tls) => tls,
        Err(e) => {
            let report = Report::Fatal(format!("{e:#}"));
            let _ = reports.send(Envelope { from: spec.loop_id, report });
            return;
        }
    };
    Flood::new(spec, tls, poll, inbox, reports).run();
}

/// Counters of the current phase (reset by `Begin`), and the live gauges.
#[derive(Debug, Default)]
struct Counters {
    entered: u64,
    connecting: u64,
    failed: u64,
    dropped: u64,
    connects: u64,
    churned: u64,
    reconnects: u64,
    first_connect_ns: Option<u64>,
    last_entered_ns: Option<u64>,
    errors: BTreeMap<String, u64>,
    tls_handshakes: u64,
    last_tls_ns: Option<u64>,
    tls_negotiated: BTreeMap<String, u64>,
}

/// Churn in progress: `per_sec` reconnects per second since `start_ns`, `done` so far.
#[derive(Debug, Clone, Copy)]
struct Churn {
    per_sec: f64,
    start_ns: u64,
    done: u64,
}

/// A loop's whole state.
struct Flood {
    spec: LoopSpec,
    poll: Poll,
    inbox: Receiver<Command>,
    reports: Sender<Envelope>,
    slots: Vec<Slot>,
    scratch: Vec<u8>,
    /// `--tls`: the client configuration, and the buffer ciphertext is read into (else empty).
    tls: Option<tls::Client>,
    cipher: Vec<u8>,
    out: BytesMut,
    /// What a Socket.IO polling connection posts, for its post socket.
    post_out: BytesMut,
    host: String,
    ws_path: String,
    book: PhaseBook,
    learned: Learned,
    counters: Counters,
    enter_latency: Latency,
    /// Connect to TLS handshake done.
    tls_latency: Latency,
    phase: PhaseKind,
    to_connect: VecDeque<usize>,
    retries: VecDeque<(u64, usize)>,
    heartbeats: VecDeque<(u64, usize, u32)>,
    churn: Option<Churn>,
    awaiting: Option<u64>,
    rng: u64,
    next_progress_ns: u64,
    /// When [`Flood::watch`] looks next.
    next_watch_ns: u64,
    /// Every connection of the connect phase entered or failed, and progress said so.
    connect_settled: bool,
    deadline_ns: u64,
}

impl Flood {
    fn new(
        spec: LoopSpec,
        tls: Option<tls::Client>,
        poll: Poll,
        inbox: Receiver<Command>,
        reports: Sender<Envelope>,
    ) -> Flood {
        let slots = spec
            .owned()
            .map(|index| {
                let protocol = match &spec.mode {
                    Mode::Redis => Protocol::Redis,
                    Mode::Mqtt(opts) => Protocol::Mqtt(*opts),
                    Mode::SocketIo { version, polling: true, .. } => {
                        Protocol::SocketIoPolling(*version)
                    }
                    Mode::SocketIo { version, .. } => Protocol::SocketIo(*version),
                    Mode::Pomelo { ws_percent, .. } if index % 100 < u64::from(*ws_percent) => {
                        Protocol::PomeloWs
                    }
                    Mode::Pomelo { .. } => Protocol::PomeloTcp,
                };
                Slot::new(protocol, index)
            })
            .collect();
        let ws_path = match &spec.mode {
            Mode::Pomelo { ws_path, .. } => ws_path.clone(),
            Mode::SocketIo { path, .. } => path.clone(),
            Mode::Redis | Mode::Mqtt(_) => String::new(),
        };
        let now = now_ns();
        Flood {
            host: spec.target.to_string(),
            ws_path,
            deadline_ns: now + secs_to_ns(spec.max_secs),
            rng: 0x9e37_79b9_7f4a_7c15 ^ (spec.loop_id as u64 + 1),
            spec,
            poll,
            inbox,
            reports,
            slots,
            scratch: vec![0; SCRATCH_BYTES],
            cipher: if tls.is_some() { vec![0; SCRATCH_BYTES] } else { Vec::new() },
            tls,
            out: BytesMut::with_capacity(4096),
            post_out: BytesMut::with_capacity(4096),
            book: PhaseBook::default(),
            learned: Learned::default(),
            counters: Counters::default(),
            enter_latency: Latency::new(),
            tls_latency: Latency::new(),
            phase: PhaseKind::Connect,
            to_connect: VecDeque::new(),
            retries: VecDeque::new(),
            heartbeats: VecDeque::new(),
            churn: None,
            awaiting: None,
            next_progress_ns: now,
            next_watch_ns: now,
            connect_settled: false,
        }
    }

    fn report(&self, report: Report) {
        let _ = self.reports.send(Envelope { from: self.spec.loop_id, report });
    }

    fn run(mut self) {
        self.report(Report::Ready);
        let mut events = Events::with_capacity(1024);
        loop {
            if now_ns() >= self.deadline_ns {
                self.report(Report::Fatal(format!(
                    "loop {} ran past --max-secs",
                    self.spec.loop_id
                )));
                break;
            }
            if let Err(e) = self.poll.poll(&mut events, Some(TICK)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                self.report(Report::Fatal(format!("poll: {e}")));
                break;
            }
            for event in events.iter() {
                if event.token() != WAKER {
                    self.on_event(event);
                }
            }
            if !self.take_commands() {
                break;
            }
            let now = now_ns();
            self.start_connects(now);
            self.beat(now);
            self.watch(now);
            self.churn(now);
            self.check_await(now);
            let settled = self.phase == PhaseKind::Connect
                && !self.connect_settled
                && self.counters.entered + self.counters.failed >= self.slots.len() as u64;
            if settled {
                self.connect_settled = true;
            }
            if settled || now >= self.next_progress_ns {
                self.next_progress_ns = now + self.spec.progress_ms * 1_000_000;
                self.report(Report::Progress(self.progress()));
            }
        }
        for at in 0..self.slots.len() {
            self.slots[at].close(self.poll.registry());
        }
        self.report(Report::Bye);
    }

    fn progress(&self) -> Progress {
        Progress {
            entered: self.counters.entered,
            connecting: self.counters.connecting,
            failed: self.counters.failed,
            deliveries: self.book.deliveries(),
            reconnects: self.counters.reconnects,
        }
    }

    fn count_error(&mut self, mut reason: String) {
        if reason.len() > MAX_REASON {
            let mut cut = MAX_REASON;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
            reason.push('…');
        }
        *self.counters.errors.entry(reason).or_default() += 1;
    }

    fn on_event(&mut self, event: &Event) {
        let (at, generation, channel) = Slot::untoken(event.token());
        let Some(slot) = self.slots.get_mut(at) else {
            return;
        };
        if slot.generation != generation || slot.socket.is_none() {
            return;
        }
        if channel == Channel::Post {
            return self.on_post_event(at, event);
        }
        if slot.conn.stage == Stage::Connecting {
            match slot.connected(&mut self.cipher) {
                Ok(true) => {
                    self.on_secured(at);
                    self.on_connected(at);
                }
                Ok(false) => return,
                Err(e) => return self.fail(at, format!("connect: {e}")),
            }
        }
        let slot = &self.slots[at];
        let readable = event.is_readable() || event.is_read_closed() || event.is_error();
        if slot.socket.is_some() && (readable || slot.buffered()) {
            self.read(at, Channel::Main);
        }
        let slot = &mut self.slots[at];
        if event.is_writable() && slot.socket.is_some() && slot.wants_flush() {
            if let Err(e) = slot.flush() {
                self.fail(at, format!("write: {e}"));
            }
        }
    }

    /// The source address of slot `at`.
    fn source(&self, at: usize) -> std::net::Ipv4Addr {
        let sources = &self.spec.sources;
        sources[(self.slots[at].index % sources.len() as u64) as usize]
    }

    fn identity<'a>(
        spec: &'a LoopSpec,
        host: &'a str,
        ws_path: &'a str,
        index: u64,
    ) -> Identity<'a> {
        let apps = spec.apps.len().max(1) as u64;
        Identity {
            host,
            ws_path,
            apikey: spec.apps.get((index % apps) as usize).map_or("", String::as_str),
            client_prefix: &spec.client_prefix,
            client_index: index,
        }
    }

    /// Slot `at`'s TLS handshake is done (nothing without TLS): counted for the handshake rate.
    fn on_secured(&mut self, at: usize) {
        let Some(session) = &self.slots[at].tls else {
            return;
        };
        let now = now_ns();
        let c = &mut self.counters;
        c.tls_handshakes += 1;
        c.last_tls_ns = Some(now);
        let negotiated = session.negotiated().unwrap_or_else(|| "unknown".into());
        *c.tls_negotiated.entry(negotiated).or_default() += 1;
        self.tls_latency.record_ns(now.saturating_sub(self.slots[at].started_ns));
    }

    fn on_connected(&mut self, at: usize) {
        let slot = &mut self.slots[at];
        let id = Self::identity(&self.spec, &self.host, &self.ws_path, slot.index);
        self.out.clear();
        self.post_out.clear();
        let mut io = Io {
            now_ns: now_ns(),
            book: &mut self.book,
            out: &mut self.out,
            post: &mut self.post_out,
            learned: &mut self.learned,
            max_package: self.spec.max_package,
        };
        slot.conn.start(&id, &mut io);
        if let Err(e) = slot.send(&self.out) {
            return self.fail(at, format!("write: {e}"));
        }
        self.send_post(at);
    }

    /// Reads `channel` of slot `at` until its socket is drained, handling every whole unit;
    /// then sends what the connection wrote.
    fn read(&mut self, at: usize, channel: Channel) {
        enum Outcome {
            Open,
            Eof,
            Broken(String),
            Fault(String),
        }
        let Flood {
            slots, scratch, cipher, out, post_out, book, learned, spec, host, ws_path, ..
        } = self;
        let Slot { conn, socket, partial, post, index, tls, .. } = &mut slots[at];
        let (socket, partial, mut tls) = match channel {
            Channel::Main => (socket.as_mut(), partial, tls.as_deref_mut()),
            Channel::Post => match post.as_deref_mut() {
                Some(side) => (Some(&mut side.socket), &mut side.partial, None),
                None => (None, partial, None),
            },
        };
        let Some(socket) = socket else {
            return;
        };
        let was = conn.stage;
        let mut have = partial.len();
        scratch[..have].copy_from_slice(partial);
        partial.clear();
        let id = Self::identity(spec, host, ws_path, *index);
        out.clear();
        post_out.clear();
        let mut outcome = Outcome::Open;
        loop {
            let room = scratch.len() - have;
            if room == 0 {
                outcome = Outcome::Fault("a unit larger than the read buffer".into());
                break;
            }
            let n =
                match slot::read_stream(socket, tls.as_deref_mut(), cipher, &mut scratch[have..]) {
                    Ok(0) => {
                        outcome = Outcome::Eof;
                        break;
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        outcome = Outcome::Broken(format!("read: {e}"));
                        break;
                    }
                };
            have += n;
            let mut io = Io {
                now_ns: now_ns(),
                book: &mut *book,
                out: &mut *out,
                post: &mut *post_out,
                learned: &mut *learned,
                max_package: spec.max_package,
            };
            match conn.receive_on(channel, &scratch[..have], &id, &mut io) {
                Ok(used) => {
                    scratch.copy_within(used..have, 0);
                    have -= used;
                }
                Err(fault) => {
                    outcome = Outcome::Fault(fault.describe());
                    break;
                }
            }
            if conn.stage == Stage::Redialing {
                // The rest of this socket (the server closes it) is of no use.
                have = 0;
                break;
            }
            // A TLS session may hold more than the socket: the stream's end behind the last
            // bytes, or what a full handshake read left.
            if n < room && !tls.as_deref().is_some_and(|tls| tls.buffered()) {
                break;
            }
        }
        if matches!(outcome, Outcome::Open) && have > 0 {
            partial.extend_from_slice(&scratch[..have]);
        }
        let now = conn.stage;
        let post_closing = conn.take_post_closing();
        if matches!(outcome, Outcome::Open) {
            if post_closing {
                self.slots[at].close_post(self.poll.registry());
            }
            if !self.out.is_empty() {
                if let Err(e) = self.slots[at].send(&self.out) {
                    outcome = Outcome::Broken(format!("write: {e}"));
                }
            }
        }
        if was != Stage::Entered && now == Stage::Entered {
            self.on_entered(at);
        }
        match (outcome, channel) {
            (Outcome::Open, _) if now == Stage::Redialing => self.redial(at),
            (Outcome::Open, _) => self.send_post(at),
            (Outcome::Eof, Channel::Post) => self.post_lost(at, have > 0, "closed".into()),
            (Outcome::Broken(reason), Channel::Post) => self.post_lost(at, have > 0, reason),
            (Outcome::Eof, Channel::Main) => self.fail(at, "closed by server".into()),
            (Outcome::Broken(reason) | Outcome::Fault(reason), _) => self.fail(at, reason),
        }
    }

    fn on_entered(&mut self, at: usize) {
        let now = now_ns();
        let slot = &mut self.slots[at];
        self.counters.entered += 1;
        self.counters.connecting -= 1;
        self.counters.last_entered_ns = Some(now);
        self.enter_latency.record_ns(now.saturating_sub(slot.started_ns));
        slot.attempts = 0;
        if slot.reconnecting {
            slot.reconnecting = false;
            self.counters.reconnects += 1;
        }
        let generation = slot.generation;
        if let Some(interval) = self.heartbeat_ns() {
            self.heartbeats.push_back((now + interval, at, generation));
        }
    }

    fn heartbeat_ns(&self) -> Option<u64> {
        let secs = match self.spec.heartbeat_secs {
            Some(secs) => secs,
            None => f64::from(self.learned.heartbeat_secs?),
        };
        (secs > 0.0).then(|| secs_to_ns(secs))
    }

    /// Closes slot `at`, keeping the gauges right; the caller decides what comes next.
    fn close(&mut self, at: usize) {
        let slot = &mut self.slots[at];
        match slot.conn.stage {
            Stage::Idle => {}
            Stage::Entered => self.counters.entered -= 1,
            _ => self.counters.connecting -= 1,
        }
        self.book.leave(&mut slot.conn.tally);
        slot.close(self.poll.registry());
    }

    /// Slot `at` finished socket.io 0.9's HTTP handshake: the same attempt goes on over a new
    /// socket, for the WebSocket (the connect time and the attempt count carry over).
    fn redial(&mut self, at: usize) {
        let source = self.source(at);
        let slot = &mut self.slots[at];
        let (started_ns, attempts) = (slot.started_ns, slot.attempts);
        slot.close(self.poll.registry());
        let (target, tls) = (self.spec.target, self.tls.as_ref());
        let opened = slot.open(at, source, target, tls, self.poll.registry(), now_ns());
        slot.started_ns = started_ns;
        slot.attempts = attempts;
        if let Err(e) = opened {
            // Still counted as connecting, though the stage says otherwise now.
            self.counters.connecting -= 1;
            self.fail(at, format!("connect: {e}"));
        }
    }

    /// Slot `at` failed for `reason`: retry it, or give up on it.
    fn fail(&mut self, at: usize, reason: String) {
        let was = self.slots[at].conn.stage;
        self.close(at);
        self.count_error(reason);
        let slot = &mut self.slots[at];
        let retrying = matches!(self.phase, PhaseKind::Connect | PhaseKind::Churn);
        if was == Stage::Entered {
            self.counters.dropped += 1;
        } else if retrying && slot.attempts < self.spec.connect_attempts {
            self.retries.push_back((now_ns() + RETRY_DELAY_NS, at));
        } else {
            self.counters.failed += 1;
        }
    }

    /// Opens slot `at`.
    fn open(&mut self, at: usize, now: u64) {
        let sources = &self.spec.sources;
        let slot = &mut self.slots[at];
        let source = sources[(slot.index % sources.len() as u64) as usize];
        self.counters.connects += 1;
        self.counters.first_connect_ns.get_or_insert(now);
        match slot.open(at, source, self.spec.target, self.tls.as_ref(), self.poll.registry(), now)
        {
            Ok(()) => self.counters.connecting += 1,
            Err(e) => self.fail(at, format!("connect: {e}")),
        }
    }
}

mod phases;
mod post;
mod timed;

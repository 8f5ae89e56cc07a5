//! The server's counters, and the plain snapshot that readers (`/metrics`, [`Server`]'s
//! accessors, tests) take of them.
//!
//! # Invariants
//! - [`ReactorCounters`] are written by their reactor only, so an update is a plain load and
//!   store (no locked read-modify-write on the hot path); anyone may read them at any time.
//! - [`PushCounters`] are written by whichever thread runs the push service (reactors, the
//!   control thread): once per push, join or leave, never per recipient.
//! - [`AppCounters`] are written by whichever thread pushes to or kicks a client of the app,
//!   once per push or kick.
//! - Readers never see the atomics: [`Snapshot::take`] copies them into plain numbers.
//!
//! [`Server`]: crate::Server

use std::sync::atomic::{AtomicU64, Ordering};

use crate::ids::Edge;

mod fanout;
pub use fanout::{BOUNDS_MICROS, FanoutHistogram, FanoutSnapshot};

/// Why the server closed a working connection; the text is the kick reason on the wire
/// (protocol errors add a detail after the colon).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KickReason {
    HeartbeatTimeout,
    Replaced,
    Slow,
    ProtocolError,
    PackageTooLarge,
    Shutdown,
    Attack,
    /// Disconnected through the admin API (`DELETE .../clients/{clientId}`), with the
    /// caller's reason.
    Disconnected,
}

impl KickReason {
    pub const ALL: [KickReason; 8] = [
        KickReason::HeartbeatTimeout,
        KickReason::Replaced,
        KickReason::Slow,
        KickReason::ProtocolError,
        KickReason::PackageTooLarge,
        KickReason::Shutdown,
        KickReason::Attack,
        KickReason::Disconnected,
    ];

    /// The metrics label: short, stable, without the detail.
    pub fn label(self) -> &'static str {
        match self {
            KickReason::HeartbeatTimeout => "heartbeat",
            KickReason::Replaced => "replaced",
            KickReason::Slow => "slow",
            KickReason::ProtocolError => "protocol",
            KickReason::PackageTooLarge => "too_large",
            KickReason::Shutdown => "shutdown",
            KickReason::Attack => "attack",
            KickReason::Disconnected => "disconnected",
        }
    }

    /// The kick reason on the wire (protocol errors add a detail after a colon).
    pub fn as_str(self) -> &'static str {
        match self {
            KickReason::HeartbeatTimeout => "heartbeat timeout",
            KickReason::Replaced => "replaced",
            KickReason::Slow => "slow",
            KickReason::ProtocolError => "protocol error",
            KickReason::PackageTooLarge => "package too large",
            KickReason::Shutdown => "shutdown",
            KickReason::Attack => "attack",
            KickReason::Disconnected => "disconnected",
        }
    }
}

/// Why a new connection was refused before anything was read from it (the admission limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `admission.max_connections` open.
    Total,
    /// `admission.max_per_source` open from its address.
    PerSource,
    /// `admission.accept_rate_per_sec` (and its burst) spent.
    Rate,
    /// `admission.max_opening` connections still without a finished handshake.
    Opening,
}

impl Refused {
    pub const ALL: [Refused; 4] =
        [Refused::Total, Refused::PerSource, Refused::Rate, Refused::Opening];

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Refused::Total => "total",
            Refused::PerSource => "per_source",
            Refused::Rate => "rate",
            Refused::Opening => "opening",
        }
    }

    /// What the log line says.
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Total => "admission.max_connections reached",
            Refused::PerSource => "admission.max_per_source reached for the source address",
            Refused::Rate => "admission.accept_rate_per_sec exceeded",
            Refused::Opening => "admission.max_opening connections still opening",
        }
    }
}

/// Adds to a counter that only the calling thread writes.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// Subtracts from a gauge that only the calling thread writes.
pub fn sub(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_sub(n), Ordering::Relaxed);
}

/// Reads a counter or gauge any thread may read.
pub fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// One reactor's counters and gauges. `opening + tcp + websocket` is the number of open
/// connections.
#[derive(Debug, Default)]
pub struct ReactorCounters {
    /// Open connections whose transport is not known yet (gauge).
    pub opening: AtomicU64,
    /// Open raw-TCP connections (gauge).
    pub tcp: AtomicU64,
    /// Open WebSocket connections (gauge).
    pub websocket: AtomicU64,
    /// Socket.IO long-polling sessions (gauge): not connections (a session has no socket; its
    /// polls come on connections counted as `tcp`), so not in `connections()`.
    pub polling: AtomicU64,
    /// Open connections whose session has not finished its handshake (gauge; Pomelo: acked,
    /// MQTT: CONNECT accepted).
    pub handshaking: AtomicU64,
    pub accepted: AtomicU64,
    pub closed: AtomicU64,
    /// Connections handed to another core (a Socket.IO request for a session of that core).
    pub moved: AtomicU64,
    /// Handshakes completed (acked).
    pub handshakes: AtomicU64,
    /// Frames handed to recipients (a push to N members counts N).
    pub deliveries: AtomicU64,
    pub bytes_written: AtomicU64,
    /// Bytes waiting in this reactor's write queues (gauge).
    pub queued_bytes: AtomicU64,
    /// Connections closed because their handshake (TLS, Pomelo, MQTT CONNECT, an upgrade) did
    /// not finish within `handshake_timeout_secs`.
    pub handshake_timeouts: AtomicU64,
    /// Accepts that failed for want of file descriptors or memory (retried every 100 ms).
    pub accept_exhausted: AtomicU64,
    /// From a push accepted to its last local member's write, per broadcast batch.
    pub fanout: FanoutHistogram,
    /// The backend's own gauges, published about once a second.
    pub ring: RingGauges,
    /// TLS on the client listeners.
    pub tls: TlsCounters,
    kicks: [AtomicU64; KickReason::ALL.len()],
    refused: [AtomicU64; Refused::ALL.len()],
}

/// TLS on a reactor: handshakes done, failed (a bad or unfinished handshake, a record that did not
/// authenticate, a fatal alert), connections refused (plain where TLS is required, or past the
/// handshake cap), and TLS connections open (gauge, published with the ring's).
#[derive(Debug, Default)]
pub struct TlsCounters {
    pub handshakes: AtomicU64,
    pub failures: AtomicU64,
    pub refused: AtomicU64,
    pub open: AtomicU64,
}

/// What a reader sees of [`TlsCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsSnapshot {
    pub handshakes: u64,
    pub failures: u64,
    pub refused: u64,
    pub open: u64,
}

/// A receive-buffer ring's gauges (the io_uring backend publishes them; 0 elsewhere): buffers in
/// the ring, how many the kernel may fill now, how often a receive found the ring empty
/// (counter), and sends whose completion has not arrived.
#[derive(Debug, Default)]
pub struct RingGauges {
    pub recv_buffers: AtomicU64,
    pub recv_buffers_free: AtomicU64,
    pub recv_buffer_exhaustions: AtomicU64,
    pub sends_in_flight: AtomicU64,
}

impl ReactorCounters {
    pub fn kicked(&self, reason: KickReason) {
        add(&self.kicks[reason as usize], 1);
    }

    pub fn refused(&self, reason: Refused) {
        add(&self.refused[reason as usize], 1);
    }

    pub fn snapshot(&self) -> ReactorSnapshot {
        let ring = &self.ring;
        let recv_buffers = read(&ring.recv_buffers);
        ReactorSnapshot {
            opening: read(&self.opening),
            tcp: read(&self.tcp),
            websocket: read(&self.websocket),
            polling: read(&self.polling),
            handshaking: read(&self.handshaking),
            accepted: read(&self.accepted),
            closed: read(&self.closed),
            moved: read(&self.moved),
            handshakes: read(&self.handshakes),
            deliveries: read(&self.deliveries),
            bytes_written: read(&self.bytes_written),
            queued_bytes: read(&self.queued_bytes),
            handshake_timeouts: read(&self.handshake_timeouts),
            accept_exhausted: read(&self.accept_exhausted),
            fanout: self.fanout.snapshot(),
            kicks: std::array::from_fn(|i| read(&self.kicks[i])),
            refused: std::array::from_fn(|i| read(&self.refused[i])),
            tls: TlsSnapshot {
                handshakes: read(&self.tls.handshakes),
                failures: read(&self.tls.failures),
                refused: read(&self.tls.refused),
                open: read(&self.tls.open),
            },
            ring: (recv_buffers > 0).then(|| RingSnapshot {
                recv_buffers,
                recv_buffers_free: read(&ring.recv_buffers_free).min(recv_buffers),
                recv_buffer_exhaustions: read(&ring.recv_buffer_exhaustions),
                sends_in_flight: read(&ring.sends_in_flight),
            }),
        }
    }
}

/// The push service's counters, by edge where it matters.
#[derive(Debug, Default)]
pub struct PushCounters {
    pushes: [AtomicU64; Edge::ALL.len()],
    joins: AtomicU64,
    leaves: AtomicU64,
    wrong_secrets: AtomicU64,
    pub cluster: ClusterCounters,
}

/// The cluster bus (`[cluster]`; all 0 without it): whether it is connected, pushes published
/// to it and received from other nodes, pushes not forwarded (the queue full, or the bus down
/// when their turn came), and the last publish's round trip.
#[derive(Debug, Default)]
pub struct ClusterCounters {
    /// 1 while the bus is connected and subscribed.
    pub up: AtomicU64,
    pub published: AtomicU64,
    pub received: AtomicU64,
    pub not_forwarded: AtomicU64,
    /// Messages from the bus that were not a push this node could deliver (malformed, an
    /// unknown app).
    pub dropped: AtomicU64,
    /// Microseconds from a batch of pushes leaving the queue to Redis's answer, the last one.
    pub publish_micros: AtomicU64,
}

/// What a reader sees of [`ClusterCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterSnapshot {
    pub up: bool,
    pub published: u64,
    pub received: u64,
    pub not_forwarded: u64,
    pub dropped: u64,
    pub publish_micros: u64,
}

impl ClusterCounters {
    pub fn snapshot(&self) -> ClusterSnapshot {
        ClusterSnapshot {
            up: read(&self.up) > 0,
            published: read(&self.published),
            received: read(&self.received),
            not_forwarded: read(&self.not_forwarded),
            dropped: read(&self.dropped),
            publish_micros: read(&self.publish_micros),
        }
    }
}

impl PushCounters {
    pub fn wrong_secret(&self) {
        self.wrong_secrets.fetch_add(1, Ordering::Relaxed);
    }

    pub fn pushed(&self, edge: Edge) {
        self.pushes[edge as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn joined(&self) {
        self.joins.fetch_add(1, Ordering::Relaxed);
    }

    pub fn left(&self) {
        self.leaves.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> PushSnapshot {
        PushSnapshot {
            pushes: std::array::from_fn(|i| read(&self.pushes[i])),
            joins: read(&self.joins),
            leaves: read(&self.leaves),
            wrong_secrets: read(&self.wrong_secrets),
            cluster: self.cluster.snapshot(),
        }
    }
}

/// One app's counters: pushes sent (to its channel or to one of its clients, from any edge) and
/// its clients kicked (for any reason).
#[derive(Debug, Default)]
pub struct AppCounters {
    pushes: AtomicU64,
    kicks: AtomicU64,
}

impl AppCounters {
    pub fn pushed(&self) {
        self.pushes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn kicked(&self) {
        self.kicks.fetch_add(1, Ordering::Relaxed);
    }

    pub fn pushes(&self) -> u64 {
        read(&self.pushes)
    }

    pub fn kicks(&self) -> u64 {
        read(&self.kicks)
    }
}

/// What a reader sees of one reactor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactorSnapshot {
    pub opening: u64,
    pub tcp: u64,
    pub websocket: u64,
    pub polling: u64,
    pub handshaking: u64,
    pub accepted: u64,
    pub closed: u64,
    pub moved: u64,
    pub handshakes: u64,
    pub deliveries: u64,
    pub bytes_written: u64,
    pub queued_bytes: u64,
    pub handshake_timeouts: u64,
    pub accept_exhausted: u64,
    pub fanout: FanoutSnapshot,
    kicks: [u64; KickReason::ALL.len()],
    refused: [u64; Refused::ALL.len()],
    pub tls: TlsSnapshot,
    /// `None` when the reactor's backend has no buffer ring (epoll).
    pub ring: Option<RingSnapshot>,
}

impl ReactorSnapshot {
    /// Open connections, all transports.
    pub fn connections(&self) -> u64 {
        self.opening + self.tcp + self.websocket
    }

    pub fn kicks(&self, reason: KickReason) -> u64 {
        self.kicks[reason as usize]
    }
}

/// A buffer ring's gauges at the last publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RingSnapshot {
    pub recv_buffers: u64,
    /// At most `recv_buffers`.
    pub recv_buffers_free: u64,
    pub recv_buffer_exhaustions: u64,
    pub sends_in_flight: u64,
}

/// What a reader sees of the push service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSnapshot {
    pushes: [u64; Edge::ALL.len()],
    /// Clients that entered a channel.
    pub joins: u64,
    /// Clients that left a channel (closed, kicked or replaced).
    pub leaves: u64,
    /// Wrong management secrets, every edge.
    pub wrong_secrets: u64,
    pub cluster: ClusterSnapshot,
}

impl PushSnapshot {
    pub fn pushes(&self, edge: Edge) -> u64 {
        self.pushes[edge as usize]
    }
}

/// Every counter, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Indexed by reactor.
    pub reactors: Vec<ReactorSnapshot>,
    pub push: PushSnapshot,
}

impl Snapshot {
    pub fn take(reactors: &[ReactorCounters], push: &PushCounters) -> Snapshot {
        Snapshot {
            reactors: reactors.iter().map(ReactorCounters::snapshot).collect(),
            push: push.snapshot(),
        }
    }

    /// The sum over reactors of one of their numbers.
    pub fn sum(&self, number: impl Fn(&ReactorSnapshot) -> u64) -> u64 {
        self.reactors.iter().map(number).sum()
    }

    pub fn kicks(&self, reason: KickReason) -> u64 {
        self.sum(|r| r.kicks(reason))
    }

    pub fn refused(&self, reason: Refused) -> u64 {
        self.sum(|r| r.refused[reason as usize])
    }

    /// The buffer rings' gauges summed over reactors, `None` when no reactor has one.
    pub fn ring(&self) -> Option<RingSnapshot> {
        self.reactors.iter().filter_map(|r| r.ring).reduce(|a, b| RingSnapshot {
            recv_buffers: a.recv_buffers + b.recv_buffers,
            recv_buffers_free: a.recv_buffers_free + b.recv_buffers_free,
            recv_buffer_exhaustions: a.recv_buffer_exhaustions + b.recv_buffer_exhaustions,
            sends_in_flight: a.sends_in_flight + b.sends_in_flight,
        })
    }
}

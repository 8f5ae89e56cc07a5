//! Per-reactor counters, written by their reactor only and read by anyone (metrics, tests).

use std::sync::atomic::{AtomicU64, Ordering};

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
}

impl KickReason {
    pub const ALL: [KickReason; 7] = [
        KickReason::HeartbeatTimeout,
        KickReason::Replaced,
        KickReason::Slow,
        KickReason::ProtocolError,
        KickReason::PackageTooLarge,
        KickReason::Shutdown,
        KickReason::Attack,
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
        }
    }
}

/// One reactor's counters and gauges.
///
/// # Invariants
/// - Only the owning reactor writes them, so an update is a plain load and store (no locked
///   read-modify-write on the hot path); anyone may read them at any time.
/// - `opening + tcp + websocket` is the number of open connections.
#[derive(Debug, Default)]
pub struct ReactorStats {
    /// Open connections that have not chosen a transport yet (gauge).
    pub opening: AtomicU64,
    /// Open raw-TCP Pomelo connections (gauge).
    pub tcp: AtomicU64,
    /// Open WebSocket connections (gauge).
    pub websocket: AtomicU64,
    pub accepted: AtomicU64,
    pub closed: AtomicU64,
    /// Handshakes completed (acked).
    pub handshakes: AtomicU64,
    /// Clients that entered a channel.
    pub joins: AtomicU64,
    /// Clients that left a channel (closed, kicked or replaced).
    pub leaves: AtomicU64,
    /// Pushes requested by management sessions on this reactor's connections.
    pub pushes: AtomicU64,
    /// Frames handed to recipients (a push to N members counts N).
    pub deliveries: AtomicU64,
    pub bytes_written: AtomicU64,
    /// Bytes waiting in this reactor's write queues (gauge).
    pub queued_bytes: AtomicU64,
    /// io_uring only (0 on epoll), published about once a second: receive buffers in the
    /// reactor's buffer ring (gauge), how many the kernel may fill now (gauge; equal to
    /// `recv_buffers` when nothing is being decoded or leaked), how often a receive found the
    /// ring empty (counter), and sends whose completion has not arrived (gauge).
    pub recv_buffers: AtomicU64,
    pub recv_buffers_free: AtomicU64,
    pub recv_buffer_exhaustions: AtomicU64,
    pub sends_in_flight: AtomicU64,
    kicks: [AtomicU64; KickReason::ALL.len()],
}

/// Adds to a counter that only the calling reactor writes.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// Subtracts from a gauge that only the calling reactor writes.
pub fn sub(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_sub(n), Ordering::Relaxed);
}

impl ReactorStats {
    pub fn kicked(&self, reason: KickReason) {
        add(&self.kicks[reason as usize], 1);
    }

    pub fn kicks(&self, reason: KickReason) -> u64 {
        self.kicks[reason as usize].load(Ordering::Relaxed)
    }

    /// Open connections, all transports.
    pub fn connections(&self) -> u64 {
        [&self.opening, &self.tcp, &self.websocket].iter().map(|g| g.load(Ordering::Relaxed)).sum()
    }
}

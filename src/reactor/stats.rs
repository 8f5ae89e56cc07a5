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

#[derive(Debug, Default)]
pub struct ReactorStats {
    pub connections: AtomicU64,
    pub accepted: AtomicU64,
    pub deliveries: AtomicU64,
    pub joins: AtomicU64,
    kicks: [AtomicU64; KickReason::ALL.len()],
}

impl ReactorStats {
    pub fn kicked(&self, reason: KickReason) {
        self.kicks[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn kicks(&self, reason: KickReason) -> u64 {
        self.kicks[reason as usize].load(Ordering::Relaxed)
    }
}

//! What the coordinator and the event loops say to each other: commands down, reports up.
//!
//! The same types travel over an in-process channel (a loop in the coordinator's process) and,
//! as one JSON object per line, over a worker process's stdin and stdout.
//!
//! ```text
//! coordinator                                   each loop
//!   ── Begin(PhaseSpec) ─────────────────────►  resets its phase book; marks entered conns stable
//!   ◄──────────────────────────────── Begun ──
//!   (pushes through the publisher)              records each delivery
//!   ── Await { seq_end, timeout_ms } ────────►  stops churning; waits until every stable conn
//!   ◄──────────────────── Caught { complete } ─   holds every push below seq_end, or the timeout
//!   ── End ──────────────────────────────────►
//!   ◄─────────────────────── Done(PhaseStats) ─
//!   ◄──────────────── Progress (every N ms) ──  counters for the progress line
//!   ── Quit ─────────────────────────────────►  closes everything
//!   ◄───────────────────────────────── Bye ──
//! ```

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

/// The phases of a run, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PhaseKind {
    /// Open every connection through handshake and enter.
    Connect,
    /// Hold them with heartbeats; measure memory.
    Idle,
    /// K single pushes, one at a time.
    Broadcast,
    /// Pushes at a fixed rate, stepping the rate up.
    Sustained,
    /// Close and reconnect at a rate while pushes go on.
    Churn,
}

impl PhaseKind {
    /// The phase's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            PhaseKind::Connect => "connect",
            PhaseKind::Idle => "idle",
            PhaseKind::Broadcast => "broadcast",
            PhaseKind::Sustained => "sustained",
            PhaseKind::Churn => "churn",
        }
    }
}

/// What a loop does in a phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseSpec {
    /// Which phase.
    pub kind: PhaseKind,
    /// The first push sequence number of the phase; earlier ones count as stale.
    pub seq_start: u64,
    /// Keep the largest latency of each of the first `track` pushes of the phase.
    pub track: usize,
    /// Reconnects per second this loop performs (churn only).
    pub churn_per_sec: f64,
}

/// Coordinator → loop.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Command {
    /// Start a phase.
    Begin(PhaseSpec),
    /// Sending is over up to `seq_end` (exclusive): answer once caught up or after the timeout.
    Await {
        /// One past the last push sequence number of the phase.
        seq_end: u64,
        /// How long to wait for stragglers.
        timeout_ms: u64,
    },
    /// Finish the phase and report.
    End,
    /// Close everything and stop.
    Quit,
}

/// Loop → coordinator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Report {
    /// The loop is up.
    Ready,
    /// Counters for the progress line.
    Progress(Progress),
    /// The phase began.
    Begun,
    /// Every stable connection caught up (`complete`), or the wait timed out.
    Caught {
        /// Whether every stable connection holds every push.
        complete: bool,
    },
    /// The phase ended.
    Done(Box<PhaseStats>),
    /// The loop stopped on an error.
    Fatal(String),
    /// The loop stopped after `Quit`.
    Bye,
}

/// A report and the loop it came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// The run-wide loop number.
    pub from: usize,
    /// The report.
    pub report: Report,
}

/// A loop's counters, for the progress line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Connections entered right now.
    pub entered: u64,
    /// Connections between connect and entered.
    pub connecting: u64,
    /// Connections given up on in this phase.
    pub failed: u64,
    /// Deliveries in this phase.
    pub deliveries: u64,
    /// Reconnects completed in this phase.
    pub reconnects: u64,
}

/// What a loop saw during one phase; the coordinator merges these over loops (`phase.rs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseStats {
    /// Messages received with a stamp of this phase.
    pub deliveries: u64,
    /// Messages received with a stamp of an earlier phase.
    pub stale: u64,
    /// Messages received again or out of order on one connection.
    pub out_of_order: u64,
    /// Pushes missing on connections that stayed up, after the wait.
    pub lost: u64,
    /// Connections entered at the start of the phase and still up at its end.
    pub stayed_up: u64,
    /// The first and last receive times (`CLOCK_MONOTONIC` ns).
    pub first_recv_ns: Option<u64>,
    /// See `first_recv_ns`.
    pub last_recv_ns: Option<u64>,
    /// Per-delivery latency, sparse (`latency.rs`).
    pub latency: Vec<(u64, u64)>,
    /// The largest latency of each tracked push, ns (0 = not seen).
    pub push_max_ns: Vec<u64>,
    /// Connections entered at the end of the phase.
    pub entered: u64,
    /// Connections given up on (connect or enter failed, every attempt).
    pub failed: u64,
    /// Entered connections the server closed or kicked.
    pub dropped: u64,
    /// Connects started (first attempts, retries and reconnects).
    pub connects: u64,
    /// The first connect started and the last enter completed in the phase (ns).
    pub first_connect_ns: Option<u64>,
    /// See `first_connect_ns`.
    pub last_entered_ns: Option<u64>,
    /// Connect-to-entered time of every connection that entered, sparse.
    pub enter_latency: Vec<(u64, u64)>,
    /// Churn: connections closed on purpose.
    pub churned: u64,
    /// Churn: reconnects that entered.
    pub reconnects: u64,
    /// Why connections failed or dropped, with counts.
    pub errors: BTreeMap<String, u64>,
    /// `--tls`: handshakes completed.
    #[serde(default)]
    pub tls_handshakes: u64,
    /// `--tls`: when the last handshake completed (ns).
    #[serde(default)]
    pub last_tls_ns: Option<u64>,
    /// `--tls`: connect-to-handshake-done time of every handshake, sparse.
    #[serde(default)]
    pub tls_latency: Vec<(u64, u64)>,
    /// `--tls`: the version and cipher suite of every handshake, with counts.
    #[serde(default)]
    pub tls_negotiated: BTreeMap<String, u64>,
}

/// Which protocol the connections speak.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Pomelo, `ws_percent` % of the connections over WebSocket, the rest raw TCP.
    Pomelo {
        /// Share of WebSocket connections, 0..=100.
        ws_percent: u8,
        /// The WebSocket request path.
        ws_path: String,
    },
    /// Redis `SUBSCRIBE` on a channel named by the apikey.
    Redis,
    /// MQTT `SUBSCRIBE` to `push/{apikey}`, the apikey as user name.
    Mqtt(crate::conn::MqttOptions),
    /// Pomelo's messages over Socket.IO on WebSocket, or HTTP long-polling.
    SocketIo {
        /// The socket.io generation.
        version: crate::wire::socketio::Version,
        /// The Socket.IO path (`/socket.io`).
        path: String,
        /// Long-polling (never upgraded) instead of WebSocket.
        #[serde(default)]
        polling: bool,
    },
}

/// Everything one event loop needs to know, the same for every loop but `loop_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoopSpec {
    /// The server's client port (or Redis).
    pub target: SocketAddr,
    /// With several servers: loop `l` connects to `targets[l % len]` instead of `target`.
    #[serde(default)]
    pub targets: Vec<SocketAddr>,
    /// The protocol.
    pub mode: Mode,
    /// Apikeys (Redis channels); connection `i` joins `apps[i % len]`.
    pub apps: Vec<String>,
    /// Source addresses; connection `i` binds `sources[i % len]`.
    pub sources: Vec<Ipv4Addr>,
    /// Connections in the whole run.
    pub conns: u64,
    /// Loops in the whole run; loop `l` owns connections `i` with `i % loops == l`.
    pub loops: usize,
    /// This loop's number.
    pub loop_id: usize,
    /// clientId prefix: connection `i` is `<prefix><i>`.
    pub client_prefix: String,
    /// Connects in flight per loop (connect to entered).
    pub connect_window: usize,
    /// Attempts per connection in the connect phase.
    pub connect_attempts: u8,
    /// Heartbeat interval; `None` = as the server's handshake says (Redis: none).
    pub heartbeat_secs: Option<f64>,
    /// Progress report interval.
    pub progress_ms: u64,
    /// The loop stops by itself after this long, whatever happens.
    pub max_secs: f64,
    /// The largest package, frame or reply accepted.
    pub max_package: usize,
    /// `--tls`: every connection runs inside TLS.
    #[serde(default)]
    pub tls: Option<crate::tls::TlsSpec>,
}

impl LoopSpec {
    /// The global indices of the connections this loop owns.
    pub fn owned(&self) -> impl Iterator<Item = u64> + use<> {
        let (first, step) = (self.loop_id as u64, self.loops.max(1) as u64);
        let conns = self.conns;
        (first..conns).step_by(step as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_share_the_connections_exactly() {
        let spec = |loop_id| LoopSpec {
            target: "127.0.0.1:1".parse().unwrap(),
            targets: Vec::new(),
            mode: Mode::Redis,
            apps: vec!["demo".into()],
            sources: vec![Ipv4Addr::LOCALHOST],
            conns: 10,
            loops: 3,
            loop_id,
            client_prefix: "c".into(),
            connect_window: 1,
            connect_attempts: 1,
            heartbeat_secs: None,
            progress_ms: 100,
            max_secs: 1.0,
            max_package: 1024,
            tls: None,
        };
        let mut all: Vec<u64> = (0..3).flat_map(|l| spec(l).owned().collect::<Vec<_>>()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(spec(1).owned().collect::<Vec<_>>(), [1, 4, 7]);
    }

    #[test]
    fn reports_survive_a_json_line() {
        let stats = PhaseStats {
            deliveries: 3,
            latency: vec![(10, 2), (20, 1)],
            errors: [("connect: refused".to_string(), 2)].into(),
            ..PhaseStats::default()
        };
        let envelope = Envelope { from: 2, report: Report::Done(Box::new(stats.clone())) };
        let line = serde_json::to_string(&envelope).unwrap();
        assert!(!line.contains('\n'));
        let back: Envelope = serde_json::from_str(&line).unwrap();
        match back.report {
            Report::Done(s) => assert_eq!(*s, stats),
            other => panic!("{other:?}"),
        }
        let command =
            serde_json::to_string(&Command::Await { seq_end: 5, timeout_ms: 100 }).unwrap();
        assert!(matches!(
            serde_json::from_str(&command).unwrap(),
            Command::Await { seq_end: 5, timeout_ms: 100 }
        ));
    }
}

//! The results of a run: one struct per phase, printed as a human table and as one JSON line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::latency::Percentiles;
use crate::probe::{PerConn, Reading};
use crate::sustain::{StepOutcome, Verdict};

/// Everything a run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// `"shaddock"` (Pomelo) or `"redis"`.
    pub server: String,
    /// The target address.
    pub target: String,
    /// Connections asked for.
    pub conns: u64,
    /// `tcp`, `ws`, `mix:<ws percent>`, `redis`, `mqtt <version> qos <qos>` or
    /// `socket.io <generation> ws`.
    pub transport: String,
    /// Worker processes.
    pub procs: usize,
    /// Event loops over all processes.
    pub loops: usize,
    /// Bytes per pushed message.
    pub msg_bytes: usize,
    /// The connect phase.
    pub connect: Option<ConnectResult>,
    /// The idle phase.
    pub idle: Option<IdleResult>,
    /// The broadcast phase.
    pub broadcast: Option<BroadcastResult>,
    /// The sustained phase.
    pub sustained: Option<SustainedResult>,
    /// The churn phase.
    pub churn: Option<ChurnResult>,
    /// Seconds the whole run took.
    pub secs: f64,
}

/// The connect phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConnectResult {
    /// Connections entered.
    pub entered: u64,
    /// Connections given up on.
    pub failed: u64,
    /// From the first connect to the last enter, seconds.
    pub secs: f64,
    /// `entered / secs`.
    pub conns_per_sec: f64,
    /// Connect-to-entered time per connection.
    pub enter_latency: Percentiles,
    /// Failure reasons with counts.
    pub errors: BTreeMap<String, u64>,
    /// `--tls`: the handshakes (`conns_per_sec` and `enter_latency` include them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsResult>,
}

/// `--tls`: the TLS handshakes of the connect phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TlsResult {
    /// Handshakes completed (socket.io 0.9 makes two per client, one per connection).
    pub handshakes: u64,
    /// From the first connect to the last handshake done, seconds.
    pub secs: f64,
    /// `handshakes / secs`.
    pub handshakes_per_sec: f64,
    /// Connect-to-handshake-done time (TCP connect and TLS handshake).
    pub handshake_latency: Percentiles,
    /// The version and cipher suite negotiated, with counts.
    pub negotiated: BTreeMap<String, u64>,
}

/// The idle phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IdleResult {
    /// How long the connections were held, seconds.
    pub secs: f64,
    /// Connections entered at the end.
    pub held: u64,
    /// Connections the server closed meanwhile.
    pub dropped: u64,
    /// Readings before the connect phase.
    pub before: Reading,
    /// Readings at the end of the idle phase.
    pub after: Reading,
    /// Growth per held connection, bytes.
    pub per_conn: PerConn,
}

/// The broadcast phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BroadcastResult {
    /// Single pushes sent.
    pub pushes: usize,
    /// Recipients the server (or Redis) reported, per push, averaged; `None` when its answers
    /// carry no count (an MQTT PUBACK).
    pub recipients: Option<f64>,
    /// Connections that stayed up through the phase.
    pub stayed_up: u64,
    /// Deliveries counted.
    pub deliveries: u64,
    /// Pushes missing on connections that stayed up.
    pub lost: u64,
    /// Pushes received again or out of order on one connection (a server fault if not 0).
    pub out_of_order: u64,
    /// Pushes for which every stable connection had the message before the wait ended.
    pub complete_pushes: usize,
    /// Per-recipient latency over all pushes.
    pub latency: Percentiles,
    /// Time until the last recipient had it: the median over the pushes, ms.
    pub last_recipient_median_ms: f64,
    /// The same, best push.
    pub last_recipient_min_ms: f64,
    /// The same, worst push.
    pub last_recipient_max_ms: f64,
    /// The same, for each push.
    pub last_recipient_ms: Vec<f64>,
    /// Refusals from the server.
    pub refusals: Vec<String>,
}

/// One step of the sustained phase.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    /// What was measured.
    pub outcome: StepOutcome,
    /// The verdict.
    pub verdict: Verdict,
    /// Per-delivery latency.
    pub latency: Percentiles,
    /// Recipients the server reported, summed over the step's pushes.
    pub server_recipients: u64,
    /// Pushes received again or out of order on one connection (a server fault if not 0).
    pub out_of_order: u64,
    /// Connections the server closed during the step.
    pub dropped: u64,
    /// Why connections closed, with counts.
    pub errors: BTreeMap<String, u64>,
    /// Refusals from the server.
    pub refusals: Vec<String>,
}

/// The sustained phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SustainedResult {
    /// Every step, in order.
    pub steps: Vec<StepResult>,
    /// The best held step's delivered messages per second (0 if none held).
    pub best_delivered_per_sec: f64,
    /// The best held step's push rate.
    pub best_rate: f64,
    /// The best held step's p99 latency, ms.
    pub best_p99_ms: f64,
}

/// The churn phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChurnResult {
    /// How long, seconds.
    pub secs: f64,
    /// Reconnects per second asked for.
    pub target_rate: f64,
    /// Connections closed on purpose.
    pub churned: u64,
    /// `churned / secs`.
    pub churned_per_sec: f64,
    /// Reconnects that entered again.
    pub reconnects: u64,
    /// Reconnects given up on.
    pub reconnect_failures: u64,
    /// Connections that stayed up through the phase.
    pub stayed_up: u64,
    /// Pushes sent meanwhile.
    pub pushes: u64,
    /// Deliveries counted (stable and reconnected connections).
    pub deliveries: u64,
    /// Pushes missing on connections that stayed up: must be 0.
    pub lost: u64,
    /// Pushes received again or out of order on one connection (a server fault if not 0).
    pub out_of_order: u64,
    /// Connections the server closed meanwhile.
    pub dropped: u64,
    /// Per-delivery latency.
    pub latency: Percentiles,
    /// Reconnect-to-entered time.
    pub reconnect_latency: Percentiles,
    /// The server's resident memory when the phase began and when it ended, with as many
    /// connections (only with `--server-pid`): a leak shows as growth.
    pub server_rss_before: Option<u64>,
    pub server_rss_after: Option<u64>,
    /// Failure reasons with counts.
    pub errors: BTreeMap<String, u64>,
}

impl Summary {
    /// The one JSON line.
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!(r#"{{"error":"{e}"}}"#))
    }

    /// The human table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "conn-flood → {} {} · {} conns ({}) · {} procs, {} loops · {} B msgs · {:.1} s",
            self.server,
            self.target,
            self.conns,
            self.transport,
            self.procs,
            self.loops,
            self.msg_bytes,
            self.secs
        );
        let row = |t: &mut String, phase: &str, what: &str, value: String| {
            let _ = writeln!(t, "  {phase:<10} {what:<36} {value}");
        };
        let lat = |p: &Percentiles| {
            format!(
                "p50 {:.2} · p99 {:.2} · p99.9 {:.2} · max {:.2} ms (n={})",
                p.p50_ms, p.p99_ms, p.p999_ms, p.max_ms, p.count
            )
        };
        let bytes = |v: Option<f64>| v.map_or("-".to_string(), |b| format!("{b:.0} B"));
        if let Some(c) = &self.connect {
            row(&mut t, "connect", "entered / failed", format!("{} / {}", c.entered, c.failed));
            let per_sec = if c.tls.is_some() {
                "connections per second (TLS incl.)"
            } else {
                "connections per second"
            };
            row(&mut t, "", per_sec, format!("{:.0} ({:.2} s)", c.conns_per_sec, c.secs));
            row(&mut t, "", "connect → entered", lat(&c.enter_latency));
            if let Some(tls) = &c.tls {
                row(
                    &mut t,
                    "",
                    "TLS handshakes per second",
                    format!(
                        "{:.0} ({} in {:.2} s)",
                        tls.handshakes_per_sec, tls.handshakes, tls.secs
                    ),
                );
                row(&mut t, "", "connect → TLS established", lat(&tls.handshake_latency));
                for (negotiated, n) in &tls.negotiated {
                    row(&mut t, "", "TLS negotiated", format!("{n} × {negotiated}"));
                }
            }
            for (reason, n) in &c.errors {
                row(&mut t, "", "error", format!("{n} × {reason}"));
            }
        }
        if let Some(i) = &self.idle {
            row(
                &mut t,
                "idle",
                "held / dropped",
                format!("{} / {} ({:.1} s)", i.held, i.dropped, i.secs),
            );
            row(&mut t, "", "server RSS growth per connection", bytes(i.per_conn.server_rss));
            row(&mut t, "", "kernel slab per connection (both ends)", bytes(i.per_conn.slab));
            row(&mut t, "", "TCP socket mem per connection (both ends)", bytes(i.per_conn.tcp_mem));
        }
        if let Some(b) = &self.broadcast {
            row(
                &mut t,
                "broadcast",
                "pushes / recipients",
                match b.recipients {
                    Some(n) => format!("{} / {n:.0}", b.pushes),
                    None => format!("{} / not reported (MQTT PUBACK)", b.pushes),
                },
            );
            row(&mut t, "", "deliveries / lost", format!("{} / {}", b.deliveries, b.lost));
            row(
                &mut t,
                "",
                "last recipient (median of pushes)",
                format!(
                    "{:.2} ms (min {:.2}, max {:.2})",
                    b.last_recipient_median_ms, b.last_recipient_min_ms, b.last_recipient_max_ms
                ),
            );
            row(&mut t, "", "per-recipient latency", lat(&b.latency));
        }
        if let Some(s) = &self.sustained {
            for step in &s.steps {
                let verdict = match step.verdict.miss {
                    None => "held".to_string(),
                    Some(miss) => format!("not held: {miss:?}"),
                };
                row(
                    &mut t,
                    "sustained",
                    &format!("{:.0} pushes/s × {}", step.outcome.rate, step.outcome.recipients),
                    format!(
                        "{:.0} / {:.0} deliveries/s · p99 {:.2} ms · lost {} · dropped {} · {verdict}",
                        step.verdict.delivered_per_sec,
                        step.verdict.offered_per_sec,
                        step.latency.p99_ms,
                        step.outcome.lost,
                        step.dropped,
                    ),
                );
                for (reason, n) in &step.errors {
                    row(&mut t, "", "error", format!("{n} × {reason}"));
                }
            }
            row(
                &mut t,
                "",
                "best held",
                format!(
                    "{:.0} deliveries/s at {:.0} pushes/s (p99 {:.2} ms)",
                    s.best_delivered_per_sec, s.best_rate, s.best_p99_ms
                ),
            );
        }
        if let Some(c) = &self.churn {
            row(
                &mut t,
                "churn",
                "reconnects per second",
                format!(
                    "{:.0} (asked {:.0}; {} reconnected, {} failed)",
                    c.churned_per_sec, c.target_rate, c.reconnects, c.reconnect_failures
                ),
            );
            row(
                &mut t,
                "",
                "lost on stayed-up connections",
                format!(
                    "{} (stayed up {}, pushes {}, dropped {})",
                    c.lost, c.stayed_up, c.pushes, c.dropped
                ),
            );
            row(&mut t, "", "per-delivery latency", lat(&c.latency));
            row(&mut t, "", "reconnect → entered", lat(&c.reconnect_latency));
            if let (Some(before), Some(after)) = (c.server_rss_before, c.server_rss_after) {
                let kib = |b: u64| b / 1024;
                let growth = kib(after) as i64 - kib(before) as i64;
                let line = format!("{} → {} KiB ({growth:+} KiB)", kib(before), kib(after));
                row(&mut t, "", "server RSS before → after", line);
            }
            for (reason, n) in &c.errors {
                row(&mut t, "", "error", format!("{n} × {reason}"));
            }
        }
        t
    }
}

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn one_json_line_and_a_table() {
        let s = Summary {
            server: "shaddock".into(),
            conns: 10,
            connect: Some(ConnectResult { entered: 10, ..ConnectResult::default() }),
            broadcast: Some(BroadcastResult::default()),
            ..Summary::default()
        };
        let line = s.json_line();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["connect"]["entered"], 10);
        assert!(v["idle"].is_null());
        let table = s.table();
        assert!(table.contains("entered / failed") && table.contains("last recipient"));
    }
}

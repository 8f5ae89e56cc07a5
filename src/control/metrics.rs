//! `GET /metrics`: the reactors' counters in Prometheus (OpenMetrics) text, via prometheus-client.
//!
//! The hot path only bumps plain per-core counters ([`ReactorStats`]); a scrape reads and sums
//! them here, in a [`Collector`] that runs on the control thread. HTTP pushes are counted by the
//! control thread itself.
//!
//! | metric | type | labels | meaning |
//! | --- | --- | --- | --- |
//! | `shaddock_connections` | gauge | `transport` (`tcp`, `websocket`, `opening`), `reactor` | open connections; `opening` = accepted, transport not yet known |
//! | `shaddock_connections_accepted_total` | counter | | connections accepted |
//! | `shaddock_connections_closed_total` | counter | | connections closed, for any reason |
//! | `shaddock_handshakes_total` | counter | | Pomelo handshakes completed (acked) |
//! | `shaddock_joins_total` | counter | | clients that entered a channel |
//! | `shaddock_leaves_total` | counter | | clients that left a channel (closed, kicked, replaced) |
//! | `shaddock_pushes_total` | counter | `source` (`socket`, `http`) | pushes requested by management sessions or the HTTP API |
//! | `shaddock_deliveries_total` | counter | | frames handed to recipients (a push to N clients counts N) |
//! | `shaddock_bytes_written_total` | counter | | bytes written to client sockets |
//! | `shaddock_kicks_total` | counter | `reason` (`heartbeat`, `replaced`, `slow`, `protocol`, `too_large`, `shutdown`, `attack`) | connections the server kicked; `slow` = slow-consumer drops |
//! | `shaddock_write_queue_bytes` | gauge | | bytes waiting in write queues, all reactors |
//! | `process_resident_memory_bytes` | gauge | | the daemon's resident memory (`VmRSS`) |
//! | `shaddock_recv_buffers` | gauge | `reactor`, `state` (`free`, `lent`) | io_uring only: the reactor's provided receive buffers, in the ring for the kernel to fill (`free`) or being decoded (`lent`) |
//! | `shaddock_recv_buffer_exhaustions_total` | counter | `reactor` | io_uring only: receives that found the buffer ring empty (`ENOBUFS`) and were re-armed |
//! | `shaddock_sends_in_flight` | gauge | `reactor` | io_uring only: sends the reactor handed to the kernel (or is collecting) whose completion has not come |
//!
//! The io_uring gauges are published by each reactor about once a second, and only appear when
//! the server runs on io_uring.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::Context;
use crate::reactor::stats::{KickReason, ReactorStats};
use crate::shared::Shared;

/// The content type prometheus-client's text encoder produces.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A registry whose only collector reads `shared`'s counters and `http_pushes` at each scrape.
pub(super) fn registry(shared: Arc<Shared>, http_pushes: Arc<AtomicU64>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Counters { shared, http_pushes }));
    registry
}

pub(super) async fn scrape(State(context): State<Arc<Context>>) -> Response {
    let mut text = String::with_capacity(4096);
    match prometheus_client::encoding::text::encode(&mut text, &context.metrics) {
        Ok(()) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "metrics could not be encoded").into_response()
        }
    }
}

/// Reads the counters at scrape time.
#[derive(Debug)]
struct Counters {
    shared: Arc<Shared>,
    http_pushes: Arc<AtomicU64>,
}

impl Counters {
    /// The sum over reactors of one counter.
    fn sum(&self, counter: impl Fn(&ReactorStats) -> &AtomicU64) -> u64 {
        self.shared.stats.iter().map(|s| counter(s).load(Ordering::Relaxed)).sum()
    }
}

impl Collector for Counters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let stats = &self.shared.stats;
        let mut family = encoder.encode_descriptor(
            "shaddock_connections",
            "Open connections by transport (opening = accepted, transport not yet known) and reactor.",
            None,
            MetricType::Gauge,
        )?;
        for (core, s) in stats.iter().enumerate() {
            let reactor = core.to_string();
            for (transport, gauge) in
                [("tcp", &s.tcp), ("websocket", &s.websocket), ("opening", &s.opening)]
            {
                let labels = [("transport", transport), ("reactor", reactor.as_str())];
                ConstGauge::new(gauge.load(Ordering::Relaxed))
                    .encode(family.encode_family(&labels)?)?;
            }
        }

        let counters: [(&str, &str, u64); 7] = [
            ("shaddock_connections_accepted", "Connections accepted.", self.sum(|s| &s.accepted)),
            (
                "shaddock_connections_closed",
                "Connections closed, for any reason.",
                self.sum(|s| &s.closed),
            ),
            ("shaddock_handshakes", "Pomelo handshakes completed.", self.sum(|s| &s.handshakes)),
            ("shaddock_joins", "Clients that entered a channel.", self.sum(|s| &s.joins)),
            ("shaddock_leaves", "Clients that left a channel.", self.sum(|s| &s.leaves)),
            (
                "shaddock_deliveries",
                "Frames handed to recipients (a push to N clients counts N).",
                self.sum(|s| &s.deliveries),
            ),
            (
                "shaddock_bytes_written",
                "Bytes written to client sockets.",
                self.sum(|s| &s.bytes_written),
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)?;
        }

        let mut family = encoder.encode_descriptor(
            "shaddock_pushes",
            "Pushes requested, by source: a Pomelo management session (socket) or the HTTP API.",
            None,
            MetricType::Counter,
        )?;
        let socket = self.sum(|s| &s.pushes);
        let http = self.http_pushes.load(Ordering::Relaxed);
        for (source, value) in [("socket", socket), ("http", http)] {
            ConstCounter::new(value).encode(family.encode_family(&[("source", source)])?)?;
        }

        let mut family = encoder.encode_descriptor(
            "shaddock_kicks",
            "Connections the server kicked, by reason (slow = slow-consumer drops).",
            None,
            MetricType::Counter,
        )?;
        for reason in KickReason::ALL {
            let value: u64 = stats.iter().map(|s| s.kicks(reason)).sum();
            ConstCounter::new(value)
                .encode(family.encode_family(&[("reason", reason.label())])?)?;
        }

        let queued = ConstGauge::new(self.sum(|s| &s.queued_bytes));
        queued.encode(encoder.encode_descriptor(
            "shaddock_write_queue_bytes",
            "Bytes waiting in write queues, all reactors.",
            None,
            MetricType::Gauge,
        )?)?;

        self.encode_ring_gauges(&mut encoder)?;

        if let Some(rss) = resident_memory_bytes() {
            ConstGauge::new(rss).encode(encoder.encode_descriptor(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                None,
                MetricType::Gauge,
            )?)?;
        }
        Ok(())
    }
}

impl Counters {
    /// The io_uring reactors' buffer rings and sends in flight (nothing on epoll, whose
    /// reactors publish no ring).
    fn encode_ring_gauges(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let stats = &self.shared.stats;
        if stats.iter().all(|s| s.recv_buffers.load(Ordering::Relaxed) == 0) {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(
            "shaddock_recv_buffers",
            "io_uring receive buffers by reactor: in the ring for the kernel (free) or lent.",
            None,
            MetricType::Gauge,
        )?;
        for (core, s) in stats.iter().enumerate() {
            let reactor = core.to_string();
            let total = s.recv_buffers.load(Ordering::Relaxed);
            let free = s.recv_buffers_free.load(Ordering::Relaxed).min(total);
            for (state, value) in [("free", free), ("lent", total - free)] {
                let labels = [("reactor", reactor.as_str()), ("state", state)];
                ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        per_reactor(
            encoder,
            ("shaddock_recv_buffer_exhaustions", MetricType::Counter),
            "io_uring receives that found the buffer ring empty (ENOBUFS) and were re-armed.",
            stats.iter().map(|s| s.recv_buffer_exhaustions.load(Ordering::Relaxed)),
        )?;
        per_reactor(
            encoder,
            ("shaddock_sends_in_flight", MetricType::Gauge),
            "io_uring sends handed to the kernel (or being collected) whose completion has not come.",
            stats.iter().map(|s| s.sends_in_flight.load(Ordering::Relaxed)),
        )?;
        Ok(())
    }
}

/// One family with a sample per reactor, labelled `reactor`, from `values` in reactor order.
fn per_reactor(
    encoder: &mut DescriptorEncoder,
    (name, kind): (&str, MetricType),
    help: &str,
    values: impl Iterator<Item = u64>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for (core, value) in values.enumerate() {
        let reactor = core.to_string();
        let labels = [("reactor", reactor.as_str())];
        let sample = family.encode_family(&labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(value).encode(sample)?,
            _ => ConstGauge::new(value).encode(sample)?,
        }
    }
    Ok(())
}

/// The process's resident set size, from `VmRSS` in `/proc/self/status` (in kB there, so no
/// page size is needed); `None` where there is no procfs.
fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|line| line.strip_prefix("VmRSS:"))?;
    let kb: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kb.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tshaddock\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(1234 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert!(resident_memory_bytes().is_some_and(|rss| rss > 0));
    }
}

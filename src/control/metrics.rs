//! `GET /metrics`: the reactors' counters in Prometheus (OpenMetrics) text, via prometheus-client.
//!
//! The hot path only bumps plain counters ([`crate::stats`]); a scrape takes a [`Snapshot`] of
//! them and sums it here, in a [`Collector`] that runs on the control thread.
//!
//! | metric | type | labels | meaning |
//! | --- | --- | --- | --- |
//! | `shaddock_connections` | gauge | `transport` (`tcp`, `websocket`, `opening`), `reactor` | open connections; `opening` = accepted, transport not yet known |
//! | `shaddock_connections_moved_total` | counter | | connections handed to the reactor that holds their Socket.IO session |
//! | `shaddock_polling_sessions` | gauge | `reactor` | Socket.IO long-polling sessions (no socket of their own: their polls arrive on `tcp` connections) |
//! | `shaddock_connections_accepted_total` | counter | | connections accepted |
//! | `shaddock_connections_closed_total` | counter | | connections closed, for any reason |
//! | `shaddock_handshakes_total` | counter | | Pomelo handshakes completed (acked) |
//! | `shaddock_joins_total` | counter | | clients that entered a channel |
//! | `shaddock_leaves_total` | counter | | clients that left a channel (closed, kicked, replaced) |
//! | `shaddock_pushes_total` | counter | `source` (`socket`, `http`) | pushes the push service sent, by the edge that asked: a management session or the HTTP API |
//! | `shaddock_deliveries_total` | counter | | frames handed to recipients (a push to N clients counts N) |
//! | `shaddock_bytes_written_total` | counter | | bytes written to client sockets |
//! | `shaddock_wrong_secrets_total` | counter | | wrong management secrets, from every edge |
//! | `shaddock_admission_refused_total` | counter | `reason` (`total`, `per_source`, `rate`, `opening`) | new connections closed unread by an admission limit |
//! | `shaddock_kicks_total` | counter | `reason` (`heartbeat`, `replaced`, `slow`, `protocol`, `too_large`, `shutdown`, `attack`, `disconnected`) | connections the server kicked; `slow` = slow-consumer drops, `disconnected` = the admin API's |
//! | `shaddock_tls_connections` | gauge | | TLS connections open on the client listeners (handshaking or established) |
//! | `shaddock_tls_handshakes_total` | counter | | TLS handshakes completed on the client listeners |
//! | `shaddock_tls_failures_total` | counter | | TLS connections that failed: a bad ClientHello or handshake, one the peer left unfinished (e.g. not trusting the chain) or that passed the handshake deadline, a record that did not authenticate, a fatal alert |
//! | `shaddock_tls_refused_total` | counter | | connections closed unanswered: plain where `client.tls.required`, or a ClientHello past `max_handshakes_per_reactor` |
//! | `shaddock_cluster_up` | gauge | | cluster only: 1 while the Redis bus is connected and subscribed |
//! | `shaddock_cluster_published_total`, `_received_total` | counter | | cluster only: pushes published to the other nodes, received from them |
//! | `shaddock_cluster_not_forwarded_total` | counter | | cluster only: pushes delivered here only (bus down or its queue full) |
//! | `shaddock_cluster_dropped_total` | counter | | cluster only: bus messages that were not a deliverable push |
//! | `shaddock_cluster_publish_seconds` | gauge | | cluster only: the last PUBLISH pipeline's round trip |
//! | `shaddock_handshake_timeouts_total` | counter | | connections closed because their handshake (TLS, Pomelo, MQTT CONNECT, an upgrade) did not finish within `handshake_timeout_secs` |
//! | `shaddock_accept_exhausted_total` | counter | | accepts that failed for want of file descriptors or memory (the backlog keeps the connections; retried every 100 ms) |
//! | `shaddock_push_fanout_seconds` | histogram | `reactor` | from a push accepted to the reactor's last local member's write handed to the backend (epoll: written; io_uring: queued for the turn's submit), per broadcast batch |
//! | `shaddock_app_clients`, `shaddock_app_managers` | gauge | `app` | the app's online clients and management sessions on this node |
//! | `shaddock_app_pushes_total`, `shaddock_app_kicks_total` | counter | `app` | pushes this node sent to the app (its channel or one client), its clients kicked here |
//! | `shaddock_write_queue_bytes` | gauge | | bytes waiting in write queues, all reactors |
//! | `process_resident_memory_bytes` | gauge | | the daemon's resident memory (`VmRSS`) |
//! | `process_cpu_seconds_total` | counter | | user and system CPU time |
//! | `process_open_fds`, `process_max_fds` | gauge | | file descriptors open, and the limit |
//! | `shaddock_build_info` | gauge | `version`, `commit` | always 1 |
//! | `shaddock_http_requests_total` | counter | `route` (the router's pattern, or `unmatched`), `status` | control-port requests answered |
//! | `shaddock_recv_buffers` | gauge | `reactor`, `state` (`free`, `lent`) | io_uring only: the reactor's provided receive buffers, in the ring for the kernel to fill (`free`) or being decoded (`lent`) |
//! | `shaddock_recv_buffer_exhaustions_total` | counter | `reactor` | io_uring only: receives that found the buffer ring empty (`ENOBUFS`) and were re-armed |
//! | `shaddock_sends_in_flight` | gauge | `reactor` | io_uring only: sends the reactor handed to the kernel (or is collecting) whose completion has not come |
//!
//! The io_uring gauges are published by each reactor about once a second, and only appear when
//! the server runs on io_uring.

mod apps;
mod fanout;

use std::fmt;
use std::sync::Arc;

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
use super::requests::RequestCounts;
use crate::ids::Edge;
use crate::reactor::shared::Shared;
use crate::stats::{KickReason, Refused, RingSnapshot, Snapshot};

/// The content type prometheus-client's text encoder produces.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A registry whose only collector reads a snapshot of `shared`'s counters at each scrape.
pub(super) fn registry(shared: Arc<Shared>, requests: Arc<RequestCounts>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Counters { shared, requests }));
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
    requests: Arc<RequestCounts>,
}

impl Collector for Counters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let stats = self.shared.snapshot();
        let mut family = encoder.encode_descriptor(
            "shaddock_connections",
            "Open connections by transport (opening = accepted, transport not yet known) and reactor.",
            None,
            MetricType::Gauge,
        )?;
        for (core, r) in stats.reactors.iter().enumerate() {
            let reactor = core.to_string();
            for (transport, value) in
                [("tcp", r.tcp), ("websocket", r.websocket), ("opening", r.opening)]
            {
                let labels = [("transport", transport), ("reactor", reactor.as_str())];
                ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "shaddock_polling_sessions",
            "Socket.IO long-polling sessions by reactor (their polls arrive on tcp connections).",
            None,
            MetricType::Gauge,
        )?;
        for (core, r) in stats.reactors.iter().enumerate() {
            let labels = [("reactor", core.to_string())];
            ConstGauge::new(r.polling).encode(family.encode_family(&labels)?)?;
        }

        let counters: [(&str, &str, u64); 10] = [
            ("shaddock_connections_accepted", "Connections accepted.", stats.sum(|r| r.accepted)),
            (
                "shaddock_connections_closed",
                "Connections closed, for any reason.",
                stats.sum(|r| r.closed),
            ),
            (
                "shaddock_connections_moved",
                "Connections handed to the reactor that holds their Socket.IO session.",
                stats.sum(|r| r.moved),
            ),
            ("shaddock_handshakes", "Pomelo handshakes completed.", stats.sum(|r| r.handshakes)),
            ("shaddock_joins", "Clients that entered a channel.", stats.push.joins),
            ("shaddock_leaves", "Clients that left a channel.", stats.push.leaves),
            (
                "shaddock_deliveries",
                "Frames handed to recipients (a push to N clients counts N).",
                stats.sum(|r| r.deliveries),
            ),
            (
                "shaddock_bytes_written",
                "Bytes written to client sockets.",
                stats.sum(|r| r.bytes_written),
            ),
            (
                "shaddock_handshake_timeouts",
                "Connections closed because their handshake did not finish in handshake_timeout_secs.",
                stats.sum(|r| r.handshake_timeouts),
            ),
            (
                "shaddock_accept_exhausted",
                "Accepts that failed for want of file descriptors or memory (retried every 100 ms).",
                stats.sum(|r| r.accept_exhausted),
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)?;
        }

        let mut family = encoder.encode_descriptor(
            "shaddock_pushes",
            "Pushes sent, by the edge that asked: a management session (socket) or the HTTP API.",
            None,
            MetricType::Counter,
        )?;
        for edge in Edge::ALL {
            let value = ConstCounter::new(stats.push.pushes(edge));
            value.encode(family.encode_family(&[("source", edge.label())])?)?;
        }

        let mut family = encoder.encode_descriptor(
            "shaddock_kicks",
            "Connections the server kicked, by reason (slow = slow-consumer drops).",
            None,
            MetricType::Counter,
        )?;
        for reason in KickReason::ALL {
            ConstCounter::new(stats.kicks(reason))
                .encode(family.encode_family(&[("reason", reason.label())])?)?;
        }

        ConstCounter::new(stats.push.wrong_secrets).encode(encoder.encode_descriptor(
            "shaddock_wrong_secrets",
            "Wrong management secrets, from every edge (Pomelo enter, MQTT CONNECT, HTTP).",
            None,
            MetricType::Counter,
        )?)?;

        let mut family = encoder.encode_descriptor(
            "shaddock_admission_refused",
            "New connections closed unread by an admission limit, by limit.",
            None,
            MetricType::Counter,
        )?;
        for reason in Refused::ALL {
            ConstCounter::new(stats.refused(reason))
                .encode(family.encode_family(&[("reason", reason.label())])?)?;
        }

        fanout::encode(&stats, &mut encoder)?;
        apps::encode(&self.shared.push, &mut encoder)?;

        let queued = ConstGauge::new(stats.sum(|r| r.queued_bytes));
        queued.encode(encoder.encode_descriptor(
            "shaddock_write_queue_bytes",
            "Bytes waiting in write queues, all reactors.",
            None,
            MetricType::Gauge,
        )?)?;

        encode_tls(&stats, &mut encoder)?;
        if self.shared.push.clustered() {
            encode_cluster(&stats, &mut encoder)?;
        }
        encode_ring_gauges(&stats, &mut encoder)?;

        let mut family = encoder.encode_descriptor(
            "shaddock_http_requests",
            "Control-port requests answered, by route (the router's pattern, or unmatched) and status.",
            None,
            MetricType::Counter,
        )?;
        for (route, status, n) in self.requests.snapshot() {
            let status = status.to_string();
            let labels = [("route", &*route), ("status", status.as_str())];
            ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
        }
        super::process::encode(&mut encoder)?;
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

/// The cluster bus, on a node of a cluster.
fn encode_cluster(stats: &Snapshot, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let bus = stats.push.cluster;
    ConstGauge::new(u64::from(bus.up)).encode(encoder.encode_descriptor(
        "shaddock_cluster_up",
        "1 while the cluster bus (Redis) is connected and subscribed, else 0.",
        None,
        MetricType::Gauge,
    )?)?;
    ConstGauge::new(bus.publish_micros as f64 / 1e6).encode(encoder.encode_descriptor(
        "shaddock_cluster_publish_seconds",
        "The last batch of pushes' round trip to Redis (PUBLISH pipeline to its answer).",
        None,
        MetricType::Gauge,
    )?)?;
    let counters: [(&str, &str, u64); 4] = [
        ("shaddock_cluster_published", "Pushes published to the other nodes.", bus.published),
        ("shaddock_cluster_received", "Pushes received from other nodes.", bus.received),
        (
            "shaddock_cluster_not_forwarded",
            "Pushes delivered here only: the bus was down or its queue full.",
            bus.not_forwarded,
        ),
        (
            "shaddock_cluster_dropped",
            "Messages from the bus that were not a push this node could deliver.",
            bus.dropped,
        ),
    ];
    for (name, help, value) in counters {
        let counter = ConstCounter::new(value);
        counter.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)?;
    }
    Ok(())
}

/// TLS on the client listeners, all reactors together.
fn encode_tls(stats: &Snapshot, encoder: &mut DescriptorEncoder) -> fmt::Result {
    ConstGauge::new(stats.sum(|r| r.tls.open)).encode(encoder.encode_descriptor(
        "shaddock_tls_connections",
        "TLS connections open on the client listeners (handshaking or established).",
        None,
        MetricType::Gauge,
    )?)?;
    let counters: [(&str, &str, u64); 3] = [
        (
            "shaddock_tls_handshakes",
            "TLS handshakes completed on the client listeners.",
            stats.sum(|r| r.tls.handshakes),
        ),
        (
            "shaddock_tls_failures",
            "TLS connections that failed (a bad or unfinished handshake, an unauthenticated record, a fatal alert).",
            stats.sum(|r| r.tls.failures),
        ),
        (
            "shaddock_tls_refused",
            "Connections closed unanswered: plain where TLS is required, or past the handshake cap.",
            stats.sum(|r| r.tls.refused),
        ),
    ];
    for (name, help, value) in counters {
        let counter = ConstCounter::new(value);
        counter.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)?;
    }
    Ok(())
}

/// The reactors' receive-buffer rings and sends in flight, for reactors whose backend has a
/// ring (nothing on epoll).
fn encode_ring_gauges(stats: &Snapshot, encoder: &mut DescriptorEncoder) -> fmt::Result {
    if stats.reactors.iter().all(|r| r.ring.is_none()) {
        return Ok(());
    }
    // Every reactor has a ring then; one that has not published yet shows zeros.
    let rings: Vec<RingSnapshot> =
        stats.reactors.iter().map(|r| r.ring.unwrap_or_default()).collect();
    let mut family = encoder.encode_descriptor(
        "shaddock_recv_buffers",
        "io_uring receive buffers by reactor: in the ring for the kernel (free) or lent.",
        None,
        MetricType::Gauge,
    )?;
    for (core, ring) in rings.iter().enumerate() {
        let reactor = core.to_string();
        let free = ring.recv_buffers_free;
        for (state, value) in [("free", free), ("lent", ring.recv_buffers - free)] {
            let labels = [("reactor", reactor.as_str()), ("state", state)];
            ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
        }
    }
    per_reactor(
        encoder,
        ("shaddock_recv_buffer_exhaustions", MetricType::Counter),
        "io_uring receives that found the buffer ring empty (ENOBUFS) and were re-armed.",
        rings.iter().map(|ring| ring.recv_buffer_exhaustions),
    )?;
    per_reactor(
        encoder,
        ("shaddock_sends_in_flight", MetricType::Gauge),
        "io_uring sends handed to the kernel (or being collected) whose completion has not come.",
        rings.iter().map(|ring| ring.sends_in_flight),
    )
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

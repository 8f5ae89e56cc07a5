//! `GET /metrics` is Prometheus (OpenMetrics) text whose numbers move as the server works:
//! connections by transport and reactor, accepted and closed, handshakes, joins and leaves,
//! pushes by source, deliveries and bytes written, kicks by reason, write queues and RSS.
//!
//! Counters are bumped by the reactors after the client saw the effect, so the test polls the
//! scrape (bounded) until a number is reached, and then checks it stays exact.

mod common;

use std::net::SocketAddr;

use common::http;
use common::metrics::Scrape;
use common::pomelo::DATA;
use common::ws::WsPomeloClient;
use common::{DEMO, DEMO_SECRET, IO_TIMEOUT, management, start, test_config, wait_until};
use serde_json::json;

/// Polls the scrape until `name{labels}` is `want`, failing with the last scrape after a bound.
fn wait_for(control: SocketAddr, name: &str, labels: &[(&str, &str)], want: f64) {
    let mut last = f64::NAN;
    wait_until(&format!("{name}{labels:?} == {want}"), IO_TIMEOUT, || {
        last = Scrape::take(control).sum(name, labels);
        last == want
    });
}

#[test]
fn metrics_move_with_connections_pushes_and_kicks() {
    let mut config = test_config(2);
    config.client.max_package_bytes = 1024;
    let server = start(config);
    let (addr, control) = (server.client_addr(), server.control_addr());

    let first = Scrape::take(control);
    assert!(first.text.contains("# TYPE shaddock_connections gauge"), "{}", first.text);
    assert!(first.text.contains("# TYPE shaddock_kicks counter"), "{}", first.text);
    assert!(first.text.trim_end().ends_with("# EOF"), "{}", first.text);
    for name in [
        "shaddock_connections_accepted_total",
        "shaddock_connections_closed_total",
        "shaddock_handshakes_total",
        "shaddock_joins_total",
        "shaddock_leaves_total",
        "shaddock_deliveries_total",
        "shaddock_bytes_written_total",
        "shaddock_write_queue_bytes",
    ] {
        assert_eq!(first.sum(name, &[]), 0.0, "{name} of an idle server");
    }
    for reactor in ["0", "1"] {
        for transport in ["tcp", "websocket", "opening"] {
            let labels = [("transport", transport), ("reactor", reactor)];
            assert_eq!(first.sum("shaddock_connections", &labels), 0.0);
        }
    }
    for reason in ["heartbeat", "replaced", "slow", "protocol", "too_large", "shutdown", "attack"] {
        assert_eq!(first.sum("shaddock_kicks_total", &[("reason", reason)]), 0.0, "{reason}");
    }
    for source in ["socket", "http"] {
        assert_eq!(first.sum("shaddock_pushes_total", &[("source", source)]), 0.0, "{source}");
    }
    let rss = first.sum("process_resident_memory_bytes", &[]);
    assert!(rss > 1_000_000.0, "resident memory {rss}");

    // Three connections: two TCP (a client and management), one WebSocket client.
    let mut alice = common::client(addr, DEMO, "alice");
    let mut bob = WsPomeloClient::connect(addr);
    assert_eq!(bob.enter_client(DEMO, "bob")["code"], 200);
    let (mut admin, _) = management(addr, DEMO, DEMO_SECRET);
    wait_for(control, "shaddock_connections", &[("transport", "tcp")], 2.0);
    wait_for(control, "shaddock_connections", &[("transport", "websocket")], 1.0);
    let scrape = Scrape::take(control);
    assert_eq!(scrape.sum("shaddock_connections", &[("transport", "opening")]), 0.0);
    assert_eq!(scrape.sum("shaddock_connections_accepted_total", &[]), 3.0);
    assert_eq!(scrape.sum("shaddock_handshakes_total", &[]), 3.0);
    assert_eq!(scrape.sum("shaddock_joins_total", &[]), 2.0);
    let written_before_pushes = scrape.sum("shaddock_bytes_written_total", &[]);
    assert!(written_before_pushes > 0.0);

    // One push over HTTP and one from the management session, each to both clients.
    let msg = "m".repeat(500);
    let body = json!({ "msg": msg }).to_string();
    let response = http::post_json(control, "/api/apps/demo/push", Some(DEMO_SECRET), &body);
    assert_eq!(response.json(), json!({"recipients": 2}));
    assert_eq!(admin.push_all(DEMO, json!(msg))["recipients"], 2);
    for _ in 0..2 {
        assert_eq!(alice.next_push(), ("onMsg".into(), json!({ "msg": msg })));
        assert_eq!(bob.next_push(), ("onMsg".into(), json!({ "msg": msg })));
    }
    wait_for(control, "shaddock_deliveries_total", &[], 4.0);
    let scrape = Scrape::take(control);
    assert_eq!(scrape.sum("shaddock_pushes_total", &[("source", "http")]), 1.0);
    assert_eq!(scrape.sum("shaddock_pushes_total", &[("source", "socket")]), 1.0);
    let written = scrape.sum("shaddock_bytes_written_total", &[]) - written_before_pushes;
    assert!(written >= 4.0 * 500.0, "4 pushes of 500 bytes each, {written} bytes written");
    wait_for(control, "shaddock_write_queue_bytes", &[], 0.0);

    // Kicks: alice is replaced by a second "alice"; a package over the limit is kicked.
    let _alice2 = common::client(addr, DEMO, "alice");
    assert_eq!(alice.expect_kick(), "replaced");
    let mut big = common::client(addr, DEMO, "big");
    big.send_bytes(&[DATA, 0x00, 0x08, 0x00]);
    assert_eq!(big.expect_kick(), "package too large");
    // The server half-closes after a kick and counts the close once the client closes too.
    drop((alice, big));
    wait_for(control, "shaddock_kicks_total", &[("reason", "replaced")], 1.0);
    wait_for(control, "shaddock_kicks_total", &[("reason", "too_large")], 1.0);
    wait_for(control, "shaddock_connections_closed_total", &[], 2.0);
    let scrape = Scrape::take(control);
    assert_eq!(scrape.sum("shaddock_kicks_total", &[]), 2.0);
    assert_eq!(scrape.sum("shaddock_connections_accepted_total", &[]), 5.0);
    assert_eq!(scrape.sum("shaddock_joins_total", &[]), 4.0);
    assert_eq!(scrape.sum("shaddock_leaves_total", &[]), 2.0);
    // Management and the second alice; the first alice and "big" were kicked.
    assert_eq!(scrape.sum("shaddock_connections", &[("transport", "tcp")]), 2.0);
    // Per app: both kicks were of demo's clients; alice (the second) and bob are online, one
    // management session, the two pushes.
    let app = [("app", DEMO)];
    assert_eq!(scrape.sum("shaddock_app_kicks_total", &app), 2.0);
    assert_eq!(scrape.sum("shaddock_app_clients", &app), 2.0);
    assert_eq!(scrape.sum("shaddock_app_managers", &app), 1.0);
    assert_eq!(scrape.sum("shaddock_app_pushes_total", &app), 2.0);
    // A fan-out per broadcast batch on each core with members: the two pushes, on one or two
    // cores, in one batch or two.
    let fanouts = scrape.sum("shaddock_push_fanout_seconds_count", &[]);
    assert!((1.0..=4.0).contains(&fanouts), "{fanouts} fan-outs of 2 pushes\n{}", scrape.text);
    let inf = scrape.sum("shaddock_push_fanout_seconds_bucket", &[("le", "+Inf")]);
    assert_eq!(inf, fanouts, "the +Inf bucket holds every fan-out");

    // A close by the client lowers the gauge and counts a close and a leave.
    drop(bob);
    wait_for(control, "shaddock_connections", &[("transport", "websocket")], 0.0);
    wait_for(control, "shaddock_connections_closed_total", &[], 3.0);
    wait_for(control, "shaddock_leaves_total", &[], 3.0);
}

#[test]
fn the_process_its_build_cpu_and_file_descriptors_are_on_the_scrape() {
    let server = start(test_config(1));
    let scrape = Scrape::take(server.control_addr());
    let build = [("version", env!("CARGO_PKG_VERSION")), ("commit", shaddock::COMMIT)];
    assert_eq!(scrape.sum("shaddock_build_info", &build), 1.0);
    let open = scrape.sum("process_open_fds", &[]);
    let max = scrape.sum("process_max_fds", &[]);
    assert!(open >= 3.0 && open < max, "open {open}, max {max}");
    // (The count is the whole test process's, whose other tests open and close sockets at the
    // same time: only its bounds are checked here.)
    let later = Scrape::take(server.control_addr());
    // Ticks of 10 ms: a test process may not have used one yet.
    assert!(later.text.contains("\nprocess_cpu_seconds_total "), "{}", later.text);
}

#[test]
fn requests_are_counted_by_route_pattern_and_status() {
    let server = start(test_config(1));
    let control = server.control_addr();
    let push = format!("/api/apps/{DEMO}/push");
    let wrong = common::http::post_json(control, &push, Some("wrong-secret"), r#"{"msg":1}"#);
    assert_eq!(wrong.status, 401);
    let right = common::http::post_json(control, &push, Some(DEMO_SECRET), r#"{"msg":1}"#);
    assert_eq!(right.status, 200);
    assert_eq!(common::http::get(control, "/no/such/path", None).status, 404);
    let unknown_app = common::http::post_json(control, "/api/apps/nope/push", None, "{}");
    assert_eq!(unknown_app.status, 404);
    let scrape = Scrape::take(control);
    let count = |route: &str, status: &str| {
        scrape.sum("shaddock_http_requests_total", &[("route", route), ("status", status)])
    };
    assert_eq!(count("/api/apps/{apikey}/push", "401"), 1.0, "{}", scrape.text);
    assert_eq!(count("/api/apps/{apikey}/push", "200"), 1.0);
    assert_eq!(count("/api/apps/{apikey}/push", "404"), 1.0, "the pattern, not the path");
    assert_eq!(count("unmatched", "404"), 1.0);
}

//! io_uring: connect, push, disconnect, over and over, leaks no receive buffer, no send and no
//! frame: the buffer ring ends as full as it started, no send is left in flight (both as the
//! reactors count them and as `/metrics` shows them), and the process's resident memory after
//! the warm-up rounds does not grow with more rounds. Half the clients close without reading, so
//! their sends and receives are cancelled mid-flight.

mod common;

use std::time::Duration;

use common::metrics::Scrape;
use common::{DEMO, DEMO_SECRET, PomeloClient, management, start, test_config, wait_until};
use serde_json::json;
use shaddock::config::BackendChoice;
use shaddock::reactor::sys::{Backend, RING_BUFFERS, probe_io_uring};

const ROUNDS: usize = 10;
/// Rounds after which the allocator has grown to what one round needs.
const WARM_UP_ROUNDS: usize = 2;
const CLIENTS: usize = 40;
const PUSHES: usize = 3;
/// Large messages, so that some sends are partial or still in flight at the close, and so that
/// a leak shows in the resident memory: one leaked frame per round after the warm-up is 1 MiB.
const MSG_BYTES: usize = 128 * 1024;
/// Resident memory the process may gain from the end of the warm-up to the end: leaking every
/// frame would add `(ROUNDS - WARM_UP_ROUNDS) * PUSHES * MSG_BYTES` = 3 MiB.
const RSS_SLACK: u64 = 1024 * 1024;

/// The `onAdd` and `onLeave` pushes the management session heard.
#[derive(Debug, Default)]
struct Heard {
    adds: usize,
    leaves: usize,
}

impl Heard {
    fn count(&mut self, pushes: Vec<(String, serde_json::Value)>) {
        for (route, body) in pushes {
            match route.as_str() {
                "onAdd" => self.adds += 1,
                "onLeave" => self.leaves += 1,
                _ => panic!("the management session got {route} {body}"),
            }
        }
    }
}

/// This process's resident memory (the server runs in it), from `VmRSS` in `/proc/self/status`.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).expect("VmRSS");
    kb.trim().trim_end_matches("kB").trim().parse::<u64>().expect("VmRSS in kB") * 1024
}

#[test]
fn churn_ends_with_the_buffer_ring_as_it_started() {
    if let Err(e) = probe_io_uring() {
        eprintln!("skipped: io_uring is not available here ({e})");
        return;
    }
    let mut config = test_config(2);
    config.backend = BackendChoice::IoUring;
    config.client.max_package_bytes = 2 * MSG_BYTES;
    config.client.max_pending_bytes = 8 * MSG_BYTES;
    let server = start(config);
    assert_eq!(server.backend(), Backend::IoUring);
    let addr = server.client_addr();

    // The gauges are published by each reactor about once a second.
    let total = 2 * u64::from(RING_BUFFERS);
    // The rings' gauges summed over the reactors: (buffers, free, sends in flight).
    let ring_stats = || {
        let ring = server.stats().ring().unwrap_or_default();
        (ring.recv_buffers, ring.recv_buffers_free, ring.sends_in_flight)
    };
    wait_until("both rings' gauges are published", Duration::from_secs(5), || {
        let (t, free, _) = ring_stats();
        t == total && free == total
    });
    let (_, start_free, start_sends) = ring_stats();
    assert_eq!((start_free, start_sends), (total, 0));

    let (mut admin, _) = management(addr, DEMO, DEMO_SECRET);
    let mut heard = Heard::default();
    let mut warm_rss = 0;
    for round in 0..ROUNDS {
        if round == WARM_UP_ROUNDS {
            warm_rss = resident_bytes();
        }
        let mut clients: Vec<PomeloClient> = (0..CLIENTS)
            .map(|i| common::client(addr, DEMO, &format!("churn-{round}-{i}")))
            .collect();
        for p in 0..PUSHES {
            let msg = format!("round {round} push {p} {}", "x".repeat(MSG_BYTES));
            let response = admin.push_all(DEMO, json!(msg));
            assert_eq!(response["recipients"], CLIENTS, "{response}");
        }
        for (i, mut client) in clients.drain(..).enumerate() {
            if i % 2 == 0 {
                for p in 0..PUSHES {
                    let (_, body) = client.next_push();
                    assert!(
                        body["msg"]
                            .as_str()
                            .unwrap()
                            .starts_with(&format!("round {round} push {p} "))
                    );
                }
            }
            drop(client); // the odd ones close with their pushes unread
        }
        heard.count(admin.take_pushes());
    }
    wait_until("every churned connection is closed", Duration::from_secs(10), || {
        server.connections_per_reactor().iter().sum::<u64>() == 1
    });
    // The management session heard every onAdd and onLeave.
    while heard.leaves < ROUNDS * CLIENTS {
        let push = admin.next_push();
        heard.count(vec![push]);
    }
    assert_eq!((heard.adds, heard.leaves), (ROUNDS * CLIENTS, ROUNDS * CLIENTS));
    wait_until("the buffer ring is as full as it started", Duration::from_secs(10), || {
        let (t, free, sends) = ring_stats();
        t == total && free == start_free && sends == 0
    });
    let rss = resident_bytes();
    assert!(
        rss <= warm_rss + RSS_SLACK,
        "resident memory grew by {} KiB over {} rounds after the warm-up",
        (rss - warm_rss) / 1024,
        ROUNDS - WARM_UP_ROUNDS
    );
    assert_eq!(admin.push_all(DEMO, json!("after the churn"))["recipients"], 0);

    // Operators see the same on `/metrics`.
    let scrape = Scrape::take(server.control_addr());
    for reactor in ["0", "1"] {
        let gauge = |name: &str, state: Option<&str>| {
            let mut labels = vec![("reactor", reactor)];
            labels.extend(state.map(|s| ("state", s)));
            scrape.sum(name, &labels)
        };
        let (free, lent) = (
            gauge("shaddock_recv_buffers", Some("free")),
            gauge("shaddock_recv_buffers", Some("lent")),
        );
        assert_eq!((free, lent), (f64::from(RING_BUFFERS), 0.0), "reactor {reactor}");
        assert_eq!(gauge("shaddock_sends_in_flight", None), 0.0, "reactor {reactor}");
        gauge("shaddock_recv_buffer_exhaustions_total", None); // present, whatever its value
    }
}

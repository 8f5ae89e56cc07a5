//! io_uring: connect, push, disconnect, over and over, leaks no receive buffer and no send: the
//! buffer ring ends as full as it started and no send is left in flight. Half the clients close
//! without reading, so their sends and receives are cancelled mid-flight.

mod common;

use std::time::Duration;

use common::{DEMO, DEMO_SECRET, PomeloClient, management, start, test_config, wait_until};
use serde_json::json;
use shaddock::config::Backend;
use shaddock::reactor::sys::{Kind, RING_BUFFERS, probe_io_uring};

const ROUNDS: usize = 6;
const CLIENTS: usize = 60;
const PUSHES: usize = 3;

#[test]
fn churn_ends_with_the_buffer_ring_as_it_started() {
    if let Err(e) = probe_io_uring() {
        eprintln!("skipped: io_uring is not available here ({e})");
        return;
    }
    let mut config = test_config(2);
    config.backend = Backend::IoUring;
    let server = start(config);
    assert_eq!(server.backend(), Kind::IoUring);
    let addr = server.client_addr();

    // The gauges are published by each reactor about once a second.
    let total = 2 * u64::from(RING_BUFFERS);
    wait_until("both rings' gauges are published", Duration::from_secs(5), || {
        let (t, free, _, _) = server.ring_stats();
        t == total && free == total
    });
    let (_, start_free, _, start_sends) = server.ring_stats();
    assert_eq!((start_free, start_sends), (total, 0));

    let (mut admin, _) = management(addr, DEMO, DEMO_SECRET);
    for round in 0..ROUNDS {
        let mut clients: Vec<PomeloClient> = (0..CLIENTS)
            .map(|i| common::client(addr, DEMO, &format!("churn-{round}-{i}")))
            .collect();
        for p in 0..PUSHES {
            // A long message, so that some sends are partial or still in flight at the close.
            let msg = format!("round {round} push {p} {}", "x".repeat(8 * 1024));
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
    }
    wait_until("every churned connection is closed", Duration::from_secs(10), || {
        server.connections_per_reactor().iter().sum::<u64>() == 1
    });
    wait_until("the buffer ring is as full as it started", Duration::from_secs(10), || {
        let (t, free, _, sends) = server.ring_stats();
        t == total && free == start_free && sends == 0
    });
    // The management session heard every onAdd and onLeave; it still works.
    assert_eq!(admin.push_all(DEMO, json!("after the churn"))["recipients"], 0);
}

//! A client that stops heartbeating is kicked with reason "heartbeat timeout" after 2 x heartbeat
//! (or `heartbeat_timeout_secs`); one that keeps heartbeating stays, and every heartbeat is
//! answered at once.

mod common;

use std::time::{Duration, Instant};

use common::{DEMO, DEMO_SECRET, management, start, test_config, wait_until};
use serde_json::json;

#[test]
fn silent_client_is_kicked_after_twice_the_heartbeat() {
    let mut config = test_config(2);
    config.client.heartbeat_secs = 1;
    config.client.heartbeat_timeout_secs = None;
    let server = start(config);

    let mut silent = common::client(server.client_addr(), DEMO, "silent");
    let since_ack = Instant::now();
    assert_eq!(silent.heartbeat_secs(), Some(1), "{}", silent.handshake_response());

    assert_eq!(silent.expect_kick(), "heartbeat timeout");
    let waited = since_ack.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "kicked too early, after {waited:?} (deadline 2 s)"
    );
    assert!(waited <= Duration::from_secs(5), "kicked too late, after {waited:?} (deadline 2 s)");
    wait_until("the kick is counted", Duration::from_secs(5), || {
        server.kicks_total("heartbeat timeout") == 1
    });
}

#[test]
fn heartbeating_client_stays_and_every_heartbeat_is_answered_at_once() {
    let mut config = test_config(2);
    config.client.heartbeat_secs = 1;
    config.client.heartbeat_timeout_secs = None;
    let server = start(config);
    let addr = server.client_addr();

    let mut alive = common::client(addr, DEMO, "alive");
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(4500) {
        // The client paces its own heartbeats; the server says nothing unprompted meanwhile.
        alive.expect_quiet_for(Duration::from_millis(500));
        let sent = Instant::now();
        alive.heartbeat();
        let rtt = sent.elapsed();
        assert!(rtt < Duration::from_millis(500), "heartbeat answered after {rtt:?}, not at once");
    }

    // Still online and in the channel, well past the 2 s deadline.
    let (mut admin, _) = management(addr, DEMO, DEMO_SECRET);
    let response = admin.push_all(DEMO, json!("still here"));
    assert_eq!(response["recipients"], 1, "{response}");
    assert_eq!(alive.next_push(), ("onMsg".into(), json!({"msg": "still here"})));
    assert_eq!(server.kicks_total("heartbeat timeout"), 0);
}

#[test]
fn heartbeat_timeout_secs_overrides_twice_the_heartbeat() {
    let mut config = test_config(2);
    config.client.heartbeat_secs = 1;
    config.client.heartbeat_timeout_secs = Some(4);
    let server = start(config);

    let mut silent = common::client(server.client_addr(), DEMO, "silent");
    let since_ack = Instant::now();
    assert_eq!(silent.heartbeat_secs(), Some(1), "{}", silent.handshake_response());
    assert_eq!(silent.expect_kick(), "heartbeat timeout");
    let waited = since_ack.elapsed();
    assert!(
        waited >= Duration::from_millis(3500),
        "kicked after {waited:?}: the deadline is 4 s, not 2 s"
    );
    assert!(waited <= Duration::from_secs(7), "kicked too late, after {waited:?} (deadline 4 s)");
}

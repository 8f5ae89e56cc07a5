//! A connection that does not finish the handshake (handshake and ack) within
//! `handshake_timeout_secs` is closed, without a kick: it never became a working connection.

mod common;

use std::time::{Duration, Instant};

use common::{PomeloClient, TestServer, start, test_config};

fn server() -> TestServer {
    let mut config = test_config(2);
    config.client.handshake_timeout_secs = 1;
    start(config)
}

/// Waits for the close and checks it came at the 1 s deadline, not at once and not much later.
fn assert_closed_at_deadline(conn: &mut PomeloClient, connected: Instant) {
    conn.expect_eof();
    let waited = connected.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "closed too early, after {waited:?} (deadline 1 s)"
    );
    assert!(
        waited <= Duration::from_millis(3500),
        "closed too late, after {waited:?} (deadline 1 s)"
    );
}

#[test]
fn silent_connection_is_closed_at_the_deadline() {
    let server = server();
    let connected = Instant::now();
    let mut conn = PomeloClient::connect_raw(server.client_addr());
    assert_closed_at_deadline(&mut conn, connected);
    // Counted as a handshake timeout (the closed connection, not the scrape's).
    let scrape = common::metrics::Scrape::take(server.control_addr());
    assert_eq!(scrape.sum("shaddock_handshake_timeouts_total", &[]), 1.0, "{}", scrape.text);
}

#[test]
fn half_a_handshake_is_closed_at_the_deadline() {
    let server = server();
    let connected = Instant::now();
    let mut conn = PomeloClient::connect_raw(server.client_addr());
    let handshake = common::pomelo::encode_package(
        common::pomelo::HANDSHAKE,
        common::HANDSHAKE_BODY.as_bytes(),
    );
    conn.send_bytes(&handshake[..handshake.len() / 2]);
    assert_closed_at_deadline(&mut conn, connected);
}

#[test]
fn handshake_without_ack_is_closed_at_the_deadline() {
    let server = server();
    let connected = Instant::now();
    let mut conn = PomeloClient::connect_raw(server.client_addr());
    conn.send_handshake();
    conn.read_handshake_response();
    assert_closed_at_deadline(&mut conn, connected);
}

#[test]
fn completed_handshake_outlives_the_deadline() {
    let server = server();
    let mut conn = PomeloClient::connect(server.client_addr());
    conn.expect_quiet_for(Duration::from_millis(2500));
    conn.heartbeat();
}

//! A package whose declared length is over `max_package_bytes` is refused as soon as its 4-byte
//! header arrives: kick "package too large" and close, without waiting for (or buffering) the body.

mod common;

use std::time::Duration;

use common::pomelo::{DATA, HANDSHAKE, encode_request};
use common::{
    DEMO, DEMO_SECRET, PUSH_ALL, PomeloClient, TestServer, management, start, test_config,
    wait_until,
};
use serde_json::json;

fn server() -> TestServer {
    let mut config = test_config(2);
    config.client.max_package_bytes = 1024;
    // Far beyond the client's read timeout, so a close can only come from the size check.
    config.client.handshake_timeout_secs = 30;
    start(config)
}

#[test]
fn oversize_header_is_kicked_before_its_body() {
    let server = server();
    let mut conn = common::client(server.client_addr(), DEMO, "big");
    // A DATA package declaring 2048 bytes of body; the body is never sent.
    conn.send_bytes(&[DATA, 0x00, 0x08, 0x00]);
    assert_eq!(conn.expect_kick(), "package too large");
    wait_until("the kick is counted", Duration::from_secs(5), || {
        server.kicks_total("package too large") == 1
    });
}

#[test]
fn package_under_the_limit_is_accepted() {
    let server = server();
    let addr = server.client_addr();
    let mut c = common::client(addr, DEMO, "reader");
    let (mut admin, _) = management(addr, DEMO, DEMO_SECRET);

    // A pushAll request whose message is exactly 1000 bytes (package 1004).
    let body_for = |msg: &str| json!({"apikey": DEMO, "msg": msg}).to_string();
    let overhead = encode_request(1, PUSH_ALL, body_for("").as_bytes()).len();
    let msg = "x".repeat(1000 - overhead);
    assert_eq!(encode_request(1, PUSH_ALL, body_for(&msg).as_bytes()).len(), 1000);

    let response = admin.request_bytes(PUSH_ALL, body_for(&msg).as_bytes());
    assert_eq!(response["code"], 200, "{response}");
    assert_eq!(c.next_push(), ("onMsg".into(), json!({"msg": msg})));
    assert_eq!(server.kicks_total("package too large"), 0);
}

#[test]
fn oversize_handshake_is_closed_at_once() {
    let server = server();
    let mut conn = PomeloClient::connect_raw(server.client_addr());
    conn.send_bytes(&[HANDSHAKE, 0x00, 0x08, 0x00]);
    // Not yet a working connection, so a kick is optional; the close is not.
    let drained = conn.drain_to_close();
    assert!(drained.pushes.is_empty(), "{drained:?}");
    if let Some(reason) = &drained.kick {
        assert_eq!(reason, "package too large");
    }
}

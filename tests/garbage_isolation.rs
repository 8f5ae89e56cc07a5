//! Connections that send garbage are closed (working ones kicked with a "protocol error: ..."
//! reason), and the healthy clients around them keep receiving pushes.

mod common;

use common::pomelo::{DATA, KICK, encode_package, encode_request};
use common::{DEMO, DEMO_SECRET, ENTER, PomeloClient, management, start, test_config};
use serde_json::json;

const HEALTHY: usize = 50;

/// Deterministic pseudo-random bytes (xorshift64), so a failure can be replayed.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Garbage whose first byte is not a package type (0xee), so the server can judge it at once.
fn random_garbage(seed: u64) -> Vec<u8> {
    let mut bytes = random_bytes(seed, 64);
    bytes[0] = 0xee;
    bytes
}

fn assert_kicked_for_protocol_error(conn: &mut PomeloClient, what: &str) {
    let reason = conn.expect_kick();
    assert!(
        reason.starts_with("protocol error"),
        "{what}: kicked with {reason:?}, not a protocol error"
    );
}

fn assert_closed(conn: &mut PomeloClient, what: &str) {
    let drained = conn.drain_to_close();
    assert!(drained.pushes.is_empty(), "{what}: {drained:?}");
    if let Some(reason) = &drained.kick {
        assert!(reason.starts_with("protocol error"), "{what}: kicked with {reason:?}");
    }
}

#[test]
fn garbage_connections_are_closed_and_healthy_clients_unaffected() {
    let mut config = test_config(2);
    // Far beyond the client's read timeout, so a close can only come from the garbage.
    config.client.handshake_timeout_secs = 30;
    let server = start(config);
    let addr = server.client_addr();

    let mut healthy: Vec<PomeloClient> =
        (0..HEALTHY).map(|i| common::client(addr, DEMO, &format!("healthy-{i}"))).collect();
    let (mut admin, _) = management(addr, DEMO, DEMO_SECRET);

    // Working connections (handshake done, entered) that then misbehave.
    let working: Vec<(&str, Vec<u8>)> = vec![
        ("unknown package type 9", vec![0x09, 0x00, 0x00, 0x00]),
        ("a kick package from the client", encode_package(KICK, br#"{"reason":"bye"}"#)),
        ("random bytes", random_garbage(0x5eed_0001)),
    ];
    for (i, (what, bytes)) in working.iter().enumerate() {
        let mut conn = common::client(addr, DEMO, &format!("garbage-{i}"));
        conn.send_bytes(bytes);
        assert_kicked_for_protocol_error(&mut conn, what);
    }

    // Connections that never finished the handshake: closed (a kick is optional).
    let data_first = encode_package(
        DATA,
        &encode_request(
            1,
            ENTER,
            json!({"role": "client", "apikey": DEMO, "clientId": "early"}).to_string().as_bytes(),
        ),
    );
    let unshaken: Vec<(&str, Vec<u8>)> = vec![
        ("unknown package type 9 before the handshake", vec![0x09, 0x00, 0x00, 0x00]),
        ("a data package before the handshake", data_first),
        ("random bytes before the handshake", random_garbage(0x5eed_0002)),
    ];
    for (what, bytes) in &unshaken {
        let mut conn = PomeloClient::connect_raw(addr);
        conn.send_bytes(bytes);
        assert_closed(&mut conn, what);
    }

    // A data package after the handshake but before the ack: not working yet either.
    let mut conn = PomeloClient::connect_raw(addr);
    conn.send_handshake();
    conn.read_handshake_response();
    conn.send_bytes(&random_garbage(0x5eed_0003));
    assert_closed(&mut conn, "random bytes between handshake and ack");

    let response = admin.push_all(DEMO, json!("after the garbage"));
    assert_eq!(response["code"], 200, "{response}");
    assert_eq!(response["recipients"], HEALTHY, "only the healthy clients remain: {response}");
    for c in &mut healthy {
        assert_eq!(
            c.next_push(),
            ("onMsg".into(), json!({"msg": "after the garbage"})),
            "[{}]",
            c.label()
        );
    }
}

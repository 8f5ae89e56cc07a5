//! A client that resets its connection in the middle of a package (a Pomelo package, a WebSocket
//! upgrade head or frame, an MQTT packet): only that connection goes, its partial input is freed,
//! and everyone else is served as before.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{DEMO, DEMO_SECRET, start, test_config, wait_until};
use serde_json::json;

/// Sends `bytes`, then resets the connection (RST: linger 0), without reading anything.
fn send_then_reset(addr: std::net::SocketAddr, bytes: &[u8]) {
    let stream = TcpStream::connect(addr).unwrap();
    (&stream).write_all(bytes).unwrap();
    socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    drop(stream);
}

#[test]
fn a_reset_mid_package_ends_only_its_own_connection() {
    let server = start(test_config(2));
    let addr = server.client_addr();
    let (mut manager, _) = common::management(addr, DEMO, DEMO_SECRET);
    let mut phone = common::client(addr, DEMO, "phone");
    let cuts: [&[u8]; 5] = [
        // A Pomelo handshake package cut after its header and a few bytes of body.
        b"\x01\x00\x00\x40{\"sys\":",
        // A WebSocket upgrade head cut in a header line.
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: webso",
        // An MQTT CONNECT cut inside its protocol name.
        b"\x10\x17\x00\x04MQ",
        // A Pomelo package whose length says more than ever comes.
        b"\x04\x00\xff\xff\x00\x01",
        // Nothing at all.
        b"",
    ];
    for _ in 0..20 {
        for cut in cuts {
            send_then_reset(addr, cut);
        }
    }
    wait_until("the reset connections to go", Duration::from_secs(10), || {
        server.stats().sum(|r| r.connections()) == 2
    });
    assert_eq!(manager.push_all(DEMO, json!("after the resets"))["recipients"], 1);
    assert_eq!(phone.next_push().1, json!({"msg": "after the resets"}));
    assert_eq!(server.stats().sum(|r| r.queued_bytes), 0);
}

//! A burst of pushes reaches every client whole: more frames wait for one connection in a loop
//! turn than one `writev` takes, and all of them leave.
//!
//! Regression: frames past the 64th of one turn were queued although the socket had room, so no
//! writable event ever came and they, and every later push to that client, were never sent.

mod common;

use common::pomelo::{DATA, encode_package, encode_request};
use common::{DEMO, DEMO_SECRET, management, start, test_config};
use serde_json::json;

/// Well past one `writev`'s 64 frames.
const PUSHES: usize = 300;

#[test]
fn pipelined_push_alls_all_arrive_in_order() {
    let server = start(test_config(2));
    let addr = server.client_addr();
    let mut clients: Vec<_> =
        (0..4).map(|i| common::client(addr, DEMO, &format!("burst-{i}"))).collect();
    let (mut admin, _) = management(addr, DEMO, DEMO_SECRET);

    // Every request in one write, so the server handles them in one read and one loop turn.
    let mut burst = Vec::new();
    for i in 0..PUSHES {
        let body = json!({"apikey": DEMO, "msg": format!("burst-{i}")}).to_string();
        let request =
            encode_request(1_000 + i as u64, "pushserver.pushHandler.pushAll", body.as_bytes());
        burst.extend_from_slice(&encode_package(DATA, &request));
    }
    admin.send_bytes(&burst);

    for client in &mut clients {
        for i in 0..PUSHES {
            let (route, body) = client.next_push();
            assert_eq!(route, "onMsg");
            assert_eq!(body, json!({"msg": format!("burst-{i}")}), "push {i} of the burst");
        }
        client.assert_no_pending_push();
    }
}

//! `pushAll` fans one message out to 1,000 WebSocket clients across reactors, exactly once and in
//! order: the WebSocket twin of `push_all_fanout.rs`.

mod common;

use common::ws::{WsPomeloClient, ws_client, ws_management};
use common::{DEMO, DEMO_SECRET, start, test_config};
use serde_json::json;

const CLIENTS: usize = 1000;
const PUSHES: usize = 20;

#[test]
fn push_all_reaches_every_websocket_client_once_in_order_across_reactors() {
    let server = start(test_config(2));
    let addr = server.client_addr();

    let mut clients: Vec<WsPomeloClient> =
        (0..CLIENTS).map(|i| ws_client(addr, DEMO, &format!("wsfan-{i:04}"))).collect();

    // The management session enters after the clients, so it is not sent 1,000 onAdd pushes.
    let (mut admin, entered) = ws_management(addr, DEMO, DEMO_SECRET);
    assert_eq!(entered["count"], CLIENTS, "management enter: count");
    assert_eq!(entered["users"].as_array().map(Vec::len), Some(CLIENTS), "management enter: users");

    let per_reactor = server.connections_per_reactor();
    assert_eq!(per_reactor.len(), 2, "one entry per reactor: {per_reactor:?}");
    assert!(
        per_reactor.iter().all(|&n| n > 0),
        "every reactor holds WebSocket connections: {per_reactor:?}"
    );
    assert_eq!(
        per_reactor.iter().sum::<u64>(),
        CLIENTS as u64 + 1,
        "clients + management: {per_reactor:?}"
    );

    for i in 0..PUSHES {
        let response = admin.push_all(DEMO, json!(format!("wsfan-msg-{i}")));
        assert_eq!(
            response,
            json!({"code": 200, "msg": "push is ok.", "recipients": CLIENTS}),
            "push {i}"
        );
    }

    for c in &mut clients {
        for i in 0..PUSHES {
            let (route, body) = c.next_push();
            assert_eq!(route, "onMsg", "[{}] push {i}", c.label());
            assert_eq!(body, json!({"msg": format!("wsfan-msg-{i}")}), "[{}] push {i}", c.label());
        }
    }
    // Every client's 20 pushes have been read, so anything a client still has is a duplicate.
    for c in &mut clients {
        c.assert_no_pending_push();
    }
    admin.assert_no_pending_push();
}

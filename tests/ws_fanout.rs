//! `pushAll` fans one message out to 1,000 WebSocket clients across reactors, exactly once and in
//! order: the WebSocket twin of `push_all_fanout.rs`.

mod common;

use common::ws::{WsPomeloClient, ws_client, ws_management};
use common::{DEMO, DEMO_SECRET, start, test_config};

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

    common::fanout::assert_fanout(&server, &mut admin, &mut clients, PUSHES, "wsfan-msg");
}

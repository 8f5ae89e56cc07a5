//! A client that stops reading is kicked as "slow" once its queue passes `max_pending_bytes`, and
//! nobody else is slowed down or loses a message.

mod common;

use common::{Closed, DEMO, DEMO_SECRET, management, start, test_config};
use serde_json::json;

/// Enough ~3 KB pushes to fill every kernel buffer on the way to the stalled client (a few MB on
/// loopback) many times over.
const MAX_PUSHES: usize = 3000;
const PAD: usize = 3000;

fn message(i: usize) -> String {
    format!("{i:06} {}", "x".repeat(PAD))
}

fn index_of(msg: &serde_json::Value) -> usize {
    let text = msg.as_str().unwrap_or_else(|| panic!("msg is not a string: {msg}"));
    text[..6]
        .parse()
        .unwrap_or_else(|e| panic!("msg without an index ({e}): {}", &text[..20.min(text.len())]))
}

#[test]
fn stalled_client_is_kicked_slow_and_others_get_everything() {
    let mut config = test_config(2);
    config.client.max_package_bytes = 4096;
    config.client.max_pending_bytes = 16384;
    let server = start(config);
    let addr = server.client_addr();

    let mut stalled = common::client(addr, DEMO, "stalled");
    let mut reader = common::client(addr, DEMO, "reader");
    let (mut admin, _) = management(addr, DEMO, DEMO_SECRET);

    // The reading client takes each push before the next is sent, so its queue never grows and
    // only the stalled client's can.
    let mut sent = 0;
    while sent < MAX_PUSHES && server.kicks_total("slow") == 0 {
        let response = admin.push_all(DEMO, json!(message(sent)));
        assert_eq!(response["code"], 200, "push {sent}: {response}");
        let (route, body) = reader.next_push();
        assert_eq!(route, "onMsg");
        assert_eq!(index_of(&body["msg"]), sent, "the reading client gets every push, in order");
        sent += 1;
    }
    assert_eq!(
        server.kicks_total("slow"),
        1,
        "after {sent} pushes of {PAD} bytes, exactly the stalled client is kicked as slow"
    );

    let response = admin.push_all(DEMO, json!("done"));
    assert_eq!(response["recipients"], 1, "the stalled client has left the channel: {response}");
    assert_eq!(reader.next_push(), ("onMsg".into(), json!({"msg": "done"})));

    // The stalled client, reading at last: an in-order prefix of the pushes, then the end.
    let drained = stalled.drain_to_close();
    assert!(drained.pushes.len() < sent, "the stalled client cannot have been sent everything");
    for (i, (route, body)) in drained.pushes.iter().enumerate() {
        assert_eq!(route, "onMsg");
        assert_eq!(index_of(&body["msg"]), i, "the stalled client's pushes are in order");
    }
    // Like every server-initiated close of a working connection, this one says why (DESIGN §1):
    // a kick "slow" after what was already sent, unless the server reset the connection outright.
    match (&drained.kick, drained.closed) {
        (Some(reason), _) => assert_eq!(reason, "slow"),
        (None, Closed::Reset) => {}
        (None, Closed::Eof) => panic!(
            "the stalled client's stream ended in a plain FIN, neither a kick \"slow\" nor a reset \
             ({} of {sent} pushes, then {} bytes of an unfinished package)",
            drained.pushes.len(),
            drained.trailing_bytes
        ),
    }
}

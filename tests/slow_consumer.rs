//! A client that stops reading is kicked as "slow" once its queue passes `max_pending_bytes`, and
//! nobody else is slowed down or loses a message.

mod common;

use common::stall::{PAD, index_of, push_until_kicked_slow};
use common::{Closed, DEMO, DEMO_SECRET, management, start, test_config};
use serde_json::json;

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

    let sent = push_until_kicked_slow(&server, &mut admin, &mut reader);
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

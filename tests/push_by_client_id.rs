//! `pushByClientId` reaches exactly the named client, and answers 404 for a client that is not
//! online in that app.

mod common;

use common::{
    DEMO, DEMO_SECRET, OTHER, OTHER_SECRET, assert_error, management, start, test_config,
};
use serde_json::json;

#[test]
fn push_by_client_id_reaches_only_that_client() {
    let server = start(test_config(2));
    let addr = server.client_addr();
    let mut a = common::client(addr, DEMO, "alice");
    let mut b = common::client(addr, DEMO, "bob");
    let mut c = common::client(addr, DEMO, "carol");
    let (mut admin, _) = management(addr, DEMO, DEMO_SECRET);

    let response = admin.push_by_client_id(DEMO, "bob", json!("for bob only"));
    assert_eq!(response["code"], 200, "{response}");
    assert_eq!(b.next_push(), ("onMsg".into(), json!({"msg": "for bob only"})));

    // A broadcast after it: whoever was wrongly sent the targeted push would see it first.
    let response = admin.push_all(DEMO, json!("everyone"));
    assert_eq!(response["recipients"], 3, "{response}");
    for client in [&mut a, &mut b, &mut c] {
        assert_eq!(
            client.next_push(),
            ("onMsg".into(), json!({"msg": "everyone"})),
            "[{}]",
            client.label()
        );
        client.assert_no_pending_push();
    }
}

#[test]
fn push_by_client_id_to_unknown_client_is_404() {
    let server = start(test_config(2));
    let addr = server.client_addr();
    let mut a = common::client(addr, DEMO, "alice");
    // Online, but in another app's channel.
    let mut stranger = common::client(addr, OTHER, "stranger");
    let (mut admin, _) = management(addr, DEMO, DEMO_SECRET);

    let response = admin.push_by_client_id(DEMO, "nobody", json!("lost"));
    assert_error(&response, 404);
    assert_eq!(response["msg"], "no such client", "{response}");

    let response = admin.push_by_client_id(DEMO, "stranger", json!("lost"));
    assert_error(&response, 404);

    // The session is still usable, and neither push went anywhere: the next push each client
    // sees is the one sent after them.
    let response = admin.push_by_client_id(DEMO, "alice", json!("found"));
    assert_eq!(response["code"], 200, "{response}");
    assert_eq!(a.next_push(), ("onMsg".into(), json!({"msg": "found"})));
    let (mut other_admin, _) = management(addr, OTHER, OTHER_SECRET);
    let response = other_admin.push_by_client_id(OTHER, "stranger", json!("own app"));
    assert_eq!(response["code"], 200, "{response}");
    assert_eq!(stranger.next_push(), ("onMsg".into(), json!({"msg": "own app"})));
}

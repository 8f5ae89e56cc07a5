//! A second connection with a clientId that is already online replaces the first (kicked
//! "replaced"); with `duplicate = "refuse"` it is refused with Pomelo's `{code:500, msg:"duplicate
//! log in"}` and the first stays.

mod common;

use std::time::Duration;

use common::{DEMO, DEMO_SECRET, PomeloClient, management, start, test_config, wait_until};
use serde_json::json;
use shaddock::config::DuplicatePolicy;

#[test]
fn second_connection_replaces_the_first() {
    let server = start(test_config(2));
    let addr = server.client_addr();
    let (mut admin, _) = management(addr, DEMO, DEMO_SECRET);

    // A chain of replacements, so that with two reactors some old and new connections almost
    // certainly sit on different reactors.
    const ROUNDS: usize = 8;
    let mut current = common::client(addr, DEMO, "phone");
    for round in 1..ROUNDS {
        let next = common::client(addr, DEMO, "phone");
        assert_eq!(current.expect_kick(), "replaced", "round {round}");
        current = next;
    }
    wait_until("the replacements are counted", Duration::from_secs(5), || {
        server.kicks_total("replaced") == ROUNDS as u64 - 1
    });

    let response = admin.push_by_client_id(DEMO, "phone", json!("to the phone"));
    assert_eq!(response["code"], 200, "{response}");
    assert_eq!(current.next_push(), ("onMsg".into(), json!({"msg": "to the phone"})));

    let response = admin.push_all(DEMO, json!("to all"));
    assert_eq!(response["recipients"], 1, "one member, however often it was replaced: {response}");
    assert_eq!(current.next_push(), ("onMsg".into(), json!({"msg": "to all"})));
}

#[test]
fn refuse_policy_keeps_the_first() {
    let mut config = test_config(2);
    config.client.duplicate = DuplicatePolicy::Refuse;
    let server = start(config);
    let addr = server.client_addr();
    let (mut admin, _) = management(addr, DEMO, DEMO_SECRET);

    let mut first = common::client(addr, DEMO, "phone");
    let mut second = PomeloClient::connect(addr);
    let response = second.enter_client(DEMO, "phone");
    assert_eq!(response["code"], 500, "{response}");
    assert_eq!(response["msg"], "duplicate log in", "{response}");

    let response = admin.push_by_client_id(DEMO, "phone", json!("to the first"));
    assert_eq!(response["code"], 200, "{response}");
    assert_eq!(first.next_push(), ("onMsg".into(), json!({"msg": "to the first"})));
    assert_eq!(server.kicks_total("replaced"), 0);

    // Once the first has gone, the clientId is free again, on the same refused connection.
    let (route, body) = admin.next_push();
    assert_eq!((route.as_str(), &body["clientId"]), ("onAdd", &json!("phone")), "{body}");
    drop(first);
    let (route, body) = admin.next_push();
    assert_eq!((route.as_str(), &body["clientId"]), ("onLeave", &json!("phone")), "{body}");
    let response = second.enter_client(DEMO, "phone");
    assert_eq!(response, json!({"code": 200, "msg": "add ok"}));
    let response = admin.push_by_client_id(DEMO, "phone", json!("to the second"));
    assert_eq!(response["code"], 200, "{response}");
    assert_eq!(second.next_push(), ("onMsg".into(), json!({"msg": "to the second"})));
}

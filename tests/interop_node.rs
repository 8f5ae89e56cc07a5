//! The real Pomelo JavaScript client, npm `pomelo-jsclient-websocket` 0.1.1, run unchanged in Node
//! over WebSocket (`tests/interop/pomelo_node.mjs`): management and two clients enter, management
//! sees `onAdd`, `pushAll` reaches both clients in order, an unknown route is a 404, every session
//! outlives 2 x a 1 s heartbeat interval, and a replaced clientId's session sees the kick.

mod common;
#[path = "interop/runner.rs"]
mod runner;

use std::time::Duration;

use common::{DEMO, DEMO_SECRET, start, test_config};
use serde_json::json;

#[test]
fn pomelo_jsclient_in_node_enters_gets_pushes_outlives_heartbeats_and_sees_a_kick() {
    runner::require_node_modules();
    let mut config = test_config(2);
    config.client.heartbeat_secs = 1;
    let server = start(config);
    let port = server.client_addr().port();

    let args = runner::server_args(port, DEMO, DEMO_SECRET, 20000);
    let run = runner::run_script("pomelo_node.mjs", &args, Duration::from_secs(40));
    run.assert_ok();
    let r = &run.result;

    let push_ok = json!({"code": 200, "msg": "push is ok.", "recipients": 2});
    assert_eq!(r["push_all"], json!([push_ok, push_ok, push_ok]), "{r}");
    assert_eq!(r["wrong_route"]["code"], 404, "{r}");
    let received = r["received"].as_object().expect("received");
    assert_eq!(received.len(), 2, "{r}");
    for (client, pushes) in received {
        assert_eq!(pushes.as_array().map(Vec::len), Some(3), "{client}: {r}");
    }
    let heartbeats = r["heartbeat"]["server_heartbeats"].as_array().expect("heartbeat counts");
    assert!(
        heartbeats.iter().all(|n| n.as_u64() >= Some(3)),
        "every session had 3 heartbeat rounds: {r}"
    );
    assert!(r["heartbeat"]["waited_ms"].as_u64() > Some(2000), "the wait spans 2 x heartbeat: {r}");
    for (label, wire) in r["wire"].as_object().expect("wire") {
        assert_eq!(wire["extensions"], "", "{label}: no WebSocket extension is negotiated: {r}");
        assert_eq!(wire["handshake"]["useDict"], true, "{label}: {r}");
        assert_eq!(wire["handshake"]["protos"], false, "{label}: {r}");
    }
    assert_eq!(r["replaced"]["kick"], json!({"reason": "replaced"}), "{r}");
    assert_eq!(r["replaced"]["push_all"]["recipients"], 2, "{r}");
}

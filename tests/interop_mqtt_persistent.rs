//! paho-mqtt (PyPI, pinned in `tests/interop/requirements.txt`, `tests/interop/mqtt_paho.py`)
//! with a persistent session, on 3.1.1 (clean session 0) and 5.0 (clean start 0, a Session
//! Expiry Interval): it subscribes at QoS 1 and disconnects; 10 HTTP pushes are made while it is
//! away; a new connection with the same client identifier is told the session is present and
//! gets all 10, once each, in order, at QoS 1, without subscribing again.
//!
//! This is the MQTT contract's later step (persistent sessions), kept apart from
//! `tests/interop_mqtt.rs` so the rest can land first.

mod common;
#[allow(dead_code)] // only the Python half of the runner runs here
#[path = "interop/runner.rs"]
mod runner;

use std::time::Duration;

use common::{DEMO, DEMO_SECRET, start, test_config};
use serde_json::{Value, json};

fn paho_persistent_session_gets_every_push_made_while_away(version: u8) {
    runner::require_python_packages();
    let server = start(test_config(2));
    let mut args = runner::server_args(server.client_addr().port(), DEMO, DEMO_SECRET, 20000);
    args.extend([
        "--control-port".to_owned(),
        server.control_addr().port().to_string(),
        "--protocol-version".to_owned(),
        version.to_string(),
        "--count".to_owned(),
        "10".to_owned(),
    ]);
    let run = runner::run_python("mqtt_paho.py", &args, Duration::from_secs(40));
    run.assert_ok();
    let r = &run.result;
    assert_eq!(r["first"]["connack"], json!({"session_present": false, "reason_code": 0}), "{r}");
    assert_eq!(r["first"]["granted"], json!([1]), "{r}");
    assert_eq!(r["first"]["received"], json!([]), "{r}");
    assert_eq!(r["answers"].as_array().map(Vec::len), Some(10), "{r}");
    assert_eq!(r["second"]["connack"], json!({"session_present": true, "reason_code": 0}), "{r}");
    let expected: Vec<Value> = (0..10)
        .map(|n| {
            json!({"topic": "push/demo", "payload": format!("{{\"n\":{n}}}"), "qos": 1,
                   "retain": false, "dup": false})
        })
        .collect();
    assert_eq!(r["second"]["received"], json!(expected), "{r}");
}

#[test]
fn paho_3_1_1_persistent_session_gets_every_qos_1_push_made_while_away_once() {
    paho_persistent_session_gets_every_push_made_while_away(4);
}

#[test]
fn paho_5_persistent_session_gets_every_qos_1_push_made_while_away_once() {
    paho_persistent_session_gets_every_push_made_while_away(5);
}

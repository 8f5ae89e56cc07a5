//! pomelo-protobuf with the real Pomelo JavaScript client: npm `pomelo-jsclient-websocket` 0.1.1
//! and `pomelo-protobuf` 0.4.0's client build, unchanged but for one alias in `glue.js`
//! (`protobuf.decodeStr = protobuf.decode`: 0.1.1 calls a function only the Node build of
//! pomelo-protobuf has), against a server configured with `tests/data/protos`:
//! - in Node (`tests/interop/pomelo_protobuf.mjs`): the handshake carries the protos as Pomelo
//!   parses them, with Pomelo's version; requests leave as protobuf, responses and pushes arrive
//!   as protobuf and decode to what the JSON path gives; a client with the protos cached sends
//!   `protoVersion`, gets no protos again, and still decodes;
//! - in headless Chromium (`tests/interop/browser_protobuf.mjs`): the page's client gets the
//!   protos, shows a pushed Notice, and on a second load uses the protos from localStorage.
//!
//! The Notices the real client encodes carry integer fields: its client build keys every
//! `uInt32` / `sInt32` / `int32` field with wire type 2 (`constant.TYPES[type] || 2`; their type
//! code is 0, which is falsy), which Pomelo's decoder, and so shaddock's, ignores.

mod common;
#[path = "interop/runner.rs"]
mod runner;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{DEMO, DEMO_SECRET, TestServer, start, test_config};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";

fn protos_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/protos")
}

/// A server with the test protos, and the arguments that point a script at it (and at the same
/// protos files, which the scripts parse with Pomelo's own parser to check the handshake).
fn server_with_protos(timeout_ms: u64) -> (TestServer, Vec<String>) {
    let mut config = test_config(2);
    config.client.server_protos = Some(protos_dir().join("serverProtos.json"));
    config.client.client_protos = Some(protos_dir().join("clientProtos.json"));
    let server = start(config);
    let port = server.client_addr().port();
    let mut args = runner::server_args(port, DEMO, DEMO_SECRET, timeout_ms);
    let extra = [
        ("--protos-dir", protos_dir().display().to_string()),
        ("--control-port", server.control_addr().port().to_string()),
    ];
    args.extend(extra.into_iter().flat_map(|(flag, value)| [flag.to_string(), value]));
    (server, args)
}

fn push_ok(recipients: u64) -> Value {
    json!({"code": 200, "msg": "push is ok.", "recipients": recipients})
}

#[test]
fn pomelo_jsclient_in_node_speaks_protobuf_with_the_handshake_protos_and_then_the_cached_ones() {
    runner::require_node_modules();
    let (_server, args) = server_with_protos(20000);
    let run = runner::run_script("pomelo_protobuf.mjs", &args, Duration::from_secs(40));
    run.assert_ok();
    let r = &run.result;

    let hs = &r["handshake"];
    assert_eq!(hs["useProto"], true, "{r}");
    assert_eq!(hs["protos_keys"], json!(["server", "client", "version"]), "{r}");
    assert_eq!(hs["version"], hs["pomelo_version"], "the version is Pomelo's: {r}");
    assert_eq!(hs["sent_protoVersion"], 0, "nothing cached at first: {r}");

    assert_eq!(r["client_enter"], json!({"code": 200, "msg": "add ok"}), "{r}");
    assert_eq!(r["push_all"], push_ok(1), "{r}");
    assert_eq!(r["push_by_client_id"], push_ok(1), "{r}");
    let notice = &r["on_msg"]["msg"];
    assert!(notice["title"].as_str().is_some_and(|t| t.contains("— näh")), "{r}");
    assert!(notice["body"].as_str().is_some_and(|t| t.contains("中文")), "{r}");
    assert_eq!(notice["ids"], json!([1, 300, 70000]), "{r}");
    assert_eq!(notice["badge"], 3, "{r}");
    assert_eq!(r["http_push"]["status"], 200, "{r}");
    assert_eq!(r["on_msg_http"]["msg"]["ids"], json!([0, 127, 128, 4294967295u64]), "{r}");
    assert_eq!(r["on_msg_http"]["msg"]["badge"], 42, "{r}");

    for (route, requests) in r["requests_on_wire"].as_object().expect("requests_on_wire") {
        for request in requests.as_array().expect("requests") {
            assert_ne!(request["first_byte"], u64::from(b'{'), "{route} left as JSON: {r}");
        }
    }
    let bytes = &r["on_msg_bytes"];
    let (protobuf, json_len) = (bytes["body_protobuf"].as_u64(), bytes["body_json"].as_u64());
    assert!(protobuf.is_some() && protobuf < json_len, "protobuf is smaller: {r}");

    let cached = &r["cached_handshake"];
    assert_eq!(cached["sent_protoVersion"], hs["version"], "{r}");
    assert_eq!(cached["useProto"], true, "{r}");
    assert_eq!(cached["protos"], false, "a current protoVersion gets no protos: {r}");
    assert_eq!(r["cached_on_msg"].as_array().map(Vec::len), Some(1), "{r}");
    for (label, wire) in r["wire"].as_object().expect("wire") {
        assert_eq!(wire["handshake"]["useProto"], true, "{label}: {r}");
        assert_eq!(wire["extensions"], "", "{label}: {r}");
    }
}

#[test]
fn pomelo_jsclient_in_headless_chromium_shows_a_protobuf_push_and_reuses_the_cached_protos() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's Chromium with `apt-get install chromium` \
         (.ci/run does)"
    );
    runner::require_node_modules();
    let (_server, args) = server_with_protos(45000);
    let run = runner::run_script("browser_protobuf.mjs", &args, Duration::from_secs(75));
    run.assert_ok();
    let r = &run.result;

    let version = r["version"].as_str().expect("version");
    assert_eq!(r["page_enter"]["protos_version"], version, "{r}");
    assert_eq!(r["page_again"]["protos_at_load"], version, "{r}");
    assert_eq!(r["push"]["response"], push_ok(1), "{r}");
    assert_eq!(r["push_again"]["response"], push_ok(1), "{r}");
    let shown = &r["push"]["shown"]["msg"];
    assert!(shown["body"].as_str().is_some_and(|b| b.contains("中文")), "{r}");
    assert_eq!((&shown["ids"], &shown["badge"]), (&json!([1, 300, 70000]), &json!(7)), "{r}");
    let over_http = &r["http_push"]["shown"]["msg"];
    assert_eq!(over_http["ids"], json!([1, 300, 70000]), "{r}");
    assert_eq!(over_http["badge"], 7, "{r}");

    let wire = r["wire"].as_array().expect("wire");
    assert_eq!(wire.len(), 2, "{r}");
    assert_eq!(wire[0]["handshake"]["protos"], true, "{r}");
    assert_eq!(wire[1]["handshake"]["protos"], false, "{r}");
    assert_eq!(wire[1]["sent_protoVersion"], version, "{r}");
    for load in wire {
        assert_eq!(load["handshake"]["useProto"], true, "{r}");
        assert_eq!(load["on_msg"][0]["json"], false, "onMsg is protobuf: {r}");
        assert_eq!(load["requests"][0]["json"], false, "enter is protobuf: {r}");
    }
    assert_eq!(r["page_errors"], json!([]), "{r}");
}

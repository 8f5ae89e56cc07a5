//! pomelo-protobuf end to end, with the project's own raw-TCP client (a libpomelo2- or
//! Unity-style client that caches protos): the handshake offers the protos (parsed, with
//! Pomelo's version) unless the client's `protoVersion` is current; requests with a client proto
//! are read as protobuf; responses and pushes with a server proto arrive as protobuf, whichever
//! edge pushed (HTTP or a management session); a push that does not fit its proto is refused
//! with the field named; and `shaddock check` names the file, route and field of a bad protos
//! file.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::http::post_json;
use common::tcp::PomeloClient;
use common::{DEMO, DEMO_SECRET, start, test_config};
use serde_json::{Value, json};
use shaddock::config::Config;
use shaddock::protocol::protobuf::{self, Protos};

fn protos_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/protos").join(name)
}

fn raw(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(protos_file(name)).unwrap()).unwrap()
}

fn config() -> Config {
    let mut config = test_config(2);
    config.client.server_protos = Some(protos_file("serverProtos.json"));
    config.client.client_protos = Some(protos_file("clientProtos.json"));
    config
}

/// The version Pomelo computes for the test protos.
fn version() -> String {
    let parse = |name| Protos::parse(&raw(name)).unwrap();
    protobuf::version(&parse("clientProtos.json"), &parse("serverProtos.json"))
}

fn handshake(proto_version: Option<&str>) -> Value {
    let mut sys = json!({"type": "libpomelo2-test", "version": "0.3.0"});
    if let Some(v) = proto_version {
        sys["protoVersion"] = json!(v);
    }
    json!({"sys": sys, "user": {}})
}

/// Connects with a client that decodes and encodes with the test protos.
fn protobuf_client(addr: std::net::SocketAddr) -> PomeloClient {
    let mut c = PomeloClient::connect_raw(addr);
    c.pomelo_handshake_with(&handshake(Some(&version())));
    c.use_protos(&raw("serverProtos.json"), &raw("clientProtos.json"));
    c
}

#[test]
fn the_handshake_offers_the_protos_unless_the_cached_version_is_current() {
    let server = start(config());
    let addr = server.client_addr();

    let mut fresh = PomeloClient::connect_raw(addr);
    let sys = fresh.pomelo_handshake_with(&handshake(None))["sys"].clone();
    assert_eq!(sys["useProto"], true, "{sys}");
    assert_eq!(sys["useDict"], true, "{sys}");
    let protos = &sys["protos"];
    assert_eq!(protos["version"], version(), "{protos}");
    // The parsed form, as Pomelo's parser gives it.
    let on_msg = &protos["server"]["onMsg"];
    assert_eq!(on_msg["msg"], json!({"option": "required", "type": "Notice", "tag": 1}));
    assert_eq!(on_msg["__tags"], json!({"1": "msg"}));
    assert_eq!(protos["client"]["message Notice"]["__tags"]["5"], "ids");

    let mut cached = PomeloClient::connect_raw(addr);
    let sys = cached.pomelo_handshake_with(&handshake(Some(&version())))["sys"].clone();
    assert_eq!(sys["useProto"], true, "{sys}");
    assert!(sys.get("protos").is_none(), "a current protoVersion gets no protos: {sys}");

    let mut stale = PomeloClient::connect_raw(addr);
    let sys = stale.pomelo_handshake_with(&handshake(Some("stale")))["sys"].clone();
    assert_eq!(sys["protos"]["version"], version(), "{sys}");
}

#[test]
fn requests_responses_and_pushes_from_every_edge_are_protobuf() {
    let server = start(config());
    let addr = server.client_addr();
    let mut client = protobuf_client(addr);
    assert_eq!(client.enter_client(DEMO, "phone-1"), json!({"code": 200, "msg": "add ok"}));
    let mut admin = protobuf_client(addr);
    let entered = admin.enter_as_management(DEMO, DEMO_SECRET);
    assert_eq!(entered["users"], json!(["phone-1"]), "{entered}");
    assert_eq!(entered["count"], 1, "{entered}");

    let notice = json!({"title": "Sale", "body": "50% off — today", "badge": 3,
                        "tags": ["promo", "näh"], "ids": [1, 300, 70000]});
    let pushed = admin.push_all(DEMO, notice.clone());
    assert_eq!(pushed, json!({"code": 200, "msg": "push is ok.", "recipients": 1}));
    assert_eq!(client.next_push(), ("onMsg".into(), json!({"msg": notice})));

    let path = format!("/api/apps/{DEMO}/push");
    let body = json!({"msg": {"title": "from HTTP"}}).to_string();
    let response = post_json(server.control_addr(), &path, Some(DEMO_SECRET), &body);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(client.next_push(), ("onMsg".into(), json!({"msg": {"title": "from HTTP"}})));

    let pushed = admin.push_by_client_id(DEMO, "phone-1", json!({"title": "just you"}));
    assert_eq!(pushed["recipients"], 1, "{pushed}");
    assert_eq!(client.next_push(), ("onMsg".into(), json!({"msg": {"title": "just you"}})));
    client.assert_no_pending_push();
}

#[test]
fn a_push_that_does_not_fit_the_proto_is_refused_naming_the_field() {
    let server = start(config());
    let addr = server.client_addr();
    let mut client = protobuf_client(addr);
    client.enter_client(DEMO, "phone-1");

    let path = format!("/api/apps/{DEMO}/push");
    for (msg, field) in [
        (json!({"body": "no title"}), "msg.title"),
        (json!("a string"), "msg"),
        (json!({"title": "t", "badge": -1}), "msg.badge"),
        (json!({"title": "t", "tags": [1]}), "msg.tags[0]"),
    ] {
        let body = json!({ "msg": msg }).to_string();
        let response = post_json(server.control_addr(), &path, Some(DEMO_SECRET), &body);
        assert_eq!(response.status, 400, "{msg}: {}", response.text());
        let error = response.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(error.contains(field), "{msg}: the error names {field}: {error}");
    }
    // Nothing half-encoded went out: the next push is the first one that fits.
    let body = json!({"msg": {"title": "fits"}}).to_string();
    assert_eq!(post_json(server.control_addr(), &path, Some(DEMO_SECRET), &body).status, 200);
    assert_eq!(client.next_push(), ("onMsg".into(), json!({"msg": {"title": "fits"}})));
}

#[test]
fn check_names_the_file_route_and_field_of_a_bad_protos_file() {
    let dir = std::env::temp_dir().join(format!("shaddock-protos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = json!({"onMsg": {"required Notice msg": 1}});
    std::fs::write(dir.join("serverProtos.json"), bad.to_string()).unwrap();
    let toml = "[client]\nserver_protos = \"serverProtos.json\"\n\n[[apps]]\napikey = \"demo\"\n\
                secret = \"secret-123\"\n";
    std::fs::write(dir.join("shaddock.toml"), toml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_shaddock"))
        .args(["check", "--config"])
        .arg(dir.join("shaddock.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!out.status.success(), "{stderr}");
    for part in ["client.server_protos", "serverProtos.json", "\"onMsg\"", "Notice msg"] {
        assert!(stderr.contains(part), "the error names {part}: {stderr}");
    }

    let file = protos_config_file();
    let good = Command::new(env!("CARGO_BIN_EXE_shaddock"))
        .args(["check", "--config"])
        .arg(&file)
        .output();
    std::fs::remove_file(&file).unwrap();
    let good = good.unwrap();
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
}

/// A configuration file next to the test protos that names them relatively.
fn protos_config_file() -> PathBuf {
    let path = std::env::temp_dir().join(format!("shaddock-protos-ok-{}.toml", std::process::id()));
    let dir = protos_file("");
    let toml = format!(
        "[client]\nserver_protos = \"{}\"\nclient_protos = \"{}\"\n\n[[apps]]\napikey = \"demo\"\n\
         secret = \"secret-123\"\n",
        dir.join("serverProtos.json").display(),
        dir.join("clientProtos.json").display()
    );
    std::fs::write(&path, toml).unwrap();
    path
}

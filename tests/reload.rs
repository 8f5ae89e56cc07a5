//! SIGHUP reloads the apps of a running daemon without dropping anyone: a changed app keeps its
//! clients and takes its new secret, an added app is open at once, a removed app's clients and
//! management sessions are kicked "app removed"; a file that does not load, or a reload that
//! would change an app's protos, keeps the running configuration and the log says why.

mod common;

use std::net::SocketAddr;

use common::daemon::{Daemon, TempFile};
use common::http;
use serde_json::json;

/// A daemon configuration on free ports with `apps` (apikey, secret) and `extra` TOML after.
fn config(apps: &[(&str, &str)], extra: &str) -> String {
    let mut text = String::from(
        "reactors = 2\n[client]\nlisten = \"127.0.0.1:0\"\ndrain_secs = 0\n\
         [control]\nlisten = \"127.0.0.1:0\"\n",
    );
    for (apikey, secret) in apps {
        text.push_str(&format!("[[apps]]\napikey = \"{apikey}\"\nsecret = \"{secret}\"\n"));
    }
    text + extra
}

fn push_status(control: SocketAddr, apikey: &str, secret: &str) -> u16 {
    let path = format!("/api/apps/{apikey}/push");
    http::post_json(control, &path, Some(secret), r#"{"msg":"hi"}"#).status
}

#[test]
fn sighup_adds_changes_and_removes_apps_and_keeps_everyone_else_connected() {
    let file = TempFile::new(
        "reload",
        &config(&[("alpha", "alpha-secret-1"), ("beta", "beta-secret-1")], ""),
    );
    let mut daemon = Daemon::run(&file);
    let (addr, control) = daemon.ports();
    let mut alpha_client = common::client(addr, "alpha", "a1");
    let mut beta_client = common::client(addr, "beta", "b1");
    let (mut beta_manager, _) = common::management(addr, "beta", "beta-secret-1");
    let mut early = common::PomeloClient::connect(addr);
    assert_eq!(early.enter_client("gamma", "g0")["code"], 404, "no gamma yet");

    // alpha's secret changes, beta goes, gamma comes.
    file.write(&config(&[("alpha", "alpha-secret-2"), ("gamma", "gamma-secret-1")], ""));
    daemon.signal("HUP");
    let line = daemon.wait_for_line("configuration reloaded");
    assert!(
        line.contains("added=gamma")
            && line.contains("changed=alpha")
            && line.contains("removed=beta"),
        "{line}"
    );

    assert_eq!(beta_client.expect_kick(), "app removed");
    assert_eq!(beta_manager.expect_kick(), "app removed");
    assert_eq!(push_status(control, "alpha", "alpha-secret-1"), 401, "the old secret");
    assert_eq!(push_status(control, "alpha", "alpha-secret-2"), 200, "the new secret");
    // The alpha client was never dropped: it gets the push made with the new secret.
    assert_eq!(alpha_client.next_push(), ("onMsg".into(), json!({"msg": "hi"})));
    assert_eq!(push_status(control, "beta", "beta-secret-1"), 404);
    let mut gamma_client = common::client(addr, "gamma", "g1");
    assert_eq!(push_status(control, "gamma", "gamma-secret-1"), 200);
    assert_eq!(gamma_client.next_push().1, json!({"msg": "hi"}));

    // A file that does not parse: the running apps stay, and the log says why.
    file.write("[[apps]\n");
    daemon.signal("HUP");
    let line = daemon.wait_for_line("reload failed");
    assert!(line.contains("the running configuration stays"), "{line}");
    assert_eq!(push_status(control, "alpha", "alpha-secret-2"), 200);

    // An app with protos of its own cannot come by a reload.
    let protos = "server_protos = \"/nonexistent/serverProtos.json\"\n";
    file.write(&config(&[("alpha", "alpha-secret-2"), ("delta", "delta-secret-1")], protos));
    daemon.signal("HUP");
    let line = daemon.wait_for_line("reload failed");
    assert!(line.contains("delta") || line.contains("server_protos"), "{line}");
    assert_eq!(push_status(control, "gamma", "gamma-secret-1"), 200, "gamma still served");

    // A change that needs a restart is applied to the apps and named for the rest.
    let mut text = config(&[("alpha", "alpha-secret-3"), ("gamma", "gamma-secret-1")], "");
    text = text.replace("drain_secs = 0\n", "drain_secs = 0\nheartbeat_secs = 7\n");
    file.write(&text);
    daemon.signal("HUP");
    daemon.wait_for_line("configuration reloaded");
    let line = daemon.wait_for_line("take effect at the next start");
    assert!(line.contains("client"), "{line}");
    assert_eq!(push_status(control, "alpha", "alpha-secret-3"), 200);
    assert_eq!(alpha_client.next_push().1, json!({"msg": "hi"}), "alpha's client still there");
}

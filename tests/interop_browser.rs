//! The real Pomelo JavaScript client, npm `pomelo-jsclient-websocket` 0.1.1, in a real browser:
//! Debian's headless Chromium, driven by playwright-core (`tests/interop/browser.mjs`), loads a
//! test page with the client, enters as a client over WebSocket, and shows the messages that
//! management pushes with `pushAll`; the test reads them back from the page's DOM.

mod common;
#[path = "interop/runner.rs"]
mod runner;

use std::path::Path;
use std::time::Duration;

use common::{DEMO, DEMO_SECRET, start, test_config};

const CHROMIUM: &str = "/usr/bin/chromium";

#[test]
fn pomelo_jsclient_in_headless_chromium_enters_and_shows_pushed_messages() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's Chromium with `apt-get install chromium` \
         (.ci/run does)"
    );
    runner::require_node_modules();
    let server = start(test_config(2));
    let port = server.client_addr().port();

    let args = runner::server_args(port, DEMO, DEMO_SECRET, 45000);
    let run = runner::run_script("browser.mjs", &args, Duration::from_secs(75));
    run.assert_ok();
    let r = &run.result;

    let page = &r["page"];
    assert_eq!(page["state"], "entered", "{r}");
    let shown = page["messages"].as_array().expect("messages");
    assert_eq!(shown.len(), 2, "{r}");
    for (i, pushed) in r["push_all"].as_array().expect("push_all").iter().enumerate() {
        assert_eq!(pushed["code"], 200, "push {i}: {r}");
        assert_eq!(pushed["recipients"], 1, "push {i}: {r}");
    }
    assert!(
        shown[1].as_str().is_some_and(|m| m.contains("中文")),
        "the non-ASCII push reads back intact: {r}"
    );
    assert_eq!(r["page_errors"], serde_json::json!([]), "{r}");
    assert_eq!(r["websockets"].as_array().map(Vec::len), Some(1), "{r}");
}

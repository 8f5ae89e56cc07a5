//! The management page in a real browser: Debian's headless Chromium, driven by playwright-core
//! (`tests/interop/management_page.mjs`), opens the control port's page, is refused with a wrong
//! secret and shows it, logs in, keeps up heartbeats, sees a client that this test connects over
//! raw TCP appear in the list, pushes to it and to everyone (the client receives both, exactly),
//! is readable on a phone-sized screen, sees the client leave, and shows the 404 of a push to it;
//! kicks a second client with its Kick button (the client reads the kick's reason), counts its
//! pushes in the stats panel, and after this test restarts the server on the same client port
//! reconnects by itself and hears a third client join. The page connects where
//! `control.page_client_url` says (a path the page would not have guessed).
//! Screenshots: `target/management-page.png`, `target/management-page-phone.png`,
//! `target/management-page-refused.png` (the wrong secret), `target/management-page-reconnecting.png`
//! and `target/management-page-reconnected.png`.

mod common;
#[path = "interop/runner.rs"]
#[allow(dead_code)] // this test runs its script itself, to talk with it while it runs
mod runner;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use common::{DEMO, DEMO_SECRET, start, test_config};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CLIENT_ID: &str = "tcp-alice";
const KICK_ID: &str = "tcp-bob";
const AFTER_RESTART_ID: &str = "tcp-carol";
const CLIENT_PATH: &str = "/push";
const TO_ONE: &str = "héllo alice, from the page ✓ 中文";
const TO_ALL: &str = r#"{"to": "everyone", "n": 2, "tags": ["a", "b"]}"#;

/// The script, killed if the test fails before it exits.
struct Script {
    child: Child,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stderr: thread::JoinHandle<String>,
}

impl Script {
    fn spawn(args: &[String]) -> Script {
        let mut child = runner::spawn_node("management_page.mjs", args);
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Script { child, lines, stdout: Vec::new(), stderr }
    }

    /// The next stdout line, within `limit`; `None` once the script has exited.
    fn next_line(&mut self, limit: Duration) -> Option<String> {
        match self.lines.recv_timeout(limit) {
            Ok(line) => {
                self.stdout.push(line.clone());
                Some(line)
            }
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "management_page.mjs said nothing for {limit:?}; stdout so far: {:?}",
                    self.stdout
                )
            }
        }
    }

    /// Reads lines until `{"event": event}`; a result line instead means the script failed.
    fn expect_event(&mut self, event: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(line) = self.next_line(left) else {
                self.fail(&format!("the script exited before {event:?}"));
            };
            let value: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if value["event"] == event {
                return;
            }
            if value.get("ok").is_some() {
                self.fail(&format!("the script finished before {event:?}: {value}"));
            }
        }
    }

    /// Waits for the script to exit and returns its result line.
    fn finish(mut self, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        while self.next_line(deadline.saturating_duration_since(Instant::now())).is_some() {}
        let status = self.child.wait().expect("wait for node");
        let last = self.stdout.iter().rev().find(|l| !l.trim().is_empty()).cloned();
        let result: Value = last.and_then(|l| serde_json::from_str(&l).ok()).unwrap_or(Value::Null);
        if !status.success() || result["ok"] != true {
            self.fail(&format!("management_page.mjs failed ({status})"));
        }
        result
    }

    fn fail(&mut self, what: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = std::mem::replace(&mut self.stderr, thread::spawn(String::new));
        let stderr = stderr.join().unwrap_or_default();
        let tail = &stderr[stderr.len().saturating_sub(4000)..];
        panic!("{what}\n--- stdout ---\n{}\n--- stderr (end) ---\n{tail}", self.stdout.join("\n"));
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `target/` of this build (`CARGO_TARGET_DIR` when set).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

#[test]
fn management_page_logs_in_lists_clients_and_pushes_in_headless_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's Chromium with `apt-get install chromium` \
         (.ci/run does)"
    );
    runner::require_node_modules();
    let mut config = test_config(2);
    // Short, so the page's own heartbeats are exercised within the test.
    config.client.heartbeat_secs = 1;
    // A port of our own, so that the restarted server takes the same one, and a page URL with
    // a path the page would not have guessed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    config.client.listen = format!("127.0.0.1:{port}").parse().unwrap();
    config.control.page_client_url = Some(format!("ws://127.0.0.1:{port}{CLIENT_PATH}"));
    let server = start(config.clone());
    let target = target_dir();
    std::fs::create_dir_all(&target).expect("target/ exists");
    let screenshot = target.join("management-page.png");
    let phone_screenshot = target.join("management-page-phone.png");
    let refused_screenshot = target.join("management-page-refused.png");
    let reconnecting_screenshot = target.join("management-page-reconnecting.png");
    let reconnected_screenshot = target.join("management-page-reconnected.png");
    let shots = [
        &screenshot,
        &phone_screenshot,
        &refused_screenshot,
        &reconnecting_screenshot,
        &reconnected_screenshot,
    ];
    for old in shots {
        let _ = std::fs::remove_file(old);
    }

    let arg = |name: &str, value: &str| [format!("--{name}"), value.to_owned()];
    let args: Vec<String> = [
        arg("url", &format!("http://{}/", server.control_addr())),
        arg("apikey", DEMO),
        arg("secret", DEMO_SECRET),
        arg("client-id", CLIENT_ID),
        arg("to-one", TO_ONE),
        arg("to-all", TO_ALL),
        arg("screenshot", &screenshot.to_string_lossy()),
        arg("phone-screenshot", &phone_screenshot.to_string_lossy()),
        arg("refused-screenshot", &refused_screenshot.to_string_lossy()),
        arg("reconnecting-screenshot", &reconnecting_screenshot.to_string_lossy()),
        arg("reconnected-screenshot", &reconnected_screenshot.to_string_lossy()),
        arg("kick-id", KICK_ID),
        arg("after-restart-id", AFTER_RESTART_ID),
        arg("client-path", CLIENT_PATH),
        arg("timeout-ms", "60000"),
    ]
    .concat();
    let mut script = Script::spawn(&args);

    // The page is logged in: a client arrives, and receives what the page pushes.
    script.expect_event("entered", Duration::from_secs(45));
    let mut client = common::client(server.client_addr(), DEMO, CLIENT_ID);
    client.set_timeout(Duration::from_secs(30));
    assert_eq!(client.next_push(), ("onMsg".into(), json!({ "msg": TO_ONE })));
    let to_all: Value = serde_json::from_str(TO_ALL).unwrap();
    assert_eq!(client.next_push(), ("onMsg".into(), json!({ "msg": to_all })));
    script.expect_event("pushed", Duration::from_secs(30));
    client.assert_no_pending_push();
    drop(client);

    // The page's Kick button.
    script.expect_event("ready-for-kick", Duration::from_secs(30));
    let mut bob = common::client(server.client_addr(), DEMO, KICK_ID);
    bob.set_timeout(Duration::from_secs(30));
    assert_eq!(bob.expect_kick(), "kicked from the management page");

    // A restart: the drain kicks the page, which reconnects once the port answers again.
    script.expect_event("restart-me", Duration::from_secs(30));
    drop(server);
    thread::sleep(Duration::from_millis(1500));
    let server = start(config);
    script.expect_event("reconnected", Duration::from_secs(45));
    let _carol = common::client(server.client_addr(), DEMO, AFTER_RESTART_ID);

    let result = script.finish(Duration::from_secs(60));
    assert_eq!(result["push_one"]["code"], "200", "{result}");
    assert_eq!(result["push_all"]["code"], "200", "{result}");
    assert_eq!(result["push_gone"]["code"], "404", "{result}");
    assert_eq!(result["kick"]["code"], "200", "{result}");
    assert_eq!(result["after_restart"]["reconnects"], "1", "{result}");
    assert_eq!(result["page_errors"], json!([]), "{result}");
    assert_eq!(result["foreign_requests"], json!([]), "{result}");
    for shot in shots {
        let bytes = std::fs::read(shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is not a PNG", shot.display());
    }
}

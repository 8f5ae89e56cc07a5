//! The `shaddock` binary: `config` prints a default that `check` accepts, `check` names a bad key,
//! and `run` serves until SIGTERM, then kicks clients with "shutdown" and exits 0.

mod common;

use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use common::daemon::{BIN, Daemon, TempFile};
use common::{DEMO, DEMO_SECRET};

fn output_text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `shaddock config`, parsed.
fn default_config() -> toml::Table {
    let out = Command::new(BIN).arg("config").output().expect("run shaddock config");
    assert!(out.status.success(), "shaddock config failed: {}", output_text(&out));
    let text = String::from_utf8(out.stdout).expect("shaddock config prints UTF-8");
    text.parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("shaddock config is not TOML ({e}):\n{text}"))
}

fn check(name: &str, config: &str) -> Output {
    let file = TempFile::new(name, config);
    Command::new(BIN).args(["check", "--config", file.path()]).output().expect("run shaddock check")
}

fn section<'a>(config: &'a mut toml::Table, name: &str) -> &'a mut toml::Table {
    config
        .entry(name)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap_or_else(|| panic!("[{name}] is not a table"))
}

#[test]
fn default_config_passes_check() {
    let out = Command::new(BIN).arg("config").output().expect("run shaddock config");
    assert!(out.status.success(), "{}", output_text(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for key in [
        "[client]",
        "listen",
        "heartbeat_secs",
        "max_package_bytes",
        "duplicate",
        "[control]",
        "apikey",
    ] {
        assert!(text.contains(key), "default config lacks {key}:\n{text}");
    }
    // Valid, but its placeholder secret is a warning: exit status 2, the key named.
    let out = check("default", &text);
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert!(output_text(&out).contains("apps[0].secret"), "{}", output_text(&out));
    let changed = text.replace("change-me-please", "a-real-secret-123");
    let out = check("changed", &changed);
    assert!(out.status.success(), "check rejects the default config: {}", output_text(&out));
}

#[test]
fn check_says_a_missing_file_once() {
    let out = Command::new(BIN).args(["check", "--config", "/nonexistent/shaddock.toml"]).output();
    let text = output_text(&out.expect("run shaddock check"));
    assert_eq!(text.matches("No such file or directory").count(), 1, "{text}");
}

#[test]
fn check_names_the_bad_key() {
    let cases: [(&str, &str, toml::Value); 3] = [
        ("heartbeat_secs", "heartbeat_secs", toml::Value::String("soon".into())),
        ("duplicate", "duplicate", toml::Value::String("sometimes".into())),
        ("unknown", "heartbeat_secondz", toml::Value::Integer(5)),
    ];
    for (name, key, value) in cases {
        let mut config = default_config();
        section(&mut config, "client").insert(key.into(), value.clone());
        let out = check(name, &config.to_string());
        let text = output_text(&out);
        assert!(!out.status.success(), "check accepts client.{key} = {value}: {text}");
        assert!(
            text.contains(key),
            "check's complaint about client.{key} = {value} does not name it: {text}"
        );
    }
}

#[test]
fn run_drains_on_sigterm_and_exits_zero() {
    let mut config = default_config();
    config.insert("reactors".into(), 2.into());
    if config.contains_key("pin_cores") {
        config.insert("pin_cores".into(), false.into());
    }
    let client = section(&mut config, "client");
    client.insert("listen".into(), "127.0.0.1:0".into());
    client.insert("drain_secs".into(), 1.into());
    section(&mut config, "control").insert("listen".into(), "127.0.0.1:0".into());
    let mut app = toml::Table::new();
    app.insert("apikey".into(), DEMO.into());
    app.insert("secret".into(), DEMO_SECRET.into());
    config.insert("apps".into(), toml::Value::Array(vec![toml::Value::Table(app)]));
    let file = TempFile::new("run", &config.to_string());

    let mut daemon = Daemon::run(&file);
    let (addr, _) = daemon.ports();
    assert_ne!(addr.port(), 0, "the log names the real port: {}", daemon.log.join("\n"));

    let mut c = common::client(addr, DEMO, "c1");

    daemon.signal("TERM");

    assert_eq!(c.expect_kick(), "shutdown");

    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the daemon did not exit within 15 s of SIGTERM");
        thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "the daemon exited with {status}; stderr:\n{}",
        daemon.log.join("\n")
    );
}

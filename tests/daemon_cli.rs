//! The `shaddock` binary: `config` prints a default that `check` accepts, `check` names a bad key,
//! and `run` serves until SIGTERM, then kicks clients with "shutdown" and exits 0.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{DEMO, DEMO_SECRET};

const BIN: &str = env!("CARGO_BIN_EXE_shaddock");

/// A file in the temp directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("shaddock-test-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A daemon this test started; killed if the test fails before it exits.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

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

/// Removes ANSI escape sequences (colours) from a log line.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The address from a line containing `client port listening ... addr=127.0.0.1:PORT`.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("client port listening") {
        return None;
    }
    let after = &line[line.find("addr=")? + "addr=".len()..];
    let token: String = after.chars().take_while(|c| !c.is_whitespace() && *c != ',').collect();
    token.trim_matches(|c| c == '"' || c == '\'').parse().ok()
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

    let mut daemon = Daemon(
        Command::new(BIN)
            .args(["run", "--config", file.path()])
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shaddock run"),
    );

    // Read stderr on a thread for the whole run, so the daemon never blocks on a full pipe.
    let (lines_tx, lines) = mpsc::channel();
    let stderr = daemon.0.stderr.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(strip_ansi(&line)).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let addr = loop {
        match lines.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => {
                let found = listening_addr(&line);
                log.push(line);
                if let Some(addr) = found {
                    break addr;
                }
            }
            Err(e) => panic!(
                "no `client port listening addr=` line ({e:?}); stderr so far:\n{}",
                log.join("\n")
            ),
        }
    };
    assert_ne!(addr.port(), 0, "the log names the real port: {}", log.join("\n"));

    let mut c = common::client(addr, DEMO, "c1");

    let pid = daemon.0.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
    assert!(status.success(), "kill -TERM {pid}");

    assert_eq!(c.expect_kick(), "shutdown");

    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = daemon.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the daemon did not exit within 15 s of SIGTERM");
        thread::sleep(Duration::from_millis(20));
    };
    log.extend(lines.try_iter());
    assert!(status.success(), "the daemon exited with {status}; stderr:\n{}", log.join("\n"));
}

//! What the end-to-end tests share: the in-process server, the app's secret, the small
//! settings under which every phase runs in well under a second, and a run of the binary over
//! worker processes.

// Each test file is a crate of its own and uses a part of this.
#![allow(dead_code)]

use std::process::Command;

use shaddock::Server;
use shaddock::config::Config;

pub const SECRET: &str = "test-secret-123";

/// Every later phase, small and quick: heartbeats each 0.1 s through a 0.3 s idle, 3 pushes,
/// 2 sustained steps of 0.3 s from 20 pushes a second, 0.5 s of churn at 40 a second.
pub const SMALL_PHASES: &[&str] = &[
    "--heartbeat-secs",
    "0.1",
    "--idle-secs",
    "0.3",
    "--pushes",
    "3",
    "--push-gap-ms",
    "0",
    "--rate-start",
    "20",
    "--rate-steps",
    "2",
    "--step-secs",
    "0.3",
    "--churn-rate",
    "40",
    "--churn-secs",
    "0.5",
    "--churn-push-rate",
    "10",
];

/// Waits long enough for stragglers, bounds the run, no progress line.
pub const BOUNDS: &[&str] = &["--settle-ms", "10000", "--max-secs", "60", "--quiet"];

/// Two reactors, ports picked by the kernel, no drain, one app. Written as TOML so that new
/// configuration fields with defaults need no change here.
pub fn server() -> Server {
    server_with("")
}

/// [`server`] with more sections (`extra` is TOML after the `[control]` section).
pub fn server_with(extra: &str) -> Server {
    let config = Config::from_toml_str(&format!(
        r#"
        reactors = 2
        pin_cores = false
        [client]
        listen = "127.0.0.1:0"
        drain_secs = 0
        [control]
        listen = "127.0.0.1:0"
        {extra}
        [[apps]]
        apikey = "demo"
        secret = "{SECRET}"
        "#
    ))
    .expect("a valid configuration");
    Server::start(config).expect("server starts")
}

/// Two worker processes through connect and two pushes.
pub const WORKERS: &[&str] =
    &["--procs", "2", "--phases", "connect,broadcast", "--pushes", "2", "--push-gap-ms", "0"];

/// Runs the conn-flood binary with `args` and [`BOUNDS`]; it must succeed. Returns its JSON line
/// and its whole stdout.
pub fn run_binary(args: &[&str]) -> (serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_conn-flood"))
        .args(args)
        .args(BOUNDS)
        .output()
        .expect("conn-flood runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let json = serde_json::from_str(stdout.lines().last().expect("a JSON line")).unwrap();
    (json, stdout)
}

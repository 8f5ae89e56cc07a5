//! Runs one script of `tests/interop/` with Node (or, for paho-mqtt, with the Python of
//! `tests/interop/.venv`) against an in-process server, bounded in time, and returns the JSON
//! line it prints. Included by `tests/interop_*.rs` with `#[path]`.
//!
//! Missing prerequisites fail the test with the command that installs them; they never skip it,
//! since CI installs them (`.ci/run`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

/// `tests/interop/`.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("interop")
}

/// Fails unless `npm ci --prefix tests/interop` has installed the pinned packages.
pub fn require_node_modules() {
    let modules = interop_dir().join("node_modules");
    for package in [
        "pomelo-jsclient-websocket",
        "pomelo-protocol",
        "pomelo-protobuf",
        "component-emitter",
        "playwright-core",
        "mqtt",
        "socket.io-client-0.9",
        "socket.io-client-2",
        "socket.io-client-4",
    ] {
        let manifest = modules.join(package).join("package.json");
        assert!(
            manifest.is_file(),
            "{} is missing: run `npm ci --prefix tests/interop` (from the repository root; \
             .ci/run does) to install the interop tests' pinned npm packages",
            manifest.display()
        );
    }
}

/// What a script did: its exit status, its JSON line, and its stderr (the clients' own logs).
#[derive(Debug)]
pub struct Run {
    /// How Node exited.
    pub status: ExitStatus,
    /// The last line of stdout, parsed.
    pub result: Value,
    /// Everything Node wrote to stderr.
    pub stderr: String,
}

impl Run {
    /// Fails unless the script exited 0 with `"ok": true`; the message carries its error, its
    /// JSON line and the end of its stderr.
    pub fn assert_ok(&self) {
        assert!(
            self.status.success() && self.result["ok"] == true,
            "interop script failed ({}): {}\n--- result ---\n{}\n--- stderr (end) ---\n{}",
            self.status,
            self.result["error"].as_str().unwrap_or("(no error message)"),
            serde_json::to_string_pretty(&self.result).unwrap_or_default(),
            tail(&self.stderr, 4000)
        );
    }
}

/// The arguments every script takes: where the server is, the demo app, and the script's own
/// time limit.
pub fn server_args(port: u16, apikey: &str, secret: &str, timeout_ms: u64) -> Vec<String> {
    let pairs = [
        ("--host", "127.0.0.1".to_string()),
        ("--port", port.to_string()),
        ("--apikey", apikey.to_string()),
        ("--secret", secret.to_string()),
        ("--timeout-ms", timeout_ms.to_string()),
    ];
    pairs.into_iter().flat_map(|(flag, value)| [flag.to_string(), value]).collect()
}

/// Starts `node --experimental-websocket tests/interop/<script> <args>` from the repository root,
/// with stdout and stderr piped.
pub fn spawn_node(script: &str, args: &[String]) -> Child {
    spawn_node_with(script, args, &[])
}

/// [`spawn_node`] with `env` set (e.g. `NODE_EXTRA_CA_CERTS`). Whatever trust the calling
/// environment had in Node's TLS (`NODE_EXTRA_CA_CERTS`, `NODE_TLS_REJECT_UNAUTHORIZED`) is
/// removed first, so a script trusts exactly what its test gives it.
pub fn spawn_node_with(script: &str, args: &[String], env: &[(&str, &Path)]) -> Child {
    Command::new("node")
        // Node 20's global WebSocket (undici) is behind this flag; later Nodes accept it too.
        .arg("--experimental-websocket")
        .arg(interop_dir().join(script))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NODE_OPTIONS")
        .env_remove("NODE_EXTRA_CA_CERTS")
        .env_remove("NODE_TLS_REJECT_UNAUTHORIZED")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `node` ({e}): install Node.js 20 or later and npm \
                 (`apt-get install nodejs npm`; .ci/run does when they are missing)"
            )
        })
}

/// Runs `script` with [`spawn_node`]; kills it and fails after `limit`.
pub fn run_script(script: &str, args: &[String], limit: Duration) -> Run {
    finish(script, spawn_node(script, args), limit)
}

/// `tests/interop/.venv/bin/python`, the Python that has the pinned PyPI packages.
#[allow(dead_code)] // only the paho tests run Python
pub fn venv_python() -> PathBuf {
    interop_dir().join(".venv").join("bin").join("python")
}

/// Fails unless `tests/interop/.venv` has the packages pinned in `tests/interop/requirements.txt`
/// (paho-mqtt).
#[allow(dead_code)] // only the paho tests run Python
pub fn require_python_packages() {
    let install = "run `python3 -m venv tests/interop/.venv && tests/interop/.venv/bin/pip install \
                   -r tests/interop/requirements.txt` (from the repository root; .ci/run and \
                   scripts/test do)";
    let python = venv_python();
    assert!(python.is_file(), "{} is missing: {install}", python.display());
    let lib = interop_dir().join(".venv").join("lib");
    let found = std::fs::read_dir(&lib).into_iter().flatten().flatten().any(|entry| {
        entry.path().join("site-packages").join("paho").join("mqtt").join("client.py").is_file()
    });
    assert!(found, "paho-mqtt is not installed in {}: {install}", lib.display());
}

/// Starts `tests/interop/.venv/bin/python tests/interop/<script> <args>` from the repository
/// root, with stdout and stderr piped.
#[allow(dead_code)] // only the paho tests run Python
pub fn spawn_python(script: &str, args: &[String]) -> Child {
    Command::new(venv_python())
        .arg(interop_dir().join(script))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("PYTHONPATH")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): see `require_python_packages` for the install command",
                venv_python().display()
            )
        })
}

/// Runs `script` with [`spawn_python`]; kills it and fails after `limit`.
#[allow(dead_code)] // only the paho tests run Python
pub fn run_python(script: &str, args: &[String], limit: Duration) -> Run {
    finish(script, spawn_python(script, args), limit)
}

/// Waits for a script started by [`spawn_node`] or [`spawn_python`]; kills it and fails after
/// `limit`; parses the last line of its stdout.
pub fn finish(script: &str, mut child: Child, limit: Duration) -> Run {
    let stdout = reader(&mut child, true);
    let stderr = reader(&mut child, false);
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the script") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = stderr.join().unwrap_or_default();
            let out = stdout.join().unwrap_or_default();
            panic!(
                "{script} did not finish within {limit:?}; killed\n--- stdout ---\n{out}\n--- stderr (end) ---\n{}",
                tail(&err, 4000)
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    let out = stdout.join().expect("stdout reader");
    let err = stderr.join().expect("stderr reader");
    let line = out.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    let result = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "{script} ({status}) printed no JSON result line ({e})\n--- stdout ---\n{out}\n--- stderr (end) ---\n{}",
            tail(&err, 4000)
        )
    });
    // Captured by the test harness; shown with the failure, or with `--nocapture`.
    println!("{script}: {line}");
    Run { status, result, stderr: err }
}

fn reader(child: &mut Child, stdout: bool) -> JoinHandle<String> {
    let mut pipe: Box<dyn Read + Send> = if stdout {
        Box::new(child.stdout.take().expect("piped stdout"))
    } else {
        Box::new(child.stderr.take().expect("piped stderr"))
    };
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

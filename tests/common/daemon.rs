//! The `shaddock` binary as a child process: a configuration in a temporary file, the daemon
//! started with it, its log read on a thread (so it never blocks on a full pipe), the ports it
//! logged, and signals sent to it. Killed when dropped if it is still running.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_shaddock");

/// A file in the temp directory, removed when dropped.
pub struct TempFile(PathBuf);

impl TempFile {
    pub fn new(name: &str, contents: &str) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("shaddock-test-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    /// Replaces the contents.
    pub fn write(&self, contents: &str) {
        std::fs::write(&self.0, contents).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A running `shaddock run --config FILE`.
pub struct Daemon {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// Every log line read so far, colours removed.
    pub log: Vec<String>,
}

impl Daemon {
    pub fn run(config: &TempFile) -> Daemon {
        let mut child = Command::new(BIN)
            .args(["run", "--config", config.path()])
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shaddock run");
        let (lines_tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(strip_ansi(&line)).is_err() {
                    break;
                }
            }
        });
        Daemon { child, lines, log: Vec::new() }
    }

    /// Reads the log until a line contains `text` (within 10 s), and returns it.
    pub fn wait_for_line(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(e) => {
                    panic!("no log line with {text:?} ({e:?}); so far:\n{}", self.log.join("\n"))
                }
            }
        }
    }

    /// The client and control ports it logged at start.
    pub fn ports(&mut self) -> (SocketAddr, SocketAddr) {
        let client = listening_addr(&self.wait_for_line("client port listening"));
        let control = listening_addr(&self.wait_for_line("control port listening"));
        (client, control)
    }

    /// Sends `signal` (`TERM`, `HUP`, ...) with kill(1).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args([&format!("-{signal}"), &pid]).status();
        assert!(status.expect("run kill").success(), "kill -{signal} {pid}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Removes ANSI escape sequences (colours) from a log line.
pub fn strip_ansi(line: &str) -> String {
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

/// The address of a `... listening ... addr=127.0.0.1:PORT` line.
pub fn listening_addr(line: &str) -> SocketAddr {
    let after = &line[line.find("addr=").expect("addr= in the line") + "addr=".len()..];
    let token: String = after.chars().take_while(|c| !c.is_whitespace() && *c != ',').collect();
    let token = token.trim_matches(|c| c == '"' || c == '\'');
    token.parse().unwrap_or_else(|e| panic!("{token:?} in {line:?}: {e}"))
}

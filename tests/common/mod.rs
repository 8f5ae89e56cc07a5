//! Shared helpers for the integration tests: a test configuration, an in-process server that is
//! stopped with a bound, and blocking Pomelo clients written independently of `shaddock::protocol`.
//!
//! - this file: the configuration, [`TestServer`], [`wait_until`], [`assert_error`], and the
//!   names the tests use for the TCP client ([`PomeloClient`], [`client`], [`management`]);
//! - [`session`]: the Pomelo session, once, over any transport;
//! - [`tcp`]: that session over raw TCP; [`ws`]: over WebSocket, with the WebSocket extras;
//! - [`pomelo`]: the hand-written codec both use; [`http`]: the control port's HTTP client.
//!
//! Every wait is a socket read (or, for counters, a poll) with a deadline, so a server that hangs
//! makes a test fail with a message instead of hanging the suite.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod daemon;
pub mod fanout;
pub mod http;
pub mod metrics;
pub mod pomelo;
pub mod redis;
pub mod session;
pub mod stall;
pub mod tcp;
pub mod tls;
pub mod ws;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use shaddock::Server;
use shaddock::config::{AppConfig, Config};

#[allow(unused_imports)] // as with dead code: each test binary uses a different part
pub use session::{Closed, Session};
#[allow(unused_imports)]
pub use tcp::{Drained, PomeloClient, client, management};

/// The demo app every test configuration has.
pub const DEMO: &str = "demo";
/// The demo app's management secret.
pub const DEMO_SECRET: &str = "test-secret-123";
/// A second app, to check that one app's management cannot touch another's channel.
pub const OTHER: &str = "other";
/// The second app's management secret.
pub const OTHER_SECRET: &str = "other-secret-123";

/// Route of DESIGN §1: join a channel as a client, or enter as an app's management.
pub const ENTER: &str = "connector.entryHandler.enter";
/// Route of DESIGN §1: management pushes to the whole channel.
pub const PUSH_ALL: &str = "pushserver.pushHandler.pushAll";
/// Route of DESIGN §1: management pushes to one client.
pub const PUSH_BY_CLIENT_ID: &str = "pushserver.pushHandler.pushByClientId";

/// How long any single wait on the server may take before the test fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// What the test client says about itself in its handshake.
pub const HANDSHAKE_BODY: &str = r#"{"sys":{"type":"shaddock-test","version":"0.0.1"},"user":{}}"#;

/// A configuration for an in-process server: client and control ports on `127.0.0.1:0`,
/// `reactors` reactors, no pinning, no drain window, two apps (`demo` and `other`), and the
/// backend named by `SHADDOCK_BACKEND` (`scripts/test` runs the suite once per backend), else
/// the default.
pub fn test_config(reactors: usize) -> Config {
    let mut config = Config {
        reactors,
        pin_cores: false,
        apps: vec![AppConfig::new(DEMO, DEMO_SECRET), AppConfig::new(OTHER, OTHER_SECRET)],
        ..Config::default()
    };
    config.client.listen = "127.0.0.1:0".parse().unwrap();
    config.client.drain_secs = 0;
    config.control.listen = "127.0.0.1:0".parse().unwrap();
    config.apply_backend_env().expect("SHADDOCK_BACKEND names a backend");
    config
}

/// An in-process server, shut down gracefully (and within a bound) when dropped.
///
/// Declare it before its clients: locals drop in reverse order, so the clients close first and
/// the shutdown drain has no connection left to linger on. When the test is already failing, the
/// server is only dropped (which stops it at once), so a failure never turns into a second panic.
#[derive(Debug)]
pub struct TestServer {
    server: Option<Server>,
}

impl std::ops::Deref for TestServer {
    type Target = Server;

    fn deref(&self) -> &Server {
        self.server.as_ref().expect("server is running")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            if thread::panicking() {
                drop(server);
            } else {
                shutdown_within(server, Duration::from_secs(15));
            }
        }
    }
}

impl From<Server> for TestServer {
    /// Wraps a server started some other way (e.g. with a forced probe).
    fn from(server: Server) -> TestServer {
        TestServer { server: Some(server) }
    }
}

/// Starts an in-process server, failing the test if it does not start.
pub fn start(config: Config) -> TestServer {
    TestServer { server: Some(Server::start(config).expect("server starts")) }
}

/// Shuts the server down, failing the test if that errs, panics, or takes longer than `limit`.
pub fn shutdown_within(server: Server, limit: Duration) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(server.shutdown());
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("server shutdown failed: {e}"),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("server shutdown took more than {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("server shutdown panicked"),
    }
}

/// Polls `cond` every few milliseconds until it holds, failing the test after `timeout`. For
/// state that no socket read can await (counters); anything a client can observe is awaited by
/// reading instead.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting until {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Asserts an error response: this `code` and a non-empty human `msg`.
pub fn assert_error(response: &Value, code: u64) {
    assert_eq!(response["code"], code, "expected a {code} error, got {response}");
    let msg = response["msg"].as_str().unwrap_or("");
    assert!(!msg.trim().is_empty(), "error response without a human msg: {response}");
}

//! `backend = "auto"` falls back to epoll when io_uring is unavailable (the probe forced to fail),
//! `"io_uring"` refuses to start instead, and the suite really runs on the backend it names.

mod common;

use std::io;

use common::{DEMO, DEMO_SECRET, management, start, test_config};
use serde_json::json;
use shaddock::Server;
use shaddock::config::BackendChoice;
use shaddock::reactor::sys::Backend;

fn io_uring_unavailable() -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::PermissionDenied, "kernel.io_uring_disabled is 2 (forced)"))
}

#[test]
fn auto_falls_back_to_epoll_when_the_probe_fails_and_serves_pushes() {
    let mut config = test_config(2);
    config.backend = BackendChoice::Auto;
    let server = Server::start_with_probe(config, io_uring_unavailable).expect("auto starts");
    assert_eq!(server.backend(), Backend::Epoll);
    let server = common::TestServer::from(server);

    let mut client = common::client(server.client_addr(), DEMO, "fallback");
    let (mut admin, _) = management(server.client_addr(), DEMO, DEMO_SECRET);
    let response = admin.push_all(DEMO, json!("after the fallback"));
    assert_eq!(response["recipients"], 1, "{response}");
    assert_eq!(client.next_push().1, json!({"msg": "after the fallback"}));
}

#[test]
fn io_uring_refuses_to_start_when_the_probe_fails() {
    if !BackendChoice::IO_URING_BUILT {
        return; // the configuration itself is refused: see config's tests
    }
    let mut config = test_config(1);
    config.backend = BackendChoice::IoUring;
    let error = Server::start_with_probe(config, io_uring_unavailable).unwrap_err();
    assert!(error.to_string().contains("io_uring_disabled"), "{error}");
}

/// Regression guard for the test matrix: `SHADDOCK_BACKEND=io_uring` must not quietly run epoll.
#[test]
fn the_suite_runs_on_the_backend_it_names() {
    let config = test_config(2);
    let expected = match config.backend {
        BackendChoice::Epoll => Backend::Epoll,
        BackendChoice::IoUring => Backend::IoUring,
        BackendChoice::Auto => return, // either is right
    };
    let server = start(config);
    assert_eq!(server.backend(), expected);
}

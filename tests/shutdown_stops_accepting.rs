//! SIGTERM's drain stops the client port at once, whatever the control port is waiting for:
//! with a half-sent control request open (which the control thread gives up to its grace period
//! to finish), the client port refuses new connections right after `Server::shutdown` begins,
//! not seconds later.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{test_config, wait_until};
use shaddock::Server;

#[test]
fn the_client_port_stops_accepting_at_once_with_a_control_request_half_sent() {
    let server = Server::start(test_config(2)).expect("server starts");
    let (client, control) = (server.client_addr(), server.control_addr());
    let mut half = TcpStream::connect(control).unwrap();
    half.write_all(b"POST /api/apps/demo/push HTTP/1.1\r\nHost: shaddock\r\nContent-Length: 9\r\n")
        .unwrap();
    // The control thread holds the connection: the head is not finished.
    thread::sleep(Duration::from_millis(200));

    let started = Instant::now();
    let shutdown = thread::spawn(move || server.shutdown());
    wait_until("the client port refuses connections", Duration::from_secs(2), || {
        TcpStream::connect(client).is_err()
    });
    let refused_after = started.elapsed();
    assert!(refused_after < Duration::from_secs(2), "refused only after {refused_after:?}");

    drop(half);
    let result = shutdown.join().expect("shutdown does not panic");
    result.expect("shutdown succeeds");
}

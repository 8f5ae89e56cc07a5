//! The control port closes a connection that trickles its request head, a byte at a time, for
//! longer than its answer deadline (`control::idle::ANSWER_TIMEOUT`, 20 s): every byte used to
//! push the idle deadline back, so such a connection was held forever.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{start, test_config};

#[test]
fn a_request_head_trickled_a_byte_at_a_time_is_cut_off() {
    let server = start(test_config(1));
    let mut conn = TcpStream::connect(server.control_addr()).unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: shaddock\r\nX-Pad: ").unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let started = Instant::now();
    let closed = loop {
        assert!(started.elapsed() < Duration::from_secs(30), "still open after 30 s");
        if conn.write_all(b"a").is_err() {
            break started.elapsed();
        }
        let mut buf = [0u8; 256];
        match conn.read(&mut buf) {
            Ok(0) => break started.elapsed(),
            Ok(_) => panic!("an answer to an unfinished head: {:?}", String::from_utf8_lossy(&buf)),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => break started.elapsed(),
        }
    };
    assert!(closed >= Duration::from_secs(19), "cut off early, after {closed:?}");
    // A request that completes is still answered, on a fresh connection.
    let health = common::http::get(server.control_addr(), "/healthz", None);
    assert_eq!(health.status, 200);
}

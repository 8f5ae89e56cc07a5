//! The admission limits (`[admission]`): a connection past one is closed before anything is
//! read from it, counted in `shaddock_admission_refused_total{reason}`, and the limit frees up
//! as connections go. Sources are told apart by address: 127.0.0.1 and 127.0.0.2 (bind before
//! connect).

mod common;

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::metrics::Scrape;
use common::{PomeloClient, TestServer, start, test_config, wait_until};
use shaddock::config::Config;

fn server(configure: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = test_config(2);
    configure(&mut config);
    start(config)
}

fn refused(server: &TestServer, reason: &str) -> f64 {
    Scrape::take(server.control_addr())
        .sum("shaddock_admission_refused_total", &[("reason", reason)])
}

/// A raw connection from `source`.
fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((source, 0)).into()).unwrap();
    socket.connect(&to.into()).unwrap();
    socket.into()
}

/// Whether the server closes `stream` at once, unread (EOF within a second), or keeps it.
fn closed_at_once(stream: &TcpStream) -> bool {
    use std::io::Read;
    stream.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut byte = [0u8; 1];
    loop {
        match (&*stream).read(&mut byte) {
            Ok(0) => return true,
            Ok(_) => panic!("the server sent bytes to a connection that sent none"),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn a_source_past_max_per_source_is_refused_and_others_are_not() {
    let server = server(|c| c.admission.max_per_source = 3);
    let addr = server.client_addr();
    let held: Vec<TcpStream> = (0..3).map(|_| connect_from([127, 0, 0, 1], addr)).collect();
    wait_until("three open", Duration::from_secs(5), || {
        server.stats().sum(|r| r.connections()) == 3
    });
    let fourth = connect_from([127, 0, 0, 1], addr);
    assert!(closed_at_once(&fourth), "the fourth from 127.0.0.1 is refused");
    assert_eq!(refused(&server, "per_source"), 1.0);
    // Another source is not counted with it.
    let other = connect_from([127, 0, 0, 2], addr);
    assert!(!closed_at_once(&other));
    // A closed connection gives its count back.
    drop(held);
    wait_until("the three closed", Duration::from_secs(5), || {
        server.stats().sum(|r| r.connections()) == 1
    });
    let again = connect_from([127, 0, 0, 1], addr);
    assert!(!closed_at_once(&again));
    assert_eq!(refused(&server, "per_source"), 1.0);
}

#[test]
fn connections_still_opening_are_capped_and_a_finished_handshake_frees_a_place() {
    let server = server(|c| c.admission.max_opening = 2);
    let addr = server.client_addr();
    let silent = connect_from([127, 0, 0, 1], addr);
    let mut pomelo = PomeloClient::connect_raw(addr);
    wait_until("two open", Duration::from_secs(5), || server.stats().sum(|r| r.connections()) == 2);
    assert!(closed_at_once(&connect_from([127, 0, 0, 1], addr)), "a third still-opening one");
    assert_eq!(refused(&server, "opening"), 1.0);
    // One finishes its handshake: it no longer counts as opening.
    pomelo.pomelo_handshake();
    wait_until("the handshake counted", Duration::from_secs(5), || {
        server.stats().sum(|r| r.handshaking) == 1
    });
    assert!(!closed_at_once(&connect_from([127, 0, 0, 1], addr)));
    drop(silent);
}

#[test]
fn the_accept_rate_refuses_past_its_burst() {
    let server = server(|c| {
        c.admission.accept_rate_per_sec = 1;
        c.admission.accept_burst = 2;
    });
    let addr = server.client_addr();
    let started = std::time::Instant::now();
    let streams: Vec<TcpStream> = (0..6).map(|_| connect_from([127, 0, 0, 1], addr)).collect();
    let decided = || server.stats().sum(|r| r.accepted) as f64 + refused(&server, "rate");
    wait_until("six accepts decided", Duration::from_secs(10), || decided() == 6.0);
    // The burst (2), and one more per second that passed (the machine may be busy).
    let allowed = 2 + started.elapsed().as_secs_f64().ceil() as usize;
    let closed = streams.iter().filter(|s| closed_at_once(s)).count();
    assert!(closed >= 6usize.saturating_sub(allowed), "{closed} refused, {allowed} allowed");
    assert!(closed >= 1 || allowed >= 6, "the burst is spent: some are refused");
    assert_eq!(refused(&server, "rate"), closed as f64);
}

#[test]
fn max_connections_counts_every_port_and_source() {
    let server = server(|c| c.admission.max_connections = 2);
    let addr = server.client_addr();
    let _a = connect_from([127, 0, 0, 1], addr);
    let _b = connect_from([127, 0, 0, 2], addr);
    wait_until("two open", Duration::from_secs(5), || server.stats().sum(|r| r.connections()) == 2);
    assert!(closed_at_once(&connect_from([127, 0, 0, 3], addr)));
    assert_eq!(refused(&server, "total"), 1.0);
}

#[test]
fn a_flapping_client_id_is_refused_for_a_while_and_others_are_not() {
    let server = server(|c| c.admission.flap_max_joins = 3);
    let addr = server.client_addr();
    for _ in 0..3 {
        let mut phone = PomeloClient::connect(addr);
        assert_eq!(phone.enter_client(common::DEMO, "looping")["code"], 200);
    }
    let mut fourth = PomeloClient::connect(addr);
    let refused = fourth.enter_client(common::DEMO, "looping");
    assert_eq!(refused["code"], 429, "{refused}");
    assert!(refused["msg"].as_str().unwrap().starts_with("flapping"), "{refused}");
    let mut calm = PomeloClient::connect(addr);
    assert_eq!(calm.enter_client(common::DEMO, "calm")["code"], 200);
}

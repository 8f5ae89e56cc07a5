//! TLS on the client port, with rustls's client (a peer nobody here wrote): Pomelo over TLS
//! enters and receives pushes, plain and TLS clients share the port and a channel, `required`
//! refuses plain clients, the handshake cap and deadline hold, a broken TLS client ends alone,
//! and a certificate reload reaches new connections while old ones go on. Real clients in other
//! languages (browsers, Node, mosquitto, openssl) are in `interop_tls.rs`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;
use shaddock::config::ClientTlsConfig;

use common::metrics::Scrape;
use common::tls::TestCa;
use common::{DEMO, DEMO_SECRET, PomeloClient, TestServer, management, start, test_config};

fn tls_server(ca: &TestCa, required: bool, max_handshakes: usize) -> TestServer {
    let mut config = test_config(2);
    config.client.handshake_timeout_secs = 2;
    config.client.tls = Some(ClientTlsConfig {
        cert: ca.cert_pem(),
        key: ca.key_pem(),
        required,
        max_handshakes_per_reactor: max_handshakes,
    });
    start(config)
}

fn tls_client(server: &TestServer, ca: &TestCa, client_id: &str) -> PomeloClient {
    let mut client = PomeloClient::connect_tls(server.client_addr(), ca.client_config());
    let response = client.enter_client(DEMO, client_id);
    assert_eq!(response["code"], 200, "{client_id} enters over TLS: {response}");
    client
}

/// Reads until the server closes `stream` (an end or a reset, within `timeout`), asserting it
/// sent nothing.
fn expect_closed_unanswered(stream: &mut TcpStream, timeout: Duration) {
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = [0u8; 64];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(!left.is_zero(), "not closed within {timeout:?}");
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => panic!("answered {:02x?} instead of closed", &buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("not closed within {timeout:?}: {e}"),
        }
    }
}

#[test]
fn pomelo_over_tls_enters_and_receives_pushes() {
    let ca = TestCa::new("enter");
    let server = tls_server(&ca, false, 256);
    let mut client = tls_client(&server, &ca, "phone-1");
    let (mut manager, response) = management(server.client_addr(), DEMO, DEMO_SECRET);
    assert_eq!(response["code"], 200, "{response}");
    // Large enough to take several records.
    let text = "x".repeat(40_000);
    let answer = manager.push_all(DEMO, json!({"text": text}));
    assert_eq!(answer["code"], 200, "{answer}");
    let (route, body) = client.next_push();
    assert_eq!(route, "onMsg");
    assert_eq!(body["msg"]["text"].as_str().map(str::len), Some(40_000));
    let answer = manager.push_by_client_id(DEMO, "phone-1", json!({"one": 1}));
    assert_eq!(answer["code"], 200, "{answer}");
    assert_eq!(client.next_push().1["msg"]["one"], 1);
    // The heartbeat goes both ways inside TLS too.
    client.heartbeat();
    let stats = server.stats();
    let tls: u64 = stats.reactors.iter().map(|r| r.tls.handshakes).sum();
    assert_eq!(tls, 1, "one TLS handshake counted");
}

#[test]
fn plain_and_tls_clients_share_a_channel_and_get_each_push_once() {
    let ca = TestCa::new("mixed");
    let server = tls_server(&ca, false, 256);
    let mut clients: Vec<PomeloClient> = (0..4)
        .map(|i| {
            if i % 2 == 0 {
                tls_client(&server, &ca, &format!("tls-{i}"))
            } else {
                common::client(server.client_addr(), DEMO, &format!("plain-{i}"))
            }
        })
        .collect();
    let (mut manager, _) = management(server.client_addr(), DEMO, DEMO_SECRET);
    for n in 0..3 {
        let answer = manager.push_all(DEMO, json!({"n": n}));
        assert_eq!(answer["recipients"], 4, "{answer}");
    }
    for client in &mut clients {
        for n in 0..3 {
            assert_eq!(client.next_push().1["msg"]["n"], n, "[{}]", client.label());
        }
        client.assert_no_pending_push();
    }
}

#[test]
fn required_tls_refuses_a_plain_client_and_serves_a_tls_one() {
    let ca = TestCa::new("required");
    let server = tls_server(&ca, true, 256);
    let mut plain = PomeloClient::connect_raw(server.client_addr());
    plain.send_handshake();
    plain.expect_eof();
    let mut client = tls_client(&server, &ca, "phone-1");
    client.heartbeat();
    let refused: u64 = server.stats().reactors.iter().map(|r| r.tls.refused).sum();
    assert_eq!(refused, 1);
}

#[test]
fn a_client_that_stalls_mid_handshake_is_closed_at_the_deadline() {
    let ca = TestCa::new("stall");
    let server = tls_server(&ca, false, 256);
    let mut stalled = TcpStream::connect(server.client_addr()).unwrap();
    // The first bytes of a ClientHello record, then nothing.
    stalled.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
    let started = std::time::Instant::now();
    expect_closed_unanswered(&mut stalled, Duration::from_secs(6));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1500), "closed after {waited:?}, before the deadline");
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}, long after the deadline");
    // Meanwhile and after, others are served.
    tls_client(&server, &ca, "phone-1").heartbeat();
}

#[test]
fn handshakes_past_the_cap_are_refused_and_established_ones_go_on() {
    let ca = TestCa::new("cap");
    // One reactor, so the cap of 2 is the server's.
    let mut config = test_config(1);
    config.client.handshake_timeout_secs = 3;
    config.client.tls = Some(ClientTlsConfig {
        cert: ca.cert_pem(),
        key: ca.key_pem(),
        required: false,
        max_handshakes_per_reactor: 2,
    });
    let server = start(config);
    let mut established = tls_client(&server, &ca, "phone-1");
    let half_open: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(server.client_addr()).unwrap();
            s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
            s
        })
        .collect();
    common::wait_until("two handshakes running", Duration::from_secs(5), || {
        server.stats().reactors.iter().map(|r| r.handshaking).sum::<u64>() >= 2
    });
    let mut third = TcpStream::connect(server.client_addr()).unwrap();
    third.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
    let started = std::time::Instant::now();
    expect_closed_unanswered(&mut third, Duration::from_secs(2));
    assert!(started.elapsed() < Duration::from_secs(1), "the third ClientHello is closed at once");
    let refused: u64 = server.stats().reactors.iter().map(|r| r.tls.refused).sum();
    assert_eq!(refused, 1);
    established.heartbeat();
    // The scrape says so: one handshake done, three TLS connections open, one refused.
    let scrape = Scrape::take(server.control_addr());
    assert_eq!(scrape.sum("shaddock_tls_handshakes_total", &[]), 1.0);
    assert_eq!(scrape.sum("shaddock_tls_refused_total", &[]), 1.0);
    assert_eq!(scrape.sum("shaddock_tls_failures_total", &[]), 0.0);
    common::wait_until("the open gauge published", Duration::from_secs(5), || {
        Scrape::take(server.control_addr()).sum("shaddock_tls_connections", &[]) == 3.0
    });
    drop(half_open);
}

#[test]
fn a_tls_client_that_sends_garbage_ends_alone() {
    let ca = TestCa::new("garbage");
    let server = tls_server(&ca, false, 256);
    let mut good = tls_client(&server, &ca, "good");
    // A garbage ClientHello: the handshake fails, the connection is closed.
    let mut bad = TcpStream::connect(server.client_addr()).unwrap();
    bad.write_all(b"\x16\x03\x01\x00\x05hello").unwrap();
    expect_closed_unanswered(&mut bad, Duration::from_secs(5));
    // A record that does not authenticate after a good handshake: also closed.
    let mut tampered = TcpStream::connect(server.client_addr()).unwrap();
    let name = "localhost".try_into().unwrap();
    let mut conn = rustls::ClientConnection::new(ca.client_config(), name).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tampered).unwrap();
    }
    tampered.write_all(&[0x17, 0x03, 0x03, 0x00, 0x20]).unwrap();
    tampered.write_all(&[0xAB; 0x20]).unwrap();
    tampered.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    let _ = tampered.read_to_end(&mut rest);
    let failures: u64 = server.stats().reactors.iter().map(|r| r.tls.failures).sum();
    assert_eq!(failures, 2, "both counted as failed");
    let (mut manager, _) = management(server.client_addr(), DEMO, DEMO_SECRET);
    assert_eq!(manager.push_all(DEMO, json!({"still": true}))["recipients"], 1);
    assert_eq!(good.next_push().1["msg"]["still"], true);
}

#[test]
fn a_reload_reaches_new_connections_and_old_ones_go_on() {
    let ca = TestCa::new("reload");
    let server = tls_server(&ca, false, 256);
    let mut before = tls_client(&server, &ca, "before");
    let leaf = |addr| {
        let mut socket = TcpStream::connect(addr).unwrap();
        let name = "localhost".try_into().unwrap();
        let mut conn = rustls::ClientConnection::new(ca.client_config(), name).unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut socket).unwrap();
        }
        conn.peer_certificates().unwrap()[0].clone()
    };
    let first = leaf(server.client_addr());
    ca.issue("cert.pem", "key.pem", &["localhost", "push.example.test"]);
    server.reload_certificates().expect("the new files load");
    let second = leaf(server.client_addr());
    assert_ne!(first, second, "a new connection gets the new certificate");
    // A bad file keeps the current certificate, and says which file.
    std::fs::write(ca.key_pem(), "garbage").unwrap();
    let error = server.reload_certificates().unwrap_err();
    assert!(error.contains("key.pem"), "{error}");
    assert_eq!(leaf(server.client_addr()), second);
    before.heartbeat();
    let (mut manager, _) = management(server.client_addr(), DEMO, DEMO_SECRET);
    assert_eq!(manager.push_all(DEMO, json!({"after": "reload"}))["recipients"], 1);
    assert_eq!(before.next_push().1["msg"]["after"], "reload");
}

#[test]
fn a_missing_certificate_fails_the_start_naming_the_file() {
    let ca = TestCa::new("missing");
    let mut config = test_config(1);
    config.client.tls = Some(ClientTlsConfig {
        cert: ca.path("nope.pem"),
        key: ca.key_pem(),
        required: false,
        max_handshakes_per_reactor: 256,
    });
    let error = shaddock::Server::start(config).unwrap_err().to_string();
    assert!(error.starts_with("client.tls: "), "{error}");
    assert!(error.contains("nope.pem"), "{error}");
}

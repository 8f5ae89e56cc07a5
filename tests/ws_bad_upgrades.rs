//! Bad WebSocket upgrades get their HTTP status (or are closed at the handshake deadline), bad
//! frames on upgraded sessions get their close code, and none of it disturbs the TCP and
//! WebSocket clients already in the channel. Good-but-unusual upgrades (a split first read,
//! permessage-deflate offered, a browser's `Connection: keep-alive, Upgrade`) still get their 101.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::pomelo::{DATA, HANDSHAKE, HEARTBEAT, encode_package, encode_request};
use common::ws::{
    CLOSE_PROTOCOL, CLOSE_TOO_BIG, MASK, OP_BINARY, OP_CONTINUATION, SAMPLE_ACCEPT, SAMPLE_KEY,
    WsPomeloClient, client_frame, frame_header, raw_upgrade, read_to_close, refused, tcp_connect,
    ws_client_with,
};
use common::{
    DEMO, DEMO_SECRET, PUSH_ALL, PomeloClient, TestServer, management, start, test_config,
    wait_until,
};
use serde_json::json;

/// The one origin the test server allows.
const GOOD_ORIGIN: &str = "https://good.example";
/// `client.max_package_bytes` of the test server: a WebSocket payload may be 1028 bytes.
const MAX_PACKAGE: usize = 1024;

const HOST: &str = "Host: 127.0.0.1";
const UPGRADE: &str = "Upgrade: websocket";
const CONNECTION: &str = "Connection: Upgrade";
const VERSION: &str = "Sec-WebSocket-Version: 13";
const ORIGIN: &str = "Origin: https://good.example";

fn key_line() -> String {
    format!("Sec-WebSocket-Key: {SAMPLE_KEY}")
}

/// A request: `request_line`, then `headers`, each line ended by CRLF, then the blank line.
fn request(request_line: &str, headers: &[&str]) -> Vec<u8> {
    let mut out = format!("{request_line}\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// A valid upgrade request with the allowed origin, but for `replace`: each `(prefix, line)`
/// replaces the header starting with `prefix` by `line` (or drops it when `line` is empty).
fn upgrade_but(request_line: &str, replace: &[(&str, &str)]) -> Vec<u8> {
    let key = key_line();
    let mut headers: Vec<&str> = vec![HOST, UPGRADE, CONNECTION, &key, VERSION, ORIGIN];
    for (prefix, line) in replace {
        let at = headers
            .iter()
            .position(|h| h.starts_with(prefix))
            .unwrap_or_else(|| panic!("no header {prefix} to replace"));
        if line.is_empty() {
            headers.remove(at);
        } else {
            headers[at] = line;
        }
    }
    request(request_line, &headers)
}

/// `bytes` (a whole request head) with one more header line at its end.
fn with_header(mut bytes: Vec<u8>, line: &str) -> Vec<u8> {
    assert!(bytes.ends_with(b"\r\n\r\n"));
    bytes.truncate(bytes.len() - 2);
    bytes.extend_from_slice(line.as_bytes());
    bytes.extend_from_slice(b"\r\n\r\n");
    bytes
}

/// A server with a 1 s handshake deadline, an origin allow-list and 1 KiB packages, and healthy
/// clients of both transports entered before anything bad happens.
///
/// Fields drop in declaration order: the clients close before the server shuts down.
struct Fixture {
    admin: PomeloClient,
    tcp: Vec<PomeloClient>,
    ws: Vec<WsPomeloClient>,
    addr: SocketAddr,
    server: TestServer,
}

impl Fixture {
    fn new() -> Fixture {
        let mut config = test_config(2);
        config.client.handshake_timeout_secs = 1;
        config.client.allowed_origins = vec![GOOD_ORIGIN.into()];
        config.client.max_package_bytes = MAX_PACKAGE;
        let server = start(config);
        let addr = server.client_addr();
        let tcp = (0..4).map(|i| common::client(addr, DEMO, &format!("healthy-tcp-{i}"))).collect();
        let ws = (0..4)
            .map(|i| {
                ws_client_with(addr, &[("Origin", GOOD_ORIGIN)], DEMO, &format!("healthy-ws-{i}"))
            })
            .collect();
        let (admin, _) = management(addr, DEMO, DEMO_SECRET);
        Fixture { admin, tcp, ws, addr, server }
    }

    /// A pushAll reaches every healthy client and the `extra` sessions, and nobody else.
    fn assert_undisturbed(&mut self, extra: &mut [&mut WsPomeloClient]) {
        let response = self.admin.push_all(DEMO, json!("still here"));
        assert_eq!(
            response,
            json!({
                "code": 200,
                "msg": "push is ok.",
                "recipients": self.tcp.len() + self.ws.len() + extra.len()
            }),
        );
        let want = ("onMsg".to_owned(), json!({"msg": "still here"}));
        for c in &mut self.tcp {
            assert_eq!(c.next_push(), want, "[{}]", c.label());
            c.assert_no_pending_push();
        }
        for c in self.ws.iter_mut().chain(extra.iter_mut().map(|c| &mut **c)) {
            assert_eq!(c.next_push(), want, "[{}]", c.label());
            c.assert_no_pending_push();
        }
    }
}

#[test]
fn refused_upgrades_get_their_status_then_close() {
    let mut f = Fixture::new();
    let get = "GET / HTTP/1.1";
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("missing Sec-WebSocket-Key", upgrade_but(get, &[("Sec-WebSocket-Key", "")]), 400),
        (
            "a key that is not 16 bytes in base64",
            upgrade_but(get, &[("Sec-WebSocket-Key", "Sec-WebSocket-Key: c2hvcnQ=")]),
            400,
        ),
        ("missing Upgrade", upgrade_but(get, &[("Upgrade", "")]), 400),
        ("Upgrade: h2c", upgrade_but(get, &[("Upgrade", "Upgrade: h2c")]), 400),
        ("missing Connection", upgrade_but(get, &[("Connection", "")]), 400),
        (
            "Connection without upgrade",
            upgrade_but(get, &[("Connection", "Connection: keep-alive")]),
            400,
        ),
        ("HTTP/1.0", upgrade_but("GET / HTTP/1.0", &[]), 400),
        ("no HTTP version", upgrade_but("GET /", &[]), 400),
        ("POST", upgrade_but("POST / HTTP/1.1", &[]), 405),
        ("PUT", upgrade_but("PUT /ws HTTP/1.1", &[]), 405),
        (
            "an origin not in the allow-list",
            upgrade_but(get, &[("Origin", "Origin: https://evil.example")]),
            403,
        ),
    ];
    for (what, bytes, status) in &cases {
        let response = refused(f.addr, bytes, *status);
        assert_eq!(response.status, *status, "{what}");
    }

    // A wrong version is 426 and names the version the server speaks.
    for version in ["Sec-WebSocket-Version: 8", "Sec-WebSocket-Version: 14"] {
        let response =
            refused(f.addr, &upgrade_but(get, &[("Sec-WebSocket-Version", version)]), 426);
        assert_eq!(response.header("Sec-WebSocket-Version"), Some("13"), "{version}: {response:?}");
    }

    f.assert_undisturbed(&mut []);
}

#[test]
fn head_over_8_kib_gets_431_and_one_under_is_upgraded() {
    let mut f = Fixture::new();

    let big = format!("X-Filler: {}", "a".repeat(9000));
    let key = key_line();
    let bytes =
        request("GET / HTTP/1.1", &[HOST, UPGRADE, CONNECTION, &key, VERSION, ORIGIN, &big]);
    refused(f.addr, &bytes, 431);

    // The same without the terminating blank line: the size alone decides, not the end.
    let unterminated = &bytes[..bytes.len() - 2];
    refused(f.addr, unterminated, 431);

    // 7,000 bytes of head is under the limit.
    let filler = format!("X-Filler: {}", "a".repeat(6800));
    let bytes =
        request("GET / HTTP/1.1", &[HOST, UPGRADE, CONNECTION, &key, VERSION, ORIGIN, &filler]);
    assert!(bytes.len() > 6900 && bytes.len() < 8192, "{}", bytes.len());
    let mut under = upgraded(f.addr, &bytes, "big-head");

    f.assert_undisturbed(&mut [&mut under]);
}

/// Upgrades by hand, checks the 101 (with the RFC's own accept value for the RFC's key, and no
/// extension), then completes the Pomelo handshake and enters as `client_id`.
fn upgraded(addr: SocketAddr, bytes: &[u8], client_id: &str) -> WsPomeloClient {
    let (stream, response) = raw_upgrade(addr, bytes);
    check_101(&response, client_id);
    let mut c = WsPomeloClient::from_upgraded(stream, response.rest);
    c.pomelo_handshake();
    assert_eq!(
        c.enter_client(DEMO, client_id),
        json!({"code": 200, "msg": "add ok"}),
        "{client_id}"
    );
    c
}

fn check_101(response: &common::ws::HttpResponse, what: &str) {
    assert_eq!(response.status, 101, "{what}: {response:?}");
    assert_eq!(
        response.header("Sec-WebSocket-Accept"),
        Some(SAMPLE_ACCEPT),
        "{what}: {response:?}"
    );
    assert!(
        response.header("Upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
        "{what}: {response:?}"
    );
    assert!(
        response.header("Connection").is_some_and(|v| v.eq_ignore_ascii_case("upgrade")),
        "{what}: {response:?}"
    );
    assert!(
        response.header("Sec-WebSocket-Extensions").is_none(),
        "{what}: an extension was negotiated: {response:?}"
    );
}

#[test]
fn unusual_but_valid_upgrades_get_101() {
    let mut f = Fixture::new();
    let get = "GET / HTTP/1.1";
    let mut sessions = vec![
        // Offered compression is never negotiated: frames stay plain (tungstenite would fail
        // on an RSV1 bit it did not negotiate).
        upgraded(
            f.addr,
            &with_header(
                upgrade_but(get, &[]),
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
            ),
            "deflate-offered",
        ),
        // Firefox sends a token list.
        upgraded(
            f.addr,
            &upgrade_but(get, &[("Connection", "Connection: keep-alive, Upgrade")]),
            "firefox-connection",
        ),
        // Header values are case-insensitive tokens; the origin is compared case-insensitively.
        upgraded(
            f.addr,
            &upgrade_but(
                get,
                &[
                    ("Upgrade", "Upgrade: WebSocket"),
                    ("Connection", "connection: upgrade"),
                    ("Origin", "Origin: HTTPS://GOOD.EXAMPLE"),
                ],
            ),
            "odd-case",
        ),
        // Any path.
        upgraded(f.addr, &upgrade_but("GET /some/path?x=1 HTTP/1.1", &[]), "any-path"),
    ];
    // And tungstenite's own request with the allowed origin.
    sessions.push(ws_client_with(f.addr, &[("Origin", GOOD_ORIGIN)], DEMO, "tungstenite-origin"));

    let mut extra: Vec<&mut WsPomeloClient> = sessions.iter_mut().collect();
    f.assert_undisturbed(&mut extra);
}

/// The server waits for the bytes that decide the transport; it does not guess from "GE".
#[test]
fn a_short_first_read_is_waited_for() {
    let mut f = Fixture::new();
    let bytes = upgrade_but("GET / HTTP/1.1", &[]);
    let mut stream = tcp_connect(f.addr);
    stream.write_all(&bytes[..2]).unwrap();
    // Client-side pacing: the two bytes must arrive on their own.
    thread::sleep(Duration::from_millis(300));
    stream.write_all(&bytes[2..]).unwrap();
    let response = common::ws::read_response_head(&mut stream);
    check_101(&response, "split after GE");
    let mut c = WsPomeloClient::from_upgraded(stream, response.rest);
    c.pomelo_handshake();
    assert_eq!(c.enter_client(DEMO, "slow-start")["code"], 200);

    f.assert_undisturbed(&mut [&mut c]);
}

/// How long after `connected` the server closed `stream`, asserting it sent nothing: a
/// connection that never finished its handshake is simply closed (DESIGN §1).
fn closed_after(stream: &mut TcpStream, connected: Instant) -> Duration {
    let mut sent = Vec::new();
    read_to_close(stream, &mut sent);
    let waited = connected.elapsed();
    assert!(
        sent.is_empty(),
        "the server answered an unfinished head: {:?}",
        String::from_utf8_lossy(&sent)
    );
    waited
}

fn assert_at_deadline(waited: Duration, what: &str) {
    assert!(
        waited >= Duration::from_millis(500),
        "{what}: closed too early, after {waited:?} (deadline 1 s)"
    );
    assert!(
        waited <= Duration::from_millis(3500),
        "{what}: closed too late, after {waited:?} (deadline 1 s)"
    );
}

#[test]
fn a_head_that_never_ends_is_closed_at_the_handshake_deadline() {
    let mut f = Fixture::new();
    // Both at once: a head cut after its first header line, and a request line with nothing
    // decided yet ("GE"), which is held to the same deadline.
    let stalled_at = Instant::now();
    let mut stalled = tcp_connect(f.addr);
    stalled.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let undecided_at = Instant::now();
    let mut undecided = tcp_connect(f.addr);
    undecided.write_all(b"GE").unwrap();
    assert_at_deadline(closed_after(&mut stalled, stalled_at), "a stalled head");
    assert_at_deadline(closed_after(&mut undecided, undecided_at), "a stalled \"GE\"");

    f.assert_undisturbed(&mut []);
}

#[test]
fn a_trickled_head_is_closed_at_the_handshake_deadline() {
    let mut f = Fixture::new();
    let connected = Instant::now();
    let mut stream = tcp_connect(f.addr);
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slowloris: ").unwrap();
    // One more header byte every 200 ms: activity must not extend the deadline.
    let waited = loop {
        assert!(
            connected.elapsed() < Duration::from_secs(6),
            "a trickled head was still open after 6 s (deadline 1 s)"
        );
        if stream.write_all(b"a").is_err() {
            break connected.elapsed();
        }
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let mut chunk = [0u8; 1024];
        match stream.read(&mut chunk) {
            Ok(0) => break connected.elapsed(),
            Ok(n) => panic!(
                "the server answered a head that never finished: {:?}",
                String::from_utf8_lossy(&chunk[..n])
            ),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                break connected.elapsed();
            }
            Err(e) => panic!("trickling: {e}"),
        }
    };
    assert_at_deadline(waited, "a trickled head");

    f.assert_undisturbed(&mut []);
}

/// The deadline runs from the accept to the Pomelo handshake ack, across the upgrade.
#[test]
fn an_upgrade_without_a_pomelo_handshake_is_closed_at_the_deadline() {
    let mut f = Fixture::new();
    let connected = Instant::now();
    let mut c = WsPomeloClient::connect_raw_with(f.addr, &[("Origin", GOOD_ORIGIN)]);
    let end = c.read_to_end();
    assert_at_deadline(connected.elapsed(), "an upgraded session without a handshake");
    assert_eq!(end.kick, None, "never a working session, so no kick: {end:?}");
    assert!(end.pushes.is_empty(), "{end:?}");

    f.assert_undisturbed(&mut []);
}

#[test]
fn unmasked_client_frames_get_close_1002() {
    let mut f = Fixture::new();

    // Right after the upgrade (not yet a working session).
    let mut fresh = WsPomeloClient::connect_raw_with(f.addr, &[("Origin", GOOD_ORIGIN)]);
    let handshake = encode_package(HANDSHAKE, common::HANDSHAKE_BODY.as_bytes());
    fresh.send_raw(&client_frame(true, OP_BINARY, &handshake, None));
    let end = fresh.read_to_end();
    assert!(end.close_frame, "unmasked, fresh: no close frame, {end:?}");
    assert_eq!(end.code, Some(CLOSE_PROTOCOL), "unmasked, fresh: {end:?}");
    if let Some(reason) = &end.kick {
        assert!(reason.starts_with("protocol error"), "unmasked, fresh: {end:?}");
    }

    // On a working session (handshaken, entered).
    let mut working = ws_client_with(f.addr, &[("Origin", GOOD_ORIGIN)], DEMO, "unmasked");
    working.send_raw(&client_frame(true, OP_BINARY, &encode_package(HEARTBEAT, &[]), None));
    let end = working.read_to_end();
    assert!(end.close_frame, "unmasked, working: no close frame, {end:?}");
    assert_eq!(end.code, Some(CLOSE_PROTOCOL), "unmasked, working: {end:?}");
    if let Some(reason) = &end.kick {
        assert!(reason.starts_with("protocol error"), "unmasked, working: {end:?}");
    }

    f.assert_undisturbed(&mut []);
}

/// A request of exactly `len` bytes of Pomelo message (`len + 4` of WebSocket payload).
fn push_all_request_of(id: u64, len: usize) -> Vec<u8> {
    let body_for = |msg: &str| json!({"apikey": DEMO, "msg": msg}).to_string();
    let overhead = encode_request(id, PUSH_ALL, body_for("").as_bytes()).len();
    let message = encode_request(id, PUSH_ALL, body_for(&"x".repeat(len - overhead)).as_bytes());
    assert_eq!(message.len(), len);
    message
}

#[test]
fn oversize_frames_are_kicked_with_close_1009_before_their_payload() {
    let mut f = Fixture::new();
    let origin = [("Origin", GOOD_ORIGIN)];

    // At the limit: a 1028-byte payload (a 1024-byte message) is read and answered. (It is a
    // client calling a management route, so the answer is a 403, and nothing is pushed.)
    let mut at_limit = ws_client_with(f.addr, &origin, DEMO, "at-limit");
    let id = 7;
    let package = encode_package(DATA, &push_all_request_of(id, MAX_PACKAGE));
    assert_eq!(package.len(), MAX_PACKAGE + 4);
    at_limit.send_raw(&client_frame(true, OP_BINARY, &package, Some(MASK)));
    let response = at_limit.read_response(id, PUSH_ALL);
    assert_eq!(response["code"], 403, "a 1028-byte payload: {response}");

    // One byte over, in the 16-bit length form; only the header is sent.
    at_limit.send_raw(&frame_header(true, OP_BINARY, (MAX_PACKAGE + 5) as u64, Some(MASK)));
    let (reason, code) = at_limit.expect_kick();
    assert_eq!(reason, "package too large");
    assert_eq!(code, Some(CLOSE_TOO_BIG), "kick {reason:?}");

    // A terabyte in the 64-bit form.
    let mut huge = ws_client_with(f.addr, &origin, DEMO, "huge");
    huge.send_raw(&frame_header(true, OP_BINARY, 1 << 40, Some(MASK)));
    let (reason, code) = huge.expect_kick();
    assert_eq!(reason, "package too large");
    assert_eq!(code, Some(CLOSE_TOO_BIG), "kick {reason:?}");

    wait_until("the kicks are counted", Duration::from_secs(5), || {
        f.server.kicks_total("package too large") == 2
    });
    f.assert_undisturbed(&mut []);
}

/// Fragments that are each under the limit but together over it are refused as soon as the
/// continuation's header says so, not after its payload has been buffered.
#[test]
fn fragments_over_the_limit_are_kicked_at_the_continuation_header() {
    let mut f = Fixture::new();
    let mut pieces = ws_client_with(f.addr, &[("Origin", GOOD_ORIGIN)], DEMO, "pieces");
    // A 1,200-byte package in two 600-byte fragments; the second fragment's payload never comes.
    let package = encode_package(DATA, &push_all_request_of(9, 1196));
    let mut bytes = client_frame(false, OP_BINARY, &package[..600], Some(MASK));
    bytes.extend(frame_header(true, OP_CONTINUATION, 600, Some(MASK)));
    pieces.send_raw(&bytes);
    // A time-out here means the server waits for the payload before adding up the fragments.
    pieces.set_timeout(Duration::from_secs(5));
    let (reason, code) = pieces.expect_kick();
    assert_eq!(reason, "package too large");
    assert_eq!(code, Some(CLOSE_TOO_BIG), "kick {reason:?}");

    f.assert_undisturbed(&mut []);
}

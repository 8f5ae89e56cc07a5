//! Every error of the control port is JSON `{"error", "code"}` with the right status (400, 401,
//! 404, 405, 413, 415, 429), nothing a request sends breaks the port or reaches a client, and
//! shutdown stops the port within its bound even with a request stuck half-sent.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::http;
use common::{DEMO, DEMO_SECRET, OTHER, OTHER_SECRET, start, test_config};
use serde_json::json;
use shaddock::Server;

const PUSH: &str = "/api/apps/demo/push";
const PUSH_ALICE: &str = "/api/apps/demo/clients/alice/push";
const CLIENTS: &str = "/api/apps/demo/clients";

fn post(control: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> http::Response {
    http::request(control, "POST", path, headers, body.as_bytes())
}

#[test]
fn a_missing_or_wrong_secret_is_401_on_every_api_path() {
    let mut config = test_config(1);
    // 18 wrong secrets from one address: past the throttle's default (its own test below).
    config.control.wrong_secrets_per_minute = 0;
    let server = start(config);
    let control = server.control_addr();
    let _alice = common::client(server.client_addr(), DEMO, "alice");
    let json = ("Content-Type", "application/json");
    let other_app = format!("Bearer {OTHER_SECRET}");
    let cases = [
        ("no Authorization header", None),
        ("a wrong secret", Some("Bearer not-the-secret")),
        ("the other app's secret", Some(other_app.as_str())),
        ("a secret without the Bearer scheme", Some(DEMO_SECRET)),
        ("Basic instead of Bearer", Some("Basic ZGVtbzp0ZXN0LXNlY3JldC0xMjM=")),
        ("Bearer and nothing else", Some("Bearer ")),
    ];
    for (what, auth) in cases {
        let mut headers = vec![json];
        headers.extend(auth.map(|a| ("Authorization", a)));
        for (method, path) in [("POST", PUSH), ("POST", PUSH_ALICE), ("GET", CLIENTS)] {
            let body = if method == "POST" { r#"{"msg":"x"}"# } else { "" };
            let response = http::request(control, method, path, &headers, body.as_bytes());
            response.assert_error(401);
            assert_eq!(response.header("www-authenticate"), Some("Bearer"), "{what}: {path}");
        }
    }
    // The other app's secret works for the other app: it is only the wrong app's secret.
    let response =
        http::post_json(control, "/api/apps/other/push", Some(OTHER_SECRET), r#"{"msg":1}"#);
    assert_eq!(response.json(), json!({"recipients": 0}));
}

/// One request from `source` (bound before connecting), `Connection: close`.
fn request_from(source: [u8; 4], control: SocketAddr, auth: &str) -> http::Response {
    use std::io::Write;
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((source, 0)).into()).unwrap();
    socket.connect(&control.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    stream.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    let request = format!(
        "GET {CLIENTS} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    http::read_response(&mut stream)
}

#[test]
fn an_address_past_ten_wrong_secrets_a_minute_is_429_even_with_the_right_one() {
    let server = start(test_config(1));
    let control = server.control_addr();
    let right = format!("Bearer {DEMO_SECRET}");
    for i in 0..10 {
        let response = request_from([127, 0, 0, 1], control, "Bearer guess");
        assert_eq!(response.status, 401, "wrong secret {i}");
    }
    let response = request_from([127, 0, 0, 1], control, &right);
    response.assert_error(429);
    let retry: u64 = response.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // Another address is not refused, and its right secret works.
    let response = request_from([127, 0, 0, 2], control, &right);
    assert_eq!(response.status, 200, "{}", response.text());
}

#[test]
fn unknown_apps_clients_and_paths_are_404_and_wrong_methods_405() {
    let server = start(test_config(1));
    let control = server.control_addr();
    // An unknown app is 404 whatever the secret.
    for secret in [Some(DEMO_SECRET), None] {
        http::post_json(control, "/api/apps/nope/push", secret, r#"{"msg":"x"}"#).assert_error(404);
        http::get(control, "/api/apps/nope/clients", secret).assert_error(404);
    }
    let response = http::post_json(control, PUSH_ALICE, Some(DEMO_SECRET), r#"{"msg":"x"}"#);
    response.assert_error(404);
    assert!(response.json()["error"].as_str().unwrap().contains("alice"), "{}", response.text());
    http::get(control, "/nope", None).assert_error(404);
    http::get(control, "/api/apps/demo/nope", Some(DEMO_SECRET)).assert_error(404);
    http::get(control, PUSH, Some(DEMO_SECRET)).assert_error(405);
    http::request(control, "DELETE", CLIENTS, &[], b"").assert_error(405);
}

#[test]
fn bodies_must_be_json_objects_with_msg() {
    let server = start(test_config(1));
    let control = server.control_addr();
    let mut alice = common::client(server.client_addr(), DEMO, "alice");
    let auth = format!("Bearer {DEMO_SECRET}");
    let auth = ("Authorization", auth.as_str());
    for path in [PUSH, PUSH_ALICE] {
        // 415: not declared as JSON, whatever the body.
        for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
            let mut headers = vec![auth];
            headers.extend(content_type.map(|ct| ("Content-Type", ct)));
            post(control, path, &headers, r#"{"msg":"x"}"#).assert_error(415);
        }
        // 400: declared as JSON but not a usable body.
        let json = ("Content-Type", "application/json");
        for body in [
            "",
            "{",
            "not json",
            "[1]",
            "\"msg\"",
            "{}",
            r#"{"mgs":"typo"}"#,
            "{\"msg\":\"\u{0}\"",
            "\u{feff}{\"msg\":1}",
        ] {
            let response = post(control, path, &[auth, json], body);
            response.assert_error(400);
        }
        let deep = format!("{{\"msg\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        post(control, path, &[auth, json], &deep).assert_error(400);
        // The media type is case-insensitive and may carry parameters.
        let json = ("Content-Type", "Application/JSON; charset=utf-8");
        let response = post(control, path, &[auth, json], r#"{"msg":"accepted"}"#);
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(alice.next_push(), ("onMsg".into(), json!({"msg": "accepted"})));
    }
    alice.assert_no_pending_push();
}

#[test]
fn a_body_over_the_limit_is_413_and_one_at_the_limit_is_pushed() {
    let mut config = test_config(1);
    config.control.max_body_bytes = 1024;
    let server = start(config);
    let control = server.control_addr();
    let mut alice = common::client(server.client_addr(), DEMO, "alice");
    let body_of = |len: usize| {
        let body = format!("{{\"msg\":\"{}\"}}", "x".repeat(len - 10));
        assert_eq!(body.len(), len);
        body
    };
    for path in [PUSH, PUSH_ALICE] {
        let at_limit = body_of(1024);
        let response = http::post_json(control, path, Some(DEMO_SECRET), &at_limit);
        assert_eq!(response.status, 200, "{}", response.text());
        let (route, body) = alice.next_push();
        assert_eq!((route.as_str(), body["msg"].as_str().map(str::len)), ("onMsg", Some(1014)));
        for len in [1025, 4096, 512 * 1024] {
            http::post_json(control, path, Some(DEMO_SECRET), &body_of(len)).assert_error(413);
        }
    }
    // A body that declares no length (chunked) is held to the same limit.
    let big = body_of(2048);
    let chunked = format!(
        "POST {PUSH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {DEMO_SECRET}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    http::send_raw(control, chunked.as_bytes()).assert_error(413);
    alice.assert_no_pending_push();
}

#[test]
fn an_apps_push_rate_is_429_with_retry_after_and_other_apps_are_not_limited() {
    let mut config = test_config(1);
    config.apps[0].push_rate_per_sec = Some(2);
    let server = start(config);
    let control = server.control_addr();
    let mut alice = common::client(server.client_addr(), DEMO, "alice");
    let push = |path: &str| http::post_json(control, path, Some(DEMO_SECRET), r#"{"msg":"hi"}"#);

    // The bucket starts with one second's worth (2); both push paths take from it. Pushes that
    // are refused before the rate is checked (here: a client that is not online) take nothing.
    http::post_json(control, "/api/apps/demo/clients/bob/push", Some(DEMO_SECRET), r#"{"msg":1}"#)
        .assert_error(404);
    assert_eq!(push(PUSH).status, 200);
    assert_eq!(push(PUSH_ALICE).status, 200);
    let refused = push(PUSH);
    refused.assert_error(429);
    assert_eq!(refused.header("retry-after"), Some("1"), "{:?}", refused.headers);
    push(PUSH_ALICE).assert_error(429);
    for _ in 0..2 {
        assert_eq!(alice.next_push(), ("onMsg".into(), json!({"msg": "hi"})));
    }
    alice.assert_no_pending_push();

    // The other app has no rate.
    for _ in 0..10 {
        let response =
            http::post_json(control, "/api/apps/other/push", Some(OTHER_SECRET), "{\"msg\":1}");
        assert_eq!(response.status, 200, "{}", response.text());
    }
    // Presence is not a push, so it is not limited either.
    assert_eq!(http::get(control, CLIENTS, Some(DEMO_SECRET)).status, 200);

    // The bucket refills at the rate: after waiting as long as Retry-After said, a push goes
    // through (the refill arithmetic itself is unit-tested with time passed in).
    let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    std::thread::sleep(Duration::from_secs(retry_after));
    assert_eq!(push(PUSH).status, 200);
    assert_eq!(alice.next_push(), ("onMsg".into(), json!({"msg": "hi"})));
}

#[test]
fn garbage_on_the_control_port_breaks_nothing() {
    let server = start(test_config(2));
    let (addr, control) = (server.client_addr(), server.control_addr());
    let mut alice = common::client(addr, DEMO, "alice");
    let huge_header = format!(
        "GET /healthz HTTP/1.1\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    for raw in [
        &b"\x00\x01\x02\x03 garbage\r\n\r\n"[..],
        b"GET /%ff%fe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"POST /api/apps/%ff/push HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        b"GET /api/apps/demo/clients?limit=%ff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"POST /api/apps/demo/push HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"POST /api/apps/demo/push HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        huge_header.as_bytes(),
    ] {
        // Any answer but a closed port will do; no answer at all (a reset) is fine too.
        let mut stream = TcpStream::connect(control).expect("the control port accepts");
        stream.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
        let _ = stream.write_all(raw);
        let mut answer = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stream, &mut answer);
        let status_line = String::from_utf8_lossy(&answer[..answer.len().min(12)]).into_owned();
        assert!(
            answer.is_empty() || status_line.starts_with("HTTP/1.1 4"),
            "{:?} got {status_line:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(60)])
        );
    }
    // The port and the reactors still work, and nothing reached the client.
    assert_eq!(http::get(control, "/healthz", None).status, 200);
    alice.assert_no_pending_push();
    let response = http::post_json(control, PUSH, Some(DEMO_SECRET), r#"{"msg":"still here"}"#);
    assert_eq!(response.json(), json!({"recipients": 1}));
    assert_eq!(alice.next_push(), ("onMsg".into(), json!({"msg": "still here"})));
    let _other = common::client(addr, OTHER, "bob");
}

#[test]
fn shutdown_stops_the_port_even_with_a_request_stuck_half_sent() {
    let server = Server::start(test_config(1)).expect("server starts");
    let control = server.control_addr();
    assert_eq!(http::get(control, "/healthz", None).status, 200);
    // Headers and half a body, then nothing: graceful shutdown must not wait for it forever.
    let mut stuck = TcpStream::connect(control).unwrap();
    let head = format!(
        "POST {PUSH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {DEMO_SECRET}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"msg\":"
    );
    stuck.write_all(head.as_bytes()).unwrap();
    let idle = TcpStream::connect(control).unwrap();
    common::shutdown_within(server, Duration::from_secs(15));
    let refused = TcpStream::connect(control);
    assert!(refused.is_err(), "the control port still accepts after shutdown");
    drop((stuck, idle));
}

#[test]
fn a_busy_control_port_fails_the_start_with_its_address() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = test_config(2);
    config.control.listen = busy.local_addr().unwrap();
    let e = Server::start(config).expect_err("the control port is taken");
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
    let message = e.to_string();
    assert!(
        message.starts_with(&format!("control port {}: ", busy.local_addr().unwrap())),
        "{message}"
    );
}

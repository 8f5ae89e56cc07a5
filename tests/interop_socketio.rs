//! Real Socket.IO clients nobody here wrote against the Socket.IO frontend (Pomelo's
//! sioconnector): socket.io-client 0.9.16 (socket.io 0.9), 2.5.0 (Engine.IO 3) and 4.8.1
//! (Engine.IO 4), from npm, run unchanged in Node over WebSocket
//! (`tests/interop/socketio.mjs`), with Pomelo's socket.io message layer on top
//! (`socket.send(Protocol.encode(id, route, msg))`), beside the tests' own Pomelo clients.
//!
//! - each version enters as a client (`sio-connector.entryHandler.enter`, `{code:200, msg:"add
//!   ok"}`), and a socket.io-client 4 management session (role server) hears its `onAdd`; a wrong
//!   secret for role server is a 401 on every version, an unknown route a 404;
//! - the manager's pushAll reaches the three once each; its pushByClientId to each reaches that
//!   one only, once; an HTTP push `"end"` after them shows nothing else arrived;
//! - a second connection of the same version entering with an online clientId replaces the
//!   first: the first gets `{"route":"onKick","reason":"replaced"}` then socket.io's disconnect
//!   (0.9 `0::`, 2.x/4.x `41`), which its client reports as the server's ("booted", "io server
//!   disconnect"); a later push reaches only the new connections; the manager hears an `onAdd`
//!   for each replacement and no `onLeave`;
//! - one HTTP pushAll reaches a Pomelo TCP, a Pomelo WebSocket and the three Socket.IO clients of
//!   one channel exactly once each (5 recipients), and the presence list has all five;
//! - the server's pings (socket.io 0.9 heartbeats, Engine.IO 4 pings) keep 0.9 and 4.x clients,
//!   which close a connection whose pings stop, connected past their own timeout, and a 2.x
//!   client's pings are answered.
//!
//! "Exactly once" is checked with a sentinel: after the pushes under test, an HTTP push; a
//! client must have received the pushes, then the sentinel, and nothing else (the script waits
//! 300 ms more after it). The script and every wait in it are bounded; a missing npm package
//! fails the test with the command that installs it (`.ci/run` installs them).

mod common;
#[path = "interop/runner.rs"]
mod runner;

use std::net::SocketAddr;
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use common::ws::ws_client;
use common::{DEMO, DEMO_SECRET, start, test_config};
use serde_json::{Value, json};

const SCRIPT: &str = "socketio.mjs";

/// The client versions, as the script names them.
const VERSIONS: [&str; 3] = ["0.9", "2", "4"];

/// How long the script may run before it is killed and the test fails.
const SCRIPT_LIMIT: Duration = Duration::from_secs(30);

/// The script's arguments for `scenario` against `server`, plus `extra`.
fn script_args(server: &common::TestServer, scenario: &str, extra: &[&str]) -> Vec<String> {
    let mut args = runner::server_args(server.client_addr().port(), DEMO, DEMO_SECRET, 20000);
    args.extend([
        "--control-port".to_owned(),
        server.control_addr().port().to_string(),
        "--scenario".to_owned(),
        scenario.to_owned(),
    ]);
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

fn onmsg(msg: Value) -> Value {
    json!({ "msg": msg })
}

/// What a client that received `received` and nothing else reports (`disconnects`: how it
/// ended, so far; `connected`: whether it still is).
fn client_summary(received: Value, kicks: Value, disconnects: Value, connected: bool) -> Value {
    json!({
        "received": received,
        "pushes": [],
        "kicks": kicks,
        "disconnects": disconnects,
        "errors": [],
        "unexpected": [],
        "connected": connected,
    })
}

/// The same `value` for each version, as the script reports per-version results.
fn each(value: Value) -> Value {
    VERSIONS
        .iter()
        .map(|v| (v.to_string(), value.clone()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[test]
fn socket_io_0_9_2_and_4_enter_get_pushes_once_and_are_replaced() {
    runner::require_node_modules();
    let server = start(test_config(2));
    let run = runner::run_script(SCRIPT, &script_args(&server, "main", &[]), SCRIPT_LIMIT);
    run.assert_ok();
    let r = &run.result;

    assert_eq!(
        r["manager_enter"],
        json!({"code": 200, "msg": "push server is ok.", "users": [], "count": 0}),
        "{r}"
    );
    assert_eq!(r["wrong_secret"], each(json!({"code": 401, "msg": "wrong secret"})), "{r}");
    let add_ok = json!({"code": 200, "msg": "add ok"});
    assert_eq!(r["enter"], each(add_ok.clone()), "{r}");
    // Each onAdd names its client and the count; the users list, when there is one (at most
    // once a second), has everyone online then.
    let on_add = r["on_add"].as_array().expect("on_add");
    assert_eq!(on_add.len(), 3, "{r}");
    for (n, (add, version)) in on_add.iter().zip(VERSIONS).enumerate() {
        let mut add = add.clone();
        let users = add.as_object_mut().and_then(|a| a.remove("users"));
        let id = format!("sio-{version}");
        assert_eq!(add, json!({"msg": "add ok", "clientId": id, "count": n + 1}), "{r}");
        if let Some(users) = users {
            let online: Vec<String> = VERSIONS[..=n].iter().map(|v| format!("sio-{v}")).collect();
            assert_eq!(users, json!(online), "{r}");
        }
    }
    let unknown = json!({"code": 404, "msg": "unknown route \"sio-connector.entryHandler.nope\""});
    assert_eq!(r["wrong_route"], each(unknown), "{r}");

    assert_eq!(r["push_all"], json!({"code": 200, "msg": "push is ok.", "recipients": 3}), "{r}");
    let one = json!({"code": 200, "msg": "push is ok.", "recipients": 1});
    assert_eq!(r["push_by_client_id"], each(one), "{r}");
    assert_eq!(r["end"], json!({"recipients": 3}), "{r}");
    for version in VERSIONS {
        let id = format!("sio-{version}");
        // The pushAll, its own pushByClientId (not the others'), the sentinel; once each.
        let received = json!([
            onmsg(json!({"all": "from manager"})),
            onmsg(json!({"to": id})),
            onmsg(json!("end"))
        ]);
        let round = client_summary(received.clone(), json!([]), json!([]), true);
        assert_eq!(r["round"][version], round, "{version}: {r}");

        // Replaced: the answer to the second connection, the first one's kick and socket.io
        // disconnect (the last two frames it received), as its client reported them.
        let kick = json!([{"route": "onKick", "reason": "replaced"}]);
        let (disconnect, tail) = match version {
            "0.9" => {
                ("booted", json!(["3:::{\"route\":\"onKick\",\"reason\":\"replaced\"}", "0::"]))
            }
            _ => (
                "io server disconnect",
                json!([
                    "42[\"message\",\"{\\\"route\\\":\\\"onKick\\\",\\\"reason\\\":\\\"replaced\\\"}\"]",
                    "41"
                ]),
            ),
        };
        assert_eq!(
            r["replaced"][version],
            json!({"enter": add_ok, "kicks": kick, "disconnects": [disconnect], "wire_tail": tail}),
            "{version}: {r}"
        );
        // The push after the replacements reached the new connection only.
        let first = client_summary(received, kick, json!([disconnect]), false);
        assert_eq!(r["first"][version], first, "{version}: {r}");
        let second = client_summary(json!([onmsg(json!("after"))]), json!([]), json!([]), true);
        assert_eq!(r["second"][version], second, "{version}: {r}");
    }
    assert_eq!(r["after"], json!({"recipients": 3}), "{r}");

    // The manager heard every join, the replacements' too (the clientId never went offline:
    // no onLeave), and got no onMsg.
    let adds: Vec<Value> = VERSIONS
        .iter()
        .chain(VERSIONS.iter())
        .map(|v| json!({"route": "onAdd", "clientId": format!("sio-{v}")}))
        .collect();
    let mut manager = client_summary(json!([]), json!([]), json!([]), true);
    manager["pushes"] = json!(adds);
    assert_eq!(r["manager"], manager, "{r}");
}

// ---- one channel, five kinds of client --------------------------------------------------------

/// The script, killed when dropped (so a failing test leaves no Node process behind).
struct Script(Option<Child>);

impl Script {
    /// Fails if the script has already exited (it cannot have received what it waits for).
    fn assert_running(&mut self, what: &str) {
        let child = self.0.as_mut().expect("a running script");
        if let Some(status) = child.try_wait().expect("try_wait") {
            let run = runner::finish(SCRIPT, self.0.take().expect("the script"), SCRIPT_LIMIT);
            panic!("{SCRIPT} exited ({status}) while {what}: {run:?}");
        }
    }

    /// Waits for the script's result (bounded by [`SCRIPT_LIMIT`]).
    fn finish(mut self) -> runner::Run {
        runner::finish(SCRIPT, self.0.take().expect("a running script"), SCRIPT_LIMIT)
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The demo app's online clientIds, in the API's (sorted) order.
fn online(control: SocketAddr) -> Value {
    let page = common::http::get(control, "/api/apps/demo/clients", Some(DEMO_SECRET));
    assert_eq!(page.status, 200, "GET /api/apps/demo/clients: {}", page.text());
    page.json()
}

/// `POST /api/apps/demo/push {"msg": msg}`, which must be answered 200; its body.
fn http_push(control: SocketAddr, msg: Value) -> Value {
    let body = json!({ "msg": msg }).to_string();
    let response =
        common::http::post_json(control, "/api/apps/demo/push", Some(DEMO_SECRET), &body);
    assert_eq!(response.status, 200, "HTTP push {body}: {}", response.text());
    response.json()
}

#[test]
fn one_http_push_all_reaches_pomelo_tcp_pomelo_ws_and_three_socket_io_clients_once_each() {
    runner::require_node_modules();
    let server = start(test_config(2));
    let (addr, control) = (server.client_addr(), server.control_addr());
    let mut tcp = common::client(addr, DEMO, "pomelo-tcp");
    let mut ws = ws_client(addr, DEMO, "pomelo-ws");
    let args = script_args(&server, "hold", &["--count", "2"]);
    let mut script = Script(Some(runner::spawn_node(SCRIPT, &args)));

    let all = json!(["pomelo-tcp", "pomelo-ws", "sio-0.9", "sio-2", "sio-4"]);
    let expected = json!({"clients": all, "total": 5, "next_cursor": null});
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = online(control);
        if page == expected {
            break;
        }
        script.assert_running("waiting until the five clients are online");
        assert!(Instant::now() < deadline, "timed out waiting for {expected}; online: {page}");
        thread::sleep(Duration::from_millis(20));
    }

    assert_eq!(http_push(control, json!({"all": 1})), json!({"recipients": 5}));
    assert_eq!(http_push(control, json!("end")), json!({"recipients": 5}));
    for pomelo in [&mut tcp as &mut dyn PomeloPushes, &mut ws] {
        assert_eq!(pomelo.next(), ("onMsg".to_owned(), onmsg(json!({"all": 1}))));
        assert_eq!(pomelo.next(), ("onMsg".to_owned(), onmsg(json!("end"))));
        pomelo.nothing_pending();
    }
    let run = script.finish();
    run.assert_ok();
    let r = &run.result;
    let received = json!([onmsg(json!({"all": 1})), onmsg(json!("end"))]);
    let summary = client_summary(received, json!([]), json!([]), true);
    assert_eq!(r["clients"], each(summary), "{r}");
}

/// The two Pomelo transports' sessions, side by side in one loop.
trait PomeloPushes {
    fn next(&mut self) -> (String, Value);
    fn nothing_pending(&mut self);
}

impl<W: common::session::Wire> PomeloPushes for common::Session<W> {
    fn next(&mut self) -> (String, Value) {
        self.next_push()
    }

    fn nothing_pending(&mut self) {
        self.assert_no_pending_push();
    }
}

// ---- the server's pings -----------------------------------------------------------------------

/// Runs the `pings` scenario (each version enters, idles for 4.5 s, then gets an HTTP push)
/// against a server pinging every `interval` seconds with `timeout` to answer; asserts every
/// client stayed connected and got the push; returns the script's result.
fn pings(interval: u32, timeout: u32) -> Value {
    runner::require_node_modules();
    let mut config = test_config(2);
    config.socketio.ping_interval_secs = interval;
    config.socketio.ping_timeout_secs = timeout;
    let server = start(config);
    let args = script_args(&server, "pings", &["--hold-ms", "4500"]);
    let run = runner::run_script(SCRIPT, &args, SCRIPT_LIMIT);
    run.assert_ok();
    let r = run.result;
    assert!(r["held_ms"].as_u64() >= Some(4500), "{r}");
    assert_eq!(r["still_connected"], each(json!(true)), "{r}");
    assert_eq!(r["push"], json!({"recipients": 3}), "{r}");
    let summary = client_summary(json!([onmsg(json!("still here"))]), json!([]), json!([]), true);
    assert_eq!(r["clients"], each(summary), "{r}");
    r
}

/// The gaps between a client's pings, milliseconds.
fn gaps(r: &Value, version: &str) -> Vec<u64> {
    let gaps = r["pings"][version]["gaps_ms"].as_array().expect("gaps_ms");
    gaps.iter().map(|g| g.as_u64().expect("a gap in ms")).collect()
}

#[test]
fn server_pings_keep_socket_io_0_9_and_4_connected_and_2_x_pings_are_answered() {
    // Interval 1 s, timeout 2 s: a 4.x client closes a connection 3 s after the last ping
    // (pingInterval + pingTimeout), a 0.9 client 3 s after the last packet (the handshake's
    // heartbeat timeout, interval + timeout); both are held for 4.5 s.
    let r = pings(1, 2);
    for version in ["0.9", "4"] {
        let server_pings = r["pings"][version]["pings"].as_u64().unwrap_or(0);
        assert!(server_pings >= 2, "{version}: at least two server pings in 4.5 s: {r}");
        assert!(gaps(&r, version).iter().all(|&g| g < 3000), "{version}: {r}");
    }
    // 2.x pings every pingInterval (1 s) and closes if an answer is 2 s late.
    let (sent, answered) = (r["pings"]["2"]["pings"].as_u64(), r["pings"]["2"]["pongs"].as_u64());
    assert!(answered >= Some(3) && sent.zip(answered).is_some_and(|(s, a)| a + 1 >= s), "{r}");
}

/// Regression: pings came every `ping_interval_secs` + 1 s (the reactor acts once a deadline
/// has passed), exactly the clients' limit at 1 s / 1 s.
#[test]
fn server_pings_come_every_ping_interval_at_one_second() {
    let r = pings(1, 1);
    for version in ["0.9", "4"] {
        let gaps = gaps(&r, version);
        assert!(gaps.len() >= 2 && gaps.iter().all(|&g| g <= 1500), "{version}: {r}");
    }
}

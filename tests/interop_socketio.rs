//! Real Socket.IO clients nobody here wrote against the Socket.IO frontend (Pomelo's
//! sioconnector): socket.io-client 0.9.16 (socket.io 0.9), 2.5.0 (Engine.IO 3) and 4.8.1
//! (Engine.IO 4), from npm, run unchanged in Node (`tests/interop/socketio.mjs`), with Pomelo's
//! socket.io message layer on top (`socket.send(Protocol.encode(id, route, msg))`), beside the
//! tests' own Pomelo clients.
//!
//! Over WebSocket (`transports: ["websocket"]`):
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
//! - one HTTP pushAll reaches a Pomelo TCP, a Pomelo WebSocket, an MQTT (Debian's
//!   `mosquitto_sub`) and the three Socket.IO clients of one channel exactly once each (6
//!   recipients), and the presence list has all six;
//! - the server's pings (socket.io 0.9 heartbeats, Engine.IO 4 pings) keep 0.9 and 4.x clients,
//!   which close a connection whose pings stop, connected past their own timeout, and a 2.x
//!   client's pings are answered.
//!
//! Over HTTP long-polling (2.x/4.x `transports: ["polling"]`, 0.9 `xhr-polling`; the scenarios
//! were checked against real socket.io 0.9.16, 2.5.0 and 4.8.1 servers with the same Pomelo
//! layer, and the tests say where they assert what those servers do):
//! - the same round as over WebSocket (enter, 401, 404, pushAll, pushByClientId, replaced), with
//!   a burst of 20 HTTP pushes of non-ASCII text between the pushByClientId and `"end"` arriving
//!   once each, in order, and the connections still on polling at the end;
//! - the clients stay connected through several short ping intervals, and a push reaches them;
//! - 2.x and 4.x on their default transports open over polling, enter, and upgrade to WebSocket
//!   while a train of pushes to them is arriving: every push arrives once, in order, some over
//!   polling and some over WebSocket;
//! - one HTTP pushAll reaches polling members of each generation beside WebSocket members of
//!   each, a Pomelo TCP, a Pomelo WebSocket and an MQTT member, once each (9 recipients);
//! - Engine.IO requests for an unknown sid are Engine.IO's `400 {"code":1,"message":"Session ID
//!   unknown"}`; a malformed payload ends its own session and no other.
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

/// The Engine.IO generations.
const EIO_VERSIONS: [&str; 2] = ["2", "4"];

/// The text of the script's burst pushes (its `BURST_TEXT`): 1-, 2-, 3- and 4-byte UTF-8
/// characters, one of them two UTF-16 units, which socket.io 0.9's and Engine.IO 3's polling
/// payloads count.
const BURST_TEXT: &str = "pömelo ✓ 推送 😀";

/// How long the script may run before it is killed and the test fails.
const SCRIPT_LIMIT: Duration = Duration::from_secs(30);

/// What a polling test needs of the server, printed with its failure.
const NEEDS_POLLING: &str = "this test needs HTTP long-polling on the Socket.IO path: Engine.IO 3/4 \
    `GET|POST /socket.io/?EIO=3|4&transport=polling[&sid=..]` (and the upgrade of such a session \
    to WebSocket), socket.io 0.9 `xhr-polling` offered in the handshake and served at \
    `GET|POST /socket.io/1/xhr-polling/{sid}`";

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

/// Runs the script, failing the test unless it succeeded; `needs` (what the server must serve)
/// goes with the failure.
fn run_ok(args: &[String], needs: Option<&str>) -> Value {
    let run = runner::run_script(SCRIPT, args, SCRIPT_LIMIT);
    if let Some(needs) = needs.filter(|_| !(run.status.success() && run.result["ok"] == true)) {
        eprintln!("{needs}");
    }
    run.assert_ok();
    run.result
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

/// The same `value` for each of `versions`, as the script reports per-version results.
fn each_of(versions: &[&str], value: Value) -> Value {
    versions
        .iter()
        .map(|v| (v.to_string(), value.clone()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// [`each_of`] the three versions.
fn each(value: Value) -> Value {
    each_of(&VERSIONS, value)
}

/// The transport a client of `version` reports being on with the script's `--transport`.
fn transport_name(version: &str, transport: &str) -> &'static str {
    match (transport, version) {
        ("polling", "0.9") => "xhr-polling",
        ("polling", _) => "polling",
        _ => "websocket",
    }
}

/// The expected transport of each of `versions`.
fn transports(versions: &[&str], transport: &str) -> Value {
    versions
        .iter()
        .map(|v| (v.to_string(), json!(transport_name(v, transport))))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

// ---- the main round ---------------------------------------------------------------------------

/// Runs the `main` scenario for `versions` on `transport` (the manager on `manager`) with
/// `burst` HTTP pushes in the round, and asserts all of it.
fn main_round(
    versions: &[&str],
    transport: &str,
    manager: &str,
    burst: usize,
    needs: Option<&str>,
) {
    runner::require_node_modules();
    let server = start(test_config(2));
    let (list, burst_arg) = (versions.join(","), burst.to_string());
    let extra = [
        "--transport",
        transport,
        "--manager-transport",
        manager,
        "--versions",
        &list,
        "--burst",
        &burst_arg,
    ];
    let r = &run_ok(&script_args(&server, "main", &extra), needs);
    let each = |value: Value| each_of(versions, value);

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
    assert_eq!(on_add.len(), versions.len(), "{r}");
    for (n, (add, version)) in on_add.iter().zip(versions).enumerate() {
        let mut add = add.clone();
        let users = add.as_object_mut().and_then(|a| a.remove("users"));
        let id = format!("sio-{version}");
        assert_eq!(add, json!({"msg": "add ok", "clientId": id, "count": n + 1}), "{r}");
        if let Some(users) = users {
            let online: Vec<String> = versions[..=n].iter().map(|v| format!("sio-{v}")).collect();
            assert_eq!(users, json!(online), "{r}");
        }
    }
    let unknown = json!({"code": 404, "msg": "unknown route \"sio-connector.entryHandler.nope\""});
    assert_eq!(r["wrong_route"], each(unknown), "{r}");

    let recipients = versions.len();
    let all = json!({"code": 200, "msg": "push is ok.", "recipients": recipients});
    assert_eq!(r["push_all"], all, "{r}");
    let one = json!({"code": 200, "msg": "push is ok.", "recipients": 1});
    assert_eq!(r["push_by_client_id"], each(one), "{r}");
    if burst > 0 {
        assert_eq!(r["burst"], json!(vec![json!({"recipients": recipients}); burst]), "{r}");
    }
    assert_eq!(r["end"], json!({"recipients": recipients}), "{r}");
    // Still on the transport they chose: polling clients were not upgraded.
    assert_eq!(r["transport_now"], transports(versions, transport), "{r}");
    for &version in versions {
        let id = format!("sio-{version}");
        // The pushAll, its own pushByClientId (not the others'), the burst in order, the
        // sentinel; once each.
        let mut received = vec![onmsg(json!({"all": "from manager"})), onmsg(json!({"to": id}))];
        received.extend((0..burst).map(|i| onmsg(json!({ "burst": i, "text": BURST_TEXT }))));
        received.push(onmsg(json!("end")));
        let received = Value::from(received);
        let round = client_summary(received.clone(), json!([]), json!([]), true);
        assert_eq!(r["round"][version], round, "{version}: {r}");

        // Replaced: the answer to the second connection, the first one's kick and socket.io
        // disconnect (the last two frames it received), as its client reported them. Over
        // xhr-polling a real socket.io 0.9 server loses its `0::` (its next poll answers
        // `7:::1+0`, which the client reports as an error, then disconnects "booted" all the
        // same); shaddock's kick is onKick then the disconnect on every transport, so that is
        // what is asserted.
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
    assert_eq!(r["after"], json!({"recipients": recipients}), "{r}");

    // The manager heard every join, the replacements' too (the clientId never went offline:
    // no onLeave), and got no onMsg.
    let adds: Vec<Value> = versions
        .iter()
        .chain(versions.iter())
        .map(|v| json!({"route": "onAdd", "clientId": format!("sio-{v}")}))
        .collect();
    let mut manager = client_summary(json!([]), json!([]), json!([]), true);
    manager["pushes"] = json!(adds);
    assert_eq!(r["manager"], manager, "{r}");
}

#[test]
fn socket_io_0_9_2_and_4_enter_get_pushes_once_and_are_replaced() {
    main_round(&VERSIONS, "websocket", "websocket", 0, None);
}

/// socket.io-client 2.x and 4.x with `transports: ["polling"]` (the manager too): Engine.IO 3
/// and 4 long-polling sessions, never upgraded. The replaced client must see the onKick message
/// itself, not just its frame: socket.io-client 4.8 hands each decoded packet to the socket a
/// tick after the engine read it, so an Engine.IO close packet (`1`) in the same poll answer as
/// `42["message",onKick]` and `41` closes the socket first ("transport close") and the onKick
/// is never emitted. engine.io servers drain the kick in one poll answer and close after it (a
/// socket.io 4 server's `disconnect(true)`), and the client closes itself on `41`.
#[test]
fn socket_io_2_and_4_polling_only_enter_get_pushes_once_in_order_and_are_replaced() {
    main_round(&EIO_VERSIONS, "polling", "polling", 20, Some(NEEDS_POLLING));
}

/// socket.io-client 0.9.16 with `xhr-polling` (the xmlhttprequest package in Node, on Node's
/// keep-alive global agent): the handshake must offer `xhr-polling`. The manager stays on
/// WebSocket, so this needs socket.io 0.9's polling only.
#[test]
fn socket_io_0_9_xhr_polling_enters_gets_pushes_once_in_order_and_is_replaced() {
    main_round(&["0.9"], "polling", "websocket", 20, Some(NEEDS_POLLING));
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

/// A Pomelo TCP and a Pomelo WebSocket client enter beside the script's `hold` scenario (run
/// with `extra`); once the presence list is `sio_ids` and theirs, two HTTP pushAll (one
/// `{"all": 1}`, then `"end"`) must each reach every one of them, once; returns the script's
/// result.
fn mixed_channel(extra: &[&str], sio_ids: &[&str], needs: Option<&str>) -> Value {
    runner::require_node_modules();
    let server = start(test_config(2));
    let (addr, control) = (server.client_addr(), server.control_addr());
    let mut tcp = common::client(addr, DEMO, "pomelo-tcp");
    let mut ws = ws_client(addr, DEMO, "pomelo-ws");
    // An MQTT member too (Debian's mosquitto_sub, MQTT 3.1.1 on the client port): the two pushes,
    // then it exits; bounded by -W.
    let mqtt = std::process::Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string(), "-V", "mqttv311"])
        .args(["-i", "mqtt-sub", "-u", DEMO, "-t", &format!("push/{DEMO}"), "-C", "2", "-W", "15"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub runs (Debian's mosquitto-clients; .ci/run installs it)");
    let mut args = script_args(&server, "hold", &["--count", "2"]);
    args.extend(extra.iter().map(|a| a.to_string()));
    let mut script = Script(Some(runner::spawn_node(SCRIPT, &args)));

    let mut all: Vec<&str> = vec!["mqtt-sub", "pomelo-tcp", "pomelo-ws"];
    all.extend(sio_ids);
    all.sort_unstable();
    let total = all.len();
    let expected = json!({"clients": all, "total": total, "next_cursor": null});
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = online(control);
        if page == expected {
            break;
        }
        if let Some(needs) = needs.filter(|_| Instant::now() >= deadline) {
            eprintln!("{needs}");
        }
        script.assert_running("waiting until every client is online");
        assert!(Instant::now() < deadline, "timed out waiting for {expected}; online: {page}");
        thread::sleep(Duration::from_millis(20));
    }

    assert_eq!(http_push(control, json!({"all": 1})), json!({"recipients": total}));
    assert_eq!(http_push(control, json!("end")), json!({"recipients": total}));
    for pomelo in [&mut tcp as &mut dyn PomeloPushes, &mut ws] {
        assert_eq!(pomelo.next(), ("onMsg".to_owned(), onmsg(json!({"all": 1}))));
        assert_eq!(pomelo.next(), ("onMsg".to_owned(), onmsg(json!("end"))));
        pomelo.nothing_pending();
    }
    let printed = mqtt.wait_with_output().expect("mosquitto_sub ends");
    assert_eq!(String::from_utf8_lossy(&printed.stdout), "{\"all\":1}\n\"end\"\n", "MQTT member");
    let run = script.finish();
    if let Some(needs) = needs.filter(|_| !(run.status.success() && run.result["ok"] == true)) {
        eprintln!("{needs}");
    }
    run.assert_ok();
    run.result
}

#[test]
fn one_http_push_all_reaches_pomelo_tcp_pomelo_ws_mqtt_and_three_socket_io_clients_once_each() {
    let r = mixed_channel(&[], &["sio-0.9", "sio-2", "sio-4"], None);
    let received = json!([onmsg(json!({"all": 1})), onmsg(json!("end"))]);
    let summary = client_summary(received, json!([]), json!([]), true);
    assert_eq!(r["clients"], each(summary), "{r}");
}

/// Polling members of every generation (0.9 xhr-polling, 2.x/4.x polling) beside WebSocket
/// members of every generation and Pomelo's own: one push is counted and delivered once per
/// member, whatever its transport (a polling member's copy waits for its next poll).
#[test]
fn one_http_push_reaches_polling_members_of_each_generation_beside_websocket_members() {
    let ids = ["sio-0.9", "sio-0.9-ws", "sio-2", "sio-2-ws", "sio-4", "sio-4-ws"];
    let extra = ["--transport", "polling", "--websocket-too", "0.9,2,4"];
    let r = mixed_channel(&extra, &ids, Some(NEEDS_POLLING));
    let received = json!([onmsg(json!({"all": 1})), onmsg(json!("end"))]);
    let summary = client_summary(received, json!([]), json!([]), true);
    let members = ["0.9", "0.9-ws", "2", "2-ws", "4", "4-ws"];
    assert_eq!(r["clients"], each_of(&members, summary), "{r}");
    let mut on = transports(&VERSIONS, "polling");
    for version in VERSIONS {
        on[format!("{version}-ws")] = json!("websocket");
    }
    assert_eq!(r["transport_now"], on, "{r}");
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

/// Runs the `pings` scenario (each of `versions` enters on `transport`, idles for 4.5 s, then
/// gets an HTTP push) against a server pinging every `interval` seconds with `timeout` to
/// answer; asserts every client stayed connected (on its transport) and got the push; returns
/// the script's result.
fn pings_on(versions: &[&str], transport: &str, interval: u32, timeout: u32) -> Value {
    runner::require_node_modules();
    let mut config = test_config(2);
    config.socketio.ping_interval_secs = interval;
    config.socketio.ping_timeout_secs = timeout;
    let server = start(config);
    let list = versions.join(",");
    let extra = ["--hold-ms", "4500", "--transport", transport, "--versions", &list];
    let needs = (transport != "websocket").then_some(NEEDS_POLLING);
    let r = run_ok(&script_args(&server, "pings", &extra), needs);
    assert!(r["held_ms"].as_u64() >= Some(4500), "{r}");
    assert_eq!(r["still_connected"], each_of(versions, json!(true)), "{r}");
    assert_eq!(r["transport_now"], transports(versions, transport), "{r}");
    assert_eq!(r["push"], json!({"recipients": versions.len()}), "{r}");
    let summary = client_summary(json!([onmsg(json!("still here"))]), json!([]), json!([]), true);
    assert_eq!(r["clients"], each_of(versions, summary), "{r}");
    r
}

/// [`pings_on`] the three versions over WebSocket.
fn pings(interval: u32, timeout: u32) -> Value {
    pings_on(&VERSIONS, "websocket", interval, timeout)
}

/// The gaps between a client's pings, milliseconds.
fn gaps(r: &Value, version: &str) -> Vec<u64> {
    let gaps = r["pings"][version]["gaps_ms"].as_array().expect("gaps_ms");
    gaps.iter().map(|g| g.as_u64().expect("a gap in ms")).collect()
}

/// Engine.IO 4's server pings reached the client at least twice, none later than its limit;
/// Engine.IO 3's client pings were answered (all but perhaps the one in flight).
fn assert_eio_pings(r: &Value) {
    let server_pings = r["pings"]["4"]["pings"].as_u64().unwrap_or(0);
    assert!(server_pings >= 2, "4: at least two server pings in 4.5 s: {r}");
    assert!(gaps(r, "4").iter().all(|&g| g < 3000), "4: {r}");
    // 2.x pings every pingInterval (1 s) and closes if an answer is 2 s late.
    let (sent, answered) = (r["pings"]["2"]["pings"].as_u64(), r["pings"]["2"]["pongs"].as_u64());
    assert!(answered >= Some(3) && sent.zip(answered).is_some_and(|(s, a)| a + 1 >= s), "{r}");
}

#[test]
fn server_pings_keep_socket_io_0_9_and_4_connected_and_2_x_pings_are_answered() {
    // Interval 1 s, timeout 2 s: a 4.x client closes a connection 3 s after the last ping
    // (pingInterval + pingTimeout), a 0.9 client 3 s after the last packet (the handshake's
    // heartbeat timeout, interval + timeout); both are held for 4.5 s.
    let r = pings(1, 2);
    let server_pings = r["pings"]["0.9"]["pings"].as_u64().unwrap_or(0);
    assert!(server_pings >= 2, "0.9: at least two server pings in 4.5 s: {r}");
    assert!(gaps(&r, "0.9").iter().all(|&g| g < 3000), "0.9: {r}");
    assert_eio_pings(&r);
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

/// Over polling, at 1 s / 2 s for 4.5 s: Engine.IO 4's server pings go out in the answer to
/// the pending poll and the client's pong comes back in a POST; a 2.x client's pings (POSTs) are
/// answered in its polls; neither client closes.
#[test]
fn socket_io_2_and_4_polling_only_stay_connected_through_pings() {
    let r = pings_on(&EIO_VERSIONS, "polling", 1, 2);
    assert_eio_pings(&r);
}

/// socket.io 0.9 over xhr-polling, at 1 s / 2 s (the handshake's heartbeat timeout 3 s) for
/// 4.5 s: the client stays connected and gets a push. A real socket.io 0.9 server sends no
/// heartbeats over polling (its polling transports skip the heartbeat interval and count on the
/// close timeout and the client's next poll), and the 0.9 client watches heartbeats only on
/// WebSocket, so heartbeats are not required here; what is asserted is that the server does not
/// time out a polling session that keeps polling.
#[test]
fn socket_io_0_9_xhr_polling_stays_connected_across_heartbeat_intervals() {
    let r = pings_on(&["0.9"], "polling", 1, 2);
    // Whatever heartbeats came were at most the interval apart (the client answered each: it
    // is still connected).
    assert!(gaps(&r, "0.9").iter().all(|&g| g < 3000), "0.9: {r}");
}

// ---- the upgrade from polling to WebSocket ----------------------------------------------------

/// socket.io-client 2.x and 4.x on their default transports (polling, then the upgrade), through
/// the script's proxy that holds each WebSocket connect 300 ms: each in turn opens over polling,
/// enters, and gets a train of HTTP pushes, one after the other, from the enter's answer until
/// after its engine's `upgrade` to websocket (at least 20; even ones pushAll, which also reach
/// the client upgraded before it, odd ones to its clientId): every push arrives once and in
/// order, some over polling and some over WebSocket; then the manager's pushAll and
/// pushByClientId and an HTTP `"end"` arrive once each, over WebSocket.
#[test]
fn socket_io_2_and_4_default_transports_upgrade_to_websocket_and_get_pushes_once_in_order() {
    runner::require_node_modules();
    let server = start(test_config(2));
    let extra = [
        "--transport",
        "default",
        "--versions",
        "2,4",
        "--burst",
        "20",
        "--ws-connect-delay-ms",
        "300",
    ];
    let r = &run_ok(&script_args(&server, "upgrade", &extra), Some(NEEDS_POLLING));
    let each = |value: Value| each_of(&EIO_VERSIONS, value);

    assert_eq!(
        r["manager_enter"],
        json!({"code": 200, "msg": "push server is ok.", "users": [], "count": 0}),
        "{r}"
    );
    // The manager and both clients upgraded through the proxy.
    assert_eq!(r["proxy"]["upgrades_delayed"], 3, "{r}");
    assert_eq!(r["enter"], each(json!({"code": 200, "msg": "add ok"})), "{r}");
    assert_eq!(r["transport_at_open"], each(json!("polling")), "{r}");
    assert_eq!(r["upgrades"], each(json!(["websocket"])), "{r}");
    assert_eq!(r["transport_now"], each(json!("websocket")), "{r}");
    assert_eq!(r["manager"]["upgrades"], json!(["websocket"]), "{r}");
    assert_eq!(r["push_all"], json!({"code": 200, "msg": "push is ok.", "recipients": 2}), "{r}");
    let one = json!({"code": 200, "msg": "push is ok.", "recipients": 1});
    assert_eq!(r["push_by_client_id"], each(one), "{r}");
    assert_eq!(r["end"], json!({"recipients": 2}), "{r}");
    let sent = |version: &str| r["train"][version]["sent"].as_u64().expect("train.sent");
    for (n, version) in EIO_VERSIONS.into_iter().enumerate() {
        let train = &r["train"][version];
        assert!(sent(version) >= 20, "{version}: {r}");
        // The train straddled the upgrade: it began over polling (the WebSocket was 300 ms
        // away) and its last pushes, sent after the upgrade, came over the WebSocket.
        let over = |name: &str| train["arrived_over"][name].as_u64().unwrap_or(0);
        assert!(over("polling") >= 1 && over("websocket") >= 1, "{version}: {r}");
        assert_eq!(over("polling") + over("websocket"), sent(version), "{version}: {r}");

        // Its own train whole, then the pushAll half (even seq) of each later client's train,
        // in order; then the manager's pushAll and pushByClientId and the sentinel.
        let id = format!("sio-{version}");
        let mut received: Vec<Value> =
            (0..sent(version)).map(|i| onmsg(json!({"train": version, "seq": i}))).collect();
        for later in &EIO_VERSIONS[n + 1..] {
            received.extend(
                (0..sent(later)).step_by(2).map(|i| onmsg(json!({"train": later, "seq": i}))),
            );
        }
        received.push(onmsg(json!({"all": "from manager"})));
        received.push(onmsg(json!({"to": id})));
        received.push(onmsg(json!("end")));
        let summary = client_summary(received.into(), json!([]), json!([]), true);
        assert_eq!(r["clients"][version], summary, "{version}: {r}");
    }
    let mut manager = client_summary(json!([]), json!([]), json!([]), true);
    manager["pushes"] = json!([
        {"route": "onAdd", "clientId": "sio-2"},
        {"route": "onAdd", "clientId": "sio-4"}
    ]);
    manager["upgrades"] = json!(["websocket"]);
    assert_eq!(r["manager"], manager, "{r}");
}

// ---- refusals over polling --------------------------------------------------------------------

/// Engine.IO's refusal of a request for an unknown sid, as engine.io 3.x and 6.x answer it.
fn assert_unknown_sid(answer: &Value, what: &str) {
    assert_eq!(answer["status"], 400, "{what}: {answer}");
    let ct = answer["content_type"].as_str().unwrap_or_default();
    assert!(ct.starts_with("application/json"), "{what}: {answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{what}: the body is not JSON ({e}): {answer}"));
    assert_eq!(body, json!({"code": 1, "message": "Session ID unknown"}), "{what}: {answer}");
}

/// Whether an Engine.IO `eio` polling answer ends with a close packet (`1`; EIO 3 `1:1`).
/// Whether a poll's body ends the session: Engine.IO's close packet, or socket.io's disconnect
/// (`41`, after which the client closes; shaddock's kick over polling ends so, since a close
/// packet in the same answer would close socket.io-client 4 before it reads the kick).
fn ends_with_close(eio: &str, body: &str) -> bool {
    match eio {
        "3" => body.ends_with("1:1") || body.ends_with("2:41"),
        _ => matches!(body.rsplit('\u{1e}').next(), Some("1" | "41")),
    }
}

/// Engine.IO 3 and 4: a GET and a POST with an unknown sid get `400 {"code":1,"message":"Session
/// ID unknown"}`; a polling session (opened by hand, connected to the default namespace) posted a
/// payload that is neither version's is ended — and only it: two real polling clients beside it
/// still get a push. socket.io 0.9: a poll for an unknown sid gets `7:::1+0`.
#[test]
fn polling_refuses_unknown_sids_and_a_malformed_payload_ends_only_its_own_session() {
    runner::require_node_modules();
    // The default ping interval (25 s): a session still live would hold the script's last poll
    // past its 3 s bound.
    let server = start(test_config(2));
    let r = &run_ok(&script_args(&server, "refusals", &[]), Some(NEEDS_POLLING));

    for eio in ["3", "4"] {
        for method in ["GET", "POST"] {
            assert_unknown_sid(&r["unknown_sid"][eio][method], &format!("EIO {eio} {method}"));
        }
    }
    // A real socket.io 0.9 server answers a poll for a sid it does not know 200 `7:::1+0`
    // (error, client not handshaken, advice reconnect), as shaddock answers its WebSocket; a
    // POST it answers 200 `1` without looking (the client reads a POST's status only).
    let get09 = &r["unknown_sid_09"]["GET"];
    assert_eq!((&get09["status"], &get09["body"]), (&json!(200), &json!("7:::1+0")), "{r}");
    let post09 = &r["unknown_sid_09"]["POST"];
    assert_eq!(post09["status"], 200, "{r}");
    assert!(post09["body"] == "1" || post09["body"] == "7:::1+0", "{r}");

    for eio in ["3", "4"] {
        let m = &r["malformed"][eio];
        assert_eq!(m["handshake_status"], 200, "EIO {eio}: {r}");
        // engine.io answers the POST `200 ok` and closes the session ("parse error"); a 400
        // (Engine.IO's JSON error body) would be an error answer as good.
        let post = &m["post"];
        match post["status"].as_u64() {
            Some(200) => assert_eq!(post["body"], "ok", "EIO {eio}: {r}"),
            Some(400) => {
                let body: Value = serde_json::from_str(post["body"].as_str().unwrap_or_default())
                    .unwrap_or_else(|e| panic!("EIO {eio}: the 400 is not JSON ({e}): {r}"));
                assert!(body["code"].is_u64() && body["message"].is_string(), "EIO {eio}: {r}");
            }
            _ => panic!("EIO {eio}: the malformed POST is answered 200 or 400: {r}"),
        }
        // The session is gone: engine.io refuses its sid from then on; a close packet in
        // the answer to the poll would end it as well. Not a held poll.
        let after = &m["after"];
        assert_ne!(after["timeout"], true, "EIO {eio}: the session outlived its bad payload: {r}");
        if after["status"] == 200 {
            let body = after["body"].as_str().unwrap_or_default();
            assert!(ends_with_close(eio, body), "EIO {eio}: {r}");
        } else {
            assert_unknown_sid(after, &format!("EIO {eio}, the poll after the bad payload"));
        }
    }

    // The two real polling clients (never disturbed) got the push; the hand-made sessions
    // never entered.
    assert_eq!(r["push"], json!({"recipients": 2}), "{r}");
    let summary = client_summary(json!([onmsg(json!("still here"))]), json!([]), json!([]), true);
    assert_eq!(r["clients"], each_of(&EIO_VERSIONS, summary), "{r}");
    assert_eq!(r["transport_now"], each_of(&EIO_VERSIONS, json!("polling")), "{r}");
}

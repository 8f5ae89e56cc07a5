//! Raw Pomelo TCP and Pomelo over WebSocket share the client port: both kinds of client sit in
//! one channel and receive every push exactly once and in order, management works over either,
//! and WebSocket's own duties (pong, close handshake, kick then close frame, refusing text)
//! disturb nobody else.

mod common;

use std::collections::BTreeSet;

use common::pomelo::{DATA, HEARTBEAT, encode_package, encode_request};
use common::ws::{
    CLOSE_UNSUPPORTED, MASK, OP_BINARY, OP_CONTINUATION, OP_PING, WsPomeloClient, client_frame,
    ws_client, ws_management,
};
use common::{DEMO, DEMO_SECRET, PUSH_ALL, PomeloClient, management, start, test_config};
use serde_json::{Value, json};

const PER_TRANSPORT: usize = 100;
const PUSHES: usize = 20;

fn tcp_id(i: usize) -> String {
    format!("tcp-{i:03}")
}

fn ws_id(i: usize) -> String {
    format!("ws-{i:03}")
}

/// One client of either transport, so the channel can be checked as one list.
enum Member {
    Tcp(PomeloClient),
    Ws(WsPomeloClient),
}

impl Member {
    fn next_push(&mut self) -> (String, Value) {
        match self {
            Member::Tcp(c) => c.next_push(),
            Member::Ws(c) => c.next_push(),
        }
    }

    fn assert_no_pending_push(&mut self) {
        match self {
            Member::Tcp(c) => c.assert_no_pending_push(),
            Member::Ws(c) => c.assert_no_pending_push(),
        }
    }

    fn label(&self) -> &str {
        match self {
            Member::Tcp(c) => c.label(),
            Member::Ws(c) => c.label(),
        }
    }
}

fn on_msg(msg: &str) -> (String, Value) {
    ("onMsg".into(), json!({"msg": msg}))
}

/// Reads the next push of a management session and checks it is `route` for `client_id` with
/// channel size `count`.
fn expect_presence(admin: &mut WsPomeloClient, route: &str, client_id: &str, count: usize) {
    let (got, body) = admin.next_push();
    assert_eq!(got, route, "management expected {route} {client_id}: {body}");
    assert_eq!(body["clientId"], client_id, "{route}: {body}");
    assert_eq!(body["count"], count, "{route}: {body}");
    if route == "onAdd" {
        assert_eq!(body["msg"], "add ok", "{route}: {body}");
    }
}

#[test]
fn tcp_and_websocket_clients_share_a_channel_and_every_push() {
    let server = start(test_config(2));
    let addr = server.client_addr();

    // Management over WebSocket, entered first, so it sees every join.
    let (mut ws_admin, entered) = ws_management(addr, DEMO, DEMO_SECRET);
    assert_eq!(entered["count"], 0, "{entered}");

    // The two transports interleaved, so both reactors get both kinds.
    let mut members: Vec<(String, Member)> = Vec::new();
    for i in 0..PER_TRANSPORT {
        members.push((tcp_id(i), Member::Tcp(common::client(addr, DEMO, &tcp_id(i)))));
        members.push((ws_id(i), Member::Ws(ws_client(addr, DEMO, &ws_id(i)))));
    }
    for (n, (id, _)) in members.iter().enumerate() {
        expect_presence(&mut ws_admin, "onAdd", id, n + 1);
    }

    let per_reactor = server.connections_per_reactor();
    assert!(
        per_reactor.len() == 2 && per_reactor.iter().all(|&n| n > 0),
        "both reactors hold connections: {per_reactor:?}"
    );
    assert_eq!(
        per_reactor.iter().sum::<u64>(),
        2 * PER_TRANSPORT as u64 + 1,
        "clients + management: {per_reactor:?}"
    );

    // 20 pushAll from the WebSocket management session.
    for i in 0..PUSHES {
        let response = ws_admin.push_all(DEMO, json!(format!("mixed-{i}")));
        assert_eq!(
            response,
            json!({"code": 200, "msg": "push is ok.", "recipients": 2 * PER_TRANSPORT}),
            "push {i}"
        );
    }
    for (id, m) in &mut members {
        for i in 0..PUSHES {
            assert_eq!(
                m.next_push(),
                on_msg(&format!("mixed-{i}")),
                "[{id} {}] push {i}",
                m.label()
            );
        }
    }
    for (_, m) in &mut members {
        m.assert_no_pending_push();
    }

    // pushByClientId from a TCP management session reaches one WebSocket client only.
    let (mut tcp_admin, entered) = management(addr, DEMO, DEMO_SECRET);
    assert_eq!(entered["count"], 2 * PER_TRANSPORT, "{entered}");
    let target = ws_id(7);
    let response = tcp_admin.push_by_client_id(DEMO, &target, json!("just ws-007"));
    assert_eq!(response["code"], 200, "{response}");
    for (id, m) in &mut members {
        if *id == target {
            assert_eq!(m.next_push(), on_msg("just ws-007"), "[{id}]");
        }
    }
    for (_, m) in &mut members {
        m.assert_no_pending_push();
    }

    // Leaving is seen over WebSocket management: a WebSocket client that closes cleanly (and
    // gets a close frame back), then a TCP client that just disconnects.
    let (_, Member::Ws(mut leaving)) = members.remove(1) else {
        unreachable!("members[1] is ws-000")
    };
    let echoed = leaving.close(1000);
    assert_eq!(echoed, Some(1000), "the server's answer to a normal close");
    expect_presence(&mut ws_admin, "onLeave", &ws_id(0), 2 * PER_TRANSPORT - 1);
    let (_, tcp_leaving) = members.remove(0);
    drop(tcp_leaving);
    expect_presence(&mut ws_admin, "onLeave", &tcp_id(0), 2 * PER_TRANSPORT - 2);
    let mut expected = 2 * PER_TRANSPORT - 2;

    // A WebSocket client replaced by a TCP connection with its clientId: kick package, then a
    // close frame, then the end.
    let replaced = ws_id(1);
    let at = members.iter().position(|(id, _)| *id == replaced).unwrap();
    let replacement = common::client(addr, DEMO, &replaced);
    let (_, Member::Ws(mut old)) =
        std::mem::replace(&mut members[at], (replaced.clone(), Member::Tcp(replacement)))
    else {
        unreachable!("{replaced} is a WebSocket client")
    };
    let (reason, code) = old.expect_kick();
    assert_eq!(reason, "replaced", "[{replaced}] kick reason (close code {code:?})");

    // And a TCP client replaced by a WebSocket one.
    let replaced = tcp_id(1);
    let at = members.iter().position(|(id, _)| *id == replaced).unwrap();
    let replacement = ws_client(addr, DEMO, &replaced);
    let (_, Member::Tcp(mut old)) =
        std::mem::replace(&mut members[at], (replaced.clone(), Member::Ws(replacement)))
    else {
        unreachable!("{replaced} is a TCP client")
    };
    assert_eq!(old.expect_kick(), "replaced", "[{replaced}]");

    // A ping is answered with a pong carrying its payload.
    let at = members.iter().position(|(id, _)| *id == ws_id(2)).unwrap();
    let Member::Ws(pinger) = &mut members[at].1 else { unreachable!() };
    pinger.send_ping(b"are you there?");
    pinger.expect_pong(b"are you there?");
    pinger.heartbeat();

    // A text frame is refused with close 1003 (a working session may get a kick first).
    let at = members.iter().position(|(id, _)| *id == ws_id(3)).unwrap();
    let (_, Member::Ws(mut texter)) = members.remove(at) else { unreachable!() };
    texter.send_text(r#"{"route":"connector.entryHandler.enter"}"#);
    let end = texter.read_to_end();
    assert!(end.close_frame, "a text frame: no close frame, {end:?}");
    assert_eq!(end.code, Some(CLOSE_UNSUPPORTED), "a text frame: {end:?}");
    if let Some(reason) = &end.kick {
        assert!(reason.starts_with("protocol error"), "a text frame: {end:?}");
    }
    expected -= 1;

    // Everyone left is undisturbed and still gets pushes, in order.
    for i in 0..3 {
        let response = ws_admin.push_all(DEMO, json!(format!("after-{i}")));
        assert_eq!(response["code"], 200, "{response}");
        assert_eq!(response["recipients"], expected, "{response}");
    }
    for (id, m) in &mut members {
        for i in 0..3 {
            assert_eq!(m.next_push(), on_msg(&format!("after-{i}")), "[{id} {}]", m.label());
        }
        m.assert_no_pending_push();
    }
    let ids: BTreeSet<&str> = members.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), expected, "every member is a distinct clientId");
}

/// A request split over a binary frame and a continuation, with a ping between them (control
/// frames may interleave a fragmented message), is one package, answered like any other.
#[test]
fn fragmented_message_with_interleaved_ping_is_one_package() {
    let server = start(test_config(2));
    let addr = server.client_addr();
    let mut reader = ws_client(addr, DEMO, "reader");
    let mut admin = WsPomeloClient::connect(addr);
    assert_eq!(admin.enter_server(DEMO, DEMO_SECRET)["code"], 200);

    let request = encode_package(
        DATA,
        &encode_request(
            99,
            PUSH_ALL,
            json!({"apikey": DEMO, "msg": "in pieces"}).to_string().as_bytes(),
        ),
    );
    let (first, second) = request.split_at(request.len() / 2);
    let mut bytes = client_frame(false, OP_BINARY, first, Some(MASK));
    bytes.extend(client_frame(true, OP_PING, b"mid", Some(MASK)));
    bytes.extend(client_frame(true, OP_CONTINUATION, second, Some(MASK)));
    admin.send_raw(&bytes);
    admin.expect_pong(b"mid");
    let response = admin.read_response(99, PUSH_ALL);
    assert_eq!(response, json!({"code": 200, "msg": "push is ok.", "recipients": 1}));
    assert_eq!(reader.next_push(), on_msg("in pieces"));

    // A package split at its 4-byte header works as well (every frame masked with its own key).
    let heartbeat = encode_package(HEARTBEAT, &[]);
    let mut bytes = client_frame(false, OP_BINARY, &heartbeat[..1], Some([1, 2, 3, 4]));
    bytes.extend(client_frame(false, OP_CONTINUATION, &heartbeat[1..3], Some([5, 6, 7, 8])));
    bytes.extend(client_frame(true, OP_CONTINUATION, &heartbeat[3..], Some(MASK)));
    reader.send_raw(&bytes);
    reader.read_heartbeat();
    reader.assert_no_pending_push();
}

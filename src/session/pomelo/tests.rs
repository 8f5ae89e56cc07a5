//! The Pomelo session without sockets: bytes in through the transport decoder, `now` passed in,
//! and what it transmits, the flow it returns, its deadlines and the push service's effects
//! checked byte for byte and state by state.

use bytes::BytesMut;
use serde_json::{Value, json};

use crate::config::DuplicatePolicy;
use crate::ids::{AppId, Edge, Transport, WireForm};
use crate::protocol::pomelo::handshake;
use crate::protocol::pomelo::message::{self, Message, MessageType, Route};
use crate::protocol::pomelo::package::{self, HANDSHAKE_ACK, HEARTBEAT, PackageType};
use crate::protocol::pomelo::{RouteDict, kick};
use crate::protocol::websocket::frame::{self as ws, OpCode};
use crate::session::testing::{Conn, HANDSHAKE_TIMEOUT, HEARTBEAT_SECS, HEARTBEAT_TIMEOUT, World};
use crate::session::{Flow, Kick};
use crate::stats::KickReason;

const ENTER: &str = "connector.entryHandler.enter";
const PUSH_ALL: &str = "pushserver.pushHandler.pushAll";
const PUSH_BY_CLIENT_ID: &str = "pushserver.pushHandler.pushByClientId";
const HANDSHAKE: &[u8] = br#"{"sys":{"type":"test","version":"0.0.1"},"user":{}}"#;

impl Conn {
    /// Handshake and ack over raw TCP at second `now`.
    fn open(&mut self, world: &mut World, now: u32) {
        let (_, flow) = self.input(world, now, &pkg(PackageType::Handshake, HANDSHAKE));
        assert_eq!(flow, Flow::Continue);
        let (sent, flow) = self.input(world, now, &HANDSHAKE_ACK);
        assert_eq!((sent, flow), (HEARTBEAT.to_vec(), Flow::Continue));
    }

    /// A request; returns the response body.
    fn request(&mut self, world: &mut World, route: &str, body: Value) -> Value {
        let (sent, flow) = self.input(world, 1, &request(7, route, &body));
        assert_eq!(flow, Flow::Continue, "{route} {body}");
        response(&sent, 7)
    }

    fn enter_client(&mut self, world: &mut World, client_id: &str) -> Value {
        self.request(
            world,
            ENTER,
            json!({"role": "client", "apikey": "demo", "clientId": client_id}),
        )
    }

    fn enter_manager(&mut self, world: &mut World) -> Value {
        let body = json!({"role": "server", "apikey": "demo", "secret": "demo-secret"});
        self.request(world, ENTER, body)
    }
}

fn pkg(kind: PackageType, body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    package::encode(kind, body, &mut out).unwrap();
    out.to_vec()
}

fn request(id: u32, route: &str, body: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(body).unwrap();
    let msg = Message::request(id, Route::Name(route), &body);
    let mut out = BytesMut::new();
    message::encode_package(&msg, &mut out).unwrap();
    out.to_vec()
}

/// The body of the one RESPONSE to `id` in `sent`.
fn response(sent: &[u8], id: u32) -> Value {
    let (pkg, used) = package::decode(sent, usize::MAX).unwrap().expect("a whole package");
    assert_eq!((pkg.kind, used), (PackageType::Data, sent.len()), "one package");
    let msg = message::decode(pkg.body).unwrap();
    assert_eq!((msg.kind, msg.id), (MessageType::Response, id));
    serde_json::from_slice(msg.body).unwrap()
}

fn kick_of(flow: Flow) -> Kick {
    match flow {
        Flow::Kick(kick) => kick,
        other => panic!("expected a kick, got {other:?}"),
    }
}

#[test]
fn handshake_ack_and_heartbeats() {
    let mut world = World::new();
    let mut conn = Conn::new(1);
    assert_eq!(conn.session.transport(), None);
    let (sent, flow) = conn.input(&mut world, 0, &pkg(PackageType::Handshake, HANDSHAKE));
    assert_eq!(flow, Flow::Continue);
    assert_eq!(conn.session.transport(), Some(Transport::Tcp));
    let (reply, used) = package::decode(&sent, usize::MAX).unwrap().unwrap();
    assert_eq!((reply.kind, used), (PackageType::Handshake, sent.len()));
    let answer = handshake::decode_response(reply.body).unwrap();
    assert_eq!((answer.code, answer.heartbeat), (200, Some(HEARTBEAT_SECS)));
    assert!(!conn.session.is_working());

    // Heartbeats before the ack are ignored, as Pomelo does.
    assert_eq!(conn.input(&mut world, 1, &HEARTBEAT), (vec![], Flow::Continue));
    assert_eq!(conn.input(&mut world, 2, &HANDSHAKE_ACK), (HEARTBEAT.to_vec(), Flow::Continue));
    assert!(conn.session.is_working());
    assert_eq!(conn.input(&mut world, 3, &HEARTBEAT), (HEARTBEAT.to_vec(), Flow::Continue));
    // A repeated handshake or ack is ignored too.
    let again = pkg(PackageType::Handshake, HANDSHAKE);
    assert_eq!(conn.input(&mut world, 4, &again), (vec![], Flow::Continue));
    assert_eq!(conn.input(&mut world, 4, &HANDSHAKE_ACK), (vec![], Flow::Continue));
}

#[test]
fn deadlines_follow_the_lifecycle() {
    let world = &mut World::new();
    let mut conn = Conn::new(1);
    assert_eq!(conn.session.deadline(&world.settings), HANDSHAKE_TIMEOUT);
    assert_eq!(
        conn.session.handle_timeout(HANDSHAKE_TIMEOUT, &world.settings, &mut BytesMut::new()),
        Flow::Continue
    );
    assert_eq!(
        conn.session.handle_timeout(HANDSHAKE_TIMEOUT + 1, &world.settings, &mut BytesMut::new()),
        Flow::Abort
    );

    // The handshake runs on the accept's clock; the ack starts the heartbeat's.
    conn.feed(world, 4, &pkg(PackageType::Handshake, HANDSHAKE));
    assert_eq!(conn.session.deadline(&world.settings), HANDSHAKE_TIMEOUT);
    assert_eq!(
        conn.session.handle_timeout(HANDSHAKE_TIMEOUT + 1, &world.settings, &mut BytesMut::new()),
        Flow::Abort
    );
    conn.feed(world, 5, &HANDSHAKE_ACK);
    assert_eq!(conn.session.deadline(&world.settings), 5 + HEARTBEAT_TIMEOUT);
    conn.feed(world, 30, &HEARTBEAT);
    let deadline = 30 + HEARTBEAT_TIMEOUT;
    assert_eq!(conn.session.deadline(&world.settings), deadline);
    assert_eq!(
        conn.session.handle_timeout(deadline, &world.settings, &mut BytesMut::new()),
        Flow::Continue
    );
    let kick =
        kick_of(conn.session.handle_timeout(deadline + 1, &world.settings, &mut BytesMut::new()));
    assert_eq!(
        (kick.reason, kick.text.as_ref()),
        (KickReason::HeartbeatTimeout, "heartbeat timeout")
    );
}

#[test]
fn a_client_enters_and_managers_hear_it() {
    let world = &mut World::new();
    let mut manager = Conn::new(1);
    manager.open(world, 0);
    let entered = manager.enter_manager(world);
    assert_eq!(entered, json!({"code": 200, "msg": "push server is ok.", "users": [], "count": 0}));
    assert_eq!(manager.session.member_of(), None, "a manager is not a member");

    let mut alice = Conn::new(2);
    alice.open(world, 0);
    assert_eq!(alice.enter_client(world, "alice"), json!({"code": 200, "msg": "add ok"}));
    assert_eq!(alice.session.member_of(), Some(AppId(0)));
    assert_eq!(alice.session.form(), Some(WireForm::PomeloTcp));
    let (to, on_add) = world.out.deliveries.pop().unwrap();
    assert_eq!((to, on_add.route), (manager.me, "onAdd"));

    // Leaving: the member list's app comes back, managers hear onLeave.
    let left = alice.leave(world);
    assert_eq!(left, Some(AppId(0)));
    let (to, on_leave) = world.out.deliveries.pop().unwrap();
    assert_eq!((to, on_leave.route), (manager.me, "onLeave"));
    assert_eq!(alice.leave(world), None, "once");
    assert_eq!(manager.leave(world), None);
}

#[test]
fn a_manager_pushes_to_the_channel_and_to_one_client() {
    let world = &mut World::new();
    let mut alice = Conn::new(2);
    alice.open(world, 0);
    alice.enter_client(world, "alice");
    let mut manager = Conn::new(1);
    manager.open(world, 0);
    manager.enter_manager(world);

    let pushed = manager.request(world, PUSH_ALL, json!({"apikey": "demo", "msg": {"n": 1}}));
    assert_eq!(pushed, json!({"code": 200, "msg": "push is ok.", "recipients": 1}));
    let (core, app, frame) = world.out.broadcasts.pop().unwrap();
    assert_eq!((core, app), (0, AppId(0)));
    let (push, _) = package::decode(frame.bytes(WireForm::PomeloTcp), usize::MAX).unwrap().unwrap();
    let msg = message::decode(push.body).unwrap();
    assert_eq!((msg.kind, msg.route), (MessageType::Push, Route::Name("onMsg")));
    assert_eq!(msg.body, br#"{"msg":{"n":1}}"#);

    let body = json!({"apikey": "demo", "clientId": "alice", "msg": "hi"});
    let pushed = manager.request(world, PUSH_BY_CLIENT_ID, body);
    assert_eq!(pushed["recipients"], 1);
    let (to, push) = world.out.deliveries.pop().unwrap();
    assert_eq!((to, &push.body[..]), (alice.me, &br#"{"msg":"hi"}"#[..]));
    assert_eq!(world.push.counters().snapshot().pushes(Edge::Socket), 2);

    // pushHandler.kick: the client is disconnected with the manager's reason.
    let kick = "pushserver.pushHandler.kick";
    let body = json!({"apikey": "demo", "clientId": "alice", "reason": "see you"});
    let kicked = manager.request(world, kick, body);
    assert_eq!(kicked, json!({"code": 200, "msg": "kick is ok.", "disconnected": 1}));
    assert_eq!(world.out.disconnects.pop(), Some((alice.me, "see you".into())));
    let body = json!({"apikey": "demo", "clientId": "alice", "reason": "a\u{7}b"});
    assert_eq!(manager.request(world, kick, body)["code"], 400, "a control character");
    let body = json!({"apikey": "demo", "clientId": "nobody"});
    assert_eq!(manager.request(world, kick, body)["code"], 404);
    let body = json!({"apikey": "demo", "clientId": "alice"});
    assert_eq!(alice.request(world, kick, body)["code"], 403, "a client may not kick");
}

#[test]
fn every_refusal_is_a_response_with_its_code() {
    let world = &mut World::with(Some(1), DuplicatePolicy::Refuse, Some(1), None);
    let mut alice = Conn::new(2);
    alice.open(world, 0);
    let mut manager = Conn::new(1);
    manager.open(world, 0);
    let code = |v: Value| v["code"].as_u64().unwrap();

    // 400: the body.
    let (sent, _) = alice.input(world, 1, &request(7, ENTER, &json!("not an object")));
    assert_eq!(code(response(&sent, 7)), 400);
    assert_eq!(code(alice.request(world, ENTER, json!({"role": "client", "apikey": "demo"}))), 400);
    // 404: the apikey, the route.
    let body = json!({"role": "client", "apikey": "nope", "clientId": "a"});
    assert_eq!(code(alice.request(world, ENTER, body)), 404);
    let unknown = alice.request(world, "connector.entryHandler.leave", json!({}));
    assert_eq!((code(unknown.clone()), unknown["msg"].is_string()), (404, true));
    // 401: the secret.
    let missing = manager.request(world, ENTER, json!({"role": "server", "apikey": "demo"}));
    assert_eq!((code(missing.clone()), &missing["msg"]), (401, &json!("missing secret")));
    let body = json!({"role": "server", "apikey": "demo", "secret": "other-secret"});
    assert_eq!(code(manager.request(world, ENTER, body)), 401);
    // 403: pushing without being the app's manager.
    assert_eq!(code(alice.request(world, PUSH_ALL, json!({"apikey": "demo", "msg": 1}))), 403);
    manager.enter_manager(world);
    assert_eq!(code(manager.request(world, PUSH_ALL, json!({"apikey": "other", "msg": 1}))), 403);
    // 409: entering twice.
    alice.enter_client(world, "alice");
    assert_eq!(code(alice.enter_client(world, "again")), 409);
    assert_eq!(code(manager.enter_manager(world)), 409);
    // 500: Pomelo's duplicate login (duplicate = "refuse"); 503: the app is full.
    let mut second = Conn::new(3);
    second.open(world, 0);
    let duplicate = second.enter_client(world, "alice");
    assert_eq!(duplicate, json!({"code": 500, "msg": "duplicate log in", "error": true}));
    assert_eq!(code(second.enter_client(world, "bob")), 503);
    // 404: a client that is not online; 429: the app's rate (one push per second).
    let body = json!({"apikey": "demo", "clientId": "bob", "msg": 1});
    let missing = manager.request(world, PUSH_BY_CLIENT_ID, body);
    assert_eq!((code(missing.clone()), &missing["msg"]), (404, &json!("no such client")));
    assert_eq!(code(manager.request(world, PUSH_ALL, json!({"apikey": "demo", "msg": 1}))), 200);
    assert_eq!(code(manager.request(world, PUSH_ALL, json!({"apikey": "demo", "msg": 1}))), 429);
    // A notify (id 0) gets no response, even when refused.
    let notify = {
        let msg = Message::notify(Route::Name(ENTER), b"{}");
        let mut out = BytesMut::new();
        message::encode_package(&msg, &mut out).unwrap();
        out.to_vec()
    };
    assert_eq!(second.input(world, 1, &notify), (vec![], Flow::Continue));
}

#[test]
fn route_codes_come_from_the_dictionary() {
    let dict = RouteDict::new([ENTER, PUSH_ALL], ["onMsg"]).unwrap();
    let enter = dict.code(ENTER).unwrap();
    let world = &mut World::with(None, DuplicatePolicy::Replace, None, Some(dict));
    let mut conn = Conn::new(1);
    conn.open(world, 0);
    let coded = |id, code: u16, body: &[u8]| {
        let msg = Message::request(id, Route::Code(code), body);
        let mut out = BytesMut::new();
        message::encode_package(&msg, &mut out).unwrap();
        out.to_vec()
    };
    let body = br#"{"role":"client","apikey":"demo","clientId":"c"}"#;
    let (sent, _) = conn.input(world, 1, &coded(3, enter, body));
    assert_eq!(response(&sent, 3)["code"], 200);
    let (sent, flow) = conn.input(world, 1, &coded(4, 999, b"{}"));
    assert_eq!((response(&sent, 4)["code"].clone(), flow), (json!(404), Flow::Continue));
}

#[test]
fn protocol_faults_are_kicks_with_reasons() {
    let world = &mut World::new();
    let mut early = Conn::new(1);
    early.feed(world, 0, &pkg(PackageType::Handshake, HANDSHAKE));
    let kick = kick_of(early.input(world, 0, &request(1, ENTER, &json!({}))).1);
    assert_eq!(kick.text, "protocol error: data before the handshake");

    let mut conn = Conn::new(2);
    conn.open(world, 0);
    let kick = kick_of(conn.input(world, 1, &pkg(PackageType::Kick, b"{}")).1);
    assert_eq!((kick.reason, kick.close_code), (KickReason::ProtocolError, 1002));
    let kick = kick_of(
        conn.input(world, 1, &request(1, "connector.entryHandler.constructor", &json!({}))).1,
    );
    assert_eq!((kick.reason, kick.text.as_ref()), (KickReason::Attack, "attack"));
    let push = {
        let msg = Message::push(Route::Name("onMsg"), b"{}");
        let mut out = BytesMut::new();
        message::encode_package(&msg, &mut out).unwrap();
        out.to_vec()
    };
    let kick = kick_of(conn.input(world, 1, &push).1);
    assert_eq!(kick.text, "protocol error: a client may send only requests and notifies");
    // A package past max_package_bytes (1024) is refused on its header alone.
    let kick = kick_of(conn.input(world, 1, &[4, 0, 0x10, 0]).1);
    assert_eq!(
        (kick.reason, kick.text.as_ref()),
        (KickReason::PackageTooLarge, "package too large")
    );
}

#[test]
fn before_the_ack_a_package_may_be_only_16_kib() {
    let world = &mut World::new();
    world.settings.max_package_bytes = 1 << 20;
    // 20 KiB announced before the handshake: refused on the header, nothing buffered.
    let mut early = Conn::new(1);
    let kick = kick_of(early.input(world, 0, &[1, 0, 0x50, 0]).1);
    assert_eq!(kick.reason, KickReason::PackageTooLarge);
    assert!(early.rest.is_none());
    // Once working, the configured limit applies.
    let mut working = Conn::new(2);
    working.open(world, 0);
    let (_, flow) = working.input(world, 1, &[4, 0, 0x50, 0]);
    assert_eq!(flow, Flow::Continue, "20 KiB is within max_package_bytes once acked");
}

#[test]
fn a_refused_handshake_is_answered_then_closed() {
    let world = &mut World::new();
    let mut conn = Conn::new(1);
    let (sent, flow) = conn.input(world, 0, &pkg(PackageType::Handshake, b"{}"));
    assert_eq!(flow, Flow::Close);
    let (reply, _) = package::decode(&sent, usize::MAX).unwrap().unwrap();
    assert_eq!(handshake::decode_response(reply.body).unwrap().code, 500);
}

#[test]
fn input_split_at_every_byte_decodes_the_same() {
    let mut whole = pkg(PackageType::Handshake, HANDSHAKE);
    whole.extend_from_slice(&HANDSHAKE_ACK);
    whole.extend_from_slice(&request(
        9,
        ENTER,
        &json!({"role": "client", "apikey": "demo", "clientId": "c"}),
    ));
    for cut in 0..=whole.len() {
        let world = &mut World::new();
        let mut conn = Conn::new(1);
        let (mut sent, flow) = conn.input(world, 0, &whole[..cut]);
        assert_eq!(flow, Flow::Continue, "cut at {cut}");
        let (rest, flow) = conn.input(world, 0, &whole[cut..]);
        assert_eq!(flow, Flow::Continue, "cut at {cut}");
        sent.extend_from_slice(&rest);
        assert!(conn.rest.as_ref().is_none_or(|r| r.is_empty()), "cut at {cut}: nothing kept");
        assert_eq!(conn.session.member_of(), Some(AppId(0)), "cut at {cut}");
        // The handshake reply, the heartbeat, the response: in that order, whatever the cut.
        let (first, used) = package::decode(&sent, usize::MAX).unwrap().unwrap();
        assert_eq!(first.kind, PackageType::Handshake);
        assert_eq!(&sent[used..used + 4], &HEARTBEAT);
        assert_eq!(response(&sent[used + 4..], 9)["code"], 200);
    }
}

#[test]
fn kicks_are_encoded_for_the_transport() {
    let world = &mut World::new();
    let mut conn = Conn::new(1);
    conn.open(world, 0);
    let mut out = BytesMut::new();
    conn.session.encode_kick(&Kick::new(KickReason::Replaced), &mut out);
    let mut expected = BytesMut::new();
    kick::encode("replaced", &mut expected);
    assert_eq!(out, expected);
}

mod websocket {
    use super::*;

    const MASK: [u8; 4] = [1, 2, 3, 4];
    const UPGRADE: &[u8] =
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    fn client_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        ws::encode_client_frame(true, opcode, payload, MASK, &mut out);
        out.to_vec()
    }

    fn upgraded(world: &mut World) -> Conn {
        let mut conn = Conn::new(1);
        let (sent, flow) = conn.input(world, 0, UPGRADE);
        assert_eq!(flow, Flow::Continue);
        let head = String::from_utf8(sent).unwrap();
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
        assert_eq!(conn.session.transport(), Some(Transport::WebSocket));
        conn
    }

    #[test]
    fn packages_travel_in_binary_messages() {
        let world = &mut World::new();
        let mut conn = upgraded(world);
        let handshake = client_frame(OpCode::Binary, &pkg(PackageType::Handshake, HANDSHAKE));
        let (sent, _) = conn.input(world, 0, &handshake);
        assert_eq!(sent[0], 0x82, "one binary frame");
        let (sent, _) = conn.input(world, 0, &client_frame(OpCode::Binary, &HANDSHAKE_ACK));
        assert_eq!(sent, [&[0x82, 4][..], &HEARTBEAT].concat());
        assert_eq!(conn.session.form(), Some(WireForm::PomeloWebSocket));
        let (sent, flow) = conn.input(world, 0, &client_frame(OpCode::Ping, b"hi"));
        assert_eq!((sent, flow), (vec![0x8a, 2, b'h', b'i'], Flow::Continue));

        let mut out = BytesMut::new();
        conn.session.encode_kick(&Kick::new(KickReason::Shutdown), &mut out);
        assert_eq!(out[0], 0x82, "the kick in a binary frame");
        let close_at = 2 + usize::from(out[1]);
        assert_eq!(
            &out[close_at..close_at + 4],
            &[0x88, 10, 0x03, 0xe9],
            "close 1001 \"shutdown\""
        );
    }

    #[test]
    fn faults_close_with_their_codes() {
        let world = &mut World::new();
        let mut conn = upgraded(world);
        let (sent, flow) = conn.input(world, 0, &client_frame(OpCode::Text, b"{}"));
        assert_eq!(flow, Flow::Close, "not working yet: a close frame, no kick");
        assert_eq!(&sent[..4], &[0x88, sent[1], 0x03, 0xeb], "close 1003");

        let mut working = upgraded(world);
        working.feed(
            world,
            0,
            &client_frame(OpCode::Binary, &pkg(PackageType::Handshake, HANDSHAKE)),
        );
        working.feed(world, 0, &client_frame(OpCode::Binary, &HANDSHAKE_ACK));
        let kick = kick_of(working.input(world, 0, &client_frame(OpCode::Text, b"{}")).1);
        assert_eq!((kick.reason, kick.close_code), (KickReason::ProtocolError, 1003));
        assert_eq!(kick.text, "protocol error: text frames are not Pomelo packages");

        let mut closing = upgraded(world);
        let (sent, flow) = closing.input(world, 0, &client_frame(OpCode::Close, &[0x03, 0xe8]));
        assert_eq!((sent, flow), (vec![0x88, 2, 0x03, 0xe8], Flow::Close), "the close is echoed");
    }

    #[test]
    fn an_upgrade_from_another_origin_is_refused() {
        let mut world = World::new();
        world.settings.allowed_origins = vec!["https://app.example".into()];
        let mut conn = Conn::new(1);
        let head =
            [&UPGRADE[..UPGRADE.len() - 2], b"Origin: https://evil.example\r\n\r\n"].concat();
        let (sent, flow) = conn.input(&mut world, 0, &head);
        assert_eq!(flow, Flow::Close);
        assert!(String::from_utf8(sent).unwrap().starts_with("HTTP/1.1 403 "));
    }
}

#[path = "protobuf_tests.rs"]
mod protobuf;

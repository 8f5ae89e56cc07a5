//! The Socket.IO session byte for byte and state by state, with no sockets: each version's
//! opening, heartbeats in its direction, Pomelo's requests and answers, kicks and refusals.

use bytes::BytesMut;
use serde_json::{Value, json};

use crate::ids::{Transport, WireForm};
use crate::protocol::socketio::pomelo;
use crate::protocol::websocket::frame::{self as ws, OpCode};
use crate::session::testing::{Conn, HANDSHAKE_TIMEOUT, World};
use crate::session::{Flow, Kick, Session};
use crate::stats::KickReason;

const MASK: [u8; 4] = [9, 8, 7, 6];
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ENTER: &str = "sio-connector.entryHandler.enter";
const PUSH_ALL: &str = "pushserver.pushHandler.pushAll";
/// `[socketio]`'s defaults, which the test world uses.
const PING_INTERVAL: u32 = 25;
const PING_TIMEOUT: u32 = 20;

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

fn upgrade(target: &str) -> Vec<u8> {
    format!(
        "GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

fn text(payload: &str) -> Vec<u8> {
    let mut out = BytesMut::new();
    ws::encode_client_frame(true, OpCode::Text, payload.as_bytes(), MASK, &mut out);
    out.to_vec()
}

/// The server's frames in `bytes` (after any HTTP head), as (opcode, payload text).
fn frames(bytes: &[u8]) -> Vec<(u8, String)> {
    let mut at = match bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(end) if bytes.starts_with(b"HTTP/") => end + 4,
        _ => 0,
    };
    let mut frames = Vec::new();
    while at < bytes.len() {
        let opcode = bytes[at] & 0x0F;
        let (len, header) = match bytes[at + 1] {
            126 => (usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]])), 4),
            n => (usize::from(n), 2),
        };
        let payload = &bytes[at + header..at + header + len];
        frames.push((opcode, String::from_utf8_lossy(payload).into_owned()));
        at += header + len;
    }
    frames
}

fn texts(bytes: &[u8]) -> Vec<String> {
    frames(bytes)
        .into_iter()
        .map(|(op, text)| if op == 1 { text } else { format!("op{op}") })
        .collect()
}

/// A Pomelo request as Pomelo's socket.io client builds it.
fn pomelo_request(id: u32, route: &str, body: &Value) -> String {
    pomelo::encode_request(id, route, &body.to_string()).unwrap()
}

/// `message` as an Engine.IO `message` event, as socket.io-client sends it.
fn eio_message(message: &str) -> String {
    format!("42{}", json!(["message", message]))
}

/// The Pomelo message inside an Engine.IO `message` event.
fn eio_pomelo(frame: &str) -> Value {
    let args: Value = serde_json::from_str(frame.strip_prefix("42").expect(frame)).unwrap();
    assert_eq!(args[0], "message", "{frame}");
    serde_json::from_str(args[1].as_str().unwrap()).unwrap()
}

/// socket.io 0.9: handshake, then the WebSocket with its sid.
fn v09_client(world: &mut World, index: usize) -> Conn {
    let mut handshake = Conn::new(index + 100);
    let (sent, flow) = handshake.input(world, 1, &get("/socket.io/1/?t=1700000000000"));
    assert_eq!(flow, Flow::Close);
    let sent = String::from_utf8(sent).unwrap();
    assert!(sent.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"), "{sent}");
    let body = sent.split("\r\n\r\n").nth(1).unwrap();
    let fields: Vec<&str> = body.split(':').collect();
    assert_eq!(fields[1..], ["45", "60", "websocket,xhr-polling"], "{body}");
    let mut conn = Conn::new(index);
    let (sent, flow) =
        conn.input(world, 2, &upgrade(&format!("/socket.io/1/websocket/{}", fields[0])));
    assert_eq!(flow, Flow::Continue);
    assert!(sent.starts_with(b"HTTP/1.1 101 "));
    assert_eq!(texts(&sent), ["1::"]);
    assert_eq!(conn.session.form(), Some(WireForm::SocketIo09WebSocket));
    assert_eq!(conn.session.transport(), Some(Transport::WebSocket));
    conn
}

/// Engine.IO 4, WebSocket only: the open packet, then the client's CONNECT.
fn eio4_client(world: &mut World, index: usize) -> Conn {
    let mut conn = Conn::new(index);
    let (sent, flow) = conn.input(world, 2, &upgrade("/socket.io/?EIO=4&transport=websocket"));
    assert_eq!(flow, Flow::Continue);
    let sent = texts(&sent);
    let open: Value = serde_json::from_str(sent[0].strip_prefix('0').unwrap()).unwrap();
    assert_eq!(open["upgrades"], json!([]));
    assert_eq!(
        (open["pingInterval"].as_u64(), open["pingTimeout"].as_u64()),
        (Some(25_000), Some(20_000))
    );
    assert!(open["maxPayload"].as_u64().is_some() && open["sid"].as_str().is_some());
    assert_eq!(sent.len(), 1, "EIO 4 waits for the client's CONNECT");
    assert!(!conn.session.is_working());
    let connected = texts(&conn.feed(world, 2, &text("40")));
    let sid: Value = serde_json::from_str(connected[0].strip_prefix("40").unwrap()).unwrap();
    assert!(sid["sid"].as_str().is_some(), "{connected:?}");
    assert!(conn.session.is_working());
    assert_eq!(conn.session.form(), Some(WireForm::EngineIoWebSocket));
    conn
}

fn eio_request(conn: &mut Conn, world: &mut World, id: u32, route: &str, body: Value) -> Value {
    let sent = conn.feed(world, 3, &text(&eio_message(&pomelo_request(id, route, &body))));
    let answer = eio_pomelo(&texts(&sent)[0]);
    assert_eq!(answer["id"], id);
    answer["body"].clone()
}

fn enter_client(client_id: &str) -> Value {
    json!({"role": "client", "apikey": "demo", "clientId": client_id})
}

#[test]
fn v09_handshake_websocket_and_requests() {
    let world = &mut World::new();
    let mut phone = v09_client(world, 1);
    let sent = phone.feed(
        world,
        3,
        &text(&format!("3:::{}", pomelo_request(2, ENTER, &enter_client("p1")))),
    );
    let answer = texts(&sent);
    assert_eq!(answer, [r#"3:::{"id":2,"body":{"code":200,"msg":"add ok"}}"#]);
    assert_eq!(phone.session.member_of(), Some(crate::ids::AppId(0)));
    // The same request as a `message` event, and a notify (id 0) gets no answer.
    let event = json!({"name": "message", "args": [pomelo_request(3, "x.y.z", &json!({}))]});
    let sent = phone.feed(world, 3, &text(&format!("5:::{event}")));
    let answer: Value =
        serde_json::from_str(texts(&sent)[0].strip_prefix("3:::").unwrap()).unwrap();
    assert_eq!((answer["id"].as_u64(), answer["body"]["code"].as_u64()), (Some(3), Some(404)));
    assert!(
        phone
            .feed(world, 3, &text(&format!("3:::{}", pomelo_request(0, "x.y.z", &json!({})))))
            .is_empty()
    );
    // Other events and namespaces are ignored; the client's disconnect closes.
    assert!(phone.feed(world, 3, &text(r#"5:::{"name":"chat","args":[]}"#)).is_empty());
    assert!(phone.feed(world, 3, &text("3::/chat:hello")).is_empty());
    assert_eq!(phone.input(world, 3, &text("0::")).1, Flow::Close);
}

#[test]
fn v09_heartbeats_come_from_the_server() {
    let world = &mut World::new();
    let mut phone = v09_client(world, 1);
    let settings = &world.settings;
    // The ping goes out once `now` passes the deadline: at the interval's end.
    assert_eq!(phone.session.deadline(settings), 1 + PING_INTERVAL);
    let mut out = BytesMut::new();
    assert_eq!(phone.session.handle_timeout(1 + PING_INTERVAL, settings, &mut out), Flow::Continue);
    assert!(out.is_empty(), "not yet");
    assert_eq!(phone.session.handle_timeout(2 + PING_INTERVAL, settings, &mut out), Flow::Continue);
    assert_eq!(texts(&out), ["2::"]);
    assert_eq!(phone.session.deadline(settings), 2 + PING_INTERVAL + PING_TIMEOUT);
    // The answer starts the interval again.
    assert!(phone.feed(world, 30, &text("2::")).is_empty());
    assert_eq!(phone.session.deadline(&world.settings), 29 + PING_INTERVAL);
    out.clear();
    assert_eq!(phone.session.handle_timeout(55, &world.settings, &mut out), Flow::Continue);
    let kick = phone.session.handle_timeout(56 + PING_TIMEOUT, &world.settings, &mut out);
    assert_eq!(kick, Flow::Kick(Kick::new(KickReason::HeartbeatTimeout)));
}

#[test]
fn v09_refusals() {
    let world = &mut World::new();
    let mut conn = Conn::new(1);
    let (sent, flow) = conn.input(world, 2, &upgrade("/socket.io/1/websocket/forged"));
    assert_eq!(flow, Flow::Close);
    assert_eq!(texts(&sent), ["7:::1+0", "op8"]);
    assert!(matches!(conn.session, Session::Opening { .. }));
    // An unknown sid over polling: the 0.9 server's error packet, "handshake again".
    let (sent, flow) = Conn::new(2).input(world, 2, &get("/socket.io/1/xhr-polling/abc"));
    assert_eq!(flow, Flow::Close);
    let sent = String::from_utf8(sent).unwrap();
    assert!(sent.starts_with("HTTP/1.1 200 OK\r\n") && sent.ends_with("\r\n\r\n7:::1+0"), "{sent}");
    let (sent, _) = Conn::new(2).input(world, 2, &get("/socket.io/1/flashsocket/abc"));
    assert!(sent.starts_with(b"HTTP/1.1 400 "));
    // A sid is good for the close timeout only.
    let mut handshake = Conn::new(3);
    let (sent, _) = handshake.input(world, 1, &get("/socket.io/1/"));
    let sent = String::from_utf8(sent).unwrap();
    let sid = sent.split("\r\n\r\n").nth(1).unwrap().split(':').next().unwrap().to_owned();
    let (sent, _) =
        Conn::new(4).input(world, 62, &upgrade(&format!("/socket.io/1/websocket/{sid}")));
    assert_eq!(texts(&sent)[0], "7:::1+0");
}

#[test]
fn eio4_connect_requests_and_server_pings() {
    let world = &mut World::new();
    let mut phone = eio4_client(world, 1);
    let body = eio_request(&mut phone, world, 2, ENTER, enter_client("p1"));
    assert_eq!(body, json!({"code": 200, "msg": "add ok"}));
    assert!(phone.session.member_of().is_some());
    // The server pings after the interval; the pong starts it again.
    let mut out = BytesMut::new();
    assert_eq!(
        phone.session.handle_timeout(3 + PING_INTERVAL, &world.settings, &mut out),
        Flow::Continue
    );
    assert_eq!(texts(&out), ["2"]);
    assert!(phone.feed(world, 30, &text("3")).is_empty());
    assert_eq!(phone.session.deadline(&world.settings), 29 + PING_INTERVAL);
    // A ping unanswered is a heartbeat timeout.
    out.clear();
    assert_eq!(phone.session.handle_timeout(56, &world.settings, &mut out), Flow::Continue);
    let flow = phone.session.handle_timeout(57 + PING_TIMEOUT, &world.settings, &mut out);
    assert_eq!(flow, Flow::Kick(Kick::new(KickReason::HeartbeatTimeout)));
}

#[test]
fn eio4_before_connect() {
    let world = &mut World::new();
    let mut conn = Conn::new(1);
    conn.feed(world, 2, &upgrade("/socket.io/?EIO=4&transport=websocket"));
    assert_eq!(conn.session.deadline(&world.settings), 2 + HANDSHAKE_TIMEOUT);
    let mut out = BytesMut::new();
    assert_eq!(
        conn.session.handle_timeout(3 + HANDSHAKE_TIMEOUT, &world.settings, &mut out),
        Flow::Abort
    );
    // Another namespace is refused, the connection goes on; an event before CONNECT is a fault.
    let sent = conn.feed(world, 2, &text("40/chat,"));
    assert_eq!(texts(&sent), [r#"44/chat,{"message":"Invalid namespace"}"#]);
    let (_, flow) = conn.input(world, 2, &text(&eio_message("x")));
    assert!(matches!(flow, Flow::Kick(k) if k.reason == KickReason::ProtocolError));
}

#[test]
fn eio3_connects_unasked_and_answers_pings() {
    let world = &mut World::new();
    let mut conn = Conn::new(1);
    let sent = conn.feed(world, 2, &upgrade("/socket.io/?EIO=3&transport=websocket"));
    let sent = texts(&sent);
    assert!(sent[0].starts_with(r#"0{"sid":""#) && !sent[0].contains("maxPayload"), "{sent:?}");
    assert_eq!(sent[1], "40");
    assert!(conn.session.is_working());
    assert_eq!(conn.session.deadline(&world.settings), 2 + PING_INTERVAL + PING_TIMEOUT);
    assert_eq!(texts(&conn.feed(world, 20, &text("2"))), ["3"]);
    assert_eq!(texts(&conn.feed(world, 20, &text("2probe"))), ["3probe"]);
    assert_eq!(conn.session.deadline(&world.settings), 20 + PING_INTERVAL + PING_TIMEOUT);
    let mut out = BytesMut::new();
    let flow =
        conn.session.handle_timeout(21 + PING_INTERVAL + PING_TIMEOUT, &world.settings, &mut out);
    assert_eq!(flow, Flow::Kick(Kick::new(KickReason::HeartbeatTimeout)));
    assert!(out.is_empty(), "an EIO 3 server never pings");
    let body = eio_request(
        &mut conn,
        world,
        5,
        ENTER,
        json!({"role": "server", "apikey": "demo", "secret": "demo-secret"}),
    );
    assert_eq!(body["msg"], "push server is ok.");
}

#[test]
fn a_manager_pushes_to_every_form() {
    let world = &mut World::new();
    let mut phone = eio4_client(world, 1);
    eio_request(&mut phone, world, 2, ENTER, enter_client("p1"));
    let mut manager = v09_client(world, 2);
    let enter = json!({"role": "server", "apikey": "demo", "secret": "demo-secret"});
    let sent = manager.feed(world, 3, &text(&format!("3:::{}", pomelo_request(2, ENTER, &enter))));
    assert!(texts(&sent)[0].contains(r#""count":1"#), "{sent:?}");
    let push = json!({"apikey": "demo", "msg": {"hello": "world"}});
    let sent =
        manager.feed(world, 3, &text(&format!("3:::{}", pomelo_request(3, PUSH_ALL, &push))));
    assert!(texts(&sent)[0].contains(r#""recipients":1"#), "{sent:?}");
    let (_, _, frame) = world.out.broadcasts.last().expect("a broadcast");
    let bytes = frame.bytes(WireForm::EngineIoWebSocket);
    let pushed = eio_pomelo(&texts(bytes)[0]);
    assert_eq!(pushed["route"], "onMsg");
    assert!(pushed["body"].to_string().contains("world"), "{pushed}");
    // A kick: Pomelo's onKick, socket.io's disconnect, the close.
    let mut out = BytesMut::new();
    phone.session.encode_kick(&Kick::new(KickReason::Replaced), &mut out);
    let kick = texts(&out);
    assert_eq!(eio_pomelo(&kick[0]), json!({"route": "onKick", "reason": "replaced"}));
    assert_eq!(kick[1..], ["41", "op8"]);
    out.clear();
    manager.session.encode_kick(&Kick::new(KickReason::Shutdown), &mut out);
    assert_eq!(texts(&out), [r#"3:::{"route":"onKick","reason":"shutdown"}"#, "0::", "op8"]);
    assert_eq!(phone.leave(world), Some(crate::ids::AppId(0)));
}

#[test]
fn engine_io_refusals_are_its_error_bodies() {
    let world = &mut World::new();
    for (target, upgrade_headers, code) in [
        ("/socket.io/?EIO=4&transport=polling&j=0", false, 0),
        ("/socket.io/?EIO=3&transport=polling&sid=forged", false, 1),
        ("/socket.io/?EIO=4&transport=carrier-pigeon", true, 0),
        ("/socket.io/?EIO=4&transport=websocket&sid=abc", true, 1),
        ("/socket.io/?EIO=4&transport=websocket", false, 3),
        ("/socket.io/?EIO=5&transport=websocket", true, 5),
        ("/socket.io/?transport=websocket", true, 5),
    ] {
        let request = if upgrade_headers { upgrade(target) } else { get(target) };
        let (sent, flow) = Conn::new(1).input(world, 1, &request);
        assert_eq!(flow, Flow::Close, "{target}");
        let sent = String::from_utf8(sent).unwrap();
        assert!(
            sent.starts_with("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"),
            "{sent}"
        );
        let body: Value = serde_json::from_str(sent.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["code"], code, "{target}: {body}");
    }
    let (sent, _) = Conn::new(1).input(world, 1, &get("/socket.io/elsewhere"));
    assert!(sent.starts_with(b"HTTP/1.1 404 "));
    // A path that only starts like it is not Socket.IO's: a Pomelo upgrade as before.
    let (sent, flow) = Conn::new(1).input(world, 1, &upgrade("/socket.iox"));
    assert_eq!(flow, Flow::Continue);
    assert!(sent.starts_with(b"HTTP/1.1 101 "));
}

#[test]
fn faults_are_kicks_and_closes() {
    let world = &mut World::new();
    for bad in
        ["", "9", "4", "4x", &eio_message("\u{1}"), "45-[\"message\",{\"_placeholder\":true}]"]
    {
        let mut conn = eio4_client(world, 1);
        let (_, flow) = conn.input(world, 3, &text(bad));
        assert!(
            matches!(flow, Flow::Kick(ref k) if k.reason == KickReason::ProtocolError),
            "{bad:?}: {flow:?}"
        );
    }
    let mut conn = eio4_client(world, 1);
    let mut binary = BytesMut::new();
    ws::encode_client_frame(true, OpCode::Binary, b"\x04", MASK, &mut binary);
    let (_, flow) = conn.input(world, 3, &binary);
    assert!(matches!(flow, Flow::Kick(ref k) if k.close_code == 1003), "{flow:?}");
    let mut conn = v09_client(world, 1);
    let (_, flow) = conn.input(world, 3, &text("x:::"));
    assert!(matches!(flow, Flow::Kick(ref k) if k.reason == KickReason::ProtocolError), "{flow:?}");
    let mut conn = v09_client(world, 1);
    let mut invalid = BytesMut::new();
    ws::encode_client_frame(true, OpCode::Text, b"3:::\xff", MASK, &mut invalid);
    let (_, flow) = conn.input(world, 3, &invalid);
    assert!(matches!(flow, Flow::Kick(ref k) if k.close_code == 1007), "{flow:?}");
}

#[test]
fn a_fragmented_text_message_is_one_message() {
    let world = &mut World::new();
    let mut conn = eio4_client(world, 1);
    let message = eio_message(&pomelo_request(2, ENTER, &enter_client("p1")));
    let (first, second) = message.as_bytes().split_at(10);
    let mut frames = BytesMut::new();
    ws::encode_client_frame(false, OpCode::Text, first, MASK, &mut frames);
    ws::encode_client_frame(true, OpCode::Continuation, second, MASK, &mut frames);
    let sent = conn.feed(world, 3, &frames);
    assert_eq!(eio_pomelo(&texts(&sent)[0])["body"]["code"], 200);
}

//! Long-polling sans-IO: what each polling request asks the reactor for, what a polling
//! session writes (each version's payload elements), its kick, the upgrade's packets, and the
//! answers' bytes.

use bytes::BytesMut;
use serde_json::{Value, json};

use super::polling::{self, PollRequest, PollSession, SioAction};
use super::{SioSession, SioVersion};
use crate::ids::{ConnId, Transport, WireForm};
use crate::protocol::socketio::pomelo;
use crate::protocol::websocket::frame::{self as ws, OpCode};
use crate::session::testing::{Conn, World};
use crate::session::{Context, Flow, Kick, Now, Session};
use crate::stats::KickReason;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

fn post(target: &str, body: &str) -> Vec<u8> {
    format!("POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len())
        .into_bytes()
}

fn poll_of(flow: Flow) -> PollRequest {
    match flow {
        Flow::Poll(request) => *request,
        other => panic!("not a poll: {other:?}"),
    }
}

/// Runs `f` on a polling session at `me` with a context; returns what it wrote.
fn with_session(
    world: &mut World,
    session: &mut SioSession,
    me: ConnId,
    f: impl FnOnce(&mut SioSession, &mut Context<'_>) -> Flow,
) -> (String, Flow) {
    let mut out = BytesMut::new();
    let mut cx = Context {
        now: Now { secs: 3, at: world.at(3), unix: crate::session::testing::UNIX_T0 + 3 },
        me,
        settings: &world.settings,
        push: &world.push,
        outlet: &mut world.out,
        transmit: &mut out,
        per_core: &mut world.per_core,
    };
    let flow = f(session, &mut cx);
    (String::from_utf8(out.to_vec()).unwrap(), flow)
}

fn enter_message(client_id: &str) -> String {
    let body = json!({"role": "client", "apikey": "demo", "clientId": client_id}).to_string();
    pomelo::encode_request(1, "sio-connector.entryHandler.enter", &body).unwrap()
}

#[test]
fn polling_requests_say_which_session() {
    let world = &mut World::new();
    let mut carrier = Conn::new(1);
    let (sent, flow) = carrier.input(world, 1, &get("/socket.io/?EIO=4&transport=polling&t=P1"));
    assert!(sent.is_empty());
    let request = poll_of(flow);
    assert_eq!(request.session, PollSession::Open(SioVersion::Eio4));
    assert_eq!((request.body, request.keep_alive, request.origin), (None, true, None));
    assert!(matches!(carrier.session, Session::Carrier(_)));
    assert_eq!(carrier.session.transport(), Some(Transport::Tcp));
    assert_eq!(carrier.session.form(), None, "a carrier is no member");

    // A POST to a session of this core, its body arriving in two reads.
    let sid = world.settings.socketio.sid_key.issue(ConnId::new(0, 7, 3), 1);
    let target = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let request = post(&target, "40\u{1e}42[\"message\",\"x\"]");
    let (head, body) = request.split_at(request.len() - 5);
    assert_eq!(carrier.input(world, 2, head), (Vec::new(), Flow::Continue));
    let polled = poll_of(carrier.input(world, 2, body).1);
    assert_eq!(
        polled.session,
        PollSession::Eio { version: SioVersion::Eio4, sid: ConnId::new(0, 7, 3) }
    );
    assert_eq!(polled.body.as_deref(), Some("40\u{1e}42[\"message\",\"x\"]".as_bytes()));
    assert!(carrier.rest.as_ref().is_none_or(|r| r.is_empty()), "the body was taken whole");

    // A session of core 1: the connection moves there, its request unread.
    let elsewhere = world.settings.socketio.sid_key.issue(ConnId::new(1, 7, 3), 1);
    let mut other = Conn::new(2);
    let request = get(&format!("/socket.io/?EIO=3&transport=polling&sid={elsewhere}"));
    let (sent, flow) = other.input(world, 2, &request);
    assert_eq!((sent, flow), (Vec::new(), Flow::Move { core: 1 }));
    assert_eq!(other.rest.as_ref().map(|r| r.tail.clone()), Some(request));

    // socket.io 0.9: the handshake's token, fresh within the close timeout.
    let (sent, _) = Conn::new(3).input(world, 1, &get("/socket.io/1/"));
    let sent = String::from_utf8(sent).unwrap();
    let sid = sent.split("\r\n\r\n").nth(1).unwrap().split(':').next().unwrap().to_owned();
    let (_, token) = world.settings.socketio.sid_key.open(&sid).unwrap();
    let fresh =
        poll_of(Conn::new(4).input(world, 5, &get(&format!("/socket.io/1/xhr-polling/{sid}"))).1);
    assert_eq!(fresh.session, PollSession::V09 { token, fresh: true });
    let late = poll_of(
        Conn::new(4)
            .input(world, 99, &get(&format!("/socket.io/1/xhr-polling/{sid}?disconnect")))
            .1,
    );
    assert_eq!(late.session, PollSession::V09 { token, fresh: false });
    assert_eq!(
        late.body.as_deref(),
        Some(&b"0::"[..]),
        "a 0.9 disconnect GET is a disconnect packet"
    );

    // Two handshakes on one connection in one second get two tokens.
    let (again, _) = Conn::new(3).input(world, 1, &get("/socket.io/1/"));
    assert_ne!(sent, String::from_utf8(again).unwrap());
}

#[test]
fn polling_refusals() {
    let world = &mut World::new();
    let sid = world.settings.socketio.sid_key.issue(ConnId::new(0, 7, 3), 1);
    for (request, status) in [
        (post("/socket.io/?EIO=4&transport=polling", "40"), "400"),
        (
            format!(
                "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n\
                 Transfer-Encoding: chunked\r\n\r\n"
            )
            .into_bytes(),
            "411",
        ),
        (post(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}"), &"4".repeat(2000)), "413"),
        (
            format!("PUT /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n\r\n")
                .into_bytes(),
            "405",
        ),
    ] {
        let (sent, flow) = Conn::new(1).input(world, 1, &request);
        assert_eq!(flow, Flow::Close);
        assert!(
            sent.starts_with(format!("HTTP/1.1 {status} ").as_bytes()),
            "{}",
            String::from_utf8_lossy(&sent)
        );
    }
    // A carrier whose poll waits reads nothing else.
    let mut carrier = Conn::new(2);
    let _ = carrier.input(world, 1, &get("/socket.io/?EIO=4&transport=polling"));
    if let Session::Carrier(c) = &mut carrier.session {
        c.wait_for(9, 1, 1);
    }
    assert_eq!(carrier.input(world, 2, &get("/socket.io/?EIO=4&transport=polling")).1, Flow::Close);
    // A connection opens a few sessions, not more.
    let mut carrier = Conn::new(4);
    let limit = super::carrier::MAX_SESSIONS_PER_CARRIER;
    for _ in 0..limit {
        let flow = carrier.input(world, 1, &get("/socket.io/?EIO=3&transport=polling")).1;
        assert!(matches!(flow, Flow::Poll(_)));
    }
    let (sent, flow) = carrier.input(world, 1, &get("/socket.io/?EIO=3&transport=polling"));
    assert!(sent.starts_with(b"HTTP/1.1 429 ") && flow == Flow::Close);
    // Not Socket.IO's on a carrier: 404.
    let mut carrier = Conn::new(3);
    let _ = carrier.input(world, 1, &get("/socket.io/?EIO=4&transport=polling"));
    let (sent, flow) = carrier.input(world, 2, &get("/other"));
    assert!(sent.starts_with(b"HTTP/1.1 404 ") && flow == Flow::Close);
}

#[test]
fn a_polling_session_writes_payload_elements() {
    let world = &mut World::new();
    let me = ConnId::new(0, 5, 2);
    let settings = &world.settings;
    let mut out = BytesMut::new();
    SioSession::on_polling(SioVersion::Eio3, false, 1).put_opening("SID", settings, &mut out);
    let text = String::from_utf8(out.to_vec()).unwrap();
    let (len, rest) = text.split_once(':').unwrap();
    let open: Value = serde_json::from_str(&rest[1..len.parse::<usize>().unwrap()]).unwrap();
    assert_eq!(
        (open["sid"].as_str(), open["upgrades"].clone()),
        (Some("SID"), json!(["websocket"]))
    );
    assert!(text.ends_with("2:40"), "EIO 3 connects unasked: {text}");

    let mut out = BytesMut::new();
    SioSession::on_polling(SioVersion::Eio4, false, 1).put_opening("SID", settings, &mut out);
    assert!(out.starts_with(b"\x1e0{\"sid\":\"SID\""), "{out:?}");
    let mut out = BytesMut::new();
    SioSession::on_polling(SioVersion::V09, false, 1).put_opening("SID", settings, &mut out);
    assert_eq!(&out[..], "\u{fffd}3\u{fffd}1::".as_bytes());

    // EIO 4: CONNECT and a request in one POST; the answers are elements of the next poll.
    let mut session = SioSession::on_polling(SioVersion::Eio4, false, 1);
    assert_eq!(session.form(), WireForm::EngineIo4Polling);
    assert!(!session.is_working());
    let body = format!("40\u{1e}42{}", json!(["message", enter_message("p1")]));
    let (written, flow) =
        with_session(world, &mut session, me, |s, cx| s.on_payload(body.as_bytes(), cx));
    assert_eq!(flow, Flow::Continue);
    let packets = polling::pending_packets(SioVersion::Eio4, false, written.as_bytes());
    assert_eq!(packets.len(), 2, "{written:?}");
    assert!(packets[0].starts_with("40{\"sid\":"), "{packets:?}");
    let answer: Value = serde_json::from_str(
        serde_json::from_str::<Value>(&packets[1][2..]).unwrap()[1].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(answer, json!({"id": 1, "body": {"code": 200, "msg": "add ok"}}));
    assert_eq!(session.member_of(), Some(crate::ids::AppId(0)));
    assert!(session.is_working());

    // EIO 3: a client ping is answered with a pong element; a bad payload is a kick.
    let mut session = SioSession::on_polling(SioVersion::Eio3, false, 1);
    let (written, _) = with_session(world, &mut session, me, |s, cx| s.on_payload(b"1:2", cx));
    assert_eq!(written, "1:3");
    let (_, flow) = with_session(world, &mut session, me, |s, cx| s.on_payload(b"9:2", cx));
    assert!(matches!(flow, Flow::Kick(k) if k.reason == KickReason::ProtocolError));
    let (_, flow) = with_session(world, &mut session, me, |s, cx| s.on_payload(b"1:1", cx));
    assert_eq!(flow, Flow::Close, "the client's close packet");

    // 0.9: a message and a heartbeat in one framed POST.
    let mut session = SioSession::on_polling(SioVersion::V09, false, 1);
    let message = format!("3:::{}", enter_message("p9"));
    let mut body = BytesMut::new();
    crate::protocol::socketio::v09::encode_frames([message.as_str(), "2::"], &mut body);
    let (written, flow) = with_session(world, &mut session, me, |s, cx| s.on_payload(&body, cx));
    assert_eq!(flow, Flow::Continue);
    let packets = polling::pending_packets(SioVersion::V09, false, written.as_bytes());
    assert_eq!(packets, [r#"3:::{"id":1,"body":{"code":200,"msg":"add ok"}}"#]);
}

#[test]
fn a_polling_kick_ends_with_the_disconnect() {
    let mut out = BytesMut::new();
    let mut session = SioSession::on_polling(SioVersion::Eio4, false, 1);
    session.state = super::State::Working;
    session.encode_kick(&Kick::new(KickReason::Replaced), &mut out);
    let packets = polling::pending_packets(SioVersion::Eio4, false, &out);
    assert_eq!(
        packets,
        [r#"42["message","{\"route\":\"onKick\",\"reason\":\"replaced\"}"]"#, "41"]
    );
    let mut out = BytesMut::new();
    SioSession::on_polling(SioVersion::V09, false, 1)
        .encode_kick(&Kick::new(KickReason::Slow), &mut out);
    let packets = polling::pending_packets(SioVersion::V09, false, &out);
    assert_eq!(packets, [r#"3:::{"route":"onKick","reason":"slow"}"#, "0::"]);
}

#[test]
fn the_upgrade_is_a_probe_then_the_upgrade_packet() {
    let world = &mut World::new();
    let sid = ConnId::new(0, 7, 3);
    let token = world.settings.socketio.sid_key.issue(sid, 1);
    let mut ws_conn = Conn::new(8);
    let request = format!(
        "GET /socket.io/?EIO=4&transport=websocket&sid={token} HTTP/1.1\r\nHost: x\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    let (sent, flow) = ws_conn.input(world, 2, request.as_bytes());
    assert_eq!(flow, Flow::Continue);
    let sent = String::from_utf8(sent).unwrap();
    assert!(
        sent.starts_with("HTTP/1.1 101 ") && sent.ends_with("\r\n\r\n"),
        "no open packet: {sent}"
    );
    assert_eq!(world.per_core.socketio.upgrades.get(&8), Some(&sid));
    let frame = |text: &str| {
        let mut out = BytesMut::new();
        ws::encode_client_frame(true, OpCode::Text, text.as_bytes(), [1, 2, 3, 4], &mut out);
        out.to_vec()
    };
    let sent = ws_conn.feed(world, 2, &frame("2probe"));
    assert_eq!(&sent[2..], b"3probe");
    // The `5` and what the client flushes behind it, in one read: decoding stops at the `5`
    // (the reactor upgrades, then decodes the rest as the upgraded session's).
    let behind = frame("42[\"message\",\"right behind\"]");
    let (sent, flow) = ws_conn.input(world, 2, &[frame("5"), behind.clone()].concat());
    assert!(sent.is_empty());
    assert_eq!(flow, Flow::Upgrade);
    assert_eq!(ws_conn.rest.as_ref().map(|r| r.tail.clone()), Some(behind));
    ws_conn.rest = None;
    let me = ws_conn.me;
    assert_eq!(
        std::mem::take(&mut world.per_core.socketio.actions),
        [SioAction::Probed { ws: me }, SioAction::Upgrade { ws: me }]
    );
    // Anything else before the upgrade breaks it; leaving drops the link.
    let (_, flow) = ws_conn.input(world, 2, &frame("42[\"message\",\"x\"]"));
    assert!(matches!(flow, Flow::Kick(_)));
    ws_conn.leave(world);
    assert!(world.per_core.socketio.upgrades.is_empty());

    // The upgraded session: the same member, over WebSocket.
    let polling_session = SioSession::on_polling(SioVersion::Eio3, false, 1);
    let upgraded = polling_session.upgraded(9);
    assert_eq!(
        (upgraded.form(), upgraded.transport()),
        (WireForm::EngineIoWebSocket, Transport::WebSocket)
    );
    let mut out = BytesMut::new();
    upgraded.put_packet(b"3probe", &mut out);
    assert_eq!(&out[..], b"\x81\x063probe");
}

#[test]
fn answers_are_whole_http_responses() {
    let mut out = BytesMut::new();
    polling::encode_answer(b"ok", Some("http://a.example"), true, &mut out);
    let text = String::from_utf8(out.to_vec()).unwrap();
    assert_eq!(
        text,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: 2\r\n\
         Connection: keep-alive\r\nAccess-Control-Allow-Origin: http://a.example\r\n\
         Access-Control-Allow-Credentials: true\r\n\r\nok"
    );
    let mut out = BytesMut::new();
    polling::encode_noop_answer(SioVersion::Eio3, None, false, &mut out);
    assert!(out.ends_with(b"Connection: close\r\n\r\n1:6"), "{out:?}");
    let mut out = BytesMut::new();
    polling::encode_unknown_session(SioVersion::Eio4, None, &mut out);
    assert!(out.ends_with(br#"{"code":1,"message":"Session ID unknown"}"#), "{out:?}");
    assert_eq!(polling::body_skip(SioVersion::Eio4), 1);
    assert_eq!(polling::body_skip(SioVersion::Eio3), 0);
    assert!(polling::pending_packets(SioVersion::Eio4, false, b"").is_empty());
}

#[test]
fn engine_io_1x_payloads_are_utf8_byte_strings() {
    let world = &mut World::new();
    let me = ConnId::new(0, 5, 2);
    let mut session = SioSession::on_polling(SioVersion::Eio3, true, 1);
    assert!(session.has_byte_string_payloads());
    assert_eq!(session.form(), WireForm::EngineIo3Polling);
    let enter = format!("42{}", json!(["message", enter_message("hé😀")]));
    let mut body = BytesMut::new();
    let bytes = crate::protocol::socketio::engineio::to_byte_string(&enter);
    crate::protocol::socketio::engineio::encode_payload_item(
        crate::protocol::socketio::engineio::EioVersion::V3,
        &bytes,
        &mut body,
    );
    let (written, flow) = with_session(world, &mut session, me, |s, cx| s.on_payload(&body, cx));
    assert_eq!(flow, Flow::Continue);
    assert!(written.is_ascii(), "the answer is ASCII JSON: {written}");
    assert_eq!(world.push.clients(crate::ids::AppId(0), None, 10).0[0].as_str(), "hé😀");
    // What it writes is engine.io 1.x's; the WebSocket that takes over gets plain text.
    let mut out = BytesMut::new();
    session.put_packet("42[\"é\"]".as_bytes(), &mut out);
    assert_eq!(std::str::from_utf8(&out).unwrap(), "8:42[\"\u{c3}\u{a9}\"]");
    let packets = polling::pending_packets(SioVersion::Eio3, true, &out);
    assert_eq!(packets, ["42[\"é\"]"]);
    // A POST that is not engine.io 1.x's UTF-8 is a fault.
    let (_, flow) =
        with_session(world, &mut session, me, |s, cx| s.on_payload("2:4☃".as_bytes(), cx));
    assert!(matches!(flow, Flow::Kick(k) if k.reason == KickReason::ProtocolError));
}

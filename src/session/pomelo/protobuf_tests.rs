//! The Pomelo session with pomelo-protobuf protos: the handshake offers them (or says the
//! client's cached version is current), requests with a client proto are read as protobuf,
//! responses and pushes with a server proto are sent as protobuf, and what does not fit a proto
//! is a 400 that names the field.

use serde_json::{Value, json};

use super::{Conn, ENTER, PUSH_ALL, PUSH_BY_CLIENT_ID, World, pkg};
use crate::ids::{AppId, WireForm};
use crate::protocol::pomelo::handshake;
use crate::protocol::pomelo::message::{self, Message, MessageType, Route};
use crate::protocol::pomelo::package::{self, PackageType};
use crate::protocol::protobuf::Protos;
use crate::push::testing::TestApps;

fn server_protos() -> Value {
    json!({
        "connector.entryHandler.enter": {
            "required uInt32 code": 1,
            "optional string msg": 2,
            "repeated string users": 3,
            "optional uInt32 count": 4
        },
        "pushserver.pushHandler.pushAll": {
            "required uInt32 code": 1,
            "optional string msg": 2,
            "optional uInt32 recipients": 3
        },
        "onMsg": {
            "message Msg": {"required string title": 1, "optional uInt32 badge": 2},
            "required Msg msg": 1
        },
        "onAdd": {"optional string clientId": 1, "optional uInt32 count": 2}
    })
}

fn client_protos() -> Value {
    json!({
        "connector.entryHandler.enter": {
            "required string role": 1,
            "required string apikey": 2,
            "optional string clientId": 3,
            "optional string secret": 4
        },
        "pushserver.pushHandler.pushAll": {
            "message Msg": {"required string title": 1, "optional uInt32 badge": 2},
            "required string apikey": 1,
            "required Msg msg": 2
        }
    })
}

fn world() -> World {
    World::of(TestApps {
        server_protos: Some(server_protos()),
        client_protos: Some(client_protos()),
        ..TestApps::default()
    })
}

fn parse(protos: &Value) -> Protos {
    Protos::parse(protos).unwrap()
}

/// The handshake answer to a client that sends `body`.
fn handshake_answer(
    world: &mut World,
    conn: &mut Conn,
    body: &str,
) -> handshake::HandshakeResponse {
    let sent = conn.feed(world, 0, &pkg(PackageType::Handshake, body.as_bytes()));
    let (reply, _) = package::decode(&sent, usize::MAX).unwrap().unwrap();
    handshake::decode_response(reply.body).unwrap()
}

/// Handshake, ack, then a request whose body is encoded with the client proto of `route`;
/// returns the RESPONSE body bytes.
fn protobuf_request(world: &mut World, conn: &mut Conn, route: &str, body: &Value) -> Vec<u8> {
    let mut encoded = bytes::BytesMut::new();
    parse(&client_protos()).encode(route, body, &mut encoded).unwrap();
    raw_request(world, conn, route, &encoded)
}

fn raw_request(world: &mut World, conn: &mut Conn, route: &str, body: &[u8]) -> Vec<u8> {
    let msg = Message::request(9, Route::Name(route), body);
    let mut out = bytes::BytesMut::new();
    message::encode_package(&msg, &mut out).unwrap();
    let sent = conn.feed(world, 1, &out);
    let (pkg, _) = package::decode(&sent, usize::MAX).unwrap().unwrap();
    let msg = message::decode(pkg.body).unwrap();
    assert_eq!((msg.kind, msg.id), (MessageType::Response, 9));
    msg.body.to_vec()
}

fn decode_response(route: &str, body: &[u8]) -> Value {
    parse(&server_protos()).decode(route, body).unwrap()
}

#[test]
fn the_handshake_offers_the_protos_unless_the_client_has_them() {
    let world = &mut world();
    let answer = handshake_answer(world, &mut Conn::new(1), r#"{"sys":{"type":"t"}}"#);
    assert!(answer.use_proto);
    let protos = answer.protos.expect("protos offered");
    let set = world.push.protos().of(AppId::NONE);
    let parsed = |p: &Protos| serde_json::from_str::<Value>(p.parsed_json()).unwrap();
    assert_eq!(protos["server"], parsed(&set.server));
    assert_eq!(protos["client"], parsed(&set.client));
    let version = protos["version"].as_str().unwrap().to_owned();
    assert_eq!(version, set.version);

    let cached = format!(r#"{{"sys":{{"type":"t","protoVersion":"{version}"}}}}"#);
    let answer = handshake_answer(world, &mut Conn::new(2), &cached);
    assert!(answer.use_proto && answer.protos.is_none(), "{answer:?}");
    let stale = r#"{"sys":{"type":"t","protoVersion":"old"}}"#;
    assert!(handshake_answer(world, &mut Conn::new(3), stale).protos.is_some());
}

#[test]
fn without_protos_the_handshake_says_nothing_of_them() {
    let world = &mut World::new();
    let answer = handshake_answer(world, &mut Conn::new(1), r#"{"sys":{"type":"t"}}"#);
    assert!(!answer.use_proto && answer.protos.is_none());
}

#[test]
fn requests_and_responses_with_protos_are_protobuf() {
    let world = &mut world();
    let mut alice = Conn::new(2);
    alice.open(world, 0);
    let body = json!({"role": "client", "apikey": "demo", "clientId": "alice"});
    let answer = protobuf_request(world, &mut alice, ENTER, &body);
    assert_eq!(decode_response(ENTER, &answer), json!({"code": 200, "msg": "add ok"}));
    assert_eq!(alice.session.member_of(), Some(AppId(0)));

    let mut manager = Conn::new(1);
    manager.open(world, 0);
    let body = json!({"role": "server", "apikey": "demo", "secret": "demo-secret"});
    let answer = decode_response(ENTER, &protobuf_request(world, &mut manager, ENTER, &body));
    assert_eq!(
        answer,
        json!({"code": 200, "msg": "push server is ok.", "users": ["alice"], "count": 1})
    );

    let body = json!({"apikey": "demo", "msg": {"title": "hello", "badge": 3}});
    let answer = decode_response(PUSH_ALL, &protobuf_request(world, &mut manager, PUSH_ALL, &body));
    assert_eq!(answer, json!({"code": 200, "msg": "push is ok.", "recipients": 1}));
    let (_, _, frame) = world.out.broadcasts.pop().unwrap();
    let (push, _) = package::decode(frame.bytes(WireForm::PomeloTcp), usize::MAX).unwrap().unwrap();
    let msg = message::decode(push.body).unwrap();
    assert_eq!((msg.kind, msg.route), (MessageType::Push, Route::Name("onMsg")));
    let on_msg = parse(&server_protos()).decode("onMsg", msg.body).unwrap();
    assert_eq!(on_msg, json!({"msg": {"title": "hello", "badge": 3}}));

    // A route without a client proto is still read as JSON; one without a server proto answers
    // in JSON.
    let body = json!({"apikey": "demo", "clientId": "alice", "msg": {"title": "you"}});
    let json_body = serde_json::to_vec(&body).unwrap();
    let answer = raw_request(world, &mut manager, PUSH_BY_CLIENT_ID, &json_body);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["recipients"], 1);
    let (_, push) = world.out.deliveries.pop().unwrap();
    let on_msg = parse(&server_protos()).decode("onMsg", push.pomelo_body()).unwrap();
    assert_eq!(on_msg, json!({"msg": {"title": "you"}}));
    assert_eq!(&push.body[..], br#"{"msg":{"title":"you"}}"#, "other frontends get JSON");
}

#[test]
fn what_does_not_fit_a_proto_is_a_400_naming_the_field() {
    let world = &mut world();
    let mut manager = Conn::new(1);
    manager.open(world, 0);
    let body = json!({"role": "server", "apikey": "demo", "secret": "demo-secret"});
    protobuf_request(world, &mut manager, ENTER, &body);

    // A push whose msg lacks a required field of the onMsg proto: nothing is sent.
    let body = json!({"apikey": "demo", "clientId": "x", "msg": {"badge": 1}});
    let answer =
        raw_request(world, &mut manager, PUSH_BY_CLIENT_ID, &serde_json::to_vec(&body).unwrap());
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["code"], 400, "{answer}");
    assert!(answer["msg"].as_str().unwrap().contains("msg.title"), "{answer}");
    assert!(world.out.broadcasts.is_empty() && world.out.deliveries.is_empty());

    // A body that does not decode with its client proto: a tag the proto does not have.
    let answer = raw_request(world, &mut manager, PUSH_ALL, &[0x78, 0x01]);
    let answer = decode_response(PUSH_ALL, &answer);
    assert_eq!(answer["code"], 400, "{answer}");
    let msg = answer["msg"].as_str().unwrap();
    assert!(msg.contains(PUSH_ALL), "the route is named: {msg}");
}

#[test]
fn an_app_with_protos_of_its_own_is_named_in_the_handshake() {
    let own = json!({"onMsg": {"required string msg": 1}});
    let world =
        &mut World::of(TestApps { other_server_protos: Some(own.clone()), ..TestApps::default() });
    let enter_other = json!({"role": "client", "apikey": "other", "clientId": "bob"});

    // Not named: the global (empty) protos, and entering `other` is refused.
    let mut anonymous = Conn::new(1);
    let answer = handshake_answer(world, &mut anonymous, r#"{"sys":{}}"#);
    assert!(!answer.use_proto);
    anonymous.feed(world, 0, &crate::protocol::pomelo::package::HANDSHAKE_ACK);
    let refused = anonymous.request(world, ENTER, enter_other.clone());
    assert_eq!(refused["code"], 400, "{refused}");
    assert!(refused["msg"].as_str().unwrap().contains("user.apikey"), "{refused}");

    // Named: the app's protos, and it may enter.
    let mut bob = Conn::new(2);
    let answer = handshake_answer(world, &mut bob, r#"{"sys":{},"user":{"apikey":"other"}}"#);
    let protos = answer.protos.expect("the app's protos");
    assert_eq!(protos["server"], serde_json::from_str::<Value>(parse(&own).parsed_json()).unwrap());
    bob.feed(world, 0, &crate::protocol::pomelo::package::HANDSHAKE_ACK);
    assert_eq!(bob.request(world, ENTER, enter_other)["code"], 200);
    // It may not enter an app of other protos either.
    let mut carol = Conn::new(3);
    handshake_answer(world, &mut carol, r#"{"sys":{},"user":{"apikey":"other"}}"#);
    carol.feed(world, 0, &crate::protocol::pomelo::package::HANDSHAKE_ACK);
    let body = json!({"role": "client", "apikey": "demo", "clientId": "carol"});
    assert_eq!(carol.request(world, ENTER, body)["code"], 400);
}

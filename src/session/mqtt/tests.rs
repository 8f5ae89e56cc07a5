//! The MQTT session without sockets: packets in through the transport decoder (raw TCP and
//! WebSocket), `now` passed in, and what it transmits, its flow, its deadlines, the core's
//! extras and the push service's effects checked byte for byte and state by state. Client
//! packets are encoded with the codec's own client-side encoders, whose bytes the codec tests
//! check against captures of mosquitto's clients.

use bytes::{Bytes, BytesMut};
use serde_json::json;

use crate::ids::{AppId, Edge, WireForm};
use crate::protocol::mqtt::{
    Connect, Decoder, Encoder, Filters, Packet, Properties, ProtocolVersion, PubResponse, Publish,
    QoS, ReasonCode, Subscribe, SubscriptionOptions, Unsubscribe, Will,
};
use crate::protocol::websocket::frame::{self as ws, OpCode};
use crate::session::testing::{Conn, HANDSHAKE_TIMEOUT, World};
use crate::session::{Flow, Session};
use crate::stats::KickReason;

const V3: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;
/// The test apps' first apikey and secret (push::testing).
const APIKEY: &str = "demo";
const SECRET: &str = "demo-secret";

fn connect<'a>(
    version: ProtocolVersion,
    client_id: &'a str,
    password: Option<&'a [u8]>,
) -> Connect<'a> {
    Connect {
        version,
        clean_start: true,
        keep_alive: 60,
        properties: Properties::default(),
        client_id,
        will: None,
        username: Some(APIKEY),
        password,
    }
}

fn encode_connect(c: &Connect<'_>) -> Vec<u8> {
    let mut out = BytesMut::new();
    Encoder::new(c.version).connect(c, &mut out).unwrap();
    out.to_vec()
}

fn subscribe(version: ProtocolVersion, id: u16, filters: &[(&str, QoS)]) -> Vec<u8> {
    let list: Vec<(&str, SubscriptionOptions)> =
        filters.iter().map(|&(f, q)| (f, SubscriptionOptions::qos(q))).collect();
    let s = Subscribe {
        packet_id: id,
        properties: Properties::default(),
        filters: Filters::List(&list),
    };
    let mut out = BytesMut::new();
    Encoder::new(version).subscribe(&s, &mut out).unwrap();
    out.to_vec()
}

fn publish(
    version: ProtocolVersion,
    topic: &str,
    qos: QoS,
    id: u16,
    retain: bool,
    payload: &[u8],
) -> Vec<u8> {
    let p = Publish {
        dup: false,
        qos,
        retain,
        topic,
        packet_id: id,
        properties: Properties::default(),
        payload,
    };
    let mut out = BytesMut::new();
    Encoder::new(version).publish(&p, &mut out).unwrap();
    out.to_vec()
}

/// A v5 client's PUBACK of `id`.
fn puback(id: u16) -> Vec<u8> {
    let mut out = BytesMut::new();
    Encoder::new(V5).puback(&PubResponse::success(id), &mut out).unwrap();
    out.to_vec()
}

/// Decodes what the server sent as the client would: every packet, in order.
fn packets(version: ProtocolVersion, bytes: &[u8]) -> Vec<Sent> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        let (sent, used) = Sent::decode(version, &bytes[at..]);
        out.push(sent);
        at += used;
    }
    out
}

/// A server → client packet, as far as the tests look.
#[derive(Debug, PartialEq)]
enum Sent {
    ConnAck { reason: u8, assigned: Option<String>, keep_alive: Option<u16> },
    SubAck { id: u16, codes: Vec<u8> },
    UnsubAck { id: u16 },
    Publish { topic: String, qos: u8, id: u16, retain: bool, payload: Vec<u8> },
    PubAck { id: u16, reason: u8 },
    PingResp,
    Disconnect { reason: u8 },
}

impl Sent {
    /// The server's packets are decoded here by hand: the codec decodes client packets only.
    fn decode(version: ProtocolVersion, b: &[u8]) -> (Sent, usize) {
        let mut len = 0usize;
        let mut i = 1;
        let mut shift = 0;
        loop {
            len |= usize::from(b[i] & 0x7f) << shift;
            shift += 7;
            i += 1;
            if b[i - 1] & 0x80 == 0 {
                break;
            }
        }
        let body = &b[i..i + len];
        let v5 = version == V5;
        let u16_at = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
        let sent = match b[0] >> 4 {
            2 => {
                let reason = body[1];
                let (mut assigned, mut keep_alive) = (None, None);
                if v5 {
                    let props = &body[3..];
                    let mut p = 0;
                    while p < props.len() {
                        match props[p] {
                            0x12 => {
                                let n =
                                    usize::from(u16::from_be_bytes([props[p + 1], props[p + 2]]));
                                assigned = Some(
                                    String::from_utf8(props[p + 3..p + 3 + n].to_vec()).unwrap(),
                                );
                                p += 3 + n;
                            }
                            0x13 => {
                                keep_alive = Some(u16::from_be_bytes([props[p + 1], props[p + 2]]));
                                p += 3;
                            }
                            0x1F => {
                                let n =
                                    usize::from(u16::from_be_bytes([props[p + 1], props[p + 2]]));
                                p += 3 + n;
                            }
                            0x27 | 0x11 => p += 5,
                            0x24 | 0x25 | 0x28 | 0x29 | 0x2A => p += 2,
                            other => panic!("unexpected CONNACK property {other:#x}"),
                        }
                    }
                }
                Sent::ConnAck { reason, assigned, keep_alive }
            }
            9 => {
                let props = if v5 { 1 + usize::from(body[2]) } else { 0 };
                Sent::SubAck { id: u16_at(0), codes: body[2 + props..].to_vec() }
            }
            11 => Sent::UnsubAck { id: u16_at(0) },
            3 => {
                let qos = (b[0] >> 1) & 3;
                let n = usize::from(u16_at(0));
                let topic = String::from_utf8(body[2..2 + n].to_vec()).unwrap();
                let mut at = 2 + n;
                let id = if qos > 0 {
                    at += 2;
                    u16_at(2 + n)
                } else {
                    0
                };
                if v5 {
                    at += 1 + usize::from(body[at]);
                }
                Sent::Publish {
                    topic,
                    qos,
                    id,
                    retain: b[0] & 1 == 1,
                    payload: body[at..].to_vec(),
                }
            }
            4 => Sent::PubAck { id: u16_at(0), reason: if body.len() > 2 { body[2] } else { 0 } },
            13 => Sent::PingResp,
            14 => Sent::Disconnect { reason: body.first().copied().unwrap_or(0) },
            other => panic!("unexpected packet type {other}"),
        };
        (sent, i + len)
    }
}

fn connack_ok() -> Sent {
    Sent::ConnAck { reason: 0, assigned: None, keep_alive: None }
}

/// A client connected (and subscribed to the channel at `qos`, when given).
fn client(
    world: &mut World,
    index: usize,
    version: ProtocolVersion,
    id: &str,
    qos: Option<QoS>,
) -> Conn {
    let mut conn = Conn::new(index);
    let sent = conn.feed(world, 0, &encode_connect(&connect(version, id, None)));
    assert_eq!(packets(version, &sent), vec![connack_ok()]);
    if let Some(qos) = qos {
        let sent = conn.feed(world, 0, &subscribe(version, 1, &[("push/demo", qos)]));
        assert_eq!(
            packets(version, &sent),
            vec![Sent::SubAck { id: 1, codes: vec![qos.min(QoS::AtLeastOnce) as u8] }]
        );
    }
    conn
}

fn manager(world: &mut World, index: usize, version: ProtocolVersion) -> Conn {
    let mut conn = Conn::new(index);
    let sent =
        conn.feed(world, 0, &encode_connect(&connect(version, "backend", Some(SECRET.as_bytes()))));
    assert_eq!(packets(version, &sent), vec![connack_ok()]);
    conn
}

fn mqtt(conn: &Conn) -> super::MqttSession {
    match conn.session {
        Session::Mqtt(s) => s,
        other => panic!("not an MQTT session: {other:?}"),
    }
}

#[test]
fn a_connect_is_answered_and_the_session_is_inline() {
    let mut world = World::new();
    for (index, version) in [(1, V3), (2, V5)] {
        let conn = client(&mut world, index, version, "phone", None);
        let session = mqtt(&conn);
        assert!(session.is_working() && session.member_of().is_none());
        assert_eq!(session.version(), version);
        assert_eq!(
            session.form(),
            if version == V5 { WireForm::Mqtt5Tcp } else { WireForm::Mqtt311Tcp }
        );
        // Keep alive 60: closed after 90 s of silence.
        assert_eq!(conn.session.deadline(&world.settings), 90);
    }
    // Clients keep their clientId in the core's extras until they subscribe.
    assert_eq!(world.per_core.mqtt.len(), 2);
}

#[test]
fn connect_refusals_are_each_versions_own() {
    let mut world = World::new();
    let wrong = connect(V5, "x", Some(b"not-the-secret"));
    let unknown = Connect { username: Some("nope"), ..connect(V5, "x", None) };
    let anonymous = Connect { username: None, ..connect(V5, "x", None) };
    let will = Will {
        topic: "push/demo",
        payload: b"bye",
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::default(),
    };
    let client_will = Connect { will: Some(will), ..connect(V5, "x", None) };
    let persistent_empty = Connect { clean_start: false, ..connect(V3, "", None) };
    let control = connect(V5, "a\u{1}b", None);
    for (c, v5, v3) in [
        (&wrong, 0x86, 4),
        (&unknown, 0x86, 4),
        (&anonymous, 0x86, 4),
        (&client_will, 0x87, 5),
        (&control, 0x85, 2),
    ] {
        for version in [V5, V3] {
            let c = Connect { version, ..*c };
            let mut conn = Conn::new(9);
            let (sent, flow) = conn.input(&mut world, 0, &encode_connect(&c));
            assert_eq!(flow, Flow::Close, "{c:?}");
            let Sent::ConnAck { reason, .. } = &packets(version, &sent)[0] else { panic!() };
            assert_eq!(*reason, if version == V5 { v5 } else { v3 }, "{c:?}");
            assert!(!conn.session.is_working());
        }
    }
    let mut conn = Conn::new(9);
    let (sent, flow) = conn.input(&mut world, 0, &encode_connect(&persistent_empty));
    assert_eq!(
        (packets(V3, &sent), flow),
        (vec![Sent::ConnAck { reason: 2, assigned: None, keep_alive: None }], Flow::Close)
    );
    // MQTT 3.1 (MQIsdp, level 3): return code 1, then closed.
    let mut v31 = b"\x10\x0f\x00\x06MQIsdp\x03\x02\x00\x3c\x00\x01x".to_vec();
    v31[1] = (v31.len() - 2) as u8;
    let (sent, flow) = Conn::new(9).input(&mut world, 0, &v31);
    assert_eq!((sent, flow), (vec![0x20, 0x02, 0x00, 0x01], Flow::Close));
}

#[test]
fn an_empty_client_id_is_assigned_and_keep_alive_capped() {
    let mut world = World::new();
    world.settings.mqtt.max_keepalive_secs = 100;
    let mut conn = Conn::new(3);
    let c = Connect { keep_alive: 0, ..connect(V5, "", None) };
    let sent = conn.feed(&mut world, 5, &encode_connect(&c));
    let [Sent::ConnAck { reason: 0, assigned: Some(id), keep_alive: Some(100) }] =
        &packets(V5, &sent)[..]
    else {
        panic!("{:?}", packets(V5, &sent));
    };
    assert!(id.starts_with("mqtt-"), "{id}");
    assert_eq!(conn.session.deadline(&world.settings), 5 + 150);
    // A 3.1.1 client cannot be told: it is held to the cap too.
    let mut v3 = Conn::new(4);
    v3.feed(
        &mut world,
        0,
        &encode_connect(&Connect { keep_alive: 1000, ..connect(V3, "a", None) }),
    );
    assert_eq!(v3.session.deadline(&world.settings), 150);
}

#[test]
fn subscribing_to_the_channel_enters_it_and_unsubscribing_leaves() {
    let mut world = World::new();
    let mut boss = manager(&mut world, 1, V5);
    let mut phone = client(&mut world, 2, V3, "phone", Some(QoS::AtLeastOnce));
    assert_eq!(mqtt(&phone).member_of(), Some(AppId(0)));
    assert!(mqtt(&phone).at_qos1());
    assert_eq!(world.push.clients(AppId(0), None, 10).1, 1);
    // Presence holds the clientId now, not the core's extras.
    assert!(world.per_core.mqtt.is_empty(), "{:?}", world.per_core.mqtt);
    // The manager is no Pomelo session: onAdd goes to it as a push without an MQTT form.
    let (_, on_add) = world.out.deliveries.pop().unwrap();
    assert_eq!(on_add.route, "onAdd");
    assert!(on_add.mqtt.is_none());
    // Its own topic is granted, another client's or app's is not, wildcards are not.
    let sent = phone.feed(
        &mut world,
        1,
        &subscribe(
            V3,
            2,
            &[
                ("push/demo/phone", QoS::ExactlyOnce),
                ("push/demo/other", QoS::AtMostOnce),
                ("push/other", QoS::AtMostOnce),
                ("push/#", QoS::AtMostOnce),
            ],
        ),
    );
    assert_eq!(packets(V3, &sent), vec![Sent::SubAck { id: 2, codes: vec![1, 0x80, 0x80, 0x80] }]);
    let mut unsub = BytesMut::new();
    let filters = [("push/demo", ())];
    let u = Unsubscribe {
        packet_id: 3,
        properties: Properties::default(),
        filters: Filters::List(&filters),
    };
    Encoder::new(V3).unsubscribe(&u, &mut unsub).unwrap();
    let sent = phone.feed(&mut world, 2, &unsub);
    assert_eq!(packets(V3, &sent), vec![Sent::UnsubAck { id: 3 }]);
    assert_eq!(mqtt(&phone).member_of(), None);
    assert_eq!(world.push.clients(AppId(0), None, 10).1, 0);
    // ... and may come back.
    let sent = phone.feed(&mut world, 3, &subscribe(V3, 4, &[("push/demo", QoS::AtMostOnce)]));
    assert_eq!(packets(V3, &sent), vec![Sent::SubAck { id: 4, codes: vec![0] }]);
    assert_eq!(world.push.clients(AppId(0), None, 10).0[0].as_str(), "phone");
    // v5 codes: wildcards 0xA2, shared 0x9E, others 0x87; managers do not subscribe.
    let mut five = client(&mut world, 5, V5, "five", None);
    let sent = five.feed(
        &mut world,
        0,
        &subscribe(
            V5,
            9,
            &[
                ("push/demo/+", QoS::AtMostOnce),
                ("$share/g/push/demo", QoS::AtMostOnce),
                ("news", QoS::AtMostOnce),
            ],
        ),
    );
    assert_eq!(packets(V5, &sent), vec![Sent::SubAck { id: 9, codes: vec![0xA2, 0x9E, 0x87] }]);
    let sent = boss.feed(&mut world, 0, &subscribe(V5, 1, &[("push/demo", QoS::AtMostOnce)]));
    assert_eq!(packets(V5, &sent), vec![Sent::SubAck { id: 1, codes: vec![0x87] }]);
    assert_eq!(phone.leave(&mut world), Some(AppId(0)));
}

#[test]
fn a_manager_publishes_pushes_and_hears_the_verdict() {
    let mut world = World::new();
    let mut boss = manager(&mut world, 1, V5);
    let _phone = client(&mut world, 2, V5, "phone", Some(QoS::AtMostOnce));
    world.out.deliveries.clear();
    // QoS 1 to the channel: one broadcast, PUBACK success.
    let sent = boss.feed(
        &mut world,
        1,
        &publish(V5, "push/demo", QoS::AtLeastOnce, 7, false, br#"{"title":"hi"}"#),
    );
    assert_eq!(packets(V5, &sent), vec![Sent::PubAck { id: 7, reason: 0 }]);
    let (_, app, frame) = world.out.broadcasts.pop().unwrap();
    assert_eq!(app, AppId(0));
    assert_eq!(
        &frame.bytes(WireForm::Mqtt5Tcp)[..],
        b"\x30\x1a\x00\x09push/demo\x00{\"title\":\"hi\"}"
    );
    // Text that is not JSON is a string msg.
    boss.feed(&mut world, 1, &publish(V5, "push/demo", QoS::AtMostOnce, 0, false, b"plain words"));
    let (_, _, frame) = world.out.broadcasts.pop().unwrap();
    assert!(frame.bytes(WireForm::Mqtt5Tcp).ends_with(b"\"plain words\""));
    // To one client: delivered with its own topic; to nobody: 0x10.
    let sent =
        boss.feed(&mut world, 1, &publish(V5, "push/demo/phone", QoS::AtLeastOnce, 8, false, b"1"));
    assert_eq!(packets(V5, &sent), vec![Sent::PubAck { id: 8, reason: 0 }]);
    let (_, push) = world.out.deliveries.pop().unwrap();
    assert_eq!(&*push.mqtt.as_ref().unwrap().topic, "push/demo/phone");
    let sent =
        boss.feed(&mut world, 1, &publish(V5, "push/demo/ghost", QoS::AtLeastOnce, 9, false, b"1"));
    assert_eq!(packets(V5, &sent), vec![Sent::PubAck { id: 9, reason: 0x10 }]);
    // Another app's topic: 0x87; not UTF-8: 0x99.
    let sent =
        boss.feed(&mut world, 1, &publish(V5, "push/other", QoS::AtLeastOnce, 10, false, b"1"));
    assert_eq!(packets(V5, &sent), vec![Sent::PubAck { id: 10, reason: 0x87 }]);
    let sent = boss.feed(
        &mut world,
        1,
        &publish(V5, "push/demo", QoS::AtLeastOnce, 11, false, b"\xff\xfe"),
    );
    assert_eq!(packets(V5, &sent), vec![Sent::PubAck { id: 11, reason: 0x99 }]);
    assert_eq!(world.push.counters().snapshot().pushes(Edge::Socket), 3);
}

#[test]
fn retained_messages_greet_new_members_first() {
    let mut world = World::new();
    let mut boss = manager(&mut world, 1, V3);
    boss.feed(&mut world, 1, &publish(V3, "push/demo", QoS::AtMostOnce, 0, true, br#"{"v":1}"#));
    assert_eq!(world.push.retained(AppId(0)).as_deref(), Some(&br#"{"v":1}"#[..]));
    let mut phone = client(&mut world, 2, V3, "phone", None);
    let sent = phone.feed(&mut world, 2, &subscribe(V3, 1, &[("push/demo", QoS::AtLeastOnce)]));
    assert_eq!(
        packets(V3, &sent),
        vec![
            Sent::SubAck { id: 1, codes: vec![1] },
            Sent::Publish {
                topic: "push/demo".into(),
                qos: 1,
                id: 1,
                retain: true,
                payload: br#"{"v":1}"#.to_vec()
            },
        ]
    );
    // An empty retained payload clears it, and pushes nothing.
    world.out.broadcasts.clear();
    boss.feed(&mut world, 3, &publish(V3, "push/demo", QoS::AtMostOnce, 0, true, b""));
    assert_eq!(world.push.retained(AppId(0)), None);
    assert!(world.out.broadcasts.is_empty());
}

#[test]
fn a_clients_publish_is_refused() {
    let mut world = World::new();
    let mut v5 = client(&mut world, 1, V5, "a", None);
    let sent = v5.feed(&mut world, 0, &publish(V5, "push/demo", QoS::AtLeastOnce, 3, false, b"1"));
    assert_eq!(packets(V5, &sent), vec![Sent::PubAck { id: 3, reason: 0x87 }]);
    let (_, flow) =
        v5.input(&mut world, 0, &publish(V5, "push/demo", QoS::AtMostOnce, 0, false, b"1"));
    let Flow::Kick(kick) = flow else { panic!("{flow:?}") };
    assert_eq!(kick.mqtt, Some(ReasonCode::NotAuthorized));
    let mut out = BytesMut::new();
    v5.session.encode_kick(&kick, &mut out);
    assert_eq!(packets(V5, &out), vec![Sent::Disconnect { reason: 0x87 }]);
    // 3.1.1 has no way to say it: the connection closes, with nothing sent.
    let mut v3 = client(&mut world, 2, V3, "b", None);
    let (_, flow) =
        v3.input(&mut world, 0, &publish(V3, "push/demo", QoS::AtLeastOnce, 3, false, b"1"));
    let Flow::Kick(kick) = flow else { panic!("{flow:?}") };
    let mut out = BytesMut::new();
    v3.session.encode_kick(&kick, &mut out);
    assert!(out.is_empty());
    assert!(world.out.broadcasts.is_empty());
}

#[test]
fn qos1_deliveries_keep_a_window_and_release_it_on_puback() {
    let mut world = World::new();
    world.settings.mqtt.max_inflight = 2;
    world.settings.mqtt.max_queued = 2;
    let mut phone = client(&mut world, 1, V5, "phone", Some(QoS::AtLeastOnce));
    let session = mqtt(&phone);
    let frames: Vec<_> = (0..5)
        .map(|i| {
            let push = crate::push::Push::new("onMsg", &json!({"msg": i}))
                .with_mqtt("push/demo".into(), Bytes::from(i.to_string()));
            world.push.encoder().encode(&push, crate::ids::Forms::one(WireForm::Mqtt5Tcp)).unwrap()
        })
        .collect();
    let mut scratch = BytesMut::new();
    let settings = world.settings.mqtt.clone();
    let mut stage = |world: &mut World, i: usize| match world.per_core.mqtt.stage(
        &session,
        phone.me,
        &settings,
        &frames[i],
        &mut scratch,
    ) {
        crate::session::mqtt::Staged::Split { header, payload } => {
            let mut whole = header.to_vec();
            whole.extend_from_slice(&payload);
            Some(whole)
        }
        crate::session::mqtt::Staged::Nothing => None,
        other => panic!("{other:?}"),
    };
    let first = stage(&mut world, 0).unwrap();
    assert_eq!(
        packets(V5, &first),
        vec![Sent::Publish {
            topic: "push/demo".into(),
            qos: 1,
            id: 1,
            retain: false,
            payload: b"0".to_vec()
        }]
    );
    assert!(stage(&mut world, 1).is_some());
    // The window (2) is full: the next two wait, the fifth makes the client slow.
    assert!(stage(&mut world, 2).is_none() && stage(&mut world, 3).is_none());
    assert!(matches!(
        world.per_core.mqtt.stage(&session, phone.me, &settings, &frames[4], &mut scratch),
        crate::session::mqtt::Staged::Slow
    ));
    let delivery = |id, payload: &[u8]| Sent::Publish {
        topic: "push/demo".into(),
        qos: 1,
        id,
        retain: false,
        payload: payload.to_vec(),
    };
    // PUBACK 1 releases one waiting delivery, with the next id, in order.
    let sent = phone.feed(&mut world, 1, &puback(1));
    assert_eq!(packets(V5, &sent), vec![delivery(3, b"2")]);
    // PUBACK 3 acknowledges 2 as well, and releases the rest (the one that found the queue
    // full waits too: the reactor kicks the client, and a persistent session would park it).
    let sent = phone.feed(&mut world, 1, &puback(3));
    assert_eq!(packets(V5, &sent), vec![delivery(4, b"3"), delivery(5, b"4")]);
    assert!(phone.feed(&mut world, 1, &puback(5)).is_empty());
    // Nothing in flight: the extras are gone.
    assert!(world.per_core.mqtt.is_empty());
}

#[test]
fn keep_alive_pings_and_timeouts() {
    let mut world = World::new();
    let mut phone = client(&mut world, 1, V5, "phone", None);
    assert_eq!(packets(V5, &phone.feed(&mut world, 80, &[0xC0, 0x00])), vec![Sent::PingResp]);
    assert_eq!(phone.session.deadline(&world.settings), 170);
    assert_eq!(
        phone.session.handle_timeout(170, &world.settings, &mut BytesMut::new()),
        Flow::Continue
    );
    let Flow::Kick(kick) = phone.session.handle_timeout(171, &world.settings, &mut BytesMut::new())
    else {
        panic!()
    };
    assert_eq!(kick.reason, KickReason::HeartbeatTimeout);
    let mut out = BytesMut::new();
    phone.session.encode_kick(&kick, &mut out);
    assert_eq!(packets(V5, &out), vec![Sent::Disconnect { reason: 0x8D }]);
    // Before CONNECT, the handshake timeout applies (and a WebSocket one waits for CONNECT).
    let mut opening = Session::Mqtt(super::MqttSession::awaiting_connect(7));
    assert_eq!(opening.deadline(&world.settings), 7 + HANDSHAKE_TIMEOUT);
    assert_eq!(
        opening.handle_timeout(8 + HANDSHAKE_TIMEOUT, &world.settings, &mut BytesMut::new()),
        Flow::Abort
    );
}

#[test]
fn packets_split_anywhere_and_bad_ones_end_only_their_connection() {
    let mut world = World::new();
    let hello = encode_connect(&connect(V5, "split", None));
    let sub = subscribe(V5, 1, &[("push/demo", QoS::AtMostOnce)]);
    let whole: Vec<u8> = hello.iter().chain(&sub).copied().collect();
    for cut in 1..whole.len() {
        let mut conn = Conn::new(cut);
        let mut sent = conn.feed(&mut world, 0, &whole[..cut]);
        sent.extend(conn.feed(&mut world, 0, &whole[cut..]));
        assert_eq!(
            packets(V5, &sent),
            vec![connack_ok(), Sent::SubAck { id: 1, codes: vec![0] }],
            "cut at {cut}"
        );
        conn.leave(&mut world);
    }
    // A packet past the maximum size is refused from its fixed header: v5 hears 0x95.
    let mut phone = client(&mut world, 900, V5, "big", None);
    let (_, flow) = phone.input(&mut world, 0, &[0x30, 0xff, 0xff, 0x03]);
    let Flow::Kick(kick) = flow else { panic!("{flow:?}") };
    assert_eq!(
        (kick.reason, kick.mqtt),
        (KickReason::PackageTooLarge, Some(ReasonCode::PacketTooLarge))
    );
    // Anything but CONNECT first is closed at once.
    assert_eq!(Conn::new(901).input(&mut world, 0, &[0x10, 0x02, 0x00, 0x00]).1, Flow::Abort);
    // A second CONNECT is a protocol error.
    let mut twice = client(&mut world, 902, V3, "twice", None);
    let (_, flow) = twice.input(&mut world, 0, &encode_connect(&connect(V3, "twice", None)));
    assert!(matches!(flow, Flow::Kick(ref k) if k.reason == KickReason::ProtocolError), "{flow:?}");
}

#[test]
fn over_websocket_the_packets_are_a_stream_in_binary_messages() {
    let mut world = World::new();
    let mut conn = Conn::new(1);
    let upgrade = b"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Protocol: mqtt\r\n\r\n";
    let answer = String::from_utf8(conn.feed(&mut world, 0, upgrade)).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 101") && answer.contains("Sec-WebSocket-Protocol: mqtt\r\n"),
        "{answer}"
    );
    assert!(!conn.session.is_working());
    // CONNECT and SUBSCRIBE cut across two masked messages.
    let stream: Vec<u8> = encode_connect(&connect(V3, "browser", None))
        .into_iter()
        .chain(subscribe(V3, 1, &[("push/demo", QoS::AtMostOnce)]))
        .collect();
    let (a, b) = stream.split_at(7);
    let mut sent = conn.feed(&mut world, 0, &masked(a));
    sent.extend(conn.feed(&mut world, 0, &masked(b)));
    let mut packets_sent = Vec::new();
    let mut at = 0;
    while at < sent.len() {
        let (frame, used) = decode_server_frame(&sent[at..]);
        packets_sent.extend(packets(V3, &frame));
        at += used;
    }
    assert_eq!(packets_sent, vec![connack_ok(), Sent::SubAck { id: 1, codes: vec![0] }]);
    assert_eq!(mqtt(&conn).form(), WireForm::Mqtt311WebSocket);
    // A text frame is refused with 1003 after a kick (3.1.1: no DISCONNECT).
    let mut text = BytesMut::new();
    ws::encode_frame(OpCode::Text, b"hi", &mut text);
    text[1] |= 0x80;
    let mut frame = text.to_vec();
    frame.splice(2..2, [0, 0, 0, 0]);
    let (_, flow) = conn.input(&mut world, 0, &frame);
    let Flow::Kick(kick) = flow else { panic!("{flow:?}") };
    assert_eq!(kick.close_code, 1003);
}

/// `payload` in one masked binary frame (mask 0: the bytes stay as they are).
fn masked(payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    ws::encode_frame(OpCode::Binary, payload, &mut out);
    let mut frame = out.to_vec();
    frame[1] |= 0x80;
    let header = if payload.len() < 126 { 2 } else { 4 };
    frame.splice(header..header, [0, 0, 0, 0]);
    frame
}

/// One unmasked server frame's payload and its length on the wire.
fn decode_server_frame(b: &[u8]) -> (Vec<u8>, usize) {
    let (len, at) = match b[1] {
        126 => (usize::from(u16::from_be_bytes([b[2], b[3]])), 4),
        n => (usize::from(n), 2),
    };
    (b[at..at + len].to_vec(), at + len)
}

#[test]
fn the_decoder_follows_the_version() {
    let five = client(&mut World::new(), 1, V5, "x", None);
    let d: Decoder = mqtt(&five).decoder(1024);
    assert_eq!(d.version, V5);
    let Ok(Some((Packet::PingReq, 2))) = d.decode(&[0xC0, 0x00]) else { panic!() };
}

/// A 3.1.1 client with clean session 0, subscribed at QoS 1.
fn persistent(world: &mut World, index: usize, id: &str) -> (Conn, Vec<u8>) {
    let mut conn = Conn::new(index);
    let c = Connect { clean_start: false, ..connect(V3, id, None) };
    let sent = conn.feed(world, 0, &encode_connect(&c));
    (conn, sent)
}

fn push_all(world: &mut World, msg: serde_json::Value) -> usize {
    let at = world.at(1);
    world.push.push_all(Edge::Http, AppId(0), &msg, at, &mut world.out).unwrap()
}

#[test]
fn a_persistent_session_outlives_its_connection_and_resends_with_dup() {
    let mut world = World::new();
    let (mut phone, sent) = persistent(&mut world, 1, "phone");
    assert_eq!(sent, [0x20, 0x02, 0x00, 0x00], "no session yet");
    phone.feed(&mut world, 0, &subscribe(V3, 1, &[("push/demo", QoS::AtLeastOnce)]));
    assert!(mqtt(&phone).is_persistent());
    // One delivery in flight, never acknowledged.
    push_all(&mut world, json!("first"));
    let (_, _, frame) = world.out.broadcasts.pop().unwrap();
    let session = mqtt(&phone);
    let settings = world.settings.mqtt.clone();
    let mut scratch = BytesMut::new();
    let staged = world.per_core.mqtt.stage(&session, phone.me, &settings, &frame, &mut scratch);
    assert!(matches!(staged, crate::session::mqtt::Staged::Split { .. }), "{staged:?}");
    // The connection drops: the session is parked, not online.
    assert_eq!(phone.leave(&mut world), Some(AppId(0)));
    assert!(world.per_core.mqtt.is_empty());
    assert_eq!(world.push.clients(AppId(0), None, 10).1, 0);
    // Pushes while away are queued and counted; a personal one too.
    assert_eq!(push_all(&mut world, json!("second")), 1);
    let at = world.at(1);
    let to_phone =
        world.push.push_to(Edge::Http, AppId(0), "phone", &json!("third"), at, &mut world.out);
    assert_eq!(to_phone, Ok(1));
    // Back with clean session 0: session present, in the channel again, the unacknowledged
    // one sent again with DUP and its id, then the queued ones.
    let (back, sent) = persistent(&mut world, 2, "phone");
    assert_eq!(&sent[..4], &[0x20, 0x02, 0x01, 0x00], "session present");
    assert_eq!(sent[4], 0x3A, "DUP, QoS 1");
    let delivery = |id, topic: &str, payload: &[u8]| Sent::Publish {
        topic: topic.into(),
        qos: 1,
        id,
        retain: false,
        payload: payload.to_vec(),
    };
    assert_eq!(
        packets(V3, &sent[4..]),
        vec![
            delivery(1, "push/demo", b"\"first\""),
            delivery(2, "push/demo", b"\"second\""),
            delivery(3, "push/demo/phone", b"\"third\""),
        ]
    );
    assert_eq!(mqtt(&back).member_of(), Some(AppId(0)));
    assert!(mqtt(&back).at_qos1());
    assert_eq!(world.push.clients(AppId(0), None, 10).1, 1);
}

#[test]
fn clean_start_drops_a_parked_session_and_a_replaced_connection_parks_nothing() {
    let mut world = World::new();
    let (mut phone, _) = persistent(&mut world, 1, "phone");
    phone.feed(&mut world, 0, &subscribe(V3, 1, &[("push/demo", QoS::AtLeastOnce)]));
    phone.leave(&mut world);
    // Clean session 1: nothing is present, and nothing is parked any more.
    let mut clean = Conn::new(2);
    let sent = clean.feed(&mut world, 0, &encode_connect(&connect(V3, "phone", None)));
    assert_eq!(sent, [0x20, 0x02, 0x00, 0x00]);
    assert_eq!(push_all(&mut world, json!(1)), 0);
    // A persistent session replaced by a newer connection: the old one's leave parks nothing.
    let (mut old, _) = persistent(&mut world, 3, "tablet");
    old.feed(&mut world, 0, &subscribe(V3, 1, &[("push/demo", QoS::AtLeastOnce)]));
    let (mut new, _) = persistent(&mut world, 4, "tablet");
    new.feed(&mut world, 0, &subscribe(V3, 1, &[("push/demo", QoS::AtLeastOnce)]));
    old.leave(&mut world);
    assert_eq!(push_all(&mut world, json!(2)), 1, "only the online one");
}

#[test]
fn a_v5_session_expiry_is_capped_and_said_in_connack() {
    let mut world = World::new();
    world.settings.mqtt.session_expiry_secs = 600;
    let mut conn = Conn::new(1);
    let asked = Properties { session_expiry_interval: Some(u32::MAX), ..Properties::default() };
    let c = Connect { properties: asked, ..connect(V5, "five", None) };
    let sent = conn.feed(&mut world, 0, &encode_connect(&c));
    // CONNACK properties carry Session Expiry Interval 600 (0x11, u32).
    let at = sent.windows(5).position(|w| w == [0x11, 0, 0, 0x02, 0x58]);
    assert!(at.is_some(), "{sent:02x?}");
    assert!(mqtt(&conn).is_persistent());
    // Expiry 0 (the default): no session kept.
    let mut plain = client(&mut world, 2, V5, "plain", Some(QoS::AtLeastOnce));
    assert!(!mqtt(&plain).is_persistent());
    plain.leave(&mut world);
    assert_eq!(push_all(&mut world, json!(1)), 0);
}

#[test]
fn a_connect_takes_the_client_id_over_or_is_refused_as_a_duplicate() {
    let mut world = World::new();
    let old = client(&mut world, 1, V5, "phone", Some(QoS::AtMostOnce));
    world.out.kicks.clear();
    let _new = client(&mut world, 2, V5, "phone", None);
    assert_eq!(world.out.kicks, vec![(old.me, KickReason::Replaced)], "kicked at CONNECT");
    let mut out = BytesMut::new();
    old.session.encode_kick(&crate::session::Kick::new(KickReason::Replaced), &mut out);
    assert_eq!(packets(V5, &out), vec![Sent::Disconnect { reason: 0x8E }]);
    // The admin API's disconnect: Administrative action, its reason as the reason string.
    let mut out = BytesMut::new();
    old.session.encode_kick(&crate::session::Kick::disconnected("account closed".into()), &mut out);
    assert_eq!(packets(V5, &out), vec![Sent::Disconnect { reason: 0x98 }]);
    let reason_string = [&[0x1F, 0x00, 14][..], b"account closed"].concat();
    assert!(out.windows(reason_string.len()).any(|w| w == reason_string), "{out:02x?}");
    // With duplicate = "refuse", the newcomer is refused instead.
    let mut world = World::with(None, crate::config::DuplicatePolicy::Refuse, None, None);
    let _first = client(&mut world, 1, V3, "phone", Some(QoS::AtMostOnce));
    let mut second = Conn::new(2);
    let (sent, flow) = second.input(&mut world, 0, &encode_connect(&connect(V3, "phone", None)));
    assert_eq!((sent, flow), (vec![0x20, 0x02, 0x00, 0x02], Flow::Close));
    assert!(world.out.kicks.is_empty());
}

#[test]
fn a_taken_over_persistent_session_parks_nothing_when_its_close_comes_after() {
    let mut world = World::new();
    let (mut old, _) = persistent(&mut world, 1, "phone");
    old.feed(&mut world, 0, &subscribe(V3, 1, &[("push/demo", QoS::AtLeastOnce)]));
    let mut boss = manager(&mut world, 9, V3);
    world.out.deliveries.clear();
    // The reactor's order: the newcomer's CONNECT (clean start), then the old one's close.
    let mut new = Conn::new(2);
    new.feed(&mut world, 0, &encode_connect(&connect(V3, "phone", None)));
    assert_eq!(world.out.kicks, vec![(old.me, KickReason::Replaced)]);
    let (to, on_leave) = world.out.deliveries.pop().unwrap();
    assert_eq!((to, on_leave.route), (boss.me, "onLeave"));
    assert_eq!(old.leave(&mut world), Some(AppId(0)));
    assert!(world.out.deliveries.is_empty(), "onLeave once");
    assert_eq!(push_all(&mut world, json!(1)), 0, "nothing parked, nobody subscribed yet");
    let (_, sent) = persistent(&mut world, 3, "phone");
    assert_eq!(sent, [0x20, 0x02, 0x00, 0x00], "no session present");
    boss.leave(&mut world);
}

#[test]
fn a_session_that_cannot_enter_again_is_not_present_and_stays_parked() {
    let mut world = World::with(None, crate::config::DuplicatePolicy::Replace, Some(1), None);
    let (mut phone, _) = persistent(&mut world, 1, "phone");
    phone.feed(&mut world, 0, &subscribe(V3, 1, &[("push/demo", QoS::AtLeastOnce)]));
    phone.leave(&mut world);
    let _other = client(&mut world, 2, V3, "other", Some(QoS::AtMostOnce));
    // The app is full: CONNACK says no session, and the session waits for a later try.
    let (back, sent) = persistent(&mut world, 3, "phone");
    assert_eq!(sent, [0x20, 0x02, 0x00, 0x00]);
    assert_eq!(mqtt(&back).member_of(), None);
    assert_eq!(push_all(&mut world, json!(1)), 2, "the member and the parked session");
}

#[test]
fn a_disconnect_with_will_message_keeps_the_managers_will() {
    let mut world = World::new();
    for (reason, published) in
        [(ReasonCode::DisconnectWithWill, true), (ReasonCode::Success, false)]
    {
        let will = Will {
            topic: "push/demo",
            payload: b"gone",
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties::default(),
        };
        let c = Connect { will: Some(will), ..connect(V5, "boss", Some(SECRET.as_bytes())) };
        let mut boss = Conn::new(1);
        boss.feed(&mut world, 0, &encode_connect(&c));
        let mut phone = client(&mut world, 2, V5, "phone", Some(QoS::AtMostOnce));
        world.out.broadcasts.clear();
        let mut bye = BytesMut::new();
        let d = crate::protocol::mqtt::Disconnect { reason, properties: Properties::default() };
        Encoder::new(V5).disconnect(&d, &mut bye).unwrap();
        assert_eq!(boss.input(&mut world, 1, &bye).1, Flow::Close);
        boss.leave(&mut world);
        assert_eq!(world.out.broadcasts.len(), usize::from(published), "{reason:?}");
        phone.leave(&mut world);
    }
}

#[test]
fn replies_fit_a_v5_clients_maximum_packet_size_and_ids_must_be_topics() {
    let mut world = World::new();
    let small = Properties { maximum_packet_size: Some(16), ..Properties::default() };
    let mut conn = Conn::new(1);
    conn.feed(
        &mut world,
        0,
        &encode_connect(&Connect { properties: small, ..connect(V5, "tiny", None) }),
    );
    // A refused filter's SUBACK drops its reason string to fit 16 bytes.
    let sent = conn.feed(&mut world, 0, &subscribe(V5, 1, &[("news", QoS::AtMostOnce)]));
    assert!(sent.len() <= 16, "{sent:02x?}");
    assert_eq!(packets(V5, &sent), vec![Sent::SubAck { id: 1, codes: vec![0x87] }]);
    for id in ["a/b", "a+", "#"] {
        let (sent, flow) =
            Conn::new(2).input(&mut world, 0, &encode_connect(&connect(V3, id, None)));
        assert_eq!((sent, flow), (vec![0x20, 0x02, 0x00, 0x02], Flow::Close), "{id}");
    }
}

#[test]
fn every_channel_subscribe_gets_the_retained_message_as_retain_handling_says() {
    use crate::protocol::mqtt::RetainHandling;
    let mut world = World::new();
    world.push.retain(AppId(0), Some(&json!("kept")));
    let retained = |id| Sent::Publish {
        topic: "push/demo".into(),
        qos: 0,
        id,
        retain: true,
        payload: b"\"kept\"".to_vec(),
    };
    // 3.1.1: on the first SUBSCRIBE and on every one after [MQTT-3.8.4-3].
    let mut v3 = client(&mut world, 1, V3, "a", None);
    for id in [1, 2] {
        let sent = v3.feed(&mut world, 0, &subscribe(V3, id, &[("push/demo", QoS::AtMostOnce)]));
        assert_eq!(packets(V3, &sent), vec![Sent::SubAck { id, codes: vec![0] }, retained(0)]);
    }
    // 5.0 Retain Handling 1: only for a new subscription; 2: never.
    let mut v5 = client(&mut world, 2, V5, "b", None);
    let with = |id, handling| {
        let options = SubscriptionOptions {
            retain_handling: handling,
            ..SubscriptionOptions::qos(QoS::AtMostOnce)
        };
        let list = [("push/demo", options)];
        let s = Subscribe {
            packet_id: id,
            properties: Properties::default(),
            filters: Filters::List(&list),
        };
        let mut out = BytesMut::new();
        Encoder::new(V5).subscribe(&s, &mut out).unwrap();
        out.to_vec()
    };
    let sent = v5.feed(&mut world, 0, &with(1, RetainHandling::SendIfNew));
    assert_eq!(packets(V5, &sent).len(), 2, "new: sent");
    let sent = v5.feed(&mut world, 0, &with(2, RetainHandling::SendIfNew));
    assert_eq!(packets(V5, &sent), vec![Sent::SubAck { id: 2, codes: vec![0] }], "not new");
    let mut v5b = client(&mut world, 3, V5, "c", None);
    let sent = v5b.feed(&mut world, 0, &with(1, RetainHandling::DoNotSend));
    assert_eq!(packets(V5, &sent), vec![Sent::SubAck { id: 1, codes: vec![0] }]);
}

#[test]
fn a_retained_message_waits_for_room_in_a_full_window() {
    let mut world = World::new();
    world.settings.mqtt.max_inflight = 1;
    let mut phone = client(&mut world, 1, V5, "phone", Some(QoS::AtLeastOnce));
    // One delivery in flight fills the window.
    let push = crate::push::Push::new("onMsg", &json!({"msg": 0}))
        .with_mqtt("push/demo".into(), Bytes::from_static(b"0"));
    let frame =
        world.push.encoder().encode(&push, crate::ids::Forms::one(WireForm::Mqtt5Tcp)).unwrap();
    let settings = world.settings.mqtt.clone();
    let mut scratch = BytesMut::new();
    let session = mqtt(&phone);
    world.per_core.mqtt.stage(&session, phone.me, &settings, &frame, &mut scratch);
    world.push.retain(AppId(0), Some(&json!("kept")));
    let sent = phone.feed(&mut world, 0, &subscribe(V5, 2, &[("push/demo", QoS::AtLeastOnce)]));
    assert_eq!(packets(V5, &sent), vec![Sent::SubAck { id: 2, codes: vec![1] }], "it waits");
    let sent = phone.feed(&mut world, 0, &puback(1));
    assert_eq!(
        packets(V5, &sent),
        vec![Sent::Publish {
            topic: "push/demo".into(),
            qos: 1,
            id: 2,
            retain: false,
            payload: b"\"kept\"".to_vec()
        }]
    );
}

#[test]
fn a_session_expiry_cannot_be_set_at_disconnect_after_0() {
    let mut world = World::new();
    let mut phone = client(&mut world, 1, V5, "phone", None);
    let properties = Properties { session_expiry_interval: Some(60), ..Properties::default() };
    let d = crate::protocol::mqtt::Disconnect { reason: ReasonCode::Success, properties };
    let mut bye = BytesMut::new();
    Encoder::new(V5).disconnect(&d, &mut bye).unwrap();
    let (_, flow) = phone.input(&mut world, 0, &bye);
    let Flow::Kick(kick) = flow else { panic!("{flow:?}") };
    assert_eq!(kick.mqtt, Some(ReasonCode::ProtocolError));
}

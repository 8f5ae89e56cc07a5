//! Cross-packet tests: every vector at every split point, the size guard, round trips and
//! property faults, and proptests (round trips, no panic on arbitrary bytes).

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;

const V3: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;
const MAX: u32 = 1 << 20;

/// A 5.0 CONNECT with every CONNECT property, a will with will properties, user and
/// password (hand-built from §3.1, properties in identifier order as the encoder writes them).
const CONNECT_V5: &[u8] = &[
    0x10, 0x4c, // fixed header, remaining 76
    0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, // protocol name, level 5
    0xee, // flags: user, password, will retain, will QoS 1, will, clean start
    0x00, 0x1e, // keep alive 30
    0x22, // properties, 34 bytes
    0x11, 0x00, 0x00, 0x00, 0x3c, // session expiry 60
    0x15, 0x00, 0x04, b'S', b'C', b'R', b'M', // authentication method
    0x17, 0x00, // request problem information 0
    0x19, 0x01, // request response information
    0x21, 0x00, 0x0a, // receive maximum 10
    0x22, 0x00, 0x05, // topic alias maximum 5
    0x27, 0x00, 0x01, 0x00, 0x00, // maximum packet size 65536
    0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property k=v
    0x00, 0x02, b'c', b'5', // client id
    0x07, 0x01, 0x01, 0x18, 0x00, 0x00, 0x00, 0x05, // will: payload format 1, delay 5
    0x00, 0x03, b'w', b'/', b't', // will topic
    0x00, 0x03, b'b', b'y', b'e', // will payload
    0x00, 0x02, b'u', b'1', // user name
    0x00, 0x03, 0x01, 0x02, 0x03, // password
];

/// Every client → server vector: (version, bytes).
fn vectors() -> Vec<(ProtocolVersion, Vec<u8>)> {
    let mut v: Vec<(ProtocolVersion, Vec<u8>)> = vec![
        (V3, vec![0x10, 0x0e, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 2, b'c', b'1']),
        (V5, CONNECT_V5.to_vec()),
        (V3, vec![0x33, 0x09, 0, 3, b'a', b'/', b'b', 0, 10, b'h', b'i']),
        (V5, vec![0x33, 0x0d, 0, 3, b'a', b'/', b'b', 0, 10, 3, 0x23, 0, 1, b'h', b'i']),
        (V3, vec![0x40, 0x02, 0x00, 0x07]),
        (V5, vec![0x40, 0x03, 0x00, 0x07, 0x10]),
        (V5, vec![0x50, 0x02, 0x00, 0x07]),
        (V5, vec![0x62, 0x03, 0x00, 0x07, 0x92]),
        (V3, vec![0x70, 0x02, 0x00, 0x07]),
        (V3, vec![0x82, 0x08, 0, 1, 0, 3, b'a', b'/', b'#', 1]),
        (V5, vec![0x82, 0x0b, 0, 1, 2, 0x0b, 5, 0, 3, b'a', b'/', b'#', 0x2e]),
        (V3, vec![0xa2, 0x07, 0, 2, 0, 3, b'a', b'/', b'b']),
        (V5, vec![0xa2, 0x08, 0, 2, 0, 0, 3, b'a', b'/', b'b']),
        (V3, PINGREQ.to_vec()),
        (V5, PINGREQ.to_vec()),
        (V3, DISCONNECT_V3.to_vec()),
        (V5, vec![0xe0, 0x07, 0x00, 0x05, 0x11, 0, 0, 0, 10]),
        (V5, vec![0xf0, 0x08, 0x18, 0x06, 0x15, 0, 3, b'a', b'b', b'c']),
    ];
    // A PUBLISH with a 200-byte payload: a two-byte remaining length.
    let mut big = vec![0x30, 0xcb, 0x01, 0x00, 0x01, b't'];
    big.extend(std::iter::repeat_n(0x5a, 200));
    v.push((V3, big));
    v
}

#[test]
fn full_v5_connect() {
    let dec = Decoder::new(V5, MAX);
    let Some((Packet::Connect(c), n)) = dec.decode(CONNECT_V5).unwrap() else { panic!() };
    assert_eq!(n, CONNECT_V5.len());
    assert_eq!((c.version, c.clean_start, c.keep_alive, c.client_id), (V5, true, 30, "c5"));
    let p = c.properties;
    assert_eq!(p.session_expiry_interval, Some(60));
    assert_eq!(p.receive_maximum, Some(10));
    assert_eq!(p.maximum_packet_size, Some(65_536));
    assert_eq!(p.topic_alias_maximum, Some(5));
    assert_eq!((p.request_response_information, p.request_problem_information), (Some(1), Some(0)));
    assert_eq!(p.authentication_method, Some("SCRM"));
    assert_eq!(p.user_properties.iter().collect::<Vec<_>>(), [("k", "v")]);
    let w = c.will.unwrap();
    assert_eq!((w.topic, w.payload, w.qos, w.retain), ("w/t", &b"bye"[..], QoS::AtLeastOnce, true));
    assert_eq!(
        (w.properties.will_delay_interval, w.properties.payload_format_indicator),
        (Some(5), Some(1))
    );
    assert_eq!((c.username, c.password), (Some("u1"), Some(&[1u8, 2, 3][..])));
    // And back: the client-side encoder writes the same bytes.
    let mut out = BytesMut::new();
    Encoder::new(V5).connect(&c, &mut out).unwrap();
    assert_eq!(&out[..], CONNECT_V5);
}

#[test]
fn every_split_point_needs_more_bytes() {
    for (version, bytes) in vectors() {
        let dec = Decoder::new(version, MAX);
        for cut in 0..bytes.len() {
            assert_eq!(dec.decode(&bytes[..cut]), Ok(None), "{bytes:02x?} cut at {cut}");
        }
        let (_, used) = dec.decode(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        // Trailing bytes (the start of the next packet) are left alone.
        let mut stream = bytes.clone();
        stream.extend_from_slice(&[0xc0, 0x00, 0x30]);
        assert_eq!(dec.decode(&stream).unwrap().unwrap().1, bytes.len());
    }
}

#[test]
fn round_trip_of_every_vector_the_encoders_can_write() {
    for (version, bytes) in vectors() {
        let (packet, _) = Decoder::new(version, MAX).decode(&bytes).unwrap().unwrap();
        let enc = Encoder::new(version);
        let mut out = BytesMut::new();
        match packet {
            Packet::Connect(c) => enc.connect(&c, &mut out),
            Packet::Publish(p) => enc.publish(&p, &mut out),
            Packet::PubAck(a) => enc.pub_response(PacketType::PubAck, &a, &mut out),
            Packet::PubRec(a) => enc.pub_response(PacketType::PubRec, &a, &mut out),
            Packet::PubRel(a) => enc.pub_response(PacketType::PubRel, &a, &mut out),
            Packet::PubComp(a) => enc.pub_response(PacketType::PubComp, &a, &mut out),
            Packet::Subscribe(s) => enc.subscribe(&s, &mut out),
            Packet::Unsubscribe(u) => enc.unsubscribe(&u, &mut out),
            Packet::PingReq => {
                enc.pingreq(&mut out);
                Ok(())
            }
            Packet::Disconnect(d) if version == V3 => {
                assert_eq!(d.reason, ReasonCode::Success);
                out.extend_from_slice(&DISCONNECT_V3);
                Ok(())
            }
            Packet::Disconnect(d) => enc.disconnect(&d, &mut out),
            Packet::Auth(a) => enc.auth(&a, &mut out),
        }
        .unwrap();
        assert_eq!(&out[..], &bytes[..], "{packet:?}");
        let (again, _) = Decoder::new(version, MAX).decode(&out).unwrap().unwrap();
        assert_eq!(again, packet);
    }
}

#[test]
fn oversize_is_refused_from_the_fixed_header_alone() {
    // PUBLISH declaring 1000 bytes, limit 100: refused with only 3 bytes in.
    let header = [0x30, 0xe8, 0x07];
    let dec = Decoder::new(V5, 100);
    assert_eq!(dec.decode(&header[..2]), Ok(None));
    let err = dec.decode(&header).unwrap_err();
    assert_eq!(err, MqttError::PacketTooLarge { len: 1003, max: 100 });
    assert_eq!(err.reason_code(), ReasonCode::PacketTooLarge);
    // The limit counts the fixed header: 98 bytes of body + 2 is exactly 100.
    assert_eq!(dec.decode(&[0x30, 98]), Ok(None));
    assert!(matches!(dec.decode(&[0x30, 99]), Err(MqttError::PacketTooLarge { len: 101, .. })));
    // The largest remaining length is accepted by the framing when the limit allows it.
    let huge = [0x30, 0xff, 0xff, 0xff, 0x7f];
    assert_eq!(Decoder::new(V5, MAX_PACKET_SIZE).decode(&huge), Ok(None));
}

#[test]
fn framing_faults() {
    let dec = Decoder::new(V5, MAX);
    // A five-byte remaining length.
    assert!(matches!(
        dec.decode(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]),
        Err(MqttError::Malformed(_))
    ));
    // Type 0; reserved flags on PINGREQ / CONNECT; server-only types.
    assert!(matches!(dec.decode(&[0x00, 0x00]), Err(MqttError::Malformed(_))));
    assert!(matches!(dec.decode(&[0xc1, 0x00]), Err(MqttError::Malformed(_))));
    assert!(matches!(dec.decode(&[0x11, 0x00]), Err(MqttError::Malformed(_))));
    for byte0 in [0x20, 0x90, 0xb0, 0xd0] {
        assert!(matches!(dec.decode(&[byte0, 0x00]), Err(MqttError::Protocol(_))), "{byte0:02x}");
    }
    // PINGREQ with a body; a remaining length shorter than the packet's fields.
    assert!(matches!(dec.decode(&[0xc0, 0x01, 0x00]), Err(MqttError::Malformed(_))));
    assert!(matches!(dec.decode(&[0x40, 0x01, 0x00]), Err(MqttError::Malformed(_))));
    // A CONNECT body with a byte too many.
    let mut c = CONNECT_V5.to_vec();
    c[1] += 1;
    c.push(0);
    assert!(matches!(dec.decode(&c), Err(MqttError::Malformed(_))));
}

/// `CONNECT_V5` with its property block replaced by `props`.
fn connect_with(props: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x1e];
    body.push(props.len() as u8);
    body.extend_from_slice(props);
    body.extend_from_slice(&[0x00, 0x01, b'c']);
    let mut out = vec![0x10, body.len() as u8];
    out.extend(body);
    out
}

#[test]
fn property_faults() {
    let dec = Decoder::new(V5, MAX);
    let decode = |props: &[u8]| dec.decode(&connect_with(props)).map(|_| ());
    assert_eq!(decode(&[0x21, 0x00, 0x0a]), Ok(()));
    // Repeated where forbidden; user properties may repeat.
    assert!(matches!(decode(&[0x21, 0x00, 0x0a, 0x21, 0x00, 0x0b]), Err(MqttError::Protocol(_))));
    assert_eq!(decode(&[0x26, 0, 1, b'a', 0, 0, 0x26, 0, 1, b'a', 0, 0]), Ok(()));
    // Values the spec forbids.
    assert!(matches!(decode(&[0x21, 0x00, 0x00]), Err(MqttError::Protocol(_))));
    assert!(matches!(decode(&[0x27, 0, 0, 0, 0]), Err(MqttError::Protocol(_))));
    assert!(matches!(decode(&[0x17, 0x02]), Err(MqttError::Protocol(_))));
    // Unknown identifier, one CONNECT does not allow (Topic Alias), a truncated value.
    assert!(matches!(decode(&[0x7f, 0x00]), Err(MqttError::Malformed(_))));
    assert!(matches!(decode(&[0x23, 0x00, 0x01]), Err(MqttError::Malformed(_))));
    assert!(matches!(decode(&[0x11, 0x00, 0x00]), Err(MqttError::Malformed(_))));
    assert!(matches!(decode(&[0x15, 0x00, 0x05, b'a']), Err(MqttError::Malformed(_))));
    // Invalid UTF-8 and U+0000 in a string property.
    assert!(matches!(decode(&[0x15, 0x00, 0x01, 0xff]), Err(MqttError::Malformed(_))));
    assert!(matches!(decode(&[0x15, 0x00, 0x01, 0x00]), Err(MqttError::Malformed(_))));
    // Property length past the end of the packet.
    let mut b = connect_with(&[]);
    b[12] = 0x40;
    assert!(matches!(dec.decode(&b), Err(MqttError::Malformed(_))));
}

#[test]
fn invalid_utf8_in_topic_client_id_and_filter() {
    let dec = Decoder::new(V3, MAX);
    assert!(matches!(
        dec.decode(&[0x30, 0x04, 0x00, 0x02, 0xc3, 0x28]),
        Err(MqttError::Malformed(_))
    ));
    assert!(matches!(
        dec.decode(&[0x10, 0x0d, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 1, 0xff]),
        Err(MqttError::Malformed(_))
    ));
    assert!(matches!(dec.decode(&[0x82, 0x06, 0, 1, 0, 1, 0x80, 0]), Err(MqttError::Malformed(_))));
}

#[test]
fn encoders_write_nothing_on_error() {
    let enc = Encoder::new(V5).with_max_packet_size(10);
    let mut out = BytesMut::from(&b"keep"[..]);
    let p = Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t",
        packet_id: 0,
        properties: Properties::default(),
        payload: &[0; 20],
    };
    assert!(matches!(
        enc.publish(&p, &mut out),
        Err(MqttError::PacketTooLarge { len: 26, max: 10 })
    ));
    assert!(matches!(
        enc.publish(&Publish { qos: QoS::AtLeastOnce, ..p }, &mut out),
        Err(MqttError::Encode(_))
    ));
    assert!(matches!(
        enc.publish(&Publish { topic: "a/#", ..p }, &mut out),
        Err(MqttError::Encode(_))
    ));
    let bad = Properties { assigned_client_identifier: Some("x"), ..Properties::default() };
    assert!(matches!(
        Encoder::new(V5).publish(&Publish { properties: bad, payload: &[], ..p }, &mut out),
        Err(MqttError::Encode(_))
    ));
    assert!(matches!(
        Encoder::new(V3).publish(&Publish { properties: bad, payload: &[], ..p }, &mut out),
        Err(MqttError::Encode(_))
    ));
    assert_eq!(&out[..], b"keep");
}

fn topic() -> impl Strategy<Value = String> {
    // Printable topics without wildcards or NUL, with levels.
    "[a-zA-Z0-9_/ éø€]{1,40}"
}

fn user_props() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(("[a-z\n]{0,6}", "[ -~]{0,8}"), 0..3)
}

proptest! {
    #[test]
    fn publish_round_trip(
        v5 in any::<bool>(),
        topic in topic(),
        qos in 0u8..3,
        dup in any::<bool>(),
        retain in any::<bool>(),
        id in 1u16..,
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        expiry in proptest::option::of(any::<u32>()),
        alias in proptest::option::of(1u16..),
        content_type in proptest::option::of("[a-z/]{0,12}"),
        correlation in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
        users in user_props(),
    ) {
        let version = if v5 { V5 } else { V3 };
        let qos = QoS::from_bits(qos).unwrap();
        let users: Vec<(&str, &str)> = users.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let properties = if v5 {
            Properties {
                message_expiry_interval: expiry,
                topic_alias: alias,
                content_type: content_type.as_deref(),
                correlation_data: correlation.as_deref(),
                user_properties: UserProperties::List(&users),
                ..Properties::default()
            }
        } else {
            Properties::default()
        };
        let p = Publish {
            dup: dup && qos != QoS::AtMostOnce,
            qos,
            retain,
            topic: &topic,
            packet_id: if qos == QoS::AtMostOnce { 0 } else { id },
            properties,
            payload: &payload,
        };
        let mut out = BytesMut::new();
        Encoder::new(version).publish(&p, &mut out).unwrap();
        let (back, used) = Decoder::new(version, MAX).decode(&out).unwrap().unwrap();
        prop_assert_eq!(used, out.len());
        prop_assert_eq!(back, Packet::Publish(p));
        // The fan-out form is byte for byte the same.
        let shared = SharedPublish::new(version, &topic, retain, &properties, Bytes::from(payload.clone())).unwrap();
        if qos == QoS::AtMostOnce {
            prop_assert_eq!(&shared.qos0()[..], &out[..]);
        } else {
            let mut h = BytesMut::new();
            shared.header(qos, p.packet_id, p.dup, &mut h).unwrap();
            h.extend_from_slice(&shared.payload());
            prop_assert_eq!(&h[..], &out[..]);
        }
    }

    #[test]
    fn subscribe_round_trip(
        v5 in any::<bool>(),
        id in 1u16..,
        filters in proptest::collection::vec(("[a-z0-9/+#]{1,20}", 0u8..3, any::<bool>(), any::<bool>(), 0u8..3), 1..6),
        sub_id in proptest::option::of(1u32..=268_435_455),
        users in user_props(),
    ) {
        let version = if v5 { V5 } else { V3 };
        let list: Vec<(&str, SubscriptionOptions)> = filters
            .iter()
            .map(|(f, qos, nl, rap, rh)| {
                let mut o = SubscriptionOptions::qos(QoS::from_bits(*qos).unwrap());
                if v5 {
                    o.no_local = *nl;
                    o.retain_as_published = *rap;
                    o.retain_handling = [RetainHandling::SendAtSubscribe, RetainHandling::SendIfNew, RetainHandling::DoNotSend][usize::from(*rh)];
                }
                (f.as_str(), o)
            })
            .collect();
        let users: Vec<(&str, &str)> = users.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let properties = if v5 {
            Properties { subscription_identifier: sub_id, user_properties: UserProperties::List(&users), ..Properties::default() }
        } else {
            Properties::default()
        };
        let s = Subscribe { packet_id: id, properties, filters: Filters::List(&list) };
        let mut out = BytesMut::new();
        Encoder::new(version).subscribe(&s, &mut out).unwrap();
        let (back, used) = Decoder::new(version, MAX).decode(&out).unwrap().unwrap();
        prop_assert_eq!(used, out.len());
        prop_assert_eq!(back, Packet::Subscribe(s));
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..96),
        v5 in any::<bool>(),
        max in 0u32..128,
    ) {
        let dec = Decoder::new(if v5 { V5 } else { V3 }, max);
        if let Ok(Some((_, used))) = dec.decode(&bytes) {
            prop_assert!(used <= bytes.len() && used <= max as usize);
        }
    }

    #[test]
    fn mutated_vectors_never_panic(pick in 0usize..19, at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let all = vectors();
        let (version, mut bytes) = all[pick % all.len()].clone();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let _ = Decoder::new(version, MAX).decode(&bytes);
    }
}

/// The packets mosquitto-clients sent (`tests/data/mqtt-captures.md`), in order per run.
#[test]
fn mosquitto_captures_decode() {
    let text = include_str!("../../../tests/data/mqtt-captures.md");
    let mut runs = 0;
    for section in text.split("## mosquitto_").skip(1) {
        let version = if section.starts_with("sub, 5.0") || section.starts_with("pub, 5.0") {
            V5
        } else {
            V3
        };
        let block = section.split("```").nth(1).unwrap();
        let mut kinds = Vec::new();
        for line in block.lines().filter(|l| !l.trim().is_empty()) {
            let bytes: Vec<u8> =
                line.split(' ').map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
            let (packet, used) = Decoder::new(version, MAX).decode(&bytes).unwrap().unwrap();
            assert_eq!(used, bytes.len(), "{line}");
            match packet {
                Packet::Connect(c) => {
                    assert_eq!(c.version, version);
                    assert!(c.client_id == "sub1" || c.client_id == "pub1");
                    if version == V5 {
                        assert!(c.properties.receive_maximum.is_some());
                    }
                    kinds.push("connect");
                }
                Packet::Subscribe(s) => {
                    assert_eq!(s.filters.iter().next().unwrap().0, "a/#");
                    kinds.push("subscribe");
                }
                Packet::Publish(p) => {
                    assert_eq!((p.topic, p.payload, p.qos), ("a/b", &b"hi"[..], QoS::AtLeastOnce));
                    kinds.push("publish");
                }
                Packet::Disconnect(_) => kinds.push("disconnect"),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        runs += 1;
    }
    assert_eq!(runs, 4);
}

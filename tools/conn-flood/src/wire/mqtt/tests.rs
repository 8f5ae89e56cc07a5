//! The client packets byte for byte against what `mosquitto_sub` / `mosquitto_pub` send
//! (`tests/data/mqtt-captures.md` of the repository), the decoder against what a `mosquitto`
//! 2.0.11 broker answers, and both against shaddock's own codec.

use bytes::{Bytes, BytesMut};
use shaddock::protocol::mqtt::{
    self as server, ConnAck, Encoder, ProtocolVersion, QoS, ReasonCode, SharedPublish,
};

use super::*;

const MAX: usize = 1 << 20;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
}

fn connect(c: &Connect<'_>) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_connect(c, &mut out);
    out.to_vec()
}

fn anonymous(version: Version, client_id: &str, keep_alive: u16, rm: Option<u16>) -> Connect<'_> {
    Connect {
        version,
        client_id,
        username: None,
        password: None,
        keep_alive,
        clean: true,
        receive_maximum: rm,
    }
}

#[test]
fn connect_as_mosquitto_clients_send_it() {
    // mosquitto_sub -V mqttv311 -i sub1 -k 30
    assert_eq!(
        connect(&anonymous(Version::V311, "sub1", 30, None)),
        hex("10 10 00 04 4d 51 54 54 04 02 00 1e 00 04 73 75 62 31")
    );
    // mosquitto_pub -V mqttv311 -i pub1 (keep alive 60)
    assert_eq!(
        connect(&anonymous(Version::V311, "pub1", 60, None)),
        hex("10 10 00 04 4d 51 54 54 04 02 00 3c 00 04 70 75 62 31")
    );
    // mosquitto_sub -V mqttv5 -i sub1 -k 30: Receive Maximum 1
    assert_eq!(
        connect(&anonymous(Version::V5, "sub1", 30, Some(1))),
        hex("10 14 00 04 4d 51 54 54 05 02 00 1e 03 21 00 01 00 04 73 75 62 31")
    );
    // mosquitto_pub -V mqttv5 -i pub1: Receive Maximum 20
    assert_eq!(
        connect(&anonymous(Version::V5, "pub1", 60, Some(20))),
        hex("10 14 00 04 4d 51 54 54 05 02 00 3c 03 21 00 14 00 04 70 75 62 31")
    );
}

#[test]
fn connect_with_user_and_password() {
    // What `mosquitto_pub -V mqttv311 -i m -k 300 -u demo -P pw` sends.
    let c = Connect {
        version: Version::V311,
        client_id: "m",
        username: Some("demo"),
        password: Some(b"pw"),
        keep_alive: 300,
        clean: true,
        receive_maximum: None,
    };
    let bytes = connect(&c);
    assert_eq!(
        bytes,
        hex("10 17 00 04 4d 51 54 54 04 c2 01 2c 00 01 6d 00 04 64 65 6d 6f 00 02 70 77")
    );
    // shaddock's decoder reads the same fields, in both versions.
    for version in [Version::V311, Version::V5] {
        let bytes = connect(&Connect { version, ..c });
        let dec = server::Decoder::new(ProtocolVersion::V311, MAX as u32);
        let Some((server::Packet::Connect(got), used)) = dec.decode(&bytes).unwrap() else {
            panic!("not a CONNECT")
        };
        assert_eq!(used, bytes.len());
        let level =
            if version == Version::V5 { ProtocolVersion::V5 } else { ProtocolVersion::V311 };
        assert_eq!(got.version, level);
        assert_eq!(
            (got.client_id, got.username, got.password),
            ("m", Some("demo"), Some(&b"pw"[..]))
        );
        assert_eq!((got.keep_alive, got.clean_start), (300, true));
        assert!(got.will.is_none());
    }
}

#[test]
fn subscribe_publish_puback_ping_disconnect() {
    let mut out = BytesMut::new();
    encode_subscribe(Version::V311, 1, "a/#", 1, &mut out);
    assert_eq!(&out[..], &hex("82 08 00 01 00 03 61 2f 23 01")[..]);
    out.clear();
    encode_subscribe(Version::V5, 1, "a/#", 1, &mut out);
    assert_eq!(&out[..], &hex("82 09 00 01 00 00 03 61 2f 23 01")[..]);
    out.clear();
    encode_publish(Version::V311, "a/b", 1, 1, b"hi", &mut out);
    assert_eq!(&out[..], &hex("32 09 00 03 61 2f 62 00 01 68 69")[..]);
    out.clear();
    encode_publish(Version::V5, "a/b", 1, 1, b"hi", &mut out);
    assert_eq!(&out[..], &hex("32 0a 00 03 61 2f 62 00 01 00 68 69")[..]);
    out.clear();
    encode_publish(Version::V311, "a/b", 0, 9, b"hi", &mut out);
    assert_eq!(&out[..], &hex("30 07 00 03 61 2f 62 68 69")[..], "no packet id at QoS 0");
    out.clear();
    encode_puback(7, &mut out);
    assert_eq!(&out[..], &hex("40 02 00 07")[..]);
    assert_eq!(PINGREQ, server::PINGREQ);
    assert_eq!(&DISCONNECT[..], &hex("e0 00")[..]);
}

#[test]
fn client_packets_decode_in_shaddock() {
    for (version, level) in
        [(Version::V311, ProtocolVersion::V311), (Version::V5, ProtocolVersion::V5)]
    {
        let dec = server::Decoder::new(level, MAX as u32);
        let mut out = BytesMut::new();
        encode_subscribe(version, 1, "push/demo", 1, &mut out);
        let Some((server::Packet::Subscribe(s), _)) = dec.decode(&out).unwrap() else { panic!() };
        let filters: Vec<_> = s.filters.iter().collect();
        assert_eq!(s.packet_id, 1);
        assert_eq!(filters.len(), 1);
        assert_eq!((filters[0].0, filters[0].1.qos), ("push/demo", QoS::AtLeastOnce));

        // A long payload: a 2-byte remaining length.
        let payload = vec![b'x'; 300];
        out.clear();
        encode_publish(version, "push/demo", 1, 513, &payload, &mut out);
        let Some((server::Packet::Publish(p), used)) = dec.decode(&out).unwrap() else { panic!() };
        assert_eq!(
            (p.topic, p.packet_id, p.qos, used),
            ("push/demo", 513, QoS::AtLeastOnce, out.len())
        );
        assert_eq!(p.payload, &payload[..]);

        out.clear();
        encode_puback(513, &mut out);
        let Some((server::Packet::PubAck(a), _)) = dec.decode(&out).unwrap() else { panic!() };
        assert_eq!((a.packet_id, a.reason), (513, ReasonCode::Success));
        assert_eq!(dec.decode(&PINGREQ).unwrap(), Some((server::Packet::PingReq, 2)));
    }
}

/// What a mosquitto 2.0.11 broker sent to a 3.1.1 client with user `demo` that subscribed to
/// `push/demo` at QoS 1, while another connection published `cf:0:123:xx` at QoS 1.
#[test]
fn mosquitto_broker_answers_3_1_1() {
    let v = Version::V311;
    let stream = hex("20 02 00 00  90 03 00 01 01  \
         32 18 00 09 70 75 73 68 2f 64 65 6d 6f 00 01 63 66 3a 30 3a 31 32 33 3a 78 78  \
         d0 00  40 02 00 07");
    let mut at = 0;
    let mut packets = Vec::new();
    while let Some((p, n)) = decode(&stream[at..], v, MAX).unwrap() {
        packets.push(p);
        at += n;
    }
    assert_eq!(at, stream.len());
    assert_eq!(
        packets,
        [
            Packet::ConnAck {
                session_present: false,
                code: 0,
                receive_maximum: None,
                server_keep_alive: None
            },
            Packet::SubAck { packet_id: 1, code: 1 },
            Packet::Publish {
                qos: 1,
                dup: false,
                retain: false,
                topic: b"push/demo",
                packet_id: 1,
                payload: b"cf:0:123:xx"
            },
            Packet::PingResp,
            Packet::PubAck { packet_id: 7, reason: 0 },
        ]
    );
}

/// The same with 5.0: CONNACK carries Topic Alias Maximum 10 and Receive Maximum 20.
#[test]
fn mosquitto_broker_answers_5() {
    let v = Version::V5;
    let connack = hex("20 09 00 00 06 22 00 0a 21 00 14");
    assert_eq!(
        decode(&connack, v, MAX).unwrap(),
        Some((
            Packet::ConnAck {
                session_present: false,
                code: 0,
                receive_maximum: Some(20),
                server_keep_alive: None
            },
            connack.len()
        ))
    );
    assert_eq!(
        decode(&hex("90 04 00 01 00 01"), v, MAX).unwrap(),
        Some((Packet::SubAck { packet_id: 1, code: 1 }, 6))
    );
    let publish =
        hex("32 19 00 09 70 75 73 68 2f 64 65 6d 6f 00 01 00 63 66 3a 30 3a 31 32 33 3a 78 78");
    let Some((Packet::Publish { payload, packet_id, .. }, n)) = decode(&publish, v, MAX).unwrap()
    else {
        panic!()
    };
    assert_eq!((payload, packet_id, n), (&b"cf:0:123:xx"[..], 1, publish.len()));
    assert_eq!(
        decode(&hex("40 02 00 07"), v, MAX).unwrap(),
        Some((Packet::PubAck { packet_id: 7, reason: 0 }, 4))
    );
    assert_eq!(
        decode(&hex("40 03 00 07 10"), v, MAX).unwrap(),
        Some((Packet::PubAck { packet_id: 7, reason: 0x10 }, 5))
    );
    assert_eq!(
        decode(&hex("e0 01 8e"), v, MAX).unwrap(),
        Some((Packet::Disconnect { reason: 0x8e }, 3))
    );
    assert_eq!(decode(&hex("e0 00"), v, MAX).unwrap(), Some((Packet::Disconnect { reason: 0 }, 2)));
}

#[test]
fn every_split_point_needs_more_bytes() {
    let stream = hex("20 09 00 00 06 22 00 0a 21 00 14  90 04 00 01 00 01  \
         32 19 00 09 70 75 73 68 2f 64 65 6d 6f 00 01 00 63 66 3a 30 3a 31 32 33 3a 78 78");
    let mut at = 0;
    for expected in [11, 6, 27] {
        for cut in 0..expected {
            assert_eq!(decode(&stream[at..at + cut], Version::V5, MAX), Ok(None), "cut {cut}");
        }
        let (_, n) = decode(&stream[at..at + expected], Version::V5, MAX).unwrap().unwrap();
        assert_eq!(n, expected);
        at += n;
    }
}

#[test]
fn shaddock_server_packets_decode() {
    for (version, level) in
        [(Version::V311, ProtocolVersion::V311), (Version::V5, ProtocolVersion::V5)]
    {
        let enc = Encoder::new(level);
        let mut out = BytesMut::new();
        let props = server::Properties {
            receive_maximum: Some(64),
            server_keep_alive: Some(120),
            reason_string: Some("welcome"),
            ..Default::default()
        };
        enc.connack(
            &ConnAck { session_present: false, reason: ReasonCode::Success, properties: props },
            &mut out,
        )
        .unwrap();
        let (p, n) = decode(&out, version, MAX).unwrap().unwrap();
        assert_eq!(n, out.len());
        let v5 = version == Version::V5;
        assert_eq!(
            p,
            Packet::ConnAck {
                session_present: false,
                code: 0,
                receive_maximum: v5.then_some(64),
                server_keep_alive: v5.then_some(120),
            }
        );

        out.clear();
        enc.suback(1, &server::Properties::default(), &[ReasonCode::GrantedQos1], &mut out)
            .unwrap();
        assert_eq!(
            decode(&out, version, MAX).unwrap(),
            Some((Packet::SubAck { packet_id: 1, code: 1 }, out.len()))
        );

        // A fan-out PUBLISH as shaddock writes it: QoS 0 whole, QoS 1 header + shared payload.
        let shared = SharedPublish::new(
            level,
            "push/demo",
            false,
            &server::Properties::default(),
            Bytes::from_static(br#""cf:3:99:xx""#),
        )
        .unwrap();
        let q0 = shared.qos0();
        let Some((Packet::Publish { qos, topic, payload, .. }, n)) =
            decode(&q0, version, MAX).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (qos, topic, payload, n),
            (0, &b"push/demo"[..], &br#""cf:3:99:xx""#[..], q0.len())
        );
        out.clear();
        shared.header(QoS::AtLeastOnce, 4242, false, &mut out).unwrap();
        out.extend_from_slice(&shared.payload());
        let Some((Packet::Publish { qos, packet_id, payload, .. }, _)) =
            decode(&out, version, MAX).unwrap()
        else {
            panic!()
        };
        assert_eq!((qos, packet_id, payload), (1, 4242, &br#""cf:3:99:xx""#[..]));
    }
}

#[test]
fn refusals() {
    // A remaining length over the limit is refused from the fixed header alone.
    assert_eq!(
        decode(&hex("30 81 80 40"), Version::V311, MAX),
        Err(MqttFault::TooLarge((1 << 20) + 1))
    );
    assert_eq!(
        decode(&hex("30 ff ff ff ff 01"), Version::V311, usize::MAX),
        Err(MqttFault::Malformed("remaining length over 4 bytes"))
    );
    assert!(
        matches!(decode(&hex("36 02 00 00"), Version::V311, MAX), Err(MqttFault::Malformed(_))),
        "QoS 3"
    );
    assert!(
        matches!(decode(&hex("32 03 00 01 61"), Version::V311, MAX), Err(MqttFault::Malformed(_))),
        "no packet id"
    );
    assert!(
        matches!(decode(&hex("20 03 00 00 05"), Version::V5, MAX), Err(MqttFault::Malformed(_))),
        "properties cut"
    );
    assert!(
        matches!(
            decode(&hex("20 05 00 00 02 7f 00"), Version::V5, MAX),
            Err(MqttFault::Malformed(_))
        ),
        "unknown property"
    );
    assert!(matches!(decode(&hex("00 00"), Version::V5, MAX), Err(MqttFault::Malformed(_))));
    assert_eq!(
        decode(&hex("b0 02 00 01"), Version::V5, MAX).unwrap(),
        Some((Packet::Other(11), 4)),
        "UNSUBACK"
    );
}

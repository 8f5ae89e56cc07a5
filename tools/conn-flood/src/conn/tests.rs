//! Conversations with a scripted server, in every protocol, split at every byte.

use bytes::BytesMut;
use shaddock::protocol::pomelo::message::{self, Message, Route};
use shaddock::protocol::pomelo::package::{self, PackageType};
use shaddock::protocol::pomelo::{RouteDict, handshake, kick};

use super::*;
use crate::phase::PhaseBook;

const ID: Identity<'static> = Identity {
    host: "127.0.0.1:3010",
    ws_path: "/",
    apikey: "demo",
    client_prefix: "c",
    client_index: 7,
};

/// A server's handshake answer with a dictionary, heartbeat 30.
fn handshake_answer() -> BytesMut {
    let dict = RouteDict::new([pomelo::ENTER, pomelo::PUSH_ALL], ["onMsg"]).unwrap();
    let mut out = BytesMut::new();
    handshake::encode_response(Some(30), Some(&dict), true, handshake::ProtosOffer::None, &mut out)
        .expect("fits");
    out
}

fn response(id: u32, body: &str) -> BytesMut {
    let mut out = BytesMut::new();
    message::encode_package(&Message::response(id, body.as_bytes()), &mut out).unwrap();
    out
}

fn push(route: Route<'_>, seq: u64, send_ns: u64) -> BytesMut {
    let mut msg = BytesMut::new();
    stamp::encode(seq, send_ns, 100, &mut msg);
    let body = format!(r#"{{"msg":"{}"}}"#, std::str::from_utf8(&msg).unwrap());
    let mut out = BytesMut::new();
    message::encode_package(&Message::push(route, body.as_bytes()), &mut out).unwrap();
    out
}

/// An unmasked server binary frame around `payload`.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x82];
    if payload.len() < 126 {
        out.push(payload.len() as u8);
    } else {
        out.push(126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// A loop's worth of state for driving one connection.
struct Harness {
    book: PhaseBook,
    learned: Learned,
    out: BytesMut,
    pending: Vec<u8>,
    now_ns: u64,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            book: PhaseBook::default(),
            learned: Learned::default(),
            out: BytesMut::new(),
            pending: Vec::new(),
            now_ns: 1_000_000,
        }
    }

    fn start(&mut self, conn: &mut Conn) -> Vec<u8> {
        let mut io = Io {
            now_ns: self.now_ns,
            book: &mut self.book,
            out: &mut self.out,
            learned: &mut self.learned,
            max_package: 1 << 16,
        };
        conn.start(&ID, &mut io);
        self.out.split().to_vec()
    }

    /// Feeds `bytes` in pieces of `piece` bytes, keeping unconsumed tails as the loop does;
    /// returns what the connection wrote.
    fn feed(&mut self, conn: &mut Conn, bytes: &[u8], piece: usize) -> Result<Vec<u8>, Fault> {
        for chunk in bytes.chunks(piece.max(1)) {
            self.pending.extend_from_slice(chunk);
            let mut io = Io {
                now_ns: self.now_ns,
                book: &mut self.book,
                out: &mut self.out,
                learned: &mut self.learned,
                max_package: 1 << 16,
            };
            let used = conn.receive(&self.pending, &ID, &mut io)?;
            self.pending.drain(..used);
        }
        Ok(self.out.split().to_vec())
    }
}

/// The packages in `bytes`, by type and body.
fn packages(bytes: &[u8]) -> Vec<(PackageType, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((pkg, n)) = package::decode(&bytes[at..], 1 << 20).unwrap() {
        out.push((pkg.kind, pkg.body.to_vec()));
        at += n;
    }
    assert_eq!(at, bytes.len(), "trailing bytes");
    out
}

/// The payloads of the masked client frames in `bytes`.
fn client_payloads(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        assert_eq!(bytes[at], 0x82, "FIN + binary");
        let (len, header) = match bytes[at + 1] & 0x7f {
            126 => (u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize, 4),
            n => (n as usize, 2),
        };
        assert!(bytes[at + 1] & 0x80 != 0, "masked");
        let mask = &bytes[at + header..at + header + 4];
        let body = &bytes[at + header + 4..at + header + 4 + len];
        out.push(body.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m).collect());
        at += header + 4 + len;
    }
    out
}

/// Runs a Pomelo/TCP client through enter and three pushes, the server's bytes cut in `piece`s.
fn pomelo_tcp_conversation(piece: usize) {
    let mut h = Harness::new();
    let mut conn = Conn::new(Protocol::PomeloTcp);
    let hello = h.start(&mut conn);
    assert_eq!(conn.stage, Stage::Handshaking);
    assert_eq!(packages(&hello)[0].0, PackageType::Handshake);

    let sent = h.feed(&mut conn, &handshake_answer(), piece).unwrap();
    assert_eq!(conn.stage, Stage::Entering);
    assert_eq!(h.learned.heartbeat_secs, Some(30));
    assert!(h.learned.dict_version.is_some());
    let sent = packages(&sent);
    assert_eq!(sent[0], (PackageType::HandshakeAck, vec![]));
    let enter = message::decode(&sent[1].1).unwrap();
    assert_eq!((enter.id, enter.route), (1, Route::Name(pomelo::ENTER)));
    assert!(std::str::from_utf8(enter.body).unwrap().contains(r#""clientId":"c7""#));

    h.book.begin(5, 4, std::iter::once((&mut conn.tally, true)));
    let mut server = BytesMut::new();
    server.extend_from_slice(&package::HEARTBEAT);
    server.extend_from_slice(&response(1, r#"{"code":200,"msg":"add ok"}"#));
    server.extend_from_slice(&push(Route::Code(3), 5, 0));
    server.extend_from_slice(&push(Route::Name("onMsg"), 6, 0));
    server.extend_from_slice(&push(Route::Name("onAdd"), 4, 0)); // stale
    server.extend_from_slice(&push(Route::Code(3), 7, 0));
    h.feed(&mut conn, &server, piece).unwrap();
    assert_eq!(conn.stage, Stage::Entered);
    let stats = h.book.stats(std::iter::once(&conn.tally));
    assert_eq!((stats.deliveries, stats.stale), (3, 1));
    assert!(h.pending.is_empty());

    let mut kick_bytes = BytesMut::new();
    kick::encode("slow", &mut kick_bytes);
    assert_eq!(h.feed(&mut conn, &kick_bytes, piece), Err(Fault::Kicked("slow".into())));
}

#[test]
fn pomelo_tcp_at_every_split() {
    for piece in [1, 2, 3, 7, 64, 1 << 20] {
        pomelo_tcp_conversation(piece);
    }
}

#[test]
fn a_second_handshake_sends_the_learned_dict_version() {
    let mut h = Harness::new();
    h.learned.dict_version = Some("v1".into());
    let hello = h.start(&mut Conn::new(Protocol::PomeloTcp));
    let body = &packages(&hello)[0].1;
    let request = handshake::decode_request(body).unwrap();
    assert_eq!(request.dict_version.as_deref(), Some("v1"));
}

#[test]
fn refusals_are_faults() {
    let mut h = Harness::new();
    let mut conn = Conn::new(Protocol::PomeloTcp);
    h.start(&mut conn);
    let mut rejection = BytesMut::new();
    handshake::encode_rejection(handshake::HandshakeRejection::ClientRejected, &mut rejection);
    assert_eq!(
        h.feed(&mut conn, &rejection, 1 << 20),
        Err(Fault::Refused("handshake code 501".into()))
    );

    let mut h = Harness::new();
    let mut conn = Conn::new(Protocol::PomeloTcp);
    h.start(&mut conn);
    h.feed(&mut conn, &handshake_answer(), 1 << 20).unwrap();
    let err = h
        .feed(&mut conn, &response(1, r#"{"code":404,"msg":"no such app"}"#), 1 << 20)
        .unwrap_err();
    assert!(err.describe().contains("404"), "{err:?}");

    let mut h = Harness::new();
    let mut conn = Conn::new(Protocol::PomeloTcp);
    h.start(&mut conn);
    let err = h.feed(&mut conn, &[9, 0, 0, 0], 1).unwrap_err();
    assert!(matches!(err, Fault::Protocol(_)), "{err:?}");
}

#[test]
fn pomelo_over_websocket() {
    for piece in [1, 5, 1 << 20] {
        let mut h = Harness::new();
        let mut conn = Conn::new(Protocol::PomeloWs);
        let upgrade = h.start(&mut conn);
        assert!(upgrade.starts_with(b"GET / HTTP/1.1\r\n"));
        assert_eq!(conn.stage, Stage::Upgrading);

        // The 101, then the handshake answer in the same read.
        let mut server = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                           Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n"
            .to_vec();
        server.extend_from_slice(&frame(&handshake_answer()));
        let sent = h.feed(&mut conn, &server, piece).unwrap();
        assert_eq!(conn.stage, Stage::Entering);
        let frames = client_payloads(&sent);
        assert_eq!(frames.len(), 3, "handshake, ack, enter: one package per frame");
        assert_eq!(packages(&frames[0])[0].0, PackageType::Handshake);
        assert_eq!(packages(&frames[1])[0].0, PackageType::HandshakeAck);
        assert_eq!(packages(&frames[2])[0].0, PackageType::Data);

        h.book.begin(0, 0, std::iter::once((&mut conn.tally, true)));
        let mut server = frame(&response(1, r#"{"code":200,"msg":"add ok"}"#));
        server.extend_from_slice(&frame(&push(Route::Code(3), 0, 0)));
        server.extend_from_slice(&[0x89, 0x02, b'h', b'i']); // ping
        let sent = h.feed(&mut conn, &server, piece).unwrap();
        assert_eq!(conn.stage, Stage::Entered);
        assert_eq!(h.book.deliveries(), 1);
        assert_eq!(&sent[..2], &[0x8a, 0x82], "a masked pong");

        let mut hb = BytesMut::new();
        conn.heartbeat(&mut hb);
        assert_eq!(client_payloads(&hb), [package::HEARTBEAT.to_vec()]);

        assert_eq!(h.feed(&mut conn, &[0x88, 0x00], piece), Err(Fault::Closed));
    }
}

#[test]
fn redis_subscriber() {
    for piece in [1, 3, 1 << 20] {
        let mut h = Harness::new();
        let mut conn = Conn::new(Protocol::Redis);
        let subscribe = h.start(&mut conn);
        assert_eq!(subscribe, b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\ndemo\r\n");
        assert_eq!(conn.stage, Stage::Entering);
        h.book.begin(0, 0, std::iter::once((&mut conn.tally, true)));
        let mut msg = BytesMut::new();
        stamp::encode(0, 0, 100, &mut msg);
        let mut server = b"*3\r\n$9\r\nsubscribe\r\n$4\r\ndemo\r\n:1\r\n".to_vec();
        server.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n$4\r\ndemo\r\n$100\r\n");
        server.extend_from_slice(&msg);
        server.extend_from_slice(b"\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n");
        h.feed(&mut conn, &server, piece).unwrap();
        assert_eq!(conn.stage, Stage::Entered);
        assert_eq!(h.book.deliveries(), 1);
        let mut ping = BytesMut::new();
        conn.heartbeat(&mut ping);
        assert_eq!(&ping[..], REDIS_PING);
        let err = h.feed(&mut conn, b"-ERR nope\r\n", piece).unwrap_err();
        assert_eq!(err, Fault::Refused("ERR nope".into()));
    }
}

/// A PUBLISH from the server carrying stamp `seq` (shaddock's payload is the JSON string, with
/// its quotes; mosquitto's the stamp itself).
fn mqtt_publish(version: mqtt::Version, qos: u8, packet_id: u16, seq: u64) -> BytesMut {
    let mut msg = BytesMut::new();
    stamp::encode(seq, 0, 100, &mut msg);
    let payload = format!("\"{}\"", std::str::from_utf8(&msg).unwrap());
    let mut out = BytesMut::new();
    mqtt::encode_publish(version, "push/demo", qos, packet_id, payload.as_bytes(), &mut out);
    out
}

/// An MQTT subscriber through CONNACK, SUBACK, three PUBLISHes (one stale) and a PINGRESP, the
/// server's bytes cut in `piece`s.
fn mqtt_conversation(version: mqtt::Version, qos: u8, piece: usize) {
    let v5 = version == mqtt::Version::V5;
    let opts = MqttOptions { version, qos, keep_alive: 300 };
    let mut h = Harness::new();
    let mut conn = Conn::new(Protocol::Mqtt(opts));
    let connect = h.start(&mut conn);
    assert_eq!(conn.stage, Stage::Handshaking);
    let mut expected = BytesMut::new();
    mqtt::encode_connect(
        &mqtt::Connect {
            version,
            client_id: "c7",
            username: Some("demo"),
            password: None,
            keep_alive: 300,
            clean: true,
            receive_maximum: None,
        },
        &mut expected,
    );
    assert_eq!(connect, expected.to_vec());
    assert_eq!(connect[0..2], [0x10, if v5 { 0x15 } else { 0x14 }]);

    // CONNACK (5.0: with Server Keep Alive 60) → SUBSCRIBE push/demo.
    let connack: &[u8] = if v5 { &[0x20, 0x06, 0, 0, 0x03, 0x13, 0, 60] } else { &[0x20, 2, 0, 0] };
    let sent = h.feed(&mut conn, connack, piece).unwrap();
    assert_eq!(conn.stage, Stage::Entering);
    assert_eq!(h.learned.heartbeat_secs, Some(if v5 { 30 } else { 150 }));
    let mut subscribe = BytesMut::new();
    mqtt::encode_subscribe(version, 1, "push/demo", qos, &mut subscribe);
    assert_eq!(sent, subscribe.to_vec());

    h.book.begin(5, 4, std::iter::once((&mut conn.tally, true)));
    let mut server = BytesMut::new();
    let suback: &[u8] = if v5 { &[0x90, 4, 0, 1, 0, qos] } else { &[0x90, 3, 0, 1, qos] };
    server.extend_from_slice(suback);
    server.extend_from_slice(&mqtt_publish(version, qos, 1, 5));
    server.extend_from_slice(&mqtt_publish(version, qos, 2, 4)); // stale
    server.extend_from_slice(&[0xd0, 0x00]);
    server.extend_from_slice(&mqtt_publish(version, qos, 3, 6));
    let sent = h.feed(&mut conn, &server, piece).unwrap();
    assert_eq!(conn.stage, Stage::Entered);
    let stats = h.book.stats(std::iter::once(&conn.tally));
    assert_eq!((stats.deliveries, stats.stale), (2, 1));
    assert!(h.pending.is_empty());
    if qos == 1 {
        assert_eq!(sent, [0x40, 2, 0, 1, 0x40, 2, 0, 2, 0x40, 2, 0, 3], "a PUBACK for each");
    } else {
        assert!(sent.is_empty());
    }
    let mut ping = BytesMut::new();
    conn.heartbeat(&mut ping);
    assert_eq!(&ping[..], &mqtt::PINGREQ);

    let disconnect: &[u8] = if v5 { &[0xe0, 1, 0x8e] } else { &[0xe0, 0] };
    let reason = if v5 { "DISCONNECT 0x8e" } else { "DISCONNECT 0x00" };
    assert_eq!(h.feed(&mut conn, disconnect, piece), Err(Fault::Kicked(reason.into())));
}

#[test]
fn mqtt_at_every_split() {
    for version in [mqtt::Version::V311, mqtt::Version::V5] {
        for qos in [0, 1] {
            for piece in [1, 2, 3, 7, 64, 1 << 20] {
                mqtt_conversation(version, qos, piece);
            }
        }
    }
}

#[test]
fn mqtt_refusals_are_faults() {
    let opts = MqttOptions { version: mqtt::Version::V311, qos: 0, keep_alive: 300 };
    // Bad user name or password (3.1.1 return code 4).
    let mut h = Harness::new();
    let mut conn = Conn::new(Protocol::Mqtt(opts));
    h.start(&mut conn);
    let err = h.feed(&mut conn, &[0x20, 2, 0, 4], 1).unwrap_err();
    assert_eq!(err, Fault::Refused("CONNACK code 0x04".into()));
    // SUBACK failure.
    let mut h = Harness::new();
    let mut conn = Conn::new(Protocol::Mqtt(opts));
    h.start(&mut conn);
    h.feed(&mut conn, &[0x20, 2, 0, 0], 1).unwrap();
    let err = h.feed(&mut conn, &[0x90, 3, 0, 1, 0x80], 1).unwrap_err();
    assert_eq!(err, Fault::Refused("SUBACK code 0x80".into()));
    // A second CONNACK, a QoS 2 PUBLISH, a packet too large.
    let mut h = Harness::new();
    let mut conn = Conn::new(Protocol::Mqtt(opts));
    h.start(&mut conn);
    h.feed(&mut conn, &[0x20, 2, 0, 0], 1).unwrap();
    assert!(matches!(h.feed(&mut conn, &[0x20, 2, 0, 0], 1), Err(Fault::Protocol(_))));
    let mut conn = Conn::new(Protocol::Mqtt(opts));
    let mut h = Harness::new();
    h.start(&mut conn);
    let qos2 = mqtt_publish(mqtt::Version::V311, 2, 1, 0);
    assert!(matches!(h.feed(&mut conn, &qos2, 1 << 20), Err(Fault::Protocol(_))));
    let mut conn = Conn::new(Protocol::Mqtt(opts));
    let mut h = Harness::new();
    h.start(&mut conn);
    assert!(matches!(h.feed(&mut conn, &[0x30, 0xff, 0xff, 0x7f], 4), Err(Fault::Protocol(_))));
}

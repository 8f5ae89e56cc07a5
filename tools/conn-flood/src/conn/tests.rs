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
pub(super) struct Harness {
    pub(super) id: Identity<'static>,
    pub(super) book: PhaseBook,
    pub(super) learned: Learned,
    pub(super) out: BytesMut,
    /// What the connection posted (polling), until [`Harness::posted`] takes it.
    pub(super) post: BytesMut,
    pub(super) pending: Vec<u8>,
    pub(super) post_pending: Vec<u8>,
    pub(super) now_ns: u64,
}

impl Harness {
    pub(super) fn new() -> Harness {
        Harness {
            id: ID,
            book: PhaseBook::default(),
            learned: Learned::default(),
            out: BytesMut::new(),
            post: BytesMut::new(),
            pending: Vec::new(),
            post_pending: Vec::new(),
            now_ns: 1_000_000,
        }
    }

    pub(super) fn io(&mut self) -> Io<'_> {
        Io {
            now_ns: self.now_ns,
            book: &mut self.book,
            out: &mut self.out,
            post: &mut self.post,
            learned: &mut self.learned,
            max_package: 1 << 16,
        }
    }

    /// What the connection posted since the last call.
    pub(super) fn posted(&mut self) -> Vec<u8> {
        self.post.split().to_vec()
    }

    /// A heartbeat's bytes for the connection's socket.
    pub(super) fn heartbeat(&mut self, conn: &mut Conn) -> Vec<u8> {
        let id = self.id;
        conn.heartbeat(&id, &mut self.io());
        self.out.split().to_vec()
    }

    pub(super) fn start(&mut self, conn: &mut Conn) -> Vec<u8> {
        let id = self.id;
        conn.start(&id, &mut self.io());
        self.out.split().to_vec()
    }

    /// Feeds `bytes` in pieces of `piece` bytes, keeping unconsumed tails as the loop does;
    /// returns what the connection wrote.
    pub(super) fn feed(
        &mut self,
        conn: &mut Conn,
        bytes: &[u8],
        piece: usize,
    ) -> Result<Vec<u8>, Fault> {
        self.feed_on(conn, Channel::Main, bytes, piece)
    }

    /// [`feed`](Self::feed) on `channel`; what is posted stays for [`posted`](Self::posted).
    pub(super) fn feed_on(
        &mut self,
        conn: &mut Conn,
        channel: Channel,
        bytes: &[u8],
        piece: usize,
    ) -> Result<Vec<u8>, Fault> {
        let id = self.id;
        for chunk in bytes.chunks(piece.max(1)) {
            let mut pending = match channel {
                Channel::Main => std::mem::take(&mut self.pending),
                Channel::Post => std::mem::take(&mut self.post_pending),
            };
            pending.extend_from_slice(chunk);
            let used = conn.receive_on(channel, &pending, &id, &mut self.io())?;
            pending.drain(..used);
            match channel {
                Channel::Main => self.pending = pending,
                Channel::Post => self.post_pending = pending,
            }
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

        let hb = h.heartbeat(&mut conn);
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
        let ping = h.heartbeat(&mut conn);
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
    let ping = h.heartbeat(&mut conn);
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

/// The identity of a Socket.IO client: the Socket.IO path in `ws_path`.
pub(super) const SIO_ID: Identity<'static> = Identity { ws_path: "/socket.io", ..ID };

/// The 101 a WebSocket upgrade gets.
const SWITCHING: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                           Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n";

/// The server's text frames around each of `texts` (shaddock's own frame encoder).
fn texts(texts: &[&[u8]]) -> Vec<u8> {
    use shaddock::protocol::websocket::frame::{OpCode, encode_frame};
    let mut out = BytesMut::new();
    for text in texts {
        encode_frame(OpCode::Text, text, &mut out);
    }
    out.to_vec()
}

/// The payloads of the masked client text frames in `bytes`, as strings.
fn client_texts(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        assert_eq!(bytes[at], 0x81, "FIN + text");
        assert!(bytes[at + 1] & 0x80 != 0, "masked");
        let (len, header) = match bytes[at + 1] & 0x7f {
            126 => (u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize, 4),
            n => (n as usize, 2),
        };
        let mask = &bytes[at + header..at + header + 4];
        let body = &bytes[at + header + 4..at + header + 4 + len];
        let plain: Vec<u8> = body.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m).collect();
        out.push(String::from_utf8(plain).unwrap());
        at += header + 4 + len;
    }
    out
}

/// A Pomelo message as shaddock's session sends it to `version`, before framing.
pub(super) fn sio_message(version: socketio::Version, message: &str) -> Vec<u8> {
    use shaddock::protocol::socketio::packet;
    use shaddock::protocol::socketio::v09::{self, V09Type};
    let mut out = BytesMut::new();
    match version {
        socketio::Version::V09 => v09::encode(V09Type::Message, "", message, &mut out),
        _ => packet::encode_message_event(message, &mut out),
    }
    out.to_vec()
}

/// A push of stamp `seq` as shaddock's session sends it to `version`.
pub(super) fn sio_push(version: socketio::Version, seq: u64) -> Vec<u8> {
    let mut msg = BytesMut::new();
    stamp::encode(seq, 0, 100, &mut msg);
    let mut push = String::new();
    let body = format!(r#"{{"msg":"{}"}}"#, std::str::from_utf8(&msg).unwrap());
    shaddock::protocol::socketio::pomelo::encode_push("onMsg", &body, &mut push);
    sio_message(version, &push)
}

/// The Pomelo request inside a client's `message` text.
pub(super) fn sio_request(version: socketio::Version, text: &str) -> (u32, String, String) {
    use shaddock::protocol::socketio::{engineio, packet, pomelo as sio_pomelo, v09};
    let message = match version {
        socketio::Version::V09 => v09::decode(text).unwrap().data.to_string(),
        _ => {
            let eio = engineio::decode_packet(text).unwrap();
            packet::event_message(&packet::decode(eio.data).unwrap()).unwrap().unwrap()
        }
    };
    let request = sio_pomelo::decode_request(&message).unwrap();
    (request.id, request.route.to_string(), request.body.to_string())
}

/// After the socket.io connect: the enter went out; the answer, three pushes (one stale) and a
/// server ping come in; a kick ends it. The server's bytes are cut in `piece`s.
fn sio_after_connect(
    h: &mut Harness,
    conn: &mut Conn,
    version: socketio::Version,
    sent: &[u8],
    piece: usize,
) {
    assert_eq!(conn.stage, Stage::Entering);
    let sent = client_texts(sent);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (id, route, body) = sio_request(version, &sent[0]);
    assert_eq!((id, route.as_str()), (1, pomelo::ENTER));
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body, serde_json::json!({"role": "client", "apikey": "demo", "clientId": "c7"}));

    h.book.begin(5, 4, std::iter::once((&mut conn.tally, true)));
    let answer = sio_message(version, r#"{"id":1,"body":{"code":200,"msg":"add ok"}}"#);
    let onadd = sio_message(version, r#"{"route":"onAdd","body":{"clientId":"x"}}"#);
    let ping: &[u8] = if version == socketio::Version::V09 { b"2::" } else { b"2" };
    let server = texts(&[
        &answer,
        &sio_push(version, 5),
        &onadd,
        &sio_push(version, 4), // stale
        ping,
        &sio_push(version, 6),
    ]);
    let sent = h.feed(conn, &server, piece).unwrap();
    assert_eq!(conn.stage, Stage::Entered);
    let stats = h.book.stats(std::iter::once(&conn.tally));
    assert_eq!((stats.deliveries, stats.stale), (2, 1));
    assert!(h.pending.is_empty());
    let pong = if version == socketio::Version::V09 { "2::" } else { "3" };
    assert_eq!(client_texts(&sent), [pong]);

    let kick = sio_message(version, r#"{"route":"onKick","reason":"slow"}"#);
    assert_eq!(h.feed(conn, &texts(&[&kick]), piece), Err(Fault::Kicked("slow".into())));
}

/// An Engine.IO 3 or 4 client from the upgrade to a kick.
fn eio_conversation(version: socketio::Version, piece: usize) {
    let mut h = Harness::new();
    h.id = SIO_ID;
    let mut conn = Conn::new(Protocol::SocketIo(version));
    let upgrade = h.start(&mut conn);
    let eio = if version == socketio::Version::Eio4 { 4 } else { 3 };
    let line = format!("GET /socket.io/?EIO={eio}&transport=websocket HTTP/1.1\r\n");
    assert!(upgrade.starts_with(line.as_bytes()), "{}", String::from_utf8_lossy(&upgrade));
    assert_eq!(conn.stage, Stage::Upgrading);

    let open: &[u8] =
        br#"0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":65536}"#;
    let mut server = SWITCHING.to_vec();
    server.extend_from_slice(&texts(&[open]));
    let sent = h.feed(&mut conn, &server, piece).unwrap();
    assert_eq!(conn.stage, Stage::Handshaking);
    let sent = if version == socketio::Version::Eio4 {
        assert_eq!(client_texts(&sent), ["40"], "EIO 4 connects to /");
        assert_eq!(h.learned.heartbeat_secs, None, "the server pings");
        h.feed(&mut conn, &texts(&[br#"40{"sid":"s2"}"#]), piece).unwrap()
    } else {
        assert!(sent.is_empty());
        assert_eq!(h.learned.heartbeat_secs, Some(25), "the client pings every pingInterval");
        h.feed(&mut conn, &texts(&[b"40"]), piece).unwrap()
    };
    sio_after_connect(&mut h, &mut conn, version, &sent, piece);

    let hb = h.heartbeat(&mut conn);
    if version == socketio::Version::Eio3 {
        assert_eq!(client_texts(&hb), ["2"]);
    } else {
        assert!(hb.is_empty(), "an EIO 4 client never pings");
    }
}

#[test]
fn engine_io_at_every_split() {
    for version in [socketio::Version::Eio3, socketio::Version::Eio4] {
        for piece in [1, 2, 3, 7, 64, 1 << 20] {
            eio_conversation(version, piece);
        }
    }
}

/// A socket.io 0.9 client: the HTTP handshake on one connection, the WebSocket on the next.
fn v09_conversation(piece: usize) {
    let version = socketio::Version::V09;
    let mut h = Harness::new();
    h.id = SIO_ID;
    let mut conn = Conn::new(Protocol::SocketIo(version));
    let request = h.start(&mut conn);
    assert!(request.starts_with(b"GET /socket.io/1/ HTTP/1.1\r\nHost: 127.0.0.1:3010\r\n"));
    assert_eq!(conn.stage, Stage::Requesting);
    let body = "c2lk_1-x:45:60:websocket";
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    assert!(h.feed(&mut conn, answer.as_bytes(), piece).unwrap().is_empty());
    assert_eq!(conn.stage, Stage::Redialing);
    assert_eq!(conn.sid.as_deref(), Some("c2lk_1-x"));
    assert!(h.pending.is_empty());

    // The loop connects again: the upgrade shows the sid back, and takes it.
    conn.stage = Stage::Connecting;
    let upgrade = h.start(&mut conn);
    assert!(upgrade.starts_with(b"GET /socket.io/1/websocket/c2lk_1-x HTTP/1.1\r\n"));
    assert_eq!((conn.stage, conn.sid.as_deref()), (Stage::Upgrading, None));
    let mut server = SWITCHING.to_vec();
    server.extend_from_slice(&texts(&[b"1::"]));
    let sent = h.feed(&mut conn, &server, piece).unwrap();
    sio_after_connect(&mut h, &mut conn, version, &sent, piece);

    let hb = h.heartbeat(&mut conn);
    assert_eq!(client_texts(&hb), ["2::"]);
    // The next start (a churn, a retry) handshakes again.
    assert_eq!(h.start(&mut conn)[..18], b"GET /socket.io/1/ "[..]);
}

#[test]
fn socket_io_09_at_every_split() {
    for piece in [1, 2, 3, 7, 64, 1 << 20] {
        v09_conversation(piece);
    }
}

#[test]
fn socket_io_refusals_are_faults() {
    let opened = |version, connect: bool| {
        let mut h = Harness::new();
        h.id = SIO_ID;
        let mut conn = Conn::new(Protocol::SocketIo(version));
        h.start(&mut conn);
        let mut server = SWITCHING.to_vec();
        server.extend_from_slice(&texts(&[br#"0{"sid":"s","pingInterval":1000}"#]));
        if connect {
            server.extend_from_slice(&texts(&[b"40"]));
        }
        h.feed(&mut conn, &server, 1 << 20).unwrap();
        (h, conn)
    };
    let entering = |version| opened(version, true);
    // An enter refused.
    let (mut h, mut conn) = entering(socketio::Version::Eio3);
    assert_eq!(conn.stage, Stage::Entering);
    let refusal =
        sio_message(socketio::Version::Eio3, r#"{"id":1,"body":{"code":500,"msg":"no"}}"#);
    let err = h.feed(&mut conn, &texts(&[&refusal]), 1).unwrap_err();
    assert!(matches!(&err, Fault::Refused(what) if what.contains("500")), "{err:?}");
    // CONNECT_ERROR, socket.io's disconnect, a WebSocket close, a binary frame, a second open.
    let (mut h, mut conn) = opened(socketio::Version::Eio4, false);
    assert_eq!(conn.stage, Stage::Handshaking);
    let err = h.feed(&mut conn, &texts(&[br#"44{"message":"no"}"#]), 1).unwrap_err();
    assert!(matches!(err, Fault::Refused(_)), "{err:?}");
    let (mut h, mut conn) = entering(socketio::Version::Eio3);
    assert_eq!(h.feed(&mut conn, &texts(&[b"41"]), 1), Err(Fault::Closed));
    let (mut h, mut conn) = entering(socketio::Version::Eio3);
    assert_eq!(h.feed(&mut conn, &[0x88, 0x00], 1), Err(Fault::Closed));
    let (mut h, mut conn) = entering(socketio::Version::Eio3);
    assert!(matches!(h.feed(&mut conn, &frame(b"4"), 1), Err(Fault::Protocol(_))));
    let (mut h, mut conn) = entering(socketio::Version::Eio3);
    let again = texts(&[br#"0{"sid":"s"}"#]);
    assert!(matches!(h.feed(&mut conn, &again, 1), Err(Fault::Protocol(_))));
    // An upgrade refused with Engine.IO's 400.
    let mut h = Harness::new();
    let mut conn = Conn::new(Protocol::SocketIo(socketio::Version::Eio4));
    h.start(&mut conn);
    let answer = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    assert!(matches!(h.feed(&mut conn, answer, 1), Err(Fault::Refused(_))));
    // socket.io 0.9: a handshake refused, and a sid the server does not know.
    let mut h = Harness::new();
    let mut conn = Conn::new(Protocol::SocketIo(socketio::Version::V09));
    h.start(&mut conn);
    let answer = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 19\r\n\r\norigin not allowed\n";
    let err = h.feed(&mut conn, answer, 1).unwrap_err();
    assert_eq!(err, Fault::Refused("socket.io 0.9 handshake answered 403".into()));
    let mut h = Harness::new();
    let mut conn = Conn::new(Protocol::SocketIo(socketio::Version::V09));
    conn.sid = Some("stale".into());
    h.start(&mut conn);
    let mut server = SWITCHING.to_vec();
    server.extend_from_slice(&texts(&[b"7:::1+0"]));
    let err = h.feed(&mut conn, &server, 1).unwrap_err();
    assert_eq!(err, Fault::Refused("socket.io error 1+0".into()));
}

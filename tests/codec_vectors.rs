//! The Pomelo codecs against real bytes: every vector captured from Pomelo 2.2.7
//! (`tests/data/pomelo-captures.md`, a copy of `../shared/protocol/pomelo-captures.md`) and the
//! byte examples of `pomelo-hybrid.md` §3, §5 and §6.
//!
//! Each captured package is decoded and checked against what its capture line says; every server
//! package whose body shaddock produces the same way is re-encoded and compared byte for byte;
//! and each connection's byte stream is fed split at every offset.

use bytes::BytesMut;
use shaddock::protocol::ProtocolError;
use shaddock::protocol::pomelo::handshake::{self, HandshakeRejection, ProtosOffer};
use shaddock::protocol::pomelo::package::{self, HANDSHAKE_ACK, HEARTBEAT, MAX_BODY_LEN};
use shaddock::protocol::pomelo::{
    Message, MessageType, PackageType, Route, RouteDict, kick, message,
};

const CAPTURES: &str = include_str!("data/pomelo-captures.md");
const ENTER: &str = "connector.entryHandler.enter";
const PUSH_ALL: &str = "pushserver.pushHandler.pushAll";

/// One `- t=..ms **dir** description` line and the backticked hex under it.
#[derive(Debug)]
struct Vector {
    run: u8,
    conn: u8,
    from_server: bool,
    desc: String,
    bytes: Vec<u8>,
}

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .take_while(|t| *t != "…")
        .map(|t| u8::from_str_radix(t, 16).unwrap_or_else(|_| panic!("bad hex byte {t:?}")))
        .collect()
}

/// The run's full handshake response body from "Full handshake response bodies".
fn full_handshake_body(run: u8) -> &'static str {
    let marker = format!("\nRun {run} (");
    let after = &CAPTURES[CAPTURES.find(&marker).expect("full body section")..];
    let block = &after[after.find("```\n").expect("code block") + 4..];
    block[..block.find("\n```").expect("end of block")].trim()
}

/// Every capture line with bytes, truncated handshakes completed from the full bodies.
fn vectors() -> Vec<Vector> {
    let mut out = Vec::new();
    let (mut run, mut conn) = (0, 0);
    let mut lines = CAPTURES.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("## Run ") {
            run = rest[..1].parse().unwrap();
        } else if let Some(rest) = line.strip_prefix("### conn ") {
            conn = rest.split_whitespace().next().unwrap().parse().unwrap();
        }
        let (from_server, desc) = match (line.find("**s2c** "), line.find("**c2s** ")) {
            (Some(i), _) => (true, &line[i + 8..]),
            (_, Some(i)) => (false, &line[i + 8..]),
            _ => continue,
        };
        let hex_line = lines.next().expect("hex line").trim();
        let inner =
            hex_line.strip_prefix('`').and_then(|l| l.strip_suffix('`')).expect("backticked hex");
        let mut bytes = hex(inner);
        if inner.contains('…') {
            // The long handshake responses are cut in the capture list: complete them from the
            // full body, after checking the header and the shown prefix agree with it.
            let body = full_handshake_body(run);
            let mut full = bytes[..4].to_vec();
            full.extend_from_slice(body.as_bytes());
            assert_eq!(
                (u32::from(bytes[1]) << 16 | u32::from(bytes[2]) << 8 | u32::from(bytes[3]))
                    as usize,
                body.len(),
                "run {run}: header length vs full body"
            );
            assert!(full.starts_with(&bytes), "run {run}: shown prefix vs full body");
            bytes = full;
        }
        out.push(Vector { run, conn, from_server, desc: desc.to_owned(), bytes });
    }
    out
}

fn run_dict(run: u8) -> RouteDict {
    match run {
        1 => RouteDict::new([PUSH_ALL, ENTER], ["onAdd", "onMsg"]).unwrap(),
        _ => RouteDict::new([ENTER, PUSH_ALL], []).unwrap(),
    }
}

/// `flag=0x04 id=1 route=null body={...}` → (flag, id, route text, body text).
fn data_fields(desc: &str) -> (MessageType, u8, u32, &str, &str) {
    let mut words = desc.split(' ');
    assert_eq!(words.next(), Some("DATA"));
    let kind = match words.next().unwrap() {
        "REQUEST" => MessageType::Request,
        "NOTIFY" => MessageType::Notify,
        "RESPONSE" => MessageType::Response,
        "PUSH" => MessageType::Push,
        other => panic!("message type {other}"),
    };
    let field = |name: &str| {
        let start = desc.find(&format!(" {name}=")).unwrap() + name.len() + 2;
        &desc[start..]
    };
    let flag = u8::from_str_radix(&field("flag")[2..4], 16).unwrap();
    let id = field("id").split(' ').next().unwrap().parse().unwrap();
    let route = field("route");
    let route = &route[..route.find(" body=").unwrap()];
    (kind, flag, id, route, field("body"))
}

fn route_from(text: &str) -> Route<'_> {
    if text == "null" {
        Route::None
    } else if let Some(name) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Route::Name(name)
    } else {
        Route::Code(text.strip_suffix(" (dict code)").unwrap().parse().unwrap())
    }
}

fn body_from(text: &str) -> Vec<u8> {
    match text.strip_prefix("protobuf ") {
        Some(h) => hex(h),
        None => text.as_bytes().to_vec(),
    }
}

#[test]
fn every_captured_package_decodes_as_described() {
    let all = vectors();
    // Run 1: conns 3..6 have 8, 6, 6, 5 packages; run 2 the same plus 6 heartbeats on conn 3.
    assert_eq!(all.len(), 25 + 31, "vectors found in the capture file");
    for v in &all {
        let ctx = format!("run {} conn {} {}", v.run, v.conn, v.desc);
        if v.desc.starts_with("type 0x9") {
            assert_eq!(
                package::decode(&v.bytes, MAX_BODY_LEN),
                Err(ProtocolError::UnknownPackageType(9)),
                "{ctx}"
            );
            continue;
        }
        // Trailing bytes (a partial next header) are left alone.
        let mut stream = v.bytes.clone();
        stream.extend_from_slice(&[0x04, 0x00]);
        let (pkg, used) = package::decode(&stream, MAX_BODY_LEN).unwrap().expect("whole package");
        assert_eq!(used, v.bytes.len(), "{ctx}");
        assert_eq!(package::decode(&stream[used..], MAX_BODY_LEN), Ok(None));
        let body = pkg.body;
        let word = v.desc.split(' ').next().unwrap();
        match (word, v.from_server) {
            ("HANDSHAKE", false) => {
                assert_eq!(pkg.kind, PackageType::Handshake);
                assert_eq!(body, &v.desc.as_bytes()["HANDSHAKE ".len()..], "{ctx}");
                let req = handshake::decode_request(body).unwrap();
                assert_eq!(req.client_type.as_deref(), Some("anchor-tcp"));
                assert_eq!(req.client_version.as_deref(), Some("0.0.1"));
            }
            ("HANDSHAKE", true) => {
                assert_eq!(pkg.kind, PackageType::Handshake);
                let shown = v.desc["HANDSHAKE ".len()..].trim_end_matches(" …");
                assert!(body.starts_with(shown.as_bytes()), "{ctx}");
                let resp = handshake::decode_response(body).unwrap();
                let dict = run_dict(v.run);
                assert_eq!(resp.code, 200);
                assert_eq!(resp.heartbeat, Some(if v.run == 1 { 300 } else { 1 }));
                assert_eq!(resp.dict_version.as_deref(), Some(dict.version()));
                assert!(resp.use_dict);
                assert_eq!(resp.use_proto, v.run == 1);
                let map = resp.dict.unwrap();
                assert_eq!(map.len(), dict.len());
                for (route, code) in dict.iter() {
                    assert_eq!(map[route], code, "{ctx}");
                }
            }
            ("HANDSHAKE_ACK", _) => {
                assert_eq!((pkg.kind, body), (PackageType::HandshakeAck, &[][..]));
                assert_eq!(v.bytes, HANDSHAKE_ACK);
            }
            ("HEARTBEAT", _) => {
                assert_eq!((pkg.kind, body), (PackageType::Heartbeat, &[][..]));
                assert_eq!(v.bytes, HEARTBEAT);
            }
            ("DATA", _) => {
                assert_eq!(pkg.kind, PackageType::Data);
                let (kind, flag, id, route, text) = data_fields(&v.desc);
                let msg = message::decode(body).unwrap();
                assert_eq!(body[0], flag, "{ctx}");
                assert_eq!(msg.kind, kind, "{ctx}");
                assert_eq!(msg.id, id, "{ctx}");
                assert_eq!(msg.route, route_from(route), "{ctx}");
                assert_eq!(msg.body, body_from(text), "{ctx}");
            }
            ("KICK", true) => {
                assert_eq!(pkg.kind, PackageType::Kick);
                let json = &v.desc["KICK ".len()..];
                assert_eq!(body, json.as_bytes());
                assert_eq!(kick::decode(body).unwrap().as_deref(), Some("attack"));
            }
            _ => panic!("unexpected capture line: {ctx}"),
        }
    }
}

/// What shaddock sends for the same content as a captured server package.
fn reencode(run: u8, bytes: &[u8], out: &mut BytesMut) {
    let (pkg, _) = package::decode(bytes, MAX_BODY_LEN).unwrap().unwrap();
    match pkg.kind {
        PackageType::Handshake => {
            let heartbeat = if run == 1 { 300 } else { 1 };
            handshake::encode_response(
                Some(heartbeat),
                Some(&run_dict(run)),
                true,
                ProtosOffer::None,
                out,
            )
            .unwrap();
        }
        PackageType::Heartbeat => out.extend_from_slice(&HEARTBEAT),
        PackageType::HandshakeAck => out.extend_from_slice(&HANDSHAKE_ACK),
        PackageType::Data => {
            let msg = message::decode(pkg.body).unwrap();
            let msg = match msg.kind {
                MessageType::Response => Message::response(msg.id, msg.body),
                MessageType::Push => Message::push(msg.route, msg.body),
                _ => msg,
            };
            message::encode_package(&msg, out).unwrap();
        }
        PackageType::Kick => kick::encode(&kick::decode(pkg.body).unwrap().unwrap(), out),
    }
}

#[test]
fn server_packages_reencode_byte_for_byte() {
    let mut checked = 0;
    for v in vectors().iter().filter(|v| v.from_server) {
        let mut out = BytesMut::new();
        reencode(v.run, &v.bytes, &mut out);
        if v.run == 1 && v.bytes[0] == PackageType::Handshake as u8 {
            // Run 1 ran with pomelo-protobuf, so Pomelo appended `"protos":{..},"useProto":true`
            // after `"useDict":true`. shaddock sends no protos (clients then stay on JSON,
            // pomelo-hybrid.md §8), so its body is the captured one up to `useDict` and closes
            // there; the header length differs accordingly.
            let ours = &out[4..];
            let theirs = &v.bytes[4..];
            let open = ours.len() - 2;
            assert!(ours.ends_with(br#","useDict":true}}"#));
            assert_eq!(&ours[..open], &theirs[..open], "run 1 handshake up to useDict");
            assert!(theirs[open..].starts_with(br#","protos":{"#));
            assert!(theirs.ends_with(br#","useProto":true}}"#));
        } else {
            assert_eq!(&out[..], &v.bytes[..], "run {} conn {} {}", v.run, v.conn, v.desc);
        }
        checked += 1;
    }
    // Server packages of conns 3..6: 5, 3, 3, 2 in run 1; 8, 3, 3, 2 in run 2.
    assert_eq!(checked, 13 + 16);
}

#[test]
fn client_packages_reencode_byte_for_byte() {
    for v in vectors().iter().filter(|v| !v.from_server && v.bytes[0] != 9) {
        let (pkg, _) = package::decode(&v.bytes, MAX_BODY_LEN).unwrap().unwrap();
        let mut out = BytesMut::new();
        match pkg.kind {
            PackageType::Data => {
                message::encode_package(&message::decode(pkg.body).unwrap(), &mut out).unwrap()
            }
            kind => package::encode(kind, pkg.body, &mut out).unwrap(),
        }
        assert_eq!(&out[..], &v.bytes[..], "{}", v.desc);
    }
}

type Decoded = Result<(PackageType, Vec<u8>), ProtocolError>;

/// Feeds `chunks` through a reassembler the way the reactor does: decode every whole package,
/// keep the tail, stop at the first fault.
fn feed<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Decoded> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match package::decode(&buf, 65_536) {
                Ok(Some((pkg, used))) => {
                    out.push(Ok((pkg.kind, pkg.body.to_vec())));
                    buf.drain(..used);
                }
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }
    assert!(buf.is_empty(), "a whole stream leaves no tail");
    out
}

#[test]
fn every_split_point_yields_the_same_packages() {
    let all = vectors();
    for run in [1, 2] {
        for conn in 3..=6 {
            for from_server in [true, false] {
                let stream: Vec<u8> = all
                    .iter()
                    .filter(|v| v.run == run && v.conn == conn && v.from_server == from_server)
                    .flat_map(|v| v.bytes.iter().copied())
                    .collect();
                let whole = feed([&stream[..]]);
                assert!(whole.len() >= 2, "run {run} conn {conn}");
                for cut in 0..=stream.len() {
                    let (a, b) = stream.split_at(cut);
                    assert_eq!(feed([a, b]), whole, "run {run} conn {conn} cut {cut}");
                }
                assert_eq!(feed(stream.chunks(1)), whole, "byte by byte");
                assert_eq!(feed(stream.chunks(7)), whole, "7 bytes at a time");
            }
        }
    }
}

#[test]
fn conn_6_stream_ends_in_a_fault_on_the_type_9_header() {
    let all = vectors();
    let stream: Vec<u8> = all
        .iter()
        .filter(|v| v.run == 2 && v.conn == 6 && !v.from_server)
        .flat_map(|v| v.bytes.iter().copied())
        .collect();
    let decoded = feed([&stream[..]]);
    assert_eq!(decoded.len(), 3);
    assert_eq!(decoded[2], Err(ProtocolError::UnknownPackageType(9)));
    assert_eq!(
        decoded[2].clone().unwrap_err().kick_reason(),
        "protocol error: unknown package type 9"
    );
}

// --- pomelo-hybrid.md byte examples ---------------------------------------------------------

/// §3 handshake request `{"sys":{"type":"rust-demo","version":"0.1.0"},"user":{}}`.
const HYBRID_HANDSHAKE_REQ: &str = "01 00 00 38 7b 22 73 79 73 22 3a 7b 22 74 79 70 65 22 3a 22 72 75 73 74 2d 64 65 6d 6f 22 2c \
    22 76 65 72 73 69 6f 6e 22 3a 22 30 2e 31 2e 30 22 7d 2c 22 75 73 65 72 22 3a 7b 7d 7d";
/// §3 handshake response, header and first bytes only (the document elides the rest).
const HYBRID_HANDSHAKE_RESP_PREFIX: &str = "01 00 00 d3 7b 22 63 6f 64 65 22 3a 32 30 30";
const HYBRID_HANDSHAKE_ERR: &str = "01 00 00 0c 7b 22 63 6f 64 65 22 3a 35 30 31 7d";
const HYBRID_HANDSHAKE_ACK: &str = "02 00 00 00";
const HYBRID_HEARTBEAT: &str = "03 00 00 00";
/// §5 `{"reason":"kick"}`, `{"reason":"attack"}`, and Pomelo 0.4's empty kick.
const HYBRID_KICK: &str = "05 00 00 11 7b 22 72 65 61 73 6f 6e 22 3a 22 6b 69 63 6b 22 7d";
const HYBRID_KICK_ATTACK: &str =
    "05 00 00 13 7b 22 72 65 61 73 6f 6e 22 3a 22 61 74 74 61 63 6b 22 7d";
const HYBRID_KICK_EMPTY: &str = "05 00 00 00";
/// §6 request id 1 on `connector.entryHandler.enter`.
const HYBRID_REQUEST: &str = "04 00 00 4e 00 01 1c 63 6f 6e 6e 65 63 74 6f 72 2e 65 6e 74 72 79 48 61 6e 64 6c 65 72 2e 65 6e 74 65 72 \
    7b 22 72 6f 6c 65 22 3a 22 63 6c 69 65 6e 74 22 2c 22 61 70 69 6b 65 79 22 3a 22 6b 31 22 2c 22 63 6c 69 65 6e 74 49 64 22 3a 22 63 31 22 7d";
/// §6 the same with dict code 1 (the document elides the body after `{"role`).
const HYBRID_REQUEST_DICT_PREFIX: &str = "04 00 00 33 01 01 00 01 7b 22 72 6f 6c 65";
const HYBRID_RESPONSE: &str = "04 00 00 1d 04 01 7b 22 63 6f 64 65 22 3a 32 30 30 2c 22 6d 73 67 22 3a 22 61 64 64 20 6f 6b 22 7d";
const HYBRID_PUSH: &str = "04 00 00 13 06 05 6f 6e 4d 73 67 7b 22 6d 73 67 22 3a 22 68 69 22 7d";
const HYBRID_PUSH_DICT: &str = "04 00 00 0f 07 00 04 7b 22 6d 73 67 22 3a 22 68 69 22 7d";
const HYBRID_PUSH_DICT_PROTOBUF: &str = "04 00 00 07 07 00 04 0a 02 68 69";
/// §6 notify `a.b` `{}`, message only (no package header).
const HYBRID_NOTIFY_MESSAGE: &str = "02 03 61 2e 62 7b 7d";

const ENTER_BODY: &[u8] = br#"{"role":"client","apikey":"k1","clientId":"c1"}"#;

fn one_package(bytes: &[u8]) -> package::Package<'_> {
    let (pkg, used) = package::decode(bytes, MAX_BODY_LEN).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    pkg
}

fn encoded_package(msg: &Message<'_>) -> Vec<u8> {
    let mut out = BytesMut::new();
    message::encode_package(msg, &mut out).unwrap();
    out.to_vec()
}

#[test]
fn hybrid_section_3_handshake() {
    let req = hex(HYBRID_HANDSHAKE_REQ);
    let pkg = one_package(&req);
    assert_eq!(pkg.kind, PackageType::Handshake);
    assert_eq!(pkg.body, br#"{"sys":{"type":"rust-demo","version":"0.1.0"},"user":{}}"#);
    let decoded = handshake::decode_request(pkg.body).unwrap();
    assert_eq!(decoded.client_type.as_deref(), Some("rust-demo"));
    assert_eq!(decoded.client_version.as_deref(), Some("0.1.0"));

    // The response example shows only its header (211-byte body) and first bytes: a decoder
    // holding just those waits for the rest, and shaddock's answer opens the same way.
    let prefix = hex(HYBRID_HANDSHAKE_RESP_PREFIX);
    assert_eq!(package::decode(&prefix, MAX_BODY_LEN), Ok(None));
    let dict = RouteDict::new([ENTER], []).unwrap();
    let mut out = BytesMut::new();
    handshake::encode_response(Some(300), Some(&dict), true, ProtosOffer::None, &mut out).unwrap();
    assert_eq!(out[0], prefix[0]);
    assert_eq!(&out[4..prefix.len()], &prefix[4..]);
    assert!(out[4..].starts_with(
        br#"{"code":200,"sys":{"heartbeat":300,"dict":{"connector.entryHandler.enter":1},"#
    ));

    let mut out = BytesMut::new();
    handshake::encode_rejection(HandshakeRejection::ClientRejected, &mut out);
    assert_eq!(&out[..], hex(HYBRID_HANDSHAKE_ERR));
    assert_eq!(handshake::decode_response(&out[4..]).unwrap().code, 501);

    assert_eq!(hex(HYBRID_HANDSHAKE_ACK), HANDSHAKE_ACK);
    assert_eq!(hex(HYBRID_HEARTBEAT), HEARTBEAT);
    assert_eq!(one_package(&HEARTBEAT).kind, PackageType::Heartbeat);
    assert_eq!(one_package(&HANDSHAKE_ACK).kind, PackageType::HandshakeAck);
}

#[test]
fn hybrid_section_5_kick() {
    for (reason, vector) in [("kick", HYBRID_KICK), ("attack", HYBRID_KICK_ATTACK)] {
        let bytes = hex(vector);
        let mut out = BytesMut::new();
        kick::encode(reason, &mut out);
        assert_eq!(&out[..], bytes);
        let pkg = one_package(&bytes);
        assert_eq!(pkg.kind, PackageType::Kick);
        assert_eq!(kick::decode(pkg.body).unwrap().as_deref(), Some(reason));
    }
    let empty = hex(HYBRID_KICK_EMPTY);
    let pkg = one_package(&empty);
    assert_eq!((pkg.kind, kick::decode(pkg.body)), (PackageType::Kick, Ok(None)));
}

#[test]
fn hybrid_section_6_messages() {
    let request =
        Message { kind: MessageType::Request, id: 1, route: Route::Name(ENTER), body: ENTER_BODY };
    let bytes = hex(HYBRID_REQUEST);
    assert_eq!(message::decode(one_package(&bytes).body), Ok(request));
    assert_eq!(encoded_package(&request), bytes);

    let compressed = Message { route: Route::Code(1), ..request };
    let ours = encoded_package(&compressed);
    assert!(ours.starts_with(&hex(HYBRID_REQUEST_DICT_PREFIX)));
    assert_eq!(ours.len(), 4 + 0x33);
    assert_eq!(message::decode(&ours[4..]), Ok(compressed));

    let cases: [(&str, Message<'_>); 4] = [
        (HYBRID_RESPONSE, Message::response(1, br#"{"code":200,"msg":"add ok"}"#)),
        (HYBRID_PUSH, Message::push(Route::Name("onMsg"), br#"{"msg":"hi"}"#)),
        (HYBRID_PUSH_DICT, Message::push(Route::Code(4), br#"{"msg":"hi"}"#)),
        (HYBRID_PUSH_DICT_PROTOBUF, Message::push(Route::Code(4), &[0x0a, 0x02, 0x68, 0x69])),
    ];
    for (vector, msg) in cases {
        let bytes = hex(vector);
        assert_eq!(message::decode(one_package(&bytes).body), Ok(msg), "{vector}");
        assert_eq!(encoded_package(&msg), bytes, "{vector}");
    }

    let notify = hex(HYBRID_NOTIFY_MESSAGE);
    let msg = message::decode(&notify).unwrap();
    assert_eq!(
        msg,
        Message { kind: MessageType::Notify, id: 0, route: Route::Name("a.b"), body: b"{}" }
    );
    let mut out = BytesMut::new();
    message::encode(&msg, &mut out).unwrap();
    assert_eq!(&out[..], notify);
}

// --- faults the reactor kicks for ------------------------------------------------------------

#[test]
fn faults_map_to_kick_reasons() {
    // Oversize: refused with only the 4 header bytes in.
    let err = package::decode(&[0x04, 0x01, 0x00, 0x01], 65_536).unwrap_err();
    assert_eq!(err, ProtocolError::PackageTooLarge { len: 65_537, max: 65_536 });
    assert_eq!(err.kick_reason(), "package too large");
    // Unknown type 9.
    assert_eq!(
        package::decode(&[0x09, 0x00, 0x00, 0x00], 65_536),
        Err(ProtocolError::UnknownPackageType(9))
    );
    // Message faults.
    let m = ProtocolError::Malformed;
    assert_eq!(message::decode(&[0x00, 0x81]), Err(m("truncated message id")));
    assert_eq!(message::decode(&[0x06, 0x01, 0xff]), Err(m("route is not UTF-8")));
    assert_eq!(message::decode(&[0x40, 0x01]), Err(m("reserved flag bits set")));
    assert_eq!(message::decode(&[0x00, 0x00, 0x00]), Err(m("request with id 0")));
    assert_eq!(m("request with id 0").kick_reason(), "protocol error: request with id 0");
}

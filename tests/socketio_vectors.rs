//! The Socket.IO codecs against wire vectors recorded from real servers and clients
//! (`tests/data/socketio/*.json`, made by `tests/data/socketio/record.mjs`; versions and format
//! in `tests/data/socketio/README.md`): socket.io 0.9.19, Pomelo 2.2.7's sioconnector
//! (engine.io 1.8.2), socket.io 2.5.1 (engine.io 3.6.2) and 4.8.4 (engine.io 6.6), each with
//! its own generation of client.
//!
//! Every recorded packet and payload is decoded and checked, and re-encoded byte for byte
//! wherever shaddock writes the same thing (open packets with the recorded sid and values);
//! the request heads and client WebSocket frames, which shaddock reads from partial input,
//! are fed cut at every byte.

use std::collections::HashMap;

use base64::Engine as _;
use bytes::BytesMut;
use serde_json::Value;
use shaddock::protocol::http;
use shaddock::protocol::socketio::engineio::{
    self, EioError, EioVersion, HttpErrorCode, Open, PacketType,
};
use shaddock::protocol::socketio::packet::{self, SioPacketType};
use shaddock::protocol::socketio::{pomelo, utf16_len, v09};
use shaddock::protocol::websocket::frame::{self, OpCode};
use shaddock::protocol::websocket::upgrade;

/// More packets than any recorded body holds.
const MAX: usize = 1024;
/// Larger than any recorded head or frame.
const MAX_HEAD: usize = 16 * 1024;

macro_rules! scenario {
    ($name:literal) => {
        ($name, include_str!(concat!("data/socketio/", $name, ".json")))
    };
}

/// Every recorded scenario, by file name.
const FILES: &[(&str, &str)] = &[
    scenario!("v09-websocket"),
    scenario!("v09-xhr-polling"),
    scenario!("v09-http-errors"),
    scenario!("pomelo-2.2.7-eio3-polling-upgrade"),
    scenario!("pomelo-2.2.7-eio3-polling"),
    scenario!("pomelo-2.2.7-eio3-websocket"),
    scenario!("pomelo-2.2.7-eio3-default-heartbeat"),
    scenario!("pomelo-2.2.7-eio3-http-errors"),
    scenario!("pomelo-2.2.7-eio3-polling-xhr2"),
    scenario!("eio3-polling-upgrade"),
    scenario!("eio3-polling"),
    scenario!("eio3-websocket"),
    scenario!("eio3-polling-keepalive"),
    scenario!("eio3-http-errors"),
    scenario!("eio3-client2-vs-sio4-polling-upgrade"),
    scenario!("eio3-client2-vs-sio4-polling"),
    scenario!("eio4-polling-upgrade"),
    scenario!("eio4-polling"),
    scenario!("eio4-websocket"),
    scenario!("eio4-polling-keepalive"),
    scenario!("eio4-http-errors"),
];

/// The protocol a scenario speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    V09,
    Eio(EioVersion),
}

struct Scenario {
    name: &'static str,
    proto: Proto,
    /// The events after the `meta` one.
    events: Vec<Value>,
}

fn scenarios() -> Vec<Scenario> {
    FILES
        .iter()
        .map(|&(name, text)| {
            let all: Vec<Value> =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(all[0]["layer"], "meta", "{name}");
            assert_eq!(all[0]["scenario"], name, "{name}");
            let proto = if name.starts_with("v09") {
                Proto::V09
            } else if name.starts_with("eio4") {
                Proto::Eio(EioVersion::V4)
            } else {
                Proto::Eio(EioVersion::V3)
            };
            Scenario { name, proto, events: all[1..].to_vec() }
        })
        .collect()
}

fn eio_scenarios() -> impl Iterator<Item = (Scenario, EioVersion)> {
    scenarios().into_iter().filter_map(|s| match s.proto {
        Proto::Eio(v) => Some((s, v)),
        Proto::V09 => None,
    })
}

// ------------------------------------------------------------------ reading events

/// A body or payload: a string, or `{"base64": ..}` for bytes that are not UTF-8.
fn bytes_of(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Object(o) => base64::engine::general_purpose::STANDARD
            .decode(o["base64"].as_str().expect("base64 string"))
            .expect("base64"),
        other => panic!("not a body: {other}"),
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn is(ev: &Value, layer: &str, dir: &str) -> bool {
    ev["layer"] == layer && ev["dir"] == dir
}

fn start_line(ev: &Value) -> &str {
    ev["http"]["start_line"].as_str().expect("start_line")
}

fn header<'a>(ev: &'a Value, name: &str) -> Option<&'a str> {
    ev["http"]["headers"]
        .as_array()?
        .iter()
        .find_map(|h| (h[0].as_str()?.eq_ignore_ascii_case(name)).then(|| h[1].as_str()).flatten())
}

fn status(ev: &Value) -> u16 {
    start_line(ev).split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status")
}

/// The request line a response answers (`""` when the recorder could not pair it).
fn answers(ev: &Value) -> &str {
    ev["answers"].as_str().unwrap_or_default()
}

fn target(request_line: &str) -> &str {
    request_line.split(' ').nth(1).unwrap_or_default()
}

fn body(ev: &Value) -> Vec<u8> {
    bytes_of(&ev["http"]["body"])
}

/// A WebSocket text frame's payload, if `ev` is one.
fn ws_text(ev: &Value) -> Option<&str> {
    (ev["layer"] == "ws" && ev["ws"]["opcode"] == "text").then(|| ev["ws"]["payload"].as_str())?
}

fn written(encode: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(&mut out);
    out.to_vec()
}

fn text(encode: impl FnOnce(&mut BytesMut)) -> String {
    String::from_utf8(written(encode)).expect("UTF-8")
}

/// A recorded Engine.IO polling body: a POST's, or a 200's to a polling GET, with what the
/// direction was. JSONP bodies and `ok` are left out.
fn polling_bodies(s: &Scenario) -> Vec<(bool, Vec<u8>)> {
    let mut out = Vec::new();
    for ev in &s.events {
        let (from_client, line) = if is(ev, "http", "c2s") {
            (true, start_line(ev))
        } else if is(ev, "http", "s2c") && status(ev) == 200 {
            (false, answers(ev))
        } else {
            continue;
        };
        let b = body(ev);
        let t = target(line);
        let polling = t.starts_with("/socket.io/?") && t.contains("transport=polling");
        if !polling || b.is_empty() || b == b"ok" || b.starts_with(b"___eio") {
            continue;
        }
        if from_client && !line.starts_with("POST ") {
            continue;
        }
        out.push((from_client, b));
    }
    out
}

// ------------------------------------------------------------------ checking packets

/// Rebuilds a Socket.IO packet from its decoded header and data (binary types aside).
fn sio_rebuilt(p: &packet::SioPacket<'_>) -> String {
    let mut s = String::from(char::from(p.kind.as_byte()));
    if p.namespace != "/" {
        s.push_str(p.namespace);
        s.push(',');
    }
    if let Some(id) = p.ack_id {
        s.push_str(&id.to_string());
    }
    s.push_str(p.data);
    s
}

/// The sid of an Engine.IO 4 CONNECT answer `{"sid":".."}`.
fn connect_sid(data: &str) -> Option<String> {
    let v: Value = serde_json::from_str(data).ok()?;
    Some(v.as_object()?.get("sid")?.as_str()?.to_owned())
}

/// Checks one Socket.IO packet (an Engine.IO message's data) and re-encodes what shaddock
/// writes; returns the `"message"` argument of an EVENT.
fn check_sio(version: EioVersion, from_client: bool, data: &str, ctx: &str) -> Option<String> {
    let p = packet::decode(data).unwrap_or_else(|e| panic!("{ctx}: {data:?}: {e}"));
    assert_eq!(p.kind.as_byte(), data.as_bytes()[0], "{ctx}");
    if p.kind.is_binary() {
        // `51-["bin",{"_placeholder":true,"num":0}]`: the count is skipped, the rest kept.
        assert!(data.contains("-["), "{ctx}: {data:?}");
        assert!(data.ends_with(p.data), "{ctx}");
        return None;
    }
    assert_eq!(sio_rebuilt(&p), data, "{ctx}: decoded fields put back together");
    let mine = |encode: &dyn Fn(&mut BytesMut)| text(|out| encode(out));
    match p.kind {
        SioPacketType::Connect if !from_client && p.namespace == "/" => {
            // `40` (protocol 4) and `40{"sid":".."}` (protocol 5) as the server writes them.
            let sid = connect_sid(p.data);
            assert_eq!(sid.is_some(), version == EioVersion::V4, "{ctx}: {data:?}");
            let frame = mine(&|out| packet::encode_connect(version, sid.as_deref(), out));
            assert_eq!(frame, format!("4{data}"), "{ctx}");
        }
        SioPacketType::Disconnect if p.namespace == "/" && p.data.is_empty() => {
            assert_eq!(mine(&|out| packet::encode_disconnect(out)), format!("4{data}"), "{ctx}");
        }
        SioPacketType::ConnectError if !from_client => {
            let v: Value = serde_json::from_str(p.data).expect("CONNECT_ERROR JSON");
            let message = match version {
                EioVersion::V3 => v.as_str(),
                EioVersion::V4 => v["message"].as_str(),
            }
            .expect("error message");
            let frame =
                mine(&|out| packet::encode_connect_error(version, p.namespace, message, out));
            assert_eq!(frame, format!("4{data}"), "{ctx}");
        }
        SioPacketType::Event => {
            let Ok(v) = serde_json::from_str::<Value>(p.data) else {
                // The recorder's hand-written `42["a",`.
                assert!(from_client, "{ctx}");
                assert_eq!(packet::event_message(&p), Err(packet::SioError::InvalidEvent), "{ctx}");
                return None;
            };
            let arg = packet::event_message(&p).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let js_arg = (v[0] == "message").then(|| v[1].as_str()).flatten();
            assert_eq!(arg.as_deref(), js_arg, "{ctx}: {data:?}");
            if let Some(arg) = &arg {
                if p.ack_id.is_none() && p.namespace == "/" && v.as_array().map(Vec::len) == Some(2)
                {
                    let frame = mine(&|out| packet::encode_message_event(arg, out));
                    assert_eq!(frame, format!("4{data}"), "{ctx}: JSON.stringify escaping");
                    assert_eq!(packet::message_event_len(arg), frame.len(), "{ctx}");
                }
            }
            return arg;
        }
        _ => {}
    }
    None
}

/// Checks an open packet's JSON (keys in the server's order) and encodes it again with the
/// recorded values.
fn check_open(version: EioVersion, packet_text: &str, ctx: &str) {
    let json: Value = serde_json::from_str(&packet_text[1..]).expect("open JSON");
    let keys: Vec<&str> = json.as_object().expect("object").keys().map(String::as_str).collect();
    let has_max_payload = keys.contains(&"maxPayload");
    let mut want = vec!["sid", "upgrades", "pingInterval", "pingTimeout"];
    if has_max_payload {
        want.push("maxPayload");
    }
    assert_eq!(keys, want, "{ctx}: key order");
    // engine.io 6 writes maxPayload for EIO 3 clients too; socket.io 2.x and Pomelo's
    // engine.io 1.8.2 do not.
    assert!(has_max_payload || version == EioVersion::V3, "{ctx}");
    let upgrades: Vec<&str> =
        json["upgrades"].as_array().expect("upgrades").iter().filter_map(Value::as_str).collect();
    let num = |k: &str| u32::try_from(json[k].as_u64().expect("number")).expect("u32");
    let open = Open {
        sid: json["sid"].as_str().expect("sid"),
        upgrades: &upgrades,
        ping_interval_ms: num("pingInterval"),
        ping_timeout_ms: num("pingTimeout"),
        max_payload: if has_max_payload { num("maxPayload") } else { 0 },
    };
    let layout = if has_max_payload { EioVersion::V4 } else { EioVersion::V3 };
    assert_eq!(text(|out| engineio::encode_open(layout, &open, out)), packet_text, "{ctx}");
    if version == EioVersion::V3 && has_max_payload {
        let without = format!(",\"maxPayload\":{}", open.max_payload);
        let v3 = text(|out| engineio::encode_open(EioVersion::V3, &open, out));
        assert_eq!(v3, packet_text.replace(&without, ""), "{ctx}");
    }
}

/// Checks one Engine.IO packet; returns the `"message"` argument it carries, if any.
fn check_eio(
    version: EioVersion,
    from_client: bool,
    packet_text: &str,
    ctx: &str,
) -> Option<String> {
    let p = engineio::decode_packet(packet_text).unwrap_or_else(|e| panic!("{ctx}: {e}"));
    assert_eq!(p.kind.as_byte(), packet_text.as_bytes()[0], "{ctx}");
    assert_eq!(
        text(|out| engineio::encode_packet(p.kind, p.data, out)),
        packet_text,
        "{ctx}: encode_packet"
    );
    match p.kind {
        PacketType::Open => {
            assert!(!from_client, "{ctx}");
            check_open(version, packet_text, ctx);
        }
        PacketType::Ping | PacketType::Pong => assert!(matches!(p.data, "" | "probe"), "{ctx}"),
        PacketType::Close | PacketType::Upgrade | PacketType::Noop => {
            assert_eq!(p.data, "", "{ctx}");
        }
        PacketType::Message => return check_sio(version, from_client, p.data, ctx),
    }
    None
}

/// Whether a polling body holds a binary packet: `b<base64>` (as a packet of a text payload)
/// or a 0x01 element of a binary payload.
fn has_binary_packet(version: EioVersion, body: &[u8]) -> bool {
    if version == EioVersion::V3 && body.first().is_some_and(|&b| b <= 1) {
        // <flag> <length digits as bytes 0-9> 0xFF <packet> ...
        let mut rest = body;
        while let Some((&flag, tail)) = rest.split_first() {
            if flag == 1 {
                return true;
            }
            let Some(end) = tail.iter().position(|&b| b == 0xff) else { return false };
            let len = tail[..end].iter().fold(0usize, |n, &d| n * 10 + usize::from(d));
            rest = tail.get(end + 1 + len..).unwrap_or_default();
        }
        return false;
    }
    let Ok(t) = std::str::from_utf8(body) else { return false };
    match version {
        EioVersion::V4 => t.split('\u{1e}').any(|p| p.starts_with('b')),
        EioVersion::V3 => t.contains(":b"),
    }
}

// ------------------------------------------------------------------ Engine.IO 3 and 4

#[test]
fn eio_websocket_frames() {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (s, version) in eio_scenarios() {
        for (i, ev) in s.events.iter().enumerate() {
            let Some(payload) = ws_text(ev) else { continue };
            let ctx = format!("{} event {i}", s.name);
            check_eio(version, ev["dir"] == "c2s", payload, &ctx);
            if payload.starts_with('0') {
                *counts.entry("open").or_default() += 1;
            }
            *counts.entry(if version == EioVersion::V3 { "v3" } else { "v4" }).or_default() += 1;
        }
    }
    assert!(counts["v3"] > 80 && counts["v4"] > 40 && counts["open"] >= 7, "{counts:?}");
}

#[test]
fn eio_polling_payloads() {
    let (mut decoded, mut opens, mut binary, mut refused) = (0, 0, 0, 0);
    for (s, version) in eio_scenarios() {
        for (i, (from_client, body)) in polling_bodies(&s).into_iter().enumerate() {
            let ctx = format!("{} polling body {i} {:?}", s.name, String::from_utf8_lossy(&body));
            let binary_form = version == EioVersion::V3 && body[0] <= 1;
            match engineio::decode_payload(version, &body, MAX) {
                Ok(packets) => {
                    assert!(!has_binary_packet(version, &body), "{ctx}");
                    let texts: Vec<String> = packets
                        .iter()
                        .map(|p| format!("{}{}", char::from(p.kind.as_byte()), p.data))
                        .collect();
                    for t in &texts {
                        check_eio(version, from_client, t, &ctx);
                        opens += usize::from(t.starts_with('0'));
                    }
                    if !binary_form {
                        // shaddock writes the text forms byte for byte as the recorded peers.
                        let again = written(|out| {
                            engineio::encode_payload(version, texts.iter().map(String::as_str), out)
                        });
                        assert_eq!(again, body, "{ctx}: encode_payload");
                    }
                    decoded += 1;
                }
                Err(EioError::Binary) => {
                    assert!(has_binary_packet(version, &body), "{ctx}");
                    binary += 1;
                }
                Err(e) => {
                    // The one body the recorder sent on purpose that no codec reads.
                    assert_eq!(body, b"zzz", "{ctx}: {e}");
                    let want = match version {
                        EioVersion::V3 => EioError::LengthNotDigits,
                        EioVersion::V4 => EioError::UnknownType('z'),
                    };
                    assert_eq!(e, want, "{ctx}");
                    refused += 1;
                }
            }
        }
    }
    assert!(
        decoded > 150 && opens > 25 && binary >= 4 && refused == 3,
        "{decoded} {opens} {binary} {refused}"
    );
}

/// Engine.IO 3 payloads cut anywhere: whole packets decode, a cut inside one is an error.
#[test]
fn eio3_payload_prefixes() {
    for (s, version) in eio_scenarios() {
        if version != EioVersion::V3 {
            continue;
        }
        for (_, body) in polling_bodies(&s) {
            let Ok(whole) = engineio::decode_payload(version, &body, MAX) else { continue };
            if body[0] <= 1 {
                continue;
            }
            let text = std::str::from_utf8(&body).expect("text payload");
            // Byte offsets where each packet ends.
            let mut ends = Vec::new();
            let mut rest = text;
            while let Some((len, tail)) = rest.split_once(':') {
                let units: usize = len.parse().expect("length");
                let (_, after) =
                    shaddock::protocol::socketio::split_utf16(tail, units).expect("packet");
                ends.push(text.len() - after.len());
                rest = after;
            }
            assert_eq!(ends.len(), whole.len(), "{}", s.name);
            for cut in 1..text.len() {
                let Some(prefix) = text.get(..cut) else { continue };
                let got = engineio::decode_payload(version, prefix.as_bytes(), MAX);
                match ends.iter().position(|&e| e == cut) {
                    Some(k) => {
                        assert_eq!(got.as_deref(), Ok(&whole[..=k]), "{}: {prefix:?}", s.name)
                    }
                    None => assert!(got.is_err(), "{}: {prefix:?} decoded", s.name),
                }
            }
        }
    }
}

/// The HTTP error answers of engine.io 1.8.2, 3.6.2 and 6.6: status, content type and body.
#[test]
fn eio_http_error_bodies() {
    let mut seen = Vec::new();
    for (s, _) in eio_scenarios() {
        for ev in s.events.iter().filter(|ev| is(ev, "http", "s2c")) {
            let st = status(ev);
            if st < 400 {
                continue;
            }
            let b = body(ev);
            let ctx =
                format!("{} {:?} -> {st} {:?}", s.name, answers(ev), String::from_utf8_lossy(&b));
            match header(ev, "content-type") {
                Some("application/json") => {
                    let v: Value = serde_json::from_slice(&b).expect("error JSON");
                    let code = match v["code"].as_u64() {
                        Some(0) => HttpErrorCode::TransportUnknown,
                        Some(1) => HttpErrorCode::SessionIdUnknown,
                        Some(2) => HttpErrorCode::BadHandshakeMethod,
                        Some(3) => HttpErrorCode::BadRequest,
                        Some(4) => HttpErrorCode::Forbidden,
                        Some(5) => HttpErrorCode::UnsupportedProtocolVersion,
                        other => panic!("{ctx}: code {other:?}"),
                    };
                    assert_eq!(written(|out| code.encode_body(out)), b, "{ctx}");
                    assert_eq!(code.status(), st, "{ctx}");
                    seen.push(code);
                }
                // A WebSocket upgrade with an unknown sid: the message alone, as text/html.
                Some("text/html") => {
                    assert_eq!(st, 400, "{ctx}");
                    assert_eq!(b, HttpErrorCode::SessionIdUnknown.message().as_bytes(), "{ctx}");
                }
                // A second concurrent poll: 400 (engine.io 6) or 500 (3.x, 1.8), no body.
                None => assert!(b.is_empty() && matches!(st, 400 | 500), "{ctx}"),
                Some(other) => panic!("{ctx}: content type {other}"),
            }
        }
    }
    for code in [
        HttpErrorCode::TransportUnknown,
        HttpErrorCode::SessionIdUnknown,
        HttpErrorCode::BadHandshakeMethod,
        HttpErrorCode::UnsupportedProtocolVersion,
    ] {
        assert!(seen.contains(&code), "{code:?} never recorded");
    }
}

/// What the server side of shaddock has to reproduce, read from the recordings.
#[test]
fn eio_recorded_server_behaviour() {
    for (s, version) in eio_scenarios() {
        let responses: Vec<&Value> = s.events.iter().filter(|e| is(e, "http", "s2c")).collect();
        for ev in &responses {
            let line = answers(ev);
            let t = target(line);
            if status(ev) != 200 || !t.contains("transport=polling") || t.contains("j=0") {
                continue;
            }
            let ctx = format!("{} {line}", s.name);
            let ct = header(ev, "content-type").expect("content type");
            if line.starts_with("POST ") {
                assert_eq!((ct, body(ev).as_slice()), ("text/html", &b"ok"[..]), "{ctx}");
            } else if ct != "application/octet-stream" {
                assert_eq!(ct, "text/plain; charset=UTF-8", "{ctx}");
            }
            // Every polling answer carries its length; none is chunked.
            let len: usize = header(ev, "content-length").expect("length").parse().unwrap();
            assert_eq!(len, body(ev).len(), "{ctx}");
            assert_eq!(header(ev, "transfer-encoding"), None, "{ctx}");
            // The Connection header follows the request's.
            let conn = header(ev, "connection").expect("connection").to_ascii_lowercase();
            assert!(conn == "close" || conn == "keep-alive", "{ctx}");
            if conn == "keep-alive" {
                assert_eq!(header(ev, "keep-alive"), Some("timeout=5"), "{ctx}");
            }
        }
        // The first body of a polling handshake: socket.io 2.5.1 (and 4.x for EIO 3) put the
        // 40 after the open packet; Pomelo's engine.io 1.8.2 and EIO 4 send the open alone.
        let first = responses.iter().find(|ev| {
            let t = target(answers(ev));
            t.contains("transport=polling")
                && !t.contains("sid=")
                && !t.contains("j=0")
                && status(ev) == 200
        });
        if let Some(first) = first {
            let b = body(first);
            let pomelo_binary = b.first() == Some(&0);
            let packets = engineio::decode_payload(version, &b, MAX).expect("handshake body");
            let kinds: Vec<(PacketType, &str)> = packets
                .iter()
                .map(|p| (p.kind, if p.kind == PacketType::Open { "" } else { p.data }))
                .collect();
            let socketio2 = s.name.starts_with("eio3-") && !s.name.contains("-vs-sio4-");
            let want = if socketio2 {
                vec![(PacketType::Open, ""), (PacketType::Message, "0")]
            } else {
                vec![(PacketType::Open, "")]
            };
            assert_eq!(kinds, want, "{}: {:?}", s.name, String::from_utf8_lossy(&b));
            assert!(!pomelo_binary || s.name.starts_with("pomelo"), "{}", s.name);
        }
    }
}

/// During an upgrade the pending GET is answered with a noop once the probe has succeeded.
#[test]
fn eio_upgrade_releases_the_pending_poll_with_a_noop() {
    for (s, version) in eio_scenarios() {
        if !s.name.ends_with("polling-upgrade") {
            continue;
        }
        let probe = s.events.iter().position(|e| ws_text(e) == Some("3probe")).expect("3probe");
        let upgrade = s.events.iter().position(|e| ws_text(e) == Some("5")).expect("5");
        assert!(probe < upgrade, "{}", s.name);
        let noop = s.events[probe..upgrade]
            .iter()
            .find(|e| is(e, "http", "s2c") && answers(e).starts_with("GET "))
            .unwrap_or_else(|| panic!("{}: no poll answered between 3probe and 5", s.name));
        let want: &[u8] = if version == EioVersion::V3 { b"1:6" } else { b"6" };
        assert_eq!(body(noop), want, "{}", s.name);
        let decoded = engineio::decode_payload(version, want, MAX).unwrap();
        assert_eq!(decoded[0].kind, PacketType::Noop);
        assert_eq!(written(|out| engineio::encode_payload(version, ["6"], out)), want);
    }
}

// ------------------------------------------------------------------ socket.io 0.9

/// 0.9's packet fields put back together (`type:id:endpoint[:data]`).
fn v09_rebuilt(p: &v09::V09Packet<'_>) -> String {
    let mut s = format!("{}:{}:{}", char::from(p.kind.as_byte()), p.id, p.endpoint);
    if !p.data.is_empty() {
        s.push(':');
        s.push_str(p.data);
    }
    s
}

fn check_v09(packet_text: &str, ctx: &str) {
    let p = v09::decode(packet_text).unwrap_or_else(|e| panic!("{ctx}: {packet_text:?}: {e}"));
    assert_eq!(p.kind.as_byte(), packet_text.as_bytes()[0], "{ctx}");
    assert_eq!(v09_rebuilt(&p), packet_text, "{ctx}: fields put back together");
    if p.id.is_empty() {
        let again = text(|out| v09::encode(p.kind, p.endpoint, p.data, out));
        assert_eq!(again, packet_text, "{ctx}: v09::encode");
    }
    if p.kind == v09::V09Type::Event {
        let arg = v09::event_message(&p).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let v: Value = serde_json::from_str(p.data).expect("event JSON");
        let js_arg = (v["name"] == "message").then(|| v["args"][0].as_str()).flatten();
        assert_eq!(arg.as_deref(), js_arg, "{ctx}");
    }
    if p.kind == v09::V09Type::Error {
        // `7:::1+0`: client not handshaken, reconnect.
        assert_eq!(p.data, "1+0", "{ctx}");
        let mine = text(|out| {
            v09::encode_error(
                v09::V09ErrorReason::ClientNotHandshaken,
                Some(v09::V09Advice::Reconnect),
                out,
            )
        });
        assert_eq!(mine, packet_text, "{ctx}");
    }
}

/// The 0.9 handshake body `sid:heartbeat timeout:close timeout:transports`, re-encoded.
fn check_v09_handshake(body: &str, ctx: &str) {
    let fields: Vec<&str> = body.split(':').collect();
    assert_eq!(fields.len(), 4, "{ctx}");
    let secs = |f: &str| f.parse::<u32>().expect("seconds");
    let transports: Vec<&str> = fields[3].split(',').collect();
    let mine = text(|out| {
        v09::encode_handshake(fields[0], secs(fields[1]), secs(fields[2]), &transports, out)
    });
    assert_eq!(mine, body, "{ctx}");
}

#[test]
fn v09_frames_and_polling_bodies() {
    let (mut frames, mut bodies, mut handshakes) = (0, 0, 0);
    for s in scenarios().into_iter().filter(|s| s.proto == Proto::V09) {
        for (i, ev) in s.events.iter().enumerate() {
            let ctx = format!("{} event {i}", s.name);
            if let Some(payload) = ws_text(ev) {
                // One packet per frame.
                assert_eq!(v09::decode_frames(payload, MAX).unwrap(), vec![payload], "{ctx}");
                check_v09(payload, &ctx);
                frames += 1;
                continue;
            }
            if ev["layer"] != "http" {
                continue;
            }
            let from_client = ev["dir"] == "c2s";
            let line = if from_client { start_line(ev) } else { answers(ev) };
            let t = target(line);
            let b = String::from_utf8(body(ev)).expect("0.9 bodies are text");
            if (from_client && !line.starts_with("POST ")) || (!from_client && status(ev) != 200) {
                continue;
            }
            let handshake = t.starts_with("/socket.io/1/?")
                || t == "/socket.io/1/"
                || t.starts_with("/socket.io/1/xhr-polling/?");
            if handshake && !from_client {
                if header(ev, "content-type") == Some("text/plain") {
                    check_v09_handshake(&b, &ctx);
                    handshakes += 1;
                }
                continue;
            }
            if handshake || !t.starts_with("/socket.io/1/xhr-polling/") {
                continue;
            }
            if !from_client && line.starts_with("POST ") {
                // 0.9 answers a POST with the text 1.
                assert_eq!(b, "1", "{ctx}");
                continue;
            }
            let packets = v09::decode_frames(&b, MAX).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            for p in &packets {
                check_v09(p, &ctx);
            }
            // One packet as is, several framed with U+FFFD and UTF-16 lengths.
            assert_eq!(b.starts_with('\u{fffd}'), packets.len() > 1, "{ctx}");
            let again = text(|out| v09::encode_frames(packets.iter().copied(), out));
            assert_eq!(again, b, "{ctx}: encode_frames");
            for cut in 1..b.len() {
                let Some(prefix) = b.get(..cut) else { continue };
                if packets.len() > 1 {
                    let got = v09::decode_frames(prefix, MAX);
                    let whole = got.as_ref().is_ok_and(|got| {
                        got.len() < packets.len() && got.as_slice() == &packets[..got.len()]
                    });
                    assert!(got.is_err() || whole, "{ctx}: {prefix:?}");
                }
            }
            bodies += 1;
        }
    }
    assert!(frames > 30 && bodies > 25 && handshakes >= 8, "{frames} {bodies} {handshakes}");
}

/// 0.9 over xhr-polling: no heartbeats, a noop after the polling duration, the length of a
/// framed packet counted in UTF-16 code units.
#[test]
fn v09_recorded_server_behaviour() {
    let s = scenarios().into_iter().find(|s| s.name == "v09-xhr-polling").unwrap();
    let polls: Vec<&Value> = s
        .events
        .iter()
        .filter(|e| is(e, "http", "s2c") && answers(e).starts_with("GET /socket.io/1/xhr-polling/"))
        .collect();
    assert!(polls.iter().all(|e| body(e) != b"2::"), "no heartbeats over polling");
    assert!(polls.iter().any(|e| body(e) == b"8::"));
    let batched: Vec<String> = polls
        .iter()
        .map(|e| String::from_utf8(body(e)).unwrap())
        .filter(|b| b.starts_with('\u{fffd}'))
        .collect();
    assert!(!batched.is_empty(), "a poll answered with several packets");
    // "3:::héllo ☃ 😀" is 19 bytes, 14 UTF-16 code units: 0.9 counts the latter.
    let framed = "\u{fffd}14\u{fffd}3:::héllo ☃ 😀";
    assert_eq!(utf16_len("3:::héllo ☃ 😀"), 14);
    assert!(batched.iter().any(|b| b.contains(framed)), "{batched:?}");
}

// ------------------------------------------------------------------ Pomelo

/// The elements of a top-level JSON array, as text.
fn json_array_elements(s: &str) -> Vec<&str> {
    let inner = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')).expect("array");
    let (mut out, mut depth, mut in_str, mut escaped, mut start) = (Vec::new(), 0, false, false, 0);
    for (i, c) in inner.char_indices() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner.is_empty() {
        out.push(&inner[start..]);
    }
    out
}

/// The text after `"body":` in a `{..,"body":<body>}` message.
fn body_json(message: &str) -> &str {
    let at = message.find(",\"body\":").expect("body") + ",\"body\":".len();
    &message[at..message.len() - 1]
}

/// Re-encodes a message the sioconnector sent: a response, push, kick or batch.
fn pomelo_reencoded(message: &str) -> String {
    let mut out = String::new();
    if message.starts_with('[') {
        let parts: Vec<String> =
            json_array_elements(message).into_iter().map(pomelo_reencoded).collect();
        pomelo::encode_batch(parts.iter().map(String::as_str), &mut out);
        return out;
    }
    let v: Value = serde_json::from_str(message).expect("message JSON");
    if let Some(id) = v.get("id") {
        let id = u32::try_from(id.as_u64().expect("id")).expect("u32");
        pomelo::encode_response(id, body_json(message), &mut out);
    } else if v["route"] == "onKick" {
        pomelo::encode_kick(v["reason"].as_str().expect("reason"), &mut out);
    } else {
        pomelo::encode_push(v["route"].as_str().expect("route"), body_json(message), &mut out);
    }
    out
}

/// The recorder's notes of what Pomelo's `Connector.decode` made of each message it got:
/// the message as the siosocket received it, and the decoded `{id, route, body}`.
fn connector_decodes(s: &Scenario) -> Vec<(String, Value)> {
    const HEAD: &str = "siosocket 'message' ";
    const SEP: &str = "; connector.decode() -> ";
    s.events
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter_map(|a| {
            let rest = a.strip_prefix(HEAD)?;
            let (m, d) = rest.split_once(SEP)?;
            Some((serde_json::from_str(m).ok()?, serde_json::from_str(d).ok()?))
        })
        .collect()
}

/// Every `"message"` argument in a Pomelo scenario, with its direction: from WebSocket
/// frames, and (when `polling`) from polling payloads.
fn pomelo_messages(s: &Scenario, polling: bool) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    for ev in &s.events {
        let Some(payload) = ws_text(ev) else { continue };
        let from_client = ev["dir"] == "c2s";
        if let Some(m) = check_eio(EioVersion::V3, from_client, payload, s.name) {
            out.push((from_client, m));
        }
    }
    if polling {
        for (from_client, b) in polling_bodies(s) {
            let Ok(packets) = engineio::decode_payload(EioVersion::V3, &b, MAX) else { continue };
            for p in packets.iter().filter(|p| p.kind == PacketType::Message) {
                if let Some(m) = check_sio(EioVersion::V3, from_client, p.data, s.name) {
                    out.push((from_client, m));
                }
            }
        }
    }
    out
}

fn check_request(message: &str, decoded: &Value, ctx: &str) {
    let r = pomelo::decode_request(message).unwrap_or_else(|e| panic!("{ctx}: {e}"));
    assert_eq!(u64::from(r.id), decoded["id"].as_u64().expect("id"), "{ctx}");
    assert_eq!(r.route, decoded["route"], "{ctx}");
    let body: Value = serde_json::from_str(r.body).expect("body JSON");
    assert_eq!(body, decoded["body"], "{ctx}");
    assert_eq!(pomelo::encode_request(r.id, r.route, r.body).unwrap(), message, "{ctx}");
}

#[test]
fn pomelo_sioconnector_messages() {
    let (mut requests, mut answers_seen) = (0, 0);
    let mut kinds = Vec::new();
    for s in scenarios().into_iter().filter(|s| s.name.starts_with("pomelo")) {
        let decodes = connector_decodes(&s);
        for (from_client, m) in pomelo_messages(&s, true) {
            let ctx = format!("{}: {m:?}", s.name);
            if from_client {
                // Non-ASCII text over polling is UTF-8-encoded by engine.io-parser 1.x: see
                // `pomelo_polling_utf8_from_engine_io_1x` below.
                let Some((_, decoded)) = decodes.iter().find(|(got, _)| *got == m) else {
                    assert!(m.chars().any(|c| c >= '\u{80}'), "{ctx}: never decoded by Pomelo");
                    continue;
                };
                check_request(&m, decoded, &ctx);
                requests += 1;
            } else {
                assert_eq!(pomelo_reencoded(&m), m, "{ctx}");
                let kind = if m.starts_with('[') {
                    "batch"
                } else if m.starts_with("{\"id\":") {
                    "response"
                } else if m.contains("\"onKick\"") {
                    "kick"
                } else {
                    "push"
                };
                kinds.push(kind);
                answers_seen += 1;
            }
        }
        // Over WebSocket every message the connector decoded was read by us the same way.
        if s.name.ends_with("-websocket") || s.name.ends_with("-polling-upgrade") {
            let ours: Vec<String> =
                pomelo_messages(&s, false).into_iter().filter(|m| m.0).map(|m| m.1).collect();
            let ws_decodes: Vec<&(String, Value)> =
                decodes.iter().filter(|(m, _)| ours.contains(m)).collect();
            assert_eq!(ws_decodes.len(), ours.len(), "{}", s.name);
            assert!(ours.len() >= 3, "{}", s.name);
        }
    }
    for kind in ["batch", "response", "kick", "push"] {
        assert!(kinds.contains(&kind), "no {kind} recorded");
    }
    assert!(requests >= 8 && answers_seen >= 28, "{requests} {answers_seen}");
}

/// One whole frame end to end: the push shaddock builds for a Pomelo client is the recorded
/// sioconnector's frame, byte for byte.
#[test]
fn pomelo_push_frame_end_to_end() {
    let s = scenarios().into_iter().find(|s| s.name == "pomelo-2.2.7-eio3-websocket").unwrap();
    let frames: Vec<&str> =
        s.events.iter().filter(|e| e["dir"] == "s2c").filter_map(ws_text).collect();
    let mut push = String::new();
    pomelo::encode_push("onMsg", r#"{"msg":"héllo ☃ 😀"}"#, &mut push);
    let frame = text(|out| packet::encode_message_event(&push, out));
    assert!(frames.contains(&frame.as_str()), "{frame:?} not among {frames:?}");
    let mut kick = String::new();
    pomelo::encode_kick("kick", &mut kick);
    let frame = text(|out| packet::encode_message_event(&kick, out));
    let at = frames.iter().position(|f| *f == frame).expect("kick frame");
    // The kick is followed by the DISCONNECT.
    assert_eq!(frames[at + 1], text(packet::encode_disconnect));
}

/// engine.io-parser 1.x (Pomelo 2.2.7's engine.io 1.8.2, socket.io-client 1.7.2) UTF-8-encodes
/// each packet of a polling payload into a string of bytes and counts lengths over it
/// (`socketio.engine_io_1x_polling`): undone with `from_byte_string`, done with
/// `to_byte_string`, both ways byte for byte against the recordings.
#[test]
fn pomelo_polling_utf8_from_engine_io_1x() {
    for name in ["pomelo-2.2.7-eio3-polling", "pomelo-2.2.7-eio3-polling-xhr2"] {
        let s = scenarios().into_iter().find(|s| s.name == name).unwrap();
        let mut ours = Vec::new();
        for (from_client, b) in polling_bodies(&s) {
            let Ok(packets) = engineio::decode_payload(EioVersion::V3, &b, MAX) else { continue };
            for p in packets.iter().filter(|p| from_client && p.kind == PacketType::Message) {
                let data = engineio::from_byte_string(p.data).expect("engine.io 1.x UTF-8");
                if let Some(m) = check_sio(EioVersion::V3, true, &data, s.name) {
                    ours.push(m);
                }
            }
        }
        let decodes = connector_decodes(&s);
        assert!(!decodes.is_empty(), "{name}: no Pomelo decodes recorded");
        for (m, decoded) in decodes {
            assert!(
                ours.contains(&m),
                "{name}: Pomelo decoded {m:?} ({decoded}), shaddock did not"
            );
            check_request(&m, &decoded, name);
        }
    }
    // And the other way: what engine.io 1.8.2 writes for a push with non-ASCII text.
    let s = scenarios().into_iter().find(|s| s.name == "pomelo-2.2.7-eio3-polling").unwrap();
    let mut push = String::new();
    pomelo::encode_push("onMsg", r#"{"msg":"héllo ☃ 😀"}"#, &mut push);
    let packet = text(|out| packet::encode_message_event(&push, out));
    let bytes = engineio::to_byte_string(&packet);
    let mine = written(|out| engineio::encode_payload_item(EioVersion::V3, &bytes, out));
    let recorded: Vec<Vec<u8>> = polling_bodies(&s).into_iter().map(|b| b.1).collect();
    assert!(
        recorded.iter().any(|r| r.windows(mine.len()).any(|w| w == mine.as_slice())),
        "{:?} is not what engine.io 1.8.2 writes",
        String::from_utf8_lossy(&mine)
    );
}

// ------------------------------------------------------------------ partial input

/// Every recorded request head (rebuilt from the recorded fields; `Host` and a few other
/// headers were not recorded), fed to `http::decode_head` and, for upgrades,
/// `upgrade::decode_request`, cut at every byte; the WebSocket accept key of each upgrade
/// is the recorded server's.
#[test]
fn request_heads_at_every_cut() {
    let mut heads = 0;
    for s in scenarios() {
        for (i, ev) in s.events.iter().enumerate() {
            if !is(ev, "http", "c2s") {
                continue;
            }
            let ctx = format!("{} event {i}", s.name);
            let line = start_line(ev);
            let mut head = format!("{line}\r\nHost: 127.0.0.1\r\n");
            for h in ev["http"]["headers"].as_array().unwrap() {
                head.push_str(&format!(
                    "{}: {}\r\n",
                    h[0].as_str().unwrap(),
                    h[1].as_str().unwrap()
                ));
            }
            head.push_str("\r\n");
            let mut wire = head.clone().into_bytes();
            wire.extend(body(ev));
            for cut in 0..head.len() {
                assert_eq!(http::decode_head(&wire[..cut], MAX_HEAD), Ok(None), "{ctx} cut {cut}");
            }
            let got = http::decode_head(&wire, MAX_HEAD).unwrap().expect("whole head");
            assert_eq!(got.len, head.len(), "{ctx}");
            let t = target(line);
            let (path, query) = t.split_once('?').unwrap_or((t, ""));
            assert_eq!(
                (got.method, got.path, got.query),
                (line.split(' ').next().unwrap(), path, query),
                "{ctx}"
            );
            assert_eq!(http::request_path(&wire), Some(path), "{ctx}");
            for name in ["EIO", "transport", "sid", "t", "b64", "j"] {
                let want = query
                    .split('&')
                    .find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v));
                assert_eq!(got.query_param(name), want, "{ctx} {name}");
            }
            if let Some(eio) = got.query_param("EIO") {
                let v = EioVersion::from_query(eio);
                assert_eq!(v.is_some(), matches!(eio, "3" | "4"), "{ctx}");
            }
            let up = header(ev, "upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
            assert_eq!(got.is_upgrade(), up, "{ctx}");
            let content_length = header(ev, "content-length").unwrap_or("0");
            assert_eq!(got.has_body(), content_length != "0", "{ctx}");
            if up {
                for cut in 0..head.len() {
                    assert_eq!(upgrade::decode_request(&wire[..cut], MAX_HEAD), Ok(None), "{ctx}");
                }
                let (req, len) = upgrade::decode_request(&wire, MAX_HEAD).unwrap().unwrap();
                assert_eq!((req.path, len), (t, head.len()), "{ctx}");
                assert_eq!(Some(req.key), header(ev, "sec-websocket-key"), "{ctx}");
                let answer = s.events.iter().find(|a| {
                    is(a, "http", "s2c") && a["conn"] == ev["conn"] && answers(a) == line
                });
                if let Some(answer) = answer.filter(|a| status(a) == 101) {
                    let accept = header(answer, "sec-websocket-accept");
                    assert_eq!(Some(upgrade::accept_key(req.key).as_str()), accept, "{ctx}");
                }
            }
            heads += 1;
        }
    }
    assert!(heads > 250, "{heads}");
}

/// The wire bytes of a recorded frame: header, masking key, masked payload.
fn frame_wire(ev: &Value) -> Vec<u8> {
    let ws = &ev["ws"];
    let mut wire = hex(ws["head_hex"].as_str().expect("head_hex"));
    let mut payload = bytes_of(&ws["payload"]);
    if let Some(mask) = ws["mask_hex"].as_str() {
        let mask = hex(mask);
        wire.extend_from_slice(&mask);
        frame::apply_mask(&mut payload, [mask[0], mask[1], mask[2], mask[3]]);
    }
    wire.extend(payload);
    wire
}

fn opcode(name: &str) -> OpCode {
    match name {
        "text" => OpCode::Text,
        "binary" => OpCode::Binary,
        "close" => OpCode::Close,
        "ping" => OpCode::Ping,
        "pong" => OpCode::Pong,
        other => panic!("opcode {other}"),
    }
}

/// Frames as opcode and unmasked payload.
type Frames = Vec<(OpCode, Vec<u8>)>;

/// Decodes every frame of `stream` when it arrives in two parts, cut at `cut`.
fn decode_stream(stream: &[u8], cut: usize) -> Frames {
    let mut buf = stream[..cut].to_vec();
    let mut rest = &stream[cut..];
    let mut out = Vec::new();
    loop {
        match frame::decode_client_frame(&mut buf, MAX_HEAD).expect("valid frame") {
            Some((f, used)) => {
                assert!(f.fin);
                out.push((f.opcode, f.payload.to_vec()));
                buf.drain(..used);
            }
            None if rest.is_empty() => break,
            None => {
                buf.extend_from_slice(rest);
                rest = &[];
            }
        }
    }
    assert!(buf.is_empty(), "bytes left over");
    out
}

/// Client frames (masked) through `decode_client_frame`, each connection's stream cut at
/// every byte; server frames (unmasked) as `encode_frame` / `encode_close` write them.
#[test]
fn websocket_frames_at_every_cut() {
    let (mut client, mut server) = (0, 0);
    for s in scenarios() {
        let mut streams: HashMap<u64, (Vec<u8>, Frames)> = HashMap::new();
        for (i, ev) in s.events.iter().enumerate() {
            if ev["layer"] != "ws" {
                continue;
            }
            let ctx = format!("{} event {i}", s.name);
            let ws = &ev["ws"];
            assert_eq!(ws["fin"], Value::Null, "{ctx}: every recorded frame is whole");
            assert_eq!(ws["rsv1"], Value::Null, "{ctx}: nothing was compressed");
            let op = opcode(ws["opcode"].as_str().unwrap());
            let payload = bytes_of(&ws["payload"]);
            let wire = frame_wire(ev);
            if ev["dir"] == "c2s" {
                let mask = hex(ws["mask_hex"].as_str().expect("client frames are masked"));
                let mask = [mask[0], mask[1], mask[2], mask[3]];
                let mine = written(|out| frame::encode_client_frame(true, op, &payload, mask, out));
                assert_eq!(mine, wire, "{ctx}: encode_client_frame");
                let conn = ev["conn"].as_u64().unwrap();
                let entry = streams.entry(conn).or_default();
                entry.0.extend_from_slice(&wire);
                entry.1.push((op, payload));
                client += 1;
            } else {
                assert_eq!(ws["masked"], false, "{ctx}");
                let mine = match (op, ws["close_code"].as_u64()) {
                    (OpCode::Close, Some(code)) => {
                        let reason = ws["close_reason"].as_str().unwrap_or_default();
                        written(|out| frame::encode_close(code as u16, reason, out))
                    }
                    _ => written(|out| frame::encode_frame(op, &payload, out)),
                };
                assert_eq!(mine, wire, "{ctx}: server frame");
                server += 1;
            }
        }
        for (conn, (stream, want)) in streams {
            for cut in 0..=stream.len() {
                assert_eq!(decode_stream(&stream, cut), want, "{} conn {conn} cut {cut}", s.name);
            }
        }
    }
    assert!(client > 100 && server > 100, "{client} {server}");
}

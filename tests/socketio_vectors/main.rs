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

mod engine_io;
mod partial_input;
mod pomelo;
mod v09;

use base64::Engine as _;
use bytes::BytesMut;
use serde_json::Value;
use shaddock::protocol::socketio::engineio::{self, EioVersion, Open, PacketType};
use shaddock::protocol::socketio::packet::{self, SioPacketType};

/// More packets than any recorded body holds.
const MAX: usize = 1024;

macro_rules! scenario {
    ($name:literal) => {
        ($name, include_str!(concat!("../data/socketio/", $name, ".json")))
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

//! Pomelo 2.2.7's sioconnector: the requests it decoded read the same by shaddock, its
//! responses, pushes, kicks and batches re-encoded byte for byte, and engine.io 1.x's UTF-8
//! byte strings in polling payloads undone and done again.

use serde_json::Value;
use shaddock::protocol::socketio::engineio::{self, EioVersion, PacketType};
use shaddock::protocol::socketio::{packet, pomelo};

use crate::{
    MAX, Scenario, check_eio, check_sio, polling_bodies, scenarios, text, written, ws_text,
};

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

//! socket.io 0.9.19: its packets, handshake bodies and U+FFFD-framed polling bodies decoded
//! and re-encoded, and how the recorded server behaves over xhr-polling.

use serde_json::Value;
use shaddock::protocol::socketio::{utf16_len, v09};

use crate::{
    MAX, Proto, answers, body, header, is, scenarios, start_line, status, target, text, ws_text,
};

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

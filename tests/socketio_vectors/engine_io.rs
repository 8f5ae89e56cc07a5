//! Engine.IO 3 and 4 (engine.io 1.8.2, 3.6.2 and 6.6): every WebSocket frame and polling
//! payload decoded and re-encoded, payload prefixes, the HTTP error answers, and what the
//! recorded servers do that shaddock has to reproduce (polling answers' headers, the first
//! handshake body, the noop that releases a poll during an upgrade).

use std::collections::HashMap;

use serde_json::Value;
use shaddock::protocol::socketio::engineio::{
    self, EioError, EioVersion, HttpErrorCode, PacketType,
};

use crate::{
    MAX, answers, body, check_eio, eio_scenarios, header, is, polling_bodies, status, target,
    written, ws_text,
};

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

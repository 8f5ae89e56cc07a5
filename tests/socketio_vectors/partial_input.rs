//! Partial input: every recorded request head and every connection's client WebSocket
//! frames, fed to shaddock's decoders cut at every byte; server frames re-encoded.

use std::collections::HashMap;

use serde_json::Value;
use shaddock::protocol::http;
use shaddock::protocol::socketio::engineio::EioVersion;
use shaddock::protocol::websocket::frame::{self, OpCode};
use shaddock::protocol::websocket::upgrade;

use crate::{answers, body, bytes_of, header, is, scenarios, start_line, status, target, written};

/// Larger than any recorded head or frame.
const MAX_HEAD: usize = 16 * 1024;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

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

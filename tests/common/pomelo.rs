//! An independent, hand-written codec for Pomelo's hybrid wire format, as the tests' client sees it.
//!
//! Written from `shared/protocol/pomelo-hybrid.md` and deliberately sharing no code with
//! `shaddock::protocol`: a test that decodes the server's bytes with the server's own codec would
//! prove only that the codec agrees with itself.
//!
//! ```text
//! package:  type u8 | length u24 BE | body
//! message:  flag u8 | [id: LE base-128 varint] | [route: u8 len + UTF-8, or u16 BE dict code] | body
//!           flag bit0 = route is a dict code, bits1..3 = message type
//! ```

use std::collections::HashMap;

use serde_json::Value;

/// Package type 1: handshake, both directions.
pub const HANDSHAKE: u8 = 1;
/// Package type 2: the client's handshake acknowledgement.
pub const HANDSHAKE_ACK: u8 = 2;
/// Package type 3: heartbeat, both directions, empty body.
pub const HEARTBEAT: u8 = 3;
/// Package type 4: a message (request, notify, response, push).
pub const DATA: u8 = 4;
/// Package type 5: kick, server to client, body `{"reason": ...}`.
pub const KICK: u8 = 5;

/// Message type 0 in the flag's bits 1..3.
pub const MSG_REQUEST: u8 = 0;
/// Message type 2.
pub const MSG_RESPONSE: u8 = 2;
/// Message type 3.
pub const MSG_PUSH: u8 = 3;

/// The largest body a 3-byte length can declare.
pub const MAX_BODY: usize = 0xff_ffff;

/// Encodes one package: 4-byte header and body.
pub fn encode_package(kind: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() <= MAX_BODY, "package body of {} bytes does not fit 3 bytes", body.len());
    let len = body.len() as u32;
    let mut out = Vec::with_capacity(4 + body.len());
    out.push(kind);
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(body);
    out
}

/// Splits one complete package off the front of `buf`: `Some((type, body, consumed))`, or `None`
/// when `buf` does not yet hold the whole package.
pub fn decode_package(buf: &[u8]) -> Option<(u8, &[u8], usize)> {
    if buf.len() < 4 {
        return None;
    }
    let len = (usize::from(buf[1]) << 16) | (usize::from(buf[2]) << 8) | usize::from(buf[3]);
    let end = 4 + len;
    if buf.len() < end {
        return None;
    }
    Some((buf[0], &buf[4..end], end))
}

/// Little-endian base-128 varint, low 7 bits first.
pub fn encode_varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// Decodes a varint at the front of `buf`: `(value, bytes used)`.
pub fn decode_varint(buf: &[u8]) -> Result<(u64, usize), String> {
    let mut n = 0u64;
    for (i, &b) in buf.iter().enumerate().take(10) {
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((n, i + 1));
        }
    }
    Err(format!("unterminated varint in {:02x?}", &buf[..buf.len().min(10)]))
}

/// The body of a REQUEST message with an uncompressed route.
pub fn encode_request(id: u64, route: &str, body: &[u8]) -> Vec<u8> {
    assert!(id != 0, "a request id is never 0");
    assert!(route.len() <= 255, "an uncompressed route is at most 255 bytes");
    let mut out = vec![MSG_REQUEST << 1];
    encode_varint(id, &mut out);
    out.push(route.len() as u8);
    out.extend_from_slice(route.as_bytes());
    out.extend_from_slice(body);
    out
}

/// The body of a REQUEST message whose route is a dictionary code (what the JS client sends).
pub fn encode_request_with_code(id: u64, code: u16, body: &[u8]) -> Vec<u8> {
    assert!(id != 0, "a request id is never 0");
    let mut out = vec![(MSG_REQUEST << 1) | 1];
    encode_varint(id, &mut out);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A message from the server, decoded from a DATA package's body.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    /// A response to request `id`; responses carry no route.
    Response { id: u64, body: Value },
    /// A push on `route` (a dict code already resolved to its route).
    Push { route: String, body: Value },
}

/// Decodes the body of a DATA package sent by the server. `code_to_route` is the handshake's
/// dictionary, inverted.
pub fn decode_message(
    data: &[u8],
    code_to_route: &HashMap<u16, String>,
) -> Result<ServerMessage, String> {
    decode_message_with(data, code_to_route, &|_, body| decode_json(body))
}

/// Whose body a [`decode_message_with`] decoder is handed.
#[derive(Debug, Clone, Copy)]
pub enum BodyOf<'a> {
    /// The response to the request with this id.
    Response(u64),
    /// A push on this route.
    Push(&'a str),
}

/// Decodes a message body, given whose it is.
pub type BodyDecoder<'a> = dyn Fn(BodyOf<'_>, &[u8]) -> Result<Value, String> + 'a;

/// [`decode_message`] with the bodies decoded by `body` (JSON, or protobuf for a route with a
/// proto).
pub fn decode_message_with(
    data: &[u8],
    code_to_route: &HashMap<u16, String>,
    body: &BodyDecoder<'_>,
) -> Result<ServerMessage, String> {
    let (&flag, rest) = data.split_first().ok_or("empty DATA package")?;
    if flag & 0xe0 != 0 {
        return Err(format!("message flag {flag:#04x} sets reserved bits"));
    }
    let compressed = flag & 1 == 1;
    let kind = (flag >> 1) & 0x07;
    match kind {
        MSG_RESPONSE => {
            if compressed {
                return Err(format!("a response carries no route, but flag {flag:#04x} says dict"));
            }
            let (id, used) = decode_varint(rest)?;
            if id == 0 {
                return Err("response with id 0".into());
            }
            Ok(ServerMessage::Response { id, body: body(BodyOf::Response(id), &rest[used..])? })
        }
        MSG_PUSH => {
            let (route, used) = if compressed {
                if rest.len() < 2 {
                    return Err("push truncated inside its route code".into());
                }
                let code = u16::from_be_bytes([rest[0], rest[1]]);
                let route = code_to_route.get(&code).ok_or_else(|| {
                    format!("push uses dict code {code}, not in the handshake dict")
                })?;
                (route.clone(), 2)
            } else {
                let (&len, tail) = rest.split_first().ok_or("push without a route")?;
                let len = usize::from(len);
                if tail.len() < len {
                    return Err("push truncated inside its route".into());
                }
                let route = std::str::from_utf8(&tail[..len])
                    .map_err(|e| format!("push route is not UTF-8: {e}"))?;
                (route.to_owned(), 1 + len)
            };
            let body = body(BodyOf::Push(&route), &rest[used..])?;
            Ok(ServerMessage::Push { route, body })
        }
        other => Err(format!("server sent message type {other} (flag {flag:#04x})")),
    }
}

/// Decodes a KICK package body: `{"reason": "..."}`; an empty body (Pomelo 0.4) is reason "".
pub fn decode_kick(body: &[u8]) -> Result<String, String> {
    if body.is_empty() {
        return Ok(String::new());
    }
    let v = decode_json(body)?;
    v.get("reason")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("kick body without a string reason: {v}"))
}

pub fn decode_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| {
        format!(
            "body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )
    })
}

/// Reads the route dictionary out of a handshake response (`sys.dict`, or `sys.routeToCode`) and
/// inverts it to code → route.
pub fn dict_from_handshake(response: &Value) -> HashMap<u16, String> {
    let sys = &response["sys"];
    let dict = sys.get("dict").or_else(|| sys.get("routeToCode"));
    let mut out = HashMap::new();
    if let Some(Value::Object(map)) = dict {
        for (route, code) in map {
            let code = code
                .as_u64()
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or_else(|| panic!("dict code for {route} is not a u16: {code}"));
            let previous = out.insert(code, route.clone());
            assert!(previous.is_none(), "dict code {code} used twice in {response}");
        }
    }
    out
}

/// Checks of this codec against the byte vectors in `shared/protocol/pomelo-hybrid.md`, so that the
/// client the other tests rely on is known to speak the spec and not merely the server.
#[cfg(test)]
mod spec_vectors {
    use super::*;
    use serde_json::json;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
    }

    #[test]
    fn request_enter_matches_spec_bytes() {
        let body = br#"{"role":"client","apikey":"k1","clientId":"c1"}"#;
        let pkg = encode_package(DATA, &encode_request(1, "connector.entryHandler.enter", body));
        let mut want = hex("04 00 00 4e 00 01 1c");
        want.extend_from_slice(b"connector.entryHandler.enter");
        want.extend_from_slice(body);
        assert_eq!(pkg, want);
    }

    #[test]
    fn dict_coded_request_matches_spec_bytes() {
        let body = br#"{"role":"client","apikey":"k1","clientId":"c1"}"#;
        let pkg = encode_package(DATA, &encode_request_with_code(1, 1, body));
        assert_eq!(&pkg[..8], hex("04 00 00 33 01 01 00 01").as_slice());
    }

    #[test]
    fn varint_matches_spec() {
        let mut out = Vec::new();
        encode_varint(300, &mut out);
        assert_eq!(out, [0xac, 0x02]);
        assert_eq!(decode_varint(&[0xac, 0x02, 0xff]).unwrap(), (300, 2));
    }

    #[test]
    fn response_push_and_kick_decode_from_spec_bytes() {
        let dict: HashMap<u16, String> = [(4, "onMsg".to_owned())].into();
        let response = hex(
            "04 00 00 1d 04 01 7b 22 63 6f 64 65 22 3a 32 30 30 2c 22 6d 73 67 22 3a 22 61 64 64 20 6f 6b 22 7d",
        );
        let plain_push =
            hex("04 00 00 13 06 05 6f 6e 4d 73 67 7b 22 6d 73 67 22 3a 22 68 69 22 7d");
        let coded_push = hex("04 00 00 0f 07 00 04 7b 22 6d 73 67 22 3a 22 68 69 22 7d");
        let kick = hex("05 00 00 11 7b 22 72 65 61 73 6f 6e 22 3a 22 6b 69 63 6b 22 7d");

        // All four back to back, as one read would return them.
        let stream = [response, plain_push, coded_push, kick].concat();
        let mut rest = stream.as_slice();
        let mut seen = Vec::new();
        while let Some((kind, body, used)) = decode_package(rest) {
            seen.push((kind, body.to_vec()));
            rest = &rest[used..];
        }
        assert!(rest.is_empty());
        assert_eq!(seen.len(), 4);
        assert_eq!(
            decode_message(&seen[0].1, &dict).unwrap(),
            ServerMessage::Response { id: 1, body: json!({"code": 200, "msg": "add ok"}) }
        );
        let hi = ServerMessage::Push { route: "onMsg".into(), body: json!({"msg": "hi"}) };
        assert_eq!(decode_message(&seen[1].1, &dict).unwrap(), hi);
        assert_eq!(decode_message(&seen[2].1, &dict).unwrap(), hi);
        assert_eq!(seen[3].0, KICK);
        assert_eq!(decode_kick(&seen[3].1).unwrap(), "kick");
    }

    #[test]
    fn a_split_package_is_incomplete_at_every_split_point() {
        let pkg = hex("04 00 00 13 06 05 6f 6e 4d 73 67 7b 22 6d 73 67 22 3a 22 68 69 22 7d");
        for cut in 0..pkg.len() {
            assert!(decode_package(&pkg[..cut]).is_none(), "complete at {cut}");
        }
        assert_eq!(decode_package(&pkg).unwrap().2, pkg.len());
    }
}

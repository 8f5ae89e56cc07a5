//! The WebSocket opening handshake, server side (RFC 6455 §4.2): an HTTP/1.1 `GET` with
//! `Upgrade: websocket` in, `101 Switching Protocols` (or a short refusal) out.
//!
//! ```text
//! GET /any/path HTTP/1.1                          HTTP/1.1 101 Switching Protocols
//! Host: example.com                               Upgrade: websocket
//! Upgrade: websocket                       ->     Connection: Upgrade
//! Connection: Upgrade                             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
//! Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==
//! Sec-WebSocket-Version: 13                       (Sec-WebSocket-Accept =
//! Origin: http://example.com                        base64(sha1(key ++ "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")))
//! ```
//!
//! # Invariants
//! - [`decode_request`] never looks past `max_header_bytes`: a head that is not complete within
//!   them is [`UpgradeError::HeaderTooLarge`] (431), as is one with more than [`MAX_HEADERS`]
//!   header lines. Below the limit an incomplete head is `Ok(None)` (a slowloris is the caller's
//!   handshake deadline to end). The request borrows from the input; nothing is allocated.
//! - The checks run in RFC 6455 §4.2.1 order, so a request with several faults gets the first:
//!   syntax and `HTTP/1.1` (400), method `GET` (405), `Host`, `Upgrade: websocket`,
//!   `Connection: upgrade`, no request body (400), `Sec-WebSocket-Version: 13` (426, before the
//!   key, so a client of another version is told which one to speak), a `Sec-WebSocket-Key` that
//!   is base64 of 16 bytes (400). `Host`, `Sec-WebSocket-Key`, `Sec-WebSocket-Version` and
//!   `Origin` may appear at most once. [`check_origin`] (403) is a separate, configured step.
//! - Nothing is negotiated: the answer never carries `Sec-WebSocket-Extensions` (so no
//!   permessage-deflate, whatever the client offers) nor `Sec-WebSocket-Protocol`, so every
//!   frame is plain RFC 6455 and the reserved bits must stay clear.
//! - Every refusal is a complete HTTP/1.1 response with `Connection: close`, after which the
//!   caller closes the connection.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, BytesMut};
use sha1::{Digest, Sha1};

/// The most header lines a request may carry (browsers send about 15).
pub const MAX_HEADERS: usize = 32;

/// The GUID RFC 6455 §1.3 appends to the client's key before hashing it.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The length of an accept key: base64 of a 20-byte SHA-1 digest.
const ACCEPT_KEY_LEN: usize = 28;

/// The fields of a valid upgrade request that the server acts on, borrowed from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest<'a> {
    /// The request target, as sent (`/`, `/ws?token=..`); any path is accepted.
    pub path: &'a str,
    /// The `Sec-WebSocket-Key`, trimmed; known to be base64 of 16 bytes.
    pub key: &'a str,
    /// The `Origin` header, if any (browsers always send one).
    pub origin: Option<&'a str>,
    /// `Sec-WebSocket-Protocol` lists `mqtt` (MQTT over WebSocket, MQTT 5.0 §6; MQTT.js sends
    /// it): the connection speaks MQTT inside the frames, and the 101 names the subprotocol.
    pub mqtt: bool,
}

/// Why an upgrade request is refused; [`UpgradeError::status`] is the HTTP status to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeError {
    /// 431: no complete head within `max_header_bytes`, or more than [`MAX_HEADERS`] headers.
    #[error("request header too large")]
    HeaderTooLarge,
    /// 400: not a well-formed WebSocket upgrade request; the reason names the fault.
    #[error("{0}")]
    Malformed(&'static str),
    /// 405 (with `Allow: GET`): any method but `GET`.
    #[error("method not allowed: a WebSocket upgrade is a GET")]
    MethodNotAllowed,
    /// 426 (with `Sec-WebSocket-Version: 13`): `Sec-WebSocket-Version` missing or not 13.
    #[error("unsupported WebSocket version: only 13 is spoken")]
    UnsupportedVersion,
    /// 403: the `Origin` is missing or not in the configured allow-list.
    #[error("origin not allowed")]
    OriginNotAllowed,
}

impl UpgradeError {
    /// The HTTP status code of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            UpgradeError::HeaderTooLarge => 431,
            UpgradeError::Malformed(_) => 400,
            UpgradeError::MethodNotAllowed => 405,
            UpgradeError::UnsupportedVersion => 426,
            UpgradeError::OriginNotAllowed => 403,
        }
    }

    /// The reason phrase of [`UpgradeError::status`].
    fn status_text(&self) -> &'static str {
        match self {
            UpgradeError::HeaderTooLarge => "Request Header Fields Too Large",
            UpgradeError::Malformed(_) => "Bad Request",
            UpgradeError::MethodNotAllowed => "Method Not Allowed",
            UpgradeError::UnsupportedVersion => "Upgrade Required",
            UpgradeError::OriginNotAllowed => "Forbidden",
        }
    }

    /// The header line a refusal with this status must carry, if any.
    fn extra_header(&self) -> Option<&'static str> {
        match self {
            UpgradeError::MethodNotAllowed => Some("Allow: GET"),
            UpgradeError::UnsupportedVersion => Some("Sec-WebSocket-Version: 13"),
            _ => None,
        }
    }
}

/// Parses the request head at the front of `buf`; `Ok(Some((request, head_len)))`.
///
/// `Ok(None)` = incomplete and still under `max_header_bytes`. Bytes after the head (a client
/// that does not wait for the 101) are left to the caller: they start at `head_len`.
pub fn decode_request(
    buf: &[u8],
    max_header_bytes: usize,
) -> Result<Option<(UpgradeRequest<'_>, usize)>, UpgradeError> {
    let window = buf.get(..max_header_bytes).unwrap_or(buf);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= max_header_bytes => {
            return Err(UpgradeError::HeaderTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(parse_error(e)),
    };
    // httparse fills all three on `Complete`.
    let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
        return Err(UpgradeError::Malformed("incomplete request line"));
    };
    if version != 1 {
        return Err(UpgradeError::Malformed("not HTTP/1.1"));
    }
    if method != "GET" {
        return Err(UpgradeError::MethodNotAllowed);
    }
    let headers: &[httparse::Header<'_>] = req.headers;

    single(headers, "Host")?.ok_or(UpgradeError::Malformed("missing Host"))?;
    if !has_token(headers, "Upgrade", "websocket") {
        return Err(UpgradeError::Malformed("missing Upgrade: websocket"));
    }
    if !has_token(headers, "Connection", "upgrade") {
        return Err(UpgradeError::Malformed("missing Connection: upgrade"));
    }
    let has_body = headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("Transfer-Encoding")
            || (h.name.eq_ignore_ascii_case("Content-Length") && h.value.trim_ascii() != b"0")
    });
    if has_body {
        return Err(UpgradeError::Malformed("request body not allowed"));
    }
    match single(headers, "Sec-WebSocket-Version") {
        Ok(Some(v)) if v.trim_ascii() == b"13" => {}
        _ => return Err(UpgradeError::UnsupportedVersion),
    }
    let key = single(headers, "Sec-WebSocket-Key")?
        .ok_or(UpgradeError::Malformed("missing Sec-WebSocket-Key"))?;
    let key = std::str::from_utf8(key.trim_ascii())
        .ok()
        .filter(|k| is_valid_key(k))
        .ok_or(UpgradeError::Malformed("invalid Sec-WebSocket-Key"))?;
    let origin = match single(headers, "Origin")? {
        Some(v) => Some(
            std::str::from_utf8(v.trim_ascii())
                .map_err(|_| UpgradeError::Malformed("invalid Origin"))?,
        ),
        None => None,
    };
    let mqtt = has_token(headers, "Sec-WebSocket-Protocol", MQTT_SUBPROTOCOL);
    Ok(Some((UpgradeRequest { path, key, origin, mqtt }, head_len)))
}

/// `allowed` empty = any origin (and a missing Origin is fine); otherwise the Origin header must
/// equal one entry (ASCII case-insensitive).
pub fn check_origin(request: &UpgradeRequest<'_>, allowed: &[String]) -> Result<(), UpgradeError> {
    if allowed.is_empty() {
        return Ok(());
    }
    match request.origin {
        Some(origin) if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) => Ok(()),
        _ => Err(UpgradeError::OriginNotAllowed),
    }
}

/// `base64(sha1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))` (RFC 6455 §4.2.2 item 5.4).
pub fn accept_key(key: &str) -> String {
    let mut out = [0u8; ACCEPT_KEY_LEN];
    String::from_utf8_lossy(encode_accept_key(key, &mut out)).into_owned()
}

/// The WebSocket subprotocol of MQTT.
pub const MQTT_SUBPROTOCOL: &str = "mqtt";

/// Appends the `101 Switching Protocols` answer to a request with `key`, naming `subprotocol`
/// when the connection takes one (`mqtt`).
///
/// Never an extensions header (no permessage-deflate, even if offered).
pub fn encode_accept(key: &str, subprotocol: Option<&str>, out: &mut BytesMut) {
    const HEAD: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Accept: ";
    const TAIL: &[u8] = b"\r\n\r\n";
    let mut accept = [0u8; ACCEPT_KEY_LEN];
    let accept = encode_accept_key(key, &mut accept);
    out.reserve(HEAD.len() + accept.len() + TAIL.len());
    out.put_slice(HEAD);
    out.put_slice(accept);
    if let Some(subprotocol) = subprotocol {
        out.put_slice(b"\r\nSec-WebSocket-Protocol: ");
        out.put_slice(subprotocol.as_bytes());
    }
    out.put_slice(TAIL);
}

/// Appends the refusal of a request: the status line, `Content-Type: text/plain;
/// charset=utf-8`, `Content-Length`, `Connection: close` (and `Allow` for 405,
/// `Sec-WebSocket-Version` for 426), and a one-line body naming the reason.
pub fn encode_rejection(error: &UpgradeError, out: &mut BytesMut) {
    // A refusal is rare and small: formatting it is not on any hot path.
    let body = format!("{error}\n");
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         Connection: close\r\n",
        error.status(),
        error.status_text(),
        body.len(),
    );
    if let Some(extra) = error.extra_header() {
        let _ = write!(head, "{extra}\r\n");
    }
    head.push_str("\r\n");
    out.reserve(head.len() + body.len());
    out.put_slice(head.as_bytes());
    out.put_slice(body.as_bytes());
}

/// Writes the accept key of `key` into `out` and returns it.
fn encode_accept_key<'o>(key: &str, out: &'o mut [u8; ACCEPT_KEY_LEN]) -> &'o [u8] {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(ACCEPT_GUID);
    let digest = sha1.finalize();
    // 20 bytes always encode to exactly 28; `unwrap_or(0)` only keeps this panic-free.
    let n = STANDARD.encode_slice(digest, out).unwrap_or(0);
    out.get(..n).unwrap_or(&[])
}

/// A `Sec-WebSocket-Key` must be base64 of exactly 16 bytes (RFC 6455 §4.1 item 7).
fn is_valid_key(key: &str) -> bool {
    let mut decoded = [0u8; 18];
    key.len() == 24 && matches!(STANDARD.decode_slice(key, &mut decoded), Ok(16))
}

/// The value of header `name` if it appears once, `None` if never, 400 if more than once.
fn single<'b>(
    headers: &[httparse::Header<'b>],
    name: &'static str,
) -> Result<Option<&'b [u8]>, UpgradeError> {
    let mut found = headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name));
    match (found.next(), found.next()) {
        (None, _) => Ok(None),
        (Some(h), None) => Ok(Some(h.value)),
        (Some(_), Some(_)) => Err(UpgradeError::Malformed(duplicate(name))),
    }
}

/// The reason for a header that may appear once but came twice.
fn duplicate(name: &'static str) -> &'static str {
    match name {
        "Host" => "duplicate Host",
        "Sec-WebSocket-Key" => "duplicate Sec-WebSocket-Key",
        "Origin" => "duplicate Origin",
        _ => "duplicate header",
    }
}

/// Whether any `name` header lists `token` in its comma-separated value (ASCII case-insensitive),
/// as `Connection: keep-alive, Upgrade` does.
fn has_token(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// The 400 reason for an httparse syntax error, or 431 for too many headers.
fn parse_error(e: httparse::Error) -> UpgradeError {
    UpgradeError::Malformed(match e {
        httparse::Error::TooManyHeaders => return UpgradeError::HeaderTooLarge,
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid request line",
        httparse::Error::Version => "not HTTP/1.1",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 8192;

    /// What Chrome 124 sends (the path, host and origin of a local test; key from RFC 6455 §1.3).
    const CHROME: &[u8] = b"GET /chat?x=1 HTTP/1.1\r\n\
        Host: 127.0.0.1:3010\r\n\
        Connection: Upgrade\r\n\
        Pragma: no-cache\r\n\
        Cache-Control: no-cache\r\n\
        User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
        Upgrade: websocket\r\n\
        Origin: http://127.0.0.1:3080\r\n\
        Sec-WebSocket-Version: 13\r\n\
        Accept-Encoding: gzip, deflate, br, zstd\r\n\
        Accept-Language: en-US,en;q=0.9\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
        \r\n";

    /// A minimal valid request with `lines` in place of its headers.
    fn request(request_line: &str, lines: &[&str]) -> Vec<u8> {
        let mut out = format!("{request_line}\r\n");
        for line in lines {
            out.push_str(line);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out.into_bytes()
    }

    const HOST: &str = "Host: example.com";
    const UPGRADE: &str = "Upgrade: websocket";
    const CONNECTION: &str = "Connection: Upgrade";
    const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
    const VERSION: &str = "Sec-WebSocket-Version: 13";

    fn decode(buf: &[u8]) -> Result<Option<(UpgradeRequest<'_>, usize)>, UpgradeError> {
        decode_request(buf, MAX)
    }

    #[test]
    fn the_mqtt_subprotocol_is_recognised_and_named_in_the_answer() {
        // MQTT.js in a browser or Node: `Sec-WebSocket-Protocol: mqtt`.
        let head = format!(
            "GET /mqtt HTTP/1.1\r\n{HOST}\r\n{UPGRADE}\r\n{CONNECTION}\r\n{KEY}\r\n{VERSION}\r\n\
             Sec-WebSocket-Protocol: mqtt\r\n\r\n"
        );
        let (req, _) = decode(head.as_bytes()).unwrap().unwrap();
        assert!(req.mqtt);
        let mut out = BytesMut::new();
        encode_accept(req.key, Some(MQTT_SUBPROTOCOL), &mut out);
        assert!(out.ends_with(b"=\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"), "{out:?}");
        let listed = head.replace("Protocol: mqtt", "Protocol: mqttv3.1, MQTT");
        assert!(decode(listed.as_bytes()).unwrap().unwrap().0.mqtt);
        let other = head.replace("Protocol: mqtt", "Protocol: chat");
        assert!(!decode(other.as_bytes()).unwrap().unwrap().0.mqtt);
    }

    #[test]
    fn rfc_accept_key() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn chrome_request_is_accepted_and_the_answer_has_no_extensions() {
        let (req, n) = decode(CHROME).unwrap().unwrap();
        assert_eq!(n, CHROME.len());
        assert_eq!(
            req,
            UpgradeRequest {
                path: "/chat?x=1",
                key: "dGhlIHNhbXBsZSBub25jZQ==",
                origin: Some("http://127.0.0.1:3080"),
                mqtt: false,
            }
        );
        let mut out = BytesMut::new();
        encode_accept(req.key, None, &mut out);
        assert_eq!(
            &out[..],
            b"HTTP/1.1 101 Switching Protocols\r\n\
              Upgrade: websocket\r\n\
              Connection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        );
        let text = String::from_utf8(out.to_vec()).unwrap().to_ascii_lowercase();
        assert!(!text.contains("extensions") && !text.contains("deflate"));
        assert!(!text.contains("sec-websocket-protocol"));
    }

    #[test]
    fn every_split_of_the_head_needs_more_bytes() {
        for cut in 0..CHROME.len() {
            assert_eq!(decode(&CHROME[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn bytes_after_the_head_are_left_to_the_caller() {
        let mut stream = CHROME.to_vec();
        stream.extend_from_slice(&[0x82, 0x80, 1, 2, 3, 4]);
        let (_, n) = decode(&stream).unwrap().unwrap();
        assert_eq!(n, CHROME.len());
    }

    #[test]
    fn firefox_connection_list_and_case_insensitive_values() {
        let buf = request(
            "GET / HTTP/1.1",
            &[
                "host: example.com",
                "upgrade: WebSocket",
                "connection: keep-alive, Upgrade",
                "sec-websocket-version: 13",
                "sec-websocket-key:   dGhlIHNhbXBsZSBub25jZQ==  ",
            ],
        );
        let (req, _) = decode(&buf).unwrap().unwrap();
        assert_eq!(req.key, "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(req.origin, None);
    }

    #[test]
    fn missing_or_invalid_key_is_400() {
        let missing = request("GET / HTTP/1.1", &[HOST, UPGRADE, CONNECTION, VERSION]);
        assert_eq!(decode(&missing), Err(UpgradeError::Malformed("missing Sec-WebSocket-Key")));
        for bad in [
            "Sec-WebSocket-Key: ",
            "Sec-WebSocket-Key: hello",
            // 15 bytes and 17 bytes.
            "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA",
            "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=",
            "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA=!",
        ] {
            let buf = request("GET / HTTP/1.1", &[HOST, UPGRADE, CONNECTION, VERSION, bad]);
            let err = decode(&buf).unwrap_err();
            assert_eq!(err, UpgradeError::Malformed("invalid Sec-WebSocket-Key"), "{bad}");
            assert_eq!(err.status(), 400);
        }
        let twice = request("GET / HTTP/1.1", &[HOST, UPGRADE, CONNECTION, VERSION, KEY, KEY]);
        assert_eq!(decode(&twice), Err(UpgradeError::Malformed("duplicate Sec-WebSocket-Key")));
    }

    #[test]
    fn wrong_or_missing_version_is_426_with_the_version_header() {
        for version in
            [None, Some("Sec-WebSocket-Version: 8"), Some("Sec-WebSocket-Version: 13, 8")]
        {
            let mut lines = vec![HOST, UPGRADE, CONNECTION, KEY];
            lines.extend(version);
            let err = decode(&request("GET / HTTP/1.1", &lines)).unwrap_err();
            assert_eq!(err, UpgradeError::UnsupportedVersion, "{version:?}");
        }
        let mut out = BytesMut::new();
        encode_rejection(&UpgradeError::UnsupportedVersion, &mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"), "{text}");
        assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{text}");
    }

    #[test]
    fn post_is_405_with_allow() {
        let buf = request("POST / HTTP/1.1", &[HOST, UPGRADE, CONNECTION, KEY, VERSION]);
        assert_eq!(decode(&buf), Err(UpgradeError::MethodNotAllowed));
        let mut out = BytesMut::new();
        encode_rejection(&UpgradeError::MethodNotAllowed, &mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{text}");
        assert!(text.contains("\r\nAllow: GET\r\n"), "{text}");
    }

    #[test]
    fn not_http_1_1_is_400() {
        let buf = request("GET / HTTP/1.0", &[HOST, UPGRADE, CONNECTION, KEY, VERSION]);
        assert_eq!(decode(&buf), Err(UpgradeError::Malformed("not HTTP/1.1")));
        let buf = request("GET / HTTP/2.0", &[HOST, UPGRADE, CONNECTION, KEY, VERSION]);
        assert_eq!(decode(&buf), Err(UpgradeError::Malformed("not HTTP/1.1")));
        assert_eq!(
            decode(b"GET\x00/ HTTP/1.1\r\n\r\n"),
            Err(UpgradeError::Malformed("invalid request line"))
        );
    }

    #[test]
    fn missing_upgrade_connection_or_host_is_400() {
        let cases: [(&[&str], &str); 5] = [
            (&[HOST, CONNECTION, KEY, VERSION], "missing Upgrade: websocket"),
            (&[HOST, "Upgrade: h2c", CONNECTION, KEY, VERSION], "missing Upgrade: websocket"),
            (&[HOST, UPGRADE, KEY, VERSION], "missing Connection: upgrade"),
            (
                &[HOST, UPGRADE, "Connection: keep-alive", KEY, VERSION],
                "missing Connection: upgrade",
            ),
            (&[UPGRADE, CONNECTION, KEY, VERSION], "missing Host"),
        ];
        for (lines, reason) in cases {
            let buf = request("GET / HTTP/1.1", lines);
            assert_eq!(decode(&buf), Err(UpgradeError::Malformed(reason)), "{lines:?}");
        }
    }

    #[test]
    fn a_request_body_is_400() {
        for body in ["Content-Length: 5", "Transfer-Encoding: chunked"] {
            let buf = request("GET / HTTP/1.1", &[HOST, UPGRADE, CONNECTION, KEY, VERSION, body]);
            assert_eq!(decode(&buf), Err(UpgradeError::Malformed("request body not allowed")));
        }
        let zero = request(
            "GET / HTTP/1.1",
            &[HOST, UPGRADE, CONNECTION, KEY, VERSION, "Content-Length: 0"],
        );
        assert!(decode(&zero).unwrap().is_some());
    }

    #[test]
    fn oversized_head_is_431() {
        // Complete within the limit: fine, also with more bytes after it.
        assert!(decode_request(CHROME, CHROME.len()).unwrap().is_some());
        // One byte short of the limit: the head cannot complete in time.
        assert_eq!(decode_request(CHROME, CHROME.len() - 1), Err(UpgradeError::HeaderTooLarge));
        // A slowloris below the limit just waits (its deadline ends it).
        assert_eq!(decode_request(&CHROME[..100], 200), Ok(None));
        // A head that never ends, past the limit.
        let mut endless = b"GET / HTTP/1.1\r\n".to_vec();
        endless
            .extend(std::iter::repeat_n(b"X-Pad: aaaaaaaaaaaaaaaa\r\n".as_slice(), 40).flatten());
        assert_eq!(decode_request(&endless, 512), Err(UpgradeError::HeaderTooLarge));
        // Too many header lines, even if short.
        let many: Vec<String> = (0..=MAX_HEADERS).map(|i| format!("X-{i}: y")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(decode(&request("GET / HTTP/1.1", &many)), Err(UpgradeError::HeaderTooLarge));
        assert_eq!(UpgradeError::HeaderTooLarge.status(), 431);
    }

    #[test]
    fn origin_allow_list() {
        let (req, _) = decode(CHROME).unwrap().unwrap();
        assert_eq!(check_origin(&req, &[]), Ok(()));
        let allowed = vec!["https://app.example".to_owned(), "HTTP://127.0.0.1:3080".to_owned()];
        assert_eq!(check_origin(&req, &allowed), Ok(()));
        let other = vec!["https://app.example".to_owned()];
        assert_eq!(check_origin(&req, &other), Err(UpgradeError::OriginNotAllowed));
        let no_origin = UpgradeRequest { origin: None, ..req.clone() };
        assert_eq!(check_origin(&no_origin, &[]), Ok(()));
        assert_eq!(check_origin(&no_origin, &other), Err(UpgradeError::OriginNotAllowed));
        assert_eq!(UpgradeError::OriginNotAllowed.status(), 403);
    }

    #[test]
    fn rejection_is_a_complete_response() {
        for error in [
            UpgradeError::HeaderTooLarge,
            UpgradeError::Malformed("missing Host"),
            UpgradeError::MethodNotAllowed,
            UpgradeError::UnsupportedVersion,
            UpgradeError::OriginNotAllowed,
        ] {
            let mut out = BytesMut::new();
            encode_rejection(&error, &mut out);
            let mut headers = [httparse::EMPTY_HEADER; 8];
            let mut resp = httparse::Response::new(&mut headers);
            let httparse::Status::Complete(n) = resp.parse(&out).unwrap() else {
                panic!("incomplete rejection for {error:?}");
            };
            assert_eq!(resp.code, Some(error.status()));
            let header =
                |name: &str| resp.headers.iter().find(|h| h.name == name).map(|h| h.value.to_vec());
            assert_eq!(header("Connection").as_deref(), Some(&b"close"[..]));
            assert_eq!(header("Content-Type").as_deref(), Some(&b"text/plain; charset=utf-8"[..]));
            let body = &out[n..];
            assert_eq!(header("Content-Length"), Some(body.len().to_string().into_bytes()));
            assert_eq!(body, format!("{error}\n").as_bytes());
        }
    }
}

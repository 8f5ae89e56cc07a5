//! A tiny blocking HTTP/1.1 client for the control port's tests: one request per connection
//! (`Connection: close`), the response read until the server closes, every wait bounded by
//! [`IO_TIMEOUT`](super::IO_TIMEOUT). Headers are parsed with `httparse`; bodies may be sized by
//! `Content-Length`, chunked, or delimited by the close.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};

use serde_json::Value;

use super::IO_TIMEOUT;

/// A response: status, headers (names lowercased), body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; fails the test with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("HTTP {} body is not JSON ({e}): {:?}", self.status, self.text())
        })
    }

    /// Asserts this is the control port's JSON error with `status`: `{"error": <non-empty>,
    /// "code": status}` and a JSON content type.
    pub fn assert_error(&self, status: u16) -> &Self {
        assert_eq!(
            self.status,
            status,
            "expected HTTP {status}, got {}: {}",
            self.status,
            self.text()
        );
        let ct = self.header("content-type").unwrap_or_default();
        assert!(ct.starts_with("application/json"), "error content type {ct:?}: {}", self.text());
        let body = self.json();
        assert_eq!(body["code"], status, "error body {body}");
        let reason = body["error"].as_str().unwrap_or_default();
        assert!(!reason.trim().is_empty(), "error without a human reason: {body}");
        self
    }
}

/// Sends one request with `headers` (plus `Host`, `Connection: close` and, with a body,
/// `Content-Length`) and reads the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    send_raw(addr, &bytes)
}

/// Writes `bytes` as they are and reads the response.
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    // A server that answers early (413) may close before it read everything: what it answered
    // is still readable, so a failed write is not a failure yet.
    let _ = stream.write_all(bytes);
    read_response(&mut stream)
}

/// `GET path`, with a bearer secret if given.
pub fn get(addr: SocketAddr, path: &str, secret: Option<&str>) -> Response {
    let auth = secret.map(|s| format!("Bearer {s}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    request(addr, "GET", path, &headers, b"")
}

/// `POST path` with a JSON body and a bearer secret if given.
pub fn post_json(addr: SocketAddr, path: &str, secret: Option<&str>, body: &str) -> Response {
    let auth = secret.map(|s| format!("Bearer {s}"));
    let mut headers = vec![("Content-Type", "application/json")];
    headers.extend(auth.iter().map(|a| ("Authorization", a.as_str())));
    request(addr, "POST", path, &headers, body.as_bytes())
}

/// Reads a whole response from `stream` (the server closes after it).
pub fn read_response(stream: &mut TcpStream) -> Response {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // The server closed with unread request bytes: keep what it sent before the reset.
            Err(e) if e.kind() == ErrorKind::ConnectionReset && !buf.is_empty() => break,
            Err(e) => panic!("reading an HTTP response ({} bytes so far): {e}", buf.len()),
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(&buf) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!("not an HTTP response ({other:?}): {:?}", String::from_utf8_lossy(&buf)),
    };
    let status = parsed.code.expect("status code");
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
        .collect();
    let rest = &buf[head_len..];
    let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let body = if find("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
        dechunk(rest)
    } else if let Some(len) = find("content-length") {
        let len: usize = len.trim().parse().expect("numeric Content-Length");
        assert!(rest.len() >= len, "body cut short: {} of {len} bytes", rest.len());
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Response { status, headers, body }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size = std::str::from_utf8(&rest[..line_end]).expect("chunk size");
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        rest = &rest[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

//! The raw pieces the WebSocket misbehaviour tests need, below tungstenite: hand-built client
//! frames ([`client_frame`], [`frame_header`]) to write straight to the socket, and a raw HTTP
//! exchange ([`raw_upgrade`], [`refused`]) for upgrade requests tungstenite would never send.
//!
//! Every read is bounded by [`IO_TIMEOUT`].

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use super::super::IO_TIMEOUT;
use super::super::session::{Closed, reset_by_peer};
use super::tcp_connect;

/// Opcode 0x0: a continuation frame.
pub const OP_CONTINUATION: u8 = 0x0;
/// Opcode 0x1: a text frame.
pub const OP_TEXT: u8 = 0x1;
/// Opcode 0x2: a binary frame.
pub const OP_BINARY: u8 = 0x2;
/// Opcode 0x8: close.
pub const OP_CLOSE: u8 = 0x8;
/// Opcode 0x9: ping.
pub const OP_PING: u8 = 0x9;

/// The key of RFC 6455 §1.3, and the accept value the RFC gives for it.
pub const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// `Sec-WebSocket-Accept` for [`SAMPLE_KEY`], from RFC 6455 §1.3 (not computed here).
pub const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// ---- raw client frames ----------------------------------------------------------------------

/// A frame header as a client writes it: FIN bit, `opcode`, the *declared* payload length (in the
/// shortest of the 7-bit, 16-bit and 64-bit forms) and, when `mask` is given, the mask bit and key.
/// Send it alone to declare a payload that never comes.
pub fn frame_header(fin: bool, opcode: u8, declared_len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (opcode & 0x0f)];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if declared_len <= 125 {
        out.push(mask_bit | declared_len as u8);
    } else if declared_len <= 0xffff {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(declared_len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&declared_len.to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out
}

/// A whole client frame: [`frame_header`] and the payload, masked with `mask` when given.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = frame_header(fin, opcode, payload.len() as u64, mask);
    match mask {
        Some(key) => out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4])),
        None => out.extend_from_slice(payload),
    }
    out
}

/// A mask key for hand-built frames (any value is valid; this one is not all zero, so a server
/// that forgets to unmask sees garbage).
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

// ---- raw HTTP -------------------------------------------------------------------------------

/// An HTTP response as read off the socket.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status line, e.g. `HTTP/1.1 400 Bad Request`.
    pub status_line: String,
    /// The status code.
    pub status: u16,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// Everything after the head that was read (for a refusal: the whole body, up to the close).
    pub rest: Vec<u8>,
}

impl HttpResponse {
    /// The first header `name` (ASCII case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Reads a response head (up to and including the blank line) within [`IO_TIMEOUT`]; bytes read
/// past it are in `rest`.
pub fn read_response_head(stream: &mut TcpStream) -> HttpResponse {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        assert!(
            buf.len() < 64 * 1024,
            "response head over 64 KiB: {:?}",
            String::from_utf8_lossy(&buf[..300])
        );
        let now = Instant::now();
        assert!(
            now < deadline,
            "timed out waiting for a response head; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        stream.set_read_timeout(Some(deadline - now)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => panic!(
                "connection closed before a whole response head; got {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                panic!("reading a response head: {e}; got {:?}", String::from_utf8_lossy(&buf))
            }
        }
    };
    let head = std::str::from_utf8(&buf[..end])
        .unwrap_or_else(|e| panic!("response head is not UTF-8 ({e}): {:02x?}", &buf[..end]));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("").to_owned();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    assert_eq!(version, "HTTP/1.1", "status line {status_line:?}");
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no status code in {status_line:?}"));
    let headers = lines
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("header line without a colon: {line:?} in {head:?}"));
            (name.to_owned(), value.trim().to_owned())
        })
        .collect();
    HttpResponse { status_line, status, headers, rest: buf[end + 4..].to_vec() }
}

/// Sends `request` on a new connection and reads the response head; the socket is returned for
/// what comes next (frames after a 101, or the close after a refusal).
pub fn raw_upgrade(addr: SocketAddr, request: &[u8]) -> (TcpStream, HttpResponse) {
    let mut stream = tcp_connect(addr);
    stream
        .write_all(request)
        .unwrap_or_else(|e| panic!("write a {}-byte request: {e}", request.len()));
    let response = read_response_head(&mut stream);
    (stream, response)
}

/// Reads until the peer closes (EOF or reset) within [`IO_TIMEOUT`], appending what arrives to
/// `into`; returns how it closed.
pub fn read_to_close(stream: &mut TcpStream, into: &mut Vec<u8>) -> Closed {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut chunk = [0u8; 4096];
    loop {
        let now = Instant::now();
        assert!(
            now < deadline,
            "timed out after {IO_TIMEOUT:?} waiting for the server to close; got {:?}",
            String::from_utf8_lossy(into)
        );
        stream.set_read_timeout(Some(deadline - now)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => return Closed::Eof,
            Ok(n) => into.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if reset_by_peer(&e) => return Closed::Reset,
            Err(e) => panic!(
                "waiting for the server to close: {e}; got {:?}",
                String::from_utf8_lossy(into)
            ),
        }
    }
}

/// Sends `request`, reads the response, and asserts that it is a refusal with `status`: not a
/// 101, a `Content-Length` (if any) that matches the body, and the connection closed after it.
pub fn refused(addr: SocketAddr, request: &[u8], status: u16) -> HttpResponse {
    let (mut stream, mut response) = raw_upgrade(addr, request);
    let what = String::from_utf8_lossy(&request[..request.len().min(120)]).into_owned();
    assert_eq!(
        response.status, status,
        "request {what:?} answered {:?} {:?}",
        response.status_line, response.headers
    );
    read_to_close(&mut stream, &mut response.rest);
    if let Some(len) = response.header("Content-Length") {
        assert_eq!(
            len.parse::<usize>().ok(),
            Some(response.rest.len()),
            "request {what:?}: Content-Length {len} but the body is {:?}",
            String::from_utf8_lossy(&response.rest)
        );
    }
    assert!(
        response.header("Sec-WebSocket-Accept").is_none(),
        "a refusal with an accept key: {response:?}"
    );
    response
}

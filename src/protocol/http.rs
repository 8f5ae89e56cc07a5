//! Plain HTTP/1.1 on the client port: the request head of what is not a WebSocket upgrade
//! (socket.io's handshake), and the short responses shaddock writes to it.
//!
//! ```text
//! GET /socket.io/1/?t=1700000000000 HTTP/1.1      HTTP/1.1 200 OK
//! Host: 127.0.0.1:3010                    ->      Content-Type: text/plain
//!                                                 Content-Length: 41
//!                                                 Connection: close
//!
//!                                                 <body>
//! ```
//!
//! # Invariants
//! - [`decode_head`] never looks past `max_head_bytes`: a head not complete within them is
//!   [`HeadError::TooLarge`] (431), as is one with more than [`MAX_HEADERS`] lines; below the
//!   limit an incomplete head is `Ok(None)`. The head borrows from the input.
//! - Every response carries its `Content-Length`; bodies are short and written whole.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};

/// The most header lines a request may carry.
pub const MAX_HEADERS: usize = 32;

/// A request head, borrowed from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead<'a> {
    pub method: &'a str,
    /// The target's path, before any `?`.
    pub path: &'a str,
    /// The target's query, after the `?` (empty when there is none).
    pub query: &'a str,
    headers: Vec<(&'a str, &'a [u8])>,
    /// The head's length in bytes, its blank line included.
    pub len: usize,
}

/// Why a request head is refused; [`HeadError::status`] is the HTTP status to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// 431: no complete head within the limit, or too many header lines.
    #[error("request header too large")]
    TooLarge,
    /// 400: not a well-formed HTTP/1.1 request.
    #[error("{0}")]
    Malformed(&'static str),
}

impl HeadError {
    pub fn status(self) -> u16 {
        match self {
            HeadError::TooLarge => 431,
            HeadError::Malformed(_) => 400,
        }
    }
}

/// The path of the request line at the front of `buf`, once the line is complete (`None`
/// before, and for a line that is not `METHOD SP target SP version`).
pub fn request_path(buf: &[u8]) -> Option<&str> {
    let end = buf.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&buf[..end]).ok()?;
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (_method, target) = (parts.next()?, parts.next()?);
    Some(target.split('?').next().unwrap_or(target))
}

/// Parses the request head at the front of `buf`.
pub fn decode_head(
    buf: &[u8],
    max_head_bytes: usize,
) -> Result<Option<RequestHead<'_>>, HeadError> {
    let window = buf.get(..max_head_bytes).unwrap_or(buf);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= max_head_bytes => {
            return Err(HeadError::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed("malformed HTTP request head")),
    };
    let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed("not an HTTP/1.1 request"));
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers = req.headers.iter().map(|h| (h.name, h.value)).collect();
    Ok(Some(RequestHead { method, path, query, headers, len }))
}

impl<'a> RequestHead<'a> {
    /// The value of the first header `name` (ASCII case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim_ascii())
    }

    /// The value of query parameter `name`, undecoded (socket.io's parameters never need it).
    pub fn query_param(&self, name: &str) -> Option<&'a str> {
        query_param(self.query, name)
    }

    /// Whether the request asks for a WebSocket (`Upgrade: websocket`).
    pub fn is_upgrade(&self) -> bool {
        self.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("Upgrade") && v.trim_ascii().eq_ignore_ascii_case(b"websocket")
        })
    }

    /// The body's length: 0 without `Content-Length`; `None` for a length that is not a
    /// number, and for `Transfer-Encoding` (chunked bodies are not taken).
    pub fn content_length(&self) -> Option<usize> {
        if self.header("Transfer-Encoding").is_some() {
            return None;
        }
        match self.header("Content-Length") {
            None => Some(0),
            Some(value) => std::str::from_utf8(value).ok()?.parse().ok(),
        }
    }

    /// Whether the client keeps the connection for another request (HTTP/1.1's default,
    /// unless it says `Connection: close`).
    pub fn keep_alive(&self) -> bool {
        !self.header("Connection").is_some_and(|v| {
            v.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
        })
    }

    /// Whether the request announces a body (`Content-Length` above 0, or any
    /// `Transfer-Encoding`).
    pub fn has_body(&self) -> bool {
        self.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("Transfer-Encoding")
                || (n.eq_ignore_ascii_case("Content-Length") && v.trim_ascii() != b"0")
        })
    }
}

/// The value of parameter `name` in `query` (`a=1&b=2`).
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| match pair.split_once('=') {
        Some((n, v)) if n == name => Some(v),
        None if pair == name => Some(""),
        _ => None,
    })
}

/// A short response: status, content type, extra header lines, body.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    pub status: u16,
    pub content_type: &'a str,
    /// Extra header lines, each `Name: value`.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// Appends `response` with `Content-Length` and `Connection: close`.
pub fn encode_response(response: &Response<'_>, out: &mut BytesMut) {
    encode_head(response, response.body.len(), false, out);
    out.put_slice(response.body);
}

/// Appends the head of `response` (its `body` is not written) for a body of `body_len` bytes,
/// with `Connection: keep-alive` or `close`.
pub fn encode_head(response: &Response<'_>, body_len: usize, keep_alive: bool, out: &mut BytesMut) {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
        response.status,
        reason_phrase(response.status),
        response.content_type,
        body_len,
        connection,
    );
    for (name, value) in response.headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    head.push_str("\r\n");
    out.reserve(head.len() + body_len);
    out.put_slice(head.as_bytes());
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HANDSHAKE: &[u8] = b"GET /socket.io/1/?t=1700000000000 HTTP/1.1\r\n\
        Host: 127.0.0.1:3010\r\nConnection: keep-alive\r\n\r\n";

    #[test]
    fn a_head_and_its_parts() {
        let head = decode_head(HANDSHAKE, 8192).unwrap().unwrap();
        assert_eq!((head.method, head.path, head.len), ("GET", "/socket.io/1/", HANDSHAKE.len()));
        assert_eq!(head.query_param("t"), Some("1700000000000"));
        assert_eq!(head.query_param("sid"), None);
        assert_eq!(head.header("host"), Some(&b"127.0.0.1:3010"[..]));
        assert!(!head.is_upgrade() && !head.has_body());
        assert_eq!(request_path(HANDSHAKE), Some("/socket.io/1/"));
    }

    #[test]
    fn every_prefix_is_incomplete_and_limits_hold() {
        for cut in 0..HANDSHAKE.len() {
            assert_eq!(decode_head(&HANDSHAKE[..cut], 8192), Ok(None), "{cut}");
        }
        assert_eq!(request_path(b"GET /socket.io/?EIO=4"), None);
        assert_eq!(decode_head(HANDSHAKE, 20), Err(HeadError::TooLarge));
        assert_eq!(
            decode_head(b"GET / HTTP/1.0\r\n\r\n", 8192),
            Err(HeadError::Malformed("not an HTTP/1.1 request"))
        );
        assert!(decode_head(b"GET /\x01 HTTP/1.1\r\n\r\n", 8192).is_err());
    }

    #[test]
    fn query_parameters() {
        assert_eq!(query_param("EIO=4&transport=websocket", "transport"), Some("websocket"));
        assert_eq!(query_param("b64&EIO=3", "b64"), Some(""));
        assert_eq!(query_param("", "EIO"), None);
    }

    #[test]
    fn responses_are_whole() {
        let mut out = BytesMut::new();
        let headers = [("Access-Control-Allow-Origin", "*")];
        encode_response(
            &Response {
                status: 400,
                content_type: "application/json",
                headers: &headers,
                body: b"{}",
            },
            &mut out,
        );
        assert_eq!(
            &out[..],
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\
              Connection: close\r\nAccess-Control-Allow-Origin: *\r\n\r\n{}"
        );
    }
}

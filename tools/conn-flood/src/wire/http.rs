//! The client side of HTTP/1.1 that Socket.IO's handshakes and long-polling need: `GET` and
//! `POST` requests out, whole `Content-Length` responses in.
//!
//! ```text
//! -> GET {target} HTTP/1.1\r\nHost: ..\r\n[Connection: close\r\n]\r\n
//! -> POST {target} HTTP/1.1\r\nHost: ..\r\nContent-Type: text/plain;charset=UTF-8\r\n
//!    Content-Length: N\r\n\r\n<body>
//! <- HTTP/1.1 200 OK\r\n..Content-Length: N\r\n[Connection: close\r\n]..\r\n\r\n<body>
//! ```
//!
//! # Invariants
//! - [`decode_response`] returns `Ok(None)` until the head and the whole body it announces are
//!   in, and borrows the body; it refuses a head over [`MAX_HEAD`], a response without
//!   `Content-Length` (shaddock always sends one; chunked bodies are not read), and a body over
//!   the caller's limit as soon as the head says so.
//! - Requests are HTTP/1.1 and keep the connection alive unless they say `Connection: close`.

use bytes::BytesMut;

/// The longest response head accepted, bytes.
pub const MAX_HEAD: usize = 8192;

/// A whole response, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpResponse<'a> {
    /// The status code.
    pub status: u16,
    /// The body (`Content-Length` bytes).
    pub body: &'a [u8],
    /// The server closes the connection after it (`Connection: close`).
    pub close: bool,
}

/// Why a response is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFault {
    /// Not an HTTP/1.1 response head, or not UTF-8.
    NotHttp,
    /// A head longer than [`MAX_HEAD`].
    HeadTooLong,
    /// No (readable) `Content-Length`.
    NoLength,
    /// A body longer than the caller accepts.
    BodyTooLarge,
}

impl HttpFault {
    /// What is wrong, in a few words.
    pub fn what(self) -> &'static str {
        match self {
            HttpFault::NotHttp => "not an HTTP/1.1 response",
            HttpFault::HeadTooLong => "head longer than 8 KiB",
            HttpFault::NoLength => "no Content-Length",
            HttpFault::BodyTooLarge => "body too large",
        }
    }
}

impl std::fmt::Display for HttpFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.what())
    }
}

/// Appends `GET {target}` on `host`; `close` asks the server to close after answering.
pub fn encode_get(host: &str, target: &str, close: bool, out: &mut BytesMut) {
    encode_request_line("GET", host, target, out);
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `POST {target}` on `host` with a text `body`, keeping the connection alive.
pub fn encode_post(host: &str, target: &str, body: &[u8], out: &mut BytesMut) {
    encode_request_line("POST", host, target, out);
    out.extend_from_slice(b"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

/// Appends a request line and the `Host` header.
pub fn encode_request_line(method: &str, host: &str, target: &str, out: &mut BytesMut) {
    out.extend_from_slice(method.as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Reads the response at the front of `buf`: `Ok(Some((response, bytes used)))` once its body
/// is in, `Ok(None)` before.
pub fn decode_response(
    buf: &[u8],
    max_body: usize,
) -> Result<Option<(HttpResponse<'_>, usize)>, HttpFault> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD { Err(HttpFault::HeadTooLong) } else { Ok(None) };
    };
    if end > MAX_HEAD {
        return Err(HttpFault::HeadTooLong);
    }
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| HttpFault::NotHttp)?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.strip_prefix("HTTP/1.1 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or(HttpFault::NotHttp)?;
    let mut length = None;
    let mut close = false;
    for (name, value) in lines.filter_map(|line| line.split_once(':')) {
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| HttpFault::NoLength)?);
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.split(',').any(|token| token.trim().eq_ignore_ascii_case("close"));
        }
    }
    let length = length.ok_or(HttpFault::NoLength)?;
    if length > max_body {
        return Err(HttpFault::BodyTooLarge);
    }
    let start = end + 4;
    let Some(body) = buf.get(start..start + length) else {
        return Ok(None);
    };
    Ok(Some((HttpResponse { status, body, close }, start + length)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let mut out = BytesMut::new();
        encode_get("h:1", "/p?a=1", false, &mut out);
        assert_eq!(&out[..], b"GET /p?a=1 HTTP/1.1\r\nHost: h:1\r\n\r\n");
        out.clear();
        encode_get("h:1", "/p/1/", true, &mut out);
        assert_eq!(&out[..], b"GET /p/1/ HTTP/1.1\r\nHost: h:1\r\nConnection: close\r\n\r\n");
        out.clear();
        encode_post("h:1", "/p", b"40", &mut out);
        assert_eq!(
            &out[..],
            &b"POST /p HTTP/1.1\r\nHost: h:1\r\nContent-Type: text/plain;charset=UTF-8\r\n\
               Content-Length: 2\r\n\r\n40"[..]
        );
    }

    #[test]
    fn responses_whole_and_cut_at_every_byte() {
        let answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\n\
                       Content-Length: 2\r\nConnection: keep-alive\r\n\r\nokNEXT";
        let whole = answer.len() - 4;
        let expected = HttpResponse { status: 200, body: b"ok", close: false };
        assert_eq!(decode_response(answer, 10), Ok(Some((expected, whole))));
        for cut in 0..whole {
            assert_eq!(decode_response(&answer[..cut], 10), Ok(None), "cut {cut}");
        }
        let closing = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nConnection: Close\r\n\r\n";
        let expected = HttpResponse { status: 400, body: b"", close: true };
        assert_eq!(decode_response(closing, 10), Ok(Some((expected, closing.len()))));
    }

    #[test]
    fn refusals() {
        assert_eq!(decode_response(b"HTTP/1.0 200 OK\r\n\r\n", 9), Err(HttpFault::NotHttp));
        assert_eq!(decode_response(b"garbage\r\n\r\n", 9), Err(HttpFault::NotHttp));
        assert_eq!(decode_response(b"HTTP/1.1 200 OK\r\n\r\n", 9), Err(HttpFault::NoLength));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(decode_response(chunked, 9), Err(HttpFault::NoLength));
        let long = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
        assert_eq!(decode_response(long, 9), Err(HttpFault::BodyTooLarge));
        assert_eq!(decode_response(&[b'a'; MAX_HEAD + 1], 9), Err(HttpFault::HeadTooLong));
        let mut late = vec![b'a'; MAX_HEAD + 1];
        late.extend_from_slice(b"\r\n\r\n");
        assert_eq!(decode_response(&late, 9), Err(HttpFault::HeadTooLong));
    }
}

//! The client side of WebSocket (RFC 6455) that a load tool needs: the upgrade request, the
//! answer's status line, masked client frames out and unmasked server frames in.
//!
//! `shaddock::protocol::websocket` is the server's codec (it decodes masked client frames); this
//! file is its mirror image, kept small.
//!
//! ```text
//!  0               1               2               3
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| payload len |    extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |        (16 or 64 bits)        |
//! |N|V|V|V|       |S| 126 => u16  |                               |
//! | |1|2|3|       |K| 127 => u64  |  then the 4-byte mask if MASK |
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! ```
//!
//! # Invariants
//! - [`decode_server_frame`] refuses a masked frame, reserved bits and a length over its
//!   `max_payload` as soon as the header is in; `Ok(None)` means "need more bytes". It borrows
//!   the payload and never allocates.
//! - [`encode_client_frame`] always masks (a server must close on an unmasked client frame).

use bytes::{BufMut, BytesMut};

/// Opcode of a continuation frame.
pub const OP_CONTINUATION: u8 = 0x0;
/// Opcode of a text frame.
pub const OP_TEXT: u8 = 0x1;
/// Opcode of a binary frame (every Pomelo package travels in one).
pub const OP_BINARY: u8 = 0x2;
/// Opcode of a close frame.
pub const OP_CLOSE: u8 = 0x8;
/// Opcode of a ping frame.
pub const OP_PING: u8 = 0x9;
/// Opcode of a pong frame.
pub const OP_PONG: u8 = 0xA;

/// A fixed, valid `Sec-WebSocket-Key` (base64 of 16 bytes): the tool does not check the accept
/// key, so it needs no randomness.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// One decoded server frame, borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerFrame<'a> {
    /// The FIN bit.
    pub fin: bool,
    /// The opcode.
    pub opcode: u8,
    /// The (unmasked) payload.
    pub payload: &'a [u8],
}

/// Why a server frame or answer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsFault {
    /// The upgrade answer is not `HTTP/1.1 101`.
    NotSwitching,
    /// The upgrade answer's head is longer than 8 KiB.
    AnswerTooLong,
    /// A server frame with the MASK bit set.
    MaskedServerFrame,
    /// A reserved bit is set (no extension was negotiated).
    ReservedBits,
    /// The payload is longer than the limit.
    TooLarge,
}

/// Appends the HTTP/1.1 upgrade request for `path` on `host`.
pub fn encode_upgrade(host: &str, path: &str, out: &mut BytesMut) {
    super::http::encode_request_line("GET", host, path, out);
    out.extend_from_slice(b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    out.extend_from_slice(KEY.as_bytes());
    out.extend_from_slice(b"\r\nSec-WebSocket-Version: 13\r\n\r\n");
}

/// Reads the server's answer to the upgrade: `Ok(Some(head_len))` for a complete
/// `101 Switching Protocols` head (frames may follow it in the same input), `Ok(None)` while the
/// head is incomplete.
pub fn decode_upgrade_answer(buf: &[u8]) -> Result<Option<usize>, WsFault> {
    const MAX_HEAD: usize = 8192;
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD { Err(WsFault::AnswerTooLong) } else { Ok(None) };
    };
    if !buf.starts_with(b"HTTP/1.1 101") {
        return Err(WsFault::NotSwitching);
    }
    Ok(Some(end + 4))
}

/// Appends one masked client frame with FIN set.
pub fn encode_client_frame(opcode: u8, payload: &[u8], mask: [u8; 4], out: &mut BytesMut) {
    out.put_u8(0x80 | (opcode & 0x0f));
    let len = payload.len();
    if len < 126 {
        out.put_u8(0x80 | len as u8);
    } else if let Ok(len16) = u16::try_from(len) {
        out.put_u8(0x80 | 126);
        out.extend_from_slice(&len16.to_be_bytes());
    } else {
        out.put_u8(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
}

/// Decodes one unmasked server frame from the front of `buf`; returns it and the bytes used.
#[inline]
pub fn decode_server_frame(
    buf: &[u8],
    max_payload: usize,
) -> Result<Option<(ServerFrame<'_>, usize)>, WsFault> {
    let Some((&[b0, b1], rest)) = buf.split_first_chunk::<2>() else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(WsFault::ReservedBits);
    }
    if b1 & 0x80 != 0 {
        return Err(WsFault::MaskedServerFrame);
    }
    let (len, rest, header) = match b1 & 0x7f {
        126 => match rest.split_first_chunk::<2>() {
            Some((ext, rest)) => (u64::from(u16::from_be_bytes(*ext)), rest, 4),
            None => return Ok(None),
        },
        127 => match rest.split_first_chunk::<8>() {
            Some((ext, rest)) => (u64::from_be_bytes(*ext), rest, 10),
            None => return Ok(None),
        },
        short => (u64::from(short), rest, 2),
    };
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > max_payload {
        return Err(WsFault::TooLarge);
    }
    Ok(rest.get(..len).map(|payload| {
        (ServerFrame { fin: b0 & 0x80 != 0, opcode: b0 & 0x0f, payload }, header + len)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_request_and_answer() {
        let mut out = BytesMut::new();
        encode_upgrade("127.0.0.1:3010", "/", &mut out);
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.starts_with("GET / HTTP/1.1\r\nHost: 127.0.0.1:3010\r\n"));
        assert!(text.contains("Sec-WebSocket-Version: 13\r\n"));
        assert!(text.ends_with("\r\n\r\n"));

        let answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                       Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        let mut stream = answer.to_vec();
        stream.extend_from_slice(&[0x82, 0x00]);
        assert_eq!(decode_upgrade_answer(&stream), Ok(Some(answer.len())));
        for cut in 0..answer.len() {
            assert_eq!(decode_upgrade_answer(&answer[..cut]), Ok(None), "cut {cut}");
        }
        assert_eq!(
            decode_upgrade_answer(b"HTTP/1.1 403 Forbidden\r\n\r\n"),
            Err(WsFault::NotSwitching)
        );
        assert_eq!(decode_upgrade_answer(&[b'a'; 9000]), Err(WsFault::AnswerTooLong));
    }

    #[test]
    fn client_frames_are_masked() {
        // RFC 6455 §5.7: a masked "Hello".
        let mut out = BytesMut::new();
        encode_client_frame(OP_TEXT, b"Hello", [0x37, 0xfa, 0x21, 0x3d], &mut out);
        assert_eq!(&out[..], [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
        let mut out = BytesMut::new();
        encode_client_frame(OP_BINARY, &[0u8; 300], [1, 2, 3, 4], &mut out);
        assert_eq!(&out[..4], &[0x82, 0xfe, 0x01, 0x2c]);
        assert_eq!(out.len(), 4 + 4 + 300);
        let mut out = BytesMut::new();
        encode_client_frame(OP_BINARY, &vec![0u8; 70_000], [1, 2, 3, 4], &mut out);
        assert_eq!(&out[..10], &[0x82, 0xff, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70]);
    }

    #[test]
    fn server_frames_with_every_length_form_and_split_point() {
        // RFC 6455 §5.7: an unmasked "Hello", then a ping.
        let hello = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let mut stream = hello.to_vec();
        stream.extend_from_slice(&[0x89, 0x00]);
        let (frame, used) = decode_server_frame(&stream, 1024).unwrap().unwrap();
        assert_eq!(frame, ServerFrame { fin: true, opcode: OP_TEXT, payload: b"Hello" });
        assert_eq!(used, hello.len());
        let (ping, _) = decode_server_frame(&stream[used..], 1024).unwrap().unwrap();
        assert_eq!((ping.opcode, ping.payload), (OP_PING, &b""[..]));
        for cut in 0..hello.len() {
            assert_eq!(decode_server_frame(&hello[..cut], 1024), Ok(None));
        }

        let mut medium = vec![0x82, 126, 0x01, 0x00];
        medium.extend_from_slice(&[7u8; 256]);
        let (frame, used) = decode_server_frame(&medium, 1024).unwrap().unwrap();
        assert_eq!((frame.payload.len(), used), (256, 260));

        let mut long = vec![0x02, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00];
        long.extend_from_slice(&vec![1u8; 65_536]);
        let (frame, used) = decode_server_frame(&long, 1 << 20).unwrap().unwrap();
        assert_eq!((frame.fin, frame.payload.len(), used), (false, 65_536, 65_546));
    }

    #[test]
    fn refusals_come_with_the_header() {
        assert_eq!(decode_server_frame(&[0x82, 0x85], 1024), Err(WsFault::MaskedServerFrame));
        assert_eq!(decode_server_frame(&[0xc2, 0x05], 1024), Err(WsFault::ReservedBits));
        assert_eq!(decode_server_frame(&[0x82, 126, 0x04, 0x01], 1024), Err(WsFault::TooLarge));
        assert_eq!(decode_server_frame(&[0x82, 126, 0x04], 1024), Ok(None));
    }
}

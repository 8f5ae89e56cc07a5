//! The WebSocket base framing protocol (RFC 6455 §5), sans-IO.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |            (16/64)            |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! | Masking-key (continued)       |          Payload Data         |
//! +-------------------------------- - - - - - - - - - - - - - - - +
//!
//!  Payload len 0..=125: that is the length      (header  2 bytes, +4 if masked)
//!              126:     a u16 BE follows        (header  4 bytes, +4 if masked)
//!              127:     a u64 BE follows        (header 10 bytes, +4 if masked)
//!  opcode: 0 continuation, 1 text, 2 binary, 8 close, 9 ping, A pong; 3-7, B-F reserved
//! ```
//!
//! # Invariants
//! - A client frame is judged as soon as its first two bytes are in, before the rest of the
//!   header or any payload is awaited: RSV1-3 set (no extension is ever negotiated), a reserved
//!   opcode, a clear MASK bit, a control frame without FIN or with a Payload len over 125 are all
//!   close 1002. Then, once the extended length is in, a 64-bit length with its most significant
//!   bit set is 1002 (RFC 6455 §5.2 forbids it) and a length over the caller's `max_payload` is
//!   1009 — so nothing is buffered for an oversize frame. Non-minimal length encodings (126 with
//!   a length that would fit in 7 bits) are *accepted*, as browsers never send them and
//!   refusing them buys nothing.
//! - Every prefix of a valid frame decodes to `Ok(None)`, and the input is then untouched: the
//!   payload is unmasked in place only once the whole frame is in.
//! - Fragmentation, text and message ordering are the connection's business: this layer decodes
//!   single frames and knows no state.
//! - Server frames are never masked (RFC 6455 §5.1); their header is [`header_len`] bytes, so a
//!   broadcast can put one header in front of a shared payload. Encoders never fail and never
//!   panic; they reserve the whole frame once.
//! - [`apply_mask`] runs on every client byte: it XORs 8 bytes at a time as one `u64`.

use bytes::{BufMut, BytesMut};

use crate::protocol::wire::truncate_str;

/// The largest payload of a control frame (close, ping, pong).
pub const MAX_CONTROL_PAYLOAD: usize = 125;
/// The longest server (unmasked) frame header: 2 bytes and a 64-bit extended length.
pub const MAX_SERVER_HEADER_LEN: usize = 10;
/// The longest client (masked) frame header: [`MAX_SERVER_HEADER_LEN`] and the masking key.
pub const MAX_CLIENT_HEADER_LEN: usize = 14;
/// The longest close reason: a control payload less the 2-byte status code.
pub const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// The close status codes shaddock sends (RFC 6455 §7.4.1).
pub mod close_code {
    /// 1000: normal closure.
    pub const NORMAL: u16 = 1000;
    /// 1001: going away (server shutdown).
    pub const GOING_AWAY: u16 = 1001;
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// 1003: a data type the endpoint cannot accept (shaddock: a text frame).
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// 1007: data inconsistent with its type (invalid UTF-8 in a close reason).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// 1008: policy violation.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// 1009: a message too big to process.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// 1011: an unexpected condition on the server.
    pub const INTERNAL_ERROR: u16 = 1011;
}

/// The frame opcode, the low 4 bits of the first header byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// A further fragment of the message in progress.
    Continuation = 0x0,
    /// The first frame of a UTF-8 text message.
    Text = 0x1,
    /// The first frame of a binary message (each carries one Pomelo package).
    Binary = 0x2,
    /// Close, with an optional status code and reason.
    Close = 0x8,
    /// Ping; answered with a pong carrying the same payload.
    Ping = 0x9,
    /// Pong.
    Pong = 0xA,
}

impl OpCode {
    /// The opcode with this 4-bit value, or `None` for a reserved one (3-7, B-F).
    #[inline]
    pub fn from_u8(bits: u8) -> Option<OpCode> {
        match bits {
            0x0 => Some(OpCode::Continuation),
            0x1 => Some(OpCode::Text),
            0x2 => Some(OpCode::Binary),
            0x8 => Some(OpCode::Close),
            0x9 => Some(OpCode::Ping),
            0xA => Some(OpCode::Pong),
            _ => None,
        }
    }

    /// Close, ping and pong: at most 125 bytes, never fragmented, allowed between fragments.
    #[inline]
    pub fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// One decoded client frame, its payload unmasked and borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientFrame<'a> {
    /// FIN: the last frame of its message.
    pub fin: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The payload, unmasked, exactly as long as the header declared.
    pub payload: &'a [u8],
}

/// A fault in a client frame, with the close code to end the connection with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct WsError {
    /// The close status code (1002 protocol error, 1007 bad UTF-8 in a close reason, 1009 too
    /// big): see [`close_code`].
    pub close_code: u16,
    /// A few words naming the fault; short enough for a close frame.
    pub reason: &'static str,
}

impl WsError {
    /// A 1002 protocol error.
    const fn protocol(reason: &'static str) -> WsError {
        WsError { close_code: close_code::PROTOCOL_ERROR, reason }
    }
}

/// FIN, the top bit of the first byte.
const FIN: u8 = 0x80;
/// RSV1, RSV2 and RSV3.
const RSV: u8 = 0x70;
/// MASK, the top bit of the second byte.
const MASK: u8 = 0x80;
/// Payload len 126: a 16-bit extended length follows.
const LEN_16: u8 = 126;
/// Payload len 127: a 64-bit extended length follows.
const LEN_64: u8 = 127;

/// Decodes one client frame at the front of `buf`, unmasking its payload in place; returns it and
/// the bytes consumed.
///
/// Checks as soon as the header is complete, before the payload is awaited (see the module
/// invariants); `Ok(None)` = need more bytes, and `buf` is then untouched.
pub fn decode_client_frame(
    buf: &mut [u8],
    max_payload: usize,
) -> Result<Option<(ClientFrame<'_>, usize)>, WsError> {
    let Some(&[b0, b1]) = buf.first_chunk::<2>() else {
        return Ok(None);
    };
    if b0 & RSV != 0 {
        return Err(WsError::protocol("reserved bits set"));
    }
    let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(WsError::protocol("reserved opcode"))?;
    let fin = b0 & FIN != 0;
    if b1 & MASK == 0 {
        return Err(WsError::protocol("unmasked client frame"));
    }
    let len7 = b1 & !MASK;
    if opcode.is_control() {
        if !fin {
            return Err(WsError::protocol("fragmented control frame"));
        }
        if usize::from(len7) > MAX_CONTROL_PAYLOAD {
            return Err(WsError::protocol("control frame too long"));
        }
    }
    let rest = buf.get(2..).unwrap_or_default();
    let (len, ext_len) = match len7 {
        LEN_16 => match rest.first_chunk::<2>() {
            Some(ext) => (u64::from(u16::from_be_bytes(*ext)), 2),
            None => return Ok(None),
        },
        LEN_64 => match rest.first_chunk::<8>() {
            Some(ext) => (u64::from_be_bytes(*ext), 8),
            None => return Ok(None),
        },
        short => (u64::from(short), 0),
    };
    if len >> 63 != 0 {
        return Err(WsError::protocol("invalid payload length"));
    }
    // At most `max_payload`, so it fits a usize.
    let Some(len) = usize::try_from(len).ok().filter(|&len| len <= max_payload) else {
        return Err(WsError { close_code: close_code::MESSAGE_TOO_BIG, reason: "frame too big" });
    };
    let header = 2 + ext_len + 4;
    let Some(&mask) = buf.get(2 + ext_len..).and_then(|r| r.first_chunk::<4>()) else {
        return Ok(None);
    };
    let total = header.saturating_add(len);
    let Some(payload) = buf.get_mut(header..total) else {
        return Ok(None);
    };
    apply_mask(payload, mask);
    let payload: &[u8] = payload;
    Ok(Some((ClientFrame { fin, opcode, payload }, total)))
}

/// XORs `buf` with the 4-byte masking key, starting at key byte 0 (RFC 6455 §5.3); masking and
/// unmasking are the same operation.
///
/// Works 8 bytes at a time as one `u64` (the key repeated twice), then byte by byte for the last
/// 0-7 bytes.
#[inline]
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let [m0, m1, m2, m3] = mask;
    let wide = u64::from_ne_bytes([m0, m1, m2, m3, m0, m1, m2, m3]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        if let Ok(word) = <&mut [u8; 8]>::try_from(chunk) {
            *word = (u64::from_ne_bytes(*word) ^ wide).to_ne_bytes();
        }
    }
    // The tail starts at a multiple of 8, so at key byte 0.
    for (byte, key) in chunks.into_remainder().iter_mut().zip(mask.iter().cycle()) {
        *byte ^= key;
    }
}

/// The length of a server (unmasked) frame header for this payload length: 2, 4 or 10.
#[inline]
pub fn header_len(payload_len: usize) -> usize {
    match payload_len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}

/// Appends the header of a server frame (unmasked) whose payload is `payload_len` bytes long.
///
/// The caller appends exactly `payload_len` bytes after it. A control frame must have `fin` and
/// at most [`MAX_CONTROL_PAYLOAD`] bytes; that is the caller's contract, not checked here.
#[inline]
pub fn encode_header(fin: bool, opcode: OpCode, payload_len: usize, out: &mut BytesMut) {
    put_header(fin, opcode, payload_len, false, out);
}

/// Appends one whole server frame with FIN set.
#[inline]
pub fn encode_frame(opcode: OpCode, payload: &[u8], out: &mut BytesMut) {
    out.reserve(header_len(payload.len()) + payload.len());
    put_header(true, opcode, payload.len(), false, out);
    out.put_slice(payload);
}

/// Appends a close frame with status `code` and `reason`, the reason cut to
/// [`MAX_CLOSE_REASON`] (123) bytes on a char boundary.
pub fn encode_close(code: u16, reason: &str, out: &mut BytesMut) {
    let reason = truncate_str(reason, MAX_CLOSE_REASON);
    let len = 2 + reason.len();
    out.reserve(header_len(len) + len);
    put_header(true, OpCode::Close, len, false, out);
    out.put_u16(code);
    out.put_slice(reason.as_bytes());
}

/// Decodes a close payload: `Ok(None)` when empty (no status code), else the code and reason.
///
/// One byte is 1002; a code that may not be sent is 1002; a reason that is not UTF-8 is 1007.
/// Codes that may be sent (RFC 6455 §7.4 and the IANA "WebSocket Close Code Number" registry):
/// 1000-1003, 1007-1014 (1012-1014 are IANA-registered), 3000-4999. Refused: below 1000, 1004
/// (reserved), 1005, 1006 and 1015 (must never be on the wire), 1016-2999 (unassigned, reserved
/// for this protocol) and 5000 and above.
pub fn decode_close(payload: &[u8]) -> Result<Option<(u16, &str)>, WsError> {
    let Some((&code, reason)) = payload.split_first_chunk::<2>() else {
        return if payload.is_empty() {
            Ok(None)
        } else {
            Err(WsError::protocol("close payload of one byte"))
        };
    };
    let code = u16::from_be_bytes(code);
    if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
        return Err(WsError::protocol("invalid close code"));
    }
    let reason = std::str::from_utf8(reason).map_err(|_| WsError {
        close_code: close_code::INVALID_PAYLOAD,
        reason: "close reason is not UTF-8",
    })?;
    Ok(Some((code, reason)))
}

/// Appends a masked client frame (for tests and the load tool).
pub fn encode_client_frame(
    fin: bool,
    opcode: OpCode,
    payload: &[u8],
    mask: [u8; 4],
    out: &mut BytesMut,
) {
    out.reserve(header_len(payload.len()) + 4 + payload.len());
    put_header(fin, opcode, payload.len(), true, out);
    out.put_slice(&mask);
    let start = out.len();
    out.put_slice(payload);
    if let Some(body) = out.get_mut(start..) {
        apply_mask(body, mask);
    }
}

/// Appends FIN/opcode, MASK/Payload len and the extended length (not the masking key).
#[inline]
fn put_header(fin: bool, opcode: OpCode, payload_len: usize, masked: bool, out: &mut BytesMut) {
    let b0 = if fin { FIN } else { 0 } | opcode as u8;
    let mask = if masked { MASK } else { 0 };
    if let Ok(short @ 0..=125) = u8::try_from(payload_len) {
        out.put_slice(&[b0, mask | short]);
    } else if let Ok(medium) = u16::try_from(payload_len) {
        let [hi, lo] = medium.to_be_bytes();
        out.put_slice(&[b0, mask | LEN_16, hi, lo]);
    } else {
        out.put_slice(&[b0, mask | LEN_64]);
        out.put_u64(payload_len as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: usize = 1 << 20;
    /// The masking key of the RFC 6455 §5.7 examples.
    const RFC_MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    /// "Hello", masked with [`RFC_MASK`].
    const HELLO_MASKED: [u8; 9] = [0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];

    fn server(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_frame(opcode, payload, &mut out);
        out.to_vec()
    }

    fn client(fin: bool, opcode: OpCode, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_client_frame(fin, opcode, payload, mask, &mut out);
        out.to_vec()
    }

    /// Decodes a whole frame, checking first that every prefix asks for more and is left as is.
    fn decode_all(bytes: &[u8]) -> (bool, OpCode, Vec<u8>, usize) {
        for cut in 0..bytes.len() {
            let mut prefix = bytes[..cut].to_vec();
            assert_eq!(decode_client_frame(&mut prefix, MAX), Ok(None), "cut at {cut}");
            assert_eq!(prefix, &bytes[..cut], "a prefix was modified");
        }
        let mut buf = bytes.to_vec();
        let (frame, used) = decode_client_frame(&mut buf, MAX).unwrap().unwrap();
        (frame.fin, frame.opcode, frame.payload.to_vec(), used)
    }

    /// The error `bytes` decode to, as (close code, reason).
    fn err(bytes: &[u8], max: usize) -> (u16, &'static str) {
        let e = decode_client_frame(&mut bytes.to_vec(), max).unwrap_err();
        (e.close_code, e.reason)
    }

    #[test]
    fn rfc_single_frame_text_unmasked_and_masked() {
        let unmasked = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert_eq!(server(OpCode::Text, b"Hello"), unmasked);
        assert_eq!(err(&unmasked, MAX), (1002, "unmasked client frame"));
        let masked = [&[0x81, 0x85][..], &HELLO_MASKED].concat();
        assert_eq!(client(true, OpCode::Text, b"Hello", RFC_MASK), masked);
        assert_eq!(decode_all(&masked), (true, OpCode::Text, b"Hello".to_vec(), 11));
    }

    #[test]
    fn rfc_fragmented_unmasked_text() {
        let mut out = BytesMut::new();
        encode_header(false, OpCode::Text, 3, &mut out);
        out.put_slice(b"Hel");
        encode_header(true, OpCode::Continuation, 2, &mut out);
        out.put_slice(b"lo");
        assert_eq!(&out[..], [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]);
        // The same, masked, as a client sends it.
        let first = client(false, OpCode::Text, b"Hel", RFC_MASK);
        assert_eq!(decode_all(&first), (false, OpCode::Text, b"Hel".to_vec(), 9));
        let second = client(true, OpCode::Continuation, b"lo", [9, 8, 7, 6]);
        assert_eq!(decode_all(&second), (true, OpCode::Continuation, b"lo".to_vec(), 8));
    }

    #[test]
    fn rfc_ping_and_pong() {
        assert_eq!(server(OpCode::Ping, b"Hello"), [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        let pong = [&[0x8a, 0x85][..], &HELLO_MASKED].concat();
        assert_eq!(client(true, OpCode::Pong, b"Hello", RFC_MASK), pong);
        assert_eq!(decode_all(&pong), (true, OpCode::Pong, b"Hello".to_vec(), 11));
        let ping = [&[0x89, 0x85][..], &HELLO_MASKED].concat();
        assert_eq!(decode_all(&ping), (true, OpCode::Ping, b"Hello".to_vec(), 11));
    }

    #[test]
    fn rfc_256_bytes_binary() {
        let payload: Vec<u8> = (0..=255).collect();
        let bytes = server(OpCode::Binary, &payload);
        assert_eq!((&bytes[..4], &bytes[4..]), (&[0x82, 0x7e, 0x01, 0x00][..], &payload[..]));
        let masked = client(true, OpCode::Binary, &payload, RFC_MASK);
        assert_eq!(masked[..8], [0x82, 0xfe, 0x01, 0x00, 0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(decode_all(&masked), (true, OpCode::Binary, payload, 264));
    }

    #[test]
    fn rfc_64_kib_binary() {
        let payload: Vec<u8> = (0..65_536u32).map(|i| (i * 7) as u8).collect();
        let bytes = server(OpCode::Binary, &payload);
        assert_eq!(bytes[..10], [0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
        assert_eq!(bytes.len(), 10 + 65_536);
        let mut masked = client(true, OpCode::Binary, &payload, RFC_MASK);
        assert_eq!(masked[..14], [0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 0x37, 0xfa, 0x21, 0x3d]);
        // Every split of the header and a few of the payload (all 65k would be slow).
        for cut in (0..20).chain([1_000, 65_549]) {
            assert_eq!(decode_client_frame(&mut masked[..cut].to_vec(), MAX), Ok(None));
        }
        let (frame, used) = decode_client_frame(&mut masked, MAX).unwrap().unwrap();
        assert_eq!((frame.payload, used), (&payload[..], 65_550));
    }

    #[test]
    fn header_len_boundaries() {
        for (len, want) in [(0, 2), (125, 2), (126, 4), (65_535, 4), (65_536, 10), (usize::MAX, 10)]
        {
            let mut out = BytesMut::new();
            encode_header(true, OpCode::Binary, len, &mut out);
            assert_eq!((header_len(len), out.len()), (want, want), "{len}");
        }
    }

    #[test]
    fn trailing_bytes_are_left_for_the_next_frame() {
        let mut stream = client(true, OpCode::Binary, b"\x04\x00\x00\x00", [1, 2, 3, 4]);
        stream.extend(client(true, OpCode::Ping, b"", [5, 6, 7, 8]));
        stream.push(0x82);
        let (frame, used) = decode_client_frame(&mut stream, MAX).unwrap().unwrap();
        assert_eq!((frame.opcode, frame.payload, used), (OpCode::Binary, &b"\x04\0\0\0"[..], 10));
        let (frame, used) = decode_client_frame(&mut stream[10..], MAX).unwrap().unwrap();
        assert_eq!((frame.opcode, frame.payload, used), (OpCode::Ping, &b""[..], 6));
        assert_eq!(decode_client_frame(&mut stream[16..], MAX), Ok(None));
    }

    #[test]
    fn header_faults_are_1002_as_soon_as_two_bytes_are_in() {
        for rsv in [0x40, 0x20, 0x10] {
            assert_eq!(err(&[0x82 | rsv, 0x85], MAX), (1002, "reserved bits set"));
        }
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(OpCode::from_u8(op), None);
            assert_eq!(err(&[0x80 | op, 0x80], MAX), (1002, "reserved opcode"), "{op}");
        }
        assert_eq!(err(&[0x82, 0x00], MAX), (1002, "unmasked client frame"));
        for op in [OpCode::Close, OpCode::Ping, OpCode::Pong] {
            assert!(op.is_control() && OpCode::from_u8(op as u8) == Some(op));
            assert_eq!(err(&[op as u8, 0x80], MAX), (1002, "fragmented control frame"));
            let too_long = (1002, "control frame too long");
            assert_eq!(err(&[0x80 | op as u8, 0x80 | 126], MAX), too_long);
            assert_eq!(err(&[0x80 | op as u8, 0x80 | 127], MAX), too_long);
            // 125 is fine and waits for its payload.
            assert_eq!(decode_client_frame(&mut [0x80 | op as u8, 0x80 | 125], MAX), Ok(None));
        }
        for op in [OpCode::Continuation, OpCode::Text, OpCode::Binary] {
            assert!(!op.is_control() && OpCode::from_u8(op as u8) == Some(op));
        }
    }

    #[test]
    fn oversize_is_1009_before_the_payload() {
        let header = [0x82, 0x80 | 126, 0x01, 0x01]; // 257 bytes
        assert_eq!(decode_client_frame(&mut header[..3].to_vec(), 256), Ok(None));
        assert_eq!(err(&header, 256), (1009, "frame too big"));
        assert_eq!(decode_client_frame(&mut header.to_vec(), 257), Ok(None));
        // 2^32 bytes: fine by the RFC, so with no cap it waits for its masking key and payload.
        let huge = [0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(decode_client_frame(&mut huge.to_vec(), usize::MAX), Ok(None));
        assert_eq!(err(&huge, MAX), (1009, "frame too big"));
        assert_eq!(err(&[0x82, 0x80 | 10], 9), (1009, "frame too big"));
        // The most significant bit of a 64-bit length must be 0.
        let top_bit = [0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(err(&top_bit, usize::MAX), (1002, "invalid payload length"));
    }

    #[test]
    fn non_minimal_lengths_are_accepted() {
        let mut bytes = vec![0x82, 0x80 | 126, 0, 3, 0, 0, 0, 0, b'a', b'b', b'c'];
        let (frame, used) = decode_client_frame(&mut bytes, MAX).unwrap().unwrap();
        assert_eq!((frame.payload, used), (&b"abc"[..], 11));
        let mut bytes = vec![0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, b'z'];
        let (frame, used) = decode_client_frame(&mut bytes, MAX).unwrap().unwrap();
        assert_eq!((frame.payload, used), (&b"z"[..], 15));
    }

    #[test]
    fn close_frames() {
        let mut out = BytesMut::new();
        encode_close(1000, "bye", &mut out);
        assert_eq!(&out[..], [0x88, 0x05, 0x03, 0xe8, b'b', b'y', b'e']);
        assert_eq!(decode_close(&out[2..]), Ok(Some((1000, "bye"))));
        assert_eq!(decode_close(&[]), Ok(None));
        assert_eq!(decode_close(&[0x03]).unwrap_err().close_code, 1002);
        let bad_utf8 = decode_close(&[0x03, 0xe8, 0xff]).unwrap_err();
        assert_eq!((bad_utf8.close_code, bad_utf8.reason), (1007, "close reason is not UTF-8"));
    }

    #[test]
    fn close_reason_is_cut_on_a_char_boundary() {
        // 61 two-byte chars = 122 bytes, then a 3-byte one that would end at 125.
        let reason = format!("{}€tail", "é".repeat(61));
        let mut out = BytesMut::new();
        encode_close(1001, &reason, &mut out);
        assert_eq!((out.len(), out[1]), (2 + 2 + 122, 124));
        assert_eq!(decode_close(&out[2..]), Ok(Some((1001, &reason[..122]))));
        let mut out = BytesMut::new();
        encode_close(1000, &"x".repeat(500), &mut out);
        assert_eq!(out.len(), 2 + MAX_CONTROL_PAYLOAD);
    }

    #[test]
    fn close_codes_that_may_be_sent() {
        let ok = |code: u16| decode_close(&code.to_be_bytes()).is_ok();
        let allowed = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014];
        for code in allowed.into_iter().chain([3000, 3999, 4000, 4999]) {
            assert!(ok(code), "{code} should be accepted");
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
            assert!(!ok(code), "{code} should be refused");
        }
    }

    proptest! {
        #[test]
        fn apply_mask_matches_a_byte_loop(data in prop::collection::vec(any::<u8>(), 0..100), mask in any::<[u8; 4]>()) {
            let mut fast = data.clone();
            apply_mask(&mut fast, mask);
            let slow: Vec<u8> = data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
            prop_assert_eq!(&fast, &slow);
        }

        #[test]
        fn client_round_trip_at_every_split(
            op in prop::sample::select(&[0u8, 1, 2, 8, 9, 10][..]).prop_map(|b| OpCode::from_u8(b).unwrap()),
            fin in any::<bool>(),
            len in prop::sample::select(&[0usize, 1, 7, 8, 9, 125, 126, 127, 300, 65_535, 65_536][..]),
            mask in any::<[u8; 4]>(),
            tail in prop::collection::vec(any::<u8>(), 0..4),
        ) {
            let len = if op.is_control() { len.min(MAX_CONTROL_PAYLOAD) } else { len };
            let fin = fin || op.is_control();
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut bytes = client(fin, op, &payload, mask);
            let n = bytes.len();
            prop_assert_eq!(n, header_len(len) + 4 + len);
            for cut in (0..n.min(20)).chain(n.saturating_sub(3)..n) {
                let mut prefix = bytes[..cut].to_vec();
                prop_assert_eq!(decode_client_frame(&mut prefix, MAX), Ok(None));
            }
            bytes.extend_from_slice(&tail);
            let (frame, used) = decode_client_frame(&mut bytes, MAX).unwrap().unwrap();
            prop_assert_eq!((frame, used), (ClientFrame { fin, opcode: op, payload: &payload }, n));
        }

        #[test]
        fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..40), max in 0usize..64) {
            if let Ok(Some((frame, used))) = decode_client_frame(&mut bytes.clone(), max) {
                prop_assert!(used <= bytes.len() && frame.payload.len() <= max);
            }
            if let Ok(Some((code, reason))) = decode_close(&bytes) {
                prop_assert!(2 + reason.len() == bytes.len() && code >= 1000);
            }
        }

        #[test]
        fn close_round_trip(code in 3000u16..5000, reason in ".{0,80}") {
            let mut out = BytesMut::new();
            encode_close(code, &reason, &mut out);
            prop_assert!(out.len() - 2 <= MAX_CONTROL_PAYLOAD);
            let (decoded, cut) = decode_close(&out[2..]).unwrap().unwrap();
            prop_assert!(decoded == code && reason.starts_with(cut));
        }
    }
}

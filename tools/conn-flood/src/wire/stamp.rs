//! The stamp inside every pushed message: which push it is and when it was sent.
//!
//! ```text
//! cf:<seq>:<send_ns>:xxxxxxxx...      padded with 'x' to the message size (100 bytes by default)
//!    seq      the run-wide push number, from 0
//!    send_ns  CLOCK_MONOTONIC just before the publisher wrote the request (clock.rs)
//! ```
//!
//! The stamp is plain ASCII with no character JSON escapes, so it reaches the client verbatim
//! inside Pomelo's `onMsg {"msg":"cf:..."}` body and as the raw payload of a Redis `message`.
//! [`find`] scans a body for it without allocating.

use bytes::{BufMut, BytesMut};

/// What every stamp starts with.
pub const MARK: &[u8] = b"cf:";

/// The shortest message that holds any stamp (two 20-digit numbers).
pub const MAX_STAMP_LEN: usize = MARK.len() + 20 + 1 + 20 + 1;

/// Appends the stamp for push `seq` sent at `send_ns`, padded with `x` to `size` bytes (or
/// longer, if the stamp itself is longer).
pub fn encode(seq: u64, send_ns: u64, size: usize, out: &mut BytesMut) {
    let start = out.len();
    out.extend_from_slice(MARK);
    put_decimal(seq, out);
    out.put_u8(b':');
    put_decimal(send_ns, out);
    out.put_u8(b':');
    let written = out.len() - start;
    out.resize(out.len() + size.saturating_sub(written), b'x');
}

/// Finds the first stamp in `body`; returns `(seq, send_ns)`.
#[inline]
pub fn find(body: &[u8]) -> Option<(u64, u64)> {
    let at = body.windows(MARK.len()).position(|w| w == MARK)?;
    let rest = body.get(at + MARK.len()..)?;
    let (seq, used) = take_decimal(rest)?;
    let rest = rest.get(used..)?.strip_prefix(b":")?;
    let (send_ns, used) = take_decimal(rest)?;
    rest.get(used..)?.strip_prefix(b":")?;
    Some((seq, send_ns))
}

/// Appends `v` in decimal.
fn put_decimal(v: u64, out: &mut BytesMut) {
    let mut digits = [0u8; 20];
    let mut n = v;
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Reads a decimal number of at most 20 digits from the front of `s`; returns it and the digits
/// used.
#[inline]
fn take_decimal(s: &[u8]) -> Option<(u64, usize)> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in &s[..digits] {
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some((v, digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_inside_a_pomelo_body() {
        let mut msg = BytesMut::new();
        encode(42, 1_234_567_890_123, 100, &mut msg);
        assert_eq!(msg.len(), 100);
        assert!(msg.starts_with(b"cf:42:1234567890123:xxx"));
        let mut body = br#"{"msg":""#.to_vec();
        body.extend_from_slice(&msg);
        body.extend_from_slice(br#""}"#);
        assert_eq!(find(&body), Some((42, 1_234_567_890_123)));
    }

    #[test]
    fn a_stamp_longer_than_the_size_is_kept_whole() {
        let mut msg = BytesMut::new();
        encode(u64::MAX, u64::MAX, 10, &mut msg);
        assert_eq!(msg.len(), MAX_STAMP_LEN);
        assert_eq!(find(&msg), Some((u64::MAX, u64::MAX)));
    }

    #[test]
    fn zero_and_bad_stamps() {
        let mut msg = BytesMut::new();
        encode(0, 0, 0, &mut msg);
        assert_eq!(&msg[..], b"cf:0:0:");
        assert_eq!(find(&msg), Some((0, 0)));
        for bad in [
            &b""[..],
            b"cf:",
            b"cf:1",
            b"cf:1:",
            b"cf:1:2",
            b"cf::2:",
            b"cf:1:x:",
            b"cf:99999999999999999999:1:",
            b"{\"msg\":\"hello\"}",
        ] {
            assert_eq!(find(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}

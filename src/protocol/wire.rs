//! The primitive codec layer: the integers every protocol frame is built from.
//!
//! - **u24**: Pomelo's package length, 3 bytes big-endian (`0..=0xFF_FFFF`).
//! - **varint**: Pomelo's message id, base-128 little-endian groups like protobuf: the low 7 bits
//!   come first and the high bit of each byte says "another byte follows".
//!
//! ```text
//! id 300 = 0b10_0101100
//!          +----------+----------+
//!          | 1 0101100| 0 0000010|   = ac 02
//!          +----------+----------+
//!            ^ more     ^ last
//! ```
//!
//! # Invariants
//! - A `u32` varint is at most [`MAX_VARINT_LEN`] (5) bytes; a longer one, or one whose value does
//!   not fit a `u32`, is [`ProtocolError::Malformed`], as is one cut short. The varint decoder
//!   works on a complete field (the message body is always whole), so it never asks for more.
//! - Non-minimal encodings (`80 00` for 0) are accepted, as protobuf and pomelo-protocol do;
//!   the encoder always writes the minimal form.
//!
//! Beside them, [`truncate_str`]: the reasons protocols carry (a Pomelo kick, a WebSocket close)
//! have a byte limit, and a cut must fall on a character boundary.

use bytes::{BufMut, BytesMut};

use crate::protocol::ProtocolError;

/// The longest varint that can carry a `u32`.
pub const MAX_VARINT_LEN: usize = 5;

/// Reads a 3-byte big-endian length.
#[inline]
pub fn get_u24(b: [u8; 3]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

/// Writes the low 24 bits of `v` as a 3-byte big-endian length.
///
/// Callers check `v <= 0xFF_FFFF` first (package encoders return
/// [`ProtocolError::BodyTooLarge`]); higher bits are dropped.
#[inline]
pub fn put_u24(out: &mut BytesMut, v: u32) {
    debug_assert!(v <= 0xFF_FFFF, "u24 out of range: {v}");
    let [_, hi, mid, lo] = v.to_be_bytes();
    out.put_slice(&[hi, mid, lo]);
}

/// Why a varint could not be read; [`decode_varint`] names it in a [`ProtocolError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarintFault {
    /// The input ended while the last byte read still had its continuation bit set.
    Truncated,
    /// More than five bytes, or a value above `u32::MAX`.
    Overlong,
}

/// Decodes a varint from the front of `buf`: the value and the number of bytes it took.
pub(crate) fn read_varint(buf: &[u8]) -> Result<(u32, usize), VarintFault> {
    let mut value: u32 = 0;
    for (i, &byte) in buf.iter().take(MAX_VARINT_LEN).enumerate() {
        let bits = u32::from(byte & 0x7f);
        // The fifth group holds bits 28..35; only four of them fit a u32.
        if i == MAX_VARINT_LEN - 1 && bits > 0x0f {
            return Err(VarintFault::Overlong);
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    if buf.len() >= MAX_VARINT_LEN {
        Err(VarintFault::Overlong)
    } else {
        Err(VarintFault::Truncated)
    }
}

/// Decodes a varint from the front of `buf`, which must hold the whole field.
///
/// Returns the value and the number of bytes it took. A truncated, longer than five bytes or
/// larger than `u32::MAX` varint is [`ProtocolError::Malformed`].
pub fn decode_varint(buf: &[u8]) -> Result<(u32, usize), ProtocolError> {
    read_varint(buf).map_err(|fault| match fault {
        VarintFault::Truncated => ProtocolError::Malformed("truncated varint"),
        VarintFault::Overlong => ProtocolError::Malformed("varint overflows u32"),
    })
}

/// Appends `v` as a minimal varint.
#[inline]
pub fn encode_varint(mut v: u32, out: &mut BytesMut) {
    let mut bytes = [0u8; MAX_VARINT_LEN];
    let mut n = 0;
    for slot in bytes.iter_mut() {
        let low = (v & 0x7f) as u8;
        v >>= 7;
        n += 1;
        if v == 0 {
            *slot = low;
            break;
        }
        *slot = low | 0x80;
    }
    out.put_slice(bytes.get(..n).unwrap_or(&bytes));
}

/// The number of bytes [`encode_varint`] writes for `v` (1..=5).
#[inline]
pub fn varint_len(v: u32) -> usize {
    // 1 byte per started group of 7 significant bits, and 1 for zero.
    let significant = 32 - v.leading_zeros() as usize;
    significant.div_ceil(7).max(1)
}

/// Appends `v` as a minimal 64-bit varint (pomelo-protobuf's integers).
pub fn encode_varint64(mut v: u64, out: &mut BytesMut) {
    while v >= 0x80 {
        out.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// The number of bytes [`encode_varint64`] writes for `v` (1..=10).
pub fn varint64_len(v: u64) -> usize {
    let significant = 64 - v.leading_zeros() as usize;
    significant.div_ceil(7).max(1)
}

/// Decodes a 64-bit varint from the front of `buf`: the value and its length, or `None` when
/// `buf` ends inside it or it does not fit 64 bits (more than ten bytes, or bits past the 64th).
pub fn decode_varint64(buf: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().take(10).enumerate() {
        let bits = u64::from(byte & 0x7f);
        if i == 9 && bits > 1 {
            return None;
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_str(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_str("héllo", 2), "h");
        assert_eq!(truncate_str("héllo", 3), "hé");
        assert_eq!(truncate_str("abc", 10), "abc");
        assert_eq!(truncate_str("", 0), "");
    }

    fn enc(v: u32) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_varint(v, &mut out);
        out.to_vec()
    }

    #[test]
    fn u24_round_trip() {
        assert_eq!(get_u24([0x00, 0x02, 0x4f]), 591);
        assert_eq!(get_u24([0xff, 0xff, 0xff]), 0xFF_FFFF);
        let mut out = BytesMut::new();
        put_u24(&mut out, 0x01_0203);
        assert_eq!(&out[..], &[1, 2, 3]);
    }

    #[test]
    fn varint_vectors_from_the_spec() {
        // pomelo-hybrid.md §2: id 1 -> 01; 300 -> ac 02.
        assert_eq!(enc(1), [0x01]);
        assert_eq!(enc(300), [0xac, 0x02]);
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(127), [0x7f]);
        assert_eq!(enc(128), [0x80, 0x01]);
        assert_eq!(enc(u32::MAX), [0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(decode_varint(&[0xac, 0x02]), Ok((300, 2)));
        assert_eq!(decode_varint(&[0x01]), Ok((1, 1)));
    }

    #[test]
    fn varint_with_trailing_bytes_reads_only_itself() {
        assert_eq!(decode_varint(&[0xac, 0x02, 0x1c, 0xff]), Ok((300, 2)));
        assert_eq!(decode_varint(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x80]), Ok((u32::MAX, 5)));
    }

    #[test]
    fn non_minimal_varint_is_accepted() {
        assert_eq!(decode_varint(&[0x80, 0x00]), Ok((0, 2)));
    }

    #[test]
    fn truncated_varint_at_every_split_is_malformed() {
        let full = enc(u32::MAX);
        for cut in 0..full.len() {
            assert_eq!(
                decode_varint(&full[..cut]),
                Err(ProtocolError::Malformed("truncated varint")),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn overlong_varints_are_malformed() {
        let overflow = ProtocolError::Malformed("varint overflows u32");
        // 2^32 needs 33 bits.
        assert_eq!(decode_varint(&[0x80, 0x80, 0x80, 0x80, 0x10]), Err(overflow.clone()));
        // Six bytes.
        assert_eq!(decode_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), Err(overflow.clone()));
        // Five bytes, the fifth still continuing, nothing after it.
        assert_eq!(decode_varint(&[0x80, 0x80, 0x80, 0x80, 0x80]), Err(overflow));
    }

    proptest! {
        #[test]
        fn varint_round_trip(v in any::<u32>(), tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut bytes = enc(v);
            prop_assert_eq!(bytes.len(), varint_len(v));
            let n = bytes.len();
            bytes.extend_from_slice(&tail);
            prop_assert_eq!(decode_varint(&bytes), Ok((v, n)));
        }

        #[test]
        fn varint_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..8)) {
            if let Ok((_, n)) = decode_varint(&bytes) {
                prop_assert!((1..=MAX_VARINT_LEN).contains(&n) && n <= bytes.len());
            }
        }
    }
}

//! MQTT's data representation (3.1.1 §1.5, 5.0 §1.5): two- and four-byte integers (big-endian),
//! the variable byte integer, UTF-8 strings and binary data (a u16 length, then the bytes).
//!
//! ```text
//! variable byte integer: 7 bits per byte, low group first, bit 7 = "another byte follows",
//! at most 4 bytes (0..=268_435_455):      321 = 0b10_1000001 -> c1 02
//! UTF-8 string / binary data:             len: u16 BE | len bytes
//! ```
//!
//! # Invariants
//! - A variable byte integer longer than 4 bytes is Malformed; non-minimal forms (`80 00`)
//!   are accepted (the spec only asks senders for the minimal form, which the encoder writes).
//! - Strings are validated as MQTT UTF-8 (§1.5.4): well-formed UTF-8 (so no surrogates and
//!   no overlong forms, which Rust's `str` cannot hold anyway) and no U+0000 [MQTT-1.5.4-2].
//!   Other control characters (U+0001..U+001F, U+007F..U+009F) and non-characters are
//!   *accepted*: the spec says senders SHOULD NOT send them and a receiver MAY refuse them;
//!   refusing would break clients that put `\n` in user properties.
//! - [`Reader`] never reads past its slice and never panics; a short field is Malformed.

use bytes::{BufMut, BytesMut};

use crate::protocol::mqtt::MqttError;

/// The largest value of a variable byte integer, and so the largest remaining length.
pub const MAX_VAR_INT: u32 = 268_435_455;
/// The longest string or binary field (its length is a u16).
pub const MAX_FIELD_LEN: usize = u16::MAX as usize;

/// Reads a variable byte integer from the front of `buf`: `Ok(None)` when `buf` ends inside it
/// (a fixed header still arriving), else the value and its length.
pub(crate) fn read_var_int(buf: &[u8]) -> Result<Option<(u32, usize)>, MqttError> {
    let mut value = 0u32;
    for (i, &byte) in buf.iter().take(4).enumerate() {
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 {
        Err(MqttError::Malformed("variable byte integer longer than 4 bytes"))
    } else {
        Ok(None)
    }
}

/// The bytes [`put_var_int`] writes for `v` (1..=4 for values up to [`MAX_VAR_INT`]).
#[inline]
pub(crate) fn var_int_len(v: u32) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Appends `v` (at most [`MAX_VAR_INT`]) as a minimal variable byte integer.
#[inline]
pub(crate) fn put_var_int(out: &mut BytesMut, mut v: u32) {
    debug_assert!(v <= MAX_VAR_INT);
    loop {
        let low = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.put_u8(low);
            return;
        }
        out.put_u8(low | 0x80);
    }
}

/// Validates an MQTT UTF-8 string (see the module invariants).
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, MqttError> {
    let s = std::str::from_utf8(bytes).map_err(|_| MqttError::Malformed("invalid UTF-8"))?;
    if bytes.contains(&0) {
        return Err(MqttError::Malformed("U+0000 in a UTF-8 string"));
    }
    Ok(s)
}

/// The on-wire length of a string or binary field, or an encode error past 65 535 bytes.
#[inline]
pub(crate) fn field_len(len: usize) -> Result<usize, MqttError> {
    if len > MAX_FIELD_LEN {
        return Err(MqttError::Encode("string or binary field over 65535 bytes"));
    }
    Ok(2 + len)
}

/// Appends a string or binary field whose length was checked by [`field_len`].
#[inline]
pub(crate) fn put_field(out: &mut BytesMut, bytes: &[u8]) {
    debug_assert!(bytes.len() <= MAX_FIELD_LEN);
    out.put_u16(bytes.len() as u16);
    out.put_slice(bytes);
}

/// A cursor over a complete packet body (its methods are crate-private).
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Everything not read yet; the reader is then empty.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// The next `n` bytes, or Malformed `what`.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], MqttError> {
        let (head, tail) = self.buf.split_at_checked(n).ok_or(MqttError::Malformed(what))?;
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, MqttError> {
        let (&b, tail) = self.buf.split_first().ok_or(MqttError::Malformed("truncated byte"))?;
        self.buf = tail;
        Ok(b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, MqttError> {
        let (&b, tail) = self
            .buf
            .split_first_chunk::<2>()
            .ok_or(MqttError::Malformed("truncated two byte integer"))?;
        self.buf = tail;
        Ok(u16::from_be_bytes(b))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, MqttError> {
        let (&b, tail) = self
            .buf
            .split_first_chunk::<4>()
            .ok_or(MqttError::Malformed("truncated four byte integer"))?;
        self.buf = tail;
        Ok(u32::from_be_bytes(b))
    }

    /// A variable byte integer inside a complete body: a cut one is Malformed.
    pub(crate) fn var_int(&mut self) -> Result<u32, MqttError> {
        match read_var_int(self.buf)? {
            Some((v, n)) => {
                self.buf = self.buf.get(n..).unwrap_or_default();
                Ok(v)
            }
            None => Err(MqttError::Malformed("truncated variable byte integer")),
        }
    }

    pub(crate) fn binary(&mut self) -> Result<&'a [u8], MqttError> {
        let len = self.u16()?;
        self.take(usize::from(len), "truncated string or binary data")
    }

    pub(crate) fn string(&mut self) -> Result<&'a str, MqttError> {
        utf8(self.binary()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: u32) -> Vec<u8> {
        let mut out = BytesMut::new();
        put_var_int(&mut out, v);
        assert_eq!(out.len(), var_int_len(v));
        out.to_vec()
    }

    #[test]
    fn var_int_boundaries_from_the_spec_table() {
        // 5.0 §1.5.5, table 1-1.
        for (v, bytes) in [
            (0, &[0x00][..]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xff, 0x7f]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xff, 0xff, 0x7f]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (MAX_VAR_INT, &[0xff, 0xff, 0xff, 0x7f]),
        ] {
            assert_eq!(enc(v), bytes);
            assert_eq!(read_var_int(bytes), Ok(Some((v, bytes.len()))));
            for cut in 0..bytes.len() {
                assert_eq!(read_var_int(&bytes[..cut]), Ok(None));
            }
        }
    }

    #[test]
    fn five_byte_var_int_is_malformed() {
        assert!(matches!(
            read_var_int(&[0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(MqttError::Malformed(_))
        ));
        assert!(matches!(read_var_int(&[0x80, 0x80, 0x80, 0x80]), Err(MqttError::Malformed(_))));
        assert_eq!(read_var_int(&[0x80, 0x00]), Ok(Some((0, 2))));
    }

    #[test]
    fn strings() {
        assert_eq!(Reader::new(&[0, 2, b'h', b'i']).string(), Ok("hi"));
        assert!(matches!(Reader::new(&[0, 3, b'h', b'i']).string(), Err(MqttError::Malformed(_))));
        assert!(matches!(Reader::new(&[0, 1, 0]).string(), Err(MqttError::Malformed(_))));
        // A lone surrogate, CESU-style: ED A0 80.
        assert!(matches!(
            Reader::new(&[0, 3, 0xed, 0xa0, 0x80]).string(),
            Err(MqttError::Malformed(_))
        ));
        // Overlong NUL: C0 80.
        assert!(matches!(Reader::new(&[0, 2, 0xc0, 0x80]).string(), Err(MqttError::Malformed(_))));
        // Control characters are accepted (module doc).
        assert_eq!(Reader::new(&[0, 1, b'\n']).string(), Ok("\n"));
    }
}

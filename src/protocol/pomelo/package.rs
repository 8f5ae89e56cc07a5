//! The Pomelo *package*: the framing layer of every byte on a connection
//! (pomelo-protocol `Package.encode/decode`, pomelo-hybrid.md §1).
//!
//! ```text
//!  byte 0     1      2      3      4 ..
//! +--------+--------------------+------------------------+
//! |  type  |  length: u24, BE   |  body: `length` bytes  |
//! +--------+--------------------+------------------------+
//!  1 HANDSHAKE  2 HANDSHAKE_ACK  3 HEARTBEAT  4 DATA  5 KICK
//! ```
//!
//! # Invariants
//! - As soon as the 4-byte header is present, the type is checked ([`ProtocolError::UnknownPackageType`])
//!   and the declared length is checked against the caller's `max_body`
//!   ([`ProtocolError::PackageTooLarge`]), before any of the body is awaited: nothing is ever
//!   buffered for an oversize package (rumqttc `check` does the same for MQTT).
//! - [`decode`] borrows the body from its input and never allocates; `Ok(None)` means "need more
//!   bytes", and the input is then left to the caller untouched.
//! - Encoders refuse a body longer than [`MAX_BODY_LEN`] ([`ProtocolError::BodyTooLarge`]) and
//!   write nothing in that case.

use bytes::{BufMut, BytesMut};

use crate::protocol::ProtocolError;
use crate::protocol::wire::{get_u24, put_u24};

/// The package type, the first header byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PackageType {
    /// Client hello (JSON `{"sys":..,"user":..}`) and the server's answer.
    Handshake = 1,
    /// The client's "handshake done"; always empty.
    HandshakeAck = 2,
    /// Ping-pong; always empty.
    Heartbeat = 3,
    /// A message (request, notify, response, push): see `message`.
    Data = 4,
    /// Server-initiated close, JSON `{"reason":".."}` (empty in Pomelo 0.4).
    Kick = 5,
}

impl TryFrom<u8> for PackageType {
    type Error = ProtocolError;

    fn try_from(byte: u8) -> Result<Self, ProtocolError> {
        match byte {
            1 => Ok(PackageType::Handshake),
            2 => Ok(PackageType::HandshakeAck),
            3 => Ok(PackageType::Heartbeat),
            4 => Ok(PackageType::Data),
            5 => Ok(PackageType::Kick),
            other => Err(ProtocolError::UnknownPackageType(other)),
        }
    }
}

/// Bytes in a package header: the type and the 3-byte length.
pub const HEADER_LEN: usize = 4;
/// The largest body the 3-byte length can declare.
pub const MAX_BODY_LEN: usize = 0xFF_FFFF;
/// A whole HEARTBEAT package.
pub const HEARTBEAT: [u8; 4] = [PackageType::Heartbeat as u8, 0, 0, 0];
/// A whole HANDSHAKE_ACK package.
pub const HANDSHAKE_ACK: [u8; 4] = [PackageType::HandshakeAck as u8, 0, 0, 0];

/// One decoded package, borrowing its body from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Package<'a> {
    /// The package type.
    pub kind: PackageType,
    /// The body, exactly as long as the header declared.
    pub body: &'a [u8],
}

/// Decodes one package from the front of `buf`; returns it and the bytes consumed.
///
/// As soon as the 4-byte header is present, the type is checked (UnknownPackageType) and the
/// declared length against `max_body` (PackageTooLarge) — before any body is awaited, so nothing
/// is buffered for an oversize package. Ok(None) = need more bytes.
#[inline]
pub fn decode(buf: &[u8], max_body: usize) -> Result<Option<(Package<'_>, usize)>, ProtocolError> {
    let Some((&[kind, l0, l1, l2], rest)) = buf.split_first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let kind = PackageType::try_from(kind)?;
    let len = get_u24([l0, l1, l2]) as usize;
    if len > max_body {
        return Err(ProtocolError::PackageTooLarge { len, max: max_body });
    }
    Ok(rest.get(..len).map(|body| (Package { kind, body }, HEADER_LEN + len)))
}

/// Appends the 4-byte header of a package whose body is `body_len` bytes long.
///
/// The caller appends exactly `body_len` bytes of body after it.
#[inline]
pub fn encode_header(
    kind: PackageType,
    body_len: usize,
    out: &mut BytesMut,
) -> Result<(), ProtocolError> {
    let len = checked_len(body_len)?;
    out.reserve(HEADER_LEN);
    out.put_u8(kind as u8);
    put_u24(out, len);
    Ok(())
}

/// Appends a whole package: header and body.
#[inline]
pub fn encode(kind: PackageType, body: &[u8], out: &mut BytesMut) -> Result<(), ProtocolError> {
    let len = checked_len(body.len())?;
    out.reserve(HEADER_LEN + body.len());
    out.put_u8(kind as u8);
    put_u24(out, len);
    out.put_slice(body);
    Ok(())
}

/// `body_len` as a u24, or [`ProtocolError::BodyTooLarge`].
#[inline]
fn checked_len(body_len: usize) -> Result<u32, ProtocolError> {
    match u32::try_from(body_len) {
        Ok(len) if body_len <= MAX_BODY_LEN => Ok(len),
        _ => Err(ProtocolError::BodyTooLarge(body_len)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: usize = 65_536;

    /// `{"reason":"attack"}` as captured (pomelo-captures.md, run 1 conn 5).
    const KICK_ATTACK: &[u8] = &[
        0x05, 0x00, 0x00, 0x13, 0x7b, 0x22, 0x72, 0x65, 0x61, 0x73, 0x6f, 0x6e, 0x22, 0x3a, 0x22,
        0x61, 0x74, 0x74, 0x61, 0x63, 0x6b, 0x22, 0x7d,
    ];

    #[test]
    fn type_bytes() {
        for (byte, kind) in [
            (1, PackageType::Handshake),
            (2, PackageType::HandshakeAck),
            (3, PackageType::Heartbeat),
            (4, PackageType::Data),
            (5, PackageType::Kick),
        ] {
            assert_eq!(PackageType::try_from(byte), Ok(kind));
            assert_eq!(kind as u8, byte);
        }
        for byte in [0u8, 6, 9, 0xff] {
            assert_eq!(PackageType::try_from(byte), Err(ProtocolError::UnknownPackageType(byte)));
        }
    }

    #[test]
    fn heartbeat_and_ack_constants() {
        let (pkg, n) = decode(&HEARTBEAT, MAX).unwrap().unwrap();
        assert_eq!((pkg.kind, pkg.body, n), (PackageType::Heartbeat, &[][..], 4));
        let (pkg, n) = decode(&HANDSHAKE_ACK, MAX).unwrap().unwrap();
        assert_eq!((pkg.kind, pkg.body, n), (PackageType::HandshakeAck, &[][..], 4));
        let mut out = BytesMut::new();
        encode(PackageType::Heartbeat, &[], &mut out).unwrap();
        assert_eq!(&out[..], &HEARTBEAT);
    }

    #[test]
    fn package_with_trailing_bytes() {
        let mut stream = KICK_ATTACK.to_vec();
        stream.extend_from_slice(&[0x03, 0x00, 0x00]);
        let (pkg, n) = decode(&stream, MAX).unwrap().unwrap();
        assert_eq!(pkg.kind, PackageType::Kick);
        assert_eq!(pkg.body, br#"{"reason":"attack"}"#);
        assert_eq!(n, KICK_ATTACK.len());
        // The trailing partial header asks for more.
        assert_eq!(decode(&stream[n..], MAX), Ok(None));
    }

    #[test]
    fn every_split_point_needs_more_bytes() {
        for cut in 0..KICK_ATTACK.len() {
            assert_eq!(decode(&KICK_ATTACK[..cut], MAX), Ok(None), "cut at {cut}");
        }
        assert!(decode(KICK_ATTACK, MAX).unwrap().is_some());
    }

    #[test]
    fn oversize_is_refused_as_soon_as_the_header_is_in() {
        // Declares 0x010001 = 65_537 bytes, one over the cap; no body follows.
        let header = [0x04, 0x01, 0x00, 0x01];
        for cut in 0..HEADER_LEN {
            assert_eq!(decode(&header[..cut], MAX), Ok(None));
        }
        assert_eq!(
            decode(&header, MAX),
            Err(ProtocolError::PackageTooLarge { len: 65_537, max: MAX })
        );
        // Exactly the cap is fine (and waits for its body).
        assert_eq!(decode(&[0x04, 0x01, 0x00, 0x00], MAX), Ok(None));
    }

    #[test]
    fn unknown_type_is_refused_with_the_header() {
        // pomelo-captures.md conn 6: `09 00 00 00`.
        assert_eq!(
            decode(&[0x09, 0x00, 0x00, 0x00], MAX),
            Err(ProtocolError::UnknownPackageType(9))
        );
        assert_eq!(decode(&[0x09, 0x00, 0x00], MAX), Ok(None));
        // The type is checked before the length.
        assert_eq!(
            decode(&[0x00, 0xff, 0xff, 0xff], MAX),
            Err(ProtocolError::UnknownPackageType(0))
        );
    }

    #[test]
    fn encode_refuses_a_body_past_the_u24() {
        let mut out = BytesMut::new();
        assert_eq!(
            encode_header(PackageType::Data, MAX_BODY_LEN + 1, &mut out),
            Err(ProtocolError::BodyTooLarge(MAX_BODY_LEN + 1))
        );
        assert!(out.is_empty());
        encode_header(PackageType::Data, MAX_BODY_LEN, &mut out).unwrap();
        assert_eq!(&out[..], &[0x04, 0xff, 0xff, 0xff]);
    }

    fn package_type() -> impl Strategy<Value = PackageType> {
        (1u8..=5).prop_map(|b| PackageType::try_from(b).unwrap())
    }

    proptest! {
        #[test]
        fn package_round_trip(
            kind in package_type(),
            body in proptest::collection::vec(any::<u8>(), 0..300),
            tail in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let mut out = BytesMut::new();
            encode(kind, &body, &mut out).unwrap();
            prop_assert_eq!(out.len(), HEADER_LEN + body.len());
            let n = out.len();
            out.extend_from_slice(&tail);
            let (pkg, used) = decode(&out, MAX).unwrap().unwrap();
            prop_assert_eq!(pkg, Package { kind, body: &body });
            prop_assert_eq!(used, n);
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), max in 0usize..80) {
            if let Ok(Some((pkg, used))) = decode(&bytes, max) {
                prop_assert!(used <= bytes.len());
                prop_assert_eq!(used, HEADER_LEN + pkg.body.len());
                prop_assert!(pkg.body.len() <= max);
            }
        }
    }
}

//! The error type of the Pomelo codecs and the primitive layer under [`crate::protocol`]; the
//! WebSocket codecs have their own ([`WsError`](crate::protocol::websocket::WsError) with a close
//! code, [`UpgradeError`](crate::protocol::websocket::UpgradeError) with an HTTP status), since
//! their faults end a connection differently.
//!
//! # Invariants
//! - Every variant is a fault of the peer (when decoding) or of the caller (when encoding); none
//!   means "need more bytes", which is `Ok(None)` instead.
//! - [`ProtocolError::kick_reason`] is the reason string sent in the Pomelo KICK before the
//!   connection is closed (DESIGN §1: `package too large`, `protocol error: ...`).

/// A protocol fault found while decoding input or refused while encoding output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A package header declares a body longer than the configured maximum.
    #[error("package too large: {len} bytes (max {max})")]
    PackageTooLarge {
        /// The declared body length.
        len: usize,
        /// The configured maximum body length.
        max: usize,
    },
    /// A package header carries a type byte outside `1..=5`.
    #[error("unknown package type {0}")]
    UnknownPackageType(u8),
    /// Encoding: a body does not fit the 3-byte package length (more than `0xFF_FFFF` bytes).
    #[error("body too large: {0} bytes (max 16777215)")]
    BodyTooLarge(usize),
    /// Encoding: an uncompressed route does not fit its 1-byte length (more than 255 bytes).
    #[error("route too long: {0} bytes (max 255)")]
    RouteTooLong(usize),
    /// Any other violation of the wire format, named in a few words.
    #[error("{0}")]
    Malformed(&'static str),
}

impl ProtocolError {
    /// The reason sent in the KICK package when this error closes a connection.
    ///
    /// `PackageTooLarge` is `"package too large"`; everything else is
    /// `"protocol error: <display>"`.
    pub fn kick_reason(&self) -> String {
        match self {
            ProtocolError::PackageTooLarge { .. } => "package too large".to_owned(),
            other => format!("protocol error: {other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ProtocolError;

    #[test]
    fn display_of_package_too_large() {
        let e = ProtocolError::PackageTooLarge { len: 70_000, max: 65_536 };
        assert_eq!(e.to_string(), "package too large: 70000 bytes (max 65536)");
        assert_eq!(e.kick_reason(), "package too large");
    }

    #[test]
    fn kick_reasons_of_other_errors() {
        assert_eq!(
            ProtocolError::UnknownPackageType(9).kick_reason(),
            "protocol error: unknown package type 9"
        );
        assert_eq!(
            ProtocolError::Malformed("truncated message id").kick_reason(),
            "protocol error: truncated message id"
        );
        assert_eq!(
            ProtocolError::RouteTooLong(300).kick_reason(),
            "protocol error: route too long: 300 bytes (max 255)"
        );
        assert_eq!(
            ProtocolError::BodyTooLarge(16_777_216).kick_reason(),
            "protocol error: body too large: 16777216 bytes (max 16777215)"
        );
    }
}

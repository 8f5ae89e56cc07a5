//! A clientId as the presence table stores it: inline when short (as almost all are), on the
//! heap otherwise.
//!
//! # Invariants
//! - 24 bytes whatever the length; ids of up to [`INLINE_CAPACITY`] bytes need no allocation.
//! - Always valid UTF-8 (built from a `&str`).

use std::fmt;

/// The longest clientId accepted, bytes.
pub const MAX_BYTES: usize = 256;

/// Why `id` cannot be a clientId, whichever frontend brought it; `None` if it can.
pub fn fault(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("is empty")
    } else if id.chars().any(char::is_control) {
        // Each would grow sixfold in every JSON list of clientIds sent to management sessions.
        Some("must not hold control characters")
    } else if id.len() > MAX_BYTES {
        Some("is longer than 256 bytes")
    } else {
        None
    }
}

/// The longest id stored inline, bytes.
pub const INLINE_CAPACITY: usize = 22;

#[derive(Clone, PartialEq, Eq)]
pub enum ClientId {
    Inline { len: u8, bytes: [u8; INLINE_CAPACITY] },
    Heap(Box<str>),
}

impl ClientId {
    pub fn new(id: &str) -> ClientId {
        if id.len() <= INLINE_CAPACITY {
            let mut bytes = [0; INLINE_CAPACITY];
            bytes[..id.len()].copy_from_slice(id.as_bytes());
            ClientId::Inline { len: id.len() as u8, bytes }
        } else {
            ClientId::Heap(id.into())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ClientId::Inline { len, bytes } => {
                // Built from a `&str` cut at its own length, so this cannot fail.
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            ClientId::Heap(id) => id,
        }
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_inline_and_long_ones_on_the_heap() {
        assert_eq!(std::mem::size_of::<ClientId>(), 24);
        let short = ClientId::new("android-2");
        assert!(matches!(short, ClientId::Inline { .. }));
        assert_eq!(short.as_str(), "android-2");
        let edge = "é".repeat(11); // 22 bytes
        assert_eq!(ClientId::new(&edge).as_str(), edge);
        assert!(matches!(ClientId::new(&edge), ClientId::Inline { .. }));
        let long = "x".repeat(23);
        assert!(matches!(ClientId::new(&long), ClientId::Heap(_)));
        assert_eq!(ClientId::new(&long).as_str(), long);
        assert_eq!(ClientId::new("").as_str(), "");
    }
}

//! The two bits of JSON the encoders write by hand: a string literal escaped as JavaScript's
//! `JSON.stringify` escapes it, and a decimal integer; and the two pieces the event readers
//! take out of client JSON without building the rest: whether an event name is `"message"`,
//! and the first element of an array when it is a string.
//!
//! ```text
//! "  ->  \"        \  ->  \\
//! U+0008 \b  U+0009 \t  U+000A \n  U+000C \f  U+000D \r
//! other U+0000..U+001F  ->  \u00xx (lowercase hex)
//! everything else as is: '/', U+007F, U+2028, U+2029, non-ASCII, astral chars
//! ```
//!
//! # Invariants
//! - The output is byte for byte what `JSON.stringify` (ES2019, well-formed) and `serde_json`
//!   write for the same string; a Rust `&str` holds no lone surrogate, the one case where
//!   the two could differ.
//! - [`string_len`] is exactly the length [`put_string`] and [`push_string`] write, so encoders
//!   can reserve once.

use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};

/// The escape of each ASCII control character, U+0000..U+001F.
const CONTROL: [&str; 32] = [
    "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007", "\\b",
    "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f", "\\u0010", "\\u0011", "\\u0012",
    "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019", "\\u001a",
    "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
];

/// The escape of `b`, or `None` when it is written as is.
#[inline]
fn escape(b: u8) -> Option<&'static str> {
    match b {
        b'"' => Some("\\\""),
        b'\\' => Some("\\\\"),
        _ => CONTROL.get(usize::from(b)).copied(),
    }
}

/// Calls `put` with the pieces of `s` as a JSON string literal, quotes included.
#[inline]
fn pieces(s: &str, mut put: impl FnMut(&str)) {
    put("\"");
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        if let Some(esc) = escape(b) {
            // `b` is ASCII, so both ends of the run are char boundaries.
            put(s.get(run..i).unwrap_or_default());
            put(esc);
            run = i + 1;
        }
    }
    put(s.get(run..).unwrap_or_default());
    put("\"");
}

/// The length in bytes of `s` as a JSON string literal, quotes included.
pub(crate) fn string_len(s: &str) -> usize {
    2 + s.bytes().map(|b| escape(b).map_or(1, str::len)).sum::<usize>()
}

/// Appends `s` as a JSON string literal.
pub(crate) fn put_string(s: &str, out: &mut BytesMut) {
    pieces(s, |p| out.put_slice(p.as_bytes()));
}

/// Appends `s` as a JSON string literal to a `String`.
pub(crate) fn push_string(s: &str, out: &mut String) {
    pieces(s, |p| out.push_str(p));
}

/// The longest `u64` in decimal.
const MAX_DECIMAL_LEN: usize = 20;

/// `v` in decimal, as ASCII digits in a fixed buffer: the buffer and where the digits start.
#[inline]
fn digits(mut v: u64) -> ([u8; MAX_DECIMAL_LEN], usize) {
    let mut buf = [0u8; MAX_DECIMAL_LEN];
    let mut start = MAX_DECIMAL_LEN;
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        start -= 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    (buf, start)
}

/// The number of decimal digits of `v`.
pub(crate) fn decimal_len(v: u64) -> usize {
    MAX_DECIMAL_LEN - digits(v).1
}

/// Appends `v` in decimal.
pub(crate) fn put_decimal(v: u64, out: &mut BytesMut) {
    let (buf, start) = digits(v);
    out.put_slice(buf.get(start..).unwrap_or_default());
}

/// Appends `v` in decimal to a `String`.
pub(crate) fn push_decimal(v: u64, out: &mut String) {
    let (buf, start) = digits(v);
    out.extend(buf.get(start..).unwrap_or_default().iter().map(|&d| char::from(d)));
}

/// A JSON string read only for whether it is `"message"` (escapes decoded, nothing kept).
#[derive(Debug)]
pub(crate) struct IsMessage(pub(crate) bool);

impl<'de> Deserialize<'de> for IsMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = IsMessage;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<IsMessage, E> {
                Ok(IsMessage(name == "message"))
            }
        }
        deserializer.deserialize_str(Name)
    }
}

/// A JSON array read only for its first element, kept when it is a string; the other
/// elements are skipped without being built.
#[derive(Debug, Default)]
pub(crate) struct FirstString(pub(crate) Option<String>);

impl<'de> Deserialize<'de> for FirstString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Args;
        impl<'de> Visitor<'de> for Args {
            type Value = FirstString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of arguments")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FirstString, A::Error> {
                let first = match seq.next_element()? {
                    Some(serde_json::Value::String(s)) => Some(s),
                    _ => None,
                };
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FirstString(first))
            }
        }
        deserializer.deserialize_seq(Args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn js(s: &str) -> String {
        let mut out = String::new();
        push_string(s, &mut out);
        out
    }

    #[test]
    fn escapes_as_json_stringify() {
        // Node 20: JSON.stringify of U+0000..U+001F, then `"\/`, U+007F, U+0080, U+00FF,
        // U+2028, U+2029, é, €, 😀.
        let mut input: String = (0u8..0x20).map(char::from).collect();
        input.push_str("\"\\/\u{7f}\u{80}\u{ff}\u{2028}\u{2029}é€😀");
        let want = concat!(
            r#""\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f"#,
            r#"\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c"#,
            r#"\u001d\u001e\u001f\"\\/"#,
            "\u{7f}\u{80}\u{ff}\u{2028}\u{2029}é€😀\""
        );
        assert_eq!(js(&input), want);
        assert_eq!(string_len(&input), want.len());
        let mut out = BytesMut::new();
        put_string(&input, &mut out);
        assert_eq!(&out[..], want.as_bytes());
        assert_eq!((js(""), string_len("")), ("\"\"".to_owned(), 2));
    }

    #[test]
    fn decimals() {
        for v in [0, 1, 9, 10, 99, 100, 25_000, u64::from(u32::MAX), u64::MAX] {
            let mut out = BytesMut::new();
            put_decimal(v, &mut out);
            let mut s = String::new();
            push_decimal(v, &mut s);
            assert_eq!((&out[..], s.as_str()), (v.to_string().as_bytes(), v.to_string().as_str()));
            assert_eq!(decimal_len(v), v.to_string().len());
        }
    }

    proptest! {
        #[test]
        fn escapes_as_serde_json(s in any::<String>()) {
            let want = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(string_len(&s), want.len());
            prop_assert_eq!(js(&s), want);
        }
    }
}

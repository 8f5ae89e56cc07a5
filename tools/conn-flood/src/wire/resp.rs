//! The part of Redis's RESP2 that `SUBSCRIBE` / `PUBLISH` / `PING` need, for the baseline runs
//! against `redis-server`.
//!
//! ```text
//! client:  *2\r\n$9\r\nSUBSCRIBE\r\n$4\r\ndemo\r\n           (every command: an array of bulks)
//! server:  *3\r\n$9\r\nsubscribe\r\n$4\r\ndemo\r\n:1\r\n      subscription confirmed
//!          *3\r\n$7\r\nmessage\r\n$4\r\ndemo\r\n$100\r\ncf:...  a published message
//!          *2\r\n$4\r\npong\r\n$0\r\n\r\n                       PING while subscribed
//!          :19000\r\n                                          PUBLISH: receivers
//!          +OK\r\n  -ERR ...\r\n  $-1\r\n                      the other reply types
//! ```
//!
//! # Invariants
//! - [`decode`] borrows from its input and never allocates; `Ok(None)` means "need more bytes".
//! - Only what these commands produce is accepted: an array holds at most [`MAX_ITEMS`] flat
//!   items (no nested arrays), and a bulk string is at most the caller's `max_bulk` bytes.

use bytes::{BufMut, BytesMut};

/// The most items an array may hold (`pmessage` has 4).
pub const MAX_ITEMS: usize = 4;

/// One flat RESP value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    /// `+...`
    Simple(&'a [u8]),
    /// `-...`
    Error(&'a [u8]),
    /// `:n`
    Int(i64),
    /// `$n ...`, `None` for `$-1`.
    Bulk(Option<&'a [u8]>),
}

/// One RESP reply: a flat item or an array of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// A single value.
    Item(Item<'a>),
    /// An array of `len` values, in `items[..len]`.
    Array {
        /// How many of `items` are set.
        len: usize,
        /// The values.
        items: [Item<'a>; MAX_ITEMS],
    },
}

impl<'a> Reply<'a> {
    /// The array's items, or the one item.
    pub fn items(&self) -> &[Item<'a>] {
        match self {
            Reply::Item(item) => std::slice::from_ref(item),
            Reply::Array { len, items } => &items[..*len],
        }
    }
}

/// Why a reply is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespFault {
    /// An unknown type byte, a bad number, or a missing `\r\n`.
    Syntax,
    /// A nested array or one longer than [`MAX_ITEMS`].
    Unsupported,
    /// A bulk string longer than the limit.
    TooLarge,
}

/// Appends a command as an array of bulk strings.
pub fn encode_command(args: &[&[u8]], out: &mut BytesMut) {
    out.put_u8(b'*');
    put_decimal(args.len(), out);
    out.extend_from_slice(b"\r\n");
    for arg in args {
        out.put_u8(b'$');
        put_decimal(arg.len(), out);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Decodes one reply from the front of `buf`; returns it and the bytes used.
pub fn decode(buf: &[u8], max_bulk: usize) -> Result<Option<(Reply<'_>, usize)>, RespFault> {
    let Some((&b'*', _)) = buf.split_first() else {
        return Ok(decode_item(buf, max_bulk)?.map(|(item, used)| (Reply::Item(item), used)));
    };
    let Some((line, mut used)) = line(&buf[1..]) else {
        return Ok(None);
    };
    used += 1;
    let count = parse_int(line)?;
    let len = match usize::try_from(count) {
        Ok(len) if len <= MAX_ITEMS => len,
        Ok(_) => return Err(RespFault::Unsupported),
        Err(_) => 0, // `*-1`, a null array
    };
    let mut items = [Item::Bulk(None); MAX_ITEMS];
    for slot in items.iter_mut().take(len) {
        if buf.get(used) == Some(&b'*') {
            return Err(RespFault::Unsupported);
        }
        let Some((item, n)) = decode_item(&buf[used..], max_bulk)? else {
            return Ok(None);
        };
        *slot = item;
        used += n;
    }
    Ok(Some((Reply::Array { len, items }, used)))
}

/// Decodes one flat item.
fn decode_item(buf: &[u8], max_bulk: usize) -> Result<Option<(Item<'_>, usize)>, RespFault> {
    let Some((&kind, rest)) = buf.split_first() else {
        return Ok(None);
    };
    let Some((line, used)) = line(rest) else {
        return Ok(None);
    };
    let used = used + 1;
    match kind {
        b'+' => Ok(Some((Item::Simple(line), used))),
        b'-' => Ok(Some((Item::Error(line), used))),
        b':' => Ok(Some((Item::Int(parse_int(line)?), used))),
        b'$' => {
            let len = parse_int(line)?;
            let Ok(len) = usize::try_from(len) else {
                return Ok(Some((Item::Bulk(None), used)));
            };
            if len > max_bulk {
                return Err(RespFault::TooLarge);
            }
            let Some(body) = buf.get(used..used + len + 2) else {
                return Ok(None);
            };
            if &body[len..] != b"\r\n" {
                return Err(RespFault::Syntax);
            }
            Ok(Some((Item::Bulk(Some(&body[..len])), used + len + 2)))
        }
        _ => Err(RespFault::Syntax),
    }
}

/// The line at the front of `buf` without its `\r\n`, and the bytes it used with it.
fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    Some((&buf[..end], end + 2))
}

/// A signed decimal.
fn parse_int(s: &[u8]) -> Result<i64, RespFault> {
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RespFault::Syntax);
    }
    let v = digits.iter().fold(0i64, |v, &d| v * 10 + i64::from(d - b'0'));
    Ok(if negative { -v } else { v })
}

/// Appends `v` in decimal.
fn put_decimal(v: usize, out: &mut BytesMut) {
    out.extend_from_slice(v.to_string().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 20;

    fn bulk(s: &[u8]) -> Item<'_> {
        Item::Bulk(Some(s))
    }

    #[test]
    fn commands() {
        let mut out = BytesMut::new();
        encode_command(&[b"SUBSCRIBE", b"demo"], &mut out);
        assert_eq!(&out[..], b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\ndemo\r\n");
        out.clear();
        encode_command(&[b"PING"], &mut out);
        assert_eq!(&out[..], b"*1\r\n$4\r\nPING\r\n");
    }

    #[test]
    fn pubsub_replies_back_to_back() {
        let stream = b"*3\r\n$9\r\nsubscribe\r\n$4\r\ndemo\r\n:1\r\n\
                       *3\r\n$7\r\nmessage\r\n$4\r\ndemo\r\n$5\r\ncf:1:\r\n\
                       *2\r\n$4\r\npong\r\n$0\r\n\r\n:19000\r\n";
        let (reply, a) = decode(stream, MAX).unwrap().unwrap();
        assert_eq!(reply.items(), &[bulk(b"subscribe"), bulk(b"demo"), Item::Int(1)]);
        let (reply, b) = decode(&stream[a..], MAX).unwrap().unwrap();
        assert_eq!(reply.items(), &[bulk(b"message"), bulk(b"demo"), bulk(b"cf:1:")]);
        let (reply, c) = decode(&stream[a + b..], MAX).unwrap().unwrap();
        assert_eq!(reply.items(), &[bulk(b"pong"), bulk(b"")]);
        let (reply, d) = decode(&stream[a + b + c..], MAX).unwrap().unwrap();
        assert_eq!(reply, Reply::Item(Item::Int(19_000)));
        assert_eq!(a + b + c + d, stream.len());
    }

    #[test]
    fn every_split_point_needs_more_bytes() {
        let message = b"*3\r\n$7\r\nmessage\r\n$4\r\ndemo\r\n$5\r\ncf:1:\r\n";
        for cut in 0..message.len() {
            assert_eq!(decode(&message[..cut], MAX), Ok(None), "cut {cut}");
        }
    }

    #[test]
    fn other_items() {
        assert_eq!(decode(b"+OK\r\n", MAX), Ok(Some((Reply::Item(Item::Simple(b"OK")), 5))));
        assert_eq!(decode(b"-ERR no\r\n", MAX), Ok(Some((Reply::Item(Item::Error(b"ERR no")), 9))));
        assert_eq!(decode(b"$-1\r\n", MAX), Ok(Some((Reply::Item(Item::Bulk(None)), 5))));
        assert_eq!(decode(b":-3\r\n", MAX).unwrap().unwrap().0.items(), &[Item::Int(-3)]);
    }

    #[test]
    fn refusals() {
        assert_eq!(decode(b"?x\r\n", MAX), Err(RespFault::Syntax));
        assert_eq!(decode(b":1x\r\n", MAX), Err(RespFault::Syntax));
        assert_eq!(decode(b"*5\r\n", MAX), Err(RespFault::Unsupported));
        assert_eq!(decode(b"*1\r\n*1\r\n", MAX), Err(RespFault::Unsupported));
        assert_eq!(decode(b"$10\r\n", 4), Err(RespFault::TooLarge));
        assert_eq!(decode(b"$2\r\nabcd", MAX), Err(RespFault::Syntax));
    }
}

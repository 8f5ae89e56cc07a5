//! Decoding bytes with a message's proto into a JSON object (npm `decoder.js`).
//!
//! Fields are read until the message's bytes end, each by its proto's type (the key's wire
//! type is ignored, as Node ignores it: pomelo-protobuf's browser build writes wire type 2 for
//! every `uInt32`, `sInt32` and `int32` field, so a check would refuse every browser client's
//! integers): a non-repeated
//! field's last occurrence wins, a repeated one's occurrences append. Keys come out in the order
//! they were first met (JavaScript's order, so integer-like names first). Missing required
//! fields are not an error, as in Node; everything Node would throw on or misread is (see the
//! module doc of [`super`]).

use serde_json::{Map, Number, Value};

use super::{CodecError, Kind, MAX_DEPTH, Path, Protos, Rule, js_key_order};
use crate::protocol::wire;

pub(super) fn decode(protos: &Protos, message: usize, bytes: &[u8]) -> Result<Value, CodecError> {
    let mut reader = Reader { buf: bytes, pos: 0 };
    let object = read_message(protos, message, &mut reader, bytes.len(), &Path::Root, 0)?;
    Ok(Value::Object(object))
}

/// The input and how far it has been read.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    /// A varint (`what` it is, for the error: truncated, or past 64 bits, which Node would
    /// still sum into a rounded double).
    fn varint(&mut self, end: usize, path: &Path<'_>, what: &str) -> Result<u64, CodecError> {
        let bytes = self.buf.get(self.pos..end).unwrap_or_default();
        match wire::decode_varint64(bytes) {
            Some((value, len)) => {
                self.pos += len;
                Ok(value)
            }
            None if bytes.iter().take(10).any(|&b| b < 0x80) || bytes.len() >= 10 => {
                Err(path.error(format!("{what} is beyond 64 bits")))
            }
            None => Err(path.error(format!("ends inside {what}"))),
        }
    }

    fn take(&mut self, len: usize, end: usize) -> Option<&[u8]> {
        let stop = self.pos.checked_add(len).filter(|&stop| stop <= end)?;
        let bytes = self.buf.get(self.pos..stop)?;
        self.pos = stop;
        Some(bytes)
    }
}

fn read_message(
    protos: &Protos,
    message: usize,
    r: &mut Reader<'_>,
    end: usize,
    path: &Path<'_>,
    depth: usize,
) -> Result<Map<String, Value>, CodecError> {
    if depth >= MAX_DEPTH {
        return Err(path.error(format!("messages nested deeper than {MAX_DEPTH}")));
    }
    let proto = &protos.messages[message];
    let mut object = Map::new();
    while r.pos < end {
        let key = r.varint(end, path, "a field's key")?;
        let tag = key >> 3;
        let found = u32::try_from(tag).ok().and_then(|t| proto.by_tag.get(&t));
        let Some(&index) = found else {
            return Err(path.error(format!("tag {tag} is not in the proto")));
        };
        let (field, kind) = (&proto.fields[index], proto.kinds[index]);
        // The key's wire type is not read, as Node's decoder does not read it: the browser
        // build writes 2 for every varint field (`TYPES[type] || 2`, and uInt32's is 0).
        let here = Path::Field(path, &field.name);
        if field.rule != Rule::Repeated {
            let value = read_value(protos, kind, r, end, &here, depth)?;
            object.insert(field.name.to_string(), value);
            continue;
        }
        let entry =
            object.entry(field.name.to_string()).or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(items) = entry else {
            return Err(here.error("a repeated field's value is not a list"));
        };
        if !kind.is_simple() {
            let item = read_value(protos, kind, r, end, &Path::Index(&here, items.len()), depth)?;
            items.push(item);
            continue;
        }
        let count = r.varint(end, &here, "the element count")?;
        // Every element takes at least one byte: a count past what is left is a lie.
        let left = (end - r.pos) as u64;
        if count > left {
            return Err(here.error(format!("{count} elements, but only {left} bytes are left")));
        }
        items.reserve(count as usize);
        for _ in 0..count {
            let item = read_value(protos, kind, r, end, &Path::Index(&here, items.len()), depth)?;
            items.push(item);
        }
    }
    Ok(in_js_order(object))
}

fn read_value(
    protos: &Protos,
    kind: Kind,
    r: &mut Reader<'_>,
    end: usize,
    path: &Path<'_>,
    depth: usize,
) -> Result<Value, CodecError> {
    let truncated = || path.error("ends inside the value");
    Ok(match kind {
        Kind::UInt32 => Value::from(as_node_sums(r.varint(end, path, "the value")?) as u64),
        Kind::SInt32 => {
            // decodeSInt32, on doubles: `((n % 2 + n) / 2) * (odd ? -1 : 1)`.
            let n = as_node_sums(r.varint(end, path, "the value")?);
            let odd = n % 2.0 == 1.0;
            let magnitude = (n % 2.0 + n) / 2.0;
            Value::from((if odd { -magnitude } else { magnitude }) as i64)
        }
        Kind::Float => {
            let bytes = r.take(4, end).ok_or_else(truncated)?;
            let f = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            number(f64::from(f))
        }
        Kind::Double => {
            let bytes = r.take(8, end).ok_or_else(truncated)?;
            let mut le = [0u8; 8];
            le.copy_from_slice(bytes);
            number(f64::from_le_bytes(le))
        }
        Kind::String => {
            let len = r.varint(end, path, "the value")?;
            let len = usize::try_from(len).map_err(|_| truncated())?;
            let bytes = r.take(len, end).ok_or_else(truncated)?;
            Value::String(String::from_utf8_lossy(bytes).into_owned())
        }
        Kind::Message(message) => {
            let len = r.varint(end, path, "the value")?;
            let stop = usize::try_from(len)
                .ok()
                .and_then(|len| r.pos.checked_add(len))
                .filter(|&stop| stop <= end)
                .ok_or_else(truncated)?;
            Value::Object(read_message(protos, message, r, stop, path, depth + 1)?)
        }
    })
}

/// A varint's value as Node's `decodeUInt32` computes it: the 7-bit groups summed as doubles,
/// low group first (exact up to 2^53, rounded as Node rounds beyond).
fn as_node_sums(n: u64) -> f64 {
    let mut sum = 0.0;
    for group in 0..10 {
        let bits = (n >> (7 * group)) & 0x7f;
        sum += bits as f64 * 2f64.powi(7 * group);
    }
    sum
}

/// A number as `JSON.stringify` gives it: NaN and infinities are `null`.
fn number(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// The object with integer-like keys moved first, as JavaScript orders them.
fn in_js_order(object: Map<String, Value>) -> Map<String, Value> {
    if !object.keys().any(|k| super::array_index(k).is_some()) {
        return object;
    }
    let ordered: Vec<(String, Value)> = object.into_iter().collect();
    let keys = js_key_order(ordered.iter().enumerate().map(|(i, (k, _))| (k.as_str(), i)));
    let order: Vec<usize> = keys.into_iter().map(|(_, i)| i).collect();
    let mut slots: Vec<Option<(String, Value)>> = ordered.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

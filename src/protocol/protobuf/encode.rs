//! Encoding a JSON object with a message's proto (npm `encoder.js`).
//!
//! Two passes over the value: the first checks everything (required fields, every value's JSON
//! type and range, the depth) and sizes every nested message, recording the sizes in visiting
//! order; the second writes, into one reservation, and cannot fail. So an error leaves the
//! output untouched, and a nested message's length prefix is known before its body is written.

use bytes::{BufMut, BytesMut};
use serde_json::{Map, Value};

use super::{CodecError, Kind, MAX_DEPTH, Path, Protos, Rule, array_index, js_key_order};
use crate::protocol::wire;

pub(super) fn encode(
    protos: &Protos,
    message: usize,
    msg: &Value,
    out: &mut BytesMut,
) -> Result<(), CodecError> {
    let Value::Object(object) = msg else {
        return Err(Path::Root.error(format!("must be an object, not {}", json_kind(msg))));
    };
    let mut sizes = Vec::new();
    let len = size_message(protos, message, object, &Path::Root, 0, &mut sizes)?;
    out.reserve(len);
    let mut next = 0;
    write_message(protos, message, object, &sizes, &mut next, out);
    Ok(())
}

/// The object's entries that the message has fields for, in JavaScript's iteration order.
fn entries<'a>(
    protos: &'a Protos,
    message: usize,
    object: &'a Map<String, Value>,
) -> impl Iterator<Item = (&'a str, usize, &'a Value)> + use<'a> {
    let proto = &protos.messages[message];
    let in_order = if object.keys().any(|k| array_index(k).is_some()) {
        Entries::Reordered(js_key_order(object.iter().map(|(k, v)| (k.as_str(), v))).into_iter())
    } else {
        Entries::AsInserted(object.iter())
    };
    in_order.filter_map(move |(name, value)| proto.field_named(name).map(|i| (name, i, value)))
}

/// An object's entries in JavaScript's order, without a copy when insertion order is it (no
/// integer-like key).
enum Entries<'a> {
    AsInserted(serde_json::map::Iter<'a>),
    Reordered(std::vec::IntoIter<(&'a str, &'a Value)>),
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a str, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Entries::AsInserted(iter) => iter.next().map(|(k, v)| (k.as_str(), v)),
            Entries::Reordered(iter) => iter.next(),
        }
    }
}

/// Checks the object against the message and returns its encoded size; pushes the size of
/// every nested message in the order [`write_message`] visits them.
fn size_message(
    protos: &Protos,
    message: usize,
    object: &Map<String, Value>,
    path: &Path<'_>,
    depth: usize,
    sizes: &mut Vec<usize>,
) -> Result<usize, CodecError> {
    if depth >= MAX_DEPTH {
        return Err(path.error(format!("messages nested deeper than {MAX_DEPTH}")));
    }
    let proto = &protos.messages[message];
    for field in proto.fields.iter().filter(|f| f.rule == Rule::Required) {
        if !object.contains_key(&*field.name) {
            return Err(Path::Field(path, &field.name).error("required field missing"));
        }
    }
    let mut len = 0;
    for (name, index, value) in entries(protos, message, object) {
        let (field, kind) = (&proto.fields[index], proto.kinds[index]);
        let here = Path::Field(path, name);
        let key_len = wire::varint64_len(u64::from(key(field.tag, kind)));
        if field.rule != Rule::Repeated {
            len += key_len + size_value(protos, kind, value, &here, depth, sizes)?;
            continue;
        }
        let Value::Array(items) = value else {
            return Err(here.error(format!("must be a list, not {}", json_kind(value))));
        };
        if items.is_empty() {
            continue;
        }
        if kind.is_simple() {
            len += key_len + wire::varint64_len(items.len() as u64);
        } else {
            len += key_len * items.len();
        }
        for (i, item) in items.iter().enumerate() {
            len += size_value(protos, kind, item, &Path::Index(&here, i), depth, sizes)?;
        }
    }
    Ok(len)
}

fn size_value(
    protos: &Protos,
    kind: Kind,
    value: &Value,
    path: &Path<'_>,
    depth: usize,
    sizes: &mut Vec<usize>,
) -> Result<usize, CodecError> {
    Ok(match kind {
        Kind::UInt32 => wire::varint64_len(unsigned(value, path)?),
        Kind::SInt32 => wire::varint64_len(zigzag(value, path)?),
        Kind::Float => number(value, path).map(|_| 4)?,
        Kind::Double => number(value, path).map(|_| 8)?,
        Kind::String => match value {
            Value::String(s) => wire::varint64_len(s.len() as u64) + s.len(),
            other => return Err(path.error(format!("must be a string, not {}", json_kind(other)))),
        },
        Kind::Message(message) => {
            let Value::Object(object) = value else {
                return Err(path.error(format!("must be an object, not {}", json_kind(value))));
            };
            let slot = sizes.len();
            sizes.push(0);
            let len = size_message(protos, message, object, path, depth + 1, sizes)?;
            sizes[slot] = len;
            wire::varint64_len(len as u64) + len
        }
    })
}

/// Writes what [`size_message`] checked; `next` walks `sizes` in the same order.
fn write_message(
    protos: &Protos,
    message: usize,
    object: &Map<String, Value>,
    sizes: &[usize],
    next: &mut usize,
    out: &mut BytesMut,
) {
    let proto = &protos.messages[message];
    for (_, index, value) in entries(protos, message, object) {
        let (field, kind) = (&proto.fields[index], proto.kinds[index]);
        let key = u64::from(key(field.tag, kind));
        match (field.rule, value) {
            (Rule::Repeated, Value::Array(items)) if items.is_empty() => {}
            (Rule::Repeated, Value::Array(items)) if kind.is_simple() => {
                wire::encode_varint64(key, out);
                wire::encode_varint64(items.len() as u64, out);
                for item in items {
                    write_value(protos, kind, item, sizes, next, out);
                }
            }
            (Rule::Repeated, Value::Array(items)) => {
                for item in items {
                    wire::encode_varint64(key, out);
                    write_value(protos, kind, item, sizes, next, out);
                }
            }
            _ => {
                wire::encode_varint64(key, out);
                write_value(protos, kind, value, sizes, next, out);
            }
        }
    }
}

/// Writes one checked value (its checks passed in [`size_value`], so the fallbacks below are
/// never taken).
fn write_value(
    protos: &Protos,
    kind: Kind,
    value: &Value,
    sizes: &[usize],
    next: &mut usize,
    out: &mut BytesMut,
) {
    let path = Path::Root;
    match kind {
        Kind::UInt32 => wire::encode_varint64(unsigned(value, &path).unwrap_or(0), out),
        Kind::SInt32 => wire::encode_varint64(zigzag(value, &path).unwrap_or(0), out),
        Kind::Float => out.put_f32_le(number(value, &path).unwrap_or(0.0) as f32),
        Kind::Double => out.put_f64_le(number(value, &path).unwrap_or(0.0)),
        Kind::String => {
            let s = value.as_str().unwrap_or_default();
            wire::encode_varint64(s.len() as u64, out);
            out.put_slice(s.as_bytes());
        }
        Kind::Message(message) => {
            let len = sizes.get(*next).copied().unwrap_or(0);
            *next += 1;
            wire::encode_varint64(len as u64, out);
            if let Value::Object(object) = value {
                write_message(protos, message, object, sizes, next, out);
            }
        }
    }
}

/// A field's key: `tag << 3 | wire type` (tags are at most 2^28 - 1).
fn key(tag: u32, kind: Kind) -> u32 {
    tag << 3 | u32::from(kind.wire_type())
}

/// `n < 0 ? -2n - 1 : 2n`, pomelo-protobuf's encoding of `sInt32` and `int32` alike, computed
/// on doubles as JavaScript does (so beyond 2^53 it rounds as Node's encoder rounds).
fn zigzag(value: &Value, path: &Path<'_>) -> Result<u64, CodecError> {
    let n = integer(value, path)?;
    let z = if n < 0.0 { -n * 2.0 - 1.0 } else { n * 2.0 };
    if z >= TWO_POW_64 {
        return Err(path.error(format!("is beyond 64 bits once zigzag-encoded: {value}")));
    }
    Ok(z as u64)
}

const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

/// A `uInt32`: a non-negative integer, as the double JavaScript holds (its varint is that
/// double's exact value, as Node's encoder computes it).
fn unsigned(value: &Value, path: &Path<'_>) -> Result<u64, CodecError> {
    let n = integer(value, path)?;
    if n < 0.0 {
        return Err(path.error(format!("must not be negative (uInt32), got {value}")));
    }
    if n >= TWO_POW_64 {
        return Err(path.error(format!("is beyond 64 bits: {value}")));
    }
    Ok(n as u64)
}

/// An integral JSON number, as a double.
fn integer(value: &Value, path: &Path<'_>) -> Result<f64, CodecError> {
    let n = number(value, path)?;
    if n.fract() != 0.0 {
        return Err(path.error(format!("must be an integer, got {value}")));
    }
    Ok(n)
}

fn number(value: &Value, path: &Path<'_>) -> Result<f64, CodecError> {
    match value {
        Value::Number(n) => Ok(n.as_f64().unwrap_or(0.0)),
        other => Err(path.error(format!("must be a number, not {}", json_kind(other)))),
    }
}

/// A JSON value's kind, for errors.
pub(super) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

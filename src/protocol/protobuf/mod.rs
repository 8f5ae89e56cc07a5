//! pomelo-protobuf: Pomelo's own protobuf dialect, as npm `pomelo-protobuf` 0.4.0 implements it
//! in its server build (`lib/{parser,encoder,decoder,codec}.js`), sans-IO.
//!
//! A [`Protos`] is one direction's protos file (`serverProtos.json` or `clientProtos.json`):
//! routes mapped to messages in Pomelo's JSON format, `{"required uInt32 id": 1, "message Item":
//! {...}, "repeated Item items": 2}`, and root messages (`"message Item": {...}` at the top)
//! that every message may use. It encodes a JSON object into bytes and decodes bytes into one.
//!
//! # Wire format (where it differs from Google protobuf)
//! - A key is `varint(tag << 3 | wire type)`: 0 for `uInt32`, `sInt32`, `int32`; 1 for
//!   `double`; 5 for `float`; 2 for `string` and messages.
//! - `int32` is zigzag-encoded like `sInt32` (`n < 0 ? -2n - 1 : 2n`), never sign-extended.
//! - A repeated *simple* field (`uInt32`, `sInt32`, `int32`, `float`, `double`) is one key, with
//!   the element type's wire type, then `varint(element count)` (a count, not a byte length),
//!   then the elements. Repeated strings and messages repeat key and value per element; an
//!   empty list writes nothing.
//! - Fields are written in the order of the JSON object's keys as JavaScript iterates them
//!   (integer-like keys first, ascending, then insertion order), not in tag order; keys the
//!   proto does not know are skipped.
//! - A message type is looked up in the message that holds the field, then among the root
//!   messages, never in an enclosing message further out.
//! - Strings are UTF-8 as Node's `Buffer` writes them (4 bytes for a character beyond the BMP)
//!   and are read back as Node does, invalid sequences (such as the CESU-8 surrogate pairs the
//!   browser build writes) each replaced by U+FFFD.
//!
//! # Invariants
//! - [`Protos::parse`] accepts a file only if npm's parser would take all of it (it silently
//!   skips what it cannot read; see [`schema`]), so [`Protos::parsed_json`] is byte for byte
//!   `JSON.stringify(parser.parse(file))`, and [`version`] is the version Pomelo computes.
//! - [`Protos::encode`] writes a whole message or nothing: every check comes before the first
//!   byte ([`encode`]).
//! - [`Protos::decode`] never panics and never allocates more than its input can fill; nesting
//!   is bounded by [`MAX_DEPTH`].
//!
//! # Where shaddock differs from pomelo-protobuf 0.4.0
//! Only where Node would throw, write a key without a value, or coerce a value of the wrong JSON
//! type into garbage: such a message is refused with a [`CodecError`] naming the field. That is
//! `null`; a string, boolean or object in a number field; a number in a string field; a
//! non-object for a message; a non-list for a repeated field; a negative `uInt32`; a fraction in
//! an integer field; an integer beyond 64 bits; a body with a tag the proto does not have, or
//! that ends inside a field. Like Node, the decoder reads every field by its proto's type and
//! ignores the key's wire type (the browser build of pomelo-protobuf 0.4.0 writes 2 for every
//! integer field). Node truncates fractions
//! (`parseInt`) and accepts numeric strings; shaddock refuses them as a client's mistake.

mod decode;
mod encode;
mod schema;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use bytes::BytesMut;
use serde_json::Value;

/// The deepest nesting of messages encoded or decoded (a root message may hold itself).
pub const MAX_DEPTH: usize = 32;

/// A field's rule, the first word of its key (`"required uInt32 id": 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Required,
    Optional,
    Repeated,
}

impl Rule {
    /// The word in a protos file.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Required => "required",
            Rule::Optional => "optional",
            Rule::Repeated => "repeated",
        }
    }
}

/// A field's type, the second word of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    UInt32,
    SInt32,
    Int32,
    Float,
    Double,
    String,
    /// A message type: nested in the message that holds the field, or a root `message X`.
    Message(Box<str>),
}

impl FieldType {
    /// The word in a protos file (a message type's own name).
    pub fn as_str(&self) -> &str {
        match self {
            FieldType::UInt32 => "uInt32",
            FieldType::SInt32 => "sInt32",
            FieldType::Int32 => "int32",
            FieldType::Float => "float",
            FieldType::Double => "double",
            FieldType::String => "string",
            FieldType::Message(name) => name,
        }
    }
}

/// One field of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: Box<str>,
    pub rule: Rule,
    pub kind: FieldType,
    pub tag: u32,
}

/// One direction's protos (a `serverProtos.json` or a `clientProtos.json`), parsed and checked.
#[derive(Debug, Clone)]
pub struct Protos {
    /// Every message, routes' and nested ones alike; fields refer to each other by index.
    messages: Vec<Message>,
    /// Top-level key (route or `message X`) → message, in JavaScript's key order.
    top: Vec<(Box<str>, usize)>,
    by_route: HashMap<Box<str>, usize>,
    /// `JSON.stringify(parser.parse(file))`.
    parsed: Box<str>,
}

/// A message: its fields in the file's order, each with its type resolved.
#[derive(Debug, Clone, Default)]
struct Message {
    fields: Vec<Field>,
    /// Parallel to `fields`.
    kinds: Vec<Kind>,
    by_name: HashMap<Box<str>, usize>,
    by_tag: HashMap<u32, usize>,
}

/// A field's type, with a message type resolved to the message's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    UInt32,
    SInt32,
    Float,
    Double,
    String,
    Message(usize),
}

impl Message {
    /// The index of the field called `name`: a scan for the few fields most messages have.
    fn field_named(&self, name: &str) -> Option<usize> {
        if self.fields.len() <= 8 {
            self.fields.iter().position(|f| *f.name == *name)
        } else {
            self.by_name.get(name).copied()
        }
    }
}

impl Kind {
    fn wire_type(self) -> u8 {
        match self {
            Kind::UInt32 | Kind::SInt32 => 0,
            Kind::Double => 1,
            Kind::String | Kind::Message(_) => 2,
            Kind::Float => 5,
        }
    }

    /// Repeated fields of these types are packed as one key, a count and the elements.
    fn is_simple(self) -> bool {
        !matches!(self, Kind::String | Kind::Message(_))
    }
}

/// Why a protos file was refused; names the route (top-level key) and the field key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route {route:?}{}: {reason}", field.as_ref().map(|f| format!(", field {f:?}")).unwrap_or_default())]
pub struct SchemaError {
    pub route: String,
    pub field: Option<String>,
    pub reason: String,
}

/// Why a message could not be encoded or decoded; `path` names the field (`msg.items[2].id`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {path}: {reason}")]
pub struct CodecError {
    pub path: String,
    pub reason: String,
}

impl Default for Protos {
    /// No routes (an absent file): renders `{}`.
    fn default() -> Protos {
        Protos {
            messages: Vec::new(),
            top: Vec::new(),
            by_route: HashMap::new(),
            parsed: "{}".into(),
        }
    }
}

impl Protos {
    /// Parses a protos file's JSON, strictly: see [`schema`].
    pub fn parse(json: &Value) -> Result<Protos, SchemaError> {
        schema::parse(json)
    }

    /// Whether the file has no top-level key at all.
    pub fn is_empty(&self) -> bool {
        self.top.is_empty()
    }

    /// Whether `route` (any top-level key) has a proto.
    pub fn has(&self, route: &str) -> bool {
        self.by_route.contains_key(route)
    }

    /// The fields of `route`'s message, in the file's order.
    pub fn fields(&self, route: &str) -> Option<&[Field]> {
        self.by_route.get(route).map(|&m| &self.messages[m].fields[..])
    }

    /// `JSON.stringify(parser.parse(file))`, what Pomelo's handshake sends.
    pub fn parsed_json(&self) -> &str {
        &self.parsed
    }

    /// Every route (top-level key other than a root `message X`), in JavaScript's key order.
    pub fn routes(&self) -> impl Iterator<Item = &str> {
        self.top.iter().map(|(key, _)| &**key).filter(|key| !key.starts_with("message "))
    }

    /// Appends `msg` (a JSON object) encoded with `route`'s proto; on error `out` is unchanged.
    pub fn encode(&self, route: &str, msg: &Value, out: &mut BytesMut) -> Result<(), CodecError> {
        let message = self.route_message(route)?;
        encode::encode(self, message, msg, out)
    }

    /// Decodes `bytes` with `route`'s proto into a JSON object.
    pub fn decode(&self, route: &str, bytes: &[u8]) -> Result<Value, CodecError> {
        let message = self.route_message(route)?;
        decode::decode(self, message, bytes)
    }

    fn route_message(&self, route: &str) -> Result<usize, CodecError> {
        self.by_route.get(route).copied().ok_or_else(|| CodecError {
            path: String::new(),
            reason: format!("route {route:?} has no proto"),
        })
    }
}

/// Pomelo's version of a pair of protos: `base64(md5(client parsed + server parsed))`.
pub fn version(client: &Protos, server: &Protos) -> String {
    use base64::Engine as _;
    use md5::{Digest, Md5};
    let mut md5 = Md5::new();
    md5.update(client.parsed_json().as_bytes());
    md5.update(server.parsed_json().as_bytes());
    base64::engine::general_purpose::STANDARD.encode(md5.finalize())
}

/// Where a field is, for errors: built only when one happens.
#[derive(Debug, Clone, Copy)]
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Field(Path::Root, name) => (*name).to_owned(),
            Path::Field(parent, name) => format!("{}.{name}", parent.render()),
            Path::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }

    fn error(&self, reason: impl Into<String>) -> CodecError {
        let path = self.render();
        CodecError {
            path: if path.is_empty() { "(message)".into() } else { path },
            reason: reason.into(),
        }
    }
}

/// JavaScript's property order: keys that are array indices (`"0"`, `"17"`, below 2^32 - 1)
/// first in ascending numeric order, then the rest in insertion order.
fn js_key_order<'a, T>(items: impl IntoIterator<Item = (&'a str, T)>) -> Vec<(&'a str, T)> {
    let mut items: Vec<(&str, T)> = items.into_iter().collect();
    if items.iter().any(|(key, _)| array_index(key).is_some()) {
        // A stable sort keeps the insertion order of the other keys.
        items.sort_by_key(|(key, _)| array_index(key).map_or((1, 0), |i| (0, i)));
    }
    items
}

/// The value of a key that JavaScript treats as an array index.
fn array_index(key: &str) -> Option<u32> {
    let canonical = key == "0" || (!key.starts_with('0') && !key.is_empty());
    if !canonical || !key.bytes().all(|b| b.is_ascii_digit()) || key.len() > 10 {
        return None;
    }
    key.parse::<u64>().ok().filter(|&i| i < u64::from(u32::MAX)).map(|i| i as u32)
}

//! pomelo-protobuf: Pomelo's own protobuf dialect (npm `pomelo-protobuf` 0.4.0, its server build
//! `lib/{parser,encoder,decoder,codec}.js`), sans-IO.
//!
//! SKELETON: the API the rest of shaddock uses; the bodies are being written (see the commit
//! that fills them).

use bytes::BytesMut;
use serde_json::Value;

/// A field's rule, the first word of its key (`"required uInt32 id": 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Required,
    Optional,
    Repeated,
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

/// One field of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: Box<str>,
    pub rule: Rule,
    pub kind: FieldType,
    pub tag: u32,
}

/// One direction's protos (a `serverProtos.json` or a `clientProtos.json`), parsed and checked.
#[derive(Debug, Clone, Default)]
pub struct Protos {}

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

impl Protos {
    pub fn parse(_json: &Value) -> Result<Protos, SchemaError> {
        todo!()
    }

    pub fn is_empty(&self) -> bool {
        todo!()
    }

    pub fn has(&self, _route: &str) -> bool {
        todo!()
    }

    pub fn fields(&self, _route: &str) -> Option<&[Field]> {
        todo!()
    }

    pub fn parsed_json(&self) -> &str {
        todo!()
    }

    pub fn encode(
        &self,
        _route: &str,
        _msg: &Value,
        _out: &mut BytesMut,
    ) -> Result<(), CodecError> {
        todo!()
    }

    pub fn decode(&self, _route: &str, _bytes: &[u8]) -> Result<Value, CodecError> {
        todo!()
    }
}

pub fn version(_client: &Protos, _server: &Protos) -> String {
    todo!()
}

impl Protos {
    /// Every route (top-level key other than a root `message X`), in the file's order.
    pub fn routes(&self) -> impl Iterator<Item = &str> {
        std::iter::empty()
    }
}

//! Reading a protos file: npm's `parser.parse`, made strict, and its parsed form rendered as
//! `JSON.stringify` renders it.
//!
//! # What is refused (npm's parser would skip it silently, or its encoder break on it)
//! - a top-level value or a `message` value that is not an object;
//! - a key that is neither `message <Name>` nor `<rule> <type> <name>` (words split on single
//!   spaces, exactly as many as that), or whose rule is not `required`, `optional`, `repeated`;
//! - a tag that is not an integer in `0..=268435455` (the encoder's `tag << 3` is a 32-bit
//!   shift), a tag or field name used twice in one message, an empty field name, and the names
//!   `__messages` and `__tags`, which the parsed form uses itself;
//! - `uInt64` and `sInt64`, which 0.4.0 lists as simple types but writes no value for, and any
//!   other type that is not simple and does not resolve as the encoder resolves it: among the
//!   messages nested in the message that holds the field, then among the root messages.
//!
//! # The parsed form
//! Each message becomes `{<field>: {"option", "type", "tag"}, ..., "__messages": {<name>:
//! <message>}, "__tags": {"<tag>": "<field>"}}`; key order is JavaScript's (see
//! [`js_key_order`]), so `__tags` lists tags in ascending order.

use std::collections::HashMap;

use serde_json::Value;

use super::{Field, FieldType, Kind, Message, Protos, Rule, SchemaError, js_key_order};

/// The largest tag: `tag << 3 | 7` must stay a positive 32-bit integer in JavaScript.
const MAX_TAG: u64 = (1 << 28) - 1;

/// A message as read, before its field types are resolved.
struct Draft<'a> {
    /// The top-level key it is under, for errors.
    route: &'a str,
    fields: Vec<Field>,
    /// Nested messages: name → index into the drafts.
    nested: Vec<(&'a str, usize)>,
}

pub(super) fn parse(json: &Value) -> Result<Protos, SchemaError> {
    let Value::Object(top) = json else {
        return Err(error("", None, "a protos file must be a JSON object of routes"));
    };
    let mut drafts: Vec<Draft<'_>> = Vec::new();
    let mut routes = Vec::with_capacity(top.len());
    for (route, value) in js_key_order(top.iter().map(|(k, v)| (k.as_str(), v))) {
        let index = read_message(route, value, route, &mut drafts)?;
        routes.push((route, index));
    }
    let roots: HashMap<&str, usize> = routes
        .iter()
        .filter_map(|(key, index)| key.strip_prefix("message ").map(|name| (name, *index)))
        .collect();

    let mut messages = Vec::with_capacity(drafts.len());
    for draft in &drafts {
        messages.push(resolve(draft, &roots)?);
    }
    let mut parsed = String::new();
    render_top(&routes, &drafts, &mut parsed);
    Ok(Protos {
        messages,
        top: routes.iter().map(|&(k, i)| (k.into(), i)).collect(),
        by_route: routes.iter().map(|&(k, i)| (k.into(), i)).collect(),
        parsed: parsed.into(),
    })
}

fn error(route: &str, field: Option<&str>, reason: impl Into<String>) -> SchemaError {
    SchemaError { route: route.to_owned(), field: field.map(str::to_owned), reason: reason.into() }
}

/// Reads the message `value` (under top-level key `route`, for errors); returns its index.
fn read_message<'a>(
    route: &'a str,
    value: &'a Value,
    what: &str,
    drafts: &mut Vec<Draft<'a>>,
) -> Result<usize, SchemaError> {
    let Value::Object(keys) = value else {
        return Err(error(route, None, format!("{what:?} must be a JSON object")));
    };
    let index = drafts.len();
    drafts.push(Draft { route, fields: Vec::new(), nested: Vec::new() });
    let mut fields = Vec::new();
    let mut nested = Vec::new();
    for (key, value) in js_key_order(keys.iter().map(|(k, v)| (k.as_str(), v))) {
        let words: Vec<&str> = key.split(' ').collect();
        match words[..] {
            ["message", name] if !name.is_empty() => {
                let child = read_message(route, value, key, drafts)?;
                nested.push((name, child));
            }
            ["message", ..] => {
                return Err(error(route, Some(key), "a nested message is \"message <Name>\""));
            }
            [rule, kind, name] => fields.push(read_field(route, key, rule, kind, name, value)?),
            _ => {
                return Err(error(
                    route,
                    Some(key),
                    "a field is \"<required|optional|repeated> <type> <name>\", one space apart",
                ));
            }
        }
    }
    check_unique(route, &fields)?;
    drafts[index] = Draft { route, fields, nested };
    Ok(index)
}

fn read_field(
    route: &str,
    key: &str,
    rule: &str,
    kind: &str,
    name: &str,
    tag: &Value,
) -> Result<Field, SchemaError> {
    let fail = |reason: String| error(route, Some(key), reason);
    let rule = match rule {
        "required" => Rule::Required,
        "optional" => Rule::Optional,
        "repeated" => Rule::Repeated,
        other => return Err(fail(format!("unknown rule {other:?}"))),
    };
    if name.is_empty() || name == "__messages" || name == "__tags" {
        return Err(fail(format!("{name:?} cannot be a field name")));
    }
    let tag = match tag {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64)),
        _ => None,
    };
    let Some(tag) = tag.filter(|&t| t <= MAX_TAG) else {
        return Err(fail(format!("the tag must be an integer from 0 to {MAX_TAG}")));
    };
    let kind = match kind {
        "uInt32" => FieldType::UInt32,
        "sInt32" => FieldType::SInt32,
        "int32" => FieldType::Int32,
        "float" => FieldType::Float,
        "double" => FieldType::Double,
        "string" => FieldType::String,
        "uInt64" | "sInt64" => {
            return Err(fail(format!("pomelo-protobuf 0.4.0 writes no value for {kind}")));
        }
        "" => return Err(fail("the type is empty".into())),
        message => FieldType::Message(message.into()),
    };
    Ok(Field { name: name.into(), rule, kind, tag: tag as u32 })
}

fn check_unique(route: &str, fields: &[Field]) -> Result<(), SchemaError> {
    for (i, field) in fields.iter().enumerate() {
        for earlier in &fields[..i] {
            if earlier.tag == field.tag {
                let reason = format!("tag {} is also {:?}'s", field.tag, earlier.name);
                return Err(error(route, Some(&field.name), reason));
            }
            if earlier.name == field.name {
                return Err(error(route, Some(&field.name), "the field name is used twice"));
            }
        }
    }
    Ok(())
}

/// A draft with its message types resolved as the encoder resolves them.
fn resolve(draft: &Draft<'_>, roots: &HashMap<&str, usize>) -> Result<Message, SchemaError> {
    let mut message = Message::default();
    for (i, field) in draft.fields.iter().enumerate() {
        let kind = match &field.kind {
            FieldType::UInt32 => Kind::UInt32,
            FieldType::SInt32 | FieldType::Int32 => Kind::SInt32,
            FieldType::Float => Kind::Float,
            FieldType::Double => Kind::Double,
            FieldType::String => Kind::String,
            FieldType::Message(name) => {
                let nested = draft.nested.iter().find(|(n, _)| **n == **name).map(|&(_, i)| i);
                match nested.or_else(|| roots.get(&**name).copied()) {
                    Some(index) => Kind::Message(index),
                    None => {
                        return Err(SchemaError {
                            route: draft.route.to_owned(),
                            field: Some(format!("{} {name} {}", field.rule.as_str(), field.name)),
                            reason: format!(
                                "type {name:?} is neither a simple type nor a message nested \
                                 here or at the root"
                            ),
                        });
                    }
                }
            }
        };
        message.by_name.insert(field.name.clone(), i);
        message.by_tag.insert(field.tag, i);
        message.kinds.push(kind);
    }
    message.fields = draft.fields.clone();
    Ok(message)
}

fn render_top(routes: &[(&str, usize)], drafts: &[Draft<'_>], out: &mut String) {
    out.push('{');
    for (i, (route, index)) in routes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        put_str(route, out);
        out.push(':');
        render_message(*index, drafts, out);
    }
    out.push('}');
}

fn render_message(index: usize, drafts: &[Draft<'_>], out: &mut String) {
    let draft = &drafts[index];
    out.push('{');
    for field in
        js_key_order(draft.fields.iter().map(|f| (&*f.name, f))).into_iter().map(|(_, f)| f)
    {
        put_str(&field.name, out);
        out.push_str(r#":{"option":"#);
        put_str(field.rule.as_str(), out);
        out.push_str(r#","type":"#);
        put_str(field.kind.as_str(), out);
        out.push_str(&format!(r#","tag":{}}},"#, field.tag));
    }
    out.push_str(r#""__messages":{"#);
    for (i, (name, child)) in js_key_order(draft.nested.iter().copied()).into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        put_str(name, out);
        out.push(':');
        render_message(child, drafts, out);
    }
    out.push_str(r#"},"__tags":{"#);
    let mut tags: Vec<&Field> = draft.fields.iter().collect();
    tags.sort_by_key(|f| f.tag);
    for (i, field) in tags.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("\"{}\":", field.tag));
        put_str(&field.name, out);
    }
    out.push_str("}}");
}

/// A JSON string as `JSON.stringify` writes it (serde_json escapes the same characters the
/// same way: `\"`, `\\`, `\b\f\n\r\t`, other controls as lowercase `\u00xx`).
fn put_str(s: &str, out: &mut String) {
    out.push_str(&Value::String(s.to_owned()).to_string());
}

//! What the cluster bus puts on Redis, sans-IO: the channel of an app's pushes and the payload
//! of one push.
//!
//! - Channel: `{prefix}push:{apikey}`, one per app, so a node subscribes to the apps it serves.
//! - Payload: the publishing node's id, a newline, then the push's `msg` as JSON (`onMsg
//!   {msg}` is what every node makes of it, in its members' forms). Node ids have no
//!   whitespace (`cluster.node_id` is printable ASCII without spaces), so the first newline
//!   ends the id.

use serde_json::Value;

/// The Redis channel of `apikey`'s pushes.
pub fn channel(prefix: &str, apikey: &str) -> String {
    format!("{prefix}push:{apikey}")
}

/// The apikey whose channel `channel` is, if it is one of this cluster's.
pub fn apikey_of<'c>(prefix: &str, channel: &'c str) -> Option<&'c str> {
    channel.strip_prefix(prefix)?.strip_prefix("push:")
}

/// The payload of a push of `msg` (JSON) published by `node`.
pub fn encode(node: &str, msg: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(node.len() + 1 + msg.len());
    payload.extend_from_slice(node.as_bytes());
    payload.push(b'\n');
    payload.extend_from_slice(msg);
    payload
}

/// A push read from the bus.
#[derive(Debug, PartialEq)]
pub struct BusPush<'p> {
    /// The node that accepted it.
    pub node: &'p str,
    pub msg: Value,
}

/// Why a payload is not a push.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("no newline after the node id")]
    NoNode,
    #[error("the node id is not printable ASCII")]
    BadNode,
    #[error("the msg is not JSON: {0}")]
    BadMsg(String),
}

/// Reads a payload [`encode`] made.
pub fn decode(payload: &[u8]) -> Result<BusPush<'_>, WireError> {
    let split = payload.iter().position(|&b| b == b'\n').ok_or(WireError::NoNode)?;
    let (node, msg) = (&payload[..split], &payload[split + 1..]);
    if node.is_empty() || !node.iter().all(u8::is_ascii_graphic) {
        return Err(WireError::BadNode);
    }
    let node = std::str::from_utf8(node).map_err(|_| WireError::BadNode)?;
    let msg = serde_json::from_slice(msg).map_err(|e| WireError::BadMsg(e.to_string()))?;
    Ok(BusPush { node, msg })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_push_round_trips_byte_for_byte() {
        let payload = encode("push-1:3010", br#"{"title":"hi","n":1}"#);
        assert_eq!(payload, b"push-1:3010\n{\"title\":\"hi\",\"n\":1}");
        let push = decode(&payload).unwrap();
        assert_eq!(push, BusPush { node: "push-1:3010", msg: json!({"title": "hi", "n": 1}) });
    }

    #[test]
    fn a_msg_may_hold_newlines_and_any_json() {
        let payload = encode("a", b"\"two\\nlines\"\n");
        assert_eq!(decode(&payload).unwrap().msg, json!("two\nlines"));
        assert_eq!(decode(b"a\n[1,null]").unwrap().msg, json!([1, null]));
    }

    #[test]
    fn what_is_not_a_push_says_why() {
        assert_eq!(decode(b"no newline"), Err(WireError::NoNode));
        assert_eq!(decode(b"\n{}"), Err(WireError::BadNode));
        assert_eq!(decode(b"a b\n{}"), Err(WireError::BadNode));
        assert!(matches!(decode(b"a\n{"), Err(WireError::BadMsg(_))));
        for cut in 0..10 {
            let _ = decode(&b"node\n{\"x\":1}"[..cut]);
        }
    }

    #[test]
    fn channels_name_their_app_under_the_prefix() {
        assert_eq!(channel("shaddock:", "demo"), "shaddock:push:demo");
        assert_eq!(apikey_of("shaddock:", "shaddock:push:demo"), Some("demo"));
        assert_eq!(apikey_of("shaddock:", "other:push:demo"), None);
        assert_eq!(apikey_of("shaddock:", "shaddock:presence:demo"), None);
    }
}

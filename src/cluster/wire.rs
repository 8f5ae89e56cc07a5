//! What the cluster bus puts on Redis, sans-IO: channel and key names, and payloads.
//!
//! - Channel: `{prefix}push:{apikey}`, one per app, so a node subscribes to the apps it serves.
//! - `{prefix}presence`: joins and leaves on every node ([`PresenceEvent`], JSON), and a node's
//!   `sync` after it rewrote its presence; `{prefix}node:{node}`: pushes to, and disconnects
//!   of, one client that `node` holds ([`ToClient`], JSON).
//! - Keys: `{prefix}online:{node}:{apikey}` (a set: the node's clients of the app),
//!   `{prefix}nodes` (a set: nodes that wrote presence), `{prefix}alive:{node}` (expires unless
//!   the node refreshes it: a node that dies drops out).
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

/// What a node says on `{prefix}presence` (one channel for every app): a client joined or left
/// there, or the node rewrote its whole presence in Redis (`sync`, after it connected).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PresenceEvent {
    Join { node: String, app: String, id: String },
    Leave { node: String, app: String, id: String },
    Sync { node: String },
}

/// The presence channel.
pub fn presence_channel(prefix: &str) -> String {
    format!("{prefix}presence")
}

/// The channel of pushes to clients that `node` holds.
pub fn node_channel(prefix: &str, node: &str) -> String {
    format!("{prefix}node:{node}")
}

/// The Redis set of `node`'s clients of `apikey` (its half of the cluster's presence).
pub fn online_key(prefix: &str, node: &str, apikey: &str) -> String {
    format!("{prefix}online:{node}:{apikey}")
}

/// The Redis set of the nodes that have written presence.
pub fn nodes_key(prefix: &str) -> String {
    format!("{prefix}nodes")
}

/// The key that says `node` is alive (it expires unless the node refreshes it).
pub fn alive_key(prefix: &str, node: &str) -> String {
    format!("{prefix}alive:{node}")
}

/// A push to one client that another node holds (`msg`), or its disconnect by the admin API
/// (`disconnect`: the kick's text; then there is no `msg`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToClient {
    pub app: String,
    pub id: String,
    /// Left out of a disconnect, so that a node of an earlier version (which requires it) drops
    /// the message rather than pushing `null`.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub msg: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnect: Option<String>,
}

#[cfg(test)]
mod presence_tests {
    use super::*;

    #[test]
    fn presence_events_are_json_with_an_op() {
        let join = PresenceEvent::Join { node: "a".into(), app: "demo".into(), id: "p 1".into() };
        let text = serde_json::to_string(&join).unwrap();
        assert_eq!(text, r#"{"op":"join","node":"a","app":"demo","id":"p 1"}"#);
        assert_eq!(serde_json::from_str::<PresenceEvent>(&text).unwrap(), join);
        let sync: PresenceEvent = serde_json::from_str(r#"{"op":"sync","node":"b"}"#).unwrap();
        assert_eq!(sync, PresenceEvent::Sync { node: "b".into() });
        assert!(serde_json::from_str::<PresenceEvent>(r#"{"op":"nope"}"#).is_err());
    }

    #[test]
    fn a_disconnect_is_a_message_to_the_client_without_msg() {
        let to = ToClient {
            app: "demo".into(),
            id: "p1".into(),
            msg: Value::Null,
            disconnect: Some("bye".into()),
        };
        let text = serde_json::to_string(&to).unwrap();
        assert_eq!(text, r#"{"app":"demo","id":"p1","disconnect":"bye"}"#);
        let push: ToClient =
            serde_json::from_str(r#"{"app":"demo","id":"p1","msg":{"n":1}}"#).unwrap();
        assert_eq!((push.disconnect, push.msg), (None, serde_json::json!({"n": 1})));
    }

    #[test]
    fn keys_live_under_the_prefix() {
        assert_eq!(presence_channel("s:"), "s:presence");
        assert_eq!(node_channel("s:", "a"), "s:node:a");
        assert_eq!(online_key("s:", "a", "demo"), "s:online:a:demo");
        assert_eq!((nodes_key("s:"), alive_key("s:", "a")), ("s:nodes".into(), "s:alive:a".into()));
    }
}

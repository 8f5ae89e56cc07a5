//! A client that stops reading while its channel is pushed to (slow_consumer.rs,
//! kill_stop_reader.rs): indexed pushes of a few KB, the reading member checked at each, until
//! the server kicks the stalled one "slow".

use serde_json::{Value, json};

use super::tcp::PomeloClient;
use super::{DEMO, TestServer};

/// Bytes of padding in each push.
pub const PAD: usize = 3000;
/// Enough pushes to fill every kernel buffer on the way to the stalled client (a few MB on
/// loopback) many times over.
pub const MAX_PUSHES: usize = 3000;

/// Push `i`: its index, then the padding.
pub fn message(i: usize) -> String {
    format!("{i:06} {}", "x".repeat(PAD))
}

/// The index of a push made by [`message`].
pub fn index_of(msg: &Value) -> usize {
    let text = msg.as_str().unwrap_or_else(|| panic!("msg is not a string: {msg}"));
    text.get(..6)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("msg without an index: {}", &text[..20.min(text.len())]))
}

/// Pushes from `admin` until the server has kicked a client "slow" (at most [`MAX_PUSHES`]);
/// `reader` takes each push before the next is sent, so its queue never grows, and gets every
/// one in order. Returns how many were sent.
pub fn push_until_kicked_slow(
    server: &TestServer,
    admin: &mut PomeloClient,
    reader: &mut PomeloClient,
) -> usize {
    let mut sent = 0;
    while sent < MAX_PUSHES && server.kicks_total("slow") == 0 {
        let response = admin.push_all(DEMO, json!(message(sent)));
        assert_eq!(response["code"], 200, "push {sent}: {response}");
        let (route, body) = reader.next_push();
        assert_eq!(route, "onMsg");
        assert_eq!(index_of(&body["msg"]), sent, "the reading client gets every push, in order");
        sent += 1;
    }
    sent
}

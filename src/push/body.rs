//! The pushes the push platform sends: their routes and JSON bodies.
//!
//! Field names are the classic push platform's (DESIGN §1), so its clients and management page
//! read them unchanged. A body is serialized once per push ([`Push::new`]); every frontend
//! wraps the same bytes.
//!
//! [`Push::new`]: super::frame::Push::new

use serde_json::{Value, json};

use crate::channel::ClientId;

/// A message for the app's clients.
pub const ON_MSG: &str = "onMsg";
/// A client joined; sent to the app's management sessions.
pub const ON_ADD: &str = "onAdd";
/// A client's clientId went offline; sent to the app's management sessions.
pub const ON_LEAVE: &str = "onLeave";

/// The body of the `onMsg` push.
pub fn on_msg(msg: &Value) -> Value {
    json!({ "msg": msg })
}

/// The body of the `onAdd` push; `users` only while the channel is small.
pub fn on_add(client_id: &str, count: usize, users: Option<&[ClientId]>) -> Value {
    let mut body = json!({ "msg": "add ok", "clientId": client_id, "count": count });
    if let Some(users) = users {
        body["users"] = users_json(users);
    }
    body
}

pub fn on_leave(client_id: &str, count: usize) -> Value {
    json!({ "clientId": client_id, "count": count })
}

/// A list of clientIds as a JSON array of strings.
pub fn users_json(users: &[ClientId]) -> Value {
    Value::Array(users.iter().map(|u| Value::from(u.as_str())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_match_the_classic_platform() {
        let users = vec![ClientId::new("a")];
        assert_eq!(on_add("a", 1, Some(&users))["users"], json!(["a"]));
        assert!(on_add("a", 1, None).get("users").is_none());
        assert_eq!(on_msg(&json!("hi")).to_string(), r#"{"msg":"hi"}"#);
        assert_eq!(on_leave("a", 0).to_string(), r#"{"clientId":"a","count":0}"#);
    }
}

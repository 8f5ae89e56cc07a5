//! The JSON bodies shaddock sends: responses to the push routes and the pushes themselves.
//!
//! Field names and messages are the classic push platform's (DESIGN §1), so its clients and
//! management page read them unchanged.

use serde_json::{Value, json};

use super::request::Refusal;
use crate::channel::ClientId;

pub fn refusal(refusal: &Refusal) -> Value {
    json!({ "code": refusal.code, "msg": refusal.msg })
}

/// Pomelo's answer to a second login with a clientId that is online (`duplicate = "refuse"`).
pub fn duplicate_login() -> Value {
    json!({ "code": 500, "msg": "duplicate log in", "error": true })
}

pub fn client_entered() -> Value {
    json!({ "code": 200, "msg": "add ok" })
}

pub fn server_entered(users: &[ClientId], count: usize) -> Value {
    json!({ "code": 200, "msg": "push server is ok.", "users": users_json(users), "count": count })
}

pub fn pushed(recipients: usize) -> Value {
    json!({ "code": 200, "msg": "push is ok.", "recipients": recipients })
}

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

fn users_json(users: &[ClientId]) -> Value {
    Value::Array(users.iter().map(|u| Value::from(u.as_str())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_match_the_classic_platform() {
        assert_eq!(client_entered().to_string(), r#"{"code":200,"msg":"add ok"}"#);
        assert_eq!(
            duplicate_login().to_string(),
            r#"{"code":500,"msg":"duplicate log in","error":true}"#
        );
        let users = vec![ClientId::new("a")];
        assert_eq!(on_add("a", 1, Some(&users))["users"], json!(["a"]));
        assert!(on_add("a", 1, None).get("users").is_none());
        assert_eq!(pushed(3)["recipients"], 3);
    }
}

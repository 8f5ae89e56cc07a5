//! The JSON bodies of the responses to the push routes.
//!
//! Field names and messages are the classic push platform's (DESIGN §1), so its clients and
//! management page read them unchanged.

use serde_json::{Value, json};

use crate::channel::ClientId;
use crate::push::Refusal;
use crate::push::body::users_json;

/// `{code, msg}`: a refusal as a Pomelo client reads it.
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

pub fn kicked(disconnected: usize) -> Value {
    json!({ "code": 200, "msg": "kick is ok.", "disconnected": disconnected })
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
        assert_eq!(pushed(3)["recipients"], 3);
        assert_eq!(refusal(&Refusal::new(404, "no such client"))["msg"], "no such client");
    }
}

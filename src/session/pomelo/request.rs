//! Request bodies of the push routes, parsed and checked.
//!
//! A malformed body or a missing field (other than the secret) is a `400` refusal with a human
//! message (DESIGN §1). What the request may do is the session's and the push service's
//! business, not this parser's.

use serde_json::{Map, Value};

use super::route::RouteName;
use crate::channel::client_id;
use crate::push::Refusal;
use crate::push::refusal::quoted;

/// A parsed push-platform request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `token`: the clientId's signature, for an app with a `client_key`.
    EnterClient {
        apikey: String,
        client_id: String,
        token: Option<String>,
    },
    EnterServer {
        apikey: String,
        secret: Option<String>,
    },
    PushAll {
        apikey: String,
        msg: Value,
    },
    PushByClientId {
        apikey: String,
        client_id: String,
        msg: Value,
    },
    /// `reason`: at most [`MAX_KICK_REASON_BYTES`] bytes without control characters.
    Kick {
        apikey: String,
        client_id: String,
        reason: Option<String>,
    },
}

/// The longest reason a kick may give (as the admin API's disconnect).
pub const MAX_KICK_REASON_BYTES: usize = 256;

/// Parses the JSON body of a request to `route`.
pub fn parse(route: RouteName, body: &[u8]) -> Result<Request, Refusal> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Refusal::bad_request(format!("malformed JSON body: {e}")))?;
    parse_value(route, value)
}

/// Checks a request to `route` whose body is already a value (JSON parsed, or protobuf
/// decoded).
pub fn parse_value(route: RouteName, value: Value) -> Result<Request, Refusal> {
    let Value::Object(fields) = value else {
        return Err(Refusal::bad_request("the body must be a JSON object"));
    };
    match route {
        RouteName::Enter => parse_enter(&fields),
        RouteName::PushAll => Ok(Request::PushAll { apikey: apikey(&fields)?, msg: msg(&fields)? }),
        RouteName::PushByClientId => Ok(Request::PushByClientId {
            apikey: apikey(&fields)?,
            client_id: client_id(&fields)?,
            msg: msg(&fields)?,
        }),
        RouteName::Kick => Ok(Request::Kick {
            apikey: apikey(&fields)?,
            client_id: client_id(&fields)?,
            reason: kick_reason(&fields)?,
        }),
    }
}

fn parse_enter(fields: &Map<String, Value>) -> Result<Request, Refusal> {
    let role = match fields.get("role") {
        Some(Value::String(role)) => role.as_str(),
        Some(_) => {
            return Err(Refusal::bad_request("field role must be \"client\" or \"server\""));
        }
        None => return Err(Refusal::bad_request("missing field role")),
    };
    match role {
        "client" => {
            let token = match fields.get("token") {
                Some(Value::String(t)) => Some(t.clone()),
                _ => None,
            };
            Ok(Request::EnterClient {
                apikey: apikey(fields)?,
                client_id: client_id(fields)?,
                token,
            })
        }
        "server" => {
            let secret = match fields.get("secret") {
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            };
            Ok(Request::EnterServer { apikey: apikey(fields)?, secret })
        }
        other => Err(Refusal::bad_request(format!(
            "field role must be \"client\" or \"server\", not {}",
            quoted(other)
        ))),
    }
}

/// `apikey`, or the demo's spelling `apiKey`.
fn apikey(fields: &Map<String, Value>) -> Result<String, Refusal> {
    match fields.get("apikey").or_else(|| fields.get("apiKey")) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(Refusal::bad_request("field apikey is empty")),
        Some(_) => Err(Refusal::bad_request("field apikey must be a string")),
        None => Err(Refusal::bad_request("missing field apikey")),
    }
}

/// `clientId`: a non-empty string, or a number (old Android clients sent numeric ids).
fn kick_reason(fields: &Map<String, Value>) -> Result<Option<String>, Refusal> {
    match fields.get("reason") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(r))
            if r.len() <= MAX_KICK_REASON_BYTES && !r.chars().any(char::is_control) =>
        {
            Ok(Some(r.clone()).filter(|r| !r.is_empty()))
        }
        Some(_) => Err(Refusal::bad_request(format!(
            "field reason must be a string of at most {MAX_KICK_REASON_BYTES} bytes without control characters"
        ))),
    }
}

fn client_id(fields: &Map<String, Value>) -> Result<String, Refusal> {
    let id = match fields.get("clientId") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(Refusal::bad_request("field clientId must be a string")),
        None => return Err(Refusal::bad_request("missing field clientId")),
    };
    match client_id::fault(&id) {
        Some(fault) => Err(Refusal::bad_request(format!("field clientId {fault}"))),
        None => Ok(id),
    }
}

fn msg(fields: &Map<String, Value>) -> Result<Value, Refusal> {
    fields.get("msg").cloned().ok_or_else(|| Refusal::bad_request("missing field msg"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(route: RouteName, body: &str) -> Result<Request, Refusal> {
        parse(route, body.as_bytes())
    }

    #[test]
    fn enter_as_client_and_server() {
        assert_eq!(
            p(RouteName::Enter, r#"{"role":"client","apikey":"k1","clientId":"c1"}"#),
            Ok(Request::EnterClient { apikey: "k1".into(), client_id: "c1".into(), token: None })
        );
        assert_eq!(
            p(RouteName::Enter, r#"{"role":"client","apikey":"k1","clientId":"c1","token":"9.x"}"#),
            Ok(Request::EnterClient {
                apikey: "k1".into(),
                client_id: "c1".into(),
                token: Some("9.x".into())
            })
        );
        assert_eq!(
            p(RouteName::Enter, r#"{"role":"client","apiKey":"k1","clientId":42}"#),
            Ok(Request::EnterClient { apikey: "k1".into(), client_id: "42".into(), token: None })
        );
        assert_eq!(
            p(RouteName::Enter, r#"{"role":"server","apikey":"k1","secret":"s"}"#),
            Ok(Request::EnterServer { apikey: "k1".into(), secret: Some("s".into()) })
        );
        assert_eq!(
            p(RouteName::Enter, r#"{"role":"server","apikey":"k1"}"#),
            Ok(Request::EnterServer { apikey: "k1".into(), secret: None })
        );
    }

    #[test]
    fn pushes() {
        assert_eq!(
            p(RouteName::PushAll, r#"{"apikey":"k1","msg":"hi"}"#),
            Ok(Request::PushAll { apikey: "k1".into(), msg: Value::from("hi") })
        );
        assert_eq!(
            p(RouteName::PushByClientId, r#"{"apikey":"k1","clientId":"c","msg":{"a":1}}"#),
            Ok(Request::PushByClientId {
                apikey: "k1".into(),
                client_id: "c".into(),
                msg: serde_json::json!({"a":1})
            })
        );
    }

    #[test]
    fn malformed_bodies_are_400_with_a_reason() {
        let cases = [
            (RouteName::Enter, "{"),
            (RouteName::Enter, "[1]"),
            (RouteName::Enter, r#"{"apikey":"k1","clientId":"c"}"#),
            (RouteName::Enter, r#"{"role":"admin","apikey":"k1"}"#),
            (RouteName::Enter, r#"{"role":"client","apikey":"k1"}"#),
            (RouteName::Enter, r#"{"role":"client","apikey":"","clientId":"c"}"#),
            (RouteName::Enter, r#"{"role":"client","apikey":"k","clientId":""}"#),
            (RouteName::Enter, r#"{"role":"client","clientId":"c"}"#),
            (RouteName::PushAll, r#"{"apikey":"k1"}"#),
            (RouteName::PushAll, r#"{"msg":"x"}"#),
            (RouteName::PushByClientId, r#"{"apikey":"k1","msg":"x"}"#),
        ];
        for (route, body) in cases {
            let refusal = p(route, body).unwrap_err();
            assert_eq!(refusal.code, 400, "{body}");
            assert!(!refusal.msg.is_empty());
        }
        let control = r#"{"role":"client","apikey":"k","clientId":"a\u0001b"}"#;
        assert_eq!(p(RouteName::Enter, control).unwrap_err().code, 400);
        let long = format!(r#"{{"role":"client","apikey":"k","clientId":"{}"}}"#, "x".repeat(300));
        assert_eq!(p(RouteName::Enter, &long).unwrap_err().code, 400);
    }
}

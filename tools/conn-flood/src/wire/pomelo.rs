//! What a Pomelo client says and reads, on top of the library's codecs
//! (`shaddock::protocol::pomelo`): the handshake, the `enter` and `pushAll` requests, and the
//! two numbers the tool needs from a response body.
//!
//! ```text
//! -> HANDSHAKE  {"sys":{"type":"conn-flood","version":"0.1.0"[,"dictVersion":".."]},"user":{}}
//! <- HANDSHAKE  {"code":200,"sys":{"heartbeat":300,...}}
//! -> HANDSHAKE_ACK, then at once
//! -> DATA  request id 1  connector.entryHandler.enter  {"role":"client","apikey":..,"clientId":..}
//! <- HEARTBEAT (the answer to the ack), DATA response id 1 {"code":200,"msg":"add ok"}
//! <- DATA  push onMsg {"msg":"cf:<seq>:<send_ns>:xxx"}   (route by name or dictionary code)
//! ```
//!
//! Requests name their route in full; responses and pushes are decoded with
//! `shaddock::protocol::pomelo::{package, message}`, and the stamp is found in a push body by
//! `stamp::find`, so the tool needs no route dictionary. Sending the `dictVersion` learned from
//! the first handshake makes the server leave the dictionary out of later ones, as a real client
//! with a cached dictionary does.

use bytes::BytesMut;
use shaddock::protocol::ProtocolError;
use shaddock::protocol::pomelo::message::{self, Message, Route};
use shaddock::protocol::pomelo::package::{self, PackageType};

/// The route clients and management sessions enter by.
pub const ENTER: &str = "connector.entryHandler.enter";
/// The management route that pushes to a whole channel.
pub const PUSH_ALL: &str = "pushserver.pushHandler.pushAll";

/// Appends a HANDSHAKE package; `dict_version` is the version of a dictionary already held.
pub fn encode_handshake(dict_version: Option<&str>, out: &mut BytesMut) {
    let mut body = String::from(r#"{"sys":{"type":"conn-flood","version":"0.1.0""#);
    if let Some(version) = dict_version {
        body.push_str(r#","dictVersion":"#);
        body.push_str(&json_string(version));
    }
    body.push_str(r#"},"user":{}}"#);
    // A handshake body is far below the 16 MiB package limit.
    let _ = package::encode(PackageType::Handshake, body.as_bytes(), out);
}

/// Appends a HANDSHAKE_ACK package.
pub fn encode_ack(out: &mut BytesMut) {
    out.extend_from_slice(&package::HANDSHAKE_ACK);
}

/// Appends a HEARTBEAT package.
pub fn encode_heartbeat(out: &mut BytesMut) {
    out.extend_from_slice(&package::HEARTBEAT);
}

/// Appends a REQUEST package with id `id` on `route`.
pub fn encode_request(
    id: u32,
    route: &str,
    body: &[u8],
    out: &mut BytesMut,
) -> Result<(), ProtocolError> {
    let msg = Message::request(id, Route::Name(route), body);
    message::encode_package(&msg, out)
}

/// The body of a client's `enter`.
pub fn enter_client_body(apikey: &str, client_id: &str) -> String {
    format!(
        r#"{{"role":"client","apikey":{},"clientId":{}}}"#,
        json_string(apikey),
        json_string(client_id)
    )
}

/// The body of a management session's `enter`.
pub fn enter_server_body(apikey: &str, secret: &str) -> String {
    format!(
        r#"{{"role":"server","apikey":{},"secret":{}}}"#,
        json_string(apikey),
        json_string(secret)
    )
}

/// Appends the body of a `pushAll` of `msg` (ASCII that needs no escaping, as a stamp is) to the
/// app whose apikey is `apikey_json` (already a JSON string literal).
pub fn push_all_body(apikey_json: &str, msg: &[u8], out: &mut BytesMut) {
    out.extend_from_slice(br#"{"apikey":"#);
    out.extend_from_slice(apikey_json.as_bytes());
    out.extend_from_slice(br#","msg":""#);
    out.extend_from_slice(msg);
    out.extend_from_slice(br#""}"#);
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// The number after `"<key>":` in a JSON body, without parsing the rest (`code`,
/// `recipients`); `None` when the key is absent or not followed by a non-negative integer.
pub fn json_number(body: &[u8], key: &str) -> Option<u64> {
    let needle_len = key.len() + 3;
    let at = body.windows(needle_len).position(|w| {
        w.first() == Some(&b'"')
            && &w[1..=key.len()] == key.as_bytes()
            && &w[key.len() + 1..] == b"\":"
    })?;
    let rest = &body[at + needle_len..];
    let rest = &rest[rest.iter().take_while(|b| **b == b' ').count()..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shaddock::protocol::pomelo::handshake;
    use shaddock::protocol::pomelo::message::MessageType;

    #[test]
    fn handshake_is_what_the_server_decodes() {
        let mut out = BytesMut::new();
        encode_handshake(Some("abc"), &mut out);
        let (pkg, used) = package::decode(&out, 1 << 16).unwrap().unwrap();
        assert_eq!((pkg.kind, used), (PackageType::Handshake, out.len()));
        let request = handshake::decode_request(pkg.body).unwrap();
        assert_eq!(request.client_type.as_deref(), Some("conn-flood"));
        assert_eq!(request.dict_version.as_deref(), Some("abc"));

        let mut out = BytesMut::new();
        encode_handshake(None, &mut out);
        let (pkg, _) = package::decode(&out, 1 << 16).unwrap().unwrap();
        assert_eq!(handshake::decode_request(pkg.body).unwrap().dict_version, None);
    }

    #[test]
    fn enter_request_round_trips() {
        let mut out = BytesMut::new();
        encode_ack(&mut out);
        let body = enter_client_body("demo", "c\"1");
        encode_request(1, ENTER, body.as_bytes(), &mut out).unwrap();
        let (ack, n) = package::decode(&out, 1 << 16).unwrap().unwrap();
        assert_eq!(ack.kind, PackageType::HandshakeAck);
        let (data, _) = package::decode(&out[n..], 1 << 16).unwrap().unwrap();
        let msg = message::decode(data.body).unwrap();
        assert_eq!((msg.kind, msg.id, msg.route), (MessageType::Request, 1, Route::Name(ENTER)));
        let value: serde_json::Value = serde_json::from_slice(msg.body).unwrap();
        assert_eq!(value["clientId"], "c\"1");
        assert_eq!(value["role"], "client");
    }

    #[test]
    fn push_all_body_is_json() {
        let mut out = BytesMut::new();
        push_all_body(&json_string("demo"), b"cf:1:2:xx", &mut out);
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value, serde_json::json!({"apikey": "demo", "msg": "cf:1:2:xx"}));
        let value: serde_json::Value =
            serde_json::from_str(&enter_server_body("demo", "s3cret")).unwrap();
        assert_eq!(value["secret"], "s3cret");
    }

    #[test]
    fn numbers_from_bodies() {
        let body = br#"{"code":200,"msg":"push is ok.","recipients":19000}"#;
        assert_eq!(json_number(body, "code"), Some(200));
        assert_eq!(json_number(body, "recipients"), Some(19_000));
        assert_eq!(json_number(body, "count"), None);
        assert_eq!(json_number(br#"{"code": 401,"msg":"x"}"#, "code"), Some(401));
        assert_eq!(json_number(br#"{"code":"x"}"#, "code"), None);
        assert_eq!(json_number(br#"{"xcode":1}"#, "code"), None);
    }
}

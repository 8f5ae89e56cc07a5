//! The Pomelo handshake: the body of a HANDSHAKE package in both directions (pomelo 2.2.7
//! `connectors/commands/handshake.js`, pomelo-hybrid.md §3).
//!
//! ```text
//! client -> server  {"sys":{"type":"js-websocket","version":"0.0.1","rsa":{},
//!                           "protoVersion":0,"dictVersion":".."},"user":{}}
//! server -> client  {"code":200,"sys":{"heartbeat":H,
//!                           "dict":{..},"routeToCode":{..},"codeToRoute":{"1":..},
//!                           "dictVersion":"..","useDict":true,
//!                           "protos":{"server":..,"client":..,"version":".."},"useProto":true}}
//!                   {"code":500}   missing `sys`          (HandshakeRejection::MissingSys)
//!                   {"code":501}   client type refused    (HandshakeRejection::ClientRejected)
//! client -> server  HANDSHAKE_ACK (empty); the server answers with a HEARTBEAT
//! ```
//!
//! # Invariants
//! - The request is parsed as Pomelo does: a body that is not JSON counts as `{}`, and a missing
//!   or non-object `sys` is [`HandshakeRejection::MissingSys`]; the version fields are kept as
//!   strings whether a client sent a string or a number (`"protoVersion":0` is common).
//! - The response is written with Pomelo's key order and no whitespace, so it is byte-for-byte
//!   what Pomelo 2.2.7 sends for the same heartbeat, dictionary and protos (shaddock sends no
//!   `user`). The dictionary JSON is pre-rendered by [`RouteDict`], so a response costs
//!   one reservation and a few copies, and always fits a package (the dictionary bounds itself).
//! - JSON is parsed only here, once per connection; serde_json's recursion limit keeps hostile
//!   nesting from overflowing the stack.

use std::collections::BTreeMap;

use bytes::{BufMut, BytesMut};
use serde_json::Value;

use crate::protocol::ProtocolError;
use crate::protocol::pomelo::package::{self, HEADER_LEN, PackageType};
use crate::protocol::pomelo::{RouteDict, json_str_len, put_decimal, put_json_str};

/// The `sys` part of a client's handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandshakeRequest {
    /// `sys.type`, the client kind (`"js-websocket"`, `"anchor-tcp"`, ...).
    pub client_type: Option<String>,
    /// `sys.version`, the client's version.
    pub client_version: Option<String>,
    /// `sys.dictVersion`, the dictionary version the client has cached.
    pub dict_version: Option<String>,
    /// `sys.protoVersion`, the protobuf schema version the client has cached.
    pub proto_version: Option<String>,
    /// `user.apikey` (or `user.apiKey`): the app a client names before it enters, so that the
    /// handshake can carry that app's protos.
    pub user_apikey: Option<String>,
}

/// What the handshake response says of pomelo-protobuf (Pomelo's `useProtobuf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtosOffer<'a> {
    /// No protos: neither `protos` nor `useProto`.
    None,
    /// The client holds this version already: `"useProto":true` only.
    Cached,
    /// `"protos":<json>,"useProto":true`; `json` is `{"server":..,"client":..,"version":..}`.
    Send(&'a [u8]),
}

/// Why a handshake is refused; the answer is `{"code":<code>}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeRejection {
    /// The body has no `sys` object: code 500.
    MissingSys,
    /// The server refused the client's type or version (Pomelo's `checkClient`): code 501.
    ClientRejected,
}

impl HandshakeRejection {
    /// The `code` sent for this rejection.
    pub fn code(self) -> u16 {
        match self {
            HandshakeRejection::MissingSys => 500,
            HandshakeRejection::ClientRejected => 501,
        }
    }
}

/// Pomelo 2.x: body parsed as UTF-8 JSON, a parse error is treated as `{}`; missing or
/// non-object `sys` -> MissingSys. protoVersion/dictVersion may be strings or numbers in the
/// wild (0) — accept both, keep as string.
pub fn decode_request(body: &[u8]) -> Result<HandshakeRequest, HandshakeRejection> {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let Some(sys) = value.get("sys").and_then(Value::as_object) else {
        return Err(HandshakeRejection::MissingSys);
    };
    let field = |key: &str| match sys.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let user = value.get("user");
    let user_apikey = ["apikey", "apiKey"]
        .into_iter()
        .find_map(|key| user.and_then(|u| u.get(key)).and_then(Value::as_str))
        .map(str::to_owned);
    Ok(HandshakeRequest {
        client_type: field("type"),
        client_version: field("version"),
        dict_version: field("dictVersion"),
        proto_version: field("protoVersion"),
        user_apikey,
    })
}

/// Encodes the whole HANDSHAKE package (header + JSON) exactly as Pomelo 2.2.7 does, key order:
/// `{"code":200,"sys":{"heartbeat":H,"dict":{..},"routeToCode":{..},"codeToRoute":{"1":..},"dictVersion":"..","useDict":true,"protos":{..},"useProto":true}}`
///
/// `heartbeat` is omitted when `None`; with `dict` `None` there are no dictionary keys and no
/// `useDict`; when `include_dict` is false (the client already holds this dictVersion)
/// `dict`/`routeToCode`/`codeToRoute`/`dictVersion` are omitted but `"useDict":true` stays;
/// `protos` says what goes after it ([`ProtosOffer`]). A body too large for a package (huge
/// protos) is refused with [`ProtocolError::BodyTooLarge`] and nothing is written.
pub fn encode_response(
    heartbeat_secs: Option<u32>,
    dict: Option<&RouteDict>,
    include_dict: bool,
    protos: ProtosOffer<'_>,
    out: &mut BytesMut,
) -> Result<(), ProtocolError> {
    const OPEN: &[u8] = br#"{"code":200,"sys":{"#;
    const CLOSE: &[u8] = b"}}";
    const HEARTBEAT: &[u8] = br#""heartbeat":"#;
    const DICT: &[u8] = br#""dict":"#;
    const ROUTE_TO_CODE: &[u8] = br#","routeToCode":"#;
    const CODE_TO_ROUTE: &[u8] = br#","codeToRoute":"#;
    const DICT_VERSION: &[u8] = br#","dictVersion":"#;
    const USE_DICT: &[u8] = br#""useDict":true"#;
    const PROTOS: &[u8] = br#""protos":"#;
    const USE_PROTO: &[u8] = br#""useProto":true"#;

    let dict_len = |d: &RouteDict| {
        DICT.len()
            + 2 * d.route_to_code_json().len()
            + ROUTE_TO_CODE.len()
            + CODE_TO_ROUTE.len()
            + d.code_to_route_json().len()
            + DICT_VERSION.len()
            + json_str_len(d.version())
            + 1
    };
    let mut len = OPEN.len() + CLOSE.len();
    if heartbeat_secs.is_some() {
        len += HEARTBEAT.len() + 10 + 1;
    }
    if let Some(d) = dict {
        len += USE_DICT.len() + if include_dict { dict_len(d) } else { 0 };
    }
    len += match protos {
        ProtosOffer::None => 0,
        ProtosOffer::Cached => 1 + USE_PROTO.len(),
        ProtosOffer::Send(json) => 2 + PROTOS.len() + json.len() + USE_PROTO.len(),
    };
    if len > package::MAX_BODY_LEN {
        return Err(ProtocolError::BodyTooLarge(len));
    }

    let start = out.len();
    out.reserve(HEADER_LEN + len);
    out.put_slice(&[PackageType::Handshake as u8, 0, 0, 0]);
    out.put_slice(OPEN);
    let mut first = true;
    if let Some(secs) = heartbeat_secs {
        out.put_slice(HEARTBEAT);
        put_decimal(out, secs);
        first = false;
    }
    if let Some(d) = dict {
        if !first {
            out.put_u8(b',');
        }
        if include_dict {
            out.put_slice(DICT);
            out.put_slice(d.route_to_code_json());
            out.put_slice(ROUTE_TO_CODE);
            out.put_slice(d.route_to_code_json());
            out.put_slice(CODE_TO_ROUTE);
            out.put_slice(d.code_to_route_json());
            out.put_slice(DICT_VERSION);
            put_json_str(out, d.version());
            out.put_u8(b',');
        }
        out.put_slice(USE_DICT);
        first = false;
    }
    if protos != ProtosOffer::None {
        if !first {
            out.put_u8(b',');
        }
        if let ProtosOffer::Send(json) = protos {
            out.put_slice(PROTOS);
            out.put_slice(json);
            out.put_u8(b',');
        }
        out.put_slice(USE_PROTO);
    }
    out.put_slice(CLOSE);

    // Patch the length now that the body is written. `RouteDict` bounds its rendered size, so
    // the body always fits the 3-byte length.
    let body_len = out.len() - start - HEADER_LEN;
    let [_, hi, mid, lo] = u32::try_from(body_len).unwrap_or(u32::MAX).to_be_bytes();
    if let Some(header_len) = out.get_mut(start + 1..start + HEADER_LEN) {
        header_len.copy_from_slice(&[hi, mid, lo]);
    }
    Ok(())
}

/// Encodes the whole HANDSHAKE package refusing the client: `{"code":500}` or `{"code":501}`.
pub fn encode_rejection(rejection: HandshakeRejection, out: &mut BytesMut) {
    let body: &[u8] = match rejection {
        HandshakeRejection::MissingSys => br#"{"code":500}"#,
        HandshakeRejection::ClientRejected => br#"{"code":501}"#,
    };
    // A 12-byte body always fits a package.
    let _ = package::encode(PackageType::Handshake, body, out);
}

/// A server's handshake answer, as a client (or a test) reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandshakeResponse {
    /// `code`: 200 accepted, 500/501 refused.
    pub code: u16,
    /// `sys.heartbeat` in seconds; `None` means no heartbeats.
    pub heartbeat: Option<u32>,
    /// `sys.routeToCode` (or, from a 0.4-era server, `sys.dict`); `None` when left out.
    pub dict: Option<BTreeMap<String, u16>>,
    /// `sys.dictVersion`.
    pub dict_version: Option<String>,
    /// `sys.useDict`.
    pub use_dict: bool,
    /// `sys.useProto`: pomelo-protobuf is on.
    pub use_proto: bool,
    /// `sys.protos`, `{server, client, version}` in Pomelo's parsed form; `None` when left out.
    pub protos: Option<Value>,
}

/// Decodes the JSON body of a server's HANDSHAKE package.
pub fn decode_response(body: &[u8]) -> Result<HandshakeResponse, ProtocolError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| ProtocolError::Malformed("handshake response is not JSON"))?;
    let code = value
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .ok_or(ProtocolError::Malformed("handshake response without code"))?;
    let mut response = HandshakeResponse { code, ..HandshakeResponse::default() };
    let sys = match value.get("sys") {
        None => return Ok(response),
        Some(Value::Object(sys)) => sys,
        Some(_) => return Err(ProtocolError::Malformed("handshake sys is not an object")),
    };
    if let Some(heartbeat) = sys.get("heartbeat") {
        let secs = heartbeat
            .as_u64()
            .and_then(|h| u32::try_from(h).ok())
            .ok_or(ProtocolError::Malformed("handshake heartbeat is not a u32"))?;
        response.heartbeat = Some(secs);
    }
    if let Some(dict) = sys.get("routeToCode").or_else(|| sys.get("dict")) {
        let bad = ProtocolError::Malformed("handshake dictionary is not route -> u16");
        let entries = dict.as_object().ok_or(bad.clone())?;
        let mut map = BTreeMap::new();
        for (route, code) in entries {
            let code = code.as_u64().and_then(|c| u16::try_from(c).ok()).ok_or(bad.clone())?;
            map.insert(route.clone(), code);
        }
        response.dict = Some(map);
    }
    response.dict_version = sys.get("dictVersion").and_then(Value::as_str).map(str::to_owned);
    response.use_dict = sys.get("useDict").and_then(Value::as_bool).unwrap_or(false);
    response.use_proto = sys.get("useProto").and_then(Value::as_bool).unwrap_or(false);
    response.protos = sys.get("protos").cloned();
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ENTER: &str = "connector.entryHandler.enter";
    const PUSH_ALL: &str = "pushserver.pushHandler.pushAll";
    const RUN_2_BODY: &str = r#"{"code":200,"sys":{"heartbeat":1,"dict":{"connector.entryHandler.enter":1,"pushserver.pushHandler.pushAll":2},"routeToCode":{"connector.entryHandler.enter":1,"pushserver.pushHandler.pushAll":2},"codeToRoute":{"1":"connector.entryHandler.enter","2":"pushserver.pushHandler.pushAll"},"dictVersion":"5Dno83zSAa6srjDqr0tFnQ==","useDict":true}}"#;

    fn response(heartbeat: Option<u32>, dict: Option<&RouteDict>, include: bool) -> Vec<u8> {
        let mut out = BytesMut::from(&b"prefix"[..]);
        encode_response(heartbeat, dict, include, ProtosOffer::None, &mut out).unwrap();
        let out = out.split_off(6);
        let (pkg, used) = package::decode(&out, package::MAX_BODY_LEN).unwrap().unwrap();
        assert_eq!(used, out.len(), "one whole package");
        assert_eq!(pkg.kind, PackageType::Handshake);
        pkg.body.to_vec()
    }

    #[test]
    fn run_2_response_is_byte_exact() {
        let dict = RouteDict::new([ENTER, PUSH_ALL], []).unwrap();
        let mut out = BytesMut::new();
        encode_response(Some(1), Some(&dict), true, ProtosOffer::None, &mut out).unwrap();
        assert_eq!(&out[..4], &[0x01, 0x00, 0x01, 0x53]);
        assert_eq!(&out[4..], RUN_2_BODY.as_bytes());
    }

    #[test]
    fn response_shapes() {
        let dict = RouteDict::new([ENTER], []).unwrap();
        assert_eq!(response(None, None, true), br#"{"code":200,"sys":{}}"#);
        assert_eq!(response(Some(300), None, true), br#"{"code":200,"sys":{"heartbeat":300}}"#);
        assert_eq!(
            response(Some(300), Some(&dict), false),
            br#"{"code":200,"sys":{"heartbeat":300,"useDict":true}}"#
        );
        assert_eq!(response(None, Some(&dict), false), br#"{"code":200,"sys":{"useDict":true}}"#);
        let full = response(None, Some(&dict), true);
        assert!(
            full.starts_with(br#"{"code":200,"sys":{"dict":{"connector.entryHandler.enter":1},"#)
        );
        assert!(full.ends_with(br#","useDict":true}}"#));
        let max = response(Some(u32::MAX), Some(&dict), true);
        assert!(max.starts_with(br#"{"code":200,"sys":{"heartbeat":4294967295,"dict":"#));
    }

    #[test]
    fn protos_follow_the_dictionary() {
        let dict = RouteDict::new([ENTER], []).unwrap();
        let protos = br#"{"server":{},"client":{},"version":"v"}"#;
        let encode = |dict: Option<&RouteDict>, offer: ProtosOffer<'_>| {
            let mut out = BytesMut::new();
            encode_response(Some(5), dict, false, offer, &mut out).unwrap();
            String::from_utf8(out[HEADER_LEN..].to_vec()).unwrap()
        };
        assert_eq!(
            encode(Some(&dict), ProtosOffer::Send(protos)),
            r#"{"code":200,"sys":{"heartbeat":5,"useDict":true,"protos":{"server":{},"client":{},"version":"v"},"useProto":true}}"#
        );
        assert_eq!(
            encode(None, ProtosOffer::Cached),
            r#"{"code":200,"sys":{"heartbeat":5,"useProto":true}}"#
        );
        let mut out = BytesMut::new();
        encode_response(None, None, false, ProtosOffer::Cached, &mut out).unwrap();
        assert_eq!(&out[HEADER_LEN..], br#"{"code":200,"sys":{"useProto":true}}"#);
        let decoded = decode_response(encode(Some(&dict), ProtosOffer::Send(protos)).as_bytes());
        let decoded = decoded.unwrap();
        assert!(decoded.use_proto && decoded.use_dict);
        assert_eq!(decoded.protos.unwrap()["version"], "v");
        let huge = vec![b' '; package::MAX_BODY_LEN];
        let mut out = BytesMut::from(&b"kept"[..]);
        let refused = encode_response(None, None, false, ProtosOffer::Send(&huge), &mut out);
        assert!(matches!(refused, Err(ProtocolError::BodyTooLarge(_))));
        assert_eq!(&out[..], b"kept");
    }

    #[test]
    fn the_user_may_name_an_app() {
        let named = |body: &str| decode_request(body.as_bytes()).unwrap().user_apikey;
        assert_eq!(named(r#"{"sys":{},"user":{"apikey":"demo"}}"#).as_deref(), Some("demo"));
        assert_eq!(named(r#"{"sys":{},"user":{"apiKey":"demo"}}"#).as_deref(), Some("demo"));
        assert_eq!(named(r#"{"sys":{},"user":{"apikey":7}}"#), None);
        assert_eq!(named(r#"{"sys":{},"user":"demo"}"#), None);
    }

    #[test]
    fn response_decodes_back() {
        let dict = RouteDict::new([ENTER, PUSH_ALL], ["onMsg"]).unwrap();
        let decoded = decode_response(&response(Some(300), Some(&dict), true)).unwrap();
        assert_eq!(decoded.code, 200);
        assert_eq!(decoded.heartbeat, Some(300));
        assert_eq!(decoded.dict_version.as_deref(), Some(dict.version()));
        assert!(decoded.use_dict && !decoded.use_proto);
        let map = decoded.dict.unwrap();
        assert_eq!(map.len(), 3);
        for (route, code) in dict.iter() {
            assert_eq!(map.get(route), Some(&code));
        }
        let short = decode_response(&response(None, Some(&dict), false)).unwrap();
        assert_eq!(
            short,
            HandshakeResponse { code: 200, use_dict: true, ..HandshakeResponse::default() }
        );
    }

    #[test]
    fn rejections() {
        let mut out = BytesMut::new();
        encode_rejection(HandshakeRejection::ClientRejected, &mut out);
        // pomelo-hybrid.md §3: `01 00 00 0c 7b 22 63 6f 64 65 22 3a 35 30 31 7d`.
        assert_eq!(
            &out[..],
            &[
                0x01, 0x00, 0x00, 0x0c, 0x7b, 0x22, 0x63, 0x6f, 0x64, 0x65, 0x22, 0x3a, 0x35, 0x30,
                0x31, 0x7d
            ]
        );
        out.clear();
        encode_rejection(HandshakeRejection::MissingSys, &mut out);
        assert_eq!(&out[4..], br#"{"code":500}"#);
        assert_eq!(decode_response(&out[4..]).unwrap().code, 500);
    }

    #[test]
    fn requests() {
        let req = decode_request(
            br#"{"sys":{"type":"js-websocket","version":"0.0.1","rsa":{},"protoVersion":0,"dictVersion":"abc"},"user":{}}"#,
        )
        .unwrap();
        assert_eq!(
            req,
            HandshakeRequest {
                client_type: Some("js-websocket".into()),
                client_version: Some("0.0.1".into()),
                dict_version: Some("abc".into()),
                proto_version: Some("0".into()),
                user_apikey: None,
            }
        );
        let numeric = decode_request(br#"{"sys":{"dictVersion":0,"protoVersion":"x"}}"#).unwrap();
        assert_eq!(numeric.dict_version.as_deref(), Some("0"));
        assert_eq!(numeric.proto_version.as_deref(), Some("x"));
        assert_eq!(decode_request(br#"{"sys":{}}"#), Ok(HandshakeRequest::default()));
        assert_eq!(
            decode_request(br#"{"sys":{"type":null,"version":[]}}"#),
            Ok(HandshakeRequest::default())
        );
    }

    #[test]
    fn requests_without_sys_are_rejected_with_500() {
        for body in [
            &b""[..],
            b"not json",
            b"{",
            b"{}",
            b"[]",
            b"null",
            br#"{"user":{}}"#,
            br#"{"sys":"x"}"#,
            br#"{"sys":[1]}"#,
            &[0xff, 0xfe],
        ] {
            assert_eq!(decode_request(body), Err(HandshakeRejection::MissingSys), "{body:?}");
        }
        assert_eq!(HandshakeRejection::MissingSys.code(), 500);
        assert_eq!(HandshakeRejection::ClientRejected.code(), 501);
    }

    #[test]
    fn hostile_nesting_does_not_overflow() {
        let deep = format!("{{\"sys\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(decode_request(deep.as_bytes()), Err(HandshakeRejection::MissingSys));
        assert!(decode_response(deep.as_bytes()).is_err());
    }

    #[test]
    fn malformed_responses() {
        let m = ProtocolError::Malformed;
        assert_eq!(decode_response(b"x"), Err(m("handshake response is not JSON")));
        assert_eq!(decode_response(b"{}"), Err(m("handshake response without code")));
        assert_eq!(
            decode_response(br#"{"code":200,"sys":1}"#),
            Err(m("handshake sys is not an object"))
        );
        assert_eq!(
            decode_response(br#"{"code":200,"sys":{"heartbeat":-1}}"#),
            Err(m("handshake heartbeat is not a u32"))
        );
        assert_eq!(
            decode_response(br#"{"code":200,"sys":{"dict":{"a":70000}}}"#),
            Err(m("handshake dictionary is not route -> u16"))
        );
        // A 0.4-era server sends only `dict`.
        let old =
            decode_response(br#"{"code":200,"sys":{"heartbeat":3,"dict":{"a.b.c":1}}}"#).unwrap();
        assert_eq!(old.dict.unwrap().get("a.b.c"), Some(&1));
    }

    proptest! {
        #[test]
        fn response_round_trip(
            heartbeat in proptest::option::of(any::<u32>()),
            routes in proptest::collection::vec("\\PC{0,12}", 0..12),
            with_dict in any::<bool>(),
            include in any::<bool>(),
        ) {
            let dict = RouteDict::new(routes.iter().map(String::as_str), []).unwrap();
            let dict = with_dict.then_some(&dict);
            let decoded = decode_response(&response(heartbeat, dict, include)).unwrap();
            prop_assert_eq!(decoded.code, 200);
            prop_assert_eq!(decoded.heartbeat, heartbeat);
            prop_assert_eq!(decoded.use_dict, dict.is_some());
            match dict.filter(|_| include) {
                Some(d) => {
                    prop_assert_eq!(decoded.dict_version.as_deref(), Some(d.version()));
                    let expected: BTreeMap<String, u16> = d.iter().map(|(r, c)| (r.to_owned(), c)).collect();
                    prop_assert_eq!(decoded.dict, Some(expected));
                }
                None => prop_assert!(decoded.dict.is_none() && decoded.dict_version.is_none()),
            }
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_request(&bytes);
            let _ = decode_response(&bytes);
        }

        #[test]
        fn json_shaped_requests_never_panic(s in r#"\{("sys":)?[{}\[\]",:0-9a-zA-Z]{0,40}"#) {
            let _ = decode_request(s.as_bytes());
            let _ = decode_response(s.as_bytes());
        }
    }
}

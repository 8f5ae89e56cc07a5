//! Pomelo's codecs: packages, messages, handshake and kick bodies, the route dictionary, and
//! pomelo-protobuf bodies.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::BytesMut;
use serde_json::Value;

use crate::protocol::pomelo::handshake::{self, ProtosOffer};
use crate::protocol::pomelo::package::{self, HEADER_LEN, MAX_BODY_LEN, PackageType};
use crate::protocol::pomelo::{RouteDict, kick as kick_body, message as msg};
use crate::protocol::protobuf::Protos;
use crate::protocol::wire::truncate_str;

/// A small package limit, so that the size check is reached too.
const SMALL_MAX: usize = 64;

/// Packages one after another: each re-encodes to its own bytes, every strict prefix of one is
/// "need more", and a smaller limit refuses exactly the larger ones.
pub fn package(data: &[u8]) {
    let mut rest = data;
    loop {
        let decoded = package::decode(rest, MAX_BODY_LEN);
        let small = package::decode(rest, SMALL_MAX);
        let Ok(Some((pkg, used))) = decoded else {
            return;
        };
        assert_eq!(used, HEADER_LEN + pkg.body.len());
        match small {
            Ok(Some(found)) => assert_eq!(found, (pkg, used)),
            Err(_) => assert!(pkg.body.len() > SMALL_MAX, "refused under its limit"),
            Ok(None) => panic!("a whole package is incomplete under a smaller limit"),
        }
        let mut out = BytesMut::new();
        package::encode(pkg.kind, pkg.body, &mut out).expect("a decoded body fits");
        assert_eq!(&out[..], &rest[..used], "a package's encoding is its bytes");
        for cut in [0, 1, HEADER_LEN - 1, HEADER_LEN, used - 1] {
            if cut < used {
                assert_eq!(package::decode(&rest[..cut], MAX_BODY_LEN), Ok(None), "cut at {cut}");
            }
        }
        rest = &rest[used..];
    }
}

/// A DATA package's message: decode → encode → decode gives the same message, and the
/// package encoder wraps the same bytes.
pub fn message(data: &[u8]) {
    let Ok(decoded) = msg::decode(data) else {
        return;
    };
    let mut out = BytesMut::new();
    msg::encode(&decoded, &mut out).expect("a decoded message encodes");
    assert_eq!(out.len(), msg::encoded_len(&decoded));
    assert_eq!(msg::decode(&out), Ok(decoded), "decode → encode → decode");
    let mut framed = BytesMut::new();
    msg::encode_package(&decoded, &mut framed).expect("a decoded message fits a package");
    let (pkg, used) = package::decode(&framed, MAX_BODY_LEN).ok().flatten().expect("one package");
    assert_eq!((pkg.kind, pkg.body, used), (PackageType::Data, &out[..], framed.len()));
}

/// A HANDSHAKE body, read both as a client's request and as a server's answer; the answer's
/// heartbeat survives the server's encoder.
pub fn handshake(data: &[u8]) {
    let _ = handshake::decode_request(data);
    let Ok(response) = handshake::decode_response(data) else {
        return;
    };
    let mut out = BytesMut::new();
    handshake::encode_response(response.heartbeat, None, false, ProtosOffer::None, &mut out)
        .expect("a handshake without dictionary or protos fits");
    let again = handshake::decode_response(package_body(&out, PackageType::Handshake))
        .expect("the server's own handshake decodes");
    assert_eq!((again.code, again.heartbeat), (200, response.heartbeat));
}

/// A KICK body: its reason survives the encoder (cut to the longest reason sent).
pub fn kick(data: &[u8]) {
    let Ok(Some(reason)) = kick_body::decode(data) else {
        return;
    };
    let mut out = BytesMut::new();
    kick_body::encode(&reason, &mut out);
    let again = kick_body::decode(package_body(&out, PackageType::Kick));
    let sent = truncate_str(&reason, kick_body::MAX_REASON_LEN);
    assert_eq!(again, Ok(Some(sent.to_owned())));
}

/// A route dictionary built from input route names (`\n` between names; handler routes, then
/// a NUL byte, then user routes): codes are dense and map back to their routes, and the
/// handshake carrying it decodes, as JSON, to the same routes, codes and version.
pub fn dict(data: &[u8]) {
    let (handlers, users) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let names = |part: &[u8]| -> Vec<String> {
        part.split(|&b| b == b'\n').map(|name| String::from_utf8_lossy(name).into_owned()).collect()
    };
    let (handlers, users) = (names(handlers), names(users));
    let Ok(dict) =
        RouteDict::new(handlers.iter().map(String::as_str), users.iter().map(String::as_str))
    else {
        return;
    };
    let mut codes = BTreeMap::new();
    for (i, (route, code)) in dict.iter().enumerate() {
        assert_eq!(usize::from(code), i + 1, "codes are dense from 1");
        assert_eq!((dict.code(route), dict.route(code)), (Some(code), Some(route)));
        codes.insert(route.to_owned(), code);
    }
    assert_eq!(codes.len(), dict.len(), "a route appears once");
    for route in handlers.iter().chain(&users) {
        assert!(dict.code(route).is_some(), "{route:?} has no code");
    }
    let len = u16::try_from(dict.len()).expect("at most 65535 routes");
    assert_eq!((dict.route(0), len.checked_add(1).and_then(|c| dict.route(c))), (None, None));
    let mut out = BytesMut::new();
    handshake::encode_response(Some(30), Some(&dict), true, ProtosOffer::None, &mut out)
        .expect("a dictionary bounds its handshake");
    let response = handshake::decode_response(package_body(&out, PackageType::Handshake))
        .expect("the handshake is JSON");
    assert_eq!(response.dict, Some(codes), "routeToCode as JSON");
    assert_eq!(response.dict_version.as_deref(), Some(dict.version()));
}

/// The body of the one whole package of kind `kind` that `out` holds.
fn package_body(out: &[u8], kind: PackageType) -> &[u8] {
    let (pkg, used) = package::decode(out, MAX_BODY_LEN).ok().flatten().expect("one package");
    assert_eq!((pkg.kind, used), (kind, out.len()));
    pkg.body
}

/// The routes the protobuf target decodes with, each with its protos: the pair in
/// `tests/data/protos/` and every set of `tests/data/protobuf-vectors.json`.
fn routes() -> &'static [(Protos, String)] {
    static ROUTES: OnceLock<Vec<(Protos, String)>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let parse = |text: &str| -> Value { serde_json::from_str(text).expect("test protos JSON") };
        let mut files = vec![
            parse(include_str!("../../tests/data/protos/clientProtos.json")),
            parse(include_str!("../../tests/data/protos/serverProtos.json")),
        ];
        let vectors = parse(include_str!("../../tests/data/protobuf-vectors.json"));
        let sets = vectors.get("sets").and_then(Value::as_array).expect("vector sets");
        files.extend(sets.iter().filter_map(|set| set.get("protos").cloned()));
        let mut routes = Vec::new();
        for json in &files {
            let protos = Protos::parse(json).expect("test protos parse");
            routes.extend(protos.routes().map(|route| (protos.clone(), route.to_owned())));
        }
        routes
    })
}

/// A pomelo-protobuf body: the first byte picks a route of the test protos, the rest is the
/// body. What decodes, and encodes again, decodes to the same JSON.
pub fn protobuf_decode(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let routes = routes();
    let (protos, route) = &routes[usize::from(pick) % routes.len()];
    let Ok(value) = protos.decode(route, body) else {
        return;
    };
    let mut out = BytesMut::new();
    // A decoded value need not encode (a uInt32 past 32 bits; a float that was NaN is null).
    if protos.encode(route, &value, &mut out).is_ok() {
        let again = protos.decode(route, &out).map(without_empty_lists);
        assert_eq!(again.ok(), Some(without_empty_lists(value)), "decode → encode → decode");
    }
}

/// `value` without its empty lists: a repeated number field that says "0 elements" decodes to
/// `[]`, and an empty list is not written (as in pomelo-protobuf), so it comes back absent.
fn without_empty_lists(value: Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .into_iter()
                .filter(|(_, v)| v.as_array().is_none_or(|list| !list.is_empty()))
                .map(|(k, v)| (k, without_empty_lists(v)))
                .collect(),
        ),
        Value::Array(list) => Value::Array(list.into_iter().map(without_empty_lists).collect()),
        other => other,
    }
}

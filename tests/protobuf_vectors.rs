//! shaddock's pomelo-protobuf codec against golden vectors from the real npm `pomelo-protobuf`
//! 0.4.0 (`tests/data/protobuf-vectors.json`, made by `scripts/protobuf-vectors.mjs`): the parsed
//! form byte for byte, Pomelo's version, every case's encoding byte for byte, its decoding
//! value for value (floats bit for bit), the decode-only cases, and every cut of every encoding.

use bytes::BytesMut;
use serde_json::Value;
use shaddock::protocol::protobuf::{self, Protos};

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/protobuf-vectors.json");
    serde_json::from_slice(&std::fs::read(path).expect("the vectors file")).expect("JSON")
}

fn sets(vectors: &Value) -> Vec<(String, Protos, &Value)> {
    let sets = vectors["sets"].as_array().expect("sets");
    sets.iter()
        .map(|set| {
            let name = set["name"].as_str().expect("name").to_owned();
            let protos = Protos::parse(&set["protos"]).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, protos, set)
        })
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

/// Equal as JSON values, with numbers compared as the f64 JavaScript holds (bit for bit).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.as_f64().map(f64::to_bits) == y.as_f64().map(f64::to_bits)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|((kx, vx), (ky, vy))| kx == ky && same(vx, vy))
        }
        _ => a == b,
    }
}

#[test]
fn the_parsed_form_is_what_pomelo_sends() {
    let vectors = vectors();
    for (name, protos, set) in sets(&vectors) {
        assert_eq!(protos.parsed_json(), set["parsed"].as_str().expect("parsed"), "set {name}");
    }
}

#[test]
fn versions_are_pomelos() {
    let vectors = vectors();
    let sets = sets(&vectors);
    let find = |name: &str| &sets.iter().find(|(n, _, _)| n == name).expect("set").1;
    for pair in vectors["versions"].as_array().expect("versions") {
        let (client, server) = (pair["client"].as_str().unwrap(), pair["server"].as_str().unwrap());
        assert_eq!(protobuf::version(find(client), find(server)), pair["version"], "{pair}");
    }
}

#[test]
fn every_case_encodes_and_decodes_as_npm_does() {
    let vectors = vectors();
    for (name, protos, set) in sets(&vectors) {
        for case in set["cases"].as_array().expect("cases") {
            let route = case["route"].as_str().expect("route");
            let expected = hex(case["hex"].as_str().expect("hex"));
            let mut out = BytesMut::new();
            protos.encode(route, &case["msg"], &mut out).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&out[..], &expected[..], "set {name}, {route}: {}", case["msg"]);
            let decoded = protos.decode(route, &expected).expect("decodes");
            assert!(
                same(&decoded, &case["decoded"]),
                "{name}, {route}: {decoded} vs {}",
                case["decoded"]
            );
        }
    }
}

#[test]
fn hand_made_bytes_decode_as_npm_decodes_them() {
    let vectors = vectors();
    let sets = sets(&vectors);
    for case in vectors["decode_only"].as_array().expect("decode_only") {
        let protos = &sets.iter().find(|(n, _, _)| *n == case["set"]).expect("set").1;
        let route = case["route"].as_str().expect("route");
        let decoded = protos.decode(route, &hex(case["hex"].as_str().unwrap())).expect("decodes");
        assert!(
            same(&decoded, &case["decoded"]),
            "{}: {decoded} vs {}",
            case["hex"],
            case["decoded"]
        );
    }
}

#[test]
fn every_cut_of_every_encoding_is_an_error_or_a_prefix_of_fields() {
    let vectors = vectors();
    for (name, protos, set) in sets(&vectors) {
        for case in set["cases"].as_array().expect("cases") {
            let route = case["route"].as_str().expect("route");
            let bytes = hex(case["hex"].as_str().expect("hex"));
            for cut in 0..bytes.len() {
                // A cut at a field boundary is a shorter valid message; anywhere else an error.
                // Either way no panic, and never the whole message.
                if let Ok(value) = protos.decode(route, &bytes[..cut]) {
                    assert!(
                        !same(&value, &case["decoded"]) || cut == 0,
                        "{name} {route} cut {cut}"
                    );
                }
            }
        }
    }
}

//! Unit tests of the codec: every refusal of a protos file, every refusal of a message (the
//! field named, the output untouched), the wire format's edges, and properties (round trips,
//! arbitrary bytes, every truncation). The byte-for-byte agreement with npm is in
//! `tests/protobuf_vectors.rs`.

use bytes::BytesMut;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn protos(json: Value) -> Protos {
    Protos::parse(&json).unwrap_or_else(|e| panic!("{e}"))
}

fn refused(json: Value) -> SchemaError {
    Protos::parse(&json).expect_err("refused")
}

fn encode(protos: &Protos, route: &str, msg: Value) -> Result<Vec<u8>, CodecError> {
    let mut out = BytesMut::from(&b"kept"[..]);
    match protos.encode(route, &msg, &mut out) {
        Ok(()) => Ok(out[4..].to_vec()),
        Err(e) => {
            assert_eq!(&out[..], b"kept", "an error leaves the output as it was");
            Err(e)
        }
    }
}

fn notice() -> Protos {
    protos(json!({
        "message Notice": {
            "required string title": 1,
            "optional uInt32 badge": 2,
            "repeated string tags": 3,
            "repeated sInt32 deltas": 4,
            "optional float ratio": 5,
            "optional double score": 6
        },
        "onMsg": {"required Notice msg": 1, "repeated Notice more": 2, "optional int32 n": 3},
        "message Node": {"optional uInt32 v": 1, "optional Node next": 2}
    }))
}

#[test]
fn every_malformed_protos_file_is_refused_naming_route_and_field() {
    let cases = [
        (json!([]), "", None, "a JSON object"),
        (json!({"r": 1}), "r", None, "must be a JSON object"),
        (json!({"r": {"required uInt32": 1}}), "r", Some("required uInt32"), "one space apart"),
        (json!({"r": {"required  uInt32 a": 1}}), "r", Some("required  uInt32 a"), "one space"),
        (json!({"r": {"needed uInt32 a": 1}}), "r", Some("needed uInt32 a"), "unknown rule"),
        (json!({"r": {"required uInt32 a": -1}}), "r", Some("required uInt32 a"), "tag"),
        (json!({"r": {"required uInt32 a": 1.5}}), "r", Some("required uInt32 a"), "tag"),
        (json!({"r": {"required uInt32 a": "1"}}), "r", Some("required uInt32 a"), "tag"),
        (json!({"r": {"required uInt32 a": 268_435_456}}), "r", Some("required uInt32 a"), "tag"),
        (json!({"r": {"required uInt32 a": 1, "optional string b": 1}}), "r", Some("b"), "tag 1"),
        (json!({"r": {"required uInt32 a": 1, "optional string a": 2}}), "r", Some("a"), "twice"),
        (json!({"r": {"required uInt32 __tags": 1}}), "r", Some("required uInt32 __tags"), "name"),
        (json!({"r": {"required uInt64 a": 1}}), "r", Some("required uInt64 a"), "no value"),
        (json!({"r": {"required sInt64 a": 1}}), "r", Some("required sInt64 a"), "no value"),
        (json!({"r": {"required bool a": 1}}), "r", Some("required bool a"), "neither"),
        (json!({"r": {"message M": 3}}), "r", None, "must be a JSON object"),
        (json!({"r": {"message": {}}}), "r", Some("message"), "message <Name>"),
    ];
    for (file, route, field, reason) in cases {
        let e = refused(file.clone());
        assert_eq!(e.route, route, "{file}: {e}");
        assert_eq!(e.field.as_deref(), field, "{file}: {e}");
        assert!(e.reason.contains(reason), "{file}: {e}");
    }
}

#[test]
fn types_resolve_in_the_holding_message_then_at_the_root() {
    // Nested in the holder, or a root message: fine, also recursively through the root.
    protos(json!({"r": {"message A": {"required uInt32 x": 1}, "required A a": 1}}));
    protos(json!({"message A": {"optional A a": 1}, "r": {"required A a": 1}}));
    // A type nested in an enclosing message further out does not resolve (npm's encoder would
    // write the key and no value).
    let e = refused(json!({"r": {
        "message A": {"optional uInt32 x": 1},
        "message B": {"optional A a": 1},
        "required B b": 1
    }}));
    assert_eq!((e.route.as_str(), e.field.as_deref()), ("r", Some("optional A a")), "{e}");
}

#[test]
fn the_parsed_form_orders_keys_as_javascript_does() {
    let p = protos(json!({
        "r": {"required uInt32 b": 2, "optional string a": 1, "optional uInt32 7": 3,
              "message M": {}},
        "10": {}
    }));
    assert_eq!(
        p.parsed_json(),
        concat!(
            r#"{"10":{"__messages":{},"__tags":{}},"r":{"7":{"option":"optional","type":"uInt32","tag":3},"#,
            r#""b":{"option":"required","type":"uInt32","tag":2},"a":{"option":"optional","type":"string","tag":1},"#,
            r#""__messages":{"M":{"__messages":{},"__tags":{}}},"__tags":{"1":"a","2":"b","3":"7"}}}"#
        )
    );
    assert_eq!(Protos::default().parsed_json(), "{}");
    assert!(Protos::default().is_empty() && !p.is_empty());
    assert_eq!(p.routes().collect::<Vec<_>>(), ["10", "r"]);
    assert!(notice().routes().eq(["onMsg"]));
    assert!(p.has("r") && !p.has("s"));
    let fields = p.fields("r").unwrap();
    assert_eq!(
        fields[0],
        Field { name: "b".into(), rule: Rule::Required, kind: FieldType::UInt32, tag: 2 }
    );
    // Pomelo's version of two empty files: base64(md5("{}{}")).
    assert_eq!(version(&Protos::default(), &Protos::default()), "xT9OvpsqULwrUv2IpdUD4Q==");
}

#[test]
fn the_wire_format() {
    let p = notice();
    // title "hi" (key 0x0a), badge 300 (0x10, varint ac 02), tags a, b (0x1a per element),
    // deltas -1, 1 (one key 0x20, count 2, zigzag 1 and 2), ratio 1.5 (0x2d, f32 LE), score -2
    // (0x31, f64 LE).
    let msg = json!({"title": "hi", "badge": 300, "tags": ["a", "b"], "deltas": [-1, 1],
                     "ratio": 1.5, "score": -2.0});
    let inner = [
        &[0x0a, 2, b'h', b'i', 0x10, 0xac, 0x02, 0x1a, 1, b'a', 0x1a, 1, b'b', 0x20, 2, 1, 2][..],
        &[0x2d, 0, 0, 0xc0, 0x3f, 0x31, 0, 0, 0, 0, 0, 0, 0, 0xc0],
    ]
    .concat();
    let mut expected = vec![0x0a, inner.len() as u8];
    expected.extend_from_slice(&inner);
    // int32 is zigzag too: -3 is 5.
    expected.extend_from_slice(&[0x18, 5]);
    let bytes = encode(&p, "onMsg", json!({"msg": msg, "n": -3, "unknown": [1, 2]})).unwrap();
    assert_eq!(bytes, expected);
    assert_eq!(p.decode("onMsg", &bytes).unwrap(), json!({"msg": msg, "n": -3}));
    // Keys go in the message's order, not the proto's; empty lists write nothing.
    let a = encode(&p, "onMsg", json!({"n": 1, "msg": {"title": "t", "tags": []}})).unwrap();
    assert_eq!(a, [0x18, 2, 0x0a, 3, 0x0a, 1, b't']);
    // A character beyond the BMP is 4 bytes of UTF-8.
    let emoji = encode(&p, "onMsg", json!({"msg": {"title": "😀"}})).unwrap();
    assert_eq!(emoji, [0x0a, 6, 0x0a, 4, 0xf0, 0x9f, 0x98, 0x80]);
}

#[test]
fn every_value_that_does_not_fit_is_refused_naming_the_field() {
    let p = notice();
    let cases = [
        (json!("not an object"), "(message)", "must be an object"),
        (json!({}), "msg", "required field missing"),
        (json!({"msg": {}}), "msg.title", "required field missing"),
        (json!({"msg": null}), "msg", "must be an object, not null"),
        (json!({"msg": {"title": 5}}), "msg.title", "must be a string"),
        (json!({"msg": {"title": "t", "badge": -1}}), "msg.badge", "negative"),
        (json!({"msg": {"title": "t", "badge": 1.5}}), "msg.badge", "integer"),
        (json!({"msg": {"title": "t", "badge": "3"}}), "msg.badge", "must be a number"),
        (json!({"msg": {"title": "t", "badge": 1e20}}), "msg.badge", "64 bits"),
        (json!({"msg": {"title": "t", "tags": "a"}}), "msg.tags", "must be a list"),
        (json!({"msg": {"title": "t", "tags": ["a", 1]}}), "msg.tags[1]", "must be a string"),
        (json!({"msg": {"title": "t", "ratio": true}}), "msg.ratio", "must be a number"),
        (json!({"msg": {"title": "t"}, "more": [{"title": "a"}, {}]}), "more[1].title", "missing"),
        (json!({"msg": {"title": "t"}, "n": 1e19}), "n", "64 bits"),
    ];
    for (msg, path, reason) in cases {
        let e = encode(&p, "onMsg", msg.clone()).expect_err("refused");
        assert_eq!(e.path, path, "{msg}: {e}");
        assert!(e.reason.contains(reason), "{msg}: {e}");
    }
    let e = encode(&p, "nope", json!({})).expect_err("no such route");
    assert!(e.reason.contains("no proto"), "{e}");
}

#[test]
fn nesting_is_bounded_both_ways() {
    let p = notice();
    let mut deep = json!({"v": 1});
    for _ in 0..MAX_DEPTH {
        deep = json!({"next": deep});
    }
    let e = encode(&p, "message Node", deep).expect_err("too deep");
    assert!(e.reason.contains("nested deeper"), "{e}");
    // 40 nested lengths of 2-byte messages: each level is key 0x12 + length.
    let mut bytes = vec![0x08, 1];
    for _ in 0..40 {
        let mut outer = vec![0x12, bytes.len() as u8];
        outer.extend_from_slice(&bytes);
        bytes = outer;
    }
    let e = p.decode("message Node", &bytes).expect_err("too deep");
    assert!(e.reason.contains("nested deeper"), "{e}");
}

#[test]
fn every_malformed_body_is_refused_naming_the_field() {
    let p = notice();
    let cases: [(&[u8], &str, &str); 6] = [
        (&[0x78, 1], "(message)", "tag 15"),
        (&[0x0a], "msg", "ends inside"),
        (&[0x0a, 5, 0x0a], "msg", "ends inside"),
        (&[0x0a, 3, 0x0a, 5, b'a'], "msg.title", "ends inside"),
        (&[0x0a, 2, 0x2d, 0], "msg.ratio", "ends inside"),
        (&[0x0a, 3, 0x20, 0x7f, 1], "msg.deltas", "127 elements"),
    ];
    for (bytes, path, reason) in cases {
        let e = p.decode("onMsg", bytes).expect_err("refused");
        assert_eq!(e.path, path, "{bytes:02x?}: {e}");
        assert!(e.reason.contains(reason), "{bytes:02x?}: {e}");
    }
    // A varint past 64 bits.
    let e = p.decode("onMsg", &[0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    let e = e.expect_err("too long");
    assert_eq!((e.path.as_str(), e.reason.as_str()), ("n", "the value is beyond 64 bits"));
}

#[test]
fn decoding_is_as_lenient_as_node() {
    let p = notice();
    // The key's wire type is ignored: the browser build writes 2 for integers (n = 2 here).
    assert_eq!(p.decode("onMsg", &[0x1a, 4]).unwrap(), json!({"n": 2}));
    let browser = [0x0a, 4, 0x0a, 0, 0x12, 7];
    assert_eq!(p.decode("onMsg", &browser).unwrap(), json!({"msg": {"title": "", "badge": 7}}));
    // Missing required fields are not checked; a field seen twice keeps the last value.
    assert_eq!(p.decode("onMsg", &[0x0a, 0]).unwrap(), json!({"msg": {}}));
    assert_eq!(p.decode("onMsg", &[0x18, 2, 0x18, 4]).unwrap(), json!({"n": 2}));
    // Floats that are not numbers come out as null, as JSON.stringify gives them.
    let nan = [0x0a, 7, 0x0a, 0, 0x2d, 0, 0, 0xc0, 0x7f];
    assert_eq!(p.decode("onMsg", &nan).unwrap(), json!({"msg": {"title": "", "ratio": null}}));
    assert_eq!(p.decode("onMsg", &[]).unwrap(), json!({}));
}

fn notice_value() -> impl Strategy<Value = Value> {
    (
        "\\PC{0,20}",
        proptest::option::of(0u32..=u32::MAX),
        proptest::collection::vec("\\PC{0,5}", 0..4),
        proptest::collection::vec(-1_000_000i32..1_000_000, 0..4),
        proptest::option::of(-1e6f32..1e6),
        proptest::option::of(-1e300f64..1e300),
    )
        .prop_map(|(title, badge, tags, deltas, ratio, score)| {
            let mut msg = json!({"title": title});
            if let Some(b) = badge {
                msg["badge"] = json!(b);
            }
            if !tags.is_empty() {
                msg["tags"] = json!(tags);
            }
            if !deltas.is_empty() {
                msg["deltas"] = json!(deltas);
            }
            if let Some(r) = ratio {
                msg["ratio"] = json!(f64::from(r));
            }
            if let Some(s) = score {
                msg["score"] = json!(s);
            }
            msg
        })
}

proptest! {
    #[test]
    fn messages_round_trip(msg in notice_value(), more in proptest::collection::vec(notice_value(), 0..3)) {
        let p = notice();
        let mut body = json!({"msg": msg});
        if !more.is_empty() {
            body["more"] = json!(more);
        }
        let bytes = encode(&p, "onMsg", body.clone()).unwrap();
        prop_assert_eq!(p.decode("onMsg", &bytes).unwrap(), body);
        // Every cut short of the end decodes to something else or fails, and never panics.
        for cut in 0..bytes.len() {
            if let Ok(value) = p.decode("onMsg", &bytes[..cut]) {
                prop_assert_ne!(value, p.decode("onMsg", &bytes).unwrap());
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let p = notice();
        let _ = p.decode("onMsg", &bytes);
        let _ = p.decode("message Node", &bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(s in r#"[\{\}\[\]",:0-9a-z ]{0,40}"#) {
        if let Ok(value) = serde_json::from_str::<Value>(&s) {
            let _ = Protos::parse(&value);
            let _ = encode(&notice(), "onMsg", value);
        }
    }
}

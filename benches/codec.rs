//! Codec costs on the hot paths: decoding a client request in place, encoding a push once for a
//! broadcast, encoding the handshake answer every new connection gets, and pomelo-protobuf
//! against JSON for the same bodies.
//!
//! Run with `cargo bench --bench codec`.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shaddock::protocol::pomelo::{Message, Route, RouteDict, handshake, message, package};
use shaddock::protocol::protobuf::Protos;

/// pomelo-captures.md, run 1 conn 3: the client's `connector.entryHandler.enter` request.
const ENTER_REQUEST: &[u8] = b"\x04\x00\x00\x5e\x00\x01\x1cconnector.entryHandler.enter\
{\"role\":\"client\",\"apikey\":\"demo-apikey\",\"clientId\":\"android-2\"}";

const MAX_BODY: usize = 65_536;

fn decode_request(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(ENTER_REQUEST.len() as u64));
    group.bench_function("request_package", |b| {
        b.iter(|| {
            let (pkg, used) =
                package::decode(black_box(ENTER_REQUEST), MAX_BODY).expect("valid").expect("whole");
            let msg = message::decode(pkg.body).expect("valid");
            black_box((msg, used))
        })
    });
    group.finish();
}

fn encode_push(c: &mut Criterion) {
    let body = br#"{"msg":"hello push"}"#;
    let mut out = BytesMut::with_capacity(256);
    let mut group = c.benchmark_group("encode");
    group.bench_function("push_route_name", |b| {
        b.iter(|| {
            out.clear();
            let msg = Message::push(Route::Name(black_box("onMsg")), black_box(body));
            message::encode_package(&msg, &mut out).expect("valid");
            black_box(out.len())
        })
    });
    group.bench_function("push_dict_code", |b| {
        b.iter(|| {
            out.clear();
            let msg = Message::push(Route::Code(black_box(4)), black_box(body));
            message::encode_package(&msg, &mut out).expect("valid");
            black_box(out.len())
        })
    });
    group.finish();
}

fn encode_handshake(c: &mut Criterion) {
    let dict = RouteDict::new(
        [
            "connector.entryHandler.enter",
            "pushserver.pushHandler.pushAll",
            "pushserver.pushHandler.pushByClientId",
        ],
        ["onAdd", "onLeave", "onMsg"],
    )
    .expect("small dictionary");
    let mut out = BytesMut::with_capacity(1024);
    let mut group = c.benchmark_group("handshake");
    group.bench_function("response_with_dict", |b| {
        b.iter(|| {
            out.clear();
            let offer = handshake::ProtosOffer::None;
            handshake::encode_response(black_box(Some(300)), Some(&dict), true, offer, &mut out)
                .expect("fits");
            black_box(out.len())
        })
    });
    group.bench_function("response_cached_dict", |b| {
        b.iter(|| {
            out.clear();
            let offer = handshake::ProtosOffer::None;
            handshake::encode_response(black_box(Some(300)), Some(&dict), false, offer, &mut out)
                .expect("fits");
            black_box(out.len())
        })
    });
    group.finish();
}

/// pomelo-protobuf: an `onMsg` push body encoded with the test protos (what a broadcast to an app
/// with protos costs once, before any recipient), against `serde_json` serializing the same body,
/// and an `enter` request decoded with the client protos against JSON parsing.
fn protobuf(c: &mut Criterion) {
    let load = |name: &str| {
        let path = format!("{}/tests/data/protos/{name}", env!("CARGO_MANIFEST_DIR"));
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).expect("test protos")).expect("JSON");
        Protos::parse(&json).expect("valid protos")
    };
    let (server, client) = (load("serverProtos.json"), load("clientProtos.json"));
    let body = serde_json::json!({"msg": {"title": "Sale", "body": "50% off today, only in the app",
        "badge": 3, "tags": ["promo", "retail"], "ids": [1, 300, 70000]}});
    let mut group = c.benchmark_group("protobuf");
    let mut out = BytesMut::with_capacity(1024);
    group.bench_function("encode_on_msg", |b| {
        b.iter(|| {
            out.clear();
            server.encode("onMsg", black_box(&body), &mut out).expect("fits");
            black_box(out.len())
        })
    });
    group.bench_function("json_on_msg", |b| {
        b.iter(|| black_box(serde_json::to_vec(black_box(&body)).expect("serializes").len()))
    });
    let enter =
        serde_json::json!({"role": "client", "apikey": "demo-apikey", "clientId": "android-2"});
    let route = "connector.entryHandler.enter";
    let mut encoded = BytesMut::new();
    client.encode(route, &enter, &mut encoded).expect("fits");
    let json = serde_json::to_vec(&enter).expect("serializes");
    group.bench_function("decode_enter", |b| {
        b.iter(|| black_box(client.decode(route, black_box(&encoded)).expect("decodes")))
    });
    group.bench_function("json_enter", |b| {
        b.iter(|| {
            black_box(serde_json::from_slice::<serde_json::Value>(black_box(&json)).expect("JSON"))
        })
    });
    group.finish();
}

criterion_group!(benches, decode_request, encode_push, encode_handshake, protobuf);
criterion_main!(benches);

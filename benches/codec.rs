//! Codec costs on the hot paths: decoding a client request in place, encoding a push once for a
//! broadcast, and encoding the handshake answer every new connection gets.
//!
//! Run with `cargo bench --bench codec`.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shaddock::protocol::pomelo::{Message, Route, RouteDict, handshake, message, package};

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

criterion_group!(benches, decode_request, encode_push, encode_handshake);
criterion_main!(benches);

//! WebSocket codec costs on the hot paths: unmasking (every client byte goes through it, so the
//! u64 XOR is measured against a plain byte loop), decoding a client frame in place, the one
//! header a broadcast puts in front of a shared package, and the once-per-connection upgrade.
//!
//! Run with `cargo bench --bench websocket`.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shaddock::protocol::sniff::sniff;
use shaddock::protocol::websocket::frame::{self, OpCode};
use shaddock::protocol::websocket::upgrade;

/// pomelo-captures.md, run 1 conn 3: the client's `connector.entryHandler.enter` request.
const ENTER_REQUEST: &[u8] = b"\x04\x00\x00\x5e\x00\x01\x1cconnector.entryHandler.enter\
{\"role\":\"client\",\"apikey\":\"demo-apikey\",\"clientId\":\"android-2\"}";

/// A Chrome 124 upgrade request.
const CHROME: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: 127.0.0.1:3010\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: http://127.0.0.1:3080\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const MAX_PAYLOAD: usize = 1 << 20;

/// The obvious loop, as the baseline `apply_mask` must beat.
fn mask_bytewise(buf: &mut [u8], mask: [u8; 4]) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

fn unmask(c: &mut Criterion) {
    let mut group = c.benchmark_group("unmask");
    for size in [16usize, 128, 1024, 65_536] {
        let mut buf = vec![0xa5u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("u64", size), &size, |b, _| {
            b.iter(|| frame::apply_mask(black_box(&mut buf), black_box(MASK)))
        });
        group.bench_with_input(BenchmarkId::new("bytewise", size), &size, |b, _| {
            b.iter(|| mask_bytewise(black_box(&mut buf), black_box(MASK)))
        });
    }
    group.finish();
}

fn decode_frame(c: &mut Criterion) {
    let mut group = c.benchmark_group("ws_decode");
    for (name, payload) in
        [("enter_request", ENTER_REQUEST.to_vec()), ("binary_64k", vec![0x5a; 65_536])]
    {
        let mut out = BytesMut::new();
        frame::encode_client_frame(true, OpCode::Binary, &payload, MASK, &mut out);
        let mut buf = out.to_vec();
        group.throughput(Throughput::Bytes(buf.len() as u64));
        // Each run unmasks the payload in place, so the buffer flips between masked and
        // unmasked; the work is the same either way.
        group.bench_function(name, |b| {
            b.iter(|| {
                let (frame, used) = frame::decode_client_frame(black_box(&mut buf), MAX_PAYLOAD)
                    .expect("valid")
                    .expect("whole");
                black_box((frame.payload.len(), used))
            })
        });
    }
    group.finish();
}

fn encode_frame(c: &mut Criterion) {
    let push = br#"{"msg":"hello push"}"#;
    let mut out = BytesMut::with_capacity(256);
    let mut group = c.benchmark_group("ws_encode");
    group.bench_function("broadcast_header", |b| {
        b.iter(|| {
            out.clear();
            frame::encode_header(true, OpCode::Binary, black_box(push.len() + 9), &mut out);
            black_box(out.len())
        })
    });
    group.bench_function("push_frame", |b| {
        b.iter(|| {
            out.clear();
            frame::encode_frame(OpCode::Binary, black_box(push), &mut out);
            black_box(out.len())
        })
    });
    group.bench_function("close_frame", |b| {
        b.iter(|| {
            out.clear();
            frame::encode_close(1001, black_box("shutdown"), &mut out);
            black_box(out.len())
        })
    });
    group.finish();
}

fn handshake(c: &mut Criterion) {
    let mut out = BytesMut::with_capacity(256);
    let mut group = c.benchmark_group("upgrade");
    group.bench_function("sniff", |b| b.iter(|| black_box(sniff(black_box(CHROME)))));
    group.bench_function("decode_request_chrome", |b| {
        b.iter(|| {
            let (req, used) =
                upgrade::decode_request(black_box(CHROME), 8192).expect("valid").expect("whole");
            black_box((req.key.len(), used))
        })
    });
    group.bench_function("encode_accept", |b| {
        b.iter(|| {
            out.clear();
            upgrade::encode_accept(black_box("dGhlIHNhbXBsZSBub25jZQ=="), None, &mut out);
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, unmask, decode_frame, encode_frame, handshake);
criterion_main!(benches);

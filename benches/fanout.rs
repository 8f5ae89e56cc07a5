//! The user-space cost of a broadcast and of the timer wheel, without sockets.
//!
//! - `fanout/encode_once`: one push encoded into a [`Frame`] (both Pomelo wire forms).
//! - `fanout/members/N`: the same frame handed to N members' write paths — each member gets a
//!   shared reference (no copy) and one `writev` into a sink, as the reactor does for a member
//!   whose socket takes everything. Throughput is in recipients per second.
//! - `fanout/batched/N`: 8 frames waiting for each of N members leave in one `writev` each.
//! - `timer/rearm/N`: N connections' entries expiring and being put back, as heartbeats do.
//!
//! Run with `cargo bench --bench fanout`.

use std::hint::black_box;
use std::io::{self, IoSlice, Write};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shaddock::ids::{Forms, WireForm};
use shaddock::protocol::pomelo::RouteDict;
use shaddock::push::{Frame, FrameEncoder, Push};
use shaddock::reactor::outbox::Outbox;
use shaddock::reactor::timer::{TimerEntry, TimerWheel};

/// A sink that takes everything, like a socket with room, and counts the bytes.
struct Sink(u64);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n: usize = black_box(bufs).iter().map(|b| b.len()).sum();
        self.0 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink {
    /// A backend's vectored send into the sink: everything, the first buffer from `offset`.
    fn take(&mut self, bufs: &[&bytes::Bytes], offset: usize) -> io::Result<usize> {
        let n: usize = black_box(bufs).iter().map(|b| b.len()).sum::<usize>() - offset;
        self.0 += n as u64;
        Ok(n)
    }
}

/// The encoder of a server with a route dictionary (pushes carry a 2-byte route code).
fn encoder() -> FrameEncoder {
    let dict = RouteDict::new(["connector.entryHandler.enter"], ["onMsg"]).expect("dictionary");
    FrameEncoder::new(Some(dict))
}

/// A 100-byte message, as the benchmarks in BENCHMARKS.md push.
fn hundred_byte_push() -> Push {
    Push::new("onMsg", &serde_json::json!({ "msg": "x".repeat(100 - 10) }))
}

fn encode_once(c: &mut Criterion) {
    let (encoder, push) = (encoder(), hundred_byte_push());
    c.bench_function("fanout/encode_once", |b| {
        b.iter(|| encoder.encode(black_box(&push), Forms::all()).expect("encodes"))
    });
}

fn hundred_byte_frame() -> Frame {
    encoder().encode(&hundred_byte_push(), Forms::all()).expect("encodes")
}

fn members(c: &mut Criterion) {
    let frame = hundred_byte_frame();
    let mut group = c.benchmark_group("fanout/members");
    for n in [1_000u64, 10_000] {
        group.throughput(Throughput::Elements(n));
        let mut sinks: Vec<Sink> = (0..n).map(|_| Sink(0)).collect();
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                for (i, sink) in sinks.iter_mut().enumerate() {
                    let form =
                        if i % 2 == 0 { WireForm::PomeloTcp } else { WireForm::PomeloWebSocket };
                    let bytes = frame.bytes(form);
                    black_box(sink.write_vectored(&[IoSlice::new(bytes)]).expect("sink"));
                }
            })
        });
        black_box(sinks.iter().map(|s| s.0).sum::<u64>());
    }
    group.finish();
}

fn batched(c: &mut Criterion) {
    let frames: Vec<Frame> = (0..8).map(|_| hundred_byte_frame()).collect();
    let mut group = c.benchmark_group("fanout/batched");
    for n in [1_000u64, 10_000] {
        group.throughput(Throughput::Elements(n * frames.len() as u64));
        let mut sink = Sink(0);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                for _ in 0..n {
                    // The slow path: a member with a queue gets shared frames appended and
                    // flushed in one writev.
                    let mut out = Outbox::default();
                    for frame in &frames {
                        out.push(frame.bytes(WireForm::PomeloTcp).clone());
                    }
                    out.flush_with(|bufs, offset| sink.take(bufs, offset)).expect("sink");
                }
            })
        });
        black_box(sink.0);
    }
    group.finish();
}

fn timer_rearm(c: &mut Criterion) {
    let mut group = c.benchmark_group("timer/rearm");
    for n in [10_000u32, 100_000] {
        group.throughput(Throughput::Elements(u64::from(n)));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let mut wheel = TimerWheel::new(0);
            let mut now = 0;
            for index in 0..n {
                wheel.insert(TimerEntry { index, generation: 1 }, 1 + index % 2);
            }
            let mut due = Vec::new();
            b.iter(|| {
                // Two seconds pass: every entry comes due once and is put back 2 s later.
                now += 2;
                wheel.expire(now, &mut due);
                for (entry, _) in due.drain(..) {
                    wheel.insert(entry, now + 2);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encode_once, members, batched, timer_rearm);
criterion_main!(benches);

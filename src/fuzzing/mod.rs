//! The checks behind the fuzz targets (`fuzz/`), one function per decoder, built only with the
//! `fuzzing` feature.
//!
//! Each function takes arbitrary bytes and panics only when a decoder broke one of its
//! promises: a decoder panicked, or what it decoded does not survive the way back (decode →
//! encode → decode gives the same value, wherever an encoder exists), or a stream decoder's
//! answer depends on where its input was cut. Nothing here reads a clock or a socket.
//!
//! The same functions serve twice: `fuzz/fuzz_targets/<name>.rs` hands libFuzzer's input to
//! the function of that name, and `tests/fuzz_seeds.rs` replays every seed under
//! `fuzz/corpus/<name>/` through it on every `cargo test`, so a crash once found and kept as a
//! seed stays fixed. [`TARGETS`] is the list both read.
//!
//! # Layout
//! - [`pomelo`]: Pomelo packages, messages, handshake and kick bodies, the route dictionary,
//!   pomelo-protobuf bodies (with the repository's test protos).
//! - [`web`]: the transport sniff, plain HTTP request heads, WebSocket upgrade requests and
//!   client frames.
//! - [`mqtt`]: MQTT 3.1.1 and 5.0 client packets.
//! - [`socketio`]: Engine.IO packets and payloads, socket.io packets, socket.io 0.9 packets
//!   and frames, and Pomelo's requests inside them.
//! - [`session`]: whole connections through `session::transport::handle_input`, in one piece
//!   and cut at chosen points.

pub mod mqtt;
pub mod pomelo;
pub mod session;
pub mod socketio;
pub mod web;

/// A fuzz target's check: panics on a broken promise, returns on anything else.
pub type Check = fn(&[u8]);

/// Every fuzz target: its name (the file `fuzz/fuzz_targets/<name>.rs` and the seed folder
/// `fuzz/corpus/<name>/`) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("pomelo_package", pomelo::package),
    ("pomelo_message", pomelo::message),
    ("pomelo_handshake", pomelo::handshake),
    ("pomelo_kick", pomelo::kick),
    ("pomelo_dict", pomelo::dict),
    ("protobuf_decode", pomelo::protobuf_decode),
    ("sniff", web::sniff),
    ("http_head", web::http_head),
    ("ws_upgrade", web::ws_upgrade),
    ("ws_frames", web::ws_frames),
    ("mqtt_v311", mqtt::v311),
    ("mqtt_v5", mqtt::v5),
    ("eio_packet", socketio::eio_packet),
    ("eio_payload_v3", socketio::eio_payload_v3),
    ("eio_payload_v4", socketio::eio_payload_v4),
    ("sio_packet", socketio::sio_packet),
    ("v09_packet", socketio::v09_packet),
    ("v09_frames", socketio::v09_frames),
    ("pomelo_sio", socketio::pomelo_sio),
    ("session", session::session),
];

/// The check of the target `name`.
pub fn check(name: &str) -> Option<Check> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|&(_, check)| check)
}

/// `data` as text, for the decoders that take a `&str` (the transport delimits and checks it).
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

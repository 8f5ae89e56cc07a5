//! Sans-IO codecs for the protocols shaddock speaks.
//!
//! No sockets, no clocks: input is a `&[u8]`, output goes into a [`bytes::BytesMut`], "need more
//! bytes" is `Ok(None)`, and every error is a real protocol fault that maps to a kick reason
//! ([`ProtocolError::kick_reason`]).
//!
//! # Layout
//! - [`wire`]: the primitive layer shared by every codec (3-byte big-endian lengths, base-128
//!   varints).
//! - [`pomelo`]: NetEase Pomelo's "hybrid" protocol: packages, messages, the route dictionary,
//!   the handshake and the kick.
//! - [`mqtt`]: MQTT 3.1.1 and 5.0 packets (client → server decode, server → client encode,
//!   one PUBLISH encoded once for fan-out).
//! - [`socketio`]: the Socket.IO frontend: Engine.IO 3 / 4 packets and polling payloads,
//!   Socket.IO packets, socket.io 0.9, and Pomelo's message layer over them.
//!
//! # Invariants
//! - No decoder panics or allocates on the hot path (packages and messages are decoded in place
//!   and borrow from the input); only the once-per-connection handshake builds owned values.
//! - A declared length is checked against its limit before any of the body is awaited, so an
//!   oversize package is refused without buffering it.
//! - Encoders reserve the exact output size once and either write a whole unit or nothing.

pub mod error;
pub mod http;
pub mod mqtt;
pub mod pomelo;
pub mod protobuf;
pub mod sniff;
pub mod socketio;
pub mod websocket;
pub mod wire;

pub use error::ProtocolError;

//! WebSocket (RFC 6455) as a transport for Pomelo packages, sans-IO.
//!
//! A connection that [`sniff`](crate::protocol::sniff) calls `Http` goes through two codecs:
//!
//! 1. [`upgrade`]: the HTTP/1.1 opening handshake. [`upgrade::decode_request`] reads the request
//!    head, [`upgrade::check_origin`] applies the configured allow-list, and the answer is
//!    [`upgrade::encode_accept`] (101) or [`upgrade::encode_rejection`] (400, 403, 405, 426, 431,
//!    then close).
//! 2. [`frame`]: the frames after it. [`frame::decode_client_frame`] checks and unmasks client
//!    frames in place; the server's frames are unmasked, so one [`frame::encode_header`] in front
//!    of an encoded package gives the same bytes for every WebSocket recipient of a broadcast.
//!
//! # Invariants
//! - No sockets, no clocks: input is `&[u8]` (`&mut [u8]` where payloads are unmasked in place),
//!   output goes into a [`bytes::BytesMut`], and "need more bytes" is `Ok(None)`.
//! - Every size is checked before anything is buffered: the request head against
//!   `max_header_bytes`, a frame's declared length against `max_payload`.
//! - Nothing is negotiated: no extension (so no permessage-deflate, and RSV bits must be clear)
//!   and no subprotocol. Each binary message carries exactly one Pomelo package; what a text
//!   frame, a fragmented message or a ping means is the connection's business, not this layer's.
//! - No decoder panics on any input; every error names the status (HTTP) or close code
//!   (WebSocket) to end the connection with.

pub mod frame;
pub mod upgrade;

pub use frame::{ClientFrame, OpCode, WsError};
pub use upgrade::{UpgradeError, UpgradeRequest};

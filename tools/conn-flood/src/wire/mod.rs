//! Sans-IO codecs for the client side of each protocol the tool speaks: bytes in, bytes out, no
//! sockets and no clocks.
//!
//! - [`pomelo`]: Pomelo requests out and response fields in, over the library's codecs;
//! - [`http`]: HTTP/1.1 GET and POST out, whole `Content-Length` responses in (Socket.IO's
//!   handshakes and long-polling);
//! - [`ws`]: WebSocket upgrade, masked client frames, unmasked server frames;
//! - [`resp`]: Redis RESP2 for `SUBSCRIBE` / `PUBLISH` / `PING`;
//! - [`mqtt`]: MQTT 3.1.1 / 5.0 CONNECT, SUBSCRIBE, PUBLISH, PUBACK, PINGREQ out and the
//!   server's packets in;
//! - [`socketio`]: Socket.IO over WebSocket or long-polling (Engine.IO 4 and 3, socket.io 0.9):
//!   upgrade and polling paths, 0.9's HTTP handshake, Pomelo requests inside `message` events
//!   out, the server's packets (in text frames or polling payloads) in;
//! - [`stamp`]: the sequence number and send time carried inside every pushed message.

pub mod http;
pub mod mqtt;
pub mod pomelo;
pub mod resp;
pub mod socketio;
pub mod stamp;
pub mod ws;

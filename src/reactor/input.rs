//! Decoding a connection's input: the choice of transport on the first bytes, the WebSocket
//! upgrade and frames, and the Pomelo packages inside.
//!
//! # Invariants
//! - Input is decoded in place, from the per-core scratch buffer when nothing was saved; only
//!   an unfinished package, frame or request head is copied into the connection's
//!   [`InputRest`], and only while it is unfinished.
//! - Every size is checked before anything is buffered: a request head past
//!   [`MAX_REQUEST_HEAD`], a frame or package past `max_package_bytes` is refused as soon as its
//!   header says so.
//! - Replies to this connection go into the reactor's `reply` buffer, already framed for the
//!   connection's transport, and leave in one write after the read.

use super::Reactor;
use super::conn::{ConnState, InputRest, Transport};
use super::stats::{self, KickReason};
use crate::protocol::ProtocolError;
use crate::protocol::pomelo::package::{self, HEADER_LEN};
use crate::protocol::sniff::{self, Sniffed};
use crate::protocol::websocket::frame::{self, Frame, MAX_CONTROL_PAYLOAD, OpCode, WsError};
use crate::protocol::websocket::upgrade::{self, UpgradeError};

/// The largest WebSocket upgrade request head accepted, bytes.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// What one decoding step did.
enum Step {
    /// This many bytes were used (0 when only the state changed).
    Consumed(usize),
    /// The rest is an unfinished unit: keep it.
    NeedMore,
    /// The connection stopped reading (closed, closing or kicked).
    Stop,
}

impl Reactor {
    /// Decodes `data` after whatever the connection saved, and saves what is unfinished; false
    /// if the connection is no longer reading.
    pub(super) fn on_input(&mut self, index: usize, data: &mut [u8]) -> bool {
        let Some(conn) = self.conns.get_mut(index) else { return false };
        let mut rest = conn.read_rest.take();
        self.replying = index;
        let alive = match rest.as_mut().filter(|r| !r.tail.is_empty()) {
            Some(saved) => {
                saved.tail.extend_from_slice(data);
                let mut tail = std::mem::take(&mut saved.tail);
                let (consumed, alive) = self.decode_input(index, &mut tail, &mut rest);
                tail.drain(..consumed);
                rest.get_or_insert_default().tail = tail;
                alive
            }
            None => {
                let (consumed, alive) = self.decode_input(index, data, &mut rest);
                if alive && consumed < data.len() {
                    rest.get_or_insert_default().tail.extend_from_slice(&data[consumed..]);
                }
                alive
            }
        };
        let alive = alive && self.flush_reply(index);
        self.replying = usize::MAX;
        if alive {
            if let Some(conn) = self.conns.get_mut(index) {
                conn.read_rest = rest.filter(|r| !r.is_empty());
            }
        }
        alive
    }

    fn decode_input(
        &mut self,
        index: usize,
        buf: &mut [u8],
        rest: &mut Option<Box<InputRest>>,
    ) -> (usize, bool) {
        let mut at = 0;
        loop {
            let Some(conn) = self.conns.get(index) else { return (at, false) };
            let step = match (conn.state, conn.transport()) {
                (ConnState::Closing, _) => Step::Stop,
                (ConnState::Opening, _) => self.decode_opening(index, &buf[at..]),
                (_, Transport::WebSocket) => self.decode_frame(index, &mut buf[at..], rest),
                (_, Transport::Tcp) => self.decode_package(index, &buf[at..]),
            };
            match step {
                Step::Consumed(n) => at += n,
                Step::NeedMore => return (at, true),
                Step::Stop => return (at, false),
            }
        }
    }

    /// The first bytes: raw Pomelo, or a WebSocket upgrade whose whole head must arrive.
    fn decode_opening(&mut self, index: usize, buf: &[u8]) -> Step {
        match sniff::sniff(buf) {
            None => Step::NeedMore,
            Some(Sniffed::Pomelo) => {
                self.open(index, Transport::Tcp);
                Step::Consumed(0)
            }
            Some(Sniffed::Http) => match upgrade::decode_request(buf, MAX_REQUEST_HEAD) {
                Ok(None) => Step::NeedMore,
                Ok(Some((request, used))) => {
                    let allowed = &self.shared.settings.allowed_origins;
                    if let Err(e) = upgrade::check_origin(&request, allowed) {
                        return self.refuse_upgrade(index, &e);
                    }
                    upgrade::encode_accept(request.key, &mut self.reply);
                    self.open(index, Transport::WebSocket);
                    Step::Consumed(used)
                }
                Err(e) => self.refuse_upgrade(index, &e),
            },
        }
    }

    fn open(&mut self, index: usize, transport: Transport) {
        if let Some(conn) = self.conns.get_mut(index) {
            conn.tags.set_transport(transport);
            conn.state = ConnState::Handshaking;
            let stats = &self.shared.stats[self.core];
            stats::sub(&stats.opening, 1);
            stats::add(if transport == Transport::Tcp { &stats.tcp } else { &stats.websocket }, 1);
        }
    }

    fn refuse_upgrade(&mut self, index: usize, error: &UpgradeError) -> Step {
        tracing::debug!(core = self.core, conn = index, %error, "WebSocket upgrade refused");
        upgrade::encode_rejection(error, &mut self.reply);
        self.flush_reply_then_close(index);
        Step::Stop
    }

    fn decode_package(&mut self, index: usize, buf: &[u8]) -> Step {
        match package::decode(buf, self.shared.settings.max_package_bytes) {
            Ok(Some((pkg, used))) if self.on_package(index, pkg) => Step::Consumed(used),
            Ok(Some(_)) => Step::Stop,
            Ok(None) => Step::NeedMore,
            Err(e) => {
                self.protocol_fault(index, &e);
                Step::Stop
            }
        }
    }

    fn decode_frame(
        &mut self,
        index: usize,
        buf: &mut [u8],
        rest: &mut Option<Box<InputRest>>,
    ) -> Step {
        // A message carries one package: a frame may bring what the message still has room
        // for (control frames, up to 125 bytes, may come between fragments).
        let max_message = self.shared.settings.max_package_bytes + HEADER_LEN;
        let so_far = rest.as_ref().map_or(0, |r| r.fragments.len());
        let max_payload = max_message.saturating_sub(so_far).max(MAX_CONTROL_PAYLOAD);
        let (frame, used) = match frame::decode_client_frame(buf, max_payload) {
            Ok(Some(decoded)) => decoded,
            Ok(None) => return Step::NeedMore,
            Err(e) => {
                self.ws_fault(index, e);
                return Step::Stop;
            }
        };
        let alive = match frame.opcode {
            OpCode::Binary | OpCode::Continuation => self.on_data_frame(index, frame, rest),
            OpCode::Text => {
                let error =
                    WsError { close_code: 1003, reason: "text frames are not Pomelo packages" };
                self.ws_fault(index, error);
                false
            }
            OpCode::Ping => {
                frame::encode_frame(OpCode::Pong, frame.payload, &mut self.reply);
                true
            }
            OpCode::Pong => true,
            OpCode::Close => {
                match frame::decode_close(frame.payload) {
                    Ok(Some((code, _))) => frame::encode_close(code, "", &mut self.reply),
                    Ok(None) => frame::encode_frame(OpCode::Close, &[], &mut self.reply),
                    Err(e) => {
                        self.ws_fault(index, e);
                        return Step::Stop;
                    }
                }
                self.flush_reply_then_close(index);
                false
            }
        };
        if alive { Step::Consumed(used) } else { Step::Stop }
    }

    /// A binary frame, whole or a fragment; a finished message goes to the Pomelo layer.
    fn on_data_frame(
        &mut self,
        index: usize,
        frame: Frame<'_>,
        rest: &mut Option<Box<InputRest>>,
    ) -> bool {
        let in_message = rest.as_ref().is_some_and(|r| r.in_message);
        match (frame.opcode, in_message) {
            (OpCode::Binary, false) if frame.fin => self.on_ws_message(index, frame.payload),
            (OpCode::Binary, false) => {
                let saved = rest.get_or_insert_default();
                saved.in_message = true;
                saved.fragments.extend_from_slice(frame.payload);
                true
            }
            (OpCode::Continuation, true) => {
                let max = self.shared.settings.max_package_bytes + HEADER_LEN;
                let saved = rest.get_or_insert_default();
                if saved.fragments.len() + frame.payload.len() > max {
                    self.ws_fault(index, WsError { close_code: 1009, reason: "message too large" });
                    return false;
                }
                saved.fragments.extend_from_slice(frame.payload);
                if !frame.fin {
                    return true;
                }
                saved.in_message = false;
                let message = std::mem::take(&mut saved.fragments);
                self.on_ws_message(index, &message)
            }
            (OpCode::Continuation, false) => {
                let error =
                    WsError { close_code: 1002, reason: "continuation frame outside a message" };
                self.ws_fault(index, error);
                false
            }
            _ => {
                let error =
                    WsError { close_code: 1002, reason: "new message inside a fragmented one" };
                self.ws_fault(index, error);
                false
            }
        }
    }

    /// A whole binary WebSocket message: Pomelo packages, none of them cut at the end.
    fn on_ws_message(&mut self, index: usize, message: &[u8]) -> bool {
        let max = self.shared.settings.max_package_bytes;
        let mut at = 0;
        while at < message.len() {
            match package::decode(&message[at..], max) {
                Ok(Some((pkg, used))) => {
                    at += used;
                    if !self.on_package(index, pkg) {
                        return false;
                    }
                }
                Ok(None) => {
                    let error =
                        ProtocolError::Malformed("a WebSocket message ends inside a package");
                    self.protocol_fault(index, &error);
                    return false;
                }
                Err(e) => {
                    self.protocol_fault(index, &e);
                    return false;
                }
            }
        }
        true
    }

    /// A WebSocket protocol error: a working session is kicked, anything else gets the close
    /// frame with the error's code.
    fn ws_fault(&mut self, index: usize, error: WsError) {
        tracing::debug!(core = self.core, conn = index, %error, "WebSocket protocol error");
        let working = self.conns.get(index).is_some_and(|c| c.state == ConnState::Working);
        if working {
            let (reason, text) = if error.close_code == 1009 {
                (KickReason::PackageTooLarge, KickReason::PackageTooLarge.as_str().to_owned())
            } else {
                (KickReason::ProtocolError, format!("protocol error: {}", error.reason))
            };
            self.kick_with_code(index, reason, &text, error.close_code);
        } else {
            frame::encode_close(error.close_code, error.reason, &mut self.reply);
            self.flush_reply_then_close(index);
        }
    }
}

//! A Socket.IO session's input: one text WebSocket message, decoded as its version's packet,
//! and the Pomelo requests inside `message` events served through the session's
//! [`Membership`](crate::session::pomelo::Membership).
//!
//! What Pomelo's sioconnector ignores is ignored here too (events other than `message`,
//! other namespaces' packets, acks, noops); what breaks the protocol (a packet that does not
//! decode, a binary event, an event before an Engine.IO 4 CONNECT, a Pomelo message that
//! does not decode) is a kick with the reason.

use std::borrow::Cow;

use bytes::BytesMut;

use super::{SioSession, SioVersion, State};
use crate::protocol::socketio::engineio::{self, EioVersion, PacketType};
use crate::protocol::socketio::packet::{self, SioPacketType};
use crate::protocol::socketio::pomelo;
use crate::protocol::socketio::v09::{self, V09Type};
use crate::protocol::websocket::frame::{self as ws, OpCode};
use crate::session::pomelo::request;
use crate::session::{Context, Flow, Kick};
use crate::stats::KickReason;

/// The namespace Pomelo's clients use: the default one.
const DEFAULT_NAMESPACE: &str = "/";

impl SioSession {
    /// Handles one text message from the client.
    pub fn on_text(&mut self, text: &str, cx: &mut Context<'_>) -> Flow {
        match self.version {
            SioVersion::V09 => self.on_v09(text, cx),
            SioVersion::Eio3 | SioVersion::Eio4 => self.on_engine_io(text, cx),
        }
    }

    fn on_v09(&mut self, text: &str, cx: &mut Context<'_>) -> Flow {
        let packet = match v09::decode(text) {
            Ok(packet) => packet,
            Err(e) => return fault(e.to_string()),
        };
        let default = packet.endpoint.is_empty();
        match packet.kind {
            V09Type::Heartbeat => {
                self.heard_heartbeat(cx.now.secs);
                Flow::Continue
            }
            V09Type::Message if default => self.on_pomelo(packet.data, cx),
            V09Type::Event if default => match v09::event_message(&packet) {
                Ok(Some(message)) => self.on_pomelo(&message, cx),
                Ok(None) => Flow::Continue,
                Err(e) => fault(e.to_string()),
            },
            V09Type::Disconnect if default => Flow::Close,
            _ => Flow::Continue,
        }
    }

    fn on_engine_io(&mut self, text: &str, cx: &mut Context<'_>) -> Flow {
        let packet = match engineio::decode_packet(text) {
            Ok(packet) => packet,
            Err(e) => return fault(e.to_string()),
        };
        match packet.kind {
            // A ping is answered in either version (EIO 4 clients never send one unasked; an
            // answer costs nothing and keeps a confused client alive).
            PacketType::Ping => {
                if self.version == SioVersion::Eio3 {
                    self.heard_heartbeat(cx.now.secs);
                }
                let mut pong = BytesMut::new();
                engineio::encode_packet(PacketType::Pong, packet.data, &mut pong);
                ws::encode_frame(OpCode::Text, &pong, cx.transmit);
                Flow::Continue
            }
            PacketType::Pong => {
                if self.version == SioVersion::Eio4 {
                    self.heard_heartbeat(cx.now.secs);
                }
                Flow::Continue
            }
            PacketType::Message => self.on_socket_io(packet.data, cx),
            PacketType::Close => Flow::Close,
            PacketType::Noop | PacketType::Upgrade => Flow::Continue,
            PacketType::Open => fault("an open packet from a client".into()),
        }
    }

    /// A socket.io packet inside an Engine.IO message.
    fn on_socket_io(&mut self, text: &str, cx: &mut Context<'_>) -> Flow {
        let packet = match packet::decode(text) {
            Ok(packet) => packet,
            Err(e) => return fault(e.to_string()),
        };
        let default = packet.namespace == DEFAULT_NAMESPACE;
        let eio = match self.version {
            SioVersion::Eio3 => EioVersion::V3,
            _ => EioVersion::V4,
        };
        match packet.kind {
            SioPacketType::Connect if default => {
                if self.state == State::Connecting {
                    let sid = cx.settings.socketio.sid_key.issue(cx.me, cx.now.secs);
                    let mut connect = BytesMut::new();
                    packet::encode_connect(eio, Some(&sid), &mut connect);
                    ws::encode_frame(OpCode::Text, &connect, cx.transmit);
                    self.state = State::Working;
                    self.since = cx.now.secs;
                }
                Flow::Continue
            }
            SioPacketType::Connect => {
                let mut refusal = BytesMut::new();
                packet::encode_connect_error(
                    eio,
                    packet.namespace,
                    "Invalid namespace",
                    &mut refusal,
                );
                ws::encode_frame(OpCode::Text, &refusal, cx.transmit);
                Flow::Continue
            }
            SioPacketType::Event if default && self.state == State::Connecting => {
                fault("an event before CONNECT".into())
            }
            SioPacketType::Event if default => match packet::event_message(&packet) {
                Ok(Some(message)) => self.on_pomelo(&message, cx),
                Ok(None) => Flow::Continue,
                Err(e) => fault(e.to_string()),
            },
            SioPacketType::Disconnect if default => Flow::Close,
            SioPacketType::BinaryEvent | SioPacketType::BinaryAck => {
                fault("binary events are not served".into())
            }
            SioPacketType::ConnectError => fault("CONNECT_ERROR from a client".into()),
            SioPacketType::Event | SioPacketType::Disconnect | SioPacketType::Ack => Flow::Continue,
        }
    }

    /// A Pomelo message: a request (or a notify, id 0) served like the hybrid connector's.
    fn on_pomelo(&mut self, message: &str, cx: &mut Context<'_>) -> Flow {
        let request = match pomelo::decode_request(message) {
            Ok(request) => request,
            Err(e) => return fault(e.to_string()),
        };
        let form = self.form();
        let mut member = self.member;
        let served = member.serve(
            request.route,
            form,
            |name, _| request::parse(name, request.body.as_bytes()),
            |_, _| Ok(()),
            cx,
        );
        self.member = member;
        if let Some(answer) = served.answer.filter(|_| request.id != 0) {
            let mut response = String::new();
            pomelo::encode_response(request.id, &answer.to_string(), &mut response);
            self.put_message(&response, cx.transmit);
        }
        match served.kick {
            Some(kick) => Flow::Kick(kick),
            None => Flow::Continue,
        }
    }
}

/// A protocol fault: a kick naming it.
fn fault(reason: String) -> Flow {
    let text = Cow::Owned(format!("protocol error: {reason}"));
    Flow::Kick(Kick { text, ..Kick::new(KickReason::ProtocolError) })
}

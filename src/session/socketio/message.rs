//! A Socket.IO session's input: one text WebSocket message (or each packet of a polling
//! request's body), decoded as its version's packet, and the Pomelo requests inside `message`
//! events served through the session's [`Membership`](crate::session::pomelo::Membership).
//!
//! What Pomelo's sioconnector ignores is ignored here too (events other than `message`,
//! other namespaces' packets, acks, noops); what breaks the protocol (a packet that does not
//! decode, a binary event, an event before an Engine.IO 4 CONNECT, a Pomelo message that
//! does not decode) is a kick with the reason.

use std::borrow::Cow;

use bytes::BytesMut;

use super::{SioAction, SioSession, SioVersion, State};
use crate::protocol::socketio::engineio::{self, EioVersion, PacketType};
use crate::protocol::socketio::packet::{self, SioPacketType};
use crate::protocol::socketio::pomelo;
use crate::protocol::socketio::v09::{self, V09Type};
use crate::session::pomelo::request;
use crate::session::{Context, Flow, Kick};
use crate::stats::KickReason;

/// The namespace Pomelo's clients use: the default one.
const DEFAULT_NAMESPACE: &str = "/";

/// The most packets one polling POST may carry (a client flushes what it buffered: a few).
const MAX_PACKETS_PER_POST: usize = 256;

impl SioSession {
    /// Handles one text message from the client.
    pub fn on_text(&mut self, text: &str, cx: &mut Context<'_>) -> Flow {
        match self.version() {
            _ if self.state == State::Upgrading => self.on_upgrading(text, cx),
            SioVersion::V09 => self.on_v09(text, cx),
            SioVersion::Eio3 | SioVersion::Eio4 => self.on_engine_io(text, cx),
        }
    }

    /// A polling request's body: its packets, in order, as if each came in its own message.
    pub fn on_payload(&mut self, body: &[u8], cx: &mut Context<'_>) -> Flow {
        let max = MAX_PACKETS_PER_POST;
        let mut flow = Flow::Continue;
        match self.version().eio() {
            Some(eio) => match engineio::decode_payload(eio, body, max) {
                Ok(packets) => {
                    for packet in packets {
                        flow = match self.has_byte_string_payloads() {
                            true => match engineio::from_byte_string(packet.data) {
                                Some(data) => {
                                    let packet = engineio::Packet { data: &data, ..packet };
                                    self.on_engine_io_packet(packet, cx)
                                }
                                None => fault("a packet that is not engine.io 1.x's UTF-8".into()),
                            },
                            false => self.on_engine_io_packet(packet, cx),
                        };
                        if flow != Flow::Continue {
                            break;
                        }
                    }
                }
                Err(e) => flow = fault(e.to_string()),
            },
            None => match std::str::from_utf8(body).map(|text| v09::decode_frames(text, max)) {
                Ok(Ok(packets)) => {
                    for packet in packets {
                        flow = self.on_v09(packet, cx);
                        if flow != Flow::Continue {
                            break;
                        }
                    }
                }
                Ok(Err(e)) => flow = fault(e.to_string()),
                Err(_) => flow = fault("a polling body that is not UTF-8".into()),
            },
        }
        flow
    }

    /// A WebSocket taking over a polling session: the probe, then the upgrade.
    fn on_upgrading(&mut self, text: &str, cx: &mut Context<'_>) -> Flow {
        let packet = match engineio::decode_packet(text) {
            Ok(packet) => packet,
            Err(e) => return fault(e.to_string()),
        };
        match (packet.kind, packet.data) {
            (PacketType::Ping, "probe") => {
                let mut pong = BytesMut::new();
                engineio::encode_packet(PacketType::Pong, "probe", &mut pong);
                self.put_packet(&pong, cx.transmit);
                cx.per_core.socketio.actions.push(SioAction::Probed { ws: cx.me });
                Flow::Continue
            }
            (PacketType::Upgrade, _) => {
                cx.per_core.socketio.actions.push(SioAction::Upgrade { ws: cx.me });
                Flow::Upgrade
            }
            (PacketType::Noop, _) => Flow::Continue,
            _ => fault("a packet before the upgrade".into()),
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
        match engineio::decode_packet(text) {
            Ok(packet) => self.on_engine_io_packet(packet, cx),
            Err(e) => fault(e.to_string()),
        }
    }

    fn on_engine_io_packet(&mut self, packet: engineio::Packet<'_>, cx: &mut Context<'_>) -> Flow {
        match packet.kind {
            // A ping is answered in either version (EIO 4 clients never send one unasked; an
            // answer costs nothing and keeps a confused client alive).
            PacketType::Ping => {
                if self.version() == SioVersion::Eio3 {
                    self.heard_heartbeat(cx.now.secs);
                }
                let mut pong = BytesMut::new();
                engineio::encode_packet(PacketType::Pong, packet.data, &mut pong);
                self.put_packet(&pong, cx.transmit);
                Flow::Continue
            }
            PacketType::Pong => {
                if self.version() == SioVersion::Eio4 {
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
        let eio = self.version().eio().unwrap_or(EioVersion::V4);
        match packet.kind {
            SioPacketType::Connect if default => {
                if self.state == State::Connecting {
                    let sid = cx.settings.socketio.sid_key.issue(cx.me, cx.now.secs);
                    let mut connect = BytesMut::new();
                    packet::encode_connect(eio, Some(&sid), &mut connect);
                    self.put_packet(&connect, cx.transmit);
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
                self.put_packet(&refusal, cx.transmit);
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

//! What a reactor tells about one of its connections when asked (`GET
//! /api/apps/{apikey}/clients/{clientId}`): its frontend, transport, TLS, the peer's address and
//! the bytes queued for it. Asked through the inbox ([`Command::Describe`]) and answered on a
//! oneshot channel, so the asking thread waits and the reactor never does.
//!
//! [`Command::Describe`]: super::inbox::Command::Describe

use std::net::SocketAddr;

use super::Reactor;
use crate::ids::{ConnId, Transport};
use crate::session::Session;

/// One connection, as its reactor sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnDetails {
    pub core: usize,
    /// `pomelo`, `mqtt` or `socketio`.
    pub frontend: &'static str,
    /// `tcp`, `websocket` or `polling`.
    pub transport: &'static str,
    pub tls: bool,
    /// The peer's address; `None` for a Socket.IO polling session (its polls come on other
    /// connections).
    pub remote: Option<SocketAddr>,
    pub queued_bytes: usize,
}

/// The answer channel of a [`Command::Describe`](super::inbox::Command::Describe).
pub type DescribeReply = tokio::sync::oneshot::Sender<Option<ConnDetails>>;

impl Reactor {
    /// Answers `reply` with `conn`'s details, or `None` if it is gone.
    pub(super) fn describe(&mut self, conn: ConnId, reply: DescribeReply) {
        let details = self.addressee(conn).and_then(|conn| {
            let live = self.conns.get_live(conn.index(), conn.generation())?;
            let frontend = match live.session {
                Session::Pomelo(_) => "pomelo",
                Session::Mqtt(_) => "mqtt",
                Session::SocketIo(_) => "socketio",
                Session::Opening { .. } | Session::Carrier(_) => return None,
            };
            let transport = match live.session.transport() {
                Some(Transport::Tcp) | None => "tcp",
                Some(Transport::WebSocket) => "websocket",
                Some(Transport::Polling) => "polling",
            };
            Some(ConnDetails {
                core: self.core,
                frontend,
                transport,
                tls: live.flags.is_tls(),
                remote: live.stream.as_ref().and_then(|s| s.peer_addr().ok()),
                queued_bytes: live.pending_bytes(),
            })
        });
        // The asker may have given up waiting: nothing to do then.
        let _ = reply.send(details);
    }
}

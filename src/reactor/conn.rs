//! One client connection as its reactor holds it.
//!
//! # Invariants
//! - An idle connection owns no buffer: `read_rest` exists only while a package is split across
//!   reads, `out` only while the socket refused bytes. Both are dropped as soon as they drain.
//! - `last_seen` is the accept time while the handshake is running and the time of the last
//!   heartbeat once working; the timer wheel derives every deadline from it.
//! - `member_slot` is meaningful only for a client session (`role == Role::Client`): it is the
//!   connection's position in its core's member list of `app`.

use std::net::TcpStream;

use super::outbox::Outbox;
use crate::channel::PresenceKey;
use crate::push::AppId;

/// Where the connection is in Pomelo's lifecycle (hybridsocket: INITED → WAIT_ACK → WORKING → CLOSED),
/// preceded by the choice of transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Accepted; the first bytes will say raw Pomelo or a WebSocket upgrade (and, for an
    /// upgrade, the whole request head must arrive).
    Opening,
    /// Transport chosen; waiting for the client's HANDSHAKE.
    Handshaking,
    /// Handshake answered; waiting for HANDSHAKE_ACK.
    WaitAck,
    /// Acked: heartbeats and requests flow.
    Working,
    /// The server decided to close: the write side is shut, input is read and discarded until EOF
    /// or the linger deadline, so the peer reads the kick before the socket goes away.
    Closing,
}

/// How packages travel on this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Raw Pomelo packages on the TCP stream.
    Tcp,
    /// Each Pomelo package in a binary WebSocket message.
    WebSocket,
}

/// What the session is, once it has entered a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not entered yet.
    None,
    /// A client of the app's channel (receives `onMsg`).
    Client,
    /// A management session of the app (pushes, receives `onAdd`/`onLeave`).
    Server,
}

/// The session's role and the transport, packed into one byte so that an idle [`Conn`] stays
/// at 48 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Tags(u8);

impl Tags {
    const ROLE: u8 = 0b0011;
    const WEBSOCKET: u8 = 0b0100;
    const CHOSEN: u8 = 0b1000;

    pub fn role(self) -> Role {
        match self.0 & Tags::ROLE {
            1 => Role::Client,
            2 => Role::Server,
            _ => Role::None,
        }
    }

    pub fn set_role(&mut self, role: Role) {
        let bits = match role {
            Role::None => 0,
            Role::Client => 1,
            Role::Server => 2,
        };
        self.0 = (self.0 & !Tags::ROLE) | bits;
    }

    /// The transport is decided (the connection left [`ConnState::Opening`]).
    pub fn transport_chosen(self) -> bool {
        self.0 & Tags::CHOSEN != 0
    }

    pub fn transport(self) -> Transport {
        if self.0 & Tags::WEBSOCKET != 0 { Transport::WebSocket } else { Transport::Tcp }
    }

    pub fn set_transport(&mut self, transport: Transport) {
        self.0 |= Tags::CHOSEN;
        match transport {
            Transport::Tcp => self.0 &= !Tags::WEBSOCKET,
            Transport::WebSocket => self.0 |= Tags::WEBSOCKET,
        }
    }
}

impl std::fmt::Debug for Tags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tags")
            .field("role", &self.role())
            .field("transport", &self.transport())
            .finish()
    }
}

/// What a connection keeps of its input between reads, only while it has any.
#[derive(Debug, Default)]
pub struct InputRest {
    /// Received bytes not decoded yet: an unfinished package, frame or request head.
    pub tail: Vec<u8>,
    /// The payload so far of a fragmented WebSocket message.
    pub fragments: Vec<u8>,
    /// A fragmented WebSocket message has started and not finished.
    pub in_message: bool,
}

impl InputRest {
    pub fn is_empty(&self) -> bool {
        self.tail.is_empty() && !self.in_message
    }
}

/// A connection: 48 bytes in a release build (see the size test below).
#[derive(Debug)]
pub struct Conn {
    pub stream: TcpStream,
    pub generation: u32,
    pub last_seen: u32,
    pub member_slot: u32,
    /// The second this connection's current timer-wheel entry comes due.
    pub timer_at: u32,
    pub app: AppId,
    pub state: ConnState,
    pub tags: Tags,
    /// Finds this session's clientId in its channel's presence table (clients only).
    pub presence_key: PresenceKey,
    /// Undecoded input, only while a package, frame or message is split across reads.
    pub read_rest: Option<Box<InputRest>>,
    /// Bytes the socket would not take yet, only while there are some.
    pub out: Option<Box<Outbox>>,
}

impl Conn {
    pub fn new(stream: TcpStream, generation: u32, now: u32) -> Conn {
        Conn {
            stream,
            generation,
            last_seen: now,
            member_slot: u32::MAX,
            timer_at: u32::MAX,
            app: AppId(0),
            state: ConnState::Opening,
            tags: Tags(0),
            presence_key: PresenceKey(0),
            read_rest: None,
            out: None,
        }
    }

    pub fn role(&self) -> Role {
        self.tags.role()
    }

    pub fn transport(&self) -> Transport {
        self.tags.transport()
    }

    /// Bytes queued for this connection and not yet taken by the socket.
    pub fn pending_bytes(&self) -> usize {
        self.out.as_ref().map_or(0, |out| out.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_keep_role_and_transport_apart() {
        let mut tags = Tags(0);
        assert_eq!((tags.role(), tags.transport()), (Role::None, Transport::Tcp));
        assert!(!tags.transport_chosen());
        tags.set_transport(Transport::WebSocket);
        tags.set_role(Role::Server);
        assert_eq!((tags.role(), tags.transport()), (Role::Server, Transport::WebSocket));
        assert!(tags.transport_chosen());
        tags.set_role(Role::Client);
        assert_eq!((tags.role(), tags.transport()), (Role::Client, Transport::WebSocket));
        tags.set_transport(Transport::Tcp);
        tags.set_role(Role::None);
        assert_eq!((tags.role(), tags.transport()), (Role::None, Transport::Tcp));
    }

    /// The idle-connection budget (DESIGN §5) starts here: keep `Conn` small (the socket is a
    /// plain `std` stream whichever backend watches it, so debug and release agree).
    #[test]
    fn idle_conn_is_small() {
        let budget = 48;
        assert!(
            std::mem::size_of::<Conn>() <= budget,
            "Conn is {} bytes",
            std::mem::size_of::<Conn>()
        );
    }
}

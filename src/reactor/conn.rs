//! One client connection as its reactor holds it.
//!
//! # Invariants
//! - An idle connection owns no buffer: `read_rest` exists only while a package is split across
//!   reads, `out` only while the socket refused bytes. Both are dropped as soon as they drain.
//! - `last_seen` is the accept time while the handshake is running and the time of the last
//!   heartbeat once working; the timer wheel derives every deadline from it.
//! - `member_slot` is meaningful only for a client session (`role == Role::Client`): it is the
//!   connection's position in its core's member list of `app`.

use std::sync::Arc;

use mio::net::TcpStream;

use super::outbox::Outbox;
use crate::push::AppId;

/// Where the connection is in Pomelo's lifecycle (hybridsocket: INITED → WAIT_ACK → WORKING → CLOSED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Accepted; waiting for the client's HANDSHAKE.
    Handshaking,
    /// Handshake answered; waiting for HANDSHAKE_ACK.
    WaitAck,
    /// Acked: heartbeats and requests flow.
    Working,
    /// The server decided to close: the write side is shut, input is read and discarded until EOF
    /// or the linger deadline, so the peer reads the kick before the socket goes away.
    Closing,
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

/// A connection: 56 bytes in a release build (see the size test below).
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
    pub role: Role,
    /// The clientId this session entered with (clients only); shared with the presence map.
    pub client_id: Option<Arc<str>>,
    /// The unfinished tail of the input, only while a package is split across reads.
    pub read_rest: Option<Box<Vec<u8>>>,
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
            state: ConnState::Handshaking,
            role: Role::None,
            client_id: None,
            read_rest: None,
            out: None,
        }
    }

    /// Bytes queued for this connection and not yet taken by the socket.
    pub fn pending_bytes(&self) -> usize {
        self.out.as_ref().map_or(0, |out| out.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The idle-connection budget (DESIGN §5) starts here: keep `Conn` small. mio adds a
    /// registration check (8 bytes, padded to 16) to every socket in debug builds only.
    #[test]
    fn idle_conn_is_small() {
        let budget = if cfg!(debug_assertions) { 56 + 16 } else { 56 };
        assert!(
            std::mem::size_of::<Conn>() <= budget,
            "Conn is {} bytes",
            std::mem::size_of::<Conn>()
        );
    }
}

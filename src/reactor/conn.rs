//! One client connection as its reactor holds it: the socket, the frontend session inline, and
//! buffers only while they hold bytes.
//!
//! # Invariants
//! - An idle connection owns no buffer: `read_rest` exists only while a package is split across
//!   reads, `out` only while the socket refused bytes. Both are dropped as soon as they drain.
//! - The session decides every deadline ([`Session::deadline`]) but the linger of a closing
//!   connection, whose timer entry is set when it starts closing.
//! - `member_slot` is meaningful only while the session is a client member of a channel
//!   ([`Session::member_of`]): it is the connection's position in its core's member list.
//! - A slot without a socket (`stream: None`) is a Socket.IO polling session: its `out` is
//!   its pending output, which only a poll takes (`reactor/polling.rs`); the backend never
//!   hears of it.

use std::net::TcpStream;

use super::outbox::Outbox;
use crate::session::{InputRest, Session};

/// What the reactor itself knows of a connection (its end, its move, TLS, a deferred read), one
/// bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(u8);

impl Flags {
    const CLOSING: u8 = 0b01;
    const WRITE_SHUT: u8 = 0b10;
    const MOVING: u8 = 0b100;
    const TLS: u8 = 0b1000;
    const READ_DEFERRED: u8 = 0b1_0000;

    /// The server decided to close: input is read and discarded until EOF or the linger
    /// deadline, so the peer reads the kick before the socket goes away.
    pub fn is_closing(self) -> bool {
        self.0 & Flags::CLOSING != 0
    }

    pub fn set_closing(&mut self) {
        self.0 |= Flags::CLOSING;
    }

    /// The write side is shut: every byte for the peer has left.
    pub fn is_write_shut(self) -> bool {
        self.0 & Flags::WRITE_SHUT != 0
    }

    pub fn set_write_shut(&mut self) {
        self.0 |= Flags::WRITE_SHUT;
    }

    /// The connection is being handed to another core: what it reads is kept, not decoded.
    pub fn is_moving(self) -> bool {
        self.0 & Flags::MOVING != 0
    }

    pub fn set_moving(&mut self) {
        self.0 |= Flags::MOVING;
    }

    /// The connection is TLS: its bytes pass through its entry in the core's `TlsConns`.
    pub fn is_tls(self) -> bool {
        self.0 & Flags::TLS != 0
    }

    pub fn set_tls(&mut self) {
        self.0 |= Flags::TLS;
    }

    /// The connection used its read budget this turn and is queued to read on the next: an
    /// input event meanwhile adds nothing (it reads in its turn in the queue, not twice).
    pub fn is_read_deferred(self) -> bool {
        self.0 & Flags::READ_DEFERRED != 0
    }

    pub fn set_read_deferred(&mut self, deferred: bool) {
        if deferred {
            self.0 |= Flags::READ_DEFERRED;
        } else {
            self.0 &= !Flags::READ_DEFERRED;
        }
    }
}

/// A connection: 48 bytes (see the size test below).
#[derive(Debug)]
pub struct Conn {
    /// The socket; `None` for a polling session.
    pub stream: Option<TcpStream>,
    pub generation: u32,
    pub member_slot: u32,
    /// The second this connection's current timer-wheel entry comes due.
    pub timer_at: u32,
    pub session: Session,
    pub flags: Flags,
    /// Undecoded input, only while a package, frame or message is split across reads.
    pub read_rest: Option<Box<InputRest>>,
    /// Bytes the socket would not take yet, only while there are some.
    pub out: Option<Box<Outbox>>,
}

impl Conn {
    pub fn new(stream: TcpStream, generation: u32, now: u32) -> Conn {
        Conn {
            stream: Some(stream),
            generation,
            member_slot: u32::MAX,
            timer_at: u32::MAX,
            session: Session::new(now),
            flags: Flags::default(),
            read_rest: None,
            out: None,
        }
    }

    /// A polling session's slot: no socket, and an empty queue for its pending output.
    pub fn detached(generation: u32, session: Session) -> Conn {
        Conn {
            stream: None,
            generation,
            member_slot: u32::MAX,
            timer_at: u32::MAX,
            session,
            flags: Flags::default(),
            read_rest: None,
            out: Some(Box::default()),
        }
    }

    /// A polling session's slot.
    pub fn is_detached(&self) -> bool {
        self.stream.is_none()
    }

    /// Bytes queued for this connection and not yet taken by the socket.
    pub fn pending_bytes(&self) -> usize {
        self.out.as_ref().map_or(0, |out| out.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn closing_bits_are_apart() {
        let mut closing = Flags::default();
        assert!(!closing.is_closing() && !closing.is_write_shut());
        closing.set_write_shut();
        assert!(!closing.is_closing() && closing.is_write_shut());
        closing.set_closing();
        assert!(closing.is_closing() && closing.is_write_shut());
    }
}

//! TLS connections on a reactor: the bytes of a connection flagged TLS ([`Flags::is_tls`])
//! pass through its entry here, opened on the way in and sealed on the way out, and everything
//! above (sessions, the write queue's rules, the push path) works on plaintext as for a plain
//! connection.
//!
//! ```text
//! first byte 0x16 (client.tls set) --> Handshaking(rustls, its buffers)  --Done-->
//!     Open(Records: keys only)  --close / kick (close_notify) / move--> gone from the table
//! ```
//!
//! # Invariants
//! - A connection is in the table exactly while its TLS flag is set and it is open; a plain
//!   connection costs this module nothing but a bit.
//! - At most `client.tls.max_handshakes_per_reactor` handshakes run on one core; a ClientHello
//!   past them is closed unanswered (counted), so a flood of handshakes cannot take the core.
//! - Write queues of TLS connections hold sealed records (copied out of the core's seal block,
//!   which a stalled connection must not pin), so what is queued leaves exactly as sealed.
//!
//! [`Flags::is_tls`]: super::conn::Flags::is_tls

use bytes::{Bytes, BytesMut};

use super::{Liveness, Reactor};
use crate::stats;
use crate::tls::{Handshake, Plain, Progress, Records, TlsError};

/// Bytes of the core's seal block: records for many connections are sealed into it before
/// each is written.
const SEAL_BLOCK: usize = 64 * 1024;

/// A TLS connection's state.
#[derive(Debug)]
enum TlsState {
    Handshaking(Box<Handshake>),
    Open(Box<Records>),
}

/// The TLS connections of one core, by slab index.
#[derive(Debug, Default)]
pub(super) struct TlsConns {
    states: std::collections::HashMap<u32, TlsState>,
    /// Handshakes running.
    handshakes: usize,
    /// Where records are sealed before they are written.
    sealed: BytesMut,
    /// Records a read must answer with (handshake flights, a KeyUpdate).
    reply: BytesMut,
    /// When the handshake cap was last logged (at most once per [`CAP_LOG_EVERY`]).
    cap_logged: Option<std::time::Instant>,
}

/// How often a core logs that its handshake cap refuses ClientHellos.
const CAP_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl TlsConns {
    /// Connections in the table (handshaking or open).
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Forgets a connection that closed or moved.
    pub fn remove(&mut self, index: usize) -> Removed {
        match self.states.remove(&(index as u32)) {
            None => Removed::Absent,
            Some(TlsState::Handshaking(_)) => {
                self.handshakes -= 1;
                Removed::Unfinished
            }
            Some(TlsState::Open(records)) => Removed::Open(records),
        }
    }

    /// Takes a connection that arrives with its handshake done (handed over by another core).
    pub fn insert_open(&mut self, index: usize, records: Box<Records>) {
        if let Some(TlsState::Handshaking(_)) =
            self.states.insert(index as u32, TlsState::Open(records))
        {
            self.handshakes -= 1;
        }
    }
}

/// What [`TlsConns::remove`] found.
#[derive(Debug)]
pub(super) enum Removed {
    /// Established: its records.
    Open(Box<Records>),
    /// Its handshake had not finished.
    Unfinished,
    /// Not in the table (already forgotten, e.g. at its close_notify).
    Absent,
}

impl Removed {
    pub fn records(self) -> Option<Box<Records>> {
        match self {
            Removed::Open(records) => Some(records),
            Removed::Unfinished | Removed::Absent => None,
        }
    }
}

/// What a connection's first bytes say about TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FirstBytes {
    /// Not a connection's first bytes, or no TLS on this port: as before.
    Plain,
    /// A TLS record: start a handshake.
    Tls,
    /// Plain bytes where TLS is required: closed.
    Refused,
}

impl Reactor {
    /// Where bytes just read for the connection go: through its TLS state, into a new
    /// handshake, or straight to its session.
    pub(super) fn on_bytes(&mut self, index: usize, data: &mut [u8]) -> Liveness {
        let Some(conn) = self.conns.get(index) else { return Liveness::Gone };
        if conn.flags.is_tls() {
            return self.on_tls_input(index, data);
        }
        match self.first_bytes(index, data) {
            FirstBytes::Plain => self.on_input(index, data),
            FirstBytes::Refused => {
                stats::add(&self.counters().tls.refused, 1);
                self.close(index);
                Liveness::Gone
            }
            FirstBytes::Tls => self.start_tls(index, data),
        }
    }

    fn first_bytes(&self, index: usize, data: &[u8]) -> FirstBytes {
        let Some(tls) = self.shared.tls.as_ref() else { return FirstBytes::Plain };
        let Some(conn) = self.conns.get(index) else { return FirstBytes::Plain };
        let first = conn.session.transport().is_none() && conn.read_rest.is_none();
        match data.first() {
            Some(&crate::tls::HANDSHAKE_RECORD) if first => FirstBytes::Tls,
            Some(_) if first && tls.required => FirstBytes::Refused,
            _ => FirstBytes::Plain,
        }
    }

    fn start_tls(&mut self, index: usize, data: &mut [u8]) -> Liveness {
        let Some(tls) = self.shared.tls.as_ref() else { return Liveness::Gone };
        if self.tls.handshakes >= tls.max_handshakes {
            stats::add(&self.counters().tls.refused, 1);
            let now = std::time::Instant::now();
            if self.tls.cap_logged.is_none_or(|at| now.duration_since(at) >= CAP_LOG_EVERY) {
                self.tls.cap_logged = Some(now);
                let cap = tls.max_handshakes;
                tracing::warn!(
                    core = self.core,
                    cap,
                    "TLS handshakes at the cap: a ClientHello is refused (client.tls.max_handshakes_per_reactor)"
                );
            }
            self.close(index);
            return Liveness::Gone;
        }
        let handshake = match Handshake::new(tls.config.clone()) {
            Ok(handshake) => handshake,
            Err(e) => return self.tls_failed(index, &e),
        };
        self.tls.states.insert(index as u32, TlsState::Handshaking(Box::new(handshake)));
        self.tls.handshakes += 1;
        if let Some(conn) = self.conns.get_mut(index) {
            conn.flags.set_tls();
        }
        self.on_tls_input(index, data)
    }

    /// Bytes for a TLS connection: handshake records to rustls, data records opened and their
    /// plaintext to the session.
    fn on_tls_input(&mut self, index: usize, data: &mut [u8]) -> Liveness {
        let mut reply = std::mem::take(&mut self.tls.reply);
        reply.clear();
        let step = match self.tls.states.get_mut(&(index as u32)) {
            Some(TlsState::Open(records)) => records.open(data, &mut reply).map(Step::Opened),
            Some(TlsState::Handshaking(handshake)) => {
                handshake.feed(data, &mut reply).map(Step::Fed)
            }
            None => Err(TlsError::Protocol("no TLS state")),
        };
        // Handshake flights and KeyUpdates go out before anything the plaintext makes.
        let replied = reply.is_empty() || self.write_raw(index, &reply) == Liveness::Open;
        self.tls.reply = reply;
        let step = match step {
            Err(e) => return self.tls_failed(index, &e),
            Ok(_) if !replied => return Liveness::Gone,
            Ok(step) => step,
        };
        let (liveness, peer_closed) = match step {
            Step::Fed(Progress::Continue) => (Liveness::Open, false),
            Step::Fed(Progress::Done(established)) => {
                let established = *established;
                self.tls.insert_open(index, Box::new(established.records));
                stats::add(&self.counters().tls.handshakes, 1);
                let mut plain = established.plain;
                let liveness = if plain.is_empty() {
                    Liveness::Open
                } else {
                    self.on_input(index, &mut plain)
                };
                (liveness, established.peer_closed)
            }
            Step::Opened(opened) => {
                let liveness = match opened.plain {
                    Plain::InPlace(0) => Liveness::Open,
                    Plain::InPlace(n) => self.deliver(index, &mut data[..n]),
                    Plain::Joined(mut joined) => self.deliver(index, &mut joined),
                };
                (liveness, opened.peer_closed)
            }
        };
        if peer_closed && liveness == Liveness::Open {
            // close_notify: the peer's end of stream.
            self.close(index);
            return Liveness::Gone;
        }
        liveness
    }

    /// Plaintext that arrived: to the session, or kept with a connection that is moving.
    fn deliver(&mut self, index: usize, plain: &mut [u8]) -> Liveness {
        let Some(conn) = self.conns.get_mut(index) else { return Liveness::Gone };
        if conn.flags.is_moving() {
            conn.read_rest.get_or_insert_default().tail.extend_from_slice(plain);
            return Liveness::Open;
        }
        self.on_input(index, plain)
    }

    fn tls_failed(&mut self, index: usize, error: &TlsError) -> Liveness {
        tracing::debug!(core = self.core, conn = index, %error, "TLS connection failed");
        // close() counts a connection whose handshake is in the table (unfinished), so only the
        // others are counted here.
        let index_key = index as u32;
        if !matches!(self.tls.states.get(&index_key), Some(TlsState::Handshaking(_))) {
            stats::add(&self.counters().tls.failures, 1);
        }
        self.close(index);
        Liveness::Gone
    }

    /// Seals `parts` for a TLS connection into the core's seal block; the sealed records, to
    /// write as they are.
    pub(super) fn seal<'p>(
        &mut self,
        index: usize,
        parts: impl IntoIterator<Item = &'p [u8]>,
    ) -> Result<Bytes, TlsError> {
        let Some(TlsState::Open(records)) = self.tls.states.get_mut(&(index as u32)) else {
            return Err(TlsError::Protocol("nothing may be sent before the handshake is done"));
        };
        if self.tls.sealed.capacity() - self.tls.sealed.len() < 1024 {
            self.tls.sealed = BytesMut::with_capacity(SEAL_BLOCK);
        }
        records.seal(parts, &mut self.tls.sealed)?;
        Ok(self.tls.sealed.split().freeze())
    }

    /// A TLS connection that starts closing says so (close_notify) after its last bytes; its
    /// keys go with it, since nothing more is sealed for it.
    pub(super) fn close_notify(&mut self, index: usize) {
        let Some(mut records) = self.tls.remove(index).records() else { return };
        let mut alert = BytesMut::new();
        if records.seal_close_notify(&mut alert).is_ok() {
            let _ = self.write_raw(index, &alert);
        }
    }
}

/// What a read did to a TLS connection's state.
enum Step {
    Fed(Progress),
    Opened(crate::tls::Opened),
}

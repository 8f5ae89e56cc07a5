//! A TLS connection's handshake, driven by rustls's unbuffered server connection: the reactor
//! feeds what it read ([`Handshake::feed`]) and sends what comes back; once the handshake is
//! done the connection's keys leave rustls for a [`Records`] ([`Progress::Done`]) and rustls is
//! dropped.
//!
//! # Invariants
//! - Every byte read is either consumed by rustls or handed on: the client's first records
//!   after its Finished (application data it did not wait to send) come out as plaintext in
//!   [`Established::plain`], opened by rustls or by the new [`Records`], and the rest of an
//!   unfinished record stays in the `Records`.
//! - What a handshake holds is bounded: at most [`MAX_INCOMING`] unconsumed bytes.

use std::sync::Arc;

use bytes::BytesMut;
use rustls::ServerConfig;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, UnbufferedStatus};

use super::TlsError;
use super::records::{Plain, Records, Version};
use super::secrets::{Keys, take_caught};

/// Unconsumed bytes a handshake may hold: two records (a ClientHello is one).
pub const MAX_INCOMING: usize = 2 * (16_384 + 256 + 5);

/// A handshake in progress.
pub struct Handshake {
    conn: Option<UnbufferedServerConnection>,
    incoming: Vec<u8>,
    /// TLS 1.3: the application traffic secrets, (client's, server's), once derived.
    client_secret: Option<Vec<u8>>,
    server_secret: Option<Vec<u8>>,
    /// Application data opened before the handshake was done.
    plain: Vec<u8>,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake").field("incoming", &self.incoming.len()).finish_non_exhaustive()
    }
}

/// What a feed came to.
#[derive(Debug)]
pub enum Progress {
    /// More bytes are needed.
    Continue,
    /// The handshake is done.
    Done(Box<Established>),
}

/// A connection whose handshake is done.
#[derive(Debug)]
pub struct Established {
    pub records: Records,
    /// What the client sent right after its Finished, opened.
    pub plain: Vec<u8>,
    /// It also sent close_notify.
    pub peer_closed: bool,
}

impl Handshake {
    pub fn new(config: Arc<ServerConfig>) -> Result<Handshake, TlsError> {
        Ok(Handshake {
            conn: Some(UnbufferedServerConnection::new(config)?),
            incoming: Vec::new(),
            client_secret: None,
            server_secret: None,
            plain: Vec::new(),
        })
    }

    /// Takes `data`, just read; appends the records to send to `out` (send them all, in order,
    /// before anything else on this connection).
    pub fn feed(&mut self, data: &[u8], out: &mut BytesMut) -> Result<Progress, TlsError> {
        if self.incoming.len() + data.len() > MAX_INCOMING {
            return Err(TlsError::Protocol("too many bytes before the handshake was done"));
        }
        self.incoming.extend_from_slice(data);
        loop {
            let conn = self.conn.as_mut().ok_or(TlsError::Protocol("handshake already done"))?;
            let UnbufferedStatus { mut discard, state } =
                conn.process_tls_records(&mut self.incoming);
            let caught = take_caught();
            if caught.client.is_some() {
                self.client_secret = caught.client;
            }
            if caught.server.is_some() {
                self.server_secret = caught.server;
            }
            let done = match state {
                Err(e) => return Err(e.into()),
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    let len = out.len();
                    out.resize(len + 4096, 0);
                    let written = match encode.encode(&mut out[len..]) {
                        Ok(n) => n,
                        Err(EncodeError::InsufficientSize(size)) => {
                            out.resize(len + size.required_size, 0);
                            encode.encode(&mut out[len..]).map_err(|_| {
                                TlsError::Protocol("handshake record did not encode")
                            })?
                        }
                        Err(_) => {
                            return Err(TlsError::Protocol("handshake record did not encode"));
                        }
                    };
                    out.truncate(len + written);
                    false
                }
                // The caller sends `out` once this feed returns.
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    false
                }
                Ok(ConnectionState::ReadTraffic(mut read)) => {
                    while let Some(record) = read.next_record() {
                        let record = record?;
                        discard += record.discard;
                        self.plain.extend_from_slice(record.payload);
                    }
                    false
                }
                Ok(ConnectionState::BlockedHandshake) => {
                    self.incoming.drain(..discard);
                    return Ok(Progress::Continue);
                }
                Ok(ConnectionState::WriteTraffic(_)) => true,
                Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => {
                    return Err(TlsError::Protocol("closed during the handshake"));
                }
                Ok(_) => return Err(TlsError::Protocol("early data is not accepted")),
            };
            self.incoming.drain(..discard);
            if done {
                return self.establish(out).map(|e| Progress::Done(Box::new(e)));
            }
        }
    }

    /// The handshake is done: the keys leave rustls, and what followed the client's Finished
    /// is opened with them.
    fn establish(&mut self, out: &mut BytesMut) -> Result<Established, TlsError> {
        let conn = self.conn.take().ok_or(TlsError::Protocol("handshake already done"))?;
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => Version::Tls13,
            Some(rustls::ProtocolVersion::TLSv1_2) => Version::Tls12,
            _ => return Err(TlsError::Protocol("an unsupported protocol version")),
        };
        let (secrets, _kernel) = conn.dangerous_into_kernel_connection()?;
        let unsupported = || TlsError::Protocol("a cipher suite without extractable keys");
        let (cipher, rx) = Keys::from_extracted(secrets.rx, self.client_secret.as_deref())
            .ok_or_else(unsupported)?;
        let (_, tx) = Keys::from_extracted(secrets.tx, self.server_secret.as_deref())
            .ok_or_else(unsupported)?;
        let mut records = Records::new(cipher, version, rx, tx);
        let mut plain = std::mem::take(&mut self.plain);
        let mut rest = std::mem::take(&mut self.incoming);
        let mut peer_closed = false;
        if !rest.is_empty() {
            let opened = records.open(&mut rest, out)?;
            match opened.plain {
                Plain::InPlace(n) => plain.extend_from_slice(&rest[..n]),
                Plain::Joined(joined) => plain.extend_from_slice(&joined),
            }
            peer_closed = opened.peer_closed;
        }
        Ok(Established { records, plain, peer_closed })
    }
}

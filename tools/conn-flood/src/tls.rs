//! TLS for the client connections (`--tls`): the rustls client configuration a loop builds from
//! `--tls-ca`, `--tls-name` and `--tls-version` ([`Client`]), and [`Tls`], one connection's
//! session around its non-blocking socket: the handshake, then plaintext in and out. The
//! protocols (`conn.rs`) never see it; the loop keeps its I/O model.
//!
//! ```text
//! socket ──read──► cipher (the loop's scratch) ──read_tls──► rustls ──reader──► out (the loop's
//!                   └─ what rustls cannot take yet: `stash`                     read buffer)
//! bytes ──writer──► rustls (no buffer limit) ──write_tls──► socket, as far as it takes them
//! ```
//!
//! # Invariants
//! - [`Tls::read`] returns a short count (or `WouldBlock`) only once the socket has been read
//!   short, as a plain `read` does: the loop's edge-triggered "a short read means drained" rule
//!   holds through TLS. It returns `Ok(0)` on the server's close_notify or the socket's end.
//! - rustls never holds more than one read's worth of plaintext: ciphertext is handed to it only
//!   while the caller's buffer has room, the rest of a read waits in `stash` (freed once empty).
//!   An idle session holds no stash, no plaintext and nothing unsent.
//! - Everything rustls has to send (handshake, records, alerts, KeyUpdate answers) goes to the
//!   socket after every call, as far as the socket takes it; the rest waits in rustls until the
//!   socket is writable ([`Tls::wants_write`], [`Tls::flush`]).
//! - Session resumption is off: every connection makes a full handshake, as a fleet of fresh
//!   clients does.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, SupportedProtocolVersion};
use serde::{Deserialize, Serialize};

/// A TLS version to insist on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum TlsVersion {
    /// TLS 1.2 only.
    #[value(name = "1.2", alias = "12")]
    V12,
    /// TLS 1.3 only.
    #[value(name = "1.3", alias = "13")]
    V13,
}

/// What every loop needs to build its [`Client`] (it travels to worker processes as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsSpec {
    /// The CA certificates to trust, PEM.
    pub ca: PathBuf,
    /// The server name sent (SNI) and verified (a DNS name or an IP address).
    pub name: String,
    /// Offer only this version; `None`: 1.3 and 1.2.
    pub version: Option<TlsVersion>,
}

/// The client configuration of a loop, shared by its connections.
#[derive(Debug, Clone)]
pub struct Client {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl Client {
    /// Reads the CA file and builds the configuration; errors name the file.
    pub fn new(spec: &TlsSpec) -> anyhow::Result<Client> {
        let mut roots = RootCertStore::empty();
        for cert in read_certificates(&spec.ca)? {
            roots.add(cert).with_context(|| {
                format!("--tls-ca {}: a certificate rustls refuses", spec.ca.display())
            })?;
        }
        let versions: &[&SupportedProtocolVersion] = match spec.version {
            None => rustls::DEFAULT_VERSIONS,
            Some(TlsVersion::V12) => &[&rustls::version::TLS12],
            Some(TlsVersion::V13) => &[&rustls::version::TLS13],
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .context("TLS versions")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.resumption = rustls::client::Resumption::disabled();
        let name = ServerName::try_from(spec.name.clone()).with_context(|| {
            format!("--tls-name {:?}: not a DNS name or an IP address", spec.name)
        })?;
        Ok(Client { config: Arc::new(config), name })
    }

    /// A new session, its ClientHello ready to go.
    pub fn connect(&self) -> io::Result<Tls> {
        let mut conn = ClientConnection::new(self.config.clone(), self.name.clone())
            .map_err(|e| io::Error::other(format!("tls: {e}")))?;
        // The loop queues what the socket refuses anyway: rustls holds it, whatever its size.
        conn.set_buffer_limit(None);
        Ok(Tls {
            conn,
            stash: Vec::new(),
            plain: 0,
            peer_closed: false,
            eof: false,
            began: false,
            undrained: false,
        })
    }
}

/// The certificates of a PEM file (at least one).
fn read_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("--tls-ca {}: {e}", path.display()))?;
    if certs.is_empty() {
        bail!("--tls-ca {}: no certificate in the file (PEM expected)", path.display());
    }
    Ok(certs)
}

/// One connection's TLS session (see the module's invariants).
#[derive(Debug)]
pub struct Tls {
    conn: ClientConnection,
    /// Ciphertext read from the socket that rustls has not taken yet.
    stash: Vec<u8>,
    /// Plaintext rustls holds for us.
    plain: usize,
    /// The server's close_notify came.
    peer_closed: bool,
    /// The socket's read side ended.
    eof: bool,
    /// The handshake began (the TCP connect had completed).
    began: bool,
    /// The handshake ended on a full read: the socket may hold more, and no new edge will say so.
    undrained: bool,
}

impl Tls {
    /// Whether the handshake began ([`handshake`](Self::handshake) was called once).
    pub fn began(&self) -> bool {
        self.began
    }

    /// Drives the handshake over `socket` (connected), reading through `cipher`: `Ok(true)` once
    /// it is done (the Finished sent, as far as the socket took it), `Ok(false)` while it waits
    /// for the server.
    pub fn handshake<S: Read + Write>(
        &mut self,
        socket: &mut S,
        cipher: &mut [u8],
    ) -> io::Result<bool> {
        self.began = true;
        loop {
            self.flush(socket)?;
            if !self.conn.is_handshaking() {
                return Ok(true);
            }
            if self.peer_closed || self.eof {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "tls: the server closed during the handshake",
                ));
            }
            match socket.read(cipher) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    let mut at = 0;
                    self.pump(socket, &cipher[..n], &mut [], &mut at)?;
                    self.undrained = n == cipher.len();
                    if !self.undrained && self.conn.is_handshaking() {
                        self.flush(socket)?;
                        return Ok(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads plaintext into `out`, reading the socket through `cipher` as needed: `Ok(n)` (short
    /// only once the socket was read short), `Ok(0)` at the end (close_notify or the socket's
    /// end), `WouldBlock` when the socket is drained and no plaintext came.
    pub fn read<S: Read + Write>(
        &mut self,
        socket: &mut S,
        cipher: &mut [u8],
        out: &mut [u8],
    ) -> io::Result<usize> {
        let mut at = 0;
        self.undrained = false;
        if !self.stash.is_empty() {
            let stash = std::mem::take(&mut self.stash);
            self.pump(socket, &stash, out, &mut at)?;
        }
        let mut drained = false;
        loop {
            at += self.take_plain(&mut out[at..])?;
            if at == out.len() || !self.stash.is_empty() || self.peer_closed || self.eof {
                break;
            }
            match socket.read(cipher) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.pump(socket, &cipher[..n], out, &mut at)?;
                    if n < cipher.len() {
                        drained = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.flush(socket)?;
        match at {
            0 if self.peer_closed || self.eof => Ok(0),
            0 if drained => Err(io::ErrorKind::WouldBlock.into()),
            // Not reached: a full `out` has `at > 0`; kept for an empty `out`.
            0 => Ok(0),
            n => Ok(n),
        }
    }

    /// Encrypts `bytes` and writes what the socket takes; rustls keeps the rest.
    pub fn send<S: Write>(&mut self, socket: &mut S, bytes: &[u8]) -> io::Result<()> {
        self.conn.writer().write_all(bytes)?;
        self.flush(socket)
    }

    /// Writes what rustls holds, as far as the socket takes it.
    pub fn flush<S: Write>(&mut self, socket: &mut S) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Says close_notify, as far as the socket takes it at once (once the handshake is done;
    /// the loop closes the socket next, so that servers see a clean end rather than a cut one).
    pub fn close<S: Write>(&mut self, socket: &mut S) {
        if !self.conn.is_handshaking() {
            self.conn.send_close_notify();
            let _ = self.flush(socket);
        }
    }

    /// Whether rustls holds bytes the socket did not take.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Whether a [`read`](Self::read) has something to say without the socket having anything
    /// new: plaintext or ciphertext waits, the handshake left the socket undrained, or the
    /// stream ended behind the last bytes read (the loop then reads again without waiting for
    /// an event).
    pub fn buffered(&self) -> bool {
        self.plain > 0 || !self.stash.is_empty() || self.undrained || self.peer_closed || self.eof
    }

    /// The version and cipher suite, once negotiated (`TLSv1_3 TLS13_AES_256_GCM_SHA384`).
    pub fn negotiated(&self) -> Option<String> {
        let version = self.conn.protocol_version()?;
        let suite = self.conn.negotiated_cipher_suite()?;
        Some(format!("{version:?} {:?}", suite.suite()))
    }

    /// Hands `input` to rustls while `out` (from `at`) has room for what it decrypts; what it
    /// cannot take yet goes to the stash.
    fn pump<S: Write>(
        &mut self,
        socket: &mut S,
        mut input: &[u8],
        out: &mut [u8],
        at: &mut usize,
    ) -> io::Result<()> {
        while !input.is_empty() && !self.peer_closed {
            *at += self.take_plain(&mut out[*at..])?;
            if self.plain > 0 {
                break;
            }
            if self.conn.read_tls(&mut input)? == 0 {
                // Only after a close_notify (rustls takes nothing more).
                self.peer_closed = true;
                break;
            }
            match self.conn.process_new_packets() {
                Ok(state) => {
                    self.plain = state.plaintext_bytes_to_read();
                    self.peer_closed |= state.peer_has_closed();
                }
                Err(e) => {
                    // rustls queued an alert saying why: let the server hear it.
                    let _ = self.flush(socket);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, format!("tls: {e}")));
                }
            }
        }
        *at += self.take_plain(&mut out[*at..])?;
        if !input.is_empty() && !self.peer_closed {
            self.stash.extend_from_slice(input);
        }
        Ok(())
    }

    /// Moves plaintext rustls holds into `out`; returns how much.
    fn take_plain(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut at = 0;
        while self.plain > 0 && at < out.len() {
            let n = self.conn.reader().read(&mut out[at..])?;
            if n == 0 {
                break;
            }
            at += n;
            self.plain -= n.min(self.plain);
        }
        Ok(at)
    }
}

#[cfg(test)]
mod test_ca;
#[cfg(test)]
mod tests;

//! A TLS connection's records after its handshake (RFC 8446 §5, RFC 5246 §6.2 with RFC 5288
//! and RFC 7905): [`Records::open`] authenticates and decrypts what arrived, in place, and
//! [`Records::seal`] encrypts what is to leave. TLS 1.2 and 1.3, AES-GCM and ChaCha20-Poly1305.
//!
//! # Invariants
//! - Only an unfinished record's bytes are kept between reads (`partial`), and only while it is
//!   unfinished: an idle connection holds its [`Keys`] and nothing else.
//! - Records open in order and each once; a record that fails to authenticate ends the
//!   connection ([`TlsError::Decrypt`]), before any of its bytes reach a session.

use bytes::{BufMut, BytesMut};
use ring::aead::{self, Aad};

use super::TlsError;
use super::secrets::{Cipher, Keys};

/// The largest plaintext a record carries.
pub const MAX_PLAINTEXT: usize = 16_384;
/// A record's header: type, legacy version, length.
const HEADER: usize = 5;
/// The largest record body accepted: a full plaintext plus the most any AEAD and padding add
/// (RFC 8446 §5.2).
const MAX_BODY: usize = MAX_PLAINTEXT + 256;
/// TLS 1.2 GCM's explicit nonce, sent ahead of each record's ciphertext.
const EXPLICIT_NONCE: usize = 8;
const TAG: usize = 16;

/// Records a direction's keys seal before TLS 1.3 moves to the next keys (well inside AES-GCM's
/// 2^24.5, RFC 8446 §5.5); TLS 1.2 ends the connection there.
pub const KEY_UPDATE_AT: u64 = 1 << 23;

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const KEY_UPDATE: u8 = 24;
const CLOSE_NOTIFY: u8 = 0;

/// The protocol version a connection negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Tls12,
    Tls13,
}

/// Where [`Records::open`] left the plaintext.
#[derive(Debug, PartialEq, Eq)]
pub enum Plain {
    /// The first `n` bytes of the buffer opened.
    InPlace(usize),
    /// The records completed a record held from an earlier read: their plaintext, joined.
    Joined(Vec<u8>),
}

/// What [`Records::open`] found.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened {
    pub plain: Plain,
    /// The peer sent close_notify: nothing after it is read.
    pub peer_closed: bool,
}

/// A connection's record layer once its handshake is done: at most 256 bytes (see the size
/// test), and the rest of a record
/// while one is split across reads.
#[derive(Debug)]
pub struct Records {
    cipher: Cipher,
    version: Version,
    rx: Keys,
    tx: Keys,
    /// An unfinished record's bytes, only while there are some.
    partial: Vec<u8>,
}

impl Records {
    pub(super) fn new(cipher: Cipher, version: Version, rx: Keys, tx: Keys) -> Records {
        Records { cipher, version, rx, tx, partial: Vec::new() }
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// Moves the send sequence number (tests of the key limit).
    #[cfg(test)]
    pub(super) fn set_tx_seq(&mut self, seq: u64) {
        self.tx.seq = seq;
    }

    /// Bytes of an unfinished record held for the next read.
    pub fn held(&self) -> usize {
        self.partial.len()
    }

    /// Opens every whole record in `data` (what was just read), behind the unfinished one held
    /// from an earlier read if any, and keeps the rest of an unfinished record. Records this
    /// side must answer with (a KeyUpdate's) are sealed into `reply`.
    pub fn open(&mut self, data: &mut [u8], reply: &mut BytesMut) -> Result<Opened, TlsError> {
        if self.partial.is_empty() {
            let (plain, consumed, peer_closed) = self.open_records(data, reply)?;
            if consumed < data.len() && !peer_closed {
                self.partial.extend_from_slice(&data[consumed..]);
            }
            return Ok(Opened { plain: Plain::InPlace(plain), peer_closed });
        }
        let mut joined = std::mem::take(&mut self.partial);
        joined.extend_from_slice(data);
        let (plain, consumed, peer_closed) = self.open_records(&mut joined, reply)?;
        if consumed < joined.len() && !peer_closed {
            self.partial = joined[consumed..].to_vec();
        }
        joined.truncate(plain);
        Ok(Opened { plain: Plain::Joined(joined), peer_closed })
    }

    /// Seals `parts`, one after the other, into records appended to `out` (each part is copied
    /// once, into its record).
    pub fn seal<'p>(
        &mut self,
        parts: impl IntoIterator<Item = &'p [u8]>,
        out: &mut BytesMut,
    ) -> Result<(), TlsError> {
        let mut parts = parts.into_iter().filter(|p| !p.is_empty()).peekable();
        let mut current: &[u8] = &[];
        while !current.is_empty() || parts.peek().is_some() {
            let key = self.begin_record(out)?;
            let (start, body) = self.record_header(out, APPLICATION_DATA);
            let plain_start = out.len();
            while out.len() - plain_start < MAX_PLAINTEXT {
                if current.is_empty() {
                    match parts.next() {
                        Some(part) => current = part,
                        None => break,
                    }
                }
                let room = MAX_PLAINTEXT - (out.len() - plain_start);
                let (now, later) = current.split_at(current.len().min(room));
                out.put_slice(now);
                current = later;
            }
            self.finish_record(&key, out, start, body, APPLICATION_DATA)?;
        }
        Ok(())
    }

    /// Seals a close_notify alert into `out`.
    pub fn seal_close_notify(&mut self, out: &mut BytesMut) -> Result<(), TlsError> {
        self.seal_message(ALERT, &[1, CLOSE_NOTIFY], out)
    }

    /// Seals one record of `typ` carrying `payload` (a few bytes).
    fn seal_message(
        &mut self,
        typ: u8,
        payload: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), TlsError> {
        let key = self.begin_record(out)?;
        let (start, body) = self.record_header(out, typ);
        out.put_slice(payload);
        self.finish_record(&key, out, start, body, typ)
    }

    /// Moves to the next send keys first if these sealed enough (TLS 1.3: our KeyUpdate, under
    /// the old keys, tells the peer); returns the key the record is sealed with.
    fn begin_record(&mut self, out: &mut BytesMut) -> Result<aead::LessSafeKey, TlsError> {
        if self.tx.seq >= KEY_UPDATE_AT {
            if self.version == Version::Tls12 {
                return Err(TlsError::KeyLimit);
            }
            self.send_key_update(false, out)?;
        }
        Ok(self.tx.aead(self.cipher))
    }

    /// Our KeyUpdate (asking the peer to update too when `request`), then the next send keys.
    fn send_key_update(&mut self, request: bool, out: &mut BytesMut) -> Result<(), TlsError> {
        let key = self.tx.aead(self.cipher);
        let (start, body) = self.record_header(out, HANDSHAKE);
        out.put_slice(&[KEY_UPDATE, 0, 0, 1, u8::from(request)]);
        self.finish_record(&key, out, start, body, HANDSHAKE)?;
        if !self.tx.update(self.cipher) {
            return Err(TlsError::Protocol("no traffic secret to update the keys from"));
        }
        Ok(())
    }

    /// Starts a record of `typ`: the 5-byte header (its length filled in by
    /// [`finish_record`](Self::finish_record)) and TLS 1.2 GCM's explicit nonce; returns where
    /// the record and its body start.
    fn record_header(&self, out: &mut BytesMut, typ: u8) -> (usize, usize) {
        let outer = match self.version {
            Version::Tls13 => APPLICATION_DATA,
            Version::Tls12 => typ,
        };
        let start = out.len();
        out.put_slice(&[outer, 3, 3, 0, 0]);
        let body = out.len();
        if self.version == Version::Tls12 && self.cipher != Cipher::Chacha20Poly1305 {
            out.put_slice(&[0; EXPLICIT_NONCE]);
        }
        (start, body)
    }

    /// Encrypts the record that starts at `start` (its body at `body`), in place, and appends
    /// the tag.
    fn finish_record(
        &mut self,
        key: &aead::LessSafeKey,
        out: &mut BytesMut,
        start: usize,
        body: usize,
        typ: u8,
    ) -> Result<(), TlsError> {
        let seq = self.tx.seq;
        self.tx.seq += 1;
        let nonce = self.tx.nonce(seq);
        let sealed_from = match self.version {
            Version::Tls13 => {
                out.put_u8(typ);
                body
            }
            Version::Tls12 if self.cipher == Cipher::Chacha20Poly1305 => body,
            Version::Tls12 => {
                out[body..body + EXPLICIT_NONCE].copy_from_slice(&nonce.as_ref()[4..]);
                body + EXPLICIT_NONCE
            }
        };
        let plain_len = out.len() - sealed_from;
        let body_len = out.len() + TAG - body;
        out[start + 3..start + HEADER].copy_from_slice(&(body_len as u16).to_be_bytes());
        let aad = match self.version {
            Version::Tls13 => aad13(&out[start..start + HEADER]),
            Version::Tls12 => aad12(seq, typ, plain_len),
        };
        let tag = key
            .seal_in_place_separate_tag(nonce, Aad::from(aad.bytes()), &mut out[sealed_from..])
            .map_err(|_| TlsError::Protocol("a record did not seal"))?;
        out.put_slice(tag.as_ref());
        Ok(())
    }
}

impl Records {
    /// Opens the whole records at the start of `buf`, writing their plaintext over its start;
    /// returns the plaintext's length, how many bytes the whole records took, and whether the
    /// peer closed.
    fn open_records(
        &mut self,
        buf: &mut [u8],
        reply: &mut BytesMut,
    ) -> Result<(usize, usize, bool), TlsError> {
        let mut read = 0;
        let mut plain = 0;
        let mut key: Option<aead::LessSafeKey> = None;
        while buf.len() - read >= HEADER {
            let header: [u8; HEADER] = buf[read..read + HEADER].try_into().expect("5 bytes");
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            if len > MAX_BODY || header[1] != 3 {
                return Err(TlsError::Protocol("a record too long or not TLS"));
            }
            if buf.len() - read - HEADER < len {
                break;
            }
            let at = read + HEADER;
            read = at + len;
            let key = key.get_or_insert_with(|| self.rx.aead(self.cipher));
            let (typ, text_len) = self.open_one(key, header, &mut buf[at..read])?;
            let text = at..at + text_len;
            match typ {
                APPLICATION_DATA => {
                    buf.copy_within(text, plain);
                    plain += text_len;
                }
                // close_notify, or any fatal alert's close: the peer is done.
                ALERT if buf[text.clone()] == [1, CLOSE_NOTIFY] => return Ok((plain, read, true)),
                ALERT => return Err(TlsError::Alert(buf.get(at + 1).copied().unwrap_or(0))),
                HANDSHAKE if self.version == Version::Tls13 => {
                    let message = &buf[text];
                    if message.len() != 5 || message[..4] != [KEY_UPDATE, 0, 0, 1] || message[4] > 1
                    {
                        return Err(TlsError::Protocol("a handshake message after the handshake"));
                    }
                    let requested = message[4] == 1;
                    if !self.rx.update(self.cipher) {
                        return Err(TlsError::Protocol(
                            "no traffic secret to update the keys from",
                        ));
                    }
                    // The records after it open with the next keys.
                    *key = self.rx.aead(self.cipher);
                    if requested {
                        self.send_key_update(false, reply)?;
                    }
                }
                HANDSHAKE => return Err(TlsError::Protocol("renegotiation is not supported")),
                CHANGE_CIPHER_SPEC => {
                    return Err(TlsError::Protocol("a ChangeCipherSpec after the handshake"));
                }
                _ => return Err(TlsError::Protocol("a record of an unknown type")),
            }
        }
        Ok((plain, read, false))
    }

    /// Decrypts one record's body in place, its plaintext moved to the body's start; returns its
    /// content type and the plaintext's length.
    fn open_one(
        &mut self,
        key: &aead::LessSafeKey,
        header: [u8; HEADER],
        body: &mut [u8],
    ) -> Result<(u8, usize), TlsError> {
        let seq = self.rx.seq;
        self.rx.seq = seq.checked_add(1).ok_or(TlsError::Protocol("sequence exhausted"))?;
        let (typ, len) = match self.version {
            Version::Tls13 => {
                if header[0] != APPLICATION_DATA {
                    return Err(TlsError::Protocol(
                        "a TLS 1.3 record that is not application data",
                    ));
                }
                let nonce = self.rx.nonce(seq);
                let plain = key
                    .open_in_place(nonce, Aad::from(header), body)
                    .map_err(|_| TlsError::Decrypt)?;
                // The inner plaintext: the content, its real type, then zero padding.
                let end =
                    plain.iter().rposition(|&b| b != 0).ok_or(TlsError::Protocol("no type"))?;
                (plain[end], end)
            }
            Version::Tls12 => {
                let explicit = match self.cipher {
                    Cipher::Chacha20Poly1305 => 0,
                    Cipher::Aes128Gcm | Cipher::Aes256Gcm => EXPLICIT_NONCE,
                };
                if body.len() < explicit + TAG {
                    return Err(TlsError::Decrypt);
                }
                let nonce = if explicit == 0 {
                    self.rx.nonce(seq)
                } else {
                    let mut nonce = [0u8; aead::NONCE_LEN];
                    nonce[..4].copy_from_slice(&self.rx.iv[..4]);
                    nonce[4..].copy_from_slice(&body[..EXPLICIT_NONCE]);
                    aead::Nonce::assume_unique_for_key(nonce)
                };
                let aad = aad12(seq, header[0], body.len() - explicit - TAG);
                let plain = key
                    .open_within(nonce, Aad::from(aad.bytes()), body, explicit..)
                    .map_err(|_| TlsError::Decrypt)?;
                (header[0], plain.len())
            }
        };
        if len > MAX_PLAINTEXT {
            return Err(TlsError::Protocol("a record over 16 KiB"));
        }
        Ok((typ, len))
    }
}

/// A record's additional data: TLS 1.3's is its header, TLS 1.2's its sequence number, type,
/// version and plaintext length.
enum AadBytes {
    Tls13([u8; HEADER]),
    Tls12([u8; 13]),
}

impl AadBytes {
    fn bytes(&self) -> &[u8] {
        match self {
            AadBytes::Tls13(b) => b,
            AadBytes::Tls12(b) => b,
        }
    }
}

fn aad13(header: &[u8]) -> AadBytes {
    AadBytes::Tls13(header.try_into().expect("a header"))
}

fn aad12(seq: u64, typ: u8, plain_len: usize) -> AadBytes {
    let mut aad = [0u8; 13];
    aad[..8].copy_from_slice(&seq.to_be_bytes());
    aad[8] = typ;
    aad[9..11].copy_from_slice(&[3, 3]);
    aad[11..].copy_from_slice(&(plain_len as u16).to_be_bytes());
    AadBytes::Tls12(aad)
}

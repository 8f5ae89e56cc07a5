//! Traffic keys after the handshake: one direction's AEAD key, IV and sequence number, and
//! (TLS 1.3) the traffic secret they came from, so that a KeyUpdate can derive the next ones.
//!
//! rustls hands out the keys and IVs ([`rustls::ExtractedSecrets`]) but not the secrets; it
//! reports those to a [`rustls::KeyLog`], which [`SecretCatcher`] is: during a call into the
//! handshake it keeps the two application traffic secrets on the calling thread, and the
//! handshake takes them right after the call ([`take_caught`]), so each connection gets its own
//! (a reactor drives one handshake at a time).

use std::cell::RefCell;

use ring::{aead, hkdf};
use rustls::ConnectionTrafficSecrets;

/// The AEAD a connection negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20Poly1305,
}

impl Cipher {
    pub fn algorithm(self) -> &'static aead::Algorithm {
        match self {
            Cipher::Aes128Gcm => &aead::AES_128_GCM,
            Cipher::Aes256Gcm => &aead::AES_256_GCM,
            Cipher::Chacha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }

    /// The TLS 1.3 suite's hash, for HKDF.
    fn hkdf(self) -> hkdf::Algorithm {
        match self {
            Cipher::Aes256Gcm => hkdf::HKDF_SHA384,
            Cipher::Aes128Gcm | Cipher::Chacha20Poly1305 => hkdf::HKDF_SHA256,
        }
    }

    fn key_len(self) -> usize {
        self.algorithm().key_len()
    }
}

/// The longest traffic secret (SHA-384's output).
const MAX_SECRET: usize = 48;

/// One direction's keys.
pub struct Keys {
    key: [u8; 32],
    pub iv: [u8; aead::NONCE_LEN],
    /// The sequence number of the next record.
    pub seq: u64,
    /// TLS 1.3: the traffic secret `key` and `iv` came from (its first `secret_len` bytes).
    secret: [u8; MAX_SECRET],
    secret_len: u8,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("seq", &self.seq).finish_non_exhaustive()
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        // Best effort: the key material does not outlive the connection in this allocation.
        self.key = [0; 32];
        self.iv = [0; aead::NONCE_LEN];
        self.secret = [0; MAX_SECRET];
    }
}

impl Keys {
    /// The keys rustls extracted, with the secret they came from (TLS 1.3) if it was caught.
    pub fn from_extracted(
        (seq, secrets): (u64, ConnectionTrafficSecrets),
        secret: Option<&[u8]>,
    ) -> Option<(Cipher, Keys)> {
        let (cipher, key, iv) = match &secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (Cipher::Aes128Gcm, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (Cipher::Aes256Gcm, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (Cipher::Chacha20Poly1305, key, iv)
            }
            _ => return None,
        };
        let mut keys = Keys {
            key: [0; 32],
            iv: iv.as_ref().try_into().ok()?,
            seq,
            secret: [0; MAX_SECRET],
            secret_len: 0,
        };
        let key = key.as_ref();
        keys.key.get_mut(..key.len())?.copy_from_slice(key);
        if let Some(secret) = secret {
            keys.secret.get_mut(..secret.len())?.copy_from_slice(secret);
            keys.secret_len = secret.len() as u8;
        }
        Some((cipher, keys))
    }

    /// The expanded AEAD key, built for one read or write.
    pub fn aead(&self, cipher: Cipher) -> aead::LessSafeKey {
        let key = &self.key[..cipher.key_len()];
        let unbound = aead::UnboundKey::new(cipher.algorithm(), key);
        aead::LessSafeKey::new(unbound.expect("the key has the algorithm's length"))
    }

    /// The nonce of the record numbered `seq`: the IV XOR the sequence number.
    pub fn nonce(&self, seq: u64) -> aead::Nonce {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        aead::Nonce::assume_unique_for_key(nonce)
    }

    /// TLS 1.3's key update (RFC 8446 §7.2): the next secret, and its key and IV; the sequence
    /// number starts again at 0. False when the secret was not caught.
    pub fn update(&mut self, cipher: Cipher) -> bool {
        let len = usize::from(self.secret_len);
        if len == 0 {
            return false;
        }
        let mut next = [0u8; MAX_SECRET];
        expand_label(cipher, &self.secret[..len], b"traffic upd", &mut next[..len]);
        let key_len = cipher.key_len();
        expand_label(cipher, &next[..len], b"key", &mut self.key[..key_len]);
        expand_label(cipher, &next[..len], b"iv", &mut self.iv);
        self.secret[..len].copy_from_slice(&next[..len]);
        self.seq = 0;
        true
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context, into `out`.
fn expand_label(cipher: Cipher, secret: &[u8], label: &[u8], out: &mut [u8]) {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let length = (out.len() as u16).to_be_bytes();
    let label_len = [(b"tls13 ".len() + label.len()) as u8];
    let info: [&[u8]; 5] = [&length, &label_len, b"tls13 ", label, &[0]];
    let prk = hkdf::Prk::new_less_safe(cipher.hkdf(), secret);
    let okm = prk.expand(&info, Len(out.len())).expect("a label's output fits HKDF");
    okm.fill(out).expect("the output has the requested length");
}

/// The application traffic secrets of the handshake running on this thread, as rustls logged
/// them: (client's, server's).
#[derive(Default)]
pub struct Caught {
    pub client: Option<Vec<u8>>,
    pub server: Option<Vec<u8>>,
}

thread_local! {
    static CAUGHT: RefCell<Caught> = RefCell::default();
}

/// What rustls logged on this thread since the last call.
pub fn take_caught() -> Caught {
    CAUGHT.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

/// The [`rustls::KeyLog`] that keeps the application traffic secrets for [`take_caught`] and
/// nothing else (no file, no other label).
#[derive(Debug)]
pub struct SecretCatcher;

impl rustls::KeyLog for SecretCatcher {
    fn log(&self, label: &str, _client_random: &[u8], secret: &[u8]) {
        CAUGHT.with(|c| {
            let mut caught = c.borrow_mut();
            match label {
                "CLIENT_TRAFFIC_SECRET_0" => caught.client = Some(secret.to_vec()),
                "SERVER_TRAFFIC_SECRET_0" => caught.server = Some(secret.to_vec()),
                _ => {}
            }
        });
    }

    fn will_log(&self, label: &str) -> bool {
        matches!(label, "CLIENT_TRAFFIC_SECRET_0" | "SERVER_TRAFFIC_SECRET_0")
    }
}

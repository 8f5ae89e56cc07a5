//! The certificate chain and key a TLS listener serves, read from PEM files, and reloadable:
//! [`Certificates`] is the rustls certificate resolver, so a reload changes what the next
//! handshake presents while established connections go on with theirs.
//!
//! # Invariants
//! - A `Certificates` always holds a chain whose first certificate matches its key: a load or
//!   reload that finds anything else fails, names the file and the reason, and (a reload)
//!   keeps what was served before.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

use super::secrets::SecretCatcher;

/// A certificate file that cannot be served, with the file and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct CertError {
    pub path: PathBuf,
    pub reason: String,
}

impl CertError {
    fn new(path: &Path, reason: impl Into<String>) -> CertError {
        CertError { path: path.to_owned(), reason: reason.into() }
    }
}

/// The chain and key of a listener, as last loaded.
pub struct Certificates {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates").field("cert", &self.cert).field("key", &self.key).finish()
    }
}

impl Certificates {
    /// Reads the chain and its key.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Certificates>, CertError> {
        let current = RwLock::new(Arc::new(read_pair(cert, key)?));
        Ok(Arc::new(Certificates { cert: cert.to_owned(), key: key.to_owned(), current }))
    }

    /// Reads the files again; on an error, what was served before stays.
    pub fn reload(&self) -> Result<(), CertError> {
        let pair = read_pair(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pair);
        Ok(())
    }

    /// The certificate file (for logs).
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// The chain now served.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).cert.clone()
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// The crypto provider every TLS listener uses (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration of the client listeners: TLS 1.2 and 1.3, no ALPN (a client that
/// offers `h2`, `http/1.1` or `mqtt` is served alike), and the traffic keys extractable, since
/// the connection's records leave rustls after the handshake ([`super::records`]).
pub fn server_config(certs: Arc<Certificates>) -> Arc<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.enable_secret_extraction = true;
    config.key_log = Arc::new(SecretCatcher);
    // Resumption by ticket id from rustls's session cache: a handful per client, not per
    // connection held.
    config.send_tls13_tickets = 1;
    Arc::new(config)
}

/// A rustls configuration for a listener that keeps rustls for the whole connection (the
/// control port): the chain, and client certificates checked against `client_ca` when set.
pub fn https_config(
    certs: Arc<Certificates>,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, CertError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions");
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let roots = Arc::new(read_roots(path)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| CertError::new(path, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(certs);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The CA certificates in a PEM file.
pub fn read_roots(path: &Path) -> Result<RootCertStore, CertError> {
    let mut roots = RootCertStore::empty();
    for cert in read_chain(path)? {
        roots.add(cert).map_err(|e| CertError::new(path, format!("not a CA certificate: {e}")))?;
    }
    Ok(roots)
}

fn read_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, CertError> {
    let chain = read_chain(cert)?;
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| CertError::new(key, pem_reason(&e)))?;
    let provider = provider();
    let signing = provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| CertError::new(key, format!("not a usable private key: {e}")))?;
    let pair = CertifiedKey::new(chain, signing);
    match pair.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(pair)
        }
        Err(e) => Err(CertError::new(
            key,
            format!("does not match the certificate in {}: {e}", cert.display()),
        )),
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| CertError::new(path, pem_reason(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::new(path, pem_reason(&e)))?;
    if certs.is_empty() {
        return Err(CertError::new(path, "no CERTIFICATE in the file (PEM expected)"));
    }
    Ok(certs)
}

fn pem_reason(e: &pem::Error) -> String {
    match e {
        pem::Error::Io(e) => crate::config::io_reason(e),
        pem::Error::NoItemsFound => "no private key in the file (PEM expected)".to_owned(),
        other => format!("not valid PEM: {other}"),
    }
}

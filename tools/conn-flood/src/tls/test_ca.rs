//! A test CA for the TLS tests (the unit tests here and `tests/tls_end_to_end.rs`, which
//! includes this file): a CA made with rcgen, its PEM in `ca.pem` under a temp dir removed on
//! drop, and a rustls server configuration whose certificate it signed for `localhost` and
//! 127.0.0.1.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, SupportedProtocolVersion};

/// See the module.
pub struct TestCa {
    /// Where `ca.pem` is.
    pub dir: PathBuf,
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

impl TestCa {
    /// A new CA; `name` keeps the temp dirs of tests apart.
    pub fn new(name: &str) -> TestCa {
        let dir =
            std::env::temp_dir().join(format!("conn-flood-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let leaf = rcgen::CertificateParams::new(names).unwrap().signed_by(&leaf_key, &ca).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        let chain = vec![leaf.der().clone(), ca.der().clone()];
        TestCa { dir, chain, key: leaf_key.serialize_der() }
    }

    /// The CA's PEM file.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A server configuration offering `versions`, its certificate signed by this CA.
    pub fn server_config(
        &self,
        versions: &[&'static SupportedProtocolVersion],
    ) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .unwrap();
        Arc::new(config)
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

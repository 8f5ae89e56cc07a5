//! A test CA made in the test: a CA certificate and a server certificate it signed for
//! `localhost` and 127.0.0.1, written as PEM files to a directory of their own (removed on
//! drop), for the daemon (`[client.tls]`, `[control.tls]`) and for the clients (`--cacert`,
//! `ca:`, the browser's trusted certificate).

use std::path::PathBuf;

/// The CA and its certificates, as files.
#[derive(Debug)]
pub struct TestCa {
    pub dir: PathBuf,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    /// A new CA under a fresh temp directory named after `name`, with a server certificate
    /// (`cert.pem`: the leaf then the CA; `key.pem`) and the CA alone (`ca.pem`).
    pub fn new(name: &str) -> TestCa {
        let dir = std::env::temp_dir().join(format!(
            "shaddock-ca-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("shaddock test CA {name}"));
        let key = rcgen::KeyPair::generate().expect("CA key");
        let issuer = rcgen::CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        std::fs::write(dir.join("ca.pem"), issuer.pem()).expect("ca.pem");
        let ca = TestCa { dir, issuer };
        ca.issue("cert.pem", "key.pem", &["localhost", "127.0.0.1"]);
        ca
    }

    /// Issues a certificate for `names` (DNS names or IP addresses) into `cert` (the leaf then
    /// the CA) and `key`, in the CA's directory.
    pub fn issue(&self, cert: &str, key: &str, names: &[&str]) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("names");
        params.distinguished_name.push(rcgen::DnType::CommonName, "shaddock test");
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let leaf = params.signed_by(&leaf_key, &self.issuer).expect("certificate");
        std::fs::write(self.dir.join(cert), leaf.pem() + &self.issuer.pem()).expect("cert");
        std::fs::write(self.dir.join(key), leaf_key.serialize_pem()).expect("key");
    }

    /// Issues a certificate for `names` through an intermediate CA of this one: `cert` holds the
    /// leaf (CN `shaddock test`) then the intermediate (CN `shaddock test intermediate`), and
    /// not the root, which stays alone in `ca.pem`; `key` the leaf's key. A chain of three, as
    /// a public CA's certificates are.
    pub fn issue_with_intermediate(&self, cert: &str, key: &str, names: &[&str]) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.distinguished_name.push(rcgen::DnType::CommonName, "shaddock test intermediate");
        let intermediate_key = rcgen::KeyPair::generate().expect("intermediate key");
        let intermediate =
            rcgen::CertifiedIssuer::signed_by(params, intermediate_key, &self.issuer)
                .expect("intermediate certificate");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("names");
        params.distinguished_name.push(rcgen::DnType::CommonName, "shaddock test");
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let leaf = params.signed_by(&leaf_key, &intermediate).expect("certificate");
        std::fs::write(self.dir.join(cert), leaf.pem() + &intermediate.pem()).expect("cert");
        std::fs::write(self.dir.join(key), leaf_key.serialize_pem()).expect("key");
    }

    /// base64(SHA-256(the CA's SubjectPublicKeyInfo, DER)): how Chromium's
    /// `--ignore-certificate-errors-spki-list` names a key to trust.
    pub fn ca_spki_sha256_base64(&self) -> String {
        use base64::Engine;
        use rcgen::PublicKeyData;
        let spki = self.issuer.key().subject_public_key_info();
        let digest = ring::digest::digest(&ring::digest::SHA256, &spki);
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    }

    /// The CA certificate alone, for clients to trust.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn cert_pem(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    pub fn key_pem(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// A rustls client configuration that trusts only this CA.
    pub fn client_config(&self) -> std::sync::Arc<rustls::ClientConfig> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(self.ca_pem()).expect("ca.pem") {
            roots.add(cert.expect("a certificate")).expect("a CA");
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        std::sync::Arc::new(config)
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

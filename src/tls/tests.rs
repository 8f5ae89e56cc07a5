//! The server half against rustls's client, in memory: every version and cipher suite, bytes
//! split anyhow, close_notify, both directions' key updates, a tampered record, and a reload.

use std::io::{Read, Write};
use std::sync::Arc;

use bytes::BytesMut;
use rustls::crypto::ring::cipher_suite as suite;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, ClientConnection, RootCertStore, SupportedCipherSuite};

use super::records::{KEY_UPDATE_AT, Plain, Records, Version};
use super::{Certificates, Handshake, Progress, TlsError, server_config};

/// A CA and a certificate it signed for `localhost`, written as PEM files under a temp dir.
struct TestCa {
    ca: CertificateDer<'static>,
    dir: std::path::PathBuf,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let dir = std::env::temp_dir().join(format!("shaddock-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        std::fs::write(dir.join("cert.pem"), leaf.pem() + &ca.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).unwrap();
        TestCa { ca: ca.der().clone(), dir }
    }

    fn certificates(&self) -> Arc<Certificates> {
        Certificates::load(&self.dir.join("cert.pem"), &self.dir.join("key.pem")).unwrap()
    }

    fn client(&self, suite: SupportedCipherSuite) -> ClientConnection {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites = vec![suite];
        let version = suite.version();
        let config = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap()
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const SUITES: [SupportedCipherSuite; 6] = [
    suite::TLS13_AES_128_GCM_SHA256,
    suite::TLS13_AES_256_GCM_SHA384,
    suite::TLS13_CHACHA20_POLY1305_SHA256,
    suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
];

fn from_client(client: &mut ClientConnection) -> Vec<u8> {
    let mut bytes = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut bytes).unwrap();
    }
    bytes
}

/// Hands `bytes` to the client; returns the plaintext it read from them.
fn to_client(client: &mut ClientConnection, bytes: &[u8]) -> Vec<u8> {
    let mut rest = bytes;
    let mut plain = Vec::new();
    while !rest.is_empty() {
        client.read_tls(&mut rest).unwrap();
        client.process_new_packets().unwrap();
        plain.extend(client_reads(client));
    }
    plain
}

fn client_reads(client: &mut ClientConnection) -> Vec<u8> {
    let mut plain = Vec::new();
    match client.reader().read_to_end(&mut plain) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(e) => panic!("client read: {e}"),
    }
    plain
}

/// Runs the handshake, the client's bytes fed `chunk` at a time; the client writes `early`
/// right after its Finished. Returns the server's records and what it opened with them.
fn handshake(
    client: &mut ClientConnection,
    certs: Arc<Certificates>,
    chunk: usize,
    early: &[u8],
) -> (Records, Vec<u8>) {
    let mut server = Handshake::new(server_config(certs)).unwrap();
    for _ in 0..20 {
        if !client.is_handshaking() && !early.is_empty() {
            client.writer().write_all(early).unwrap();
        }
        let bytes = from_client(client);
        let mut out = BytesMut::new();
        let mut pieces = bytes.chunks(chunk.max(1));
        for piece in pieces.by_ref() {
            if let Progress::Done(established) = server.feed(piece, &mut out).unwrap() {
                assert!(to_client(client, &out).is_empty());
                let (mut records, mut plain) = (established.records, established.plain);
                // What came after the Finished in the same read goes to the records.
                let rest: Vec<u8> = pieces.flatten().copied().collect();
                plain.extend(server_reads(&mut records, &rest, chunk).0);
                return (records, plain);
            }
        }
        assert!(to_client(client, &out).is_empty());
    }
    panic!("the handshake did not finish");
}

/// Opens what the client sent, as the reactor does, chunk by chunk.
fn server_reads(records: &mut Records, bytes: &[u8], chunk: usize) -> (Vec<u8>, BytesMut) {
    let mut plain = Vec::new();
    let mut reply = BytesMut::new();
    for piece in bytes.chunks(chunk.max(1)) {
        let mut piece = piece.to_vec();
        let opened = records.open(&mut piece, &mut reply).unwrap();
        match opened.plain {
            Plain::InPlace(n) => plain.extend_from_slice(&piece[..n]),
            Plain::Joined(joined) => plain.extend_from_slice(&joined),
        }
    }
    (plain, reply)
}

#[test]
fn every_suite_carries_data_both_ways() {
    let ca = TestCa::new("suites");
    for suite in SUITES {
        let mut client = ca.client(suite);
        let (mut records, early) = handshake(&mut client, ca.certificates(), usize::MAX, b"");
        assert!(early.is_empty());
        let expected = if suite.version() == &rustls::version::TLS13 {
            Version::Tls13
        } else {
            Version::Tls12
        };
        assert_eq!(records.version(), expected, "{suite:?}");
        client.writer().write_all(b"hello server").unwrap();
        let (plain, reply) = server_reads(&mut records, &from_client(&mut client), usize::MAX);
        assert_eq!(plain, b"hello server", "{suite:?}");
        assert!(reply.is_empty());
        let mut sealed = BytesMut::new();
        records.seal([&b"hello "[..], b"client"], &mut sealed).unwrap();
        assert_eq!(to_client(&mut client, &sealed), b"hello client", "{suite:?}");
    }
}

#[test]
fn bytes_split_anyhow_open_the_same() {
    let ca = TestCa::new("split");
    for suite in [SUITES[0], SUITES[3]] {
        for chunk in [1, 3, 7, 100] {
            let mut client = ca.client(suite);
            let (mut records, _) = handshake(&mut client, ca.certificates(), chunk, b"");
            let message: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
            client.writer().write_all(&message).unwrap();
            client.writer().write_all(b"and more").unwrap();
            let (plain, _) = server_reads(&mut records, &from_client(&mut client), chunk);
            assert_eq!(plain.len(), message.len() + 8, "{suite:?} by {chunk}");
            assert_eq!(&plain[..message.len()], &message[..]);
            assert_eq!(records.held(), 0, "no unfinished record is kept");
        }
    }
}

#[test]
fn data_right_after_the_finished_is_not_lost() {
    let ca = TestCa::new("early");
    for suite in [SUITES[0], SUITES[3]] {
        for chunk in [1, 5, usize::MAX] {
            let mut client = ca.client(suite);
            let (_, plain) =
                handshake(&mut client, ca.certificates(), chunk, b"GET / HTTP/1.1\r\n");
            // TLS 1.2's client waits for the server's Finished before its data; 1.3's does
            // not, and its first request comes with its Finished.
            if suite.version() == &rustls::version::TLS13 {
                assert_eq!(plain, b"GET / HTTP/1.1\r\n", "{suite:?} by {chunk}");
            }
        }
    }
}

#[test]
fn a_large_write_is_cut_into_records() {
    let ca = TestCa::new("large");
    let mut client = ca.client(SUITES[0]);
    let (mut records, _) = handshake(&mut client, ca.certificates(), usize::MAX, b"");
    let big = vec![7u8; 50_000];
    let mut sealed = BytesMut::new();
    records.seal([&big[..10], &big[10..]], &mut sealed).unwrap();
    // 4 records of at most 16 KiB, 22 bytes of overhead each.
    assert_eq!(sealed.len(), 50_000 + 4 * 22);
    assert_eq!(to_client(&mut client, &sealed), big);
}

#[test]
fn close_notify_is_read_and_sent() {
    let ca = TestCa::new("close");
    for suite in [SUITES[0], SUITES[3]] {
        let mut client = ca.client(suite);
        let (mut records, _) = handshake(&mut client, ca.certificates(), usize::MAX, b"");
        client.writer().write_all(b"bye").unwrap();
        client.send_close_notify();
        let mut bytes = from_client(&mut client);
        let mut reply = BytesMut::new();
        let opened = records.open(&mut bytes, &mut reply).unwrap();
        assert_eq!(opened.plain, Plain::InPlace(3));
        assert!(opened.peer_closed);
        assert_eq!(&bytes[..3], b"bye");
        let mut sealed = BytesMut::new();
        records.seal_close_notify(&mut sealed).unwrap();
        client.read_tls(&mut &sealed[..]).unwrap();
        let state = client.process_new_packets().unwrap();
        assert!(state.peer_has_closed(), "{suite:?}");
    }
}

#[test]
fn the_clients_key_update_is_followed_and_answered() {
    let ca = TestCa::new("keyupdate");
    for suite in [SUITES[0], SUITES[1], SUITES[2]] {
        let mut client = ca.client(suite);
        let (mut records, _) = handshake(&mut client, ca.certificates(), usize::MAX, b"");
        // rustls's client sends KeyUpdate(update_requested) and switches its own keys.
        client.refresh_traffic_keys().unwrap();
        client.writer().write_all(b"after the update").unwrap();
        let (plain, reply) = server_reads(&mut records, &from_client(&mut client), usize::MAX);
        assert_eq!(plain, b"after the update", "{suite:?}");
        assert!(!reply.is_empty(), "the server answers with its own KeyUpdate");
        assert!(to_client(&mut client, &reply).is_empty());
        let mut sealed = BytesMut::new();
        records.seal([&b"new keys"[..]], &mut sealed).unwrap();
        assert_eq!(to_client(&mut client, &sealed), b"new keys", "{suite:?}");
    }
}

#[test]
fn the_server_updates_its_keys_before_their_limit() {
    let ca = TestCa::new("limit");
    let mut client = ca.client(SUITES[0]);
    let (mut records, _) = handshake(&mut client, ca.certificates(), usize::MAX, b"");
    // Sealing 2^23 records takes a while: start one short of the limit (the client, which
    // only sees the AEAD fail on a wrong number, is moved by the same records).
    let mut sealed = BytesMut::new();
    records.seal([&b"under the first keys"[..]], &mut sealed).unwrap();
    assert_eq!(to_client(&mut client, &sealed), b"under the first keys");
    records.set_tx_seq(KEY_UPDATE_AT);
    let mut sealed = BytesMut::new();
    records.seal([&b"x"[..]], &mut sealed).unwrap();
    // A KeyUpdate record (sealed under the old keys) came first, then the data under the new.
    assert_eq!(sealed.len(), 2 * 22 + 5 + 1, "a KeyUpdate record and a data record");
    // A TLS 1.2 connection ends at the limit instead.
    let mut client = ca.client(SUITES[3]);
    let (mut records, _) = handshake(&mut client, ca.certificates(), usize::MAX, b"");
    records.set_tx_seq(KEY_UPDATE_AT);
    let mut sealed = BytesMut::new();
    assert!(matches!(records.seal([&b"x"[..]], &mut sealed), Err(TlsError::KeyLimit)));
}

#[test]
fn a_tampered_record_ends_the_connection() {
    let ca = TestCa::new("tamper");
    for suite in [SUITES[0], SUITES[3], SUITES[5]] {
        let mut client = ca.client(suite);
        let (mut records, _) = handshake(&mut client, ca.certificates(), usize::MAX, b"");
        client.writer().write_all(b"hello").unwrap();
        let mut bytes = from_client(&mut client);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let result = records.open(&mut bytes, &mut BytesMut::new());
        assert!(matches!(result, Err(TlsError::Decrypt)), "{suite:?}: {result:?}");
    }
}

#[test]
fn garbage_instead_of_a_client_hello_is_refused() {
    let ca = TestCa::new("garbage");
    let mut server = Handshake::new(server_config(ca.certificates())).unwrap();
    let result = server.feed(b"\x16\x03\x01\x00\x05hello", &mut BytesMut::new());
    assert!(matches!(result, Err(TlsError::Handshake(_))), "{result:?}");
}

#[test]
fn a_reload_serves_the_new_chain_and_a_bad_one_keeps_the_old() {
    let ca = TestCa::new("reload");
    let certs = ca.certificates();
    let before = certs.chain();
    let other = TestCa::new("reload-other");
    std::fs::copy(other.dir.join("cert.pem"), ca.dir.join("cert.pem")).unwrap();
    std::fs::copy(other.dir.join("key.pem"), ca.dir.join("key.pem")).unwrap();
    certs.reload().unwrap();
    assert_ne!(certs.chain(), before);
    let reloaded = certs.chain();
    std::fs::write(ca.dir.join("key.pem"), "not a key").unwrap();
    let error = certs.reload().unwrap_err();
    assert!(error.to_string().contains("key.pem"), "{error}");
    assert_eq!(certs.chain(), reloaded);
    // A key that is not the certificate's is refused, naming both.
    std::fs::copy(TestCa::new("reload-third").dir.join("key.pem"), ca.dir.join("key.pem")).unwrap();
    let error = certs.reload().unwrap_err().to_string();
    assert!(error.contains("does not match the certificate"), "{error}");
}

#[test]
fn a_missing_file_is_named() {
    let missing = std::path::Path::new("/nonexistent/cert.pem");
    let error = Certificates::load(missing, missing).unwrap_err().to_string();
    assert!(error.starts_with("/nonexistent/cert.pem: "), "{error}");
}

#[test]
fn open_records_are_small() {
    // What an idle TLS connection keeps (DESIGN §5's budget): two directions' keys, IVs,
    // sequence numbers and secrets, and an empty Vec.
    let size = std::mem::size_of::<Records>();
    assert!(size <= 256, "Records is {size} bytes");
}

//! Heap held per idle TLS connection on the server side, two ways, in one process and one run:
//!
//! - **rustls on its defaults**: a buffered `rustls::ServerConnection` (what tokio-rustls and
//!   most Rust servers keep per connection) with `ServerConfig`'s defaults;
//! - **shaddock's path**: rustls's unbuffered handshake ([`shaddock::tls::Handshake`]), then only
//!   the connection's [`Records`] (its traffic keys), as a reactor keeps it.
//!
//! Each connection is made in memory against rustls's client, completes its handshake, and
//! moves one 100-byte message each way; then its client is dropped and the server side kept. A
//! counting allocator gives the live heap before and after, so the figure is what the server
//! side holds once idle, divided by the number of connections (fixed costs such as the session
//! caches, bounded at 256 entries, are spread over them).
//!
//! ```sh
//! cargo run --release --example tls_idle_footprint -- 5000
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};

use bytes::BytesMut;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use shaddock::tls::{Certificates, Handshake, Plain, Progress, Records, server_config};

/// Bytes allocated and not yet freed, all threads.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// A counting allocator needs `unsafe impl GlobalAlloc`; nothing else here is unsafe.
#[allow(unsafe_code)]
// SAFETY: every call is forwarded to `System` with the caller's own arguments, so `System`'s
// guarantees are the caller's; the counter is only arithmetic beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract for `layout`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator (hence `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator with `layout`; the caller upholds the rest.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const MESSAGE: [u8; 100] = [b'x'; 100];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(5000), |a| a.parse())?;
    let dir = std::env::temp_dir().join(format!("shaddock-tls-footprint-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (ca, cert, key) = make_certificates(&dir)?;
    let client = client_config(&ca)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = CertificateDer::pem_file_iter(&cert)?.collect::<Result<Vec<_>, _>>()?;
    let defaults = Arc::new(
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, PrivateKeyDer::from_pem_file(&key)?)?,
    );
    let ours = server_config(Certificates::load(&cert, &key)?);

    let rustls_bytes = held_per_connection(n, || buffered(&defaults, &client).map(Box::new))?;
    let ours_bytes = held_per_connection(n, || unbuffered(&ours, &client))?;
    std::fs::remove_dir_all(&dir)?;
    println!("idle TLS connections, server side, {n} each, heap held per connection:");
    println!("  rustls ServerConnection, defaults   {rustls_bytes:>6} B");
    println!("  shaddock (keys only, Records)       {ours_bytes:>6} B");
    println!(
        "  ratio                               {:.3}",
        ours_bytes as f64 / rustls_bytes as f64
    );
    Ok(())
}

/// Makes `n` connections with `connect`, keeps what it returns, and gives the heap that grew
/// per connection.
fn held_per_connection<T>(
    n: usize,
    mut connect: impl FnMut() -> Result<T, Box<dyn std::error::Error>>,
) -> Result<isize, Box<dyn std::error::Error>> {
    let mut kept = Vec::with_capacity(n);
    // One connection first, so one-time costs (lazy statics, the first cache node) are not
    // counted against the rest.
    drop(connect()?);
    let before = live();
    for _ in 0..n {
        kept.push(connect()?);
    }
    let grew = live() - before;
    drop(kept);
    Ok(grew / n as isize)
}

/// Moves what `from` has to send into `to`.
fn client_to_server(client: &mut ClientConnection) -> Vec<u8> {
    let mut bytes = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut bytes).expect("to a Vec");
    }
    bytes
}

fn into_client(client: &mut ClientConnection, mut bytes: &[u8]) -> Result<(), rustls::Error> {
    while !bytes.is_empty() {
        client.read_tls(&mut bytes).expect("from a slice");
        client.process_new_packets()?;
    }
    Ok(())
}

/// A buffered ServerConnection after a handshake and one message each way.
fn buffered(
    config: &Arc<ServerConfig>,
    client_config: &Arc<ClientConfig>,
) -> Result<ServerConnection, Box<dyn std::error::Error>> {
    let mut server = ServerConnection::new(Arc::clone(config))?;
    let mut client = ClientConnection::new(Arc::clone(client_config), "localhost".try_into()?)?;
    client.writer().write_all(&MESSAGE)?;
    let mut received = Vec::new();
    while received.len() < MESSAGE.len() || client.is_handshaking() {
        let bytes = client_to_server(&mut client);
        server.read_tls(&mut bytes.as_slice())?;
        server.process_new_packets()?;
        let mut chunk = [0u8; 256];
        while let Ok(n) = server.reader().read(&mut chunk) {
            if n == 0 {
                break;
            }
            received.extend_from_slice(&chunk[..n]);
        }
        let mut out = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut out)?;
        }
        into_client(&mut client, &out)?;
    }
    server.writer().write_all(&MESSAGE)?;
    let mut out = Vec::new();
    while server.wants_write() {
        server.write_tls(&mut out)?;
    }
    into_client(&mut client, &out)?;
    let mut echoed = [0u8; 100];
    client.reader().read_exact(&mut echoed)?;
    Ok(server)
}

/// shaddock's path: the unbuffered handshake, then only the records, after one message each way.
fn unbuffered(
    config: &Arc<ServerConfig>,
    client_config: &Arc<ClientConfig>,
) -> Result<Box<Records>, Box<dyn std::error::Error>> {
    let mut handshake = Handshake::new(Arc::clone(config))?;
    let mut client = ClientConnection::new(Arc::clone(client_config), "localhost".try_into()?)?;
    client.writer().write_all(&MESSAGE)?;
    let mut out = BytesMut::new();
    let (mut records, mut plain) = loop {
        let bytes = client_to_server(&mut client);
        let progress = handshake.feed(&bytes, &mut out)?;
        into_client(&mut client, &out)?;
        out.clear();
        if let Progress::Done(established) = progress {
            let established = *established;
            break (Box::new(established.records), established.plain);
        }
    };
    drop(handshake);
    while plain.len() < MESSAGE.len() {
        let mut bytes = client_to_server(&mut client);
        let opened = records.open(&mut bytes, &mut out)?;
        match opened.plain {
            Plain::InPlace(n) => plain.extend_from_slice(&bytes[..n]),
            Plain::Joined(joined) => plain.extend_from_slice(&joined),
        }
    }
    records.seal([&MESSAGE[..]], &mut out)?;
    into_client(&mut client, &out)?;
    let mut echoed = [0u8; 100];
    client.reader().read_exact(&mut echoed)?;
    Ok(records)
}

/// A CA and a certificate for `localhost` it signed, as PEM files in `dir`.
fn make_certificates(
    dir: &std::path::Path,
) -> Result<(CertificateDer<'static>, std::path::PathBuf, std::path::PathBuf), rcgen::Error> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate()?)?;
    let key = rcgen::KeyPair::generate()?;
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?.signed_by(&key, &ca)?;
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, leaf.pem() + &ca.pem()).expect("cert.pem");
    std::fs::write(&key_path, key.serialize_pem()).expect("key.pem");
    Ok((ca.der().clone(), cert_path, key_path))
}

fn client_config(ca: &CertificateDer<'static>) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

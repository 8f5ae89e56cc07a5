//! conn-flood `--tls` end to end, before the server speaks TLS itself: every connection goes
//! through a TLS-terminating proxy (rustls's server, one mio loop, here) to an in-process
//! shaddock server's plain client port. Pomelo over TCP and WebSocket, MQTT, Socket.IO 4 and
//! 0.9, both TLS versions, worker processes, and a CA that does not match. Counts, not timings.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use clap::Parser;
use common::{BOUNDS, SECRET, SMALL_PHASES, WORKERS, run_binary, server};
use conn_flood::Options;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use rustls::{ServerConfig, ServerConnection};
use shaddock::Server;
use test_ca::TestCa;

mod common;
#[path = "../src/tls/test_ca.rs"]
mod test_ca;

const LISTENER: Token = Token(usize::MAX);

/// A TLS-terminating proxy to `backend`, on a thread of its own until dropped.
struct Proxy {
    addr: SocketAddr,
    /// Handshakes completed.
    handshakes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    fn start(backend: SocketAddr, config: Arc<ServerConfig>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let (handshakes, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (count, halt) = (handshakes.clone(), stop.clone());
        let thread =
            std::thread::spawn(move || proxy_loop(listener, backend, &config, &count, &halt));
        Proxy { addr, handshakes, stop, thread: Some(thread) }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One proxied connection: the client's TLS socket, the server's plain one.
struct Pair {
    tls_socket: TcpStream,
    tls: ServerConnection,
    counted: bool,
    plain: TcpStream,
    to_plain: Vec<u8>,
}

impl Pair {
    /// Moves everything either side has (both sockets edge-triggered: read until drained);
    /// an error or either side's end closes the pair.
    fn pump(&mut self, handshakes: &AtomicU64) -> io::Result<()> {
        loop {
            match self.tls.read_tls(&mut self.tls_socket) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {
                    let state = self.tls.process_new_packets().map_err(io::Error::other);
                    let state = match state {
                        Ok(state) => state,
                        Err(e) => {
                            let _ = self.tls.write_tls(&mut self.tls_socket);
                            return Err(e);
                        }
                    };
                    let mut plain = vec![0; state.plaintext_bytes_to_read()];
                    self.tls.reader().read_exact(&mut plain)?;
                    self.to_plain.extend_from_slice(&plain);
                    if state.peer_has_closed() {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if !self.counted && !self.tls.is_handshaking() {
            self.counted = true;
            handshakes.fetch_add(1, Ordering::Relaxed);
        }
        let mut ended = false;
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.plain.read(&mut buf) {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(n) => self.tls.writer().write_all(&buf[..n])?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        while !self.to_plain.is_empty() {
            match self.plain.write(&self.to_plain) {
                Ok(n) => drop(self.to_plain.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tls_socket) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if ended { Err(io::ErrorKind::UnexpectedEof.into()) } else { Ok(()) }
    }
}

fn proxy_loop(
    mut listener: TcpListener,
    backend: SocketAddr,
    config: &Arc<ServerConfig>,
    handshakes: &AtomicU64,
    stop: &AtomicBool,
) {
    let mut poll = Poll::new().unwrap();
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE).unwrap();
    let mut pairs: HashMap<usize, Pair> = HashMap::new();
    let mut next = 0;
    let mut events = Events::with_capacity(1024);
    while !stop.load(Ordering::Relaxed) {
        poll.poll(&mut events, Some(Duration::from_millis(20))).unwrap();
        for event in &events {
            if event.token() == LISTENER {
                while let Ok((mut tls_socket, _)) = listener.accept() {
                    let plain = std::net::TcpStream::connect(backend).unwrap();
                    plain.set_nonblocking(true).unwrap();
                    plain.set_nodelay(true).unwrap();
                    tls_socket.set_nodelay(true).unwrap();
                    let mut plain = TcpStream::from_std(plain);
                    let both = Interest::READABLE | Interest::WRITABLE;
                    poll.registry().register(&mut tls_socket, Token(next * 2), both).unwrap();
                    poll.registry().register(&mut plain, Token(next * 2 + 1), both).unwrap();
                    let mut tls = ServerConnection::new(config.clone()).unwrap();
                    tls.set_buffer_limit(None);
                    let pair =
                        Pair { tls_socket, tls, counted: false, plain, to_plain: Vec::new() };
                    pairs.insert(next, pair);
                    next += 1;
                }
                continue;
            }
            let id = event.token().0 / 2;
            let Some(pair) = pairs.get_mut(&id) else {
                continue;
            };
            if pair.pump(handshakes).is_err() {
                let mut pair = pairs.remove(&id).unwrap();
                let _ = poll.registry().deregister(&mut pair.tls_socket);
                let _ = poll.registry().deregister(&mut pair.plain);
            }
        }
    }
}

/// The options of a small run through `proxy` to `server`, trusting `ca`, with `args` after
/// them; the publisher goes to the server's plain port.
fn options(server: &Server, proxy: &Proxy, ca: &TestCa, args: &[&str]) -> Options {
    let (target, plain) = (proxy.addr.to_string(), server.client_addr().to_string());
    let app = format!("demo={SECRET}");
    let ca = ca.ca_pem().display().to_string();
    let base = ["--target", &target, "--publisher-target", &plain, "--app", &app];
    let base = base.into_iter().chain(["--tls", "--tls-ca", &ca]);
    let all = std::iter::once("conn-flood").chain(base).chain(BOUNDS.iter().copied());
    let all = all.chain(args.iter().copied());
    Options::try_parse_from(all).unwrap()
}

#[test]
fn pomelo_over_tls_through_every_phase() {
    let server = server();
    let ca = TestCa::new("pomelo");
    let proxy = Proxy::start(server.client_addr(), ca.server_config(rustls::DEFAULT_VERSIONS));
    let args = [&["-n", "100", "--transport", "mix"][..], SMALL_PHASES].concat();
    let opts = options(&server, &proxy, &ca, &args);
    let s = conn_flood::run(&opts, None).expect("the run completes");
    assert_eq!(s.transport, "mix:50% ws tls");
    let connect = s.connect.as_ref().unwrap();
    assert_eq!((connect.entered, connect.failed), (100, 0), "{:?}", connect.errors);
    let tls = connect.tls.as_ref().expect("the handshakes are reported");
    assert_eq!((tls.handshakes, tls.handshake_latency.count), (100, 100));
    assert!(tls.handshakes_per_sec > 0.0 && tls.secs <= connect.secs, "{tls:?} {connect:?}");
    assert_eq!(tls.negotiated.len(), 1, "{:?}", tls.negotiated);
    assert!(tls.negotiated.keys().all(|k| k.starts_with("TLSv1_3 ")), "{:?}", tls.negotiated);
    let idle = s.idle.as_ref().unwrap();
    assert_eq!((idle.held, idle.dropped), (100, 0), "heartbeats through TLS keep everyone in");
    let b = s.broadcast.as_ref().unwrap();
    assert_eq!(b.recipients, Some(100.0), "{:?}", b.refusals);
    assert_eq!((b.stayed_up, b.deliveries, b.lost, b.complete_pushes), (100, 300, 0, 3));
    for step in &s.sustained.as_ref().unwrap().steps {
        let o = &step.outcome;
        assert_eq!((o.recipients, o.lost), (100, 0), "{step:?}");
        assert_eq!(o.deliveries, o.sent * o.recipients, "{step:?}");
    }
    let churn = s.churn.as_ref().unwrap();
    assert!(churn.churned > 0 && churn.lost == 0, "{churn:?}");
    assert_eq!(churn.reconnect_failures, 0, "reconnects handshake again: {churn:?}");
    assert!(proxy.handshakes.load(Ordering::Relaxed) >= 100 + churn.reconnects);
    assert!(s.table().contains("TLS handshakes per second"), "{}", s.table());
    let json: serde_json::Value = serde_json::from_str(&s.json_line()).unwrap();
    assert_eq!(json["connect"]["tls"]["handshakes"], 100);
    server.shutdown().unwrap();
}

#[test]
fn mqtt_and_socket_io_over_both_versions() {
    let server = server();
    let ca = TestCa::new("others");
    let proxy = Proxy::start(server.client_addr(), ca.server_config(rustls::DEFAULT_VERSIONS));
    let phases =
        ["-n", "50", "--phases", "connect,broadcast", "--pushes", "3", "--push-gap-ms", "0"];
    for (what, args, version, per_client) in [
        ("mqtt 3.1.1", &["--proto", "mqtt"][..], "TLSv1_2", 1),
        ("mqtt 5 qos 1", &["--proto", "mqtt", "--mqtt-version", "5", "--qos", "1"], "TLSv1_3", 1),
        ("socket.io 4", &["--proto", "socketio"], "TLSv1_2", 1),
        ("socket.io 0.9", &["--proto", "socketio", "--sio-version", "0.9"], "TLSv1_3", 2),
    ] {
        let forced = if version == "TLSv1_2" { "1.2" } else { "1.3" };
        let args: Vec<&str> = [&phases[..], args, &["--tls-version", forced]].concat();
        let s = conn_flood::run(&options(&server, &proxy, &ca, &args), None)
            .unwrap_or_else(|e| panic!("{what}: {e:#}"));
        assert!(s.transport.ends_with(&format!(" tls{forced}")), "{what}: {}", s.transport);
        let connect = s.connect.as_ref().unwrap();
        assert_eq!((connect.entered, connect.failed), (50, 0), "{what}: {:?}", connect.errors);
        let tls = connect.tls.as_ref().unwrap();
        // socket.io 0.9 takes a connection for its handshake and one for its WebSocket.
        assert_eq!(tls.handshakes, 50 * per_client, "{what}");
        assert!(tls.negotiated.keys().all(|k| k.starts_with(version)), "{what}: {tls:?}");
        let b = s.broadcast.as_ref().unwrap();
        assert!(b.refusals.is_empty(), "{what}: {:?}", b.refusals);
        assert_eq!((b.stayed_up, b.deliveries, b.lost), (50, 150, 0), "{what}");
    }
    server.shutdown().unwrap();
}

#[test]
fn worker_processes_carry_the_tls_settings() {
    let server = server();
    let ca = TestCa::new("workers");
    let proxy = Proxy::start(server.client_addr(), ca.server_config(rustls::DEFAULT_VERSIONS));
    let (target, plain) = (proxy.addr.to_string(), server.client_addr().to_string());
    let (app, ca) = (format!("demo={SECRET}"), ca.ca_pem().display().to_string());
    let tls = ["--tls", "--tls-ca", &ca, "--tls-name", "localhost", "-n", "100"];
    let targets = ["--target", &target, "--publisher-target", &plain, "--app", &app];
    let (json, stdout) = run_binary(&[&targets[..], &tls, WORKERS].concat());
    assert_eq!((json["procs"].as_u64(), json["connect"]["entered"].as_u64()), (Some(2), Some(100)));
    assert_eq!(json["connect"]["tls"]["handshakes"], 100);
    assert_eq!(json["broadcast"]["deliveries"], 200);
    assert!(stdout.contains("connect → TLS established"), "{stdout}");
    server.shutdown().unwrap();
}

#[test]
fn a_certificate_from_another_ca_fails_every_connection_and_says_why() {
    let server = server();
    let (ca, other) = (TestCa::new("right"), TestCa::new("wrong"));
    let proxy = Proxy::start(server.client_addr(), ca.server_config(rustls::DEFAULT_VERSIONS));
    let args =
        ["-n", "5", "--phases", "connect", "--connect-attempts", "1", "--connect-secs", "10"];
    let e = conn_flood::run(&options(&server, &proxy, &other, &args), None).unwrap_err();
    let e = format!("{e:#}");
    assert!(e.contains("5 × connect: tls: invalid peer certificate"), "{e}");
    assert_eq!(proxy.handshakes.load(Ordering::Relaxed), 0);
    server.shutdown().unwrap();
}

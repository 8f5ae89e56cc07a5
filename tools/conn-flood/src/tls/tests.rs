//! The client session against rustls's server, in memory (no sockets): both versions, records
//! split at every byte, bursts larger than every buffer, a socket that refuses writes,
//! close_notify both ways and the socket's end, a KeyUpdate from the server, and the refusals
//! (unknown CA, wrong name, no common version, bad CA files).

use std::io::{self, Read, Write};

use rustls::ServerConnection;

use super::test_ca::TestCa;
use super::*;

fn spec(ca: &TestCa, name: &str, version: Option<TlsVersion>) -> TlsSpec {
    TlsSpec { ca: ca.ca_pem(), name: name.into(), version }
}

fn session(ca: &TestCa, version: Option<TlsVersion>) -> Tls {
    Client::new(&spec(ca, "localhost", version)).unwrap().connect().unwrap()
}

fn tls_server(ca: &TestCa, versions: &[&'static SupportedProtocolVersion]) -> ServerConnection {
    let mut server = ServerConnection::new(ca.server_config(versions)).unwrap();
    server.set_buffer_limit(None);
    server
}

/// The client's end of an in-memory socket: reads what the server sent (`WouldBlock` when
/// there is nothing, `Ok(0)` once `eof`), at most `read_max` bytes a read; writes take at most
/// `room` bytes in all (then `WouldBlock`).
struct Socket {
    inbox: Vec<u8>,
    outbox: Vec<u8>,
    eof: bool,
    read_max: usize,
    room: usize,
}

impl Socket {
    fn new() -> Socket {
        Socket {
            inbox: Vec::new(),
            outbox: Vec::new(),
            eof: false,
            read_max: usize::MAX,
            room: usize::MAX,
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inbox.is_empty() {
            return if self.eof { Ok(0) } else { Err(io::ErrorKind::WouldBlock.into()) };
        }
        let n = buf.len().min(self.inbox.len()).min(self.read_max);
        buf[..n].copy_from_slice(&self.inbox[..n]);
        self.inbox.drain(..n);
        Ok(n)
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        self.outbox.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The server reads everything the client wrote; returns the plaintext.
fn to_server(socket: &mut Socket, server: &mut ServerConnection) -> Vec<u8> {
    let mut input = &socket.outbox[..];
    let mut plain = Vec::new();
    while !input.is_empty() {
        server.read_tls(&mut input).unwrap();
        let state = server.process_new_packets().unwrap();
        let mut chunk = vec![0; state.plaintext_bytes_to_read()];
        server.reader().read_exact(&mut chunk).unwrap();
        plain.extend_from_slice(&chunk);
    }
    socket.outbox.clear();
    plain
}

/// Everything the server has to send, into the client's inbox.
fn from_server(server: &mut ServerConnection, socket: &mut Socket) {
    while server.wants_write() {
        server.write_tls(&mut socket.inbox).unwrap();
    }
}

/// Runs the handshake to its end on both sides.
fn shake(client: &mut Tls, socket: &mut Socket, server: &mut ServerConnection) -> io::Result<()> {
    let mut cipher = vec![0; 64 * 1024];
    for _ in 0..10 {
        let done = client.handshake(socket, &mut cipher)?;
        to_server(socket, server);
        from_server(server, socket);
        if done {
            assert!(!server.is_handshaking());
            return Ok(());
        }
    }
    panic!("the handshake did not end");
}

/// Reads until `WouldBlock`, the end, or a short read unless the session holds more (as the
/// loop does); checks that a short read comes only with the socket drained, when the socket's
/// reads are short only then.
fn read_all(client: &mut Tls, socket: &mut Socket, cipher: usize, out: usize) -> (Vec<u8>, bool) {
    let (mut cipher, mut out) = (vec![0; cipher], vec![0; out]);
    let mut got = Vec::new();
    loop {
        match client.read(socket, &mut cipher, &mut out) {
            Ok(0) => return (got, true),
            Ok(n) => {
                got.extend_from_slice(&out[..n]);
                if n < out.len() && !client.buffered() {
                    if socket.read_max == usize::MAX {
                        assert!(socket.inbox.is_empty(), "a short read with bytes left");
                    }
                    return (got, false);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(socket.read_max < usize::MAX || socket.inbox.is_empty());
                assert!(!client.buffered());
                return (got, false);
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn connected(ca: &TestCa, version: Option<TlsVersion>) -> (Tls, Socket, ServerConnection) {
    let (mut client, mut socket) = (session(ca, version), Socket::new());
    let mut server = tls_server(ca, rustls::DEFAULT_VERSIONS);
    shake(&mut client, &mut socket, &mut server).unwrap();
    (client, socket, server)
}

#[test]
fn both_versions_carry_data_both_ways() {
    let ca = TestCa::new("both");
    for (version, name) in
        [(None, "TLSv1_3"), (Some(TlsVersion::V13), "TLSv1_3"), (Some(TlsVersion::V12), "TLSv1_2")]
    {
        let (mut client, mut socket, mut server) = connected(&ca, version);
        assert!(client.negotiated().unwrap().starts_with(name), "{:?}", client.negotiated());
        // TLS 1.3's session tickets are records without plaintext.
        assert_eq!(read_all(&mut client, &mut socket, 4096, 4096), (Vec::new(), false));
        client.send(&mut socket, b"hello").unwrap();
        assert!(!client.wants_write());
        assert_eq!(to_server(&mut socket, &mut server), b"hello");
        server.writer().write_all(b"world").unwrap();
        from_server(&mut server, &mut socket);
        assert_eq!(read_all(&mut client, &mut socket, 4096, 4096), (b"world".to_vec(), false));
    }
}

#[test]
fn records_split_at_every_byte_come_out_whole() {
    let ca = TestCa::new("split");
    let pieces = [&b"abc"[..], &[7u8; 300], b"z"];
    let want = pieces.concat();
    let mut cut = 0;
    loop {
        // A session per cut: records carry sequence numbers.
        let (mut client, mut socket, mut server) = connected(&ca, None);
        read_all(&mut client, &mut socket, 4096, 4096);
        let mut wire = Socket::new();
        for piece in pieces {
            server.writer().write_all(piece).unwrap();
            from_server(&mut server, &mut wire);
        }
        let wire = wire.inbox;
        socket.inbox.extend_from_slice(&wire[..cut]);
        let (mut got, end) = read_all(&mut client, &mut socket, 4096, 4096);
        assert!(!end);
        socket.inbox.extend_from_slice(&wire[cut..]);
        got.extend(read_all(&mut client, &mut socket, 4096, 4096).0);
        assert_eq!(got, want, "cut {cut}");
        if cut == wire.len() {
            break;
        }
        cut += 1;
    }
}

#[test]
fn a_burst_larger_than_every_buffer_arrives_whole_and_in_order() {
    let ca = TestCa::new("burst");
    let want: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    for (cipher, out, read_max) in
        [(4096, 1000, usize::MAX), (64 * 1024, 256 * 1024, 10_000), (100, 7, 100)]
    {
        let (mut client, mut socket, mut server) = connected(&ca, None);
        read_all(&mut client, &mut socket, 4096, 4096);
        for chunk in want.chunks(5_000) {
            server.writer().write_all(chunk).unwrap();
        }
        from_server(&mut server, &mut socket);
        socket.read_max = read_max;
        let mut got = Vec::new();
        // A read at the socket's pace: the loop reads again on the next event.
        while got.len() < want.len() {
            let (more, end) = read_all(&mut client, &mut socket, cipher, out);
            assert!(!end && (!more.is_empty() || got.len() == want.len()));
            got.extend(more);
        }
        assert_eq!(got, want, "cipher {cipher}, out {out}");
        assert!(
            !client.buffered() && client.stash.capacity() == 0,
            "an idle session holds nothing"
        );
    }
}

#[test]
fn what_the_socket_refuses_waits_in_rustls() {
    let ca = TestCa::new("refuse");
    let (mut client, mut socket, mut server) = connected(&ca, None);
    let big: Vec<u8> = (0..50_000u32).map(|i| i as u8).collect();
    socket.room = 100;
    client.send(&mut socket, &big).unwrap();
    client.send(&mut socket, b"tail").unwrap();
    assert!(client.wants_write());
    assert_eq!(socket.outbox.len(), 100);
    socket.room = usize::MAX;
    client.flush(&mut socket).unwrap();
    assert!(!client.wants_write());
    assert_eq!(to_server(&mut socket, &mut server), [&big[..], b"tail"].concat());
}

#[test]
fn close_notify_and_the_sockets_end_end_the_stream() {
    let ca = TestCa::new("close");
    let (mut client, mut socket, mut server) = connected(&ca, None);
    server.writer().write_all(b"bye").unwrap();
    server.send_close_notify();
    from_server(&mut server, &mut socket);
    assert_eq!(read_all(&mut client, &mut socket, 4096, 4096), (b"bye".to_vec(), true));

    // The client's own close says so.
    let (mut client, mut socket, mut server) = connected(&ca, None);
    client.close(&mut socket);
    to_server(&mut socket, &mut server);
    assert!(server.process_new_packets().unwrap().peer_has_closed());

    let (mut client, mut socket, _server) = connected(&ca, None);
    read_all(&mut client, &mut socket, 4096, 4096);
    socket.eof = true;
    assert_eq!(read_all(&mut client, &mut socket, 4096, 4096), (Vec::new(), true));

    let (mut client, mut socket) = (session(&ca, None), Socket::new());
    socket.eof = true;
    let e = client.handshake(&mut socket, &mut [0; 4096]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
}

#[test]
fn follows_the_servers_key_update() {
    let ca = TestCa::new("keyupdate");
    let (mut client, mut socket, mut server) = connected(&ca, Some(TlsVersion::V13));
    read_all(&mut client, &mut socket, 4096, 4096);
    server.refresh_traffic_keys().unwrap();
    server.writer().write_all(b"after").unwrap();
    from_server(&mut server, &mut socket);
    assert_eq!(read_all(&mut client, &mut socket, 4096, 4096).0, b"after");
    // rustls sends its own KeyUpdate (the answer asked for) in front of what it sends next.
    client.send(&mut socket, b"still").unwrap();
    assert_eq!(to_server(&mut socket, &mut server), b"still");
    server.writer().write_all(b"and again").unwrap();
    from_server(&mut server, &mut socket);
    assert_eq!(read_all(&mut client, &mut socket, 4096, 4096).0, b"and again");
}

#[test]
fn refuses_an_unknown_ca_a_wrong_name_and_no_common_version() {
    let ca = TestCa::new("refusals");
    let other = TestCa::new("refusals-other");
    let (mut client, mut socket) = (session(&other, None), Socket::new());
    let e = shake(&mut client, &mut socket, &mut tls_server(&ca, rustls::DEFAULT_VERSIONS))
        .unwrap_err();
    // Both CAs have the same name: the signature gives the stranger away.
    assert!(e.to_string().contains("invalid peer certificate"), "{e}");

    let mut client = Client::new(&spec(&ca, "example.com", None)).unwrap().connect().unwrap();
    let mut socket = Socket::new();
    let e = shake(&mut client, &mut socket, &mut tls_server(&ca, rustls::DEFAULT_VERSIONS))
        .unwrap_err();
    assert!(e.to_string().contains("not valid for name"), "{e}");

    // An IP address as the name is checked against the certificate's IP addresses.
    let mut client = Client::new(&spec(&ca, "127.0.0.1", None)).unwrap().connect().unwrap();
    shake(&mut client, &mut Socket::new(), &mut tls_server(&ca, rustls::DEFAULT_VERSIONS)).unwrap();

    let mut client = session(&ca, Some(TlsVersion::V12));
    let mut server = tls_server(&ca, &[&rustls::version::TLS13]);
    let mut socket = Socket::new();
    // The server refuses; the client hears its alert.
    let mut cipher = vec![0; 4096];
    assert!(!client.handshake(&mut socket, &mut cipher).unwrap());
    let mut input = &socket.outbox[..];
    server.read_tls(&mut input).unwrap();
    assert!(server.process_new_packets().is_err());
    from_server(&mut server, &mut socket);
    let e = client.handshake(&mut socket, &mut cipher).unwrap_err();
    assert!(e.to_string().contains("tls: "), "{e}");
}

#[test]
fn ca_files_that_will_not_do_are_named() {
    let ca = TestCa::new("files");
    let missing = TlsSpec { ca: ca.dir.join("missing.pem"), ..spec(&ca, "localhost", None) };
    let e = Client::new(&missing).unwrap_err().to_string();
    assert!(e.contains("missing.pem"), "{e}");
    std::fs::write(ca.dir.join("empty.pem"), "not a certificate\n").unwrap();
    let empty = TlsSpec { ca: ca.dir.join("empty.pem"), ..spec(&ca, "localhost", None) };
    let e = Client::new(&empty).unwrap_err().to_string();
    assert!(e.contains("empty.pem") && e.contains("no certificate"), "{e}");
    assert!(Client::new(&spec(&ca, "not a name!", None)).is_err());
}

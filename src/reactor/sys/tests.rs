//! The contract, checked on every backend this build and kernel have: accept (on each of several
//! listeners), input, send from an offset, wake, close, release (a connection handed over to a
//! second driver, no byte lost); and how `auto` resolves.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;

fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend::Epoll];
    if probe_io_uring().is_ok() {
        backends.push(Backend::IoUring);
    }
    backends
}

/// Waits (bounded) for an event that `want` accepts.
fn wait_for(driver: &mut Driver, want: impl Fn(Event) -> bool) -> Event {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        driver.wait(Duration::from_millis(50)).unwrap();
        while let Some(event) = driver.next_event() {
            if want(event) {
                return event;
            }
        }
    }
    panic!("no such event within 5 s on {:?}", driver.backend());
}

#[test]
fn every_backend_keeps_the_contract() {
    for backend in backends() {
        let (mut driver, waker, addr) = loopback(backend).unwrap();
        assert_eq!(driver.backend(), backend);

        // 1, 2: accept and open.
        let mut client = TcpStream::connect(addr).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let stream = loop {
            wait_for(&mut driver, |e| e == Event::Accept);
            match driver.accept() {
                Ok(stream) => break stream,
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{backend:?}"),
            }
        };
        driver.open(7, 3, &stream).unwrap();

        // 3: bytes arrived, lent, given back.
        client.write_all(b"hello").unwrap();
        let mut got = Vec::new();
        while got.len() < 5 {
            wait_for(&mut driver, |e| e == Event::Input { index: 7, generation: 3 });
            loop {
                match driver.recv(&stream) {
                    Recv::Data(mut buf) => {
                        buf.make_ascii_uppercase(); // decoded in place
                        got.extend_from_slice(&buf);
                        driver.recycle(buf);
                    }
                    Recv::WouldBlock => break,
                    other => panic!("{backend:?}: {other:?}"),
                }
            }
        }
        assert_eq!(got, b"HELLO", "{backend:?}");

        // 6: a vectored send from an offset, and a copy behind it in the same turn (io_uring:
        // in the same send); once handed to the kernel, nothing more until writable.
        let (a, b) = (Bytes::from_static(b"abc"), Bytes::from_static(b"def"));
        assert_eq!(driver.send(7, &stream, &[&a, &b], 1).unwrap(), 5, "{backend:?}");
        assert_eq!(driver.send_copy(7, &stream, b"!").unwrap(), 1, "{backend:?}");
        driver.wait(Duration::ZERO).unwrap(); // hands this turn's sends to the kernel
        if driver.sending(7) {
            assert_eq!(driver.send_copy(7, &stream, b"?").unwrap(), 0, "one send in flight");
            wait_for(&mut driver, |e| e == Event::Writable { index: 7, generation: 3 });
        }
        assert!(!driver.sending(7));
        assert_eq!(driver.send_copy(7, &stream, b"?").unwrap(), 1);
        driver.wait(Duration::ZERO).unwrap();
        let mut out = [0; 7];
        client.read_exact(&mut out).unwrap();
        assert_eq!(&out, b"bcdef!?", "{backend:?}");

        // 8: a wake from another thread.
        std::thread::scope(|s| {
            s.spawn(|| waker.wake().unwrap());
        });
        wait_for(&mut driver, |e| e == Event::Wake);

        // 7: close; the peer sees the end of the stream.
        driver.close(7, stream);
        driver.wait(Duration::ZERO).unwrap();
        while driver.next_event().is_some() {}
        assert_eq!(client.read(&mut out).unwrap(), 0, "{backend:?}");

        // 1: after stop_accepting, accept has nothing.
        driver.stop_accepting();
        let error = driver.accept().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    }
}

/// Accepts until `count` connections were taken (bounded), as the reactor does: on each
/// `Accept`, until `WouldBlock`.
fn accept_n(driver: &mut Driver, count: usize) -> Vec<TcpStream> {
    let mut taken = Vec::new();
    while taken.len() < count {
        wait_for(driver, |e| e == Event::Accept);
        loop {
            match driver.accept() {
                Ok(stream) => taken.push(stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{:?}: accept: {e}", driver.backend()),
            }
        }
    }
    taken
}

#[test]
fn every_backend_accepts_on_each_of_its_listeners() {
    for backend in backends() {
        let loopback = || bind_listeners(([127, 0, 0, 1], 0).into(), 1).unwrap().remove(0);
        let (first, second) = (loopback(), loopback());
        let addrs = [first.local_addr().unwrap(), second.local_addr().unwrap()];
        let (seed, _waker) = seed(backend).unwrap();
        let mut driver = Driver::new(seed, vec![first, second]).unwrap();

        // Each alone, then both at once (several queued on each: every one is taken).
        for (i, addr) in addrs.iter().enumerate() {
            let client = TcpStream::connect(addr).unwrap();
            let taken = accept_n(&mut driver, 1);
            assert_eq!(taken.len(), 1, "{backend:?}: listener {i}");
            assert_eq!(taken[0].peer_addr().unwrap(), client.local_addr().unwrap(), "{backend:?}");
        }
        let clients: Vec<TcpStream> =
            (0..6).map(|i| TcpStream::connect(addrs[i % 2]).unwrap()).collect();
        let taken = accept_n(&mut driver, clients.len());
        let mut peers: Vec<_> = taken.iter().map(|s| s.peer_addr().unwrap()).collect();
        let mut want: Vec<_> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
        peers.sort();
        want.sort();
        assert_eq!(peers, want, "{backend:?}");
        let ports = |port| taken.iter().filter(|s| s.local_addr().unwrap() == port).count();
        assert_eq!((ports(addrs[0]), ports(addrs[1])), (3, 3), "{backend:?}");

        // Both are closed: nothing more, and nobody listens there.
        driver.stop_accepting();
        assert_eq!(driver.accept().unwrap_err().kind(), io::ErrorKind::WouldBlock);
        driver.wait(Duration::ZERO).unwrap();
        while driver.next_event().is_some() {}
        for addr in addrs {
            let refused = TcpStream::connect(addr).unwrap_err();
            assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused, "{backend:?} {addr}");
        }
    }
}

/// The connection an event names, if any.
fn conn_of(event: Event) -> Option<(usize, u32)> {
    match event {
        Event::Input { index, generation }
        | Event::Writable { index, generation }
        | Event::Released { index, generation } => Some((index, generation)),
        Event::Accept | Event::Wake => None,
    }
}

/// Takes the input of one `Input` event, its bytes appended to `got`; true at the end of stream.
fn take_input(driver: &mut Driver, stream: &TcpStream, got: &mut Vec<u8>) -> bool {
    loop {
        match driver.recv(stream) {
            Recv::Data(buf) => {
                got.extend_from_slice(&buf);
                driver.recycle(buf);
            }
            Recv::WouldBlock => return false,
            Recv::Closed => return true,
            Recv::Failed(e) => panic!("{:?}: {e}", driver.backend()),
        }
    }
}

/// Delivers the events the driver has, then waits for more (bounded), handing each event for
/// `conn` to `on` until it says done; an event for another generation of `conn`'s slot fails.
fn run_until(
    driver: &mut Driver,
    conn: (usize, u32),
    what: &str,
    mut on: impl FnMut(&mut Driver, Event) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        while let Some(event) = driver.next_event() {
            let Some(named) = conn_of(event) else { continue };
            if named != conn {
                let backend = driver.backend();
                assert_ne!(named.0, conn.0, "{backend:?}: {event:?} while serving {conn:?}");
            } else if on(driver, event) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{:?}: no {what} within 5 s", driver.backend());
        driver.wait(Duration::from_millis(50)).unwrap();
    }
}

/// Reads `conn`'s input until `got` holds `len` bytes (bounded).
fn receive_until(
    driver: &mut Driver,
    conn: (usize, u32),
    stream: &TcpStream,
    got: &mut Vec<u8>,
    len: usize,
) {
    if got.len() >= len {
        return;
    }
    run_until(driver, conn, "input", |driver, event| {
        if event == (Event::Input { index: conn.0, generation: conn.1 }) {
            assert!(!take_input(driver, stream, got), "{:?}: end of stream", driver.backend());
        }
        got.len() >= len
    });
}

/// Reads `conn`'s input to its end of stream (bounded).
fn receive_to_end(driver: &mut Driver, conn: (usize, u32), stream: &TcpStream, got: &mut Vec<u8>) {
    let mut ended = false;
    run_until(driver, conn, "end of stream", |driver, event| {
        if let Event::Input { .. } = event {
            ended = take_input(driver, stream, got);
        }
        ended
    });
}

/// Keeps in `got` what the driver still hands out for `conn` until its `Released` (bounded).
fn until_released(driver: &mut Driver, conn: (usize, u32), stream: &TcpStream, got: &mut Vec<u8>) {
    run_until(driver, conn, "Released", |driver, event| match event {
        Event::Input { .. } => {
            let end = take_input(driver, stream, got);
            assert!(!end, "{:?}: the end of stream is the next owner's", driver.backend());
            false
        }
        Event::Released { .. } => true,
        _ => false,
    });
}

/// Releases `conn`, keeping in `got` what the driver still hands out until `Released`; then
/// checks that nothing more comes for its slot (a second `Released` neither). True if released
/// at once.
fn release(driver: &mut Driver, conn: (usize, u32), stream: &TcpStream, got: &mut Vec<u8>) -> bool {
    let at_once = driver.release(conn.0, conn.1, stream);
    if !at_once {
        until_released(driver, conn, stream, got);
    }
    assert_quiet(driver, conn.0);
    at_once
}

/// Runs the driver for a while: nothing may come for slot `index`.
fn assert_quiet(driver: &mut Driver, index: usize) {
    let until = Instant::now() + Duration::from_millis(200);
    loop {
        while let Some(event) = driver.next_event() {
            let named = conn_of(event).map(|(i, _)| i);
            assert_ne!(named, Some(index), "{:?}: {event:?} after the release", driver.backend());
        }
        if Instant::now() >= until {
            return;
        }
        driver.wait(Duration::from_millis(50)).unwrap();
    }
}

/// Bytes that show their own order.
fn numbered(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// The connection a hand-over test releases from A.
const A_CONN: (usize, u32) = (7, 3);
/// The same connection opened on B.
const B_CONN: (usize, u32) = (2, 1);

/// A client's connection, accepted by driver A and opened there as [`A_CONN`]; and driver B, its
/// next owner (a second reactor of the same backend).
struct HandOver {
    a: Driver,
    /// Only the io_uring test wakes A.
    #[cfg_attr(not(all(feature = "io-uring", target_os = "linux")), allow(dead_code))]
    a_waker: Waker,
    b: Driver,
    _b_waker: Waker,
    addr: std::net::SocketAddr,
    client: TcpStream,
    stream: TcpStream,
}

impl HandOver {
    fn new(backend: Backend) -> HandOver {
        let (mut a, a_waker, addr) = loopback(backend).unwrap();
        let (b, _b_waker, _) = loopback(backend).unwrap();
        let client = TcpStream::connect(addr).unwrap();
        let stream = accept_n(&mut a, 1).remove(0);
        a.open(A_CONN.0, A_CONN.1, &stream).unwrap();
        HandOver { a, a_waker, b, _b_waker, addr, client, stream }
    }
}

#[test]
fn every_backend_hands_a_connection_over_without_losing_bytes() {
    for backend in backends() {
        let HandOver { mut a, mut b, mut client, stream, .. } = HandOver::new(backend);

        // Bytes before the release reach A's backend (io_uring: its receive takes them into ring
        // buffers), unread; more come while the release is under way.
        let before = numbered(3000);
        client.write_all(&before).unwrap();
        a.wait(Duration::from_millis(100)).unwrap();
        let mut got = Vec::new();
        let at_once = a.release(A_CONN.0, A_CONN.1, &stream);
        let during = b"during the release".to_vec();
        client.write_all(&during).unwrap();
        if !at_once {
            until_released(&mut a, A_CONN, &stream, &mut got);
        }
        assert_eq!(at_once, backend == Backend::Epoll, "{backend:?}");
        assert_quiet(&mut a, A_CONN.0);

        // B, the next owner, gets the rest, and what comes after.
        b.open(B_CONN.0, B_CONN.1, &stream).unwrap();
        let so_far = before.len() + during.len();
        receive_until(&mut b, B_CONN, &stream, &mut got, so_far);
        let after = b"after the hand-over".to_vec();
        client.write_all(&after).unwrap();
        receive_until(&mut b, B_CONN, &stream, &mut got, so_far + after.len());
        assert_eq!(got, [before, during, after].concat(), "{backend:?}");
    }
}

#[test]
fn every_backend_serves_a_new_connection_in_a_released_slot() {
    for backend in backends() {
        let HandOver { mut a, addr, mut client, stream, .. } = HandOver::new(backend);
        client.write_all(b"served").unwrap();
        let mut got = Vec::new();
        receive_until(&mut a, A_CONN, &stream, &mut got, 6);
        release(&mut a, A_CONN, &stream, &mut got);
        assert_eq!(got, b"served", "{backend:?}");

        // The released socket is open, unwatched: its bytes wait in it, A says nothing of them.
        client.write_all(b"unwatched").unwrap();
        client.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let error = client.read(&mut [0; 8]).unwrap_err();
        assert!(matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut));

        // The same slot, a new generation: served as any connection.
        let renewed = (A_CONN.0, A_CONN.1 + 1);
        let mut second = TcpStream::connect(addr).unwrap();
        let stream2 = accept_n(&mut a, 1).remove(0);
        a.open(renewed.0, renewed.1, &stream2).unwrap();
        second.write_all(b"new").unwrap();
        let mut got2 = Vec::new();
        receive_until(&mut a, renewed, &stream2, &mut got2, 3);
        assert_eq!(got2, b"new", "{backend:?}");
        assert_eq!(a.send_copy(renewed.0, &stream2, b"ok").unwrap(), 2, "{backend:?}");
        a.wait(Duration::ZERO).unwrap();
        second.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = [0; 2];
        second.read_exact(&mut out).unwrap();
        assert_eq!(&out, b"ok", "{backend:?}");
        if a.sending(renewed.0) {
            let writable = |_: &mut Driver, event| matches!(event, Event::Writable { .. });
            run_until(&mut a, renewed, "writable", writable);
        }
        assert!(!a.sending(renewed.0), "{backend:?}");
    }
}

#[test]
fn every_backend_releases_a_connection_whose_receive_ended_once() {
    for backend in backends() {
        let HandOver { mut a, mut b, mut client, stream, .. } = HandOver::new(backend);

        // A reads to the end of stream: its receive is over (io_uring: a final completion,
        // not re-armed), so the release finds none armed.
        client.write_all(b"last words").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        receive_to_end(&mut a, A_CONN, &stream, &mut got);
        assert_eq!(got, b"last words", "{backend:?}");
        // Exactly one `Released` (checked by `release`), or released at once.
        release(&mut a, A_CONN, &stream, &mut got);
        assert_eq!(got, b"last words", "{backend:?}");

        // The next owner sees the end of stream too.
        b.open(B_CONN.0, B_CONN.1, &stream).unwrap();
        receive_to_end(&mut b, B_CONN, &stream, &mut got);
        assert_eq!(got, b"last words", "{backend:?}");
    }
}

/// io_uring: a receive that found the buffer ring empty (`ENOBUFS`) ended, and waits to be
/// re-armed at the end of the batch; released then, it has none armed and none coming.
#[cfg(all(feature = "io-uring", target_os = "linux"))]
#[test]
fn io_uring_releases_a_connection_whose_receive_waits_to_be_rearmed() {
    if let Err(e) = probe_io_uring() {
        eprintln!("skipped: io_uring is not available here: {e}");
        return;
    }
    let counters = |driver: &Driver| match driver {
        Driver::IoUring(ring) => ring.counters(),
        Driver::Epoll(_) => unreachable!(),
    };
    let HandOver { mut a, a_waker, mut b, mut client, stream, .. } =
        HandOver::new(Backend::IoUring);

    // Twice what A's ring holds, from a thread: it blocks until B reads.
    let sent = numbered(2 * usize::from(RING_BUFFERS) * 1024);
    client.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let writer = std::thread::spawn({
        let sent = sent.clone();
        move || client.write_all(&sent).map(|()| client)
    });

    // Every buffer of A's ring held (its inputs kept, not given back): A's receive ends
    // with ENOBUFS, and so does every re-armed one.
    let (mut got, mut held) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(5);
    while counters(&a).1 > 0 || counters(&a).2 == 0 {
        assert!(Instant::now() < deadline, "the ring never ran out of buffers");
        a.wait(Duration::from_millis(50)).unwrap();
        while let Some(event) = a.next_event() {
            if event == (Event::Input { index: A_CONN.0, generation: A_CONN.1 }) {
                while let Recv::Data(buf) = a.recv(&stream) {
                    got.extend_from_slice(&buf);
                    held.push(buf);
                }
            }
        }
    }

    // The re-armed receive fails at once (no buffer), ahead of the wake's read in the same
    // batch: when the wake is delivered with a new ENOBUFS counted before it, the receive
    // waits in the re-arm list, and the release takes effect at once.
    let mut at_once = None;
    for _ in 0..20 {
        let exhaustions = counters(&a).2;
        a_waker.wake().unwrap();
        a.wait(Duration::from_millis(200)).unwrap();
        let mut woken = false;
        while let Some(event) = a.next_event() {
            assert_eq!(conn_of(event), None, "no buffer, no input: {event:?}");
            if event == Event::Wake {
                woken = true;
                break;
            }
        }
        if woken && counters(&a).2 > exhaustions {
            at_once = Some(release(&mut a, A_CONN, &stream, &mut got));
            break;
        }
    }
    assert_eq!(at_once, Some(true), "released while waiting to be re-armed: at once");
    drop(held); // back to A's ring: A watches nothing of the connection any more

    b.open(B_CONN.0, B_CONN.1, &stream).unwrap();
    receive_until(&mut b, B_CONN, &stream, &mut got, sent.len());
    let _client = writer.join().unwrap().unwrap();
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "the bytes A and B received are the bytes sent, in order");
}

#[test]
fn auto_falls_back_to_epoll_when_the_probe_fails() {
    fn fails() -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::PermissionDenied, "kernel.io_uring_disabled = 2"))
    }
    fn passes() -> io::Result<()> {
        Ok(())
    }
    fn never() -> io::Result<()> {
        panic!("epoll needs no probe")
    }
    assert_eq!(resolve(BackendChoice::Auto, fails).unwrap(), Backend::Epoll);
    assert_eq!(resolve(BackendChoice::Auto, passes).unwrap(), Backend::IoUring);
    assert_eq!(resolve(BackendChoice::Epoll, never).unwrap(), Backend::Epoll);
    let error = resolve(BackendChoice::IoUring, fails).unwrap_err();
    assert!(error.to_string().contains("io_uring_disabled"), "{error}");
}

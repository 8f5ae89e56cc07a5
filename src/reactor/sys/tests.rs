//! The contract, checked on every backend this build and kernel have: accept (on each of several
//! listeners), input, send from an offset, wake, close; and how `auto` resolves.

use std::io::{Read, Write};
use std::net::TcpStream;
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

/// Reads what `driver` hands out for (`index`, `generation`) until the release ends (at once
/// when `released_now`); returns those bytes.
fn drain_release(
    driver: &mut Driver,
    stream: &TcpStream,
    index: usize,
    released_now: bool,
) -> Vec<u8> {
    let mut got = Vec::new();
    if released_now {
        return got;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "no Released within 5 s");
        driver.wait(Duration::from_millis(50)).unwrap();
        while let Some(event) = driver.next_event() {
            match event {
                Event::Input { index: i, .. } if i == index => {
                    while let Recv::Data(buf) = driver.recv(stream) {
                        got.extend_from_slice(&buf);
                        driver.recycle(buf);
                    }
                }
                Event::Released { index: i, .. } if i == index => return got,
                _ => {}
            }
        }
    }
}

/// Everything `driver` hands out for `index` within `within`.
fn read_for(driver: &mut Driver, stream: &TcpStream, index: usize, within: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        driver.wait(Duration::from_millis(20)).unwrap();
        while let Some(event) = driver.next_event() {
            assert!(!matches!(event, Event::Released { .. }), "{event:?}");
            if event == (Event::Input { index, generation: 1 }) {
                loop {
                    match driver.recv(stream) {
                        Recv::Data(buf) => {
                            got.extend_from_slice(&buf);
                            driver.recycle(buf);
                        }
                        Recv::WouldBlock => break,
                        other => panic!("{other:?}"),
                    }
                }
            }
        }
    }
    got
}

#[test]
fn a_released_connection_goes_on_elsewhere_with_nothing_lost() {
    for backend in backends() {
        let (mut first, _w1, addr) = loopback(backend).unwrap();
        let (mut second, _w2, _) = loopback(backend).unwrap();
        let mut client = TcpStream::connect(addr).unwrap();
        let stream = loop {
            wait_for(&mut first, |e| e == Event::Accept);
            if let Ok(stream) = first.accept() {
                break stream;
            }
        };
        first.open(4, 9, &stream).unwrap();
        let mut got = Vec::new();
        // The first bytes are read by the first driver; then, unread, some more arrive and the
        // connection is released at once.
        client.write_all(b"one,").unwrap();
        wait_for(&mut first, |e| e == Event::Input { index: 4, generation: 9 });
        while let Recv::Data(buf) = first.recv(&stream) {
            got.extend_from_slice(&buf);
            first.recycle(buf);
        }
        client.write_all(b"two,").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let now = first.release(4, 9, &stream);
        got.extend(drain_release(&mut first, &stream, 4, now));
        // Nothing more for the released slot on the first driver, which serves a new one there.
        second.open(0, 1, &stream).unwrap();
        client.write_all(b"three").unwrap();
        got.extend(read_for(&mut second, &stream, 0, Duration::from_millis(300)));
        assert_eq!(String::from_utf8_lossy(&got), "one,two,three", "{backend:?}");
        first.wait(Duration::from_millis(20)).unwrap();
        while let Some(event) = first.next_event() {
            assert!(!matches!(event, Event::Input { index: 4, .. }), "{backend:?}: {event:?}");
        }
        let mut other = TcpStream::connect(addr).unwrap();
        let reused = loop {
            wait_for(&mut first, |e| e == Event::Accept);
            if let Ok(stream) = first.accept() {
                break stream;
            }
        };
        first.open(4, 10, &reused).unwrap();
        other.write_all(b"x").unwrap();
        wait_for(&mut first, |e| e == Event::Input { index: 4, generation: 10 });
        // The second driver sends on the moved socket.
        let bye = Bytes::from_static(b"bye");
        assert_eq!(second.send(0, &stream, &[&bye], 0).unwrap(), 3, "{backend:?}");
        second.wait(Duration::ZERO).unwrap();
        let mut reply = [0u8; 3];
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        client.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"bye", "{backend:?}");
        second.close(0, stream);
        first.close(4, reused);
    }
}

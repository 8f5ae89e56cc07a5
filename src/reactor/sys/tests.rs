//! The contract, checked on every backend this build and kernel have: accept, input, send from
//! an offset, wake, close; and how `auto` resolves.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;

fn kinds() -> Vec<Kind> {
    let mut kinds = vec![Kind::Epoll];
    if probe_io_uring().is_ok() {
        kinds.push(Kind::IoUring);
    }
    kinds
}

/// Waits (bounded) for an event that `want` accepts.
fn wait_for(sys: &mut Sys, want: impl Fn(Event) -> bool) -> Event {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        sys.wait(Duration::from_millis(50)).unwrap();
        while let Some(event) = sys.next_event() {
            if want(event) {
                return event;
            }
        }
    }
    panic!("no such event within 5 s on {:?}", sys.kind());
}

#[test]
fn every_backend_keeps_the_contract() {
    for kind in kinds() {
        let (mut sys, waker, addr) = loopback(kind).unwrap();
        assert_eq!(sys.kind(), kind);

        // 1, 2: accept and open.
        let mut client = TcpStream::connect(addr).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let stream = loop {
            wait_for(&mut sys, |e| e == Event::Accept);
            match sys.accept() {
                Ok(stream) => break stream,
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{kind:?}"),
            }
        };
        sys.open(7, 3, &stream).unwrap();

        // 3: bytes arrived, lent, given back.
        client.write_all(b"hello").unwrap();
        let mut got = Vec::new();
        while got.len() < 5 {
            wait_for(&mut sys, |e| e == Event::Input { index: 7, generation: 3 });
            loop {
                match sys.recv(&stream) {
                    Recv::Data(mut buf) => {
                        buf.make_ascii_uppercase(); // decoded in place
                        got.extend_from_slice(&buf);
                        sys.recycle(buf);
                    }
                    Recv::WouldBlock => break,
                    other => panic!("{kind:?}: {other:?}"),
                }
            }
        }
        assert_eq!(got, b"HELLO", "{kind:?}");

        // 6: a vectored send from an offset, and a copy behind it in the same turn (io_uring:
        // in the same send); once handed to the kernel, nothing more until writable.
        let (a, b) = (Bytes::from_static(b"abc"), Bytes::from_static(b"def"));
        assert_eq!(sys.send(7, &stream, &[&a, &b], 1).unwrap(), 5, "{kind:?}");
        assert_eq!(sys.send_copy(7, &stream, b"!").unwrap(), 1, "{kind:?}");
        sys.wait(Duration::ZERO).unwrap(); // hands this turn's sends to the kernel
        if sys.sending(7) {
            assert_eq!(sys.send_copy(7, &stream, b"?").unwrap(), 0, "one send in flight");
            wait_for(&mut sys, |e| e == Event::Writable { index: 7, generation: 3 });
        }
        assert!(!sys.sending(7));
        assert_eq!(sys.send_copy(7, &stream, b"?").unwrap(), 1);
        sys.wait(Duration::ZERO).unwrap();
        let mut out = [0; 7];
        client.read_exact(&mut out).unwrap();
        assert_eq!(&out, b"bcdef!?", "{kind:?}");

        // 8: a wake from another thread.
        std::thread::scope(|s| {
            s.spawn(|| waker.wake().unwrap());
        });
        wait_for(&mut sys, |e| e == Event::Wake);

        // 7: close; the peer sees the end of the stream.
        sys.close(7, stream);
        sys.wait(Duration::ZERO).unwrap();
        while sys.next_event().is_some() {}
        assert_eq!(client.read(&mut out).unwrap(), 0, "{kind:?}");

        // 1: after stop_accepting, accept has nothing.
        sys.stop_accepting();
        let error = sys.accept().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
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
    assert_eq!(resolve(Backend::Auto, fails).unwrap(), Kind::Epoll);
    assert_eq!(resolve(Backend::Auto, passes).unwrap(), Kind::IoUring);
    assert_eq!(resolve(Backend::Epoll, never).unwrap(), Kind::Epoll);
    let error = resolve(Backend::IoUring, fails).unwrap_err();
    assert!(error.to_string().contains("io_uring_disabled"), "{error}");
}

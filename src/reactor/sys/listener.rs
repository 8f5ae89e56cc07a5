//! A port's listeners (the client port's, and `mqtt.listen`'s when set): one `SO_REUSEPORT`
//! socket per reactor, so the kernel spreads accepts over the cores.
//!
//! Port 0 binds the first listener to a free port and the rest to that same port. The listeners
//! are non-blocking and carry `TCP_NODELAY`, which accepted sockets inherit (pushes are small and
//! must not wait). Each backend adapts its listener itself (epoll: registers it with its poll;
//! io_uring: makes it blocking, as the ring waits for connections).

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Pending connections the kernel queues per listener before accept.
const BACKLOG: i32 = 4096;

/// The kernel buffer sizes accepted sockets take from their listener (`None`: autotuning).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketBuffers {
    pub send: Option<usize>,
    pub receive: Option<usize>,
}

/// Fails with `AddrInUse` if some process listens on `addr` already (port 0 never does).
/// `SO_REUSEPORT` would let this daemon share the port silently with another one and split the
/// clients between them: a probe bound without it finds out first (with `SO_REUSEADDR`, so a
/// restart is not refused over connections left in TIME_WAIT).
pub fn ensure_unshared(addr: SocketAddr) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    probe.set_reuse_address(true)?;
    match probe.bind(&addr.into()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another process listens on it already (to share a port on purpose, as a cluster's \
             processes may, set client.share_port = true in each)",
        )),
        Err(e) => Err(e),
    }
}

/// Binds `count` listeners sharing one address and port.
pub fn bind_listeners(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
    bind_listeners_with(addr, count, SocketBuffers::default())
}

/// Binds `count` listeners sharing one address and port, whose accepted sockets get `buffers`
/// (set on the listener, so that each accepted socket inherits them: no call per connection,
/// and the receive window is sized before the handshake).
pub fn bind_listeners_with(
    addr: SocketAddr,
    count: usize,
    buffers: SocketBuffers,
) -> io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        // Accepted sockets inherit it: one setsockopt per listener, not per connection.
        socket.set_nodelay(true)?;
        if let Some(bytes) = buffers.send {
            socket.set_send_buffer_size(bytes)?;
        }
        if let Some(bytes) = buffers.receive {
            socket.set_recv_buffer_size(bytes)?;
        }
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(BACKLOG)?;
        let listener: TcpListener = socket.into();
        addr = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_someone_listens_on_is_found_out_and_a_free_one_is_not() {
        let taken = bind_listeners("127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let addr = taken[0].local_addr().unwrap();
        let e = ensure_unshared(addr).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert!(e.to_string().contains("client.share_port"), "{e}");
        drop(taken);
        ensure_unshared(addr).expect("free once closed");
        ensure_unshared("127.0.0.1:0".parse().unwrap()).expect("port 0 is never taken");
    }

    #[test]
    fn port_zero_is_shared_by_every_listener() {
        let listeners = bind_listeners("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let ports: Vec<u16> = listeners.iter().map(|l| l.local_addr().unwrap().port()).collect();
        assert_ne!(ports[0], 0);
        assert!(ports.iter().all(|&p| p == ports[0]), "{ports:?}");
    }

    #[test]
    fn accepted_sockets_inherit_the_buffer_sizes() {
        let buffers = SocketBuffers { send: Some(64 * 1024), receive: Some(32 * 1024) };
        let listeners = bind_listeners_with("127.0.0.1:0".parse().unwrap(), 1, buffers).unwrap();
        let addr = listeners[0].local_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let accepted = loop {
            match listeners[0].accept() {
                Ok((stream, _)) => break socket2::Socket::from(stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("accept: {e}"),
            }
        };
        // Linux doubles what it is asked for (its bookkeeping share).
        assert_eq!(accepted.send_buffer_size().unwrap(), 128 * 1024);
        assert_eq!(accepted.recv_buffer_size().unwrap(), 64 * 1024);
    }

    #[test]
    fn accepted_sockets_inherit_nodelay() {
        let listeners = bind_listeners("127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let addr = listeners[0].local_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let accepted = loop {
            match listeners[0].accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("accept: {e}"),
            }
        };
        assert!(accepted.nodelay().unwrap());
    }
}

//! Connections to the control port that move no bytes for [`IDLE_TIMEOUT`] are closed.
//!
//! axum's server sets no timer on hyper, so without this an idle keep-alive connection, or one
//! that sends half its headers and stops, would hold a socket until the peer goes away. The
//! listener hands hyper an [`IdleStream`]: any read or write that completes pushes the deadline
//! back; a read or write still waiting when it passes fails with `TimedOut`, and hyper closes
//! the connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// How long a connection may move no bytes. Longer than
/// [`REQUEST_TIMEOUT`](super::REQUEST_TIMEOUT), so a request being handled is never cut.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A TCP listener whose connections close when idle.
#[derive(Debug)]
pub struct IdleListener {
    inner: TcpListener,
    idle: Duration,
}

impl IdleListener {
    pub fn new(inner: TcpListener, idle: Duration) -> IdleListener {
        IdleListener { inner, idle }
    }
}

impl axum::serve::Listener for IdleListener {
    type Io = IdleStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (IdleStream, std::net::SocketAddr) {
        // axum's own accept loop: retries, and backs off on errors such as EMFILE.
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        let _ = stream.set_nodelay(true);
        (IdleStream::new(stream, self.idle), addr)
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }
}

/// A TCP stream whose pending reads and writes fail once it has been idle too long.
#[derive(Debug)]
pub struct IdleStream {
    inner: TcpStream,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl IdleStream {
    fn new(inner: TcpStream, idle: Duration) -> IdleStream {
        IdleStream { inner, idle, deadline: Box::pin(tokio::time::sleep(idle)) }
    }

    /// Bytes moved: the deadline starts again.
    fn touch(&mut self) {
        let next = Instant::now() + self.idle;
        self.deadline.as_mut().reset(next);
    }

    /// For an operation that is pending: `TimedOut` once the deadline has passed.
    fn expired<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "control connection idle for too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The result of an inner operation, with the deadline applied.
    fn check<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.touch();
                Poll::Ready(result)
            }
            Poll::Pending => self.expired(cx),
        }
    }
}

impl AsyncRead for IdleStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.check(cx, poll)
    }
}

impl AsyncWrite for IdleStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.check(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.check(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn read(stream: &mut IdleStream) -> impl Future<Output = io::Result<Vec<u8>>> + '_ {
        std::future::poll_fn(move |cx| {
            let mut bytes = [0u8; 64];
            let mut buf = ReadBuf::new(&mut bytes);
            Pin::new(&mut *stream).poll_read(cx, &mut buf).map_ok(|()| buf.filled().to_vec())
        })
    }

    #[test]
    fn bytes_push_the_deadline_back_and_silence_times_out() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let idle = Duration::from_millis(200);
            let mut listener = IdleListener::new(listener, idle);
            let (mut stream, _) = axum::serve::Listener::accept(&mut listener).await;
            client.write_all(b"hello").unwrap();
            assert_eq!(read(&mut stream).await.unwrap(), b"hello");
            let started = Instant::now();
            let e = read(&mut stream).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            assert!(started.elapsed() >= idle, "timed out after {:?}", started.elapsed());
        });
    }
}

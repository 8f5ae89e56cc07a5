//! Connections to the control port that move no bytes for [`IDLE_TIMEOUT`], or that take longer
//! than [`ANSWER_TIMEOUT`] from a request's first bytes to its answer, are closed.
//!
//! axum's server sets no timer on hyper, so without this an idle keep-alive connection, or one
//! that sends half its headers and stops, would hold a socket until the peer goes away; and a
//! peer that trickles its request head a byte at a time would hold it forever, since every byte
//! pushes an idle deadline back (the 408 of [`REQUEST_TIMEOUT`](super::REQUEST_TIMEOUT) starts
//! only once the head is complete). The listener hands hyper an [`IdleStream`]:
//! - any read or write that completes pushes the idle deadline back;
//! - bytes read while no request is open start the answer deadline, and bytes written (the
//!   answer) end it;
//! - a read or write still waiting when either deadline passes, or a read that completes after
//!   the answer deadline, fails with `TimedOut`, and hyper closes the connection.

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

/// How long from a request's first bytes to the first bytes of its answer: 10 s for the head
/// to arrive, then [`REQUEST_TIMEOUT`](super::REQUEST_TIMEOUT) for the handler, so a request
/// whose head came within 10 s always gets its 408 first.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// A TCP listener whose connections close when idle.
#[derive(Debug)]
pub struct IdleListener {
    inner: TcpListener,
    limits: Limits,
}

/// The two deadlines of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// No bytes moved for this long: closed.
    pub idle: Duration,
    /// A request's first bytes not answered within this: closed.
    pub answer: Duration,
}

impl Limits {
    pub const DEFAULT: Limits = Limits { idle: IDLE_TIMEOUT, answer: ANSWER_TIMEOUT };
}

impl IdleListener {
    pub fn new(inner: TcpListener, limits: Limits) -> IdleListener {
        IdleListener { inner, limits }
    }
}

impl axum::serve::Listener for IdleListener {
    type Io = IdleStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (IdleStream, std::net::SocketAddr) {
        // axum's own accept loop: retries, and backs off on errors such as EMFILE.
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        let _ = stream.set_nodelay(true);
        (IdleStream::new(stream, self.limits), addr)
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }
}

/// A TCP stream whose pending reads and writes fail once it has been idle too long.
#[derive(Debug)]
pub struct IdleStream {
    inner: TcpStream,
    limits: Limits,
    idle_at: Instant,
    /// Set while a request is open (bytes read, no answer written yet).
    answer_at: Option<Instant>,
    /// Fires at the earlier of the two deadlines.
    timer: Pin<Box<Sleep>>,
}

impl IdleStream {
    fn new(inner: TcpStream, limits: Limits) -> IdleStream {
        let idle_at = Instant::now() + limits.idle;
        let timer = Box::pin(tokio::time::sleep_until(idle_at));
        IdleStream { inner, limits, idle_at, answer_at: None, timer }
    }

    fn rearm(&mut self) {
        let at = self.answer_at.map_or(self.idle_at, |answer| answer.min(self.idle_at));
        self.timer.as_mut().reset(at);
    }

    /// `read` bytes came in, `wrote` bytes went out: the deadlines move (see the module doc).
    /// Fails if the bytes read belong to a request whose answer is overdue.
    fn moved(&mut self, read: usize, wrote: usize) -> io::Result<()> {
        let now = Instant::now();
        self.idle_at = now + self.limits.idle;
        if wrote > 0 {
            self.answer_at = None;
        }
        if read > 0 {
            match self.answer_at {
                None => self.answer_at = Some(now + self.limits.answer),
                Some(at) if now >= at => return Err(timed_out("request not complete in time")),
                Some(_) => {}
            }
        }
        self.rearm();
        Ok(())
    }

    /// For an operation that is pending: `TimedOut` once a deadline has passed.
    fn expired<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(timed_out("control connection idle for too long"))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl IdleStream {
    /// The first byte the peer sent, without taking it (`None`: it closed without a byte);
    /// pending while nothing has arrived, and `TimedOut` once the deadlines pass.
    pub fn poll_first_byte(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<u8>>> {
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        match self.inner.poll_peek(cx, &mut buf) {
            Poll::Ready(Ok(0)) => Poll::Ready(Ok(None)),
            Poll::Ready(Ok(_)) => Poll::Ready(Ok(Some(byte[0]))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.expired(cx),
        }
    }

    /// Reads and drops what has arrived (at most 16 KiB), so that closing after an answer
    /// sends a FIN rather than a reset that could destroy the answer in flight.
    pub fn discard_arrived(&mut self, cx: &mut Context<'_>) {
        let mut scratch = [0u8; 4096];
        for _ in 0..4 {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {}
                _ => return,
            }
        }
    }
}

fn timed_out(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, why)
}

impl AsyncRead for IdleStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                Poll::Ready(this.moved(read, 0))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.expired(cx),
        }
    }
}

impl IdleStream {
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match poll {
            Poll::Ready(Ok(n)) => Poll::Ready(self.moved(0, n).map(|()| n)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.expired(cx),
        }
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
        this.wrote(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(cx, poll)
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

    fn runtime() -> tokio::runtime::Runtime {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        builder.enable_io().enable_time().build().unwrap()
    }

    /// A client socket and the server's end of it, through an [`IdleListener`] with `limits`.
    async fn connected(limits: Limits) -> (std::net::TcpStream, IdleStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut listener = IdleListener::new(listener, limits);
        let (stream, _) = axum::serve::Listener::accept(&mut listener).await;
        (client, stream)
    }

    #[test]
    fn bytes_push_the_deadline_back_and_silence_times_out() {
        runtime().block_on(async {
            let idle = Duration::from_millis(200);
            let (mut client, mut stream) =
                connected(Limits { idle, answer: Duration::from_secs(60) }).await;
            client.write_all(b"hello").unwrap();
            assert_eq!(read(&mut stream).await.unwrap(), b"hello");
            let started = Instant::now();
            let e = read(&mut stream).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            assert!(started.elapsed() >= idle, "timed out after {:?}", started.elapsed());
        });
    }

    #[test]
    fn a_trickled_request_times_out_and_an_answer_ends_its_deadline() {
        runtime().block_on(async {
            let answer = Duration::from_millis(300);
            let (mut client, mut stream) =
                connected(Limits { idle: Duration::from_millis(200), answer }).await;
            // A request answered in time: its deadline ends with the answer.
            client.write_all(b"GET").unwrap();
            assert_eq!(read(&mut stream).await.unwrap(), b"GET");
            let wrote = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_write(cx, b"200"));
            assert_eq!(wrote.await.unwrap(), 3);
            // The next one trickles: a byte every 100 ms keeps it from idling, not from its end.
            let started = Instant::now();
            let outcome = loop {
                client.write_all(b"x").unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
                match read(&mut stream).await {
                    Ok(_) => assert!(started.elapsed() < answer * 3, "never timed out"),
                    Err(e) => break e,
                }
            };
            assert_eq!(outcome.kind(), io::ErrorKind::TimedOut);
            assert!(started.elapsed() >= answer, "timed out after {:?}", started.elapsed());
        });
    }
}

//! HTTPS on the control port (`[control.tls]`): the listener axum serves, whose connections are
//! plain or TLS, and the stream that runs a TLS connection's handshake on its first read.
//!
//! # Invariants
//! - **The handshake never holds the accept loop**: [`ControlListener::accept`] returns at once,
//!   and the handshake runs inside the connection's own task, on its first read or write
//!   ([`ControlStream`]). A client that stalls its handshake holds its connection only.
//! - **TLS runs above the idle deadlines**: the TLS stream reads and writes an
//!   [`IdleStream`], so the handshake's bytes move the idle and answer deadlines exactly as a
//!   request's do, and a stalled handshake is closed as a stalled request is.
//! - **A plain request to the HTTPS port is never served**: a first byte other than a TLS
//!   handshake record's (`0x16`) is answered `400` with a message saying the port speaks
//!   HTTPS, and the connection closes; nothing of it reaches the router.
//! - The certificates come from the shared [`Certificates`](crate::tls::certificates) resolver
//!   in the rustls configuration, so a reload (SIGHUP) changes what the next handshake presents
//!   and never touches an open connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::idle::{IdleListener, IdleStream};
use crate::tls::HANDSHAKE_RECORD;

/// The answer to a plain HTTP request on the HTTPS port.
const PLAIN_ON_HTTPS: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
content-type: application/json\r\n\
content-length: 78\r\n\
connection: close\r\n\
\r\n\
{\"error\":\"this port speaks HTTPS: the request came as plain HTTP\",\"code\":400}\n";

/// The control port's listener: idle deadlines on every connection, and TLS when configured.
#[derive(Debug)]
pub struct ControlListener {
    inner: IdleListener,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl ControlListener {
    /// `tls`: `control.tls` as rustls runs it; `None` serves plain HTTP.
    pub fn new(inner: IdleListener, tls: Option<Arc<rustls::ServerConfig>>) -> ControlListener {
        ControlListener { inner, tls }
    }
}

impl axum::serve::Listener for ControlListener {
    type Io = ControlStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (ControlStream, std::net::SocketAddr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        let stream = match &self.tls {
            None => ControlStream::Plain(stream),
            Some(config) => ControlStream::Tls(Box::new(Tls::Sniffing {
                stream: Some(stream),
                config: Arc::clone(config),
            })),
        };
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }
}

/// The address a control-port request came from (axum's `ConnectInfo` for the listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub std::net::SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, ControlListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, ControlListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

/// One control connection, plain or TLS.
#[derive(Debug)]
pub enum ControlStream {
    Plain(IdleStream),
    Tls(Box<Tls>),
}

/// Where a TLS control connection stands.
pub enum Tls {
    /// Accepted; its first byte not seen yet. `stream` is `None` only while moving on.
    Sniffing {
        stream: Option<IdleStream>,
        config: Arc<rustls::ServerConfig>,
    },
    /// A TLS record came first: rustls's handshake runs.
    Handshaking(tokio_rustls::Accept<IdleStream>),
    Open(TlsStream<IdleStream>),
    /// Plain bytes came first: [`PLAIN_ON_HTTPS`] is written from `written` on, then it closes.
    Refusing {
        stream: IdleStream,
        written: usize,
    },
    /// The handshake failed or the refusal is written: every operation fails.
    Done,
}

impl Tls {
    /// Moves on until the connection is open (or fails); `Ready(Ok)` means [`Tls::Open`].
    fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match self {
                Tls::Open(_) => return Poll::Ready(Ok(())),
                Tls::Done => return Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
                Tls::Sniffing { stream: slot, config } => {
                    let stream = slot.as_mut().expect("sniffing holds the stream");
                    let first = ready!(stream.poll_first_byte(cx));
                    let stream = slot.take().expect("sniffing holds the stream");
                    match first {
                        Ok(Some(HANDSHAKE_RECORD)) => {
                            let acceptor = TlsAcceptor::from(Arc::clone(config));
                            *self = Tls::Handshaking(acceptor.accept(stream));
                        }
                        Ok(_) => *self = Tls::Refusing { stream, written: 0 },
                        Err(e) => {
                            *self = Tls::Done;
                            return Poll::Ready(Err(e));
                        }
                    }
                }
                Tls::Handshaking(accept) => match ready!(Pin::new(accept).poll(cx)) {
                    Ok(open) => *self = Tls::Open(open),
                    Err(e) => {
                        tracing::debug!(error = %e, "control port: TLS handshake failed");
                        *self = Tls::Done;
                        return Poll::Ready(Err(e));
                    }
                },
                Tls::Refusing { stream, written } => {
                    if *written == 0 {
                        stream.discard_arrived(cx);
                    }
                    while *written < PLAIN_ON_HTTPS.len() {
                        let rest = &PLAIN_ON_HTTPS[*written..];
                        *written += ready!(Pin::new(&mut *stream).poll_write(cx, rest))?;
                    }
                    // Best effort: the answer is out, the peer gets a FIN after it.
                    let _ = ready!(Pin::new(&mut *stream).poll_shutdown(cx));
                    *self = Tls::Done;
                    let refused = "a plain HTTP request on the HTTPS control port";
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, refused)));
                }
            }
        }
    }

    fn open(&mut self) -> Pin<&mut TlsStream<IdleStream>> {
        match self {
            Tls::Open(stream) => Pin::new(stream),
            _ => unreachable!("poll_open returned Ready(Ok) only when open"),
        }
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tls::Sniffing { .. } => "Tls::Sniffing",
            Tls::Handshaking(_) => "Tls::Handshaking",
            Tls::Open(_) => "Tls::Open",
            Tls::Refusing { .. } => "Tls::Refusing",
            Tls::Done => "Tls::Done",
        })
    }
}

impl AsyncRead for ControlStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ControlStream::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            ControlStream::Tls(tls) => {
                ready!(tls.poll_open(cx))?;
                tls.open().poll_read(cx, buf)
            }
        }
    }
}

impl AsyncWrite for ControlStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ControlStream::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            ControlStream::Tls(tls) => {
                ready!(tls.poll_open(cx))?;
                tls.open().poll_write(cx, buf)
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ControlStream::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            ControlStream::Tls(tls) => {
                ready!(tls.poll_open(cx))?;
                tls.open().poll_write_vectored(cx, bufs)
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ControlStream::Plain(stream) => stream.is_write_vectored(),
            ControlStream::Tls(_) => true,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ControlStream::Plain(stream) => Pin::new(stream).poll_flush(cx),
            ControlStream::Tls(tls) => match tls.as_mut() {
                Tls::Open(stream) => Pin::new(stream).poll_flush(cx),
                _ => Poll::Ready(Ok(())),
            },
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ControlStream::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            ControlStream::Tls(tls) => match tls.as_mut() {
                Tls::Open(stream) => Pin::new(stream).poll_shutdown(cx),
                _ => Poll::Ready(Ok(())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PLAIN_ON_HTTPS;

    #[test]
    fn the_plain_http_refusal_is_a_whole_response_in_the_error_format() {
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut response = httparse::Response::new(&mut headers);
        let head = match response.parse(PLAIN_ON_HTTPS).unwrap() {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => panic!("the head is cut"),
        };
        assert_eq!(response.code, Some(400));
        let length = response.headers.iter().find(|h| h.name == "content-length").unwrap();
        let length: usize = std::str::from_utf8(length.value).unwrap().parse().unwrap();
        let body = &PLAIN_ON_HTTPS[head..];
        assert_eq!(body.len(), length);
        let body: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(body["code"], 400);
        assert!(body["error"].as_str().unwrap().contains("HTTPS"));
    }
}

//! A Socket.IO long-polling client, sans-IO: what socket.io-client does with
//! `transports: ['polling']` (it never upgrades). The GETs travel on the connection's socket
//! ([`Channel::Main`]), the POSTs on a second keep-alive one ([`Channel::Post`]), as a
//! browser's XHRs do; the packets inside are the WebSocket client's (`Conn::on_sio_packet`).
//!
//! ```text
//! EIO 4  main: GET {path}/?EIO=4&transport=polling&t=0   <- 0{"sid":"S","pingInterval":..}
//!        post: POST ..&sid=S  40                          <- ok
//!        main: GET ..&sid=S                               <- 40{"sid":..}
//!        post: POST 42["message","<enter request>"]       <- ok
//!        main: GET ..  (one outstanding, always)          <- 42["message","{\"id\":1,..}"]
//!        main: <- 2 (the server's ping) 0x1E 42[..push..] ;  post: POST 3
//! EIO 3  main: GET ?EIO=3..  <- 97:0{..}2:40  ;  post: POST <len>:<enter>
//!        post: POST 1:2 every pingInterval    ;  main: <- 1:3, pushes
//! 0.9    main: GET {path}/1/ (Connection: close)  <- S:45:60:websocket,xhr-polling; redial
//!        main: GET {path}/1/xhr-polling/S?t=1     <- 1::   ;  post: POST 3:::<enter>  <- 1
//!        main: <- 2:: (the server's heartbeat)    ;  post: POST 2::
//! ```
//!
//! # Invariants
//! - Exactly one GET is outstanding from the first poll on: each answer on [`Channel::Main`]
//!   is followed by the next GET, in the same call.
//! - At most one POST is in flight, as socket.io-client writes: what the client says meanwhile
//!   waits in `queued` and goes in the next POST, all together, once the answer comes.
//! - The post socket is the loop's: it opens one when [`Io::post`] has bytes and it has none,
//!   and drops it on end of file or after an answer with `Connection: close`
//!   ([`Conn::take_post_closing`]). A POST whose connection closed before any of its answer
//!   came (the server closes a carrier idle for `client.handshake_timeout_secs`) is sent once
//!   more on a new one, as a browser resends on a stale keep-alive connection.
//! - Every wait is bounded: [`Conn::overdue`] names a GET unanswered past the server's ping
//!   interval and timeout plus [`POLL_SLACK_SECS`], and a POST unanswered past
//!   [`POST_WAIT_SECS`].

use std::borrow::Cow;

use bytes::BytesMut;

use super::{Channel, Conn, Fault, Identity, Io, Learned, Protocol, Stage};
use crate::clock::secs_to_ns;
use crate::wire::http::{self, HttpResponse};
use crate::wire::socketio::{self, Server as SioServer, Version};

/// What a poll may wait beyond the server's ping interval and timeout, seconds.
pub const POLL_SLACK_SECS: u32 = 10;
/// The ping interval and timeout assumed before a handshake said them (socket.io's defaults,
/// 25 s + 20 s), seconds.
const DEFAULT_POLL_WAIT_SECS: u32 = 45;
/// The longest a POST may wait for its answer, seconds.
pub const POST_WAIT_SECS: u32 = 30;

/// A polling session's requests. See the module doc.
#[derive(Debug, Clone, Default)]
pub struct Polling {
    /// The session's sid: the open packet's (EIO), the handshake's (0.9).
    sid: Option<Box<str>>,
    /// Requests sent so far; each one's `t`.
    requests: u64,
    /// When the outstanding GET went out.
    get_since_ns: Option<u64>,
    /// The POST in flight.
    post: Option<InFlight>,
    /// Client packets waiting for the POST in flight to be answered.
    queued: Vec<Box<str>>,
    /// The post connection's last answer said `Connection: close`.
    post_closing: bool,
}

/// A POST waiting for its answer.
#[derive(Debug, Clone)]
struct InFlight {
    body: Box<[u8]>,
    since_ns: u64,
    /// Sent a second time, after its first connection closed.
    resent: bool,
}

impl Polling {
    fn target(&mut self, version: Version, id: &Identity<'_>) -> String {
        self.requests += 1;
        socketio::polling_target(version, id.ws_path, self.sid.as_deref(), self.requests)
    }

    /// The next GET.
    fn get(&mut self, version: Version, id: &Identity<'_>, io: &mut Io<'_>) {
        let target = self.target(version, id);
        http::encode_get(id.host, &target, false, io.out);
        self.get_since_ns = Some(io.now_ns);
    }

    /// A POST of everything queued.
    fn post_queued(&mut self, version: Version, id: &Identity<'_>, io: &mut Io<'_>) {
        let mut body = BytesMut::new();
        socketio::encode_post_body(version, self.queued.iter().map(|p| &**p), &mut body);
        self.queued.clear();
        self.post_body(version, body.to_vec().into_boxed_slice(), false, id, io);
    }

    fn post_body(
        &mut self,
        version: Version,
        body: Box<[u8]>,
        resent: bool,
        id: &Identity<'_>,
        io: &mut Io<'_>,
    ) {
        let target = self.target(version, id);
        http::encode_post(id.host, &target, &body, io.post);
        self.post = Some(InFlight { body, since_ns: io.now_ns, resent });
    }
}

impl Conn {
    /// The connection's socket is up: the handshake (0.9's `GET {path}/1/`, on a connection of
    /// its own) or the first poll.
    pub(super) fn start_polling(&mut self, version: Version, id: &Identity<'_>, io: &mut Io<'_>) {
        self.polling = None;
        match (version, self.sid.take()) {
            (Version::V09, None) => {
                socketio::encode_v09_handshake(id.host, id.ws_path, io.out);
                self.stage = Stage::Requesting;
            }
            (version, sid) => {
                let mut polling = Box::new(Polling { sid, ..Polling::default() });
                polling.get(version, id, io);
                self.polling = Some(polling);
                // 0.9's first poll brings the connect; Engine.IO's the open packet.
                self.stage =
                    if version == Version::V09 { Stage::Handshaking } else { Stage::Requesting };
            }
        }
    }

    pub(super) fn receive_polling(
        &mut self,
        version: Version,
        channel: Channel,
        input: &[u8],
        id: &Identity<'_>,
        io: &mut Io<'_>,
    ) -> Result<usize, Fault> {
        match (channel, self.stage) {
            (Channel::Main, Stage::Requesting) if version == Version::V09 => {
                return self.v09_handshake(input, "xhr-polling", io);
            }
            // The loop closes this socket before it reads again.
            (Channel::Main, Stage::Redialing) => return Ok(0),
            _ => {}
        }
        let mut used = 0;
        while let Some((answer, n)) = http::decode_response(&input[used..], io.max_package)
            .map_err(|e| Fault::Protocol(format!("polling answer: {e}")))?
        {
            used += n;
            let what = if channel == Channel::Main { "poll" } else { "POST" };
            let unasked = || Fault::Protocol(format!("an answer to no {what}"));
            let polling = self.polling.as_deref_mut().ok_or_else(unasked)?;
            let asked = match channel {
                Channel::Main => polling.get_since_ns.take().is_some(),
                Channel::Post => polling.post.take().is_some(),
            };
            if !asked {
                return Err(unasked());
            }
            if answer.status != 200 {
                let body = String::from_utf8_lossy(answer.body);
                let status = answer.status;
                return Err(Fault::Refused(format!(
                    "{what} answered {status} {}",
                    body.trim_end()
                )));
            }
            match channel {
                Channel::Main => self.on_poll_answer(version, answer, id, io)?,
                Channel::Post => {
                    // The next POST, if packets wait.
                    polling.post_closing = answer.close;
                    if !polling.queued.is_empty() {
                        polling.post_queued(version, id, io);
                    }
                }
            }
        }
        Ok(used)
    }

    /// A GET's answer (a 200): its packets, then the next GET.
    fn on_poll_answer(
        &mut self,
        version: Version,
        answer: HttpResponse<'_>,
        id: &Identity<'_>,
        io: &mut Io<'_>,
    ) -> Result<(), Fault> {
        if self.stage == Stage::Requesting {
            self.stage = Stage::Handshaking;
        }
        let packets = socketio::decode_poll_body(version, answer.body)
            .map_err(|e| Fault::Protocol(format!("socket.io: {e}")))?;
        for packet in packets {
            if let (SioServer::Open { sid: Some(sid), .. }, Some(polling)) =
                (packet, self.polling.as_deref_mut())
            {
                polling.sid.get_or_insert_with(|| sid.into());
            }
            if let Some(reply) = self.on_sio_packet(version, packet, id, io)? {
                self.post_packet(version, reply, id, io);
            }
        }
        let Some(polling) = self.polling.as_deref_mut().filter(|p| p.sid.is_some()) else {
            return Err(Fault::Protocol("the first poll's answer has no open packet".into()));
        };
        if answer.close {
            return Err(Fault::Protocol("a poll answered with Connection: close".into()));
        }
        polling.get(version, id, io);
        Ok(())
    }

    /// Sends `packet` in a POST now, or after the one in flight.
    pub(super) fn post_packet(
        &mut self,
        version: Version,
        packet: Cow<'static, str>,
        id: &Identity<'_>,
        io: &mut Io<'_>,
    ) {
        let Some(polling) = self.polling.as_deref_mut() else { return };
        polling.queued.push(packet.into_owned().into_boxed_str());
        if polling.post.is_none() {
            polling.post_queued(version, id, io);
        }
    }

    /// The post connection's last answer said `Connection: close`: the loop drops the socket
    /// (before it sends what [`Io::post`] holds, on a new one).
    pub fn take_post_closing(&mut self) -> bool {
        self.polling.as_deref_mut().is_some_and(|p| std::mem::take(&mut p.post_closing))
    }

    /// The post socket closed (or broke), `leftover` bytes of an answer unread: the POST in
    /// flight, if any, is sent once more (into [`Io::post`], for a new socket); a second loss,
    /// or one after part of the answer came, is a fault.
    pub fn post_closed(
        &mut self,
        leftover: bool,
        id: &Identity<'_>,
        io: &mut Io<'_>,
    ) -> Result<(), Fault> {
        let Protocol::SocketIoPolling(version) = self.protocol else { return Ok(()) };
        let Some(polling) = self.polling.as_deref_mut() else { return Ok(()) };
        polling.post_closing = false;
        let Some(flight) = polling.post.take() else { return Ok(()) };
        if flight.resent || leftover {
            return Err(Fault::Protocol("the POST connection closed before its answer".into()));
        }
        polling.post_body(version, flight.body, true, id, io);
        Ok(())
    }

    /// What has waited too long at `now_ns`, if anything: a GET past the server's ping
    /// interval and timeout (and [`POLL_SLACK_SECS`]), a POST past [`POST_WAIT_SECS`].
    pub fn overdue(&self, now_ns: u64, learned: &Learned) -> Option<String> {
        let polling = self.polling.as_deref()?;
        let poll_wait = learned
            .poll_wait_secs
            .unwrap_or(DEFAULT_POLL_WAIT_SECS)
            .saturating_add(POLL_SLACK_SECS);
        if polling
            .get_since_ns
            .is_some_and(|t| now_ns.saturating_sub(t) > secs_to_ns(poll_wait.into()))
        {
            return Some(format!("poll not answered within {poll_wait} s"));
        }
        let post_wait = secs_to_ns(POST_WAIT_SECS.into());
        if polling.post.as_ref().is_some_and(|p| now_ns.saturating_sub(p.since_ns) > post_wait) {
            return Some(format!("POST not answered within {POST_WAIT_SECS} s"));
        }
        None
    }
}

//! Socket.IO long-polling clients against a scripted server whose answers are shaddock's own
//! (`session::socketio::polling`), the server's bytes cut at every size and every split point;
//! the client's requests are read back with shaddock's request parser and payload decoders.

use bytes::BytesMut;
use shaddock::protocol::http as server_http;
use shaddock::protocol::socketio::engineio::{self, EioVersion, HttpErrorCode, Open};
use shaddock::protocol::socketio::v09;
use shaddock::session::socketio::SioVersion;
use shaddock::session::socketio::polling as server;

use super::tests::{Harness, SIO_ID, sio_message, sio_push, sio_request};
use super::*;
use crate::wire::pomelo;

const PIECES: [usize; 6] = [1, 2, 3, 7, 64, 1 << 20];

fn eio(version: socketio::Version) -> EioVersion {
    if version == socketio::Version::Eio3 { EioVersion::V3 } else { EioVersion::V4 }
}

fn server_version(version: socketio::Version) -> SioVersion {
    match version {
        socketio::Version::V09 => SioVersion::V09,
        socketio::Version::Eio3 => SioVersion::Eio3,
        socketio::Version::Eio4 => SioVersion::Eio4,
    }
}

/// A poll's answer holding `packets`, as shaddock's reactor writes it: the session's pending
/// payload elements, less EIO 4's first separator, after a keep-alive 200 head.
fn poll_answer(version: socketio::Version, packets: &[&[u8]]) -> Vec<u8> {
    let mut pending = BytesMut::new();
    for packet in packets {
        let text = std::str::from_utf8(packet).unwrap();
        match version {
            socketio::Version::V09 => v09::encode_framed(text, &mut pending),
            _ => engineio::encode_payload_item(eio(version), text, &mut pending),
        }
    }
    let skip = server::body_skip(server_version(version));
    let mut out = BytesMut::new();
    server::encode_answer(&pending[skip..], None, true, &mut out);
    out.to_vec()
}

/// The answer to a POST the session took.
fn post_answer(version: socketio::Version) -> Vec<u8> {
    let mut out = BytesMut::new();
    server::encode_post_answer(server_version(version), None, true, &mut out);
    out.to_vec()
}

/// The open packet shaddock writes for sid `s1`, a second's ping interval and timeout.
fn open_packet(version: socketio::Version) -> Vec<u8> {
    let open = Open {
        sid: "s1",
        upgrades: &["websocket"],
        ping_interval_ms: 1000,
        ping_timeout_ms: 2000,
        max_payload: 65_536,
    };
    let mut out = BytesMut::new();
    engineio::encode_open(eio(version), &open, &mut out);
    out.to_vec()
}

/// One client request, read by shaddock's parser.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
    query: String,
    body: Vec<u8>,
    keep_alive: bool,
}

/// Every request in `bytes` (which must hold whole requests only).
fn requests(bytes: &[u8]) -> Vec<Request> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let head = server_http::decode_head(&bytes[at..], 8192).unwrap().expect("a whole head");
        let len = head.content_length().unwrap();
        let body = bytes[at + head.len..at + head.len + len].to_vec();
        assert_eq!(head.header("Host"), Some(&b"127.0.0.1:3010"[..]));
        out.push(Request {
            method: head.method.into(),
            path: head.path.into(),
            query: head.query.into(),
            body,
            keep_alive: head.keep_alive(),
        });
        at += head.len + len;
    }
    out
}

/// The one request in `bytes`.
fn request(bytes: &[u8]) -> Request {
    let mut all = requests(bytes);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

/// The packets of a POST's body, as the server's session decodes them.
fn posted_packets(version: socketio::Version, body: &[u8]) -> Vec<String> {
    match version {
        socketio::Version::V09 => v09::decode_frames(std::str::from_utf8(body).unwrap(), 100)
            .unwrap()
            .into_iter()
            .map(str::to_string)
            .collect(),
        _ => engineio::decode_payload(eio(version), body, 100)
            .unwrap()
            .iter()
            .map(|p| {
                let mut text = BytesMut::new();
                engineio::encode_packet(p.kind, p.data, &mut text);
                String::from_utf8(text.to_vec()).unwrap()
            })
            .collect(),
    }
}

/// A query parameter of a request.
fn param<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    server_http::query_param(&request.query, name)
}

/// Asserts `sent` is the next poll of session `sid`.
fn assert_poll(version: socketio::Version, sent: &[u8], sid: &str) {
    let poll = request(sent);
    assert_eq!(poll.method, "GET");
    assert!(poll.keep_alive && poll.body.is_empty());
    match version {
        socketio::Version::V09 => {
            assert_eq!(poll.path, format!("/socket.io/1/xhr-polling/{sid}"));
            assert!(param(&poll, "t").is_some());
        }
        _ => {
            assert_eq!(poll.path, "/socket.io/");
            assert_eq!(
                param(&poll, "EIO"),
                Some(if version == socketio::Version::Eio3 { "3" } else { "4" })
            );
            assert_eq!(param(&poll, "transport"), Some("polling"));
            assert_eq!(param(&poll, "sid"), Some(sid));
        }
    }
}

/// Asserts `posted` is one POST of `packets` to session `sid`.
fn assert_post(version: socketio::Version, posted: &[u8], sid: &str, packets: &[&str]) {
    let post = request(posted);
    assert_eq!(post.method, "POST");
    assert!(post.keep_alive);
    match version {
        socketio::Version::V09 => assert_eq!(post.path, format!("/socket.io/1/xhr-polling/{sid}")),
        _ => assert_eq!(param(&post, "sid"), Some(sid)),
    }
    assert_eq!(posted_packets(version, &post.body), packets);
}

/// After the enter went out: the POST answered, then a poll brings the enter's answer, three
/// pushes (one stale), another message and the heartbeat; a kick ends it.
fn after_enter(
    h: &mut Harness,
    conn: &mut Conn,
    version: socketio::Version,
    sid: &str,
    piece: usize,
) {
    assert_eq!(conn.stage, Stage::Entering);
    assert!(h.feed_on(conn, Channel::Post, &post_answer(version), piece).unwrap().is_empty());
    assert!(h.posted().is_empty(), "nothing waited");

    h.book.begin(5, 4, std::iter::once((&mut conn.tally, true)));
    let answer = sio_message(version, r#"{"id":1,"body":{"code":200,"msg":"add ok"}}"#);
    let onadd = sio_message(version, r#"{"route":"onAdd","body":{"clientId":"x"}}"#);
    let beat: &[u8] = match version {
        socketio::Version::V09 => b"2::",
        socketio::Version::Eio3 => b"3", // the pong of the client's ping
        socketio::Version::Eio4 => b"2",
    };
    let server = poll_answer(
        version,
        &[
            &answer,
            &sio_push(version, 5),
            &onadd,
            &sio_push(version, 4),
            beat,
            &sio_push(version, 6),
        ],
    );
    let sent = h.feed(conn, &server, piece).unwrap();
    assert_eq!(conn.stage, Stage::Entered);
    let stats = h.book.stats(std::iter::once(&conn.tally));
    assert_eq!((stats.deliveries, stats.stale), (2, 1));
    assert!(h.pending.is_empty());
    assert_poll(version, &sent, sid);
    match version {
        socketio::Version::Eio3 => assert!(h.posted().is_empty()),
        socketio::Version::Eio4 => assert_post(version, &h.posted(), sid, &["3"]),
        socketio::Version::V09 => assert_post(version, &h.posted(), sid, &["2::"]),
    }

    // The client's heartbeat (EIO 3's ping; 0.9's with --heartbeat-secs) is a POST, or waits
    // for the one in flight.
    assert!(h.heartbeat(conn).is_empty(), "nothing on the poll's socket");
    let waited = match version {
        socketio::Version::Eio3 => {
            assert_post(version, &h.posted(), sid, &["2"]);
            h.heartbeat(conn);
            assert!(h.posted().is_empty(), "one POST at a time");
            "2"
        }
        socketio::Version::Eio4 => {
            assert!(h.posted().is_empty(), "an EIO 4 client never pings");
            h.feed_on(conn, Channel::Post, &post_answer(version), piece).unwrap();
            ""
        }
        socketio::Version::V09 => {
            assert!(h.posted().is_empty(), "behind the POST of 2::");
            "2::"
        }
    };
    if !waited.is_empty() {
        h.feed_on(conn, Channel::Post, &post_answer(version), piece).unwrap();
        assert_post(version, &h.posted(), sid, &[waited]);
        h.feed_on(conn, Channel::Post, &post_answer(version), piece).unwrap();
    }
    assert!(h.posted().is_empty());

    let kick = sio_message(version, r#"{"route":"onKick","reason":"slow"}"#);
    let server = match version {
        socketio::Version::V09 => poll_answer(version, &[&kick, b"0::"]),
        _ => poll_answer(version, &[&kick, b"41", b"1"]),
    };
    assert_eq!(h.feed(conn, &server, piece), Err(Fault::Kicked("slow".into())));
}

/// An Engine.IO 3 or 4 polling client from its first poll to a kick.
fn eio_polling_conversation(version: socketio::Version, piece: usize) {
    let mut h = Harness::new();
    h.id = SIO_ID;
    let mut conn = Conn::new(Protocol::SocketIoPolling(version));
    let first = request(&h.start(&mut conn));
    assert_eq!(conn.stage, Stage::Requesting);
    assert_eq!((first.method.as_str(), first.path.as_str()), ("GET", "/socket.io/"));
    let digit = if version == socketio::Version::Eio3 { "3" } else { "4" };
    assert_eq!(param(&first, "EIO"), Some(digit));
    assert_eq!(param(&first, "transport"), Some("polling"));
    assert_eq!(param(&first, "sid"), None);
    assert!(param(&first, "t").is_some());

    let open = open_packet(version);
    let opening: Vec<&[u8]> = match version {
        socketio::Version::Eio3 => vec![&open, b"40"], // connected unasked
        _ => vec![&open],
    };
    let sent = h.feed(&mut conn, &poll_answer(version, &opening), piece).unwrap();
    assert_poll(version, &sent, "s1");
    assert_eq!(h.learned.poll_wait_secs, Some(3), "pingInterval + pingTimeout");
    let enter = if version == socketio::Version::Eio4 {
        assert_eq!(conn.stage, Stage::Handshaking);
        assert_post(version, &h.posted(), "s1", &["40"]);
        assert_eq!(h.learned.heartbeat_secs, None, "the server pings");
        // The connect comes while the POST of `40` is still in flight: the enter waits.
        let sent =
            h.feed(&mut conn, &poll_answer(version, &[br#"40{"sid":"s2"}"#]), piece).unwrap();
        assert_poll(version, &sent, "s1");
        assert_eq!(conn.stage, Stage::Entering);
        assert!(h.posted().is_empty(), "one POST at a time");
        h.feed_on(&mut conn, Channel::Post, &post_answer(version), piece).unwrap();
        h.posted()
    } else {
        assert_eq!(h.learned.heartbeat_secs, Some(1), "the client pings every pingInterval");
        h.posted()
    };
    let post = request(&enter);
    let packets = posted_packets(version, &post.body);
    assert_eq!(packets.len(), 1);
    let (id, route, body) = sio_request(version, &packets[0]);
    assert_eq!((id, route.as_str()), (1, pomelo::ENTER));
    assert!(body.contains(r#""clientId":"c7""#), "{body}");
    after_enter(&mut h, &mut conn, version, "s1", piece);
}

#[test]
fn engine_io_polling_at_every_piece_size() {
    for version in [socketio::Version::Eio3, socketio::Version::Eio4] {
        for piece in PIECES {
            eio_polling_conversation(version, piece);
        }
    }
}

/// A socket.io 0.9 polling client: the handshake on its own connection, then the polls.
fn v09_polling_conversation(piece: usize) {
    let version = socketio::Version::V09;
    let mut h = Harness::new();
    h.id = SIO_ID;
    let mut conn = Conn::new(Protocol::SocketIoPolling(version));
    let handshake = request(&h.start(&mut conn));
    assert_eq!((handshake.method.as_str(), handshake.path.as_str()), ("GET", "/socket.io/1/"));
    assert!(!handshake.keep_alive, "its own connection");
    assert_eq!(conn.stage, Stage::Requesting);
    let mut body = BytesMut::new();
    v09::encode_handshake("c2lk_1-x", 45, 60, &["websocket", "xhr-polling"], &mut body);
    let mut answer = BytesMut::new();
    let response = server_http::Response {
        status: 200,
        content_type: "text/plain",
        headers: &[],
        body: &body,
    };
    server_http::encode_response(&response, &mut answer);
    assert!(h.feed(&mut conn, &answer, piece).unwrap().is_empty());
    assert_eq!((conn.stage, conn.sid.as_deref()), (Stage::Redialing, Some("c2lk_1-x")));
    assert_eq!(h.learned.poll_wait_secs, Some(45), "the heartbeat timeout");

    // The loop connects again: the first poll takes the sid.
    conn.stage = Stage::Connecting;
    let sent = h.start(&mut conn);
    assert_poll(version, &sent, "c2lk_1-x");
    assert_eq!((conn.stage, conn.sid.as_deref()), (Stage::Handshaking, None));
    let sent = h.feed(&mut conn, &poll_answer(version, &[b"1::"]), piece).unwrap();
    assert_poll(version, &sent, "c2lk_1-x");
    let post = request(&h.posted());
    let packets = posted_packets(version, &post.body);
    assert!(post.body.starts_with(b"3:::"), "one packet as is");
    let (id, route, _) = sio_request(version, &packets[0]);
    assert_eq!((id, route.as_str()), (1, pomelo::ENTER));
    after_enter(&mut h, &mut conn, version, "c2lk_1-x", piece);
    // The next start (a churn, a retry) handshakes again.
    assert_eq!(request(&h.start(&mut conn)).path, "/socket.io/1/");
}

#[test]
fn socket_io_09_polling_at_every_piece_size() {
    for piece in PIECES {
        v09_polling_conversation(piece);
    }
}

/// A client of `version` whose first poll was answered (EIO 4: connected too).
fn opened(version: socketio::Version) -> (Harness, Conn) {
    let mut h = Harness::new();
    h.id = SIO_ID;
    let mut conn = Conn::new(Protocol::SocketIoPolling(version));
    h.start(&mut conn);
    let open = open_packet(version);
    h.feed(&mut conn, &poll_answer(version, &[&open, b"40"]), 1 << 20).unwrap();
    h.posted();
    (h, conn)
}

#[test]
fn every_split_point_of_the_first_answers() {
    for version in [socketio::Version::Eio3, socketio::Version::Eio4] {
        let open = open_packet(version);
        let answer = poll_answer(version, &[&open, b"40"]);
        let ok = post_answer(version);
        for cut in 0..answer.len() {
            let mut h = Harness::new();
            h.id = SIO_ID;
            let mut conn = Conn::new(Protocol::SocketIoPolling(version));
            h.start(&mut conn);
            assert!(h.feed(&mut conn, &answer[..cut], 1 << 20).unwrap().is_empty(), "cut {cut}");
            assert_eq!(conn.stage, Stage::Requesting, "cut {cut}");
            let sent = h.feed(&mut conn, &answer[cut..], 1 << 20).unwrap();
            assert_poll(version, &sent, "s1");
            assert!(h.pending.is_empty());
            let posted = h.posted();
            if version == socketio::Version::Eio4 {
                assert_post(version, &posted, "s1", &["40"]);
            }
            let cut = cut.min(ok.len());
            h.feed_on(&mut conn, Channel::Post, &ok[..cut], 1 << 20).unwrap();
            h.feed_on(&mut conn, Channel::Post, &ok[cut..], 1 << 20).unwrap();
            assert!(h.post_pending.is_empty(), "cut {cut}");
            assert_eq!(conn.stage, Stage::Entering, "cut {cut}");
        }
    }
}

#[test]
fn refusals_and_broken_sessions_are_faults() {
    let eio4 = socketio::Version::Eio4;
    // The first poll refused (an unsupported EIO), or answered without an open packet.
    let mut h = Harness::new();
    let mut conn = Conn::new(Protocol::SocketIoPolling(eio4));
    h.start(&mut conn);
    let mut refusal = BytesMut::new();
    server::encode_eio_refusal(HttpErrorCode::UnsupportedProtocolVersion, &mut refusal);
    let err = h.feed(&mut conn, &refusal, 1).unwrap_err();
    assert!(matches!(&err, Fault::Refused(w) if w.starts_with("poll answered 400")), "{err:?}");
    let mut conn = Conn::new(Protocol::SocketIoPolling(eio4));
    let mut h = Harness::new();
    h.start(&mut conn);
    let err = h.feed(&mut conn, &poll_answer(eio4, &[b"6"]), 1).unwrap_err();
    assert!(matches!(err, Fault::Protocol(_)), "{err:?}");
    // A session the server forgot, a POST refused, an answer nobody asked for.
    let (mut h, mut conn) = opened(eio4);
    let mut unknown = BytesMut::new();
    server::encode_unknown_session(SioVersion::Eio4, None, &mut unknown);
    let err = h.feed(&mut conn, &unknown, 1).unwrap_err();
    assert!(matches!(&err, Fault::Refused(w) if w.contains("Session ID unknown")), "{err:?}");
    let (mut h, mut conn) = opened(eio4);
    let mut refusal = BytesMut::new();
    server::encode_eio_refusal(HttpErrorCode::BadRequest, &mut refusal);
    let err = h.feed_on(&mut conn, Channel::Post, &refusal, 1).unwrap_err();
    assert!(matches!(&err, Fault::Refused(w) if w.starts_with("POST answered 400")), "{err:?}");
    let (mut h, mut conn) = opened(eio4);
    h.feed_on(&mut conn, Channel::Post, &post_answer(eio4), 1).unwrap(); // `40`'s
    h.feed_on(&mut conn, Channel::Post, &post_answer(eio4), 1).unwrap(); // the enter's
    let err = h.feed_on(&mut conn, Channel::Post, &post_answer(eio4), 1).unwrap_err();
    assert_eq!(err, Fault::Protocol("an answer to no POST".into()));
    // Engine.IO's close, a body that does not decode, a poll answered with a close.
    let (mut h, mut conn) = opened(eio4);
    assert_eq!(h.feed(&mut conn, &poll_answer(eio4, &[b"1"]), 1), Err(Fault::Closed));
    let (mut h, mut conn) = opened(eio4);
    let mut bad = BytesMut::new();
    server::encode_answer(b"9", None, true, &mut bad);
    assert!(matches!(h.feed(&mut conn, &bad, 1), Err(Fault::Protocol(_))));
    let (mut h, mut conn) = opened(eio4);
    let mut closing = BytesMut::new();
    server::encode_answer(b"6", None, false, &mut closing);
    let err = h.feed(&mut conn, &closing, 1).unwrap_err();
    assert_eq!(err, Fault::Protocol("a poll answered with Connection: close".into()));
    // socket.io 0.9: a handshake without xhr-polling, and a sid the server does not know.
    let v09 = socketio::Version::V09;
    let mut h = Harness::new();
    let mut conn = Conn::new(Protocol::SocketIoPolling(v09));
    h.start(&mut conn);
    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\ns:45:60:websocket";
    let err = h.feed(&mut conn, answer, 1).unwrap_err();
    assert!(matches!(&err, Fault::Refused(w) if w.contains("handshake body")), "{err:?}");
    let mut h = Harness::new();
    let mut conn = Conn::new(Protocol::SocketIoPolling(v09));
    conn.sid = Some("stale".into());
    h.start(&mut conn);
    let mut unknown = BytesMut::new();
    server::encode_unknown_session(SioVersion::V09, None, &mut unknown);
    assert_eq!(h.feed(&mut conn, &unknown, 1), Err(Fault::Refused("socket.io error 1+0".into())));
}

#[test]
fn a_post_whose_connection_closed_goes_once_more() {
    let eio4 = socketio::Version::Eio4;
    let id = SIO_ID;
    // The POST of `40` is in flight: the server closed the connection before answering.
    let (mut h, mut conn) = opened(eio4);
    conn.post_closed(false, &id, &mut h.io()).unwrap();
    let again = request(&h.posted());
    assert_eq!(posted_packets(eio4, &again.body), ["40"]);
    let err = conn.post_closed(false, &id, &mut h.io()).unwrap_err();
    assert_eq!(err, Fault::Protocol("the POST connection closed before its answer".into()));
    // Closed after part of its answer came: no resend.
    let (mut h, mut conn) = opened(eio4);
    assert!(conn.post_closed(true, &id, &mut h.io()).is_err());
    // Nothing in flight (a carrier closed while idle): nothing to do.
    let (mut h, mut conn) = opened(eio4);
    h.feed_on(&mut conn, Channel::Post, &post_answer(eio4), 1).unwrap();
    assert_eq!(request(&h.posted()).method, "POST", "the enter, queued behind `40`");
    h.feed_on(&mut conn, Channel::Post, &post_answer(eio4), 1).unwrap();
    conn.post_closed(false, &id, &mut h.io()).unwrap();
    assert!(h.posted().is_empty());
    // An answer that closes: the loop drops the socket, once.
    let (mut h, mut conn) = opened(eio4);
    let mut closing = BytesMut::new();
    server::encode_post_answer(SioVersion::Eio4, None, false, &mut closing);
    assert!(!conn.take_post_closing());
    h.feed_on(&mut conn, Channel::Post, &closing, 1).unwrap();
    assert!(conn.take_post_closing());
    assert!(!conn.take_post_closing());
}

#[test]
fn waits_are_bounded() {
    let secs = |s: u64| s * 1_000_000_000;
    let (mut h, mut conn) = opened(socketio::Version::Eio4);
    // Learned: 1 s + 2 s; a poll may wait that and the slack; the POST of `40` is in flight.
    let start = h.now_ns;
    let limit = 3 + u64::from(polling::POLL_SLACK_SECS);
    assert_eq!(conn.overdue(start + secs(limit), &h.learned), None);
    let late = conn.overdue(start + secs(limit) + 1, &h.learned).unwrap();
    assert!(late.starts_with("poll not answered"), "{late}");
    let post_limit = secs(polling::POST_WAIT_SECS.into());
    h.now_ns = start + post_limit - secs(1);
    h.feed(&mut conn, &poll_answer(socketio::Version::Eio4, &[b"6"]), 1).unwrap();
    let late = conn.overdue(start + post_limit + 1, &h.learned).unwrap();
    assert!(late.starts_with("POST not answered"), "{late}");
    h.feed_on(&mut conn, Channel::Post, &post_answer(socketio::Version::Eio4), 1).unwrap();
    assert_eq!(conn.overdue(start + post_limit + 1, &h.learned), None);
    // A connection without a poll out (closed, or not polling) waits for nothing.
    assert_eq!(
        Conn::new(Protocol::SocketIoPolling(socketio::Version::V09)).overdue(u64::MAX, &h.learned),
        None
    );
}

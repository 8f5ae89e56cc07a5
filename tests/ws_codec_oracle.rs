//! shaddock's WebSocket codecs checked against tungstenite 0.26 as an oracle (issue 3), all in
//! memory: frames shaddock encodes parse in tungstenite to the same opcode, FIN and payload;
//! frames tungstenite's client masks decode in shaddock to the same, at every split point;
//! tungstenite's client handshake is accepted by `decode_request`, and tungstenite accepts the
//! 101 (accept key included) and reads shaddock's refusals as the right HTTP status.

use std::collections::VecDeque;
use std::io::{self, Cursor, Read, Write};

use bytes::BytesMut;
use proptest::prelude::*;
use shaddock::protocol::websocket::frame::{self, ClientFrame, MAX_CONTROL_PAYLOAD, OpCode};
use shaddock::protocol::websocket::upgrade::{self, UpgradeError};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::handshake::client::{Request, generate_key, generate_request};
use tungstenite::protocol::frame::coding::{CloseCode, OpCode as TOpCode};
use tungstenite::protocol::frame::{Frame as TFrame, FrameHeader, FrameSocket};
use tungstenite::{Bytes, Message};

const MAX_PAYLOAD: usize = 1 << 20;
const MAX_HEAD: usize = 8192;

/// A Read that hands out its bytes in the given pieces, one piece (or less) per `read`: the
/// oracle sees the frame split exactly where the test says.
struct Pieces(VecDeque<Vec<u8>>);

impl Pieces {
    fn split(bytes: &[u8], cut: usize) -> Pieces {
        let (a, b) = bytes.split_at(cut);
        Pieces([a.to_vec(), b.to_vec()].into_iter().filter(|p| !p.is_empty()).collect())
    }
}

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(mut piece) = self.0.pop_front() else {
            return Ok(0);
        };
        let n = piece.len().min(buf.len());
        buf[..n].copy_from_slice(&piece[..n]);
        if n < piece.len() {
            self.0.push_front(piece.split_off(n));
        }
        Ok(n)
    }
}

/// An in-memory server made of shaddock's codecs: it answers the upgrade request written to it
/// with `encode_accept` or `encode_rejection`, then collects what the client writes and serves
/// whatever the test queues.
struct Loopback {
    allowed_origins: Vec<String>,
    upgraded: bool,
    from_client: Vec<u8>,
    to_client: VecDeque<u8>,
}

impl Loopback {
    fn new(allowed_origins: &[&str]) -> Loopback {
        Loopback {
            allowed_origins: allowed_origins.iter().map(|s| s.to_string()).collect(),
            upgraded: false,
            from_client: Vec::new(),
            to_client: VecDeque::new(),
        }
    }

    fn serve(&mut self, bytes: &[u8]) {
        self.to_client.extend(bytes);
    }

    /// Decodes the next whole client frame and drops it from the input.
    fn next_frame(&mut self) -> (bool, OpCode, Vec<u8>) {
        let (frame, used) = frame::decode_client_frame(&mut self.from_client, MAX_PAYLOAD)
            .expect("a valid client frame")
            .expect("a whole client frame");
        let out = (frame.fin, frame.opcode, frame.payload.to_vec());
        self.from_client.drain(..used);
        out
    }
}

impl Read for Loopback {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.upgraded {
            let mut answer = BytesMut::new();
            match upgrade::decode_request(&self.from_client, MAX_HEAD) {
                Ok(None) => return Err(io::ErrorKind::WouldBlock.into()),
                Ok(Some((request, used))) => {
                    match upgrade::check_origin(&request, &self.allowed_origins) {
                        Ok(()) => upgrade::encode_accept(request.key, None, &mut answer),
                        Err(e) => upgrade::encode_rejection(&e, &mut answer),
                    }
                    self.from_client.drain(..used);
                }
                Err(e) => upgrade::encode_rejection(&e, &mut answer),
            }
            self.upgraded = true;
            self.to_client.extend(&answer[..]);
        }
        if self.to_client.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.to_client.read(buf)
    }
}

impl Write for Loopback {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.from_client.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A client request for `ws://127.0.0.1:3010/` with `extra` headers added.
fn request(extra: &[(&'static str, &str)]) -> Request {
    let mut req = "ws://127.0.0.1:3010/pomelo?v=1".into_client_request().unwrap();
    for (name, value) in extra {
        req.headers_mut().insert(*name, value.parse().unwrap());
    }
    req
}

/// The HTTP status tungstenite read from a refused handshake.
fn refused(req: Request, allowed: &[&str]) -> (u16, Option<String>) {
    match tungstenite::client(req, Loopback::new(allowed)) {
        Err(HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            let version =
                resp.headers().get("Sec-WebSocket-Version").map(|v| v.to_str().unwrap().to_owned());
            (resp.status().as_u16(), version)
        }
        Err(e) => panic!("expected an HTTP refusal, got {e:?}"),
        Ok(_) => panic!("expected an HTTP refusal, got a WebSocket"),
    }
}

#[test]
fn tungstenite_client_handshake_is_accepted_and_accepts_the_101() {
    let req = request(&[
        ("Origin", "http://127.0.0.1:3080"),
        ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
    ]);
    let (ws, resp) = tungstenite::client(req, Loopback::new(&["http://127.0.0.1:3080"]))
        .expect("tungstenite accepts the 101 and its Sec-WebSocket-Accept");
    assert_eq!(resp.status().as_u16(), 101);
    assert!(resp.headers().get("Sec-WebSocket-Extensions").is_none());
    assert!(resp.headers().get("Sec-WebSocket-Protocol").is_none());
    assert!(ws.get_ref().from_client.is_empty(), "the whole head was consumed");
}

#[test]
fn tungstenite_request_at_every_split_point() {
    let key = generate_key();
    let (bytes, sent_key) = generate_request(request(&[("Sec-WebSocket-Key", &key)])).unwrap();
    assert_eq!(sent_key, key);
    for cut in 0..bytes.len() {
        assert_eq!(upgrade::decode_request(&bytes[..cut], MAX_HEAD), Ok(None), "cut at {cut}");
    }
    let (req, used) = upgrade::decode_request(&bytes, MAX_HEAD).unwrap().unwrap();
    assert_eq!((req.path, req.key, req.origin, used), ("/pomelo?v=1", &key[..], None, bytes.len()));
}

#[test]
fn tungstenite_reads_the_refusals() {
    assert_eq!(
        refused(request(&[("Origin", "http://evil.example")]), &["http://127.0.0.1:3080"]),
        (403, None)
    );
    assert_eq!(
        refused(request(&[("Sec-WebSocket-Version", "8")]), &[]),
        (426, Some("13".to_owned()))
    );
    assert_eq!(refused(request(&[("Sec-WebSocket-Key", "short")]), &[]), (400, None));
    assert_eq!(refused(request(&[("Upgrade", "h2c")]), &[]), (400, None));
}

#[test]
fn a_whole_session_with_tungstenite_as_the_client() {
    let (mut ws, _) = tungstenite::client(request(&[]), Loopback::new(&[])).unwrap();
    let heartbeat: &[u8] = &[0x03, 0x00, 0x00, 0x00];

    // Client to server: masked by tungstenite with random keys, unmasked by shaddock.
    ws.send(Message::binary(heartbeat)).unwrap();
    ws.send(Message::Ping(Bytes::from_static(b"ping?"))).unwrap();
    ws.send(Message::text("text is refused above this layer")).unwrap();
    let lb = ws.get_mut();
    assert_eq!(lb.next_frame(), (true, OpCode::Binary, heartbeat.to_vec()));
    assert_eq!(lb.next_frame(), (true, OpCode::Ping, b"ping?".to_vec()));
    assert_eq!(lb.next_frame().1, OpCode::Text);

    // Server to client: a package, a fragmented message, a ping tungstenite must answer.
    let mut out = BytesMut::new();
    frame::encode_frame(OpCode::Binary, heartbeat, &mut out);
    frame::encode_header(false, OpCode::Binary, 3, &mut out);
    out.extend_from_slice(b"abc");
    frame::encode_frame(OpCode::Ping, b"are you there", &mut out);
    frame::encode_header(true, OpCode::Continuation, 2, &mut out);
    out.extend_from_slice(b"de");
    ws.get_mut().serve(&out);
    assert_eq!(ws.read().unwrap(), Message::binary(heartbeat));
    assert_eq!(ws.read().unwrap(), Message::Ping(Bytes::from_static(b"are you there")));
    assert_eq!(ws.read().unwrap(), Message::binary(&b"abcde"[..]));
    ws.flush().unwrap();
    assert_eq!(ws.get_mut().next_frame(), (true, OpCode::Pong, b"are you there".to_vec()));

    // The server closes; tungstenite echoes the close, which shaddock decodes.
    let mut out = BytesMut::new();
    frame::encode_close(1001, "shutdown", &mut out);
    ws.get_mut().serve(&out);
    let Message::Close(Some(close)) = ws.read().unwrap() else {
        panic!("expected a close");
    };
    assert_eq!((u16::from(close.code), close.reason.as_str()), (1001, "shutdown"));
    ws.flush().unwrap();
    let (fin, op, payload) = ws.get_mut().next_frame();
    assert_eq!((fin, op), (true, OpCode::Close));
    assert_eq!(frame::decode_close(&payload).unwrap().map(|(c, _)| c), Some(1001));
}

#[test]
fn close_codes_agree_with_tungstenite() {
    for code in 0..=u16::MAX {
        // IANA registered 1014 (Bad Gateway); tungstenite 0.26 still counts it as reserved.
        if code == 1014 {
            continue;
        }
        let ours = frame::decode_close(&code.to_be_bytes()).is_ok();
        assert_eq!(ours, CloseCode::from(code).is_allowed(), "close code {code}");
    }
}

/// Data frames with any FIN; control frames with FIN and at most 125 bytes.
fn opcode_and_fin() -> impl Strategy<Value = (OpCode, bool)> {
    prop_oneof![
        (
            prop::sample::select(vec![OpCode::Continuation, OpCode::Text, OpCode::Binary]),
            any::<bool>()
        ),
        (prop::sample::select(vec![OpCode::Close, OpCode::Ping, OpCode::Pong]), Just(true)),
    ]
}

/// Mostly small payloads of random bytes, sometimes around the 16/64-bit length boundaries.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..300),
        1 => (65_533usize..65_540, any::<u8>())
            .prop_map(|(len, seed)| (0..len).map(|i| seed.wrapping_add((i % 251) as u8)).collect()),
    ]
}

/// The split points to try: all of them for frames up to 512 bytes; for longer ones every one
/// through the longest header, the last few, and one anywhere.
fn cuts(len: usize, anywhere: prop::sample::Index) -> Vec<usize> {
    if len <= 512 {
        return (0..=len).collect();
    }
    let mut cuts: Vec<usize> = (0..=frame::MAX_CLIENT_HEADER_LEN + 2).collect();
    cuts.extend(len - 3..=len);
    cuts.push(anywhere.index(len + 1));
    cuts
}

proptest! {
    #[test]
    fn server_frames_parse_in_tungstenite(
        (opcode, fin) in opcode_and_fin(),
        payload in payload(),
        anywhere in any::<prop::sample::Index>(),
    ) {
        let payload = if opcode.is_control() { &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)] } else { &payload[..] };
        let mut out = BytesMut::new();
        frame::encode_header(fin, opcode, payload.len(), &mut out);
        out.extend_from_slice(payload);
        if fin {
            let mut whole = BytesMut::new();
            frame::encode_frame(opcode, payload, &mut whole);
            prop_assert_eq!(&whole, &out);
        }
        let header_len = frame::header_len(payload.len());
        for cut in cuts(out.len(), anywhere) {
            let mut cursor = Cursor::new(&out[..cut]);
            match FrameHeader::parse(&mut cursor).unwrap() {
                None => prop_assert!(cut < header_len, "tungstenite wants more at {cut}"),
                Some((header, len)) => {
                    prop_assert!(cut >= header_len);
                    prop_assert_eq!(cursor.position() as usize, header_len);
                    prop_assert_eq!(len, payload.len() as u64);
                    prop_assert_eq!(header.is_final, fin);
                    prop_assert_eq!(u8::from(header.opcode), opcode as u8);
                    prop_assert!(!header.rsv1 && !header.rsv2 && !header.rsv3);
                    prop_assert_eq!(header.mask, None);
                }
            }
            let mut socket = FrameSocket::new(Pieces::split(&out, cut));
            let parsed = socket.read(None).unwrap().expect("a whole frame");
            prop_assert_eq!(parsed.header().is_final, fin);
            prop_assert_eq!(u8::from(parsed.header().opcode), opcode as u8);
            prop_assert_eq!(parsed.payload(), payload);
        }
    }

    #[test]
    fn tungstenite_client_frames_decode_in_shaddock(
        (opcode, fin) in opcode_and_fin(),
        payload in payload(),
        mask in any::<[u8; 4]>(),
        tail in prop::collection::vec(any::<u8>(), 0..6),
        anywhere in any::<prop::sample::Index>(),
    ) {
        let payload = if opcode.is_control() { &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)] } else { &payload[..] };
        let header = FrameHeader {
            is_final: fin,
            opcode: TOpCode::from(opcode as u8),
            mask: Some(mask),
            ..FrameHeader::default()
        };
        let mut bytes = Vec::new();
        TFrame::from_payload(header, Bytes::copy_from_slice(payload)).format(&mut bytes).unwrap();
        // shaddock's own client encoder writes the same bytes.
        let mut ours = BytesMut::new();
        frame::encode_client_frame(fin, opcode, payload, mask, &mut ours);
        prop_assert_eq!(&ours[..], &bytes[..]);

        let n = bytes.len();
        for cut in cuts(n, anywhere).into_iter().filter(|&c| c < n) {
            let mut prefix = bytes[..cut].to_vec();
            prop_assert_eq!(frame::decode_client_frame(&mut prefix, MAX_PAYLOAD), Ok(None), "cut at {}", cut);
        }
        bytes.extend_from_slice(&tail);
        let (decoded, used) = frame::decode_client_frame(&mut bytes, MAX_PAYLOAD).unwrap().unwrap();
        prop_assert_eq!(decoded, ClientFrame { fin, opcode, payload });
        prop_assert_eq!(used, n);
    }

    #[test]
    fn binary_messages_both_ways_through_a_tungstenite_client(
        messages in prop::collection::vec(payload(), 1..4),
    ) {
        let (mut ws, _) = tungstenite::client(request(&[]), Loopback::new(&[])).unwrap();
        for m in &messages {
            ws.send(Message::binary(m.clone())).unwrap();
            let mut out = BytesMut::new();
            frame::encode_frame(OpCode::Binary, m, &mut out);
            ws.get_mut().serve(&out);
        }
        for m in &messages {
            prop_assert_eq!(ws.get_mut().next_frame(), (true, OpCode::Binary, m.clone()));
            prop_assert_eq!(ws.read().unwrap(), Message::binary(m.clone()));
        }
    }

    #[test]
    fn accept_key_matches_tungstenite(raw in any::<[u8; 16]>()) {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD.encode(raw);
        prop_assert_eq!(upgrade::accept_key(&key), tungstenite::handshake::derive_accept_key(key.as_bytes()));
    }
}

#[test]
fn oversize_refusals_carry_their_status() {
    // A request line that never ends is refused at the cap.
    assert_eq!(upgrade::decode_request(&[b'G'; 64], 32), Err(UpgradeError::HeaderTooLarge));
    let bytes = generate_request(request(&[])).unwrap().0;
    assert_eq!(upgrade::decode_request(&bytes, bytes.len() - 1), Err(UpgradeError::HeaderTooLarge));
    // A frame one byte over the cap is refused with 1009 from its header alone.
    let mut big = Vec::new();
    let header = FrameHeader {
        opcode: TOpCode::from(2),
        mask: Some([1, 2, 3, 4]),
        ..FrameHeader::default()
    };
    header.format(1025, &mut big).unwrap();
    assert_eq!(frame::decode_client_frame(&mut big, 1024).unwrap_err().close_code, 1009);
}

//! What the client port reads before a frontend is known: the sniff, plain HTTP request heads,
//! WebSocket upgrade requests, and the client frames after them.

use bytes::BytesMut;

use crate::protocol::http;
use crate::protocol::sniff::{self as sniffing, MAX_SNIFF_LEN, Sniffed};
use crate::protocol::websocket::frame::{self, OpCode};
use crate::protocol::websocket::upgrade;
use crate::session::transport::MAX_REQUEST_HEAD;

/// A small head limit, so that the size check is reached too.
const SMALL_HEAD: usize = 64;

/// The sniff decides on the first 8 bytes at most, and never changes its mind as bytes arrive.
pub fn sniff(data: &[u8]) {
    let answer = sniffing::sniff(data);
    assert_eq!(sniffing::sniff(&data[..data.len().min(MAX_SNIFF_LEN)]), answer, "first 8 bytes");
    for cut in 0..=data.len().min(MAX_SNIFF_LEN) {
        let early = sniffing::sniff(&data[..cut]);
        assert!(early.is_none() || early == answer, "cut at {cut}: {early:?}, then {answer:?}");
    }
}

/// A plain request head: it lies within its input and its limit, its accessors answer, and
/// where the sniff calls the bytes HTTP, the path the transport routes on is the head's.
pub fn http_head(data: &[u8]) {
    let _ = http::decode_head(data, SMALL_HEAD);
    let Ok(Some(head)) = http::decode_head(data, MAX_REQUEST_HEAD) else {
        return;
    };
    assert!(head.len <= data.len().min(MAX_REQUEST_HEAD));
    let _ = (head.header("Host"), head.query_param("EIO"), head.content_length());
    let _ = (head.keep_alive(), head.is_upgrade(), head.has_body());
    if sniffing::sniff(data) == Some(Sniffed::Http) {
        assert_eq!(http::request_path(data), Some(head.path), "the routed path is the head's");
    }
}

/// An upgrade request: what is accepted gets a 101 that names the accept key, what is refused
/// gets a response with the refusal's status, and every strict prefix of an accepted head is
/// "need more".
pub fn ws_upgrade(data: &[u8]) {
    let _ = upgrade::decode_request(data, SMALL_HEAD);
    match upgrade::decode_request(data, MAX_REQUEST_HEAD) {
        Ok(None) => {}
        Ok(Some((request, used))) => {
            assert!(used <= data.len().min(MAX_REQUEST_HEAD));
            for cut in [1, used / 2, used - 1] {
                assert_eq!(upgrade::decode_request(&data[..cut], MAX_REQUEST_HEAD), Ok(None));
            }
            let allowed: Vec<String> = request.origin.into_iter().map(str::to_owned).collect();
            assert_eq!(upgrade::check_origin(&request, &allowed), Ok(()));
            let mut out = BytesMut::new();
            upgrade::encode_accept(request.key, None, &mut out);
            let accept = upgrade::accept_key(request.key);
            let (status, headers) = response_head(&out);
            assert_eq!(status, 101);
            assert!(headers.iter().any(|(n, v)| n == "Sec-WebSocket-Accept" && *v == accept));
        }
        Err(error) => {
            let mut out = BytesMut::new();
            upgrade::encode_rejection(&error, &mut out);
            assert_eq!(response_head(&out).0, error.status());
        }
    }
}

/// The status and headers of the response head at the front of `out`.
fn response_head(out: &[u8]) -> (u16, Vec<(String, String)>) {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut response = httparse::Response::new(&mut headers);
    let parsed = response.parse(out).expect("the server's head parses");
    assert!(parsed.is_complete(), "a whole head");
    let headers = response
        .headers
        .iter()
        .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
        .collect();
    (response.code.expect("a status"), headers)
}

/// The largest frame payload the target takes.
const MAX_PAYLOAD: usize = 1 << 16;

/// Client frames one after another: each re-encodes (with another mask) to a frame that decodes
/// the same, a strict prefix of one is "need more" and left as it was, and a close payload
/// survives the server's close frame.
pub fn ws_frames(data: &[u8]) {
    let mut buf = data.to_vec();
    let mut at = 0;
    while at < buf.len() {
        let Ok(Some((frame, used))) = frame::decode_client_frame(&mut buf[at..], MAX_PAYLOAD)
        else {
            return;
        };
        let original = &data[at..at + used];
        for cut in [2, used - 1] {
            if cut < used {
                let mut short = original[..cut].to_vec();
                assert_eq!(frame::decode_client_frame(&mut short, MAX_PAYLOAD), Ok(None));
                assert_eq!(short, original[..cut], "need more leaves the input as it was");
            }
        }
        let mut out = BytesMut::new();
        frame::encode_client_frame(
            frame.fin,
            frame.opcode,
            frame.payload,
            [7, 0, 0xff, 3],
            &mut out,
        );
        let len = out.len();
        let again = frame::decode_client_frame(&mut out, MAX_PAYLOAD);
        assert_eq!(again, Ok(Some((frame, len))), "decode → encode → decode");
        if frame.opcode == OpCode::Close {
            close(frame.payload);
        }
        at += used;
    }
}

/// A close payload: its code and reason come back from the server's close frame.
fn close(payload: &[u8]) {
    let Ok(Some((code, reason))) = frame::decode_close(payload) else {
        return;
    };
    let mut out = BytesMut::new();
    frame::encode_close(code, reason, &mut out);
    let header = frame::header_len(2 + reason.len());
    assert_eq!(frame::decode_close(&out[header..]), Ok(Some((code, reason))));
}

//! Transport sniffing: the client port serves raw Pomelo TCP, raw MQTT and WebSocket, and the
//! first bytes a client sends decide which (DESIGN §2, "One port, two transports").
//!
//! ```text
//!  "GET /ws HTTP/1.1\r\n..."   an HTTP request line  -> Http   (a WebSocket upgrade, any path)
//!   10 ...                     an MQTT CONNECT       -> Mqtt   (no Pomelo package type is 0x10)
//!   01 00 00 2f 7b 22 ...      anything else         -> Pomelo (a HANDSHAKE package starts with 0x01)
//! ```
//!
//! # Invariants
//! - [`sniff`] answers `Http` only once a whole method token *and* the space after it are in: the
//!   nine methods of RFC 9110 §9 and RFC 5789 (`GET`, `POST`, `PUT`, `DELETE`, `HEAD`, `OPTIONS`,
//!   `PATCH`, `CONNECT`, `TRACE`), case-sensitive as HTTP methods are. Every method but `GET` is
//!   then refused by the upgrade with a 405, which is friendlier than a Pomelo kick.
//! - It answers `Pomelo` as soon as the bytes cannot be the start of `"METHOD "`, which for a real
//!   Pomelo client is the very first byte (`0x01`); garbage goes to the Pomelo decoder, which
//!   refuses it with a reason.
//! - While the bytes are a strict prefix of `"METHOD "` (including no bytes at all) it answers
//!   `None`: the caller waits for more under the handshake deadline and never guesses.
//! - It looks at no more than the first 8 bytes and never allocates or panics.

/// The transport a connection speaks, decided by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// An HTTP request line: a WebSocket upgrade request (or an HTTP request to refuse).
    Http,
    /// `0x10`, an MQTT CONNECT's first byte: MQTT packets over TCP.
    Mqtt,
    /// Anything else: raw Pomelo packages over TCP.
    Pomelo,
}

/// Every request line prefix that means HTTP: a method token and the space after it.
const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"HEAD ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// The first byte of an MQTT CONNECT (packet type 1, flags 0), every version.
const MQTT_CONNECT: u8 = 0x10;

/// The longest `"METHOD "` prefix (`"OPTIONS "`, `"CONNECT "`): no answer needs more bytes.
pub const MAX_SNIFF_LEN: usize = 8;

/// Decides the transport from the first bytes of a connection.
///
/// `Http` when `first` starts with an HTTP method token followed by a space; `Pomelo` as soon as
/// the bytes cannot be the start of one (a Pomelo handshake starts with `0x01`); `None` while
/// `first` is a strict prefix of `"METHOD "` (e.g. `"GE"`, or empty): wait for more, never guess.
pub fn sniff(first: &[u8]) -> Option<Sniffed> {
    if first.first() == Some(&MQTT_CONNECT) {
        return Some(Sniffed::Mqtt);
    }
    let mut undecided = false;
    for method in METHODS {
        if first.starts_with(method) {
            return Some(Sniffed::Http);
        }
        undecided |= method.starts_with(first);
    }
    if undecided { None } else { Some(Sniffed::Pomelo) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_prefix_of_a_request_line_waits_until_the_space() {
        let line = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        for cut in 0..4 {
            assert_eq!(sniff(&line[..cut]), None, "cut at {cut}");
        }
        for cut in 4..=line.len() {
            assert_eq!(sniff(&line[..cut]), Some(Sniffed::Http), "cut at {cut}");
        }
    }

    #[test]
    fn every_method_is_http() {
        for method in METHODS {
            assert_eq!(sniff(method), Some(Sniffed::Http));
            let mut line = method.to_vec();
            line.extend_from_slice(b"/ HTTP/1.1\r\n");
            assert_eq!(sniff(&line), Some(Sniffed::Http));
            assert!(method.len() <= MAX_SNIFF_LEN);
        }
    }

    #[test]
    fn a_pomelo_handshake_is_pomelo_at_once() {
        assert_eq!(sniff(&[0x01]), Some(Sniffed::Pomelo));
        assert_eq!(sniff(b"\x01\x00\x00\x2f{\"sys\":{}}"), Some(Sniffed::Pomelo));
        // Every other package type too.
        for kind in 2u8..=5 {
            assert_eq!(sniff(&[kind, 0, 0, 0]), Some(Sniffed::Pomelo));
        }
    }

    #[test]
    fn garbage_is_pomelo_once_it_stops_looking_like_a_method() {
        assert_eq!(sniff(b"G"), None);
        assert_eq!(sniff(b"GA"), Some(Sniffed::Pomelo));
        assert_eq!(sniff(b"GARBAGE"), Some(Sniffed::Pomelo));
        // A method with no space after it is not a request line.
        assert_eq!(sniff(b"GET/"), Some(Sniffed::Pomelo));
        assert_eq!(sniff(b"GETX"), Some(Sniffed::Pomelo));
        // Methods are case-sensitive.
        assert_eq!(sniff(b"get "), Some(Sniffed::Pomelo));
        // Shared prefixes stay undecided until they diverge.
        assert_eq!(sniff(b"P"), None);
        assert_eq!(sniff(b"PA"), None);
        assert_eq!(sniff(b"PO"), None);
        assert_eq!(sniff(b"PX"), Some(Sniffed::Pomelo));
        assert_eq!(sniff(b"OPTIONS"), None);
        assert_eq!(sniff(b"CONNECT "), Some(Sniffed::Http));
    }

    #[test]
    fn an_mqtt_connect_is_mqtt_at_once() {
        assert_eq!(sniff(&[0x10]), Some(Sniffed::Mqtt));
        // mosquitto_sub's 3.1.1 CONNECT (tests/data/mqtt-captures.md).
        assert_eq!(sniff(b"\x10\x17\x00\x04MQTT\x04\x02\x00\x3c"), Some(Sniffed::Mqtt));
        // Any other MQTT packet first is not a CONNECT: Pomelo's decoder refuses it.
        assert_eq!(sniff(&[0x30, 0x02]), Some(Sniffed::Pomelo));
    }

    #[test]
    fn empty_is_undecided() {
        assert_eq!(sniff(b""), None);
    }

    proptest! {
        #[test]
        fn undecided_only_for_short_prefixes_of_a_method(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            match sniff(&bytes) {
                None => prop_assert!(bytes.len() < MAX_SNIFF_LEN
                    && METHODS.iter().any(|m| m.starts_with(&bytes))),
                Some(Sniffed::Http) => prop_assert!(METHODS.iter().any(|m| bytes.starts_with(m))),
                Some(Sniffed::Mqtt) => prop_assert_eq!(bytes[0], MQTT_CONNECT),
                Some(Sniffed::Pomelo) => prop_assert!(!METHODS.iter().any(|m| m.starts_with(&bytes) || bytes.starts_with(m))),
            }
        }

        #[test]
        fn more_bytes_never_change_a_decision(bytes in proptest::collection::vec(any::<u8>(), 0..12), extra in proptest::collection::vec(any::<u8>(), 0..4)) {
            if let Some(decided) = sniff(&bytes) {
                let mut longer = bytes.clone();
                longer.extend_from_slice(&extra);
                prop_assert_eq!(sniff(&longer), Some(decided));
            }
        }
    }
}

//! The Pomelo route dictionary: route names compressed to 2-byte codes (pomelo 2.2.7
//! `components/dictionary.js`, pomelo-hybrid.md §3).
//!
//! ```text
//! code 1..=N     every handler route ("serverType.handler.method"), sorted as strings
//! code N+1..     the user dictionary (config/dictionary.json), in its order
//! version        base64(md5(JSON.stringify(routeToCode)))
//!                  = base64(md5(`{"route":code,...}` in code order, no whitespace))
//! ```
//!
//! The version is what a client caches and sends back as `sys.dictVersion`; when it matches, the
//! handshake leaves the dictionary out. It is reproduced byte for byte from the captures:
//! `{"connector.entryHandler.enter":1,"pushserver.pushHandler.pushAll":2}` hashes to
//! `5Dno83zSAa6srjDqr0tFnQ==`, and with the user routes `onAdd`, `onMsg` (codes 3, 4) to
//! `T5F17XwM+n8npxRxmLfeXQ==`.
//!
//! # Invariants
//! - Codes are dense, `1..=len()`, and at most `0xFFFF` routes exist; code 0 is never issued.
//! - A route appears once: a repeated handler route or a user route that is already present is
//!   skipped and takes no code. (Pomelo instead gives a repeated user route a second code and
//!   re-points the name at it; shaddock keeps the first, so every code maps back to one name.)
//! - The JSON objects sent in the handshake (`routeToCode`, `codeToRoute`) are rendered once
//!   here, so a handshake costs copies, not formatting; their total size is bounded so that the
//!   handshake package always fits its 3-byte length.
//!
//! # Differences from JavaScript that cannot matter for real route names
//! Strings sort by bytes (UTF-8) where JavaScript sorts by UTF-16 units (they differ only
//! between U+E000..U+FFFF and astral characters), and JavaScript would list integer-like keys
//! (`"42"`) first in the hashed object.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};

use crate::protocol::ProtocolError;
use crate::protocol::pomelo::package::MAX_BODY_LEN;
use crate::protocol::pomelo::{put_decimal, put_json_str};

/// The most routes a dictionary holds (codes are `u16`, 0 is unused).
pub const MAX_ROUTES: usize = 0xFFFF;

/// Room left in a handshake body for everything but the rendered dictionary.
const HANDSHAKE_OVERHEAD: usize = 256;

/// Route names and their codes, with the JSON the handshake sends pre-rendered.
#[derive(Debug, Clone)]
pub struct RouteDict {
    /// `routes[code - 1]` is the route of `code`.
    routes: Vec<Box<str>>,
    codes: HashMap<Box<str>, u16>,
    version: String,
    /// `{"route":code,...}` in code order: both `dict` and `routeToCode`, and what is hashed.
    route_to_code_json: Box<[u8]>,
    /// `{"1":"route",...}`.
    code_to_route_json: Box<[u8]>,
}

impl RouteDict {
    /// Pomelo numbering: `handler_routes` sorted as strings numbered 1..N, then `user_routes`
    /// N+1.. in order (duplicates skipped). More than 0xFFFF routes -> error.
    pub fn new<'a>(
        handler_routes: impl IntoIterator<Item = &'a str>,
        user_routes: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, ProtocolError> {
        let mut handlers: Vec<&str> = handler_routes.into_iter().collect();
        handlers.sort_unstable();
        handlers.dedup();

        let mut routes: Vec<Box<str>> = Vec::with_capacity(handlers.len());
        let mut codes: HashMap<Box<str>, u16> = HashMap::with_capacity(handlers.len());
        for route in handlers.into_iter().chain(user_routes) {
            if codes.contains_key(route) {
                continue;
            }
            let Ok(code) = u16::try_from(routes.len() + 1) else {
                return Err(ProtocolError::Malformed(
                    "route dictionary has more than 65535 routes",
                ));
            };
            routes.push(route.into());
            codes.insert(route.into(), code);
        }

        let mut route_to_code = Vec::new();
        let mut code_to_route = Vec::new();
        route_to_code.push(b'{');
        code_to_route.push(b'{');
        for (i, route) in routes.iter().enumerate() {
            if i > 0 {
                route_to_code.push(b',');
                code_to_route.push(b',');
            }
            // `routes` holds at most MAX_ROUTES entries, checked above.
            let code = (i + 1) as u32;
            put_json_str(&mut route_to_code, route);
            route_to_code.push(b':');
            put_decimal(&mut route_to_code, code);
            code_to_route.push(b'"');
            put_decimal(&mut code_to_route, code);
            code_to_route.extend_from_slice(b"\":");
            put_json_str(&mut code_to_route, route);
        }
        route_to_code.push(b'}');
        code_to_route.push(b'}');

        if 2 * route_to_code.len() + code_to_route.len() > MAX_BODY_LEN - HANDSHAKE_OVERHEAD {
            return Err(ProtocolError::Malformed("route dictionary too large for a handshake"));
        }

        let version = STANDARD.encode(Md5::digest(&route_to_code));
        Ok(RouteDict {
            routes,
            codes,
            version,
            route_to_code_json: route_to_code.into_boxed_slice(),
            code_to_route_json: code_to_route.into_boxed_slice(),
        })
    }

    /// The code of `route`, if it is in the dictionary.
    #[inline]
    pub fn code(&self, route: &str) -> Option<u16> {
        self.codes.get(route).copied()
    }

    /// The route of `code`, if it was issued.
    #[inline]
    pub fn route(&self, code: u16) -> Option<&str> {
        let index = usize::from(code).checked_sub(1)?;
        self.routes.get(index).map(|r| &**r)
    }

    /// base64(md5(routeToCode JSON)), what clients send back as `sys.dictVersion`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Every (route, code), in code order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u16)> {
        // At most MAX_ROUTES entries, so `i + 1` fits a u16.
        self.routes.iter().enumerate().map(|(i, route)| (&**route, (i + 1) as u16))
    }

    /// The number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the dictionary holds no route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// `{"route":code,...}`: the handshake's `dict` and `routeToCode`.
    pub(crate) fn route_to_code_json(&self) -> &[u8] {
        &self.route_to_code_json
    }

    /// `{"1":"route",...}`: the handshake's `codeToRoute`.
    pub(crate) fn code_to_route_json(&self) -> &[u8] {
        &self.code_to_route_json
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ENTER: &str = "connector.entryHandler.enter";
    const PUSH_ALL: &str = "pushserver.pushHandler.pushAll";

    #[test]
    fn run_2_dictionary_and_version() {
        // Handler routes arrive in any order; Pomelo sorts them.
        let dict = RouteDict::new([PUSH_ALL, ENTER], []).unwrap();
        assert_eq!(dict.code(ENTER), Some(1));
        assert_eq!(dict.code(PUSH_ALL), Some(2));
        assert_eq!(dict.route(1), Some(ENTER));
        assert_eq!(dict.route(2), Some(PUSH_ALL));
        assert_eq!(dict.route(0), None);
        assert_eq!(dict.route(3), None);
        assert_eq!(dict.code("onMsg"), None);
        assert_eq!(dict.version(), "5Dno83zSAa6srjDqr0tFnQ==");
        assert_eq!(
            dict.route_to_code_json(),
            br#"{"connector.entryHandler.enter":1,"pushserver.pushHandler.pushAll":2}"#
        );
        assert_eq!(
            dict.code_to_route_json(),
            br#"{"1":"connector.entryHandler.enter","2":"pushserver.pushHandler.pushAll"}"#
        );
    }

    #[test]
    fn run_1_dictionary_with_user_routes() {
        let dict = RouteDict::new([ENTER, PUSH_ALL], ["onAdd", "onMsg"]).unwrap();
        assert_eq!(dict.code("onAdd"), Some(3));
        assert_eq!(dict.code("onMsg"), Some(4));
        assert_eq!(dict.route(4), Some("onMsg"));
        assert_eq!(dict.version(), "T5F17XwM+n8npxRxmLfeXQ==");
        let all: Vec<_> = dict.iter().collect();
        assert_eq!(all, [(ENTER, 1), (PUSH_ALL, 2), ("onAdd", 3), ("onMsg", 4)]);
        assert_eq!(dict.len(), 4);
    }

    #[test]
    fn duplicates_take_no_code() {
        let dict =
            RouteDict::new(["b.x.y", "a.x.y", "b.x.y"], ["onMsg", "a.x.y", "onMsg", "onAdd"])
                .unwrap();
        let all: Vec<_> = dict.iter().collect();
        assert_eq!(all, [("a.x.y", 1), ("b.x.y", 2), ("onMsg", 3), ("onAdd", 4)]);
    }

    #[test]
    fn empty_dictionary() {
        let dict = RouteDict::new([], []).unwrap();
        assert!(dict.is_empty());
        assert_eq!(dict.route_to_code_json(), b"{}");
        assert_eq!(dict.code_to_route_json(), b"{}");
        // md5("{}")
        assert_eq!(dict.version(), "mZFLkyvTelC5g8XnyQrpOw==");
    }

    #[test]
    fn at_most_65535_routes() {
        let names: Vec<String> = (0..=MAX_ROUTES).map(|i| format!("r{i}")).collect();
        let ok = RouteDict::new([], names.iter().take(MAX_ROUTES).map(String::as_str)).unwrap();
        assert_eq!(ok.len(), MAX_ROUTES);
        assert_eq!(ok.route(0xFFFF), Some("r65534"));
        assert_eq!(
            RouteDict::new([], names.iter().map(String::as_str)).unwrap_err(),
            ProtocolError::Malformed("route dictionary has more than 65535 routes")
        );
    }

    #[test]
    fn a_dictionary_that_cannot_fit_a_handshake_is_refused() {
        let long: Vec<String> =
            (0..1000).map(|i| format!("{i:08}{}", "x".repeat(10_000))).collect();
        assert_eq!(
            RouteDict::new(long.iter().map(String::as_str), []).unwrap_err(),
            ProtocolError::Malformed("route dictionary too large for a handshake")
        );
    }

    proptest! {
        #[test]
        fn codes_and_routes_agree(
            handlers in proptest::collection::vec("[a-z.\"\\\\]{0,8}", 0..20),
            users in proptest::collection::vec("\\PC{0,8}", 0..20),
        ) {
            let dict = RouteDict::new(handlers.iter().map(String::as_str), users.iter().map(String::as_str)).unwrap();
            for (route, code) in dict.iter() {
                prop_assert_eq!(dict.code(route), Some(code));
                prop_assert_eq!(dict.route(code), Some(route));
            }
            // The rendered objects are valid JSON holding the same mapping.
            let rtc: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(dict.route_to_code_json()).unwrap();
            prop_assert_eq!(rtc.len(), dict.len());
            let ctr: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(dict.code_to_route_json()).unwrap();
            prop_assert_eq!(ctr.len(), dict.len());
            for route in handlers.iter().chain(&users) {
                prop_assert!(dict.code(route).is_some());
            }
        }
    }
}

//! Guessing a management secret: a Pomelo connection is answered 401 for each wrong (or
//! missing) secret and kicked `attack` after the third, so that every few guesses cost a
//! connection (and the admission limits bound connections); every wrong secret, from every edge,
//! is counted in `shaddock_wrong_secrets_total`.

mod common;

use common::http;
use common::metrics::Scrape;
use common::{DEMO, DEMO_SECRET, PomeloClient, assert_error, start, test_config};

#[test]
fn a_connection_is_kicked_after_three_wrong_secrets() {
    let server = start(test_config(2));
    let mut guesser = PomeloClient::connect(server.client_addr());
    assert_error(&guesser.enter_server(DEMO, "guess-0001"), 401);
    assert_error(&guesser.enter_server(DEMO, "guess-0002"), 401);
    // The third is answered too, then the connection is kicked.
    assert_error(&guesser.enter_server(DEMO, "guess-0003"), 401);
    assert_eq!(guesser.expect_kick(), "attack: too many wrong secrets");
    // A fresh connection with the right secret is not held against anything.
    let mut manager = PomeloClient::connect(server.client_addr());
    manager.enter_as_management(DEMO, DEMO_SECRET);
    // The HTTP API's wrong secrets count too.
    http::get(server.control_addr(), "/api/apps/demo/clients", Some("guess-0004"))
        .assert_error(401);
    let scrape = Scrape::take(server.control_addr());
    assert_eq!(scrape.sum("shaddock_wrong_secrets_total", &[]), 4.0);
    assert_eq!(scrape.sum("shaddock_kicks_total", &[("reason", "attack")]), 1.0);
}

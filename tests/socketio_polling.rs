//! Engine.IO long-polling across reactors, byte for byte from a raw HTTP client: every request
//! on its own connection (`Connection: close`), so that requests land on whichever reactor the
//! kernel picks and are handed to the one that holds the session; then the upgrade to WebSocket
//! with pushes pending, which must arrive on the WebSocket once each and in order.

mod common;

use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use common::http::{self, Response};
use common::metrics::Scrape;
use common::{DEMO, DEMO_SECRET, start, test_config};
use serde_json::{Value, json};
use tungstenite::Message;

const RS: char = '\u{1e}';

/// Pomelo's socket.io client's request encoding (id in 4 chars, route length, route, JSON).
fn pomelo_request(id: u32, route: &str, body: &Value) -> String {
    let mut s: String = id.to_be_bytes().iter().map(|&b| char::from(b)).collect();
    s.push(char::from(route.len() as u8));
    s.push_str(route);
    s.push_str(&body.to_string());
    s
}

fn message_event(message: &str) -> String {
    format!("42{}", json!(["message", message]))
}

/// The Pomelo message inside a `42["message", "..."]` packet.
fn pomelo_of(packet: &str) -> Value {
    let args: Value = serde_json::from_str(packet.strip_prefix("42").expect(packet)).unwrap();
    assert_eq!(args[0], "message", "{packet}");
    serde_json::from_str(args[1].as_str().unwrap()).unwrap()
}

struct Polling {
    addr: SocketAddr,
    query: String,
}

impl Polling {
    fn get(&self) -> Vec<String> {
        let response = http::request(self.addr, "GET", &self.query, &[], b"");
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.header("content-type"), Some("text/plain; charset=UTF-8"));
        response.text().split(RS).map(str::to_owned).collect()
    }

    fn post(&self, packets: &[&str]) {
        let body = packets.join(&RS.to_string());
        let headers = [("Content-Type", "text/plain;charset=UTF-8")];
        let response = http::request(self.addr, "POST", &self.query, &headers, body.as_bytes());
        assert_eq!((response.status, response.text().as_str()), (200, "ok"));
    }
}

fn push_all(control: SocketAddr, msg: &str) -> Response {
    let body = json!({ "msg": msg }).to_string();
    http::post_json(control, &format!("/api/apps/{DEMO}/push"), Some(DEMO_SECRET), &body)
}

#[test]
fn polling_sessions_move_to_their_reactor_and_upgrade_without_losing_a_push() {
    let server = start(test_config(2));
    let (addr, control) = (server.client_addr(), server.control_addr());

    let open = http::request(addr, "GET", "/socket.io/?EIO=4&transport=polling&t=a", &[], b"");
    assert_eq!(open.status, 200);
    let open: Value = serde_json::from_str(open.text().strip_prefix('0').unwrap()).unwrap();
    assert_eq!(open["upgrades"], json!(["websocket"]));
    let sid = open["sid"].as_str().unwrap().to_owned();
    let polling = Polling { addr, query: format!("/socket.io/?EIO=4&transport=polling&sid={sid}") };

    polling.post(&["40"]);
    let connected = polling.get();
    assert!(connected[0].starts_with("40{\"sid\":"), "{connected:?}");
    let enter = json!({"role": "client", "apikey": DEMO, "clientId": "poller"});
    polling.post(&[&message_event(&pomelo_request(1, "sio-connector.entryHandler.enter", &enter))]);
    let answer = polling.get();
    assert_eq!(pomelo_of(&answer[0]), json!({"id": 1, "body": {"code": 200, "msg": "add ok"}}));

    // Pushes reach the session while its poll waits, or wait for the next poll; each request
    // on a new connection, so some are handed over to the session's reactor.
    for round in 0..12 {
        let waiting = {
            let query = polling.query.clone();
            thread::spawn(move || Polling { addr, query }.get())
        };
        thread::sleep(Duration::from_millis(30));
        assert_eq!(push_all(control, &format!("m{round}")).json()["recipients"], 1);
        let got = waiting.join().unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(pomelo_of(&got[0])["body"]["msg"], format!("m{round}"));
    }
    let moved = Scrape::take(control).sum("shaddock_connections_moved_total", &[]);
    assert!(moved > 0.0, "no request was handed over in 30 (each on a new connection)");

    // The upgrade: a WebSocket with the sid (maybe on the other reactor: handed over too).
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket&sid={sid}");
    let (mut ws, _) = tungstenite::connect(url).expect("upgrade");
    let waiting = {
        let query = polling.query.clone();
        thread::spawn(move || Polling { addr, query }.get())
    };
    thread::sleep(Duration::from_millis(30));
    ws.send(Message::text("2probe")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("3probe"));
    assert_eq!(waiting.join().unwrap(), ["6"], "the waiting poll returns with a noop");
    // Pushes while the session is still polling (no poll waits): pending, then moved.
    for i in 0..20 {
        assert_eq!(push_all(control, &format!("b{i}")).json()["recipients"], 1);
    }
    ws.send(Message::text("5")).unwrap();
    for i in 20..25 {
        assert_eq!(push_all(control, &format!("b{i}")).json()["recipients"], 1);
    }
    for i in 0..25 {
        let Message::Text(text) = ws.read().unwrap() else { panic!("not text") };
        assert_eq!(pomelo_of(&text)["body"]["msg"], format!("b{i}"), "in order, once each");
    }
    // The polling session is gone; the WebSocket carries the membership (and the pings).
    let gone = http::request(addr, "GET", &polling.query, &[], b"");
    assert_eq!(gone.status, 400);
    assert_eq!(gone.json(), json!({"code": 1, "message": "Session ID unknown"}));
    let sentinel = push_all(control, "after");
    assert_eq!(sentinel.json()["recipients"], 1);
    let Message::Text(text) = ws.read().unwrap() else { panic!("not text") };
    assert_eq!(pomelo_of(&text)["body"]["msg"], "after");
    let presence = http::get(control, &format!("/api/apps/{DEMO}/clients"), Some(DEMO_SECRET));
    assert_eq!(presence.json()["clients"], json!(["poller"]), "{}", presence.text());
    let scrape = Scrape::take(control);
    assert_eq!(scrape.sum("shaddock_polling_sessions", &[]), 0.0);
    ws.close(None).unwrap();
}

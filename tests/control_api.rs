//! The control port's push API does what DESIGN §1 says: an HTTP push reaches the same clients as
//! `pushAll` (both transports, only that app), a push to one client reaches only it, presence
//! pages through every online clientId in sorted order, `/healthz` needs no secret, and the
//! management page's files are served with their types.

mod common;

use std::net::SocketAddr;

use common::http::{self, Response};
use common::ws::WsPomeloClient;
use common::{DEMO, DEMO_SECRET, OTHER, start, test_config};
use serde_json::{Value, json};

fn push_all(control: SocketAddr, apikey: &str, body: &Value) -> Response {
    let path = format!("/api/apps/{apikey}/push");
    http::post_json(control, &path, Some(DEMO_SECRET), &body.to_string())
}

#[test]
fn http_push_reaches_every_client_of_the_app_on_both_transports() {
    let server = start(test_config(2));
    let (addr, control) = (server.client_addr(), server.control_addr());
    let mut tcp = [common::client(addr, DEMO, "alice"), common::client(addr, DEMO, "bob")];
    let mut ws = WsPomeloClient::connect(addr);
    assert_eq!(ws.enter_client(DEMO, "carol")["code"], 200);
    let mut other = common::client(addr, OTHER, "dave");

    let msg = json!({"text": "héllo, 中文 ✓", "n": 1, "nested": [true, null]});
    let response = push_all(control, DEMO, &json!({ "msg": msg }));
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.header("content-type").unwrap_or_default().starts_with("application/json"));
    assert_eq!(response.json(), json!({"recipients": 3}));
    for client in &mut tcp {
        assert_eq!(
            client.next_push(),
            ("onMsg".into(), json!({ "msg": msg })),
            "[{}]",
            client.label()
        );
    }
    assert_eq!(ws.next_push(), ("onMsg".into(), json!({ "msg": msg })));

    // A string msg is pushed as it is, like pushAll's.
    let response = push_all(control, DEMO, &json!({"msg": "plain"}));
    assert_eq!(response.json(), json!({"recipients": 3}));
    for client in &mut tcp {
        assert_eq!(client.next_push(), ("onMsg".into(), json!({"msg": "plain"})));
        client.assert_no_pending_push();
    }
    assert_eq!(ws.next_push(), ("onMsg".into(), json!({"msg": "plain"})));
    other.assert_no_pending_push();
}

#[test]
fn http_push_to_an_empty_channel_has_no_recipients() {
    let server = start(test_config(1));
    let response = push_all(server.control_addr(), DEMO, &json!({"msg": "anyone?"}));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json(), json!({"recipients": 0}));
}

#[test]
fn http_push_to_one_client_reaches_only_it() {
    let server = start(test_config(2));
    let (addr, control) = (server.client_addr(), server.control_addr());
    // A clientId that needs percent-encoding in a path: a space, a slash, non-ASCII.
    let odd = "user 1/é";
    let mut a = common::client(addr, DEMO, "alice");
    let mut b = common::client(addr, DEMO, odd);
    let mut c = common::client(addr, DEMO, "carol");

    let path = "/api/apps/demo/clients/user%201%2F%C3%A9/push";
    let response = http::post_json(control, path, Some(DEMO_SECRET), r#"{"msg":{"only":"you"}}"#);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json(), json!({"recipients": 1}));
    assert_eq!(b.next_push(), ("onMsg".into(), json!({"msg": {"only": "you"}})));

    // A broadcast after it: whoever was wrongly sent the targeted push would see it first.
    assert_eq!(push_all(control, DEMO, &json!({"msg": "everyone"})).json()["recipients"], 3);
    for client in [&mut a, &mut b, &mut c] {
        assert_eq!(client.next_push(), ("onMsg".into(), json!({"msg": "everyone"})));
        client.assert_no_pending_push();
    }

    // Once the client is gone, it is a 404 (after the server saw the close).
    drop(b);
    common::wait_until("the server sees the client leave", common::IO_TIMEOUT, || {
        let page = http::get(control, "/api/apps/demo/clients", Some(DEMO_SECRET));
        page.json()["total"] == 2
    });
    let response = http::post_json(control, path, Some(DEMO_SECRET), r#"{"msg":"gone?"}"#);
    response.assert_error(404);
    assert!(response.json()["error"].as_str().unwrap().contains("not online"));
}

#[test]
fn presence_pages_through_every_client_in_sorted_order() {
    let server = start(test_config(2));
    let (addr, control) = (server.client_addr(), server.control_addr());
    let ids = ["delta", "alpha", "echo", "charlie", "bravo", "Zulu", "42"];
    let _clients: Vec<_> = ids.iter().map(|id| common::client(addr, DEMO, id)).collect();
    let _other = common::client(addr, OTHER, "not-in-demo");
    let mut sorted: Vec<&str> = ids.to_vec();
    sorted.sort();

    // Default page: everything, no next page.
    let page = http::get(control, "/api/apps/demo/clients", Some(DEMO_SECRET));
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.json(), json!({"clients": sorted, "total": 7, "next_cursor": null}));
    let page = http::get(control, "/api/apps/demo/clients?cursor=&limit=", Some(DEMO_SECRET));
    assert_eq!(page.json()["clients"], json!(sorted));

    // Pages of 3, each cursor the last id of the page before.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for expected_len in [3, 3, 1] {
        let path = format!("/api/apps/demo/clients?limit=3&cursor={cursor}");
        let page = http::get(control, &path, Some(DEMO_SECRET)).json();
        assert_eq!(page["total"], 7, "{page}");
        let clients = page["clients"].as_array().unwrap();
        assert_eq!(clients.len(), expected_len, "{page}");
        seen.extend(clients.iter().map(|c| c.as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(next, seen.last().unwrap(), "{page}");
                cursor = next.to_owned();
            }
            None => assert_eq!(expected_len, 1, "only the last page has no next cursor: {page}"),
        }
    }
    assert_eq!(seen, sorted);

    // A cursor past everything is an empty page with the total.
    let page = http::get(control, "/api/apps/demo/clients?cursor=~", Some(DEMO_SECRET)).json();
    assert_eq!(page, json!({"clients": [], "total": 7, "next_cursor": null}));
    // The limit bounds.
    let page = http::get(control, "/api/apps/demo/clients?limit=1000", Some(DEMO_SECRET));
    assert_eq!(page.json()["clients"].as_array().map(Vec::len), Some(7));
    for bad in ["0", "1001", "-1", "many"] {
        let path = format!("/api/apps/demo/clients?limit={bad}");
        http::get(control, &path, Some(DEMO_SECRET)).assert_error(400);
    }
}

#[test]
fn healthz_needs_no_secret() {
    let server = start(test_config(1));
    let response = http::get(server.control_addr(), "/healthz", None);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json(), json!({"status": "ok"}));
}

#[test]
fn the_management_page_and_its_files_are_served() {
    let server = start(test_config(1));
    let control = server.control_addr();
    for (path, content_type, needle) in [
        ("/", "text/html", "<script type=\"module\" src=\"/app.js\">"),
        ("/app.css", "text/css", "@media"),
        ("/app.js", "text/javascript", "pushByClientId"),
        ("/pomelo.js", "text/javascript", "export class PomeloClient"),
    ] {
        let response = http::get(control, path, None);
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        let ct = response.header("content-type").unwrap_or_default();
        assert!(ct.starts_with(content_type), "{path}: content type {ct:?}");
        assert!(response.text().contains(needle), "{path} lacks {needle:?}");
        let csp = response.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("script-src 'self'"), "{path}: CSP {csp:?}");
    }
    let config = http::get(control, "/config.json", None);
    let port = server.client_addr().port();
    assert_eq!(
        config.json(),
        json!({"client_port": port, "client_url": null}),
        "no page_client_url"
    );
}

//! Every refused request is answered with an error code and a human `msg` (never silence), and
//! the connection stays usable afterwards. Also: the old demos' route prefixes and `apiKey`
//! spelling are accepted, and so are routes given as dictionary codes.

mod common;

use common::{
    DEMO, DEMO_SECRET, ENTER, OTHER, OTHER_SECRET, PUSH_ALL, PomeloClient, TestServer,
    assert_error, management, start, test_config,
};
use serde_json::json;

fn server() -> TestServer {
    start(test_config(2))
}

fn assert_entered_as_server(conn: &mut PomeloClient, apikey: &str, secret: &str) {
    let response = conn.enter_server(apikey, secret);
    assert_eq!(response["code"], 200, "the connection is usable after the error: {response}");
    assert_eq!(response["msg"], "push server is ok.", "{response}");
}

fn assert_entered_as_client(conn: &mut PomeloClient, apikey: &str, client_id: &str) {
    let response = conn.enter_client(apikey, client_id);
    assert_eq!(
        response,
        json!({"code": 200, "msg": "add ok"}),
        "the connection is usable after the error"
    );
}

#[test]
fn wrong_secret_is_401() {
    let server = server();
    let mut conn = PomeloClient::connect(server.client_addr());
    assert_error(&conn.enter_server(DEMO, "not-the-secret"), 401);
    assert_error(&conn.enter_server(DEMO, OTHER_SECRET), 401);
    assert_entered_as_server(&mut conn, DEMO, DEMO_SECRET);
}

#[test]
fn missing_secret_is_401() {
    let server = server();
    let mut conn = PomeloClient::connect(server.client_addr());
    assert_error(&conn.request(ENTER, json!({"role": "server", "apikey": DEMO})), 401);
    assert_entered_as_server(&mut conn, DEMO, DEMO_SECRET);
}

#[test]
fn client_calling_management_routes_is_403() {
    let server = server();
    let addr = server.client_addr();
    let mut c = common::client(addr, DEMO, "c1");
    assert_error(&c.push_all(DEMO, json!("from a client")), 403);
    assert_error(&c.push_by_client_id(DEMO, "c1", json!("from a client")), 403);

    // Neither went out, and the client is still a member: the next push it sees is this one.
    let (mut admin, _) = management(addr, DEMO, DEMO_SECRET);
    assert_eq!(admin.push_all(DEMO, json!("from management"))["code"], 200);
    assert_eq!(c.next_push(), ("onMsg".into(), json!({"msg": "from management"})));
}

#[test]
fn another_apps_management_is_403() {
    let server = server();
    let addr = server.client_addr();
    let mut c = common::client(addr, DEMO, "c1");
    let (mut other_admin, _) = management(addr, OTHER, OTHER_SECRET);
    assert_error(&other_admin.push_all(DEMO, json!("cross-app")), 403);
    assert_error(&other_admin.push_by_client_id(DEMO, "c1", json!("cross-app")), 403);

    let response = other_admin.push_all(OTHER, json!("own app"));
    assert_eq!(response["code"], 200, "usable after the error: {response}");
    let (mut admin, _) = management(addr, DEMO, DEMO_SECRET);
    assert_eq!(admin.push_all(DEMO, json!("legit"))["code"], 200);
    assert_eq!(c.next_push(), ("onMsg".into(), json!({"msg": "legit"})));
}

#[test]
fn never_entered_session_calling_push_all_is_403() {
    let server = server();
    let mut conn = PomeloClient::connect(server.client_addr());
    assert_error(&conn.push_all(DEMO, json!("anonymous")), 403);
    assert_error(&conn.push_by_client_id(DEMO, "c1", json!("anonymous")), 403);
    assert_entered_as_server(&mut conn, DEMO, DEMO_SECRET);
    let response = conn.push_all(DEMO, json!("now allowed"));
    assert_eq!(response["code"], 200, "{response}");
}

#[test]
fn unknown_apikey_is_404() {
    let server = server();
    let mut conn = PomeloClient::connect(server.client_addr());
    assert_error(&conn.enter_client("no-such-app", "c1"), 404);
    assert_entered_as_client(&mut conn, DEMO, "c1");
}

#[test]
fn unknown_route_is_404() {
    let server = server();
    let mut conn = PomeloClient::connect(server.client_addr());
    for route in [
        "connector.entryHandler.nope",
        "nosuch.handler.method",
        "pushserver.pushHandler.pushSome",
        "nodots",
    ] {
        assert_error(&conn.request(route, json!({})), 404);
    }
    assert_entered_as_client(&mut conn, DEMO, "c1");
}

#[test]
fn malformed_body_is_400() {
    let server = server();
    let mut conn = PomeloClient::connect(server.client_addr());
    assert_error(&conn.request_bytes(ENTER, br#"{"role":"client","#), 400);
    assert_error(&conn.request_bytes(ENTER, b"\xff\xfe not utf-8"), 400);
    assert_error(&conn.request_bytes(ENTER, b"[1,2,3]"), 400);
    assert_entered_as_client(&mut conn, DEMO, "c1");
}

#[test]
fn missing_field_is_400() {
    let server = server();
    let addr = server.client_addr();
    let mut conn = PomeloClient::connect(addr);
    assert_error(&conn.request(ENTER, json!({"role": "client", "apikey": DEMO})), 400);
    assert_error(&conn.request(ENTER, json!({"role": "client", "clientId": "c1"})), 400);
    assert_entered_as_client(&mut conn, DEMO, "c1");

    let (mut admin, _) = management(addr, DEMO, DEMO_SECRET);
    assert_error(&admin.request(PUSH_ALL, json!({"apikey": DEMO})), 400);
    assert_eq!(admin.push_all(DEMO, json!("after"))["code"], 200);
}

#[test]
fn frontend_prefixes_and_apikey_spelling_are_accepted() {
    let server = server();
    let addr = server.client_addr();

    let mut c = PomeloClient::connect(addr);
    let response = c.request(
        "hybrid-connector.entryHandler.enter",
        json!({"role": "client", "apiKey": DEMO, "clientId": "android-1"}),
    );
    assert_eq!(response["code"], 200, "{response}");
    assert_eq!(response["msg"], "add ok", "{response}");

    let mut admin = PomeloClient::connect(addr);
    let response = admin.request(
        "sio-connector.entryHandler.enter",
        json!({"role": "server", "apiKey": DEMO, "secret": DEMO_SECRET}),
    );
    assert_eq!(response["code"], 200, "{response}");
    assert_eq!(response["msg"], "push server is ok.", "{response}");
    assert_eq!(response["users"], json!(["android-1"]), "{response}");

    let response = admin.request(PUSH_ALL, json!({"apiKey": DEMO, "msg": "spelled apiKey"}));
    assert_eq!(response["code"], 200, "{response}");
    assert_eq!(c.next_push(), ("onMsg".into(), json!({"msg": "spelled apiKey"})));
}

#[test]
fn dict_coded_routes_are_accepted() {
    let mut config = test_config(2);
    config.client.use_dict = true;
    let server = start(config);
    let addr = server.client_addr();

    let mut c = PomeloClient::connect(addr);
    let response =
        c.request_via_dict(ENTER, json!({"role": "client", "apikey": DEMO, "clientId": "c1"}));
    assert_eq!(response, json!({"code": 200, "msg": "add ok"}));

    let mut admin = PomeloClient::connect(addr);
    let response = admin
        .request_via_dict(ENTER, json!({"role": "server", "apikey": DEMO, "secret": DEMO_SECRET}));
    assert_eq!(response["code"], 200, "{response}");
    let response = admin.request_via_dict(PUSH_ALL, json!({"apikey": DEMO, "msg": "coded"}));
    assert_eq!(response["code"], 200, "{response}");
    assert_eq!(c.next_push(), ("onMsg".into(), json!({"msg": "coded"})));
}

//! The OpenAPI document at `GET /api/openapi.json` against the real control port: every answer
//! below is checked against the schema the document gives for its path, method and status
//! (with the jsonschema crate), every documented operation is answered at least once, and every
//! JSON route of the router (`src/control/mod.rs`) is documented.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use common::http::{self, Response};
use common::{DEMO, DEMO_SECRET, start, test_config};
use serde_json::{Value, json};

const ADMIN: &str = "admin-token-0123456789";

/// The document, and the operations answers were checked for.
struct Spec {
    doc: Value,
    checked: BTreeSet<(String, String)>,
}

impl Spec {
    fn fetch(control: SocketAddr) -> Spec {
        let response = http::get(control, "/api/openapi.json", None);
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("application/json"));
        let mut spec = Spec { doc: response.json(), checked: BTreeSet::new() };
        spec.check("get", "/api/openapi.json", &response);
        spec
    }

    /// Follows a local `$ref` (`#/a/b`) to what it names.
    fn resolve<'a>(&'a self, node: &'a Value) -> &'a Value {
        match node.get("$ref").and_then(Value::as_str) {
            Some(pointer) => {
                let pointer = pointer.strip_prefix('#').expect("a local $ref");
                self.doc.pointer(pointer).unwrap_or_else(|| panic!("no {pointer} in the document"))
            }
            None => node,
        }
    }

    /// Checks `response` is documented for `method` on `path` (a template) and matches its
    /// schema.
    fn check(&mut self, method: &str, path: &str, response: &Response) {
        let status = response.status.to_string();
        let operation = &self.doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        let documented = &operation["responses"][&status];
        assert!(documented.is_object(), "{method} {path} does not document {status}");
        let content = &self.resolve(documented)["content"]["application/json"]["schema"];
        assert!(content.is_object(), "{method} {path} {status} has no JSON schema");
        // The document is the root, so the schema's `$ref`s resolve in it.
        let at = match documented.get("$ref").and_then(Value::as_str) {
            Some(reference) => reference.to_owned(),
            None => {
                // A JSON pointer in a URI fragment: `~` and `/` escaped, braces percent-encoded.
                let escaped = path.replace('~', "~0").replace('/', "~1");
                let escaped = escaped.replace('{', "%7B").replace('}', "%7D");
                format!("#/paths/{escaped}/{method}/responses/{status}")
            }
        };
        let mut schema = self.doc.clone();
        schema["$ref"] = json!(format!("{at}/content/application~1json/schema"));
        let validator = jsonschema::validator_for(&schema)
            .unwrap_or_else(|e| panic!("{method} {path} {status}: bad schema: {e}"));
        let body = response.json();
        if let Err(e) = validator.validate(&body) {
            panic!("{method} {path} {status}: {body} does not match the document: {e}");
        }
        self.checked.insert((method.to_owned(), path.to_owned()));
    }

    /// Every operation the document names.
    fn operations(&self) -> BTreeSet<(String, String)> {
        let mut all = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for method in ["get", "post", "delete", "put", "patch"] {
                if item.get(method).is_some() {
                    all.insert((method.to_owned(), path.clone()));
                }
            }
        }
        all
    }
}

fn delete(addr: SocketAddr, path: &str, secret: &str) -> Response {
    let auth = format!("Bearer {secret}");
    http::request(addr, "DELETE", path, &[("Authorization", &auth)], b"")
}

#[test]
fn every_answer_matches_the_document_and_every_operation_is_answered() {
    let mut config = test_config(2);
    config.control.admin_token = ADMIN.into();
    config.control.max_body_bytes = 256;
    let server = start(config);
    let (addr, control) = (server.client_addr(), server.control_addr());
    let mut spec = Spec::fetch(control);
    let mut alice = common::client(addr, DEMO, "alice");
    let carol_client = common::client(addr, DEMO, "carol");
    let carol_addr = carol_client.local_addr();

    let response = http::get(control, "/healthz", None);
    spec.check("get", "/healthz", &response);

    // The admin API.
    let apps = http::get(control, "/api/apps", Some(ADMIN));
    spec.check("get", "/api/apps", &apps);
    assert_eq!(apps.json()["apps"][0]["apikey"], DEMO);
    assert_eq!(apps.json()["apps"][0]["clients"], 2);
    spec.check("get", "/api/apps", &http::get(control, "/api/apps", Some(DEMO_SECRET)));
    let app_path = format!("/api/apps/{DEMO}");
    for secret in [DEMO_SECRET, ADMIN] {
        let app = http::get(control, &app_path, Some(secret));
        spec.check("get", "/api/apps/{apikey}", &app);
        let app = app.json();
        assert_eq!((app["clients"].clone(), app["local_clients"].clone()), (json!(2), json!(2)));
        assert_eq!(
            (app["max_clients"].clone(), app["signed_clients"].clone()),
            (json!(null), json!(false))
        );
    }
    spec.check("get", "/api/apps/{apikey}", &http::get(control, "/api/apps/nope", Some(ADMIN)));
    spec.check("get", "/api/apps/{apikey}", &http::get(control, &app_path, Some("wrong-one")));

    // Pushes, with the admin token as with the app's secret.
    let push = format!("/api/apps/{DEMO}/push");
    let sent = http::post_json(control, &push, Some(ADMIN), r#"{"msg":{"n":1}}"#);
    spec.check("post", "/api/apps/{apikey}/push", &sent);
    assert_eq!(sent.json()["recipients"], 2);
    assert_eq!(alice.next_push().1, json!({"msg": {"n": 1}}));
    let no_msg = http::post_json(control, &push, Some(DEMO_SECRET), "{}");
    spec.check("post", "/api/apps/{apikey}/push", no_msg.assert_error(400));
    let big = format!(r#"{{"msg":"{}"}}"#, "x".repeat(300));
    let too_large = http::post_json(control, &push, Some(DEMO_SECRET), &big);
    spec.check("post", "/api/apps/{apikey}/push", too_large.assert_error(413));
    let auth = format!("Bearer {DEMO_SECRET}");
    let not_json = http::request(control, "POST", &push, &[("Authorization", &auth)], b"{}");
    spec.check("post", "/api/apps/{apikey}/push", not_json.assert_error(415));
    let to_bob = format!("/api/apps/{DEMO}/clients/bob/push");
    let absent = http::post_json(control, &to_bob, Some(DEMO_SECRET), r#"{"msg":1}"#);
    spec.check("post", "/api/apps/{apikey}/clients/{clientId}/push", absent.assert_error(404));
    let to_carol = format!("/api/apps/{DEMO}/clients/carol/push");
    let one = http::post_json(control, &to_carol, Some(DEMO_SECRET), r#"{"msg":2}"#);
    spec.check("post", "/api/apps/{apikey}/clients/{clientId}/push", &one);

    // Who is online.
    let page = http::get(control, &format!("/api/apps/{DEMO}/clients?limit=1"), Some(ADMIN));
    spec.check("get", "/api/apps/{apikey}/clients", &page);
    assert_eq!(page.json(), json!({"clients": ["alice"], "total": 2, "next_cursor": "alice"}));
    let bad = http::get(control, &format!("/api/apps/{DEMO}/clients?limit=0"), Some(ADMIN));
    spec.check("get", "/api/apps/{apikey}/clients", bad.assert_error(400));

    // A client's details, from the reactor that holds it.
    let carol_path = format!("/api/apps/{DEMO}/clients/carol");
    let carol = http::get(control, &carol_path, Some(DEMO_SECRET));
    spec.check("get", "/api/apps/{apikey}/clients/{clientId}", &carol);
    let carol = carol.json();
    assert_eq!(
        (&carol["frontend"], &carol["transport"], &carol["tls"]),
        (&json!("pomelo"), &json!("tcp"), &json!(false))
    );
    assert_eq!(carol["remote_address"], json!(carol_addr.to_string()), "{carol}");
    assert_eq!(carol["node"], json!(null));
    let nobody = http::get(control, &format!("/api/apps/{DEMO}/clients/nobody"), Some(ADMIN));
    spec.check("get", "/api/apps/{apikey}/clients/{clientId}", nobody.assert_error(404));

    // A disconnect kicks alice with the reason; she is gone after.
    let alice_path = format!("/api/apps/{DEMO}/clients/alice");
    let control_char = delete(control, &format!("{alice_path}?reason=a%07b"), DEMO_SECRET);
    spec.check("delete", "/api/apps/{apikey}/clients/{clientId}", control_char.assert_error(400));
    let gone = delete(control, &format!("{alice_path}?reason=moved%20to%20another%20plan"), ADMIN);
    spec.check("delete", "/api/apps/{apikey}/clients/{clientId}", &gone);
    assert_eq!(gone.json(), json!({"disconnected": 1}));
    assert_eq!(alice.expect_kick(), "moved to another plan");
    common::wait_until("alice leaves", common::IO_TIMEOUT, || {
        http::get(control, &app_path, Some(ADMIN)).json()["clients"] == 1
    });
    let again = delete(control, &alice_path, DEMO_SECRET);
    spec.check("delete", "/api/apps/{apikey}/clients/{clientId}", again.assert_error(404));
    let app = http::get(control, &app_path, Some(ADMIN)).json();
    assert_eq!((app["kicks"].clone(), app["pushes"].clone()), (json!(1), json!(2)), "{app}");

    let missing = spec.operations().difference(&spec.checked).cloned().collect::<Vec<_>>();
    assert!(missing.is_empty(), "documented but never answered here: {missing:?}");
}

#[test]
fn the_check_refuses_an_answer_the_document_does_not_allow() {
    let doc: Value = serde_json::from_str(include_str!("../src/control/openapi.json")).unwrap();
    let schema_of = |name: &str| {
        let mut schema = doc.clone();
        schema["$ref"] = json!(format!("#/components/schemas/{name}"));
        jsonschema::validator_for(&schema).unwrap()
    };
    assert!(schema_of("Recipients").is_valid(&json!({"recipients": 3})));
    for wrong in [json!({"recipients": -1}), json!({"recipients": 1, "extra": 0}), json!({})] {
        assert!(!schema_of("Recipients").is_valid(&wrong), "{wrong}");
    }
    let app = json!({"apikey": "a", "clients": 1, "local_clients": 1, "managers": 0, "pushes": 0,
        "kicks": 0, "max_clients": null, "push_rate_per_sec": 5, "signed_clients": false});
    assert!(schema_of("AppList").is_valid(&json!({ "apps": [app] })));
    assert!(!schema_of("AppList").is_valid(&json!({ "apps": [{"apikey": "a"}] })));
}

#[test]
fn without_an_admin_token_the_admin_api_is_off() {
    let server = start(test_config(1));
    let control = server.control_addr();
    let mut spec = Spec::fetch(control);
    let off = http::get(control, "/api/apps", Some("anything-at-all-here"));
    spec.check("get", "/api/apps", off.assert_error(403));
    // An app's secret still opens its routes.
    let app = http::get(control, &format!("/api/apps/{DEMO}"), Some(DEMO_SECRET));
    spec.check("get", "/api/apps/{apikey}", &app);
}

#[test]
fn every_json_route_of_the_router_is_documented() {
    let source = std::fs::read_to_string("src/control/mod.rs").unwrap();
    let compact: String = source.split_whitespace().collect();
    let spec: Value = serde_json::from_str(include_str!("../src/control/openapi.json")).unwrap();
    let mut routes = 0;
    for part in compact.split(".route(\"").skip(1) {
        let (path, rest) = part.split_once('"').unwrap();
        // The handler: up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let end = rest.find(|c| {
            depth += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            depth == 0
        });
        let handler = &rest[..end.unwrap()];
        if !(path.starts_with("/api/") || path == "/healthz") {
            continue; // the page's files and /metrics are not JSON
        }
        let template = path.replace("{client_id}", "{clientId}");
        for method in ["get", "post", "delete", "put", "patch"] {
            let called = handler.starts_with(&format!(",{method}("))
                || handler.contains(&format!(".{method}("));
            if called {
                assert!(
                    spec["paths"][&template][method].is_object(),
                    "{method} {template} is routed but not documented"
                );
                routes += 1;
            }
        }
    }
    let documented: usize = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| ["get", "post", "delete"].iter().filter(|m| item.get(**m).is_some()).count())
        .sum();
    assert_eq!(routes, documented, "as many documented operations as routes");
}

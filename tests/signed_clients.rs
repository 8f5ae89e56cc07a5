//! Signed client identities (an app's `client_key`): a Pomelo client enters only with a token the
//! key signed for its clientId (`enter {…, token}`), so a stranger who knows a clientId cannot
//! take it over and kick its owner off; an unsigned, forged or expired enter is a 401 with the
//! reason. Debian's `mosquitto_sub` shows its token as the MQTT password; without one it is
//! refused (bad user name or password). Other apps take any clientId as before.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use shaddock::config::AppConfig;
use shaddock::push::identity::ClientKey;

use common::{DEMO, DEMO_SECRET, OTHER, PomeloClient, TestServer, client, start, test_config};

const CLIENT_KEY: &str = "the-demo-apps-client-key-0123456789";
const ENTER: &str = "connector.entryHandler.enter";

fn server() -> TestServer {
    let mut config = test_config(2);
    let demo = config.apps.iter_mut().find(|a| a.apikey == DEMO).unwrap();
    *demo = AppConfig { client_key: Some(CLIENT_KEY.into()), ..demo.clone() };
    start(config)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn token(client_id: &str, valid_for: i64) -> String {
    let expiry = (unix_now() as i64 + valid_for) as u64;
    ClientKey::new(CLIENT_KEY.as_bytes()).sign(DEMO, client_id, expiry)
}

fn enter(server: &TestServer, client_id: &str, token: Option<&str>) -> (PomeloClient, Value) {
    let mut session = PomeloClient::connect(server.client_addr());
    let mut body = json!({"role": "client", "apikey": DEMO, "clientId": client_id});
    if let Some(token) = token {
        body["token"] = json!(token);
    }
    let answer = session.request(ENTER, body);
    (session, answer)
}

#[test]
fn only_a_token_signed_for_the_client_id_lets_a_pomelo_client_in() {
    let server = server();
    let (mut owner, answer) = enter(&server, "phone-1", Some(&token("phone-1", 600)));
    assert_eq!(answer["code"], 200, "{answer}");

    let refusals = [
        (None, "this app requires a signed clientId"),
        (Some(token("phone-2", 600)), "is not this clientId's"),
        (Some(token("phone-1", -5)), "expired"),
        (Some("garbage".to_owned()), "is not {expiry}.{signature}"),
    ];
    for (stranger_token, why) in refusals {
        let (_, answer) = enter(&server, "phone-1", stranger_token.as_deref());
        assert_eq!(answer["code"], 401, "{answer}");
        assert!(answer["msg"].as_str().unwrap().contains(why), "{why}: {answer}");
    }
    // The owner was never replaced: it still gets its pushes.
    let (mut manager, _) = common::management(server.client_addr(), DEMO, DEMO_SECRET);
    assert_eq!(manager.push_by_client_id(DEMO, "phone-1", json!("still yours"))["code"], 200);
    assert_eq!(owner.next_push().1["msg"], "still yours");
    // An app without a client key takes any clientId.
    let mut other = client(server.client_addr(), OTHER, "anyone");
    other.heartbeat();
}

#[test]
fn mosquitto_sub_shows_its_token_as_the_password() {
    let server = server();
    let port = server.client_addr().port().to_string();
    let sub = |id: &str, password: Option<&str>| {
        let mut command = Command::new("mosquitto_sub");
        command.args(["-h", "127.0.0.1", "-p", &port, "-V", "mqttv311", "-u", DEMO, "-i", id]);
        command.args(["-t", &format!("push/{DEMO}"), "-C", "1", "-W", "5"]);
        if let Some(password) = password {
            command.args(["-P", password]);
        }
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mosquitto_sub runs: apt-get install mosquitto-clients (.ci/run does)")
    };
    let unsigned = sub("mqtt-phone", None).wait_with_output().unwrap();
    assert!(!unsigned.status.success(), "refused without a token");
    let said = String::from_utf8_lossy(&unsigned.stderr).to_lowercase();
    assert!(said.contains("not authorised") || said.contains("bad user"), "{said}");

    let signed = sub("mqtt-phone", Some(&token("mqtt-phone", 600)));
    common::wait_until("the signed subscriber online", Duration::from_secs(5), || {
        server.stats().push.joins >= 1
    });
    let path = format!("/api/apps/{DEMO}/push");
    let pushed = common::http::post_json(
        server.control_addr(),
        &path,
        Some(DEMO_SECRET),
        r#"{"msg":"signed"}"#,
    );
    assert_eq!(pushed.json()["recipients"], 1, "{}", pushed.text());
    let out = signed.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "\"signed\"\n");
}

//! HTTPS on the control port (`[control.tls]`), with curl (a peer nobody here wrote, on
//! OpenSSL) and rustls's client: the push API and `/healthz` answer over HTTPS with the CA
//! trusted by `--cacert`; a plain HTTP request to the HTTPS port gets a 400 that says so; with
//! `client_ca` a client without a certificate (or with one another CA signed) is refused and one
//! with a certificate the CA signed is served; a stalled handshake holds only its own connection;
//! a reload reaches the next handshake; a missing file fails the start naming it.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};
use shaddock::config::ControlTlsConfig;

use common::tls::TestCa;
use common::{DEMO, DEMO_SECRET, PomeloClient, TestServer, start, test_config};

fn https_server(ca: &TestCa, client_ca: Option<&TestCa>) -> TestServer {
    let mut config = test_config(2);
    config.control.tls = Some(ControlTlsConfig {
        cert: ca.cert_pem(),
        key: ca.key_pem(),
        client_ca: client_ca.map(TestCa::ca_pem),
    });
    start(config)
}

/// `https://localhost:PORT{path}`, resolved to the control port on 127.0.0.1.
fn url(addr: SocketAddr, path: &str) -> (String, String) {
    let port = addr.port();
    (format!("https://localhost:{port}{path}"), format!("localhost:{port}:127.0.0.1"))
}

/// Runs curl against the control port with `args`; the body is on stdout, then a line with
/// the status code.
fn curl(addr: SocketAddr, path: &str, args: &[&str]) -> Output {
    let (url, resolve) = url(addr, path);
    Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10", "--resolve", &resolve])
        .args(["--write-out", "\n%{http_code}"])
        .args(args)
        .arg(&url)
        .output()
        .expect("curl runs (apt-get install curl)")
}

/// The status and JSON body curl got.
fn answered(output: &Output) -> (u16, Value) {
    assert!(
        output.status.success(),
        "curl failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (body, status) = stdout.rsplit_once('\n').expect("a status line");
    (status.parse().expect("a status"), serde_json::from_str(body).expect("a JSON body"))
}

fn cacert(ca: &TestCa) -> String {
    ca.ca_pem().display().to_string()
}

#[test]
fn curl_pushes_over_https_with_the_ca_trusted() {
    let ca = TestCa::new("control-curl");
    let server = https_server(&ca, None);
    let addr = server.control_addr();
    let ca_file = cacert(&ca);

    let (status, health) = answered(&curl(addr, "/healthz", &["--cacert", &ca_file]));
    assert_eq!(status, 200, "{health}");

    let mut client = PomeloClient::connect(server.client_addr());
    assert_eq!(client.enter_client(DEMO, "over-https")["code"], 200);
    let auth = format!("Authorization: Bearer {DEMO_SECRET}");
    let body = json!({"msg": {"via": "https"}}).to_string();
    let push = curl(
        addr,
        &format!("/api/apps/{DEMO}/push"),
        &["--cacert", &ca_file, "-H", &auth, "-H", "content-type: application/json", "-d", &body],
    );
    let (status, answer) = answered(&push);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["recipients"], 1, "{answer}");
    assert_eq!(client.next_push().1["msg"]["via"], "https");

    // A wrong secret over HTTPS is the same 401 as over HTTP.
    let wrong = curl(
        addr,
        &format!("/api/apps/{DEMO}/clients"),
        &["--cacert", &ca_file, "-H", "Authorization: Bearer nope"],
    );
    assert_eq!(answered(&wrong).0, 401);

    // Without the CA, curl does not trust the port.
    let untrusted = curl(addr, "/healthz", &[]);
    assert!(!untrusted.status.success(), "curl trusted a certificate of an unknown CA");
    let said = String::from_utf8_lossy(&untrusted.stderr);
    assert!(said.contains("certificate"), "curl says why: {said}");
}

#[test]
fn plain_http_on_the_https_port_gets_a_400_that_says_so() {
    let ca = TestCa::new("control-plain");
    let server = https_server(&ca, None);
    let response = common::http::get(server.control_addr(), "/healthz", None);
    assert_eq!(response.status, 400, "{}", response.text());
    let body = response.json();
    assert_eq!(body["code"], 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("HTTPS"), "{body}");
    // And the HTTPS port still serves HTTPS.
    let (status, _) =
        answered(&curl(server.control_addr(), "/healthz", &["--cacert", &cacert(&ca)]));
    assert_eq!(status, 200);
}

#[test]
fn with_client_ca_only_a_certificate_it_signed_is_served() {
    let ca = TestCa::new("control-mtls");
    let operators = TestCa::new("control-operators");
    operators.issue("operator.pem", "operator-key.pem", &["operator.example.test"]);
    let strangers = TestCa::new("control-strangers");
    strangers.issue("stranger.pem", "stranger-key.pem", &["stranger.example.test"]);
    let server = https_server(&ca, Some(&operators));
    let addr = server.control_addr();
    let ca_file = cacert(&ca);

    let anonymous = curl(addr, "/healthz", &["--cacert", &ca_file]);
    assert!(!anonymous.status.success(), "served without a client certificate");

    let cert = |who: &TestCa, name: &str| {
        let (cert, key) = (who.path(&format!("{name}.pem")), who.path(&format!("{name}-key.pem")));
        (cert.display().to_string(), key.display().to_string())
    };
    let (stranger, stranger_key) = cert(&strangers, "stranger");
    let foreign = curl(
        addr,
        "/healthz",
        &["--cacert", &ca_file, "--cert", &stranger, "--key", &stranger_key],
    );
    assert!(!foreign.status.success(), "served a certificate another CA signed");

    let (operator, operator_key) = cert(&operators, "operator");
    let signed = curl(
        addr,
        "/healthz",
        &["--cacert", &ca_file, "--cert", &operator, "--key", &operator_key],
    );
    assert_eq!(answered(&signed).0, 200);
}

#[test]
fn a_stalled_handshake_holds_only_its_own_connection() {
    let ca = TestCa::new("control-stall");
    let server = https_server(&ca, None);
    let addr = server.control_addr();
    // Half a ClientHello's record header, then nothing.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let (status, _) = answered(&curl(addr, "/healthz", &["--cacert", &cacert(&ca)]));
    assert_eq!(status, 200, "another client is served while a handshake stalls");
}

#[test]
fn a_reload_reaches_the_next_handshake() {
    let ca = TestCa::new("control-reload");
    let server = https_server(&ca, None);
    let leaf = || {
        let mut socket = TcpStream::connect(server.control_addr()).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let name = "localhost".try_into().unwrap();
        let mut conn = rustls::ClientConnection::new(ca.client_config(), name).unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut socket).unwrap();
        }
        conn.peer_certificates().unwrap()[0].clone()
    };
    let first = leaf();
    ca.issue("cert.pem", "key.pem", &["localhost", "control.example.test"]);
    server.reload_certificates().expect("the new files load");
    assert_ne!(leaf(), first, "the next handshake presents the new certificate");
    let (status, _) =
        answered(&curl(server.control_addr(), "/healthz", &["--cacert", &cacert(&ca)]));
    assert_eq!(status, 200);
}

#[test]
fn a_missing_control_certificate_fails_the_start_naming_the_file() {
    let ca = TestCa::new("control-missing");
    let mut config = test_config(1);
    config.control.tls = Some(ControlTlsConfig {
        cert: ca.cert_pem(),
        key: ca.path("absent-key.pem"),
        client_ca: None,
    });
    let error = shaddock::Server::start(config).unwrap_err().to_string();
    assert!(error.starts_with("control.tls: "), "{error}");
    assert!(error.contains("absent-key.pem"), "{error}");
}

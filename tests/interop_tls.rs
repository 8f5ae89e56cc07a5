//! TLS on the client port (`[client.tls]`) against real clients nobody here wrote:
//!
//! - the real Pomelo JavaScript client, npm `pomelo-jsclient-websocket` 0.1.1, in Debian's
//!   headless Chromium over `wss://` (`tests/interop/tls_browser.mjs`): the test page is served
//!   over HTTPS (Node's `https`, with a certificate of a CA of its own), so it is a secure context
//!   that can open `wss://` only; the page turns the library's hard-coded `ws://` into `wss://`
//!   (`harness.mjs` `wssOnly`, the library unmodified); the test CAs are trusted
//!   through Chromium's own `--ignore-certificate-errors-spki-list` (not Playwright's
//!   `ignoreHTTPSErrors`), the page enters and shows each pushAll once, in order; a negative
//!   control with the gateway's CA left out of the list fails to connect
//!   (`net::ERR_CERT_AUTHORITY_INVALID`, a failed handshake on the server);
//! - the same client in Node over `wss://` (`tests/interop/tls_node.mjs`), trusting the CA through
//!   `NODE_EXTRA_CA_CERTS` only: it enters and receives pushAll and pushByClientId; without that
//!   variable its connection fails;
//! - Debian's `openssl s_client` sees the configured three-certificate chain (leaf, intermediate; the root
//!   alone in `ca.pem`), exactly, verifies it, and negotiates TLS 1.2 and TLS 1.3;
//! - Debian's `mosquitto_sub` over TLS (`--cafile`), MQTT 3.1.1 and 5.0, on the client port and on
//!   the dedicated `mqtt.listen` port, receiving HTTP pushes;
//! - socket.io-client 4.8.1 over `wss://` (its `ca` option), with Pomelo's socket.io layer,
//!   receiving a pushAll; without `ca` it cannot connect;
//! - one channel of plain Pomelo TCP, TLS Pomelo TCP (rustls), plain Pomelo WebSocket, Node's
//!   Pomelo over `wss://`, `mosquitto_sub` over TLS and socket.io-client 4 over `wss://`: one HTTP
//!   pushAll reaches each exactly once and counts every member;
//! - `required = true`: a plain `mosquitto_sub` and Node's Pomelo client over plain `ws://` are
//!   refused, a `mosquitto_sub` over TLS gets in and receives pushes.
//!
//! "Exactly once" is checked with a sentinel: after the push under test, an HTTP push `"end"`; a
//! client must have the push, then `"end"`, and nothing else. Every child runs under a bound
//! (coreutils' `timeout` [`PROC_LIMIT`] and the client's own, or the script's) and is killed
//! when the test fails. A missing client fails the test with the command that installs it.

mod common;
#[path = "interop/runner.rs"]
mod runner;

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};
use serde_json::{Value, json};
use shaddock::config::ClientTlsConfig;

use common::tls::TestCa;
use common::ws::ws_client;
use common::{DEMO, DEMO_SECRET, PomeloClient, TestServer, start, test_config};

const CHROMIUM: &str = "/usr/bin/chromium";

/// How long any client process may run before it is killed and the test fails.
const PROC_LIMIT: Duration = Duration::from_secs(20);

const INSTALL_MOSQUITTO: &str = "install Debian's mosquitto-clients: `apt-get update && apt-get \
                                 install -y --no-install-recommends mosquitto-clients` (.ci/run \
                                 does)";
const INSTALL_OPENSSL: &str = "install Debian's openssl: `apt-get update && apt-get install -y \
                               --no-install-recommends openssl`";

/// A server with `[client.tls]` from `ca`'s `cert.pem`/`key.pem`; with `mqtt.listen` too.
fn tls_server(ca: &TestCa, cert: &str, key: &str, required: bool) -> TestServer {
    let mut config = test_config(2);
    config.mqtt.listen = Some("127.0.0.1:0".parse().unwrap());
    config.client.tls = Some(ClientTlsConfig {
        cert: ca.path(cert),
        key: ca.path(key),
        required,
        max_handshakes_per_reactor: 256,
    });
    start(config)
}

/// The server's TLS counters, summed over its reactors: (handshakes, failures, refused).
fn tls_counts(server: &TestServer) -> (u64, u64, u64) {
    server.stats().reactors.iter().fold((0, 0, 0), |(h, f, r), reactor| {
        (h + reactor.tls.handshakes, f + reactor.tls.failures, r + reactor.tls.refused)
    })
}

// ---- child processes, bounded ---------------------------------------------------------------

/// A child process in a process group of its own, with piped stdout and stderr; the whole group
/// is killed when it is dropped unfinished, so a failing test leaves nothing behind.
struct Bounded {
    name: String,
    child: Option<Child>,
}

/// How a [`Bounded`] process ended.
struct Ended {
    name: String,
    output: Output,
}

impl std::fmt::Debug for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (out, err) = (self.stdout(), String::from_utf8_lossy(&self.output.stderr));
        let status = self.output.status;
        write!(
            f,
            "`{}` ended with {status}\n--- stdout ---\n{out}\n--- stderr ---\n{err}",
            self.name
        )
    }
}

impl Ended {
    fn stdout(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.output.stdout)
    }

    /// Asserts it exited 0 having printed exactly `stdout`.
    fn assert_printed(&self, stdout: &str) {
        assert_eq!((self.output.status.code(), &*self.stdout()), (Some(0), stdout), "{self:?}");
    }
}

impl Bounded {
    /// Starts `timeout PROC_LIMIT program args` (coreutils' timeout bounds it, however the test
    /// goes) with no stdin; fails with `install` unless `program` is on PATH.
    fn spawn(program: &str, args: &[String], install: &str) -> Bounded {
        let found = std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
        });
        assert!(found, "`{program}` is not installed: {install}");
        let child = Command::new("timeout")
            .arg(PROC_LIMIT.as_secs().to_string())
            .arg(program)
            .args(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `timeout` (coreutils) for `{program}`: {e}"));
        Bounded { name: format!("{program} {}", args.join(" ")), child: Some(child) }
    }

    /// Hands the child over (to `runner::finish`).
    fn take(mut self) -> Child {
        self.child.take().expect("running")
    }

    /// Fails the test if the process has already exited, showing what it printed.
    fn assert_running(&mut self, while_: &str) {
        if self.child.as_mut().expect("running").try_wait().expect("try_wait").is_some() {
            panic!("exited early, while {while_}: {:?}", self.finish_mut());
        }
    }

    fn finish_mut(&mut self) -> Ended {
        let child = self.child.take().expect("running");
        let output = child.wait_with_output().expect("wait for the process");
        Ended { name: self.name.clone(), output }
    }

    /// Waits for the process to exit (its own bound ends it).
    fn finish(mut self) -> Ended {
        self.finish_mut()
    }
}

impl Drop for Bounded {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill_process_group(Pid::from_child(&child), Signal::KILL);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

// ---- the control port -----------------------------------------------------------------------

/// How many clients `POST /api/apps/demo/push {"msg": msg}` reached (plain HTTP: the control
/// port has no TLS in these tests); it must be answered 200 `{"recipients": n}`.
fn http_push(control: SocketAddr, msg: Value) -> u64 {
    let body = json!({ "msg": msg }).to_string();
    let answer = common::http::post_json(control, "/api/apps/demo/push", Some(DEMO_SECRET), &body);
    let recipients = (answer.status == 200).then(|| answer.json()["recipients"].as_u64());
    recipients.flatten().unwrap_or_else(|| panic!("HTTP push {body}: {}", answer.text()))
}

/// Waits until the demo app's online clientIds are `ids` (any order), failing if one of `procs`
/// exits meanwhile.
fn wait_online(control: SocketAddr, ids: &[&str], procs: &mut [&mut Bounded]) {
    let mut want: Vec<&str> = ids.to_vec();
    want.sort_unstable();
    let expected = json!({"clients": want, "total": want.len(), "next_cursor": null});
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page =
            common::http::get(control, "/api/apps/demo/clients?limit=1000", Some(DEMO_SECRET));
        assert_eq!(page.status, 200, "the presence list: {}", page.text());
        if page.json() == expected {
            return;
        }
        for p in procs.iter_mut() {
            p.assert_running("waiting for the presence list");
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {expected}; online: {}",
            page.text()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

// ---- mosquitto_sub --------------------------------------------------------------------------

/// `mosquitto_sub` of the demo app on `push/demo` (`-h localhost`, the certificate's DNS name),
/// over TLS trusting `cafile` when given, exiting after `count` messages or `secs` seconds.
fn mosquitto_sub(
    port: u16,
    version: &str,
    id: &str,
    count: usize,
    cafile: Option<&Path>,
    secs: u32,
) -> Bounded {
    let (port, count, secs) = (port.to_string(), count.to_string(), secs.to_string());
    let mut args = strings(&["-h", "localhost", "-p", &port, "-V", version, "-i", id]);
    args.extend(strings(&["-u", DEMO, "-t", "push/demo", "-C", &count, "-W", &secs]));
    if let Some(cafile) = cafile {
        args.extend(["--cafile".to_owned(), cafile.display().to_string()]);
    }
    Bounded::spawn("mosquitto_sub", &args, INSTALL_MOSQUITTO)
}

// ---- 1. Chromium over wss:// ----------------------------------------------------------------

/// Runs `tls_browser.mjs --expect expect` against a TLS server (a CA of its own). The page is
/// served over HTTPS with a certificate of another CA (the page's), which Chromium always trusts;
/// the gateway's CA is in Chromium's SPKI list only if `trust_gateway` (else a stranger CA's key
/// takes its place), so a refusal is the wss:// connection's alone. Fails unless the script
/// succeeded; its result and the server's TLS counters after it.
fn browser_run(expect: &str, trust_gateway: bool) -> (Value, (u64, u64, u64)) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's Chromium with `apt-get install chromium` \
         (.ci/run does)"
    );
    runner::require_node_modules();
    let (ca, page_ca, stranger) =
        (TestCa::new("browser"), TestCa::new("page"), TestCa::new("stranger"));
    let server = tls_server(&ca, "cert.pem", "key.pem", false);
    let gateway = if trust_gateway { &ca } else { &stranger };
    let spki = format!("{},{}", page_ca.ca_spki_sha256_base64(), gateway.ca_spki_sha256_base64());
    let mut args = runner::server_args(server.client_addr().port(), DEMO, DEMO_SECRET, 45000);
    for (flag, value) in [
        ("--page-cert", page_ca.cert_pem().display().to_string()),
        ("--page-key", page_ca.key_pem().display().to_string()),
        ("--spki", spki),
        ("--expect", expect.to_owned()),
    ] {
        args.extend([flag.to_owned(), value]);
    }
    let run = runner::run_script("tls_browser.mjs", &args, Duration::from_secs(75));
    run.assert_ok();
    (run.result, tls_counts(&server))
}

#[test]
fn pomelo_jsclient_in_headless_chromium_over_wss_enters_and_shows_pushes_once_in_order() {
    let (r, (handshakes, failures, _)) = &browser_run("entered", true);
    assert_eq!(r["page_enter"]["protocol"], "https:", "{r}");
    assert_eq!(r["page_enter"]["secure_context"], true, "{r}");
    let shown = r["page"]["messages"].as_array().expect("messages");
    assert_eq!(shown.len(), 2, "{r}");
    assert!(shown[1].as_str().is_some_and(|m| m.contains("中文")), "{r}");
    for pushed in r["push_all"].as_array().expect("push_all") {
        assert_eq!(pushed["recipients"], 1, "{r}");
    }
    let websockets = r["websockets"].as_array().expect("websockets");
    assert_eq!(websockets.len(), 1, "{r}");
    assert!(websockets[0]["url"].as_str().is_some_and(|u| u.starts_with("wss://")), "{r}");
    assert_eq!(r["page_errors"], json!([]), "{r}");
    // The page's wss:// connection is the server's only TLS handshake (management is plain).
    assert_eq!((*handshakes, *failures), (1, 0), "{r}");
}

/// The negative control: the same run with a stranger's CA in place of the gateway's in
/// Chromium's list. The page (its own CA still trusted) loads, its wss:// connection fails, and
/// the server counts a failed handshake: the flag is what made the first test's CA trusted.
#[test]
fn chromium_refuses_wss_when_the_gateways_ca_is_not_in_its_spki_list() {
    let (r, (handshakes, failures, _)) = &browser_run("refused", false);
    assert_eq!(r["page"]["state"], "closed", "{r}");
    assert_eq!(r["websockets"].as_array().map(Vec::len), Some(1), "{r}");
    // Chromium's own reason: the chain's CA is not one it trusts.
    let error = r["websockets"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("net::ERR_CERT_AUTHORITY_INVALID"), "{r}");
    assert_eq!(*handshakes, 0, "{r}");
    assert!(*failures >= 1, "Chromium's alert ends the handshake as a failure: {r}");
}

// ---- 2. Node over wss:// ----------------------------------------------------------------------

/// Runs `tls_node.mjs --scenario scenario` (plus `extra`) against `server`, with `env`; fails
/// unless it succeeded; its result.
fn node_run(server: &TestServer, scenario: &str, extra: &[String], env: &[(&str, &Path)]) -> Value {
    runner::require_node_modules();
    let child = runner::spawn_node_with("tls_node.mjs", &node_args(server, scenario, extra), env);
    let run = runner::finish("tls_node.mjs", child, Duration::from_secs(40));
    run.assert_ok();
    run.result
}

fn node_args(server: &TestServer, scenario: &str, extra: &[String]) -> Vec<String> {
    let mut args = runner::server_args(server.client_addr().port(), DEMO, DEMO_SECRET, 20000);
    args.extend(strings(&["--control-port", &server.control_addr().port().to_string()]));
    args.extend(strings(&["--scenario", scenario]));
    args.extend(extra.iter().cloned());
    args
}

#[test]
fn pomelo_jsclient_in_node_over_wss_trusting_node_extra_ca_certs_gets_push_all_and_by_client_id() {
    let ca = TestCa::new("node");
    let server = tls_server(&ca, "cert.pem", "key.pem", false);
    let id = "node-wss-1";
    let extra = strings(&["--pomelo-id", id]);
    let r = &node_run(&server, "pomelo", &extra, &[("NODE_EXTRA_CA_CERTS", &ca.ca_pem())]);
    let one = json!({"code": 200, "msg": "push is ok.", "recipients": 1});
    assert_eq!(r["push_all"], json!([one, one]), "{r}");
    assert_eq!(r["push_by_client_id"], one, "{r}");
    let expected = json!([format!("hello over wss, {id}"), "héllo wörld, 中文 ✓", {"only": id}]);
    assert_eq!(r["received"], expected, "{r}");
    let wss = format!("wss://127.0.0.1:{}", server.client_addr().port());
    assert_eq!(r["urls"], json!([wss, wss]), "management and the client, both over wss: {r}");
    assert_eq!(r["errors"], json!([[], []]), "{r}");
    assert_eq!(tls_counts(&server), (2, 0, 0), "two TLS handshakes, no failure: {r}");

    // Without NODE_EXTRA_CA_CERTS (and nothing else trusting the CA) the same client fails.
    let r = &node_run(&server, "untrusted", &[], &[]);
    assert_eq!(r["node_extra_ca_certs"], Value::Null, "{r}");
    assert_eq!(r["url"], json!(wss), "{r}");
    assert_eq!(r["handshakes_received"], 0, "{r}");
    assert_eq!(tls_counts(&server).0, 2, "no third handshake completed: {r}");
    // The handshake Node left unfinished (it closes without an alert) counts as a failure.
    common::wait_until("the unfinished handshake counted", Duration::from_secs(5), || {
        tls_counts(&server).1 == 1
    });
}

// ---- 3. openssl s_client --------------------------------------------------------------------

/// The PEM blocks of `text`, in order.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let end_tag = "-----END CERTIFICATE-----";
        let end = rest[start..].find(end_tag).expect("an END line") + start + end_tag.len();
        blocks.push(rest[start..end].to_owned());
        rest = &rest[end..];
    }
    blocks
}

#[test]
fn openssl_s_client_sees_the_configured_three_level_chain_and_negotiates_tls_1_2_and_1_3() {
    let ca = TestCa::new("chain");
    ca.issue_with_intermediate("chain.pem", "chain-key.pem", &["localhost", "127.0.0.1"]);
    let server = tls_server(&ca, "chain.pem", "chain-key.pem", false);
    let configured = pem_blocks(&std::fs::read_to_string(ca.path("chain.pem")).unwrap());
    assert_eq!(configured.len(), 2, "leaf and intermediate; the root only in ca.pem");
    let connect = format!("127.0.0.1:{}", server.client_addr().port());
    let cafile = ca.ca_pem().display().to_string();
    for (flag, protocol) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let args = strings(&[
            "s_client",
            "-connect",
            &connect,
            "-servername",
            "localhost",
            "-verify_hostname",
            "localhost",
            "-CAfile",
            &cafile,
            "-showcerts",
            "-verify_return_error",
            flag,
        ]);
        let out = Bounded::spawn("openssl", &args, INSTALL_OPENSSL).finish();
        assert!(out.output.status.success(), "{out:?}");
        let text = &*out.stdout();
        assert_eq!(pem_blocks(text), configured, "{flag}: exactly the configured certificates");
        let subjects: Vec<&str> = text
            .lines()
            .filter(|l| {
                let l = l.trim_start();
                l.starts_with("s:")
                    || l.starts_with("i:")
                    || l.split_once(" s:").is_some_and(|(n, _)| n.parse::<u8>().is_ok())
            })
            .map(str::trim)
            .collect();
        assert_eq!(
            subjects,
            [
                "0 s:CN = shaddock test",
                "i:CN = shaddock test intermediate",
                "1 s:CN = shaddock test intermediate",
                "i:CN = shaddock test CA chain",
            ],
            "{flag}: {text}"
        );
        assert!(text.contains("Verify return code: 0 (ok)"), "{flag}: {text}");
        // The handshake's summary line, and each session's: OpenSSL 3.0 prints TLS 1.2's at
        // once; a TLS 1.3 session comes with a ticket after the handshake, printed if it arrives
        // before s_client leaves.
        let new = format!("New, {protocol}, Cipher is ");
        assert!(text.lines().any(|l| l.starts_with(&new)), "{flag} negotiates {protocol}: {text}");
        let session: Vec<&str> =
            text.lines().filter_map(|l| l.trim().strip_prefix("Protocol  : ")).collect();
        assert!(session.iter().all(|p| *p == protocol), "{flag}: {text}");
        assert!(protocol == "TLSv1.3" || !session.is_empty(), "{flag}: {text}");
    }
}

// ---- 4. mosquitto_sub over TLS --------------------------------------------------------------

#[test]
fn mosquitto_sub_over_tls_on_the_client_port_and_mqtt_listen_gets_http_pushes_once() {
    let ca = TestCa::new("mqtt");
    let server = tls_server(&ca, "cert.pem", "key.pem", false);
    let control = server.control_addr();
    let mqtt = server.mqtt_addr().expect("mqtt.listen is set");
    let mut rounds = 0;
    for (port_name, port) in [("client", server.client_addr().port()), ("mqtt", mqtt.port())] {
        for version in ["mqttv311", "mqttv5"] {
            let id = format!("tls-{port_name}-{version}");
            let mut sub = mosquitto_sub(port, version, &id, 2, Some(&ca.ca_pem()), 15);
            wait_online(control, &[&id], &mut [&mut sub]);
            assert_eq!(http_push(control, json!({"over": "tls", "v": version})), 1);
            assert_eq!(http_push(control, json!("end")), 1);
            sub.finish()
                .assert_printed(&format!("{{\"over\":\"tls\",\"v\":\"{version}\"}}\n\"end\"\n"));
            wait_online(control, &[], &mut []);
            rounds += 1;
        }
    }
    assert_eq!(tls_counts(&server), (rounds, 0, 0));
}

// ---- 5. socket.io-client 4 over wss:// --------------------------------------------------------

/// socket.io-client 4 with `transports` (comma-separated) for its client, trusting the CA
/// through its `ca` option only; the run's result.
fn socket_io_run(name: &str, transports: &str) -> (Value, (u64, u64, u64)) {
    let ca = TestCa::new(name);
    let server = tls_server(&ca, "cert.pem", "key.pem", false);
    let ca_file = ca.ca_pem().display().to_string();
    let extra = strings(&["--ca", &ca_file, "--sio-id", "sio-tls", "--sio-transports", transports]);
    let r = node_run(&server, "socketio", &extra, &[]);
    assert_eq!(r["management_enter"]["code"], 200, "{r}");
    assert_eq!(r["without_ca"]["connected"], false, "{r}");
    assert_eq!(r["push_all"], json!({"code": 200, "msg": "push is ok.", "recipients": 1}), "{r}");
    assert_eq!(r["end"], json!({"status": 200, "body": {"recipients": 1}}), "{r}");
    assert_eq!(r["received"], json!([{"all": "from manager"}, "end"]), "{r}");
    assert_eq!(r["errors"], json!([]), "{r}");
    let counts = tls_counts(&server);
    (r, counts)
}

#[test]
fn socket_io_client_4_over_wss_with_its_ca_option_gets_push_all_once() {
    let (r, (handshakes, failures, _)) = socket_io_run("sio", "websocket");
    assert_eq!(r["transport"], "websocket", "{r}");
    assert_eq!(handshakes, 2, "the manager and the client: {r}");
    assert_eq!(failures, 1, "the client without the CA: {r}");
}

/// socket.io's default transports: HTTPS long-polling first (each request on a TLS carrier,
/// handed to the session's reactor with its records when it lands on another), then the
/// upgrade to wss://, with the pushes once each across it.
#[test]
fn socket_io_client_4_on_its_default_transports_polls_over_https_and_upgrades() {
    let (r, (handshakes, failures, _)) = socket_io_run("sio-upgrade", "polling,websocket");
    assert_eq!(r["transport"], "websocket", "upgraded: {r}");
    assert!(handshakes >= 3, "the manager, a polling carrier and the WebSocket: {r}");
    assert_eq!(failures, 1, "the client without the CA: {r}");
}

/// HTTPS long-polling only, never upgraded.
#[test]
fn socket_io_client_4_polling_only_over_https_gets_push_all_once() {
    let (r, (handshakes, failures, _)) = socket_io_run("sio-polling", "polling");
    assert_eq!(r["transport"], "polling", "{r}");
    assert!(handshakes >= 2, "the manager and the polling carriers: {r}");
    assert_eq!(failures, 1, "the client without the CA: {r}");
}

// ---- 6. one channel, plain and TLS ----------------------------------------------------------

#[test]
fn one_http_push_all_reaches_plain_and_tls_members_of_every_kind_once_each() {
    runner::require_node_modules();
    let ca = TestCa::new("mixed");
    let server = tls_server(&ca, "cert.pem", "key.pem", false);
    let (addr, control) = (server.client_addr(), server.control_addr());
    let mut plain_tcp = common::client(addr, DEMO, "plain-tcp");
    let mut tls_tcp = PomeloClient::connect_tls(addr, ca.client_config());
    assert_eq!(tls_tcp.enter_client(DEMO, "tls-tcp")["code"], 200);
    let mut plain_ws = ws_client(addr, DEMO, "plain-ws");
    let mut mqtt = mosquitto_sub(addr.port(), "mqttv311", "mqtt-tls", 2, Some(&ca.ca_pem()), 15);
    let extra = strings(&[
        "--ca",
        &ca.ca_pem().display().to_string(),
        "--pomelo-id",
        "node-wss",
        "--sio-id",
        "sio-wss",
    ]);
    let env = [("NODE_EXTRA_CA_CERTS", ca.ca_pem())];
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let child = runner::spawn_node_with("tls_node.mjs", &node_args(&server, "hold", &extra), &env);
    let mut node = Bounded { name: "tls_node.mjs --scenario hold".to_owned(), child: Some(child) };

    let members = ["mqtt-tls", "node-wss", "plain-tcp", "plain-ws", "sio-wss", "tls-tcp"];
    wait_online(control, &members, &mut [&mut mqtt, &mut node]);
    let all = members.len() as u64;
    assert_eq!(http_push(control, json!({"all": 1})), all);
    assert_eq!(http_push(control, json!("end")), all);

    let pushed = [json!({"msg": {"all": 1}}), json!({"msg": "end"})];
    for pomelo in [&mut plain_tcp, &mut tls_tcp] {
        for body in &pushed {
            assert_eq!(
                pomelo.next_push(),
                ("onMsg".to_owned(), body.clone()),
                "[{}]",
                pomelo.label()
            );
        }
        pomelo.assert_no_pending_push();
    }
    for body in &pushed {
        assert_eq!(plain_ws.next_push(), ("onMsg".to_owned(), body.clone()), "[plain-ws]");
    }
    plain_ws.assert_no_pending_push();
    mqtt.finish().assert_printed("{\"all\":1}\n\"end\"\n");
    let run = runner::finish("tls_node.mjs", node.take(), Duration::from_secs(30));
    run.assert_ok();
    let r = &run.result;
    let both = json!([{"all": 1}, "end"]);
    assert_eq!(r["received"], json!({"node-wss": both, "sio-wss": both}), "{r}");
    assert!(r["urls"]["node-wss"].as_str().is_some_and(|u| u.starts_with("wss://")), "{r}");
    // tls-tcp, mosquitto_sub, the Node Pomelo client and socket.io-client.
    assert_eq!(tls_counts(&server), (4, 0, 0), "{r}");
}

// ---- 7. required ------------------------------------------------------------------------------

#[test]
fn with_tls_required_plain_mosquitto_sub_and_node_ws_are_refused_and_a_tls_mosquitto_sub_gets_pushes()
 {
    let ca = TestCa::new("required");
    let server = tls_server(&ca, "cert.pem", "key.pem", true);
    let (port, control) = (server.client_addr().port(), server.control_addr());
    // mosquitto_sub, refused (closed before any CONNACK), tries again every second until its
    // -W 3 runs out, then exits with an error, having printed nothing.
    let plain = mosquitto_sub(port, "mqttv311", "plain-sub", 1, None, 3).finish();
    assert!(!plain.output.status.success(), "the plain client is refused: {plain:?}");
    assert_eq!(plain.stdout(), "", "{plain:?}");
    let (handshakes, _, refused) = tls_counts(&server);
    assert_eq!(handshakes, 0, "{plain:?}");
    assert!(refused >= 1, "each of its connections was refused: {plain:?}");
    // Node's Pomelo client over plain ws:// cannot even finish a WebSocket upgrade.
    let plain_ws = node_run(&server, "plain", &[], &[]);
    assert_eq!(plain_ws["handshakes_received"], 0, "{plain_ws}");
    assert!(plain_ws["url"].as_str().is_some_and(|u| u.starts_with("ws://")), "{plain_ws}");
    let refused_before = tls_counts(&server).2;
    assert!(refused_before > refused, "the Node client's connection was refused too");

    let mut sub = mosquitto_sub(port, "mqttv5", "tls-sub", 2, Some(&ca.ca_pem()), 15);
    wait_online(control, &["tls-sub"], &mut [&mut sub]);
    assert_eq!(http_push(control, json!("only tls")), 1);
    assert_eq!(http_push(control, json!("end")), 1);
    sub.finish().assert_printed("\"only tls\"\n\"end\"\n");
    assert_eq!(tls_counts(&server), (1, 0, refused_before), "the TLS one was not refused");
}

//! Real MQTT clients nobody here wrote against the MQTT frontend (the contract of issue 11's
//! session): Debian's `mosquitto_sub` and `mosquitto_pub` (package mosquitto-clients, 3.1.1 and
//! 5.0 over raw TCP) and MQTT.js (npm `mqtt`, over WebSocket at `/mqtt`,
//! `tests/interop/mqtt_ws.mjs`), beside the tests' own Pomelo clients.
//!
//! - HTTP pushes reach `mosquitto_sub` exactly once, with the compact JSON of `msg` as payload,
//!   at QoS 0 and at QoS 1 (in order, through 5.0's Receive Maximum of 1);
//! - `mosquitto_pub` with the app's secret is a management session: its PUBLISH is a pushAll (or,
//!   on `push/{apikey}/{clientId}`, a personal push) that reaches `mosquitto_sub` and a Pomelo
//!   client;
//! - refusals as the clients themselves report them (their exit status and message): a client's
//!   PUBLISH, a wrong password or unknown apikey, a will on a client, MQTT 3.1, a subscription
//!   outside the client's own topics;
//! - a management session's will, published when its connection drops;
//! - MQTT.js at QoS 1, with a retained message, and pinging at Keep Alive 1 s, on 3.1.1 and 5.0;
//! - one pushAll reaches a Pomelo TCP, a Pomelo WebSocket, a mosquitto_sub and an MQTT.js client
//!   of one app exactly once each, and the presence list has all four.
//!
//! "Exactly once" is checked with a sentinel: after the push under test, an HTTP push `"end"`;
//! a client must print the push, then `"end"`, and nothing else. Every child process runs under
//! a bound (its own `-W` and [`PROC_LIMIT`]) and is killed when the test fails. A missing client
//! fails the test with the command that installs it (`.ci/run` installs them).

mod common;
#[path = "interop/runner.rs"]
mod runner;

use std::fmt;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::http;
use common::ws::ws_client;
use common::{DEMO, DEMO_SECRET, OTHER, OTHER_SECRET, start, test_config};
use serde_json::{Value, json};

/// `mosquitto_sub`/`mosquitto_pub` protocol names (`-V`).
const V311: &str = "mqttv311";
const V5: &str = "mqttv5";
const VERSIONS: [&str; 2] = [V311, V5];

/// How long any client process may run before it is killed and the test fails.
const PROC_LIMIT: Duration = Duration::from_secs(20);

/// How long a wait for the presence list may take.
const PRESENCE_TIMEOUT: Duration = Duration::from_secs(10);

const INSTALL_MOSQUITTO: &str = "run `apt-get update && apt-get install -y --no-install-recommends \
                                 mosquitto-clients` (Debian; .ci/run and scripts/test do when \
                                 mosquitto_sub is missing)";

/// Fails unless `mosquitto_sub` and `mosquitto_pub` are on `PATH`.
fn require_mosquitto_clients() {
    for tool in ["mosquitto_sub", "mosquitto_pub"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
        assert!(found, "`{tool}` is not installed: {INSTALL_MOSQUITTO}");
    }
}

// ---- child processes, bounded ---------------------------------------------------------------

/// A client process with piped output, killed when dropped (so a failing test leaves none).
struct Proc {
    name: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
    deadline: Instant,
    limit: Duration,
}

/// How a client process ended.
struct Finished {
    name: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl fmt::Display for Finished {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.name, self.status, self.stdout, self.stderr
        )
    }
}

impl Finished {
    /// Asserts the exit code, stdout and stderr, exactly.
    fn assert_exact(&self, code: i32, stdout: &str, stderr: &str) {
        assert_eq!(
            (self.status.code(), self.stdout.as_str(), self.stderr.as_str()),
            (Some(code), stdout, stderr),
            "{self}"
        );
    }

    /// Asserts the exit code, an empty stdout, and the first line of stderr (a client may add a
    /// line of its own about the connection's end, which depends on how the server closed it).
    fn assert_refused(&self, code: i32, first_line: &str) {
        assert_eq!(
            (self.status.code(), self.stdout.as_str(), self.stderr.lines().next()),
            (Some(code), "", Some(first_line)),
            "{self}"
        );
    }

    /// The lines of stdout.
    fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

impl Proc {
    /// Starts `program args`, bounded by [`PROC_LIMIT`].
    fn spawn(program: &str, args: &[String]) -> Proc {
        Proc::spawn_with(program, args, Stdio::null())
    }

    /// [`Proc::spawn`] with `stdin`.
    fn spawn_with(program: &str, args: &[String], stdin: Stdio) -> Proc {
        let child = Command::new(program)
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `{program}` ({e}): {INSTALL_MOSQUITTO}"));
        Proc::from_child(format!("{program} {}", args.join(" ")), child, PROC_LIMIT)
    }

    /// Takes over a started child (its stdout and stderr piped), bounded by `limit`.
    fn from_child(name: String, mut child: Child, limit: Duration) -> Proc {
        let stdout = reader(child.stdout.take().expect("piped stdout"));
        let stderr = reader(child.stderr.take().expect("piped stderr"));
        let stdin = child.stdin.take();
        Proc {
            name,
            child: Some(child),
            stdin,
            stdout: Some(stdout),
            stderr: Some(stderr),
            deadline: Instant::now() + limit,
            limit,
        }
    }

    fn collect(&mut self, status: ExitStatus) -> Finished {
        let stdout = self.stdout.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        Finished { name: self.name.clone(), status, stdout, stderr }
    }

    /// Fails the test if the process has already exited (it was refused, or gave up), showing
    /// what it printed.
    fn assert_running(&mut self, while_: &str) {
        let child = self.child.as_mut().expect("a running process");
        if let Some(status) = child.try_wait().expect("try_wait") {
            self.child = None;
            let finished = self.collect(status);
            panic!("exited early, while {while_}: {finished}");
        }
    }

    /// Writes `line` and a newline to the process's stdin (piped by [`Proc::spawn_with`]).
    fn write_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("a piped stdin");
        writeln!(stdin, "{line}").and_then(|()| stdin.flush()).expect("write to stdin");
    }

    /// Kills the process (SIGKILL: its connections end without a goodbye) and collects it.
    fn kill(mut self) -> Finished {
        let mut child = self.child.take().expect("a running process");
        let _ = child.kill();
        let status = child.wait().expect("wait after kill");
        self.collect(status)
    }

    /// Waits for the process to exit; past its bound it is killed and the test fails.
    fn finish(mut self) -> Finished {
        let mut child = self.child.take().expect("a running process");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return self.collect(status);
            }
            if Instant::now() >= self.deadline {
                let _ = child.kill();
                let status = child.wait().expect("wait after kill");
                let finished = self.collect(status);
                panic!("did not finish within {:?}; killed: {finished}", self.limit);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn reader(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// `tool -h 127.0.0.1 -p port -V version -i id extra...`.
fn mosquitto(tool: &str, port: u16, version: &str, id: &str, extra: &[&str]) -> Proc {
    let mut args: Vec<String> =
        ["-h", "127.0.0.1", "-p", &port.to_string(), "-V", version, "-i", id]
            .iter()
            .map(|s| s.to_string())
            .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    Proc::spawn(tool, &args)
}

/// A `mosquitto_sub` client of the demo app on `push/demo`, printing payloads, exiting after
/// `count` messages or 10 s.
fn sub(port: u16, version: &str, id: &str, count: usize, extra: &[&str]) -> Proc {
    let count = count.to_string();
    let mut args = vec!["-u", DEMO, "-t", "push/demo", "-C", &count, "-W", "10"];
    args.extend_from_slice(extra);
    mosquitto("mosquitto_sub", port, version, id, &args)
}

/// `mosquitto_pub` as the demo app's management session, publishing `message` on `topic`.
fn manager_pub(port: u16, version: &str, id: &str, topic: &str, qos: &str, message: &str) -> Proc {
    let args = ["-u", DEMO, "-P", DEMO_SECRET, "-t", topic, "-q", qos, "-m", message];
    mosquitto("mosquitto_pub", port, version, id, &args)
}

// ---- the control port -----------------------------------------------------------------------

/// The demo app's online clientIds, sorted.
fn online(control: SocketAddr) -> Vec<String> {
    let page = http::get(control, "/api/apps/demo/clients?limit=1000", Some(DEMO_SECRET));
    assert_eq!(page.status, 200, "GET /api/apps/demo/clients: {}", page.text());
    let page = page.json();
    let mut ids: Vec<String> = page["clients"]
        .as_array()
        .unwrap_or_else(|| panic!("no clients list: {page}"))
        .iter()
        .map(|id| id.as_str().expect("a clientId string").to_owned())
        .collect();
    ids.sort();
    ids
}

/// Waits until exactly `expected` are online in the demo app; fails at once if one of `procs`
/// exits meanwhile.
fn wait_online(control: SocketAddr, expected: &[&str], procs: &mut [&mut Proc]) {
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    let deadline = Instant::now() + PRESENCE_TIMEOUT;
    loop {
        let now = online(control);
        if now == want {
            return;
        }
        for p in procs.iter_mut() {
            p.assert_running(&format!("waiting until exactly {want:?} are online"));
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {PRESENCE_TIMEOUT:?} waiting until exactly {want:?} are online in \
             {DEMO}; online: {now:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// `POST /api/apps/demo/push {"msg": msg}`, which must be answered 200; its body.
fn http_push(control: SocketAddr, msg: Value) -> Value {
    let body = json!({ "msg": msg }).to_string();
    let response = http::post_json(control, "/api/apps/demo/push", Some(DEMO_SECRET), &body);
    assert_eq!(response.status, 200, "HTTP push {body}: {}", response.text());
    response.json()
}

/// `POST /api/apps/demo/clients/{id}/push {"msg": msg}`, which must be answered 200; its body.
fn http_push_to(control: SocketAddr, id: &str, msg: Value) -> Value {
    let body = json!({ "msg": msg }).to_string();
    let path = format!("/api/apps/demo/clients/{id}/push");
    let response = http::post_json(control, &path, Some(DEMO_SECRET), &body);
    assert_eq!(response.status, 200, "HTTP push to {id} {body}: {}", response.text());
    response.json()
}

fn onmsg(msg: Value) -> (String, Value) {
    ("onMsg".to_owned(), json!({ "msg": msg }))
}

// ---- 1. mosquitto_sub gets HTTP pushes ------------------------------------------------------

#[test]
fn mosquitto_sub_prints_each_http_push_exactly_once_on_3_1_1_and_5() {
    require_mosquitto_clients();
    let server = start(test_config(2));
    let (port, control) = (server.client_addr().port(), server.control_addr());
    for version in VERSIONS {
        let id = format!("sub-{version}");
        let mut s = sub(port, version, &id, 3, &[]);
        wait_online(control, &[&id], &mut [&mut s]);
        let one = json!({"recipients": 1});
        assert_eq!(http_push(control, json!({"a": [1, "héllo ✓", null]})), one, "{version}");
        assert_eq!(http_push(control, json!("hi")), one, "{version}");
        assert_eq!(http_push(control, json!("end")), one, "{version}");
        s.finish().assert_exact(0, "{\"a\":[1,\"héllo ✓\",null]}\n\"hi\"\n\"end\"\n", "");
        // mosquitto_sub sent DISCONNECT after the last message: it has left the channel.
        wait_online(control, &[], &mut []);
    }
}

#[test]
fn mosquitto_sub_at_qos_1_gets_http_pushes_in_order_at_qos_1() {
    require_mosquitto_clients();
    let server = start(test_config(2));
    let (port, control) = (server.client_addr().port(), server.control_addr());
    // mosquitto_sub 5.0 announces a Receive Maximum of 1 (tests/data/mqtt-captures.md): the
    // server must wait for each PUBACK before it sends the next push.
    for version in VERSIONS {
        let id = format!("qos1-{version}");
        let mut s = sub(port, version, &id, 5, &["-q", "1", "-F", "%t|%q|%r|%p"]);
        wait_online(control, &[&id], &mut [&mut s]);
        for n in 0..5 {
            assert_eq!(http_push(control, json!({ "n": n })), json!({"recipients": 1}));
        }
        let expected: String = (0..5).map(|n| format!("push/demo|1|0|{{\"n\":{n}}}\n")).collect();
        s.finish().assert_exact(0, &expected, "");
        wait_online(control, &[], &mut []);
    }
}

// ---- 2. mosquitto_pub as a management session -----------------------------------------------

#[test]
fn mosquitto_pub_with_the_secret_pushes_to_mosquitto_sub_and_a_pomelo_client() {
    require_mosquitto_clients();
    let server = start(test_config(2));
    let (addr, control) = (server.client_addr(), server.control_addr());
    let port = addr.port();
    let mut pomelo = common::client(addr, DEMO, "pomelo-tcp");
    for version in VERSIONS {
        // A management session may publish at QoS 0, 1 or 2 (the contract); the subscriber
        // asks for QoS 1 at most here, as it is granted no more.
        for qos in ["0", "1", "2"] {
            let case = format!("{version} QoS {qos}");
            let id = format!("sub-{version}-q{qos}");
            let mut s = sub(port, version, &id, 2, &["-q", if qos == "0" { "0" } else { "1" }]);
            wait_online(control, &["pomelo-tcp", &id], &mut [&mut s]);
            let manager_id = format!("manager-{version}-q{qos}");
            manager_pub(port, version, &manager_id, "push/demo", qos, r#"{"x":1}"#)
                .finish()
                .assert_exact(0, "", "");
            assert_eq!(pomelo.next_push(), onmsg(json!({"x": 1})), "{case}");
            assert_eq!(http_push(control, json!("end")), json!({"recipients": 2}), "{case}");
            s.finish().assert_exact(0, "{\"x\":1}\n\"end\"\n", "");
            assert_eq!(pomelo.next_push(), onmsg(json!("end")), "{case}");
            pomelo.assert_no_pending_push();
        }
    }
}

#[test]
fn mosquitto_pub_text_and_personal_pushes_reach_the_right_clients() {
    require_mosquitto_clients();
    let server = start(test_config(2));
    let (addr, control) = (server.client_addr(), server.control_addr());
    let port = addr.port();
    let mut pomelo = common::client(addr, DEMO, "pomelo-tcp");
    for version in VERSIONS {
        let id = format!("own-{version}");
        let own_topic = format!("push/demo/{id}");
        // Subscribed to the channel and to its own topic; -v prints the topic before the payload.
        let mut s = sub(port, version, &id, 4, &["-q", "1", "-t", &own_topic, "-v"]);
        wait_online(control, &["pomelo-tcp", &id], &mut [&mut s]);

        // Text that is not JSON is the msg as a JSON string.
        manager_pub(port, version, &format!("m1-{version}"), "push/demo", "1", "plain text")
            .finish()
            .assert_exact(0, "", "");
        assert_eq!(pomelo.next_push(), onmsg(json!("plain text")), "{version}");
        // A personal push to the Pomelo client, from mosquitto_pub: mosquitto_sub must not see it.
        manager_pub(port, version, &format!("m2-{version}"), "push/demo/pomelo-tcp", "1", "{}")
            .finish()
            .assert_exact(0, "", "");
        assert_eq!(pomelo.next_push(), onmsg(json!({})), "{version}");
        // Personal pushes to mosquitto_sub, from mosquitto_pub and from the HTTP API, arrive on
        // its own topic.
        manager_pub(port, version, &format!("m3-{version}"), &own_topic, "1", r#"{"p":1}"#)
            .finish()
            .assert_exact(0, "", "");
        assert_eq!(http_push_to(control, &id, json!({"p": 2})), json!({"recipients": 1}));
        assert_eq!(http_push(control, json!("end")), json!({"recipients": 2}), "{version}");
        let expected = format!(
            "push/demo \"plain text\"\n{own_topic} {{\"p\":1}}\n{own_topic} {{\"p\":2}}\npush/demo \"end\"\n"
        );
        s.finish().assert_exact(0, &expected, "");
        assert_eq!(pomelo.next_push(), onmsg(json!("end")), "{version}");
        pomelo.assert_no_pending_push();
    }
}

#[test]
fn a_managers_will_is_pushed_when_its_connection_drops() {
    require_mosquitto_clients();
    let server = start(test_config(2));
    let (addr, control) = (server.client_addr(), server.control_addr());
    let port = addr.port();
    let mut pomelo = common::client(addr, DEMO, "pomelo-tcp");
    for version in VERSIONS {
        let id = format!("heir-{version}");
        let mut s = sub(port, version, &id, 2, &["-q", "1"]);
        wait_online(control, &["pomelo-tcp", &id], &mut [&mut s]);
        // mosquitto_pub -l publishes each line of its stdin; a line shows it is connected. Then
        // it is killed, so its connection ends without DISCONNECT and the will is published.
        let args: Vec<String> = [
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-V",
            version,
            "-i",
            &format!("dying-{version}"),
            "-u",
            DEMO,
            "-P",
            DEMO_SECRET,
            "-t",
            "push/demo",
            "-q",
            "1",
            "-l",
            "--will-topic",
            "push/demo",
            "--will-payload",
            r#"{"will":1}"#,
            "--will-qos",
            "1",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        let mut manager = Proc::spawn_with("mosquitto_pub", &args, Stdio::piped());
        manager.write_line("alive");
        assert_eq!(pomelo.next_push(), onmsg(json!("alive")), "{version}");
        manager.kill();
        assert_eq!(pomelo.next_push(), onmsg(json!({"will": 1})), "{version}");
        s.finish().assert_exact(0, "\"alive\"\n{\"will\":1}\n", "");
        pomelo.assert_no_pending_push();
    }
}

// ---- 3. refusals, as the clients report them ------------------------------------------------

#[test]
fn a_clients_publish_is_refused_and_reaches_no_one() {
    require_mosquitto_clients();
    let server = start(test_config(2));
    let (port, control) = (server.client_addr().port(), server.control_addr());
    let mut watcher = sub(port, V5, "watcher", 1, &["-q", "1"]);
    wait_online(control, &["watcher"], &mut [&mut watcher]);
    // (version, qos, exit code, stderr): 5.0 refuses QoS 1 with PUBACK 0x87 and QoS 2 with
    // PUBREC 0x87, which mosquitto_pub reports as a warning and still exits 0; QoS 0 with
    // DISCONNECT 0x87, after mosquitto_pub is done. 3.1.1 closes the connection: at QoS 1
    // mosquitto_pub loses it before its PUBACK (exit 7, MOSQ_ERR_CONN_LOST).
    let cases = [
        (V5, "1", 0, "Warning: Publish 1 failed: Not authorized."),
        (V5, "2", 0, "Warning: Publish 1 failed: Not authorized."),
        (V5, "0", 0, ""),
        (V311, "1", 7, "Error: The connection was lost."),
        (V311, "0", 0, ""),
    ];
    let mut wrong = Vec::new();
    for (version, qos, code, first_line) in cases {
        let id = format!("client-pub-{version}-q{qos}");
        let args = ["-u", DEMO, "-t", "push/demo", "-q", qos, "-m", r#"{"from":"a client"}"#];
        let done = mosquitto("mosquitto_pub", port, version, &id, &args).finish();
        let got = (done.status.code(), done.stdout.as_str(), done.stderr.lines().next());
        if got != (Some(code), "", Some(first_line).filter(|l| !l.is_empty())) {
            wrong.push(format!(
                "{version} QoS {qos}: expected exit {code} and {first_line:?}: {done}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
    // None of them reached the channel: the watcher's one message is the HTTP push after them.
    assert_eq!(http_push(control, json!("end")), json!({"recipients": 1}));
    watcher.finish().assert_exact(0, "\"end\"\n", "");
}

#[test]
fn a_wrong_password_a_missing_or_unknown_apikey_is_refused_at_connect() {
    require_mosquitto_clients();
    let server = start(test_config(2));
    let (port, control) = (server.client_addr().port(), server.control_addr());
    // The CONNACK refusal is mosquitto's exit status: v5 0x86, 3.1.1 return code 4.
    let refusal = |version: &str| match version {
        V5 => (134, "Connection error: Bad User Name or Password"),
        _ => (4, "Connection error: Connection Refused: bad user name or password."),
    };
    let credentials: [&[&str]; 4] = [
        &["-u", DEMO, "-P", "wrong-secret"],
        // A real secret, but the other app's.
        &["-u", DEMO, "-P", OTHER_SECRET],
        &["-u", "no-such-app"],
        &[],
    ];
    for version in VERSIONS {
        let (code, line) = refusal(version);
        for (n, creds) in credentials.iter().enumerate() {
            let id = format!("refused-{version}-{n}");
            let mut args = creds.to_vec();
            args.extend_from_slice(&["-t", "push/demo", "-C", "1", "-W", "10"]);
            let done = mosquitto("mosquitto_sub", port, version, &id, &args).finish();
            done.assert_exact(code, "", &format!("{line}\n"));

            let mut args = creds.to_vec();
            args.extend_from_slice(&["-t", "push/demo", "-q", "1", "-m", "x"]);
            let done = mosquitto("mosquitto_pub", port, version, &id, &args).finish();
            done.assert_refused(code, line);
        }
    }
    assert_eq!(online(control), Vec::<String>::new());
}

#[test]
fn a_client_with_a_will_and_mqtt_3_1_are_refused_at_connect() {
    require_mosquitto_clients();
    let server = start(test_config(2));
    let port = server.client_addr().port();
    let will = ["-u", DEMO, "-t", "push/demo", "-E", "-W", "10", "--will-topic", "push/demo"];
    let will: Vec<&str> = will.iter().copied().chain(["--will-payload", "bye"]).collect();
    let done = mosquitto("mosquitto_sub", port, V5, "will-5", &will).finish();
    done.assert_exact(135, "", "Connection error: Not authorized\n");
    let done = mosquitto("mosquitto_sub", port, V311, "will-311", &will).finish();
    done.assert_exact(5, "", "Connection error: Connection Refused: not authorised.\n");

    let args = ["-u", DEMO, "-t", "push/demo", "-E", "-W", "10"];
    let done = mosquitto("mosquitto_sub", port, "mqttv31", "old-31", &args).finish();
    done.assert_exact(
        1,
        "",
        "Connection error: Connection Refused: unacceptable protocol version.\n",
    );
}

#[test]
fn subscriptions_outside_the_clients_own_topics_are_refused_in_the_suback() {
    require_mosquitto_clients();
    let server = start(test_config(2));
    let (port, control) = (server.client_addr().port(), server.control_addr());
    // -d prints the SUBACK's code ("Subscribed (mid: 1): N"), -E exits once it has arrived.
    let mut wrong = Vec::new();
    for version in VERSIONS {
        // 5.0: 0x87 Not authorized (135), wildcards 0xA2 Wildcard Subscriptions not supported
        // (162, as CONNACK announced); 3.1.1: 0x80 Failure (128) for all.
        let (failure, wildcard) = if version == V5 { ("135", "162") } else { ("128", "128") };
        let id = format!("picky-{version}");
        let refused: [(&[&str], &str, &str); 9] = [
            (&["-u", DEMO], "push/other", failure),
            (&["-u", DEMO], "push/#", wildcard),
            (&["-u", DEMO], "#", wildcard),
            (&["-u", DEMO], "push/+", wildcard),
            (&["-u", DEMO], "push/demo/+", wildcard),
            (&["-u", DEMO], "push/demo/someone-else", failure),
            (&["-u", DEMO], "push/demox", failure),
            (&["-u", OTHER], "push/demo", failure),
            // A management session subscribes to nothing.
            (&["-u", DEMO, "-P", DEMO_SECRET], "push/demo", failure),
        ];
        for (creds, topic, failure) in refused {
            let mut args = creds.to_vec();
            args.extend_from_slice(&["-t", topic, "-q", "1", "-d", "-E", "-W", "10"]);
            let done = mosquitto("mosquitto_sub", port, version, &id, &args).finish();
            let suback = format!("Subscribed (mid: 1): {failure}");
            if !(done.status.code() == Some(0)
                && done.stdout_lines().contains(&suback.as_str())
                && done.stderr == "All subscription requests were denied.\n")
            {
                wrong.push(format!(
                    "{version} {creds:?} on {topic}: expected {suback:?} and the denial: {done}"
                ));
            }
        }
        // Granted: the channel (at most QoS 1, even when 2 is asked for) and the client's own
        // topic.
        let own = format!("push/demo/{id}");
        for (topic, qos, granted) in
            [("push/demo", "2", "1"), ("push/demo", "0", "0"), (&own, "1", "1")]
        {
            let args = ["-u", DEMO, "-t", topic, "-q", qos, "-d", "-E", "-W", "10"];
            let done = mosquitto("mosquitto_sub", port, version, &id, &args).finish();
            let suback = format!("Subscribed (mid: 1): {granted}");
            if !(done.status.code() == Some(0)
                && done.stdout_lines().contains(&suback.as_str())
                && done.stderr.is_empty())
            {
                wrong.push(format!(
                    "{version} on {topic} at QoS {qos}: expected {suback:?}: {done}"
                ));
            }
        }
    }
    // Every case is tried, and every wrong one named.
    assert!(wrong.is_empty(), "{} wrong:\n{}", wrong.len(), wrong.join("\n"));
    wait_online(control, &[], &mut []);
}

// ---- 4. MQTT.js over WebSocket --------------------------------------------------------------

fn mqtt_js_args(server: &common::TestServer, version: u8, scenario: &str) -> Vec<String> {
    let mut args = runner::server_args(server.client_addr().port(), DEMO, DEMO_SECRET, 20000);
    args.extend([
        "--control-port".to_owned(),
        server.control_addr().port().to_string(),
        "--protocol-version".to_owned(),
        version.to_string(),
        "--scenario".to_owned(),
        scenario.to_owned(),
    ]);
    args
}

/// What MQTT.js reports for one message.
fn message(topic: &str, payload: &str, qos: u8, retain: bool) -> Value {
    json!({"topic": topic, "payload": payload, "qos": qos, "retain": retain, "dup": false})
}

fn mqtt_js_gets_qos_1_pushes_once_in_order(version: u8) {
    runner::require_node_modules();
    let server = start(test_config(2));
    let mut args = mqtt_js_args(&server, version, "qos1");
    args.extend(["--count".to_owned(), "5".to_owned()]);
    let run = runner::run_script("mqtt_ws.mjs", &args, Duration::from_secs(40));
    run.assert_ok();
    let r = &run.result;
    assert_eq!(r["granted"], json!([{"topic": "push/demo", "qos": 1}]), "{r}");
    assert_eq!(r["answers"], json!(vec![json!({"recipients": 1}); 5]), "{r}");
    let expected: Vec<Value> =
        (0..5).map(|n| message("push/demo", &format!("{{\"n\":{n}}}"), 1, false)).collect();
    assert_eq!(r["received"], json!(expected), "{r}");
    assert_eq!(r["errors"], json!([]), "{r}");
    assert_eq!(r["closes"], 0, "{r}");
}

#[test]
fn mqtt_js_3_1_1_over_websocket_gets_qos_1_pushes_once_in_order() {
    mqtt_js_gets_qos_1_pushes_once_in_order(4);
}

#[test]
fn mqtt_js_5_over_websocket_gets_qos_1_pushes_once_in_order() {
    mqtt_js_gets_qos_1_pushes_once_in_order(5);
}

fn mqtt_js_retained_message(version: u8) {
    runner::require_node_modules();
    let server = start(test_config(2));
    let args = mqtt_js_args(&server, version, "retain");
    let run = runner::run_script("mqtt_ws.mjs", &args, Duration::from_secs(40));
    run.assert_ok();
    let r = &run.result;
    let granted = json!([{"topic": "push/demo", "qos": 1}]);
    assert_eq!((&r["first_granted"], &r["second_granted"]), (&granted, &granted), "{r}");
    // When the retained message was published nobody was subscribed; the first subscriber then
    // got it first, flagged RETAIN; then the pushes made after it, without the flag. The empty
    // retained payload that cleared it was not pushed.
    let retained = format!("{{\"retained\":{version}}}");
    assert_eq!(
        r["first"]["received"],
        json!([
            message("push/demo", &retained, 1, true),
            message("push/demo", "\"after\"", 1, false),
            message("push/demo", "\"cleared\"", 1, false),
            message("push/demo", "\"late\"", 1, false),
        ]),
        "{r}"
    );
    // The second subscriber came after the clear: no retained message.
    assert_eq!(r["second"]["received"], json!([message("push/demo", "\"late\"", 1, false)]), "{r}");
    assert_eq!(r["manager"]["received"], json!([]), "{r}");
    let one = json!({"recipients": 1});
    assert_eq!((&r["after_answer"], &r["cleared_answer"]), (&one, &one), "{r}");
    assert_eq!(r["late_answer"], json!({"recipients": 2}), "{r}");
}

#[test]
fn mqtt_js_3_1_1_retained_message_reaches_a_new_subscriber_first() {
    mqtt_js_retained_message(4);
}

#[test]
fn mqtt_js_5_retained_message_reaches_a_new_subscriber_first() {
    mqtt_js_retained_message(5);
}

fn mqtt_js_keepalive(version: u8) {
    runner::require_node_modules();
    let server = start(test_config(2));
    let args = mqtt_js_args(&server, version, "keepalive");
    let run = runner::run_script("mqtt_ws.mjs", &args, Duration::from_secs(40));
    run.assert_ok();
    let r = &run.result;
    // Three and a half seconds at Keep Alive 1: every PINGREQ but perhaps the last answered.
    let (sent, answered) = (r["pings"]["pingreq"].as_u64(), r["pings"]["pingresp"].as_u64());
    assert!(answered >= Some(2) && sent.zip(answered).is_some_and(|(s, a)| a + 1 >= s), "{r}");
    assert_eq!(
        r["connack"]["serverKeepAlive"],
        Value::Null,
        "1 s is within the server's bound: {r}"
    );
    assert_eq!(r["received"], json!([message("push/demo", "\"still here\"", 1, false)]), "{r}");
    assert_eq!((&r["errors"], &r["closes"]), (&json!([]), &json!(0)), "{r}");
}

#[test]
fn mqtt_js_3_1_1_keepalive_pings_are_answered_and_the_session_stays() {
    mqtt_js_keepalive(4);
}

#[test]
fn mqtt_js_5_keepalive_pings_are_answered_and_the_session_stays() {
    mqtt_js_keepalive(5);
}

// ---- 5. one channel, four kinds of client ---------------------------------------------------

#[test]
fn one_push_all_reaches_pomelo_tcp_pomelo_ws_mosquitto_and_mqtt_js_once_each() {
    require_mosquitto_clients();
    runner::require_node_modules();
    let server = start(test_config(2));
    let (addr, control) = (server.client_addr(), server.control_addr());
    let (mut manager, _) = common::management(addr, DEMO, DEMO_SECRET);
    let mut tcp = common::client(addr, DEMO, "pomelo-tcp");
    let mut ws = ws_client(addr, DEMO, "pomelo-ws");
    let mut mosq = sub(addr.port(), V5, "mosquitto", 2, &["-q", "1"]);
    let mut args = mqtt_js_args(&server, 5, "hold");
    args.extend(["--client-id", "mqtt-js", "--count", "2"].map(str::to_owned));
    let child = runner::spawn_node("mqtt_ws.mjs", &args);
    let mut js =
        Proc::from_child("mqtt_ws.mjs --scenario hold".into(), child, Duration::from_secs(30));

    let all = ["mosquitto", "mqtt-js", "pomelo-tcp", "pomelo-ws"];
    wait_online(control, &all, &mut [&mut mosq, &mut js]);
    let page = http::get(control, "/api/apps/demo/clients", Some(DEMO_SECRET)).json();
    assert_eq!(page, json!({"clients": all, "total": 4, "next_cursor": null}));
    // The Pomelo management session heard every one of them arrive, MQTT clients included.
    let mut added: Vec<String> = (0..4)
        .map(|_| {
            let (route, body) = manager.next_push();
            assert_eq!(route, "onAdd", "{body}");
            body["clientId"].as_str().expect("onAdd clientId").to_owned()
        })
        .collect();
    added.sort();
    assert_eq!(added, all);

    let response = manager.push_all(DEMO, json!({"all": 1}));
    assert_eq!(response, json!({"code": 200, "msg": "push is ok.", "recipients": 4}));
    assert_eq!(http_push(control, json!("end")), json!({"recipients": 4}));
    for pomelo in [&mut tcp as &mut dyn PomeloPushes, &mut ws] {
        assert_eq!(pomelo.next(), onmsg(json!({"all": 1})));
        assert_eq!(pomelo.next(), onmsg(json!("end")));
        pomelo.nothing_pending();
    }
    mosq.finish().assert_exact(0, "{\"all\":1}\n\"end\"\n", "");
    let done = js.finish();
    let line = done.stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    let r: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("no JSON line ({e}): {done}"));
    assert!(done.status.success() && r["ok"] == true, "{done}");
    assert_eq!(
        r["received"],
        json!([
            message("push/demo", "{\"all\":1}", 1, false),
            message("push/demo", "\"end\"", 1, false)
        ]),
        "{r}"
    );
}

/// The two Pomelo transports' sessions, side by side in one loop.
trait PomeloPushes {
    fn next(&mut self) -> (String, Value);
    fn nothing_pending(&mut self);
}

impl<W: common::session::Wire> PomeloPushes for common::Session<W> {
    fn next(&mut self) -> (String, Value) {
        self.next_push()
    }

    fn nothing_pending(&mut self) {
        self.assert_no_pending_push();
    }
}

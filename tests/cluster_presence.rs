//! Presence across the nodes of a cluster (`[cluster]`), against a real `redis-server` started
//! by the test: counts in enter/onAdd/onLeave, `recipients` and the clients API are cluster-wide;
//! management sessions hear the other nodes' clients come and go; `pushByClientId` and
//! `POST …/clients/{id}/push` reach a client on whichever node holds it (404 when none does);
//! a clientId entering on another node replaces the older connection (or is refused with
//! `duplicate = "refuse"`); and a node killed with SIGKILL (a daemon process of its own) drops
//! out of presence within `cluster.node_ttl_secs`.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shaddock::config::{ClusterConfig, DuplicatePolicy};

use common::redis::RedisServer;
use common::ws::ws_client;
use common::{DEMO, DEMO_SECRET, PomeloClient, TestServer, client, management, start, test_config};

fn node_config(redis: &RedisServer, prefix: &str, node: &str) -> shaddock::config::Config {
    let mut config = test_config(2);
    let mut cluster = ClusterConfig::new(redis.url());
    cluster.node_id = Some(node.to_owned());
    cluster.prefix = prefix.to_owned();
    cluster.node_ttl_secs = 3;
    config.cluster = Some(cluster);
    config
}

fn node(redis: &RedisServer, prefix: &str, node: &str) -> TestServer {
    start(node_config(redis, prefix, node))
}

fn wait_up(servers: &[&TestServer]) {
    common::wait_until("every bus up", Duration::from_secs(15), || {
        servers.iter().all(|s| s.stats().push.cluster.up)
    });
}

/// The clients API of `control`: the ids (one page of 100) and the total.
fn online(control: SocketAddr) -> (Vec<String>, u64) {
    let path = format!("/api/apps/{DEMO}/clients");
    let page = common::http::get(control, &path, Some(DEMO_SECRET)).json();
    let ids = page["clients"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned());
    (ids.collect(), page["total"].as_u64().unwrap())
}

fn wait_total(control: SocketAddr, total: u64) {
    let mut last = (Vec::new(), 0);
    common::wait_until(&format!("{total} online at {control}"), Duration::from_secs(10), || {
        last = online(control);
        last.1 == total
    });
}

/// The next onAdd or onLeave a manager hears (skipping nothing else: managers get only these).
fn next_event(manager: &mut PomeloClient) -> (String, Value) {
    let (route, body) = manager.next_push();
    assert!(route == "onAdd" || route == "onLeave", "{route}: {body}");
    (route, body)
}

fn push_to(control: SocketAddr, client_id: &str, msg: Value) -> common::http::Response {
    let path = format!("/api/apps/{DEMO}/clients/{client_id}/push");
    common::http::post_json(control, &path, Some(DEMO_SECRET), &json!({ "msg": msg }).to_string())
}

#[test]
fn presence_counts_lists_and_notifications_span_the_nodes() {
    let redis = RedisServer::start();
    let prefix = format!("p{}-presence:", std::process::id());
    let (n0, n1, n2) =
        (node(&redis, &prefix, "n0"), node(&redis, &prefix, "n1"), node(&redis, &prefix, "n2"));
    wait_up(&[&n0, &n1, &n2]);
    let (mut manager, entered) = management(n0.client_addr(), DEMO, DEMO_SECRET);
    assert_eq!(entered["count"], 0, "{entered}");

    let mut alice = client(n1.client_addr(), DEMO, "alice");
    let (route, add) = next_event(&mut manager);
    assert_eq!(
        (route.as_str(), &add["clientId"], &add["count"]),
        ("onAdd", &json!("alice"), &json!(1))
    );
    let bob = ws_client(n2.client_addr(), DEMO, "bob");
    let (_, add) = next_event(&mut manager);
    assert_eq!((&add["clientId"], &add["count"]), (&json!("bob"), &json!(2)), "{add}");
    let carol = client(n0.client_addr(), DEMO, "carol");
    let (_, add) = next_event(&mut manager);
    assert_eq!((&add["clientId"], &add["count"]), (&json!("carol"), &json!(3)), "{add}");

    // The clients API of every node lists everyone, sorted; a manager entering anywhere counts
    // everyone.
    let dave = client(n2.client_addr(), DEMO, "dave");
    let (_, add) = next_event(&mut manager);
    assert_eq!((&add["clientId"], &add["count"]), (&json!("dave"), &json!(4)), "{add}");
    for node in [&n0, &n1, &n2] {
        wait_total(node.control_addr(), 4);
        assert_eq!(online(node.control_addr()).0, ["alice", "bob", "carol", "dave"]);
    }
    let (_, management_enter) = management(n1.client_addr(), DEMO, DEMO_SECRET);
    assert_eq!(management_enter["count"], 4, "{management_enter}");

    // pushAll counts every node's clients.
    let answer = manager.push_all(DEMO, json!("to all"));
    assert_eq!(answer["recipients"], 4, "{answer}");
    assert_eq!(alice.next_push().1["msg"], "to all");

    // A leave on n1 reaches n0's manager with the count left.
    drop(alice);
    let (route, leave) = next_event(&mut manager);
    assert_eq!(
        (route.as_str(), &leave["clientId"], &leave["count"]),
        ("onLeave", &json!("alice"), &json!(3))
    );
    wait_total(n2.control_addr(), 3);
    drop((bob, carol, dave));
}

#[test]
fn a_push_to_one_client_reaches_it_on_whichever_node_holds_it() {
    let redis = RedisServer::start();
    let prefix = format!("p{}-push-to:", std::process::id());
    let (n0, n1, n2) =
        (node(&redis, &prefix, "n0"), node(&redis, &prefix, "n1"), node(&redis, &prefix, "n2"));
    wait_up(&[&n0, &n1, &n2]);
    let mut phone = client(n2.client_addr(), DEMO, "phone");
    let mut tablet = ws_client(n1.client_addr(), DEMO, "tablet");
    wait_total(n0.control_addr(), 2);

    let (mut manager, _) = management(n0.client_addr(), DEMO, DEMO_SECRET);
    let answer = manager.push_by_client_id(DEMO, "phone", json!({"to": "phone"}));
    assert_eq!((&answer["code"], &answer["recipients"]), (&json!(200), &json!(1)), "{answer}");
    assert_eq!(phone.next_push().1["msg"], json!({"to": "phone"}));

    let response = push_to(n2.control_addr(), "tablet", json!("over http"));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(tablet.next_push().1["msg"], "over http");

    let answer = manager.push_by_client_id(DEMO, "nobody", json!(1));
    assert_eq!(answer["code"], 404, "no node holds it: {answer}");
    assert_eq!(push_to(n1.control_addr(), "nobody", json!(1)).status, 404);
    phone.expect_quiet_for(Duration::from_millis(200));
    let received: u64 = [&n1, &n2].iter().map(|n| n.stats().push.cluster.received).sum();
    assert_eq!(received, 2, "one personal push each");
}

#[test]
fn a_client_id_entering_on_another_node_replaces_the_older_connection() {
    let redis = RedisServer::start();
    let prefix = format!("p{}-dup:", std::process::id());
    let (a, b) = (node(&redis, &prefix, "a"), node(&redis, &prefix, "b"));
    wait_up(&[&a, &b]);
    let mut first = client(a.client_addr(), DEMO, "same");
    wait_total(b.control_addr(), 1);
    let mut second = client(b.client_addr(), DEMO, "same");
    assert_eq!(first.expect_kick(), "replaced");
    wait_total(a.control_addr(), 1);
    assert_eq!(online(a.control_addr()).0, ["same"]);
    // The newer one is the one that gets pushes, once.
    let response = push_to(a.control_addr(), "same", json!("newest"));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(second.next_push().1["msg"], "newest");
    second.expect_quiet_for(Duration::from_millis(200));
}

#[test]
fn with_duplicate_refuse_a_client_id_online_on_another_node_is_refused() {
    let redis = RedisServer::start();
    let prefix = format!("p{}-refuse:", std::process::id());
    let mut config = node_config(&redis, &prefix, "a");
    config.client.duplicate = DuplicatePolicy::Refuse;
    let a = start(config);
    let mut config = node_config(&redis, &prefix, "b");
    config.client.duplicate = DuplicatePolicy::Refuse;
    let b = start(config);
    wait_up(&[&a, &b]);
    let mut first = client(a.client_addr(), DEMO, "only-one");
    wait_total(b.control_addr(), 1);
    let mut second = PomeloClient::connect(b.client_addr());
    let answer = second.enter_client(DEMO, "only-one");
    assert_ne!(answer["code"], 200, "refused: {answer}");
    first.heartbeat();
    assert_eq!(online(b.control_addr()), (vec!["only-one".to_owned()], 1));
}

/// A shaddock daemon process on the cluster (so that it can be killed with SIGKILL).
struct Daemon {
    child: Child,
    dir: std::path::PathBuf,
}

impl Daemon {
    fn start(
        redis: &RedisServer,
        prefix: &str,
        node: &str,
        client_port: u16,
        control_port: u16,
    ) -> Daemon {
        let dir =
            std::env::temp_dir().join(format!("shaddock-cluster-{node}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            "reactors = 1\n[client]\nlisten = \"127.0.0.1:{client_port}\"\n[control]\nlisten = \
             \"127.0.0.1:{control_port}\"\n[cluster]\nredis = \"{}\"\nnode_id = \"{node}\"\n\
             prefix = \"{prefix}\"\nnode_ttl_secs = 3\n[log]\nlevel = \"warn\"\n[[apps]]\napikey \
             = \"{DEMO}\"\nsecret = \"{DEMO_SECRET}\"\n",
            redis.url()
        );
        std::fs::write(dir.join("node.toml"), config).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_shaddock"))
            .args(["run", "--config"])
            .arg(dir.join("node.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the shaddock binary runs");
        let addr = SocketAddr::from(([127, 0, 0, 1], control_port));
        common::wait_until("the daemon's control port", Duration::from_secs(10), || {
            std::net::TcpStream::connect(addr).is_ok()
        });
        Daemon { child, dir }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_node_killed_with_sigkill_drops_out_of_presence_within_its_ttl() {
    let redis = RedisServer::start();
    let prefix = format!("p{}-kill:", std::process::id());
    let survivor = node(&redis, &prefix, "survivor");
    let (client_port, control_port) = (free_port(), free_port());
    let mut doomed = Daemon::start(&redis, &prefix, "doomed", client_port, control_port);
    wait_up(&[&survivor]);
    let (mut manager, _) = management(survivor.client_addr(), DEMO, DEMO_SECRET);
    let _victim = client(SocketAddr::from(([127, 0, 0, 1], client_port)), DEMO, "victim");
    let (route, add) = next_event(&mut manager);
    assert_eq!((route.as_str(), &add["clientId"]), ("onAdd", &json!("victim")), "{add}");
    wait_total(survivor.control_addr(), 1);

    let killed = Instant::now();
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&doomed.child),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let (route, leave) = next_event(&mut manager);
    assert_eq!(
        (route.as_str(), &leave["clientId"], &leave["count"]),
        ("onLeave", &json!("victim"), &json!(0))
    );
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(3 + 3), "dropped {took:?} after the kill (TTL 3 s)");
    assert_eq!(online(survivor.control_addr()), (Vec::new(), 0));
    assert_eq!(push_to(survivor.control_addr(), "victim", json!(1)).status, 404);
    let _ = doomed.child.wait();
}

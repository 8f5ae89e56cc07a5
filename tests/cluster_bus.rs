//! The cluster bus (`[cluster]`) against a real `redis-server` started by the test: three nodes
//! in one process, Pomelo clients over TCP and WebSocket on each; a pushAll accepted by any node
//! (a management session, the HTTP API) reaches every client on every node exactly once, and
//! one publisher's pushes arrive in order; Redis killed mid-test leaves local delivery working
//! and the bus reported down (`/healthz`, `/metrics`), and once Redis is back the nodes
//! reconnect and pushes cross again.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use shaddock::config::ClusterConfig;

use common::metrics::Scrape;
use common::redis::RedisServer;
use common::ws::{WsPomeloClient, ws_client};
use common::{DEMO, DEMO_SECRET, PomeloClient, TestServer, client, management, start, test_config};

/// A node of a cluster on `redis`, named `node`, under `prefix`.
fn node(redis: &RedisServer, prefix: &str, node: &str) -> TestServer {
    let mut config = test_config(2);
    let mut cluster = ClusterConfig::new(redis.url());
    cluster.node_id = Some(node.to_owned());
    cluster.prefix = prefix.to_owned();
    config.cluster = Some(cluster);
    start(config)
}

fn bus_up(server: &TestServer) -> bool {
    server.stats().push.cluster.up
}

fn wait_bus(servers: &[&TestServer], up: bool) {
    common::wait_until(&format!("every bus up = {up}"), Duration::from_secs(15), || {
        servers.iter().all(|s| bus_up(s) == up)
    });
}

fn health(control: SocketAddr) -> Value {
    common::http::get(control, "/healthz", None).json()
}

/// Waits until `control`'s clients API counts `total` clients online (every node's).
fn wait_online(control: SocketAddr, total: u64) {
    let path = format!("/api/apps/{DEMO}/clients");
    common::wait_until(&format!("{total} clients online"), Duration::from_secs(10), || {
        common::http::get(control, &path, Some(DEMO_SECRET)).json()["total"] == total
    });
}

fn http_push_all(control: SocketAddr, msg: Value) -> Value {
    let body = json!({ "msg": msg }).to_string();
    let path = format!("/api/apps/{DEMO}/push");
    let response = common::http::post_json(control, &path, Some(DEMO_SECRET), &body);
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

/// The clients of one node: one over TCP, one over WebSocket.
struct Members {
    tcp: PomeloClient,
    ws: WsPomeloClient,
}

impl Members {
    fn enter(server: &TestServer, name: &str) -> Members {
        let addr = server.client_addr();
        Members {
            tcp: client(addr, DEMO, &format!("{name}-tcp")),
            ws: ws_client(addr, DEMO, &format!("{name}-ws")),
        }
    }

    /// The next `n` onMsg messages of each client.
    fn receive(&mut self, n: usize) -> [Vec<Value>; 2] {
        let mut tcp = Vec::with_capacity(n);
        let mut ws = Vec::with_capacity(n);
        for _ in 0..n {
            let (route, body) = self.tcp.next_push();
            assert_eq!(route, "onMsg");
            tcp.push(body["msg"].clone());
            let (route, body) = self.ws.next_push();
            assert_eq!(route, "onMsg");
            ws.push(body["msg"].clone());
        }
        [tcp, ws]
    }
}

/// Every publisher's pushes, in the order each client got them.
fn by_publisher(msgs: &[Value]) -> HashMap<String, Vec<u64>> {
    let mut seen: HashMap<String, Vec<u64>> = HashMap::new();
    for msg in msgs {
        let from = msg["from"].as_str().expect("from").to_owned();
        seen.entry(from).or_default().push(msg["n"].as_u64().expect("n"));
    }
    seen
}

#[test]
fn a_push_all_on_any_node_reaches_every_client_of_every_node_once_and_in_order() {
    let redis = RedisServer::start();
    let prefix = format!("t{}-order:", std::process::id());
    let nodes =
        [node(&redis, &prefix, "n0"), node(&redis, &prefix, "n1"), node(&redis, &prefix, "n2")];
    wait_bus(&nodes.iter().collect::<Vec<_>>(), true);
    assert_eq!(health(nodes[0].control_addr()), json!({"status": "ok", "cluster": "up"}));
    let mut members: Vec<Members> =
        nodes.iter().enumerate().map(|(i, n)| Members::enter(n, &format!("c{i}"))).collect();
    for node in &nodes {
        wait_online(node.control_addr(), 6);
    }
    let (mut manager, _) = management(nodes[0].client_addr(), DEMO, DEMO_SECRET);

    // 10 from each publisher, interleaved: node 0's management session, HTTP on nodes 1 and 2.
    const EACH: u64 = 10;
    for n in 0..EACH {
        let answer = manager.push_all(DEMO, json!({"from": "socket-n0", "n": n}));
        assert_eq!(answer["code"], 200, "{answer}");
        assert_eq!(answer["recipients"], 6, "every node's members: {answer}");
        let answer = http_push_all(nodes[1].control_addr(), json!({"from": "http-n1", "n": n}));
        assert_eq!(answer["recipients"], 6, "{answer}");
        http_push_all(nodes[2].control_addr(), json!({"from": "http-n2", "n": n}));
    }
    let in_order: Vec<u64> = (0..EACH).collect();
    for (i, node_members) in members.iter_mut().enumerate() {
        for (transport, msgs) in ["tcp", "ws"].iter().zip(node_members.receive(3 * EACH as usize)) {
            let seen = by_publisher(&msgs);
            assert_eq!(seen.len(), 3, "node {i} {transport}: {msgs:?}");
            for (publisher, ns) in seen {
                assert_eq!(ns, in_order, "node {i} {transport} from {publisher}: {msgs:?}");
            }
        }
        node_members.tcp.expect_quiet_for(Duration::from_millis(300));
    }
    for (i, node) in nodes.iter().enumerate() {
        let bus = node.stats().push.cluster;
        assert_eq!(bus.published, EACH, "node {i} published its own: {bus:?}");
        assert_eq!(bus.received, 2 * EACH, "node {i} received the others': {bus:?}");
        assert_eq!((bus.not_forwarded, bus.dropped), (0, 0), "node {i}: {bus:?}");
    }
    let scrape = Scrape::take(nodes[1].control_addr());
    assert_eq!(scrape.sum("shaddock_cluster_up", &[]), 1.0);
    assert_eq!(scrape.sum("shaddock_cluster_received_total", &[]), 20.0);
    assert_eq!(scrape.sum("shaddock_pushes_total", &[("source", "cluster")]), 20.0);
}

#[test]
fn with_redis_down_a_node_serves_its_own_clients_and_reconnects_when_it_is_back() {
    let mut redis = RedisServer::start();
    let prefix = format!("t{}-down:", std::process::id());
    let (a, b) = (node(&redis, &prefix, "a"), node(&redis, &prefix, "b"));
    wait_bus(&[&a, &b], true);
    let mut on_a = Members::enter(&a, "a");
    let mut on_b = Members::enter(&b, "b");
    wait_online(a.control_addr(), 4);

    redis.kill();
    wait_bus(&[&a, &b], false);
    assert_eq!(health(a.control_addr()), json!({"status": "ok", "cluster": "down"}));
    let answer = http_push_all(a.control_addr(), json!({"from": "a", "n": 0}));
    assert_eq!(
        answer["recipients"], 2,
        "this node's members only, while the bus is down: {answer}"
    );
    // A personal push to a client on the other node is refused while the bus is down.
    let path = format!("/api/apps/{DEMO}/clients/b-tcp/push");
    let refused =
        common::http::post_json(a.control_addr(), &path, Some(DEMO_SECRET), r#"{"msg":1}"#);
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.text().contains("cluster bus is down"), "{}", refused.text());
    assert_eq!(on_a.receive(1)[0], [json!({"from": "a", "n": 0})]);
    on_b.tcp.expect_quiet_for(Duration::from_millis(300));
    common::wait_until("the push counted as not forwarded", Duration::from_secs(5), || {
        a.stats().push.cluster.not_forwarded == 1
    });
    let scrape = Scrape::take(a.control_addr());
    assert_eq!(scrape.sum("shaddock_cluster_up", &[]), 0.0);
    assert_eq!(scrape.sum("shaddock_cluster_not_forwarded_total", &[]), 1.0);

    redis.restart();
    wait_bus(&[&a, &b], true);
    http_push_all(b.control_addr(), json!({"from": "b", "n": 1}));
    let expected = [json!({"from": "b", "n": 1})];
    assert_eq!(on_a.receive(1), [expected.to_vec(), expected.to_vec()]);
    assert_eq!(on_b.receive(1), [expected.to_vec(), expected.to_vec()]);
}

#[test]
fn a_bad_redis_url_fails_the_start_naming_the_key() {
    let mut config = test_config(1);
    config.cluster = Some(ClusterConfig::new("redis://no host:x"));
    let error = shaddock::Server::start(config).unwrap_err().to_string();
    assert!(error.contains("cluster.redis"), "{error}");
}

#[test]
fn a_node_follows_only_the_apps_it_has_members_of() {
    let redis = RedisServer::start();
    let prefix = format!("t{}-interest:", std::process::id());
    let (quiet, busy) = (node(&redis, &prefix, "quiet"), node(&redis, &prefix, "busy"));
    wait_bus(&[&quiet, &busy], true);
    let mut on_busy = Members::enter(&busy, "busy");
    wait_online(quiet.control_addr(), 2);
    // Pushes made on the node without members reach the other; the other's reach nobody there,
    // and the node without members never hears them.
    let both = |msg: Value| [vec![msg.clone()], vec![msg]];
    http_push_all(quiet.control_addr(), json!({"from": "quiet", "n": 0}));
    assert_eq!(on_busy.receive(1), both(json!({"from": "quiet", "n": 0})));
    http_push_all(busy.control_addr(), json!({"from": "busy", "n": 1}));
    assert_eq!(on_busy.receive(1), both(json!({"from": "busy", "n": 1})));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(quiet.stats().push.cluster.received, 0, "not subscribed: no members here");
    // Once it has a member, it follows the app: the first push after the join reaches it.
    let mut on_quiet = Members::enter(&quiet, "quiet");
    wait_online(busy.control_addr(), 4);
    http_push_all(busy.control_addr(), json!({"from": "busy", "n": 2}));
    assert_eq!(on_quiet.receive(1), both(json!({"from": "busy", "n": 2})));
}

#[test]
fn a_disconnect_on_one_node_kicks_the_client_on_the_node_that_holds_it() {
    let redis = RedisServer::start();
    let prefix = format!("t{}-disconnect:", std::process::id());
    let (a, b) = (node(&redis, &prefix, "a"), node(&redis, &prefix, "b"));
    wait_bus(&[&a, &b], true);
    let mut held_by_b = client(b.client_addr(), DEMO, "phone-1");
    wait_online(a.control_addr(), 1);
    let auth = format!("Bearer {DEMO_SECRET}");
    let disconnect = |path: &str| {
        common::http::request(a.control_addr(), "DELETE", path, &[("Authorization", &auth)], b"")
    };
    let path = format!("/api/apps/{DEMO}/clients/phone-1");
    let answer = disconnect(&format!("{path}?reason=account%20closed"));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json(), json!({"disconnected": 1}));
    assert_eq!(held_by_b.expect_kick(), "account closed");
    wait_online(a.control_addr(), 0);
    assert_eq!(disconnect(&path).status, 404, "no node holds it any more");
}

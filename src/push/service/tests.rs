//! The push service without sockets: apps, a recording outlet, and time passed in.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::ids::Forms;
use crate::push::outlet::Recorder;
use crate::push::testing::TestApps;

const DEMO: AppId = AppId(0);

fn service(
    rate: Option<u32>,
    duplicate: DuplicatePolicy,
    max_clients: Option<usize>,
) -> PushService {
    let refuse_duplicates = duplicate == DuplicatePolicy::Refuse;
    let apps = TestApps {
        rate,
        refuse_duplicates,
        max_clients,
        on_add_users_limit: 2,
        ..TestApps::default()
    };
    apps.service(Instant::now())
}

fn conn(core: usize, index: usize) -> ConnId {
    ConnId::new(core, index, 1)
}

fn join(service: &PushService, conn: ConnId, form: WireForm, id: &str, out: &mut Recorder) {
    let joined = service.enter_client(DEMO, conn, form, id, Instant::now(), out).unwrap();
    assert!(matches!(joined, ClientJoin::Joined(_)), "{joined:?}");
}

#[test]
fn both_edges_get_the_same_answers_counters_and_rate() {
    let service = service(Some(2), DuplicatePolicy::Replace, None);
    let mut out = Recorder::default();
    join(&service, conn(0, 1), WireForm::PomeloTcp, "alice", &mut out);
    join(&service, conn(1, 1), WireForm::PomeloTcp, "bob", &mut out);
    let t0 = Instant::now();
    let msg = json!("hi");

    let socket = service.push_all(Edge::Socket, DEMO, &msg, t0, &mut out);
    let http = service.push_all(Edge::Http, DEMO, &msg, t0, &mut out);
    assert_eq!((socket, http), (Ok(2), Ok(2)));
    // Each push: one broadcast per core with members, the same bytes for both.
    assert_eq!(out.broadcasts.len(), 4);
    let cores: Vec<usize> = out.broadcasts.iter().map(|(core, _, _)| *core).collect();
    assert_eq!(cores, [0, 1, 0, 1]);
    let bytes = |i: usize| out.broadcasts[i].2.bytes(WireForm::PomeloTcp).clone();
    assert_eq!(bytes(0), bytes(2));

    // One bucket for the app, whichever edge takes from it.
    let socket = service.push_all(Edge::Socket, DEMO, &msg, t0, &mut out).unwrap_err();
    let http = service.push_all(Edge::Http, DEMO, &msg, t0, &mut out).unwrap_err();
    assert_eq!(socket, http);
    assert_eq!((socket.code, socket.retry_after), (429, Some(Duration::from_millis(500))));
    let http_one = service.push_to(Edge::Http, DEMO, "alice", &msg, t0, &mut out).unwrap_err();
    assert_eq!(http_one.code, 429);
    assert_eq!(out.broadcasts.len(), 4, "a refused push reaches no one");

    let counted = service.counters().snapshot();
    assert_eq!((counted.pushes(Edge::Socket), counted.pushes(Edge::Http)), (1, 1));
    let later = t0 + Duration::from_millis(500);
    assert_eq!(service.push_to(Edge::Socket, DEMO, "alice", &msg, later, &mut out), Ok(1));
    assert_eq!(service.counters().snapshot().pushes(Edge::Socket), 2);
}

#[test]
fn a_push_to_one_client_goes_unencoded_to_its_connection() {
    let service = service(Some(1), DuplicatePolicy::Replace, None);
    let mut out = Recorder::default();
    join(&service, conn(1, 7), WireForm::PomeloWebSocket, "alice", &mut out);
    let t0 = Instant::now();
    let missing = service.push_to(Edge::Http, DEMO, "bob", &json!(1), t0, &mut out).unwrap_err();
    assert_eq!((missing.code, missing.msg.as_str()), (404, "no such client"));
    assert_eq!(missing.full_message(), "no such client: \"bob\" is not online");
    // A refusal before the rate takes no token: the one token is still there.
    assert_eq!(service.push_to(Edge::Http, DEMO, "alice", &json!({"a": 1}), t0, &mut out), Ok(1));
    let (target, push) = out.deliveries.last().unwrap();
    assert_eq!(*target, conn(1, 7));
    assert_eq!((push.route, &push.body[..]), ("onMsg", &br#"{"msg":{"a":1}}"#[..]));
}

#[test]
fn a_broadcast_is_encoded_only_in_the_forms_members_use() {
    let service = service(None, DuplicatePolicy::Replace, None);
    let mut out = Recorder::default();
    join(&service, conn(0, 1), WireForm::PomeloWebSocket, "alice", &mut out);
    service.push_all(Edge::Http, DEMO, &json!(1), Instant::now(), &mut out).unwrap();
    let (_, _, frame) = out.broadcasts.pop().unwrap();
    assert_eq!(frame.forms(), Forms::one(WireForm::PomeloWebSocket));

    join(&service, conn(1, 1), WireForm::PomeloTcp, "bob", &mut out);
    service.push_all(Edge::Http, DEMO, &json!(1), Instant::now(), &mut out).unwrap();
    assert_eq!(out.broadcasts.len(), 2, "one per core with members");
    let pomelo = Forms::one(WireForm::PomeloTcp).with(WireForm::PomeloWebSocket);
    assert!(out.broadcasts.drain(..).all(|(_, _, frame)| frame.forms() == pomelo));
    // Nobody online in the other app: nothing is handed to any core.
    let other = service.lookup("other").unwrap();
    assert_eq!(service.push_all(Edge::Http, other, &json!(1), Instant::now(), &mut out), Ok(0));
    assert!(out.broadcasts.is_empty());
}

#[test]
fn managers_hear_joins_replacements_and_leaves() {
    let service = service(None, DuplicatePolicy::Replace, None);
    let mut out = Recorder::default();
    let manager = conn(1, 9);
    let (users, count) = service.enter_manager(DEMO, manager);
    assert_eq!((users.len(), count), (0, 0));
    let first = conn(0, 1);
    let Ok(ClientJoin::Joined(key)) =
        service.enter_client(DEMO, first, WireForm::PomeloTcp, "alice", Instant::now(), &mut out)
    else {
        panic!("alice joins");
    };
    let (to, on_add) = out.deliveries.pop().unwrap();
    assert_eq!((to, on_add.route), (manager, "onAdd"));
    let body: Value = serde_json::from_slice(&on_add.body).unwrap();
    assert_eq!(body, json!({"msg": "add ok", "clientId": "alice", "count": 1, "users": ["alice"]}));

    // The same clientId again: the first connection is kicked, the count stays.
    let second = conn(1, 2);
    join(&service, second, WireForm::PomeloTcp, "alice", &mut out);
    assert_eq!(out.kicks, [(first, KickReason::Replaced)]);
    out.deliveries.clear();
    // The replaced connection leaves: alice is still online, so no onLeave.
    service.leave_client(DEMO, first, WireForm::PomeloTcp, key, &mut out);
    assert!(out.deliveries.is_empty());
    service.leave_client(DEMO, second, WireForm::PomeloTcp, key, &mut out);
    let (to, on_leave) = out.deliveries.pop().unwrap();
    assert_eq!((to, on_leave.route), (manager, "onLeave"));
    assert_eq!(&on_leave.body[..], br#"{"clientId":"alice","count":0}"#);
    let counted = service.counters().snapshot();
    assert_eq!((counted.joins, counted.leaves), (2, 2));

    service.leave_manager(DEMO, manager);
    join(&service, conn(0, 3), WireForm::PomeloTcp, "bob", &mut out);
    assert!(out.deliveries.is_empty(), "a manager that left hears nothing");
}

#[test]
fn refusals_have_their_codes() {
    let service = service(None, DuplicatePolicy::Refuse, Some(1));
    let mut out = Recorder::default();
    assert_eq!(service.lookup("nope").unwrap_err().code, 404);
    assert_eq!(
        service.authenticate("nope", Some("demo-secret"), Instant::now()).unwrap_err().code,
        404
    );
    let missing = service.authenticate("demo", None, Instant::now()).unwrap_err();
    assert_eq!((missing.code, missing.msg.as_str()), (401, "missing secret"));
    let wrong = service.authenticate("demo", Some("other-secret"), Instant::now()).unwrap_err();
    assert_eq!((wrong.code, wrong.msg.as_str()), (401, "wrong secret"));
    assert_eq!(service.authenticate("demo", Some("demo-secret"), Instant::now()), Ok(DEMO));

    join(&service, conn(0, 1), WireForm::PomeloTcp, "alice", &mut out);
    let now = Instant::now();
    let again = service.enter_client(DEMO, conn(0, 2), WireForm::PomeloTcp, "alice", now, &mut out);
    assert_eq!(again, Ok(ClientJoin::Duplicate));
    let full = service.enter_client(DEMO, conn(0, 3), WireForm::PomeloTcp, "bob", now, &mut out);
    assert_eq!(full.unwrap_err().code, 503);
    assert!(out.kicks.is_empty());
}

#[test]
fn presence_pages_in_sorted_order() {
    let service = service(None, DuplicatePolicy::Replace, None);
    let mut out = Recorder::default();
    for (i, id) in ["c", "a", "b"].into_iter().enumerate() {
        join(&service, conn(0, i), WireForm::PomeloTcp, id, &mut out);
    }
    let (page, total) = service.clients(DEMO, Some("a"), 5);
    let page: Vec<&str> = page.iter().map(ClientId::as_str).collect();
    assert_eq!((page, total), (vec!["b", "c"], 3));
}

#[test]
fn on_add_lists_users_at_most_once_a_second_and_only_short_lists() {
    let service = service(None, DuplicatePolicy::Replace, None);
    let mut out = Recorder::default();
    service.enter_manager(DEMO, conn(1, 9));
    let t0 = Instant::now();
    let listed = |out: &mut Recorder| {
        let (_, on_add) = out.deliveries.pop().expect("an onAdd");
        let body: Value = serde_json::from_slice(&on_add.body).unwrap();
        body.get("users").cloned()
    };
    let enter = |id: &str, index: usize, at: Instant, out: &mut Recorder| {
        service.enter_client(DEMO, conn(0, index), WireForm::PomeloTcp, id, at, out).unwrap();
    };
    enter("a", 1, t0, &mut out);
    assert_eq!(listed(&mut out), Some(json!(["a"])));
    // A second join in the same second: clientId and count only.
    enter("b", 2, t0 + Duration::from_millis(500), &mut out);
    assert_eq!(listed(&mut out), None);
    enter("c", 3, t0 + Duration::from_millis(1500), &mut out);
    // Past on_add_users_limit (2 here): no list, whenever.
    assert_eq!(listed(&mut out), None);

    // A list longer than ON_ADD_USERS_BYTES is left out, even when it is due.
    let long = service_with_limit(1000);
    long.enter_manager(DEMO, conn(1, 9));
    let id = "x".repeat(200);
    for i in 0..100 {
        let at = t0 + Duration::from_secs(10 * i as u64);
        long.enter_client(DEMO, conn(0, i), WireForm::PomeloTcp, &format!("{id}{i}"), at, &mut out)
            .unwrap();
    }
    let (_, last) = out.deliveries.pop().unwrap();
    let body: Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(body["count"], 100);
    assert!(body.get("users").is_none(), "20 KB of ids is no onAdd list");
    assert!(last.body.len() < 400);
}

fn service_with_limit(on_add_users_limit: usize) -> PushService {
    TestApps { on_add_users_limit, ..TestApps::default() }.service(Instant::now())
}

#[test]
fn a_draining_server_refuses_pushes_from_every_edge() {
    let service = service(None, DuplicatePolicy::Replace, None);
    let mut out = Recorder::default();
    join(&service, conn(0, 1), WireForm::PomeloTcp, "alice", &mut out);
    service.begin_shutdown();
    let now = Instant::now();
    for edge in [Edge::Socket, Edge::Http] {
        assert_eq!(service.push_all(edge, DEMO, &json!(1), now, &mut out).unwrap_err().code, 503);
        let to = service.push_to(edge, DEMO, "alice", &json!(1), now, &mut out);
        assert_eq!(to.unwrap_err().code, 503);
    }
    assert!(out.broadcasts.is_empty() && out.deliveries.is_empty());
}

#[test]
fn a_reload_adds_changes_and_removes_apps_and_kicks_the_removed_ones_sessions() {
    let service = service(Some(1), DuplicatePolicy::Replace, None);
    let mut out = Recorder::default();
    let t0 = Instant::now();
    let other = service.lookup("other").unwrap();
    let joined = service.enter_client(other, conn(1, 7), WireForm::PomeloTcp, "o1", t0, &mut out);
    assert!(matches!(joined, Ok(ClientJoin::Joined(_))));
    service.enter_manager(other, conn(0, 9));
    assert_eq!(service.push_all(Edge::Http, DEMO, &json!(1), t0, &mut out), Ok(0));
    assert_eq!(service.push_all(Edge::Http, DEMO, &json!(1), t0, &mut out).unwrap_err().code, 429);

    // demo gets a new secret and no rate; other goes; third comes.
    let configs = [
        crate::config::AppConfig::new("demo", "demo-secret-2"),
        crate::config::AppConfig {
            push_rate_per_sec: Some(5),
            ..crate::config::AppConfig::new("third", "third-secret")
        },
    ];
    let change = service.reload_apps(&configs, t0, &mut out).unwrap();
    let third = service.lookup("third").unwrap();
    assert_eq!(
        (change.added, change.changed, change.removed),
        (vec![third], vec![DEMO], vec![other])
    );
    assert_eq!(out.disconnects.len(), 2, "the client and the manager of other");
    assert!(out.disconnects.iter().all(|(_, why)| &**why == REMOVED_REASON));
    let kicked: Vec<ConnId> = out.disconnects.iter().map(|(c, _)| *c).collect();
    assert!(kicked.contains(&conn(1, 7)) && kicked.contains(&conn(0, 9)), "{kicked:?}");
    assert_eq!(service.lookup("other").unwrap_err().code, 404);
    // A session that still holds other's AppId (an MQTT client between CONNECT and SUBSCRIBE,
    // a join racing the reload) finds it gone.
    let late = service.enter_client(other, conn(1, 8), WireForm::PomeloTcp, "o2", t0, &mut out);
    assert_eq!(late.unwrap_err().code, 404);
    assert_eq!(
        service.push_all(Edge::Socket, other, &json!(1), t0, &mut out).unwrap_err().code,
        404
    );
    service.retain(other, Some(&json!("kept?")));
    assert_eq!(service.retained(other), None, "nothing retained for a removed app");
    assert_eq!(service.authenticate("demo", Some("demo-secret"), t0).unwrap_err().code, 401);
    assert_eq!(service.authenticate("demo", Some("demo-secret-2"), t0), Ok(DEMO));
    assert_eq!(service.push_all(Edge::Http, DEMO, &json!(1), t0, &mut out), Ok(0), "no rate now");
    assert_eq!(service.live_apps(), vec![DEMO, third]);
    // A reload that cannot apply (an apikey twice) changes nothing.
    let twice = [configs[0].clone(), configs[0].clone()];
    assert!(service.reload_apps(&twice, t0, &mut out).is_err());
    assert_eq!(service.live_apps(), vec![DEMO, third]);
}

//! Management sessions see who is online: the enter response lists the channel, and joins and
//! leaves are pushed as `onAdd` and `onLeave`.

mod common;

use std::collections::BTreeSet;

use common::{DEMO, DEMO_SECRET, OTHER, OTHER_SECRET, management, start, test_config};
use serde_json::Value;

fn id_set(users: &Value) -> BTreeSet<String> {
    users
        .as_array()
        .unwrap_or_else(|| panic!("users is not an array: {users}"))
        .iter()
        .map(|u| u.as_str().unwrap_or_else(|| panic!("user is not a string: {u}")).to_owned())
        .collect()
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn management_sees_users_joins_and_leaves() {
    let mut config = test_config(2);
    config.client.on_add_users_limit = 100;
    let server = start(config);
    let addr = server.client_addr();

    let c1 = common::client(addr, DEMO, "c1");
    let _c2 = common::client(addr, DEMO, "c2");
    let _elsewhere = common::client(addr, OTHER, "elsewhere");

    let (mut admin, entered) = management(addr, DEMO, DEMO_SECRET);
    assert_eq!(entered["count"], 2, "{entered}");
    assert_eq!(id_set(&entered["users"]), ids(&["c1", "c2"]), "{entered}");
    let (mut other_admin, _) = management(addr, OTHER, OTHER_SECRET);

    let _c3 = common::client(addr, DEMO, "c3");
    let (route, body) = admin.next_push();
    assert_eq!(route, "onAdd", "{body}");
    assert_eq!(body["msg"], "add ok", "{body}");
    assert_eq!(body["clientId"], "c3", "{body}");
    assert_eq!(body["count"], 3, "{body}");
    assert_eq!(id_set(&body["users"]), ids(&["c1", "c2", "c3"]), "{body}");

    drop(c1);
    let (route, body) = admin.next_push();
    assert_eq!(route, "onLeave", "{body}");
    assert_eq!(body["clientId"], "c1", "{body}");
    assert_eq!(body["count"], 2, "{body}");

    // The other app's management saw none of that: its first push is its own app's join.
    let _c4 = common::client(addr, OTHER, "c4");
    let (route, body) = other_admin.next_push();
    assert_eq!(route, "onAdd", "{body}");
    assert_eq!(body["clientId"], "c4", "{body}");
    assert_eq!(body["count"], 2, "{body}");
}

#[test]
fn on_add_omits_users_once_the_channel_is_large() {
    let mut config = test_config(2);
    config.client.on_add_users_limit = 2;
    let server = start(config);
    let addr = server.client_addr();

    let (mut admin, entered) = management(addr, DEMO, DEMO_SECRET);
    assert_eq!(entered["count"], 0, "{entered}");
    assert_eq!(id_set(&entered["users"]), ids(&[]), "{entered}");

    let mut clients = Vec::new();
    for (n, id) in ["j1", "j2", "j3", "j4"].into_iter().enumerate() {
        clients.push(common::client(addr, DEMO, id));
        let (route, body) = admin.next_push();
        assert_eq!(route, "onAdd", "{body}");
        assert_eq!(body["msg"], "add ok", "{body}");
        assert_eq!(body["clientId"], id, "{body}");
        assert_eq!(body["count"], n + 1, "{body}");
        match n + 1 {
            1 => assert_eq!(id_set(&body["users"]), ids(&["j1"]), "{body}"),
            2 => {} // at the limit: either is fine
            _ => {
                assert!(body["users"].is_null(), "users sent for a channel over the limit: {body}")
            }
        }
    }
}

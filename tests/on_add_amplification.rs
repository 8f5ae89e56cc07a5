//! Strangers who join and leave cannot make every join cost each management session the whole
//! user list: with 60 clients online (long clientIds), 30 churning joins in under a second
//! bring at most two `onAdd`s that carry `users` (one per second per app), the rest carry the
//! clientId and the count only. Before, each of the 30 carried all ~60 ids.

mod common;

use std::time::Instant;

use common::tcp::PomeloClient;
use common::{DEMO, DEMO_SECRET, management, start, test_config};

#[test]
fn churning_joins_do_not_each_send_managers_the_user_list() {
    let server = start(test_config(2));
    let addr = server.client_addr();
    let id = |i: usize| format!("{}-{i}", "phone".repeat(40));
    let online: Vec<PomeloClient> = (0..60).map(|i| common::client(addr, DEMO, &id(i))).collect();
    let (mut admin, entered) = management(addr, DEMO, DEMO_SECRET);
    assert_eq!(entered["count"], 60, "{entered}");

    let started = Instant::now();
    for i in 0..30 {
        let churner = common::client(addr, DEMO, &id(1000 + i));
        drop(churner);
    }
    let elapsed = started.elapsed();
    let mut joins = 0;
    let mut listed = 0;
    let mut bytes = 0;
    while joins < 30 {
        let (route, body) = admin.next_push();
        if route != "onAdd" {
            continue;
        }
        joins += 1;
        bytes += body.to_string().len();
        if body.get("users").is_some() {
            listed += 1;
        }
    }
    let allowed = elapsed.as_secs() as usize + 2;
    assert!(listed <= allowed, "{listed} of 30 onAdds carried the list in {elapsed:?}");
    assert!(bytes < 30 * 400 + allowed * 16 * 1024, "{bytes} bytes of onAdd for 30 joins");
    drop(online);
}

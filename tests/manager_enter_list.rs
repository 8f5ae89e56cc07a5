//! A management session's enter response lists clientIds only up to half of
//! `client.max_pending_bytes`, so its own answer never makes it a slow consumer; `count` is
//! still the whole channel (the HTTP API pages through every clientId). Before, 400 clients with
//! 200-byte ids made an 81 KB answer against a 64 KiB write-queue limit.

mod common;

use common::{DEMO, DEMO_SECRET, management, start, test_config};

#[test]
fn a_manager_enters_a_channel_of_long_client_ids_and_is_not_kicked() {
    let mut config = test_config(2);
    config.client.max_package_bytes = 65_536;
    config.client.max_pending_bytes = 65_536;
    let server = start(config);
    let addr = server.client_addr();
    let online: Vec<_> = (0..400)
        .map(|i| common::client(addr, DEMO, &format!("{}-{i:03}", "x".repeat(196))))
        .collect();
    let (mut admin, entered) = management(addr, DEMO, DEMO_SECRET);
    assert_eq!(entered["count"], 400, "count is the whole channel");
    let listed = entered["users"].as_array().expect("users").len();
    assert!(listed < 400, "the list is cut to fit: {listed}");
    assert!(entered["users"].to_string().len() <= 32 * 1024, "within half of max_pending_bytes");
    // Still working: it pushes and is answered.
    let pushed = admin.push_all(DEMO, serde_json::json!("after a long enter"));
    assert_eq!(pushed["recipients"], 400, "{pushed}");
    assert_eq!(server.kicks_total("slow"), 0);
    drop(online);
}

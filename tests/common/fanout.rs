//! The fan-out check every transport passes: all clients spread over the reactors, pushes from a
//! management session, each push reaching each client exactly once and in order.

use serde_json::json;

use super::session::{Session, Wire};
use super::{DEMO, TestServer};

/// Asserts that `clients` (all entered in app `DEMO`) and `admin` spread over every reactor, then
/// pushes `pushes` messages tagged `tag` through `admin` and reads them back from every client.
pub fn assert_fanout<W: Wire, M: Wire>(
    server: &TestServer,
    admin: &mut Session<M>,
    clients: &mut [Session<W>],
    pushes: usize,
    tag: &str,
) {
    let per_reactor = server.connections_per_reactor();
    assert_eq!(per_reactor.len(), 2, "one entry per reactor: {per_reactor:?}");
    assert!(per_reactor.iter().all(|&n| n > 0), "every reactor holds connections: {per_reactor:?}");
    assert_eq!(
        per_reactor.iter().sum::<u64>(),
        clients.len() as u64 + 1,
        "clients + management: {per_reactor:?}"
    );

    for i in 0..pushes {
        let response = admin.push_all(DEMO, json!(format!("{tag}-{i}")));
        let expected = json!({"code": 200, "msg": "push is ok.", "recipients": clients.len()});
        assert_eq!(response, expected, "push {i}");
    }
    for c in clients.iter_mut() {
        for i in 0..pushes {
            let (route, body) = c.next_push();
            assert_eq!(route, "onMsg", "[{}] push {i}", c.label());
            assert_eq!(body, json!({"msg": format!("{tag}-{i}")}), "[{}] push {i}", c.label());
        }
    }
    // Every client's pushes have been read, so anything a client still has is a duplicate.
    for c in clients.iter_mut() {
        c.assert_no_pending_push();
    }
    admin.assert_no_pending_push();
}

//! A reader whose process is frozen (`kill -STOP`) while the channel is pushed to: the other
//! members get every push in order, the frozen one's queue stops at `max_pending_bytes` and it
//! is kicked "slow"; thawed (`kill -CONT`), it reads an in-order prefix of the pushes and the
//! kick. The frozen reader is this test binary run again as a child process (the ignored test
//! `frozen_reader_process`), so that a whole process is stopped, not a thread.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::stall::{index_of, push_until_kicked_slow};
use common::{Closed, DEMO, DEMO_SECRET, management, start, test_config};
use serde_json::{Value, json};

const ADDR_VAR: &str = "SHADDOCK_FROZEN_READER_ADDR";

fn signal(pid: u32, which: &str) {
    let status = Command::new("kill").args([which, &pid.to_string()]).status().expect("kill runs");
    assert!(status.success(), "kill {which} {pid}");
}

/// The child: enters as `frozen`, says `ready`, then reads until the server closes, and prints
/// what it got as one JSON line. Run only by [`a_frozen_reader_is_kicked_slow_and_nobody_else_waits`].
#[test]
#[ignore = "the frozen reader's own process, started by a_frozen_reader_is_kicked_slow_and_nobody_else_waits"]
fn frozen_reader_process() {
    let addr = std::env::var(ADDR_VAR).expect("run by the parent test").parse().unwrap();
    let mut client = common::client(addr, DEMO, "frozen");
    println!("ready");
    let drained = client.drain_to_close();
    let indexes: Vec<usize> =
        drained.pushes.iter().map(|(_, body)| index_of(&body["msg"])).collect();
    let reset = matches!(drained.closed, Closed::Reset);
    println!("{}", json!({"indexes": indexes, "kick": drained.kick, "reset": reset}));
}

#[test]
fn a_frozen_reader_is_kicked_slow_and_nobody_else_waits() {
    let mut config = test_config(2);
    config.client.max_package_bytes = 4096;
    config.client.max_pending_bytes = 16384;
    config.client.send_buffer_bytes = Some(16384);
    let server = start(config);
    let addr = server.client_addr();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "frozen_reader_process", "--nocapture", "--test-threads=1"])
        .env(ADDR_VAR, addr.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the frozen reader starts");
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "the frozen reader never entered");
        match lines.next() {
            // The harness may have written `test frozen_reader_process ... ` on the same line.
            Some(Ok(line)) if line.trim_end().ends_with("ready") => break,
            Some(Ok(_)) => {}
            other => panic!("the frozen reader ended before entering: {other:?}"),
        }
    }
    signal(pid, "-STOP");

    let mut reader = common::client(addr, DEMO, "reader");
    let (mut admin, _) = management(addr, DEMO, DEMO_SECRET);
    let sent = push_until_kicked_slow(&server, &mut admin, &mut reader);
    assert_eq!(
        server.kicks_total("slow"),
        1,
        "after {sent} pushes, the frozen reader is kicked slow"
    );
    let response = admin.push_all(DEMO, json!("done"));
    assert_eq!(response["recipients"], 1, "only the reader is left: {response}");
    assert_eq!(reader.next_push(), ("onMsg".into(), json!({"msg": "done"})));

    signal(pid, "-CONT");
    let report = lines
        .find_map(|line| line.ok().and_then(|l| serde_json::from_str::<Value>(&l).ok()))
        .expect("the thawed reader reports");
    let status = child.wait().expect("the thawed reader exits");
    assert!(status.success(), "the thawed reader's process: {status}");
    let indexes: Vec<usize> = report["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap() as usize)
        .collect();
    assert!(indexes.len() < sent, "the frozen reader cannot have been sent everything: {report}");
    assert_eq!(indexes, (0..indexes.len()).collect::<Vec<_>>(), "an in-order prefix: {report}");
    assert!(
        report["kick"] == "slow" || report["reset"] == true,
        "a kick \"slow\" after what was sent (or a reset): {report}"
    );
}

//! conn-flood against an in-process shaddock server, with small numbers: every phase runs and
//! its bookkeeping adds up. Nothing here asserts a timing.

use clap::Parser;
use common::{BOUNDS, SECRET, SMALL_PHASES, WORKERS, run_binary, server, server_with};
use conn_flood::Options;
use shaddock::Server;

mod common;

fn options(args: &[&str]) -> Options {
    Options::try_parse_from(std::iter::once("conn-flood").chain(args.iter().copied())).unwrap()
}

#[test]
fn every_phase_adds_up_with_200_connections_in_one_loop() {
    let server = server();
    let target = server.client_addr().to_string();
    let pid = std::process::id().to_string();
    let app = format!("demo={SECRET}");
    let run = ["--target", &target, "--app", &app, "-n", "200", "--transport", "mix"];
    let run = [&run[..], &["--server-pid", &pid, "--progress-ms", "50"], SMALL_PHASES, BOUNDS];
    let opts = options(&run.concat());
    let s = conn_flood::run(&opts, None).expect("the run completes");

    let connect = s.connect.as_ref().unwrap();
    assert_eq!((connect.entered, connect.failed), (200, 0), "{:?}", connect.errors);
    assert_eq!(connect.enter_latency.count, 200);

    let idle = s.idle.as_ref().unwrap();
    assert_eq!((idle.held, idle.dropped), (200, 0), "heartbeats keep everyone in");
    assert!(idle.per_conn.server_rss.is_some() && idle.per_conn.slab.is_some());

    let b = s.broadcast.as_ref().unwrap();
    assert_eq!(b.recipients, Some(200.0), "{:?}", b.refusals);
    assert_eq!((b.stayed_up, b.deliveries, b.lost, b.complete_pushes), (200, 600, 0, 3));
    assert_eq!(b.latency.count, 600);
    assert_eq!(b.last_recipient_ms.len(), 3);
    assert!(b.last_recipient_ms.iter().all(|&ms| ms > 0.0));

    let sustained = s.sustained.as_ref().unwrap();
    assert!(!sustained.steps.is_empty());
    for step in &sustained.steps {
        let o = &step.outcome;
        assert_eq!(o.recipients, 200);
        assert_eq!(o.lost, 0, "{step:?}");
        assert_eq!(o.deliveries, o.sent * o.recipients, "{step:?}");
    }

    let churn = s.churn.as_ref().unwrap();
    assert!(churn.churned > 0, "{churn:?}");
    assert_eq!(churn.lost, 0, "no push lost on a connection that stayed up: {churn:?}");
    assert!(churn.stayed_up < 200 && churn.stayed_up + churn.churned >= 200, "{churn:?}");
    assert!(churn.reconnects + churn.reconnect_failures <= churn.churned);

    let json: serde_json::Value = serde_json::from_str(&s.json_line()).unwrap();
    assert_eq!(json["broadcast"]["deliveries"], 600);
    server.shutdown().unwrap();
}

#[test]
fn worker_processes_report_over_pipes() {
    let server = server();
    let target = server.client_addr().to_string();
    let app = format!("demo={SECRET}");
    let (json, stdout) =
        run_binary(&[&["--target", &target, "--app", &app, "-n", "100"][..], WORKERS].concat());
    assert_eq!(json["procs"], 2);
    assert_eq!(json["loops"], 2);
    assert_eq!(json["connect"]["entered"], 100);
    assert_eq!(json["broadcast"]["deliveries"], 200);
    assert_eq!(json["broadcast"]["lost"], 0);
    assert!(json["idle"].is_null(), "only the phases asked for run");
    assert!(stdout.contains("entered / failed"), "a human table first");
    server.shutdown().unwrap();
}

#[test]
fn mqtt_subscribers_over_both_versions_and_qos() {
    let server = server();
    let target = server.client_addr().to_string();
    for (version, qos, publisher) in
        [("3.1.1", "0", "mqtt"), ("5", "1", "mqtt"), ("3.1.1", "1", "pomelo")]
    {
        let app = format!("demo={SECRET}");
        let mqtt = ["--proto", "mqtt", "--mqtt-version", version, "--qos", qos];
        let run = ["--mqtt-publisher", publisher, "--target", &target, "--app", &app, "-n", "100"];
        // The churn settings of SMALL_PHASES go unused: no churn phase.
        let phases = ["--phases", "connect,idle,broadcast,sustained"];
        let opts = options(&[&mqtt[..], &run, &phases, SMALL_PHASES, BOUNDS].concat());
        let what = format!("MQTT {version} QoS {qos}, {publisher} publisher");
        let s = conn_flood::run(&opts, None).unwrap_or_else(|e| panic!("{what}: {e:#}"));
        let connect = s.connect.as_ref().unwrap();
        assert_eq!((connect.entered, connect.failed), (100, 0), "{what}: {:?}", connect.errors);
        let idle = s.idle.as_ref().unwrap();
        assert_eq!((idle.held, idle.dropped), (100, 0), "{what}: PINGREQ keeps everyone in");
        let b = s.broadcast.as_ref().unwrap();
        assert!(b.refusals.is_empty(), "{what}: {:?}", b.refusals);
        let counted = if publisher == "pomelo" { Some(100.0) } else { None };
        assert_eq!(b.recipients, counted, "{what}");
        assert_eq!(
            (b.stayed_up, b.deliveries, b.lost, b.complete_pushes),
            (100, 300, 0, 3),
            "{what}"
        );
        for step in &s.sustained.as_ref().unwrap().steps {
            let o = &step.outcome;
            assert_eq!((o.recipients, o.lost), (100, 0), "{what}: {step:?}");
            assert_eq!(o.deliveries, o.sent * o.recipients, "{what}: {step:?}");
        }
    }
    server.shutdown().unwrap();
}

/// A server whose Socket.IO pings come every second, and whose timers run on whole seconds,
/// one late: a connection that did not answer would be kicked at most 4 s after entering,
/// within the idle phase.
fn socket_io_server() -> Server {
    server_with(
        r#"
        [socketio]
        ping_interval_secs = 1
        ping_timeout_secs = 1
        "#,
    )
}

/// 100 Socket.IO clients of `version` over `transport` through every phase: everyone enters,
/// stays in through the pings, and gets every push.
fn socket_io_phases(server: &Server, version: &str, transport: &str) {
    let target = server.client_addr().to_string();
    let opts = options(&[
        "--proto",
        "socketio",
        "--sio-version",
        version,
        "--sio-transport",
        transport,
        "--target",
        &target,
        "--app",
        &format!("demo={SECRET}"),
        "-n",
        "100",
        "--phases",
        "connect,idle,broadcast,sustained,churn",
        "--idle-secs",
        "4.5",
        "--pushes",
        "3",
        "--push-gap-ms",
        "0",
        "--rate-start",
        "20",
        "--rate-steps",
        "1",
        "--step-secs",
        "0.3",
        "--churn-rate",
        "50",
        "--churn-secs",
        "0.5",
        "--churn-push-rate",
        "10",
        "--settle-ms",
        "10000",
        "--max-secs",
        "60",
        "--quiet",
    ]);
    let what = format!("socket.io {version} over {transport}");
    let s = conn_flood::run(&opts, None).unwrap_or_else(|e| panic!("{what}: {e:#}"));
    assert_eq!(s.server, "shaddock");
    let connect = s.connect.as_ref().unwrap();
    assert_eq!((connect.entered, connect.failed), (100, 0), "{what}: {:?}", connect.errors);
    let idle = s.idle.as_ref().unwrap();
    assert_eq!((idle.held, idle.dropped), (100, 0), "{what}: pings answered");
    let b = s.broadcast.as_ref().unwrap();
    assert!(b.refusals.is_empty(), "{what}: {:?}", b.refusals);
    assert_eq!(b.recipients, Some(100.0), "{what}");
    assert_eq!((b.stayed_up, b.deliveries, b.lost, b.complete_pushes), (100, 300, 0, 3), "{what}");
    for step in &s.sustained.as_ref().unwrap().steps {
        let o = &step.outcome;
        assert_eq!((o.recipients, o.lost), (100, 0), "{what}: {step:?}");
        assert_eq!(o.deliveries, o.sent * o.recipients, "{what}: {step:?}");
    }
    let churn = s.churn.as_ref().unwrap();
    assert!(churn.churned > 0, "{what}: {churn:?}");
    assert_eq!((churn.reconnect_failures, churn.lost), (0, 0), "{what}: {churn:?}");
    if transport == "polling" {
        let name = if version == "0.9" { "0.9".to_string() } else { format!("EIO {version}") };
        assert_eq!(s.transport, format!("socket.io {name} polling"));
        // The sessions outlive their carriers until their heartbeat times out (2 s or more).
        let polling: u64 = server.stats().reactors.iter().map(|r| r.polling).sum();
        assert!(polling > 0, "{what}: polling sessions on the server");
    }
}

#[test]
fn socket_io_clients_of_every_generation() {
    let server = socket_io_server();
    for version in ["4", "3", "0.9"] {
        socket_io_phases(&server, version, "websocket");
    }
    server.shutdown().unwrap();
}

#[test]
fn socket_io_polling_of_every_generation() {
    let server = socket_io_server();
    for version in ["4", "3", "0.9"] {
        socket_io_phases(&server, version, "polling");
    }
    server.shutdown().unwrap();
}

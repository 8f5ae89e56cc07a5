//! What ships for monitoring, checked with Prometheus's own `promtool` (Debian's `prometheus`
//! package): the alert rules in `monitoring/alerts.yml` load (`promtool check rules`) and fire
//! as their unit tests say (`promtool test rules monitoring/alerts_test.yml`); a live `/metrics`
//! of a node of a cluster (a real redis-server) parses and lints clean (`promtool check
//! metrics`); and every shaddock metric the rules and the Grafana dashboard
//! (`monitoring/grafana-dashboard.json`) name is on that scrape.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use common::redis::RedisServer;
use common::{DEMO, start, test_config};
use shaddock::config::ClusterConfig;

fn promtool(args: &[&str], stdin: Option<&str>) -> (i32, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; .ci/run installs it)");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_alert_rules_load_and_fire_as_their_tests_say() {
    let (code, text) = promtool(&["check", "rules", "monitoring/alerts.yml"], None);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("SUCCESS: 7 rules found"), "{text}");
    let (code, text) = promtool(&["test", "rules", "monitoring/alerts_test.yml"], None);
    assert_eq!(code, 0, "{text}");
}

/// The metric names (`shaddock_*`, `process_*`) an expression text mentions.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for word in text.split(|c: char| !is_name(c)) {
        if word.starts_with("shaddock_") || word.starts_with("process_") {
            names.insert(word.to_owned());
        }
    }
    names
}

#[test]
fn a_live_scrape_lints_clean_and_has_every_metric_the_rules_and_dashboard_name() {
    let redis = RedisServer::start();
    let mut config = test_config(2);
    let mut cluster = ClusterConfig::new(redis.url());
    cluster.node_id = Some("monitored".into());
    cluster.prefix = format!("t{}-monitoring:", std::process::id());
    config.cluster = Some(cluster);
    let server = start(config);
    // A client and a push, so that every family has its series (the fan-out histogram too).
    let _client = common::client(server.client_addr(), DEMO, "watched");
    let push = format!("/api/apps/{DEMO}/push");
    let control = server.control_addr();
    let answer = common::http::post_json(control, &push, Some(common::DEMO_SECRET), r#"{"msg":1}"#);
    assert_eq!(answer.status, 200, "{}", answer.text());
    common::wait_until("the fan-out recorded", common::IO_TIMEOUT, || {
        common::metrics::Scrape::take(control).sum("shaddock_push_fanout_seconds_count", &[]) > 0.0
    });
    let scrape = common::http::get(control, "/metrics", None).text();

    // promtool reads the Prometheus text format: a parse error is exit 1, lint findings exit 3.
    // The only findings allowed are OpenMetrics's counter naming (the family `x` has the HELP,
    // its sample is `x_total`), which Prometheus itself reads as OpenMetrics.
    let (code, text) = promtool(&["check", "metrics"], Some(&scrape));
    assert!(code == 0 || code == 3, "promtool could not parse the scrape ({code}): {text}");
    for finding in text.lines().filter(|l| !l.trim().is_empty()) {
        let family = finding
            .strip_suffix(" no help text")
            .and_then(|name| name.strip_suffix("_total"))
            .unwrap_or_else(|| panic!("promtool: {finding}"));
        assert!(scrape.contains(&format!("# HELP {family} ")), "promtool: {finding}");
    }

    let on_scrape: BTreeSet<String> = scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();
    let rules = std::fs::read_to_string("monitoring/alerts.yml").unwrap();
    let dashboard = std::fs::read_to_string("monitoring/grafana-dashboard.json").unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard JSON");
    let mut exprs = String::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push_str(target["expr"].as_str().unwrap());
            exprs.push('\n');
        }
    }
    let named = metric_names(&rules).into_iter().chain(metric_names(&exprs));
    for name in named {
        assert!(on_scrape.contains(&name), "{name} is named but not on the scrape");
    }
    assert!(metric_names(&exprs).len() >= 20, "the dashboard covers the families");
}

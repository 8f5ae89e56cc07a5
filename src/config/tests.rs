//! Unit tests for `config`: defaults, the shipped `shaddock.toml`, every validation rule, and the
//! key path and line:column in parse errors.

use super::*;

/// One valid app, appended to texts that test other keys (a file needs an app).
const APP: &str = "\n[[apps]]\napikey = \"a\"\nsecret = \"12345678\"\n";

fn err(text: &str) -> ConfigError {
    Config::from_toml_str(text).unwrap_err()
}

fn msg(text: &str) -> String {
    err(text).to_string()
}

/// Asserts that `text` (with one valid app appended) is rejected, naming `key` first.
fn rejects(text: &str, key: &str) -> String {
    let e = err(&format!("{text}{APP}"));
    let message = e.to_string();
    assert!(message.starts_with(&format!("{key}: ")), "{message:?} does not name {key:?}");
    assert_eq!(e.key(), Some(key));
    message
}

fn parses(text: &str) -> Config {
    Config::from_toml_str(&format!("{text}{APP}")).unwrap()
}

#[test]
fn default_validates() {
    let config = Config::default();
    config.validate().unwrap();
    assert_eq!(config.apps[0].apikey, DEMO_APIKEY);
    assert_eq!(config, Config::default(), "the generated secret is stable per process");
    assert_eq!(config.heartbeat_timeout_secs(), 600);
    assert!((1..=MAX_REACTORS).contains(&config.reactor_count()));
    if std::env::var_os(DEMO_SECRET_ENV).is_none() {
        let secret = config.generated_demo_secret().unwrap();
        assert!(config.demo_secret_generated());
        assert_eq!(secret.len(), GENERATED_SECRET_LEN);
        assert!(secret.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}

#[test]
fn shaddock_toml_is_the_defaults_but_the_secret() {
    let mut parsed = Config::from_toml_str(Config::default_toml()).unwrap();
    assert_eq!(parsed.apps.len(), 1);
    assert_eq!(parsed.apps[0].secret, PLACEHOLDER_SECRET);
    assert!(!parsed.demo_secret_generated());
    let defaults = Config::default();
    parsed.apps[0].secret.clone_from(&defaults.apps[0].secret);
    assert_eq!(parsed, defaults);
}

#[test]
fn serialized_config_parses_back() {
    let mut config = Config { reactors: 3, ..Config::default() };
    config.client.heartbeat_timeout_secs = Some(900);
    config.apps[0].max_clients = Some(5);
    config.apps[0].push_rate_per_sec = Some(50);
    config.control.max_body_bytes = 4096;
    config.mqtt.listen = Some("0.0.0.0:1883".parse().unwrap());
    let text = toml::to_string(&config).unwrap();
    assert_eq!(Config::from_toml_str(&text).unwrap(), config);
}

#[test]
fn a_file_needs_an_app() {
    assert_eq!(msg("reactors = 2\n"), "apps: at least one app is required");
    assert_eq!(msg(""), "apps: at least one app is required");
    let mut config = Config::default();
    let app = config.apps[0].clone();
    config.apps =
        (0..=MAX_APPS).map(|i| AppConfig { apikey: format!("app{i}"), ..app.clone() }).collect();
    let e = config.validate().unwrap_err();
    assert_eq!(e.to_string(), "apps: at most 65535 apps are supported (got 65536)");
}

#[test]
fn missing_keys_take_defaults() {
    let config = parses("");
    assert_eq!(config, Config { apps: config.apps.clone(), ..Config::default() });
    assert_eq!(config.apps[0].max_clients, None);
    assert_eq!(config.apps[0].push_rate_per_sec, None);
    assert_eq!(config.control.max_body_bytes, 65_536);
    assert_eq!(parses("reactors = 3").reactor_count(), 3);
}

#[test]
fn range_rules_name_the_key() {
    let m = rejects("[client]\nheartbeat_secs = 0\n", "client.heartbeat_secs");
    assert_eq!(m, "client.heartbeat_secs: must be between 1 and 86400 (got 0)");
    rejects("[client]\nheartbeat_secs = 86401\n", "client.heartbeat_secs");
    rejects("reactors = 257\n", "reactors");
    rejects("[client]\nhandshake_timeout_secs = 0\n", "client.handshake_timeout_secs");
    rejects("[client]\nhandshake_timeout_secs = 3601\n", "client.handshake_timeout_secs");
    rejects("[client]\nmax_package_bytes = 63\n", "client.max_package_bytes");
    rejects("[client]\nmax_package_bytes = 16777216\n", "client.max_package_bytes");
    rejects("[client]\ndrain_secs = 3601\n", "client.drain_secs");
    let m = rejects("[control]\nmax_body_bytes = 63\n", "control.max_body_bytes");
    assert_eq!(m, "control.max_body_bytes: must be between 64 and 16777215 (got 63)");
    rejects("[control]\nmax_body_bytes = 16777216\n", "control.max_body_bytes");
}

#[test]
fn boundary_values_are_accepted() {
    parses(
        "reactors = 256\n[client]\nheartbeat_secs = 86400\nhandshake_timeout_secs = 1\n\
         max_package_bytes = 16777215\nmax_pending_bytes = 16777215\ndrain_secs = 0\n",
    );
    parses("[client]\nheartbeat_secs = 1\nhandshake_timeout_secs = 3600\ndrain_secs = 3600\n");
    parses("[client]\nmax_package_bytes = 64\nmax_pending_bytes = 64\n");
    parses("[control]\nmax_body_bytes = 64\n");
    let config = parses("[control]\nmax_body_bytes = 16777215\n");
    assert_eq!(config.control.max_body_bytes, 16_777_215);
}

#[test]
fn heartbeat_timeout_must_exceed_heartbeat() {
    let text = "[client]\nheartbeat_secs = 30\nheartbeat_timeout_secs = 30\n";
    let m = rejects(text, "client.heartbeat_timeout_secs");
    assert!(m.contains("greater than client.heartbeat_secs (30) (got 30)"), "{m}");
    let config = parses("[client]\nheartbeat_secs = 30\nheartbeat_timeout_secs = 31\n");
    assert_eq!(config.heartbeat_timeout_secs(), 31);
    let m =
        rejects("[client]\nheartbeat_timeout_secs = 4294967295\n", "client.heartbeat_timeout_secs");
    assert!(m.contains("between 2 and 172800"), "{m}");
}

#[test]
fn pending_must_hold_a_package() {
    let m = rejects("[client]\nmax_pending_bytes = 1000\n", "client.max_pending_bytes");
    assert!(m.contains("at least client.max_package_bytes (65536) (got 1000)"), "{m}");
}

#[test]
fn control_must_not_share_the_client_address() {
    rejects("[control]\nlisten = \"127.0.0.1:3010\"\n", "control.listen");
    rejects("[control]\nlisten = \"0.0.0.0:3010\"\n", "control.listen");
    parses("[client]\nlisten = \"127.0.0.1:0\"\n[control]\nlisten = \"127.0.0.1:0\"\n");
    parses("[client]\nlisten = \"[::1]:3010\"\n[control]\nlisten = \"127.0.0.1:3010\"\n");
}

#[test]
fn mqtt_listen_is_off_by_default_and_must_differ_from_the_other_ports() {
    assert_eq!(Config::default().mqtt.listen, None);
    assert_eq!(parses("").mqtt.listen, None);
    let config = parses("[mqtt]\nlisten = \"127.0.0.1:1883\"\n");
    assert_eq!(config.mqtt.listen, Some("127.0.0.1:1883".parse().unwrap()));
    let m = rejects("[mqtt]\nlisten = \"127.0.0.1:3010\"\n", "mqtt.listen");
    assert_eq!(m, "mqtt.listen: must not be the same address as client.listen (127.0.0.1:3010)");
    rejects("[mqtt]\nlisten = \"0.0.0.0:3010\"\n", "mqtt.listen");
    let m = rejects("[mqtt]\nlisten = \"127.0.0.1:3080\"\n", "mqtt.listen");
    assert_eq!(m, "mqtt.listen: must not be the same address as control.listen (127.0.0.1:3080)");
    rejects("[mqtt]\nlisten = \"[::]:3080\"\n", "mqtt.listen");
    // Port 0 picks a free port for each: no collision.
    parses(
        "[client]\nlisten = \"127.0.0.1:0\"\n[control]\nlisten = \"127.0.0.1:0\"\n\
         [mqtt]\nlisten = \"127.0.0.1:0\"\n",
    );
    parses("[mqtt]\nlisten = \"[::1]:3010\"\n");
    let m = rejects("[mqtt]\nlisten = \"nope\"\n", "mqtt.listen");
    assert!(m.contains("invalid socket address"), "{m}");
}

#[test]
fn log_level_must_be_a_filter() {
    rejects("[log]\nlevel = \" \"\n", "log.level");
    rejects("[log]\nlevel = \"shaddock=loud\"\n", "log.level");
    let m = rejects("[log]\nlevel = \"infoo\"\n", "log.level");
    assert!(m.contains("\"infoo\" is not a level"), "{m}");
    rejects("[log]\nlevel = \"warn,shaddock\"\n", "log.level");
    parses("[log]\nlevel = \"WARN,shaddock::push=debug,tower=off\"\n");
    let config = parses("[log]\nformat = \"json\"\nlevel = \"warn,shaddock=debug\"\n");
    assert_eq!(config.log.format, LogFormat::Json);
}

#[test]
fn app_rules_name_the_app() {
    let second = |apikey: &str, secret: &str, extra: &str| {
        let text = format!("{APP}[[apps]]\napikey = {apikey:?}\nsecret = {secret:?}\n{extra}");
        (err(&text).key().map(str::to_owned), msg(&text))
    };
    let long = "k".repeat(129);
    for (apikey, secret, extra, key) in [
        ("", "12345678", "", "apps[1].apikey"),
        (long.as_str(), "12345678", "", "apps[1].apikey"),
        ("a b", "12345678", "", "apps[1].apikey"),
        ("é", "12345678", "", "apps[1].apikey"),
        ("b", "secret7", "", "apps[1].secret"),
        ("b", "1234 5678", "", "apps[1].secret"),
        ("b", "12345678", "max_clients = 0", "apps[1].max_clients"),
        ("b", "12345678", "push_rate_per_sec = 0", "apps[1].push_rate_per_sec"),
    ] {
        let (found, m) = second(apikey, secret, extra);
        assert!(m.starts_with(&format!("{key}: ")), "{m:?} does not name {key:?}");
        assert_eq!(found.as_deref(), Some(key));
        assert!(!m.contains(secret), "a secret is never printed: {m}");
    }
    let text = format!(
        "[[apps]]\napikey = {:?}\nsecret = \"12345678\"\nmax_clients = 1\n",
        "k".repeat(128)
    );
    assert_eq!(Config::from_toml_str(&text).unwrap().apps[0].max_clients, Some(1));
    let text = "[[apps]]\napikey = \"a\"\nsecret = \"12345678\"\npush_rate_per_sec = 1\n";
    assert_eq!(Config::from_toml_str(text).unwrap().apps[0].push_rate_per_sec, Some(1));
}

#[test]
fn duplicate_apikeys_are_rejected() {
    let m = msg(&format!("{APP}{APP}"));
    assert_eq!(m, "apps[1].apikey: duplicate apikey \"a\" (also apps[0].apikey)");
}

#[test]
fn unknown_keys_are_named() {
    let m = msg("[client]\nhearbeat_secs = 3\n");
    assert!(m.starts_with("unknown key `client.hearbeat_secs`, expected one of"), "{m}");
    assert!(m.contains("`heartbeat_secs`") && m.ends_with("(line 2, column 1)"), "{m}");
    assert_eq!(err("[client]\nhearbeat_secs = 3\n").key(), Some("client.hearbeat_secs"));
    for (text, key) in [
        ("reactor = 1\n", "reactor"),
        ("[clint] # typo\n", "clint"),
        ("client.listn = \"x\"\n", "client.listn"),
        ("client = { listn = 1 }\n", "client.listn"),
        ("[ \"log\" ]\nlevels = 1\n", "log.levels"),
    ] {
        let m = msg(text);
        assert!(m.starts_with(&format!("unknown key `{key}`")), "{text:?}: {m}");
    }
    let m = msg(&format!("{APP}{APP}colour = 1\n"));
    assert!(m.starts_with("unknown key `apps[1].colour`") && m.ends_with("(line 9, column 1)"));
}

#[test]
fn wrong_types_are_named() {
    let m = msg("[client]\nheartbeat_secs = \"x\"\n");
    let want =
        "client.heartbeat_secs: invalid type: string \"x\", expected u32 (line 2, column 18)";
    assert_eq!(m, want);
    for (text, key) in [
        ("reactors = -1\n", "reactors"),
        ("pin_cores = 1\n", "pin_cores"),
        ("[client]\nheartbeat_secs = 5000000000\n", "client.heartbeat_secs"),
        ("[client]\nlisten = \"nope\"\n", "client.listen"),
        ("[client]\nduplicate = \"twice\"\n", "client.duplicate"),
        ("[log]\nformat = \"xml\"\n", "log.format"),
        (
            "[[apps]]\napikey = \"a\"\nsecret = \"12345678\"\nmax_clients = \"many\"\n",
            "apps[0].max_clients",
        ),
        (
            "[[apps]]\napikey = \"a\"\nsecret = \"12345678\"\npush_rate_per_sec = -1\n",
            "apps[0].push_rate_per_sec",
        ),
        ("[control]\nmax_body_bytes = \"64k\"\n", "control.max_body_bytes"),
    ] {
        let e = err(text);
        assert!(e.to_string().starts_with(&format!("{key}: ")), "{text:?}: {e}");
        assert_eq!(e.key(), Some(key));
    }
}

#[test]
fn missing_app_keys_are_named() {
    let m = msg("[[apps]]\napikey = \"a\"\n");
    assert_eq!(m, "apps[0].secret: set exactly one of secret, secret_env and secret_file");
}

#[test]
fn syntax_errors_give_line_and_column() {
    let e = err("reactors = 1\n[client\n");
    assert!(e.to_string().ends_with("(line 2, column 8)"), "{e}");
    assert_eq!(e.key(), None);
    assert!(msg("reactors = \n").starts_with("reactors: "));
    assert!(msg("# ü\nreactors = 1 2\n").ends_with("(line 2, column 14)"));
}

#[test]
fn read_errors_name_the_file() {
    let e = Config::load(Path::new("/nonexistent/shaddock.toml")).unwrap_err();
    assert_eq!(e.to_string(), "/nonexistent/shaddock.toml: No such file or directory");
}

#[test]
fn debug_redacts_secrets() {
    let config = Config::from_toml_str("[[apps]]\napikey = \"a\"\nsecret = \"hunter2hunter2\"\n");
    let config = config.unwrap();
    let debug = format!("{config:?} {:#?}", config.apps[0]);
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("<redacted>") && debug.contains("apikey: \"a\""), "{debug}");
    let defaults = Config::default();
    assert!(!format!("{defaults:?}").contains(&defaults.apps[0].secret));
}

#[test]
fn duplicate_policy_parses() {
    let config = parses("[client]\nduplicate = \"refuse\"\n");
    assert_eq!(config.client.duplicate, DuplicatePolicy::Refuse);
}

#[test]
fn backend_parses_every_name() {
    assert_eq!(Config::default().backend, BackendChoice::Epoll);
    assert_eq!(parses("backend = \"epoll\"\n").backend, BackendChoice::Epoll);
    assert_eq!(parses("backend = \"auto\"\n").backend, BackendChoice::Auto);
    if BackendChoice::IO_URING_BUILT {
        assert_eq!(parses("backend = \"io_uring\"\n").backend, BackendChoice::IoUring);
    } else {
        let message = rejects("backend = \"io_uring\"\n", "backend");
        assert!(message.contains("no io_uring backend"), "{message}");
    }
    let message = msg(&format!("backend = \"kqueue\"\n{APP}"));
    assert!(message.starts_with("backend: "), "{message}");
    assert!(message.contains("epoll") && message.contains("io_uring"), "{message}");
}

#[test]
fn backend_override_names_the_variable() {
    let mut config = Config::default();
    config.apply_backend_override(None).unwrap();
    config.apply_backend_override(Some(" ")).unwrap();
    assert_eq!(config.backend, BackendChoice::Epoll);
    config.apply_backend_override(Some("auto")).unwrap();
    assert_eq!(config.backend, BackendChoice::Auto);
    let e = config.apply_backend_override(Some("uring")).unwrap_err();
    assert_eq!(e.key(), Some(BACKEND_ENV));
    assert!(e.to_string().contains("\"uring\""), "{e}");
    assert_eq!(config.backend, BackendChoice::Auto, "a bad override changes nothing");
    let io_uring = config.apply_backend_override(Some("io_uring"));
    assert_eq!(io_uring.is_ok(), BackendChoice::IO_URING_BUILT);
}

#[test]
fn protos_paths_are_relative_to_the_file() {
    let text = format!(
        "[client]\nserver_protos = \"protos/server.json\"\nclient_protos = \"/etc/c.json\"\n{APP}\
         server_protos = \"a/server.json\"\n"
    );
    let dir = std::env::temp_dir().join(format!("shaddock-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("shaddock.toml");
    std::fs::write(&file, text).unwrap();
    let config = Config::load(&file).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(config.client.server_protos, Some(dir.join("protos/server.json")));
    assert_eq!(config.client.client_protos, Some(PathBuf::from("/etc/c.json")));
    assert_eq!(config.apps[0].server_protos, Some(dir.join("a/server.json")));
    assert_eq!(config.apps[0].client_protos, None);
    assert!(config.apps[0].has_own_protos());
    assert!(!parses("").apps[0].has_own_protos());
}

#[test]
fn a_cluster_needs_a_redis_url_and_takes_its_defaults() {
    let config = parses("[cluster]\nredis = \"redis://127.0.0.1:6379\"\n");
    let cluster = config.cluster.expect("[cluster] set");
    assert_eq!(cluster, ClusterConfig::new("redis://127.0.0.1:6379"));
    assert_eq!((cluster.prefix.as_str(), cluster.max_queued_pushes), ("shaddock:", 10_000));
    assert!(Config::default().cluster.is_none(), "off by default");
    assert!(msg(&format!("[cluster]\nprefix = \"x:\"\n{APP}")).contains("redis"));
    rejects("[cluster]\nredis = \"http://127.0.0.1:6379\"\n", "cluster.redis");
    rejects("[cluster]\nredis = \"redis://h\"\nnode_id = \"a b\"\n", "cluster.node_id");
    rejects("[cluster]\nredis = \"redis://h\"\nprefix = \"\"\n", "cluster.prefix");
    rejects(
        "[cluster]\nredis = \"redis://h\"\nmax_queued_pushes = 0\n",
        "cluster.max_queued_pushes",
    );
    rejects("[cluster]\nredis = \"redis://h\"\nnode_ttl_secs = 2\n", "cluster.node_ttl_secs");
    assert_eq!(cluster.node_ttl_secs, 10);
    let tls = parses("[cluster]\nredis = \"rediss://:pw@h:6380/2\"\nnode_id = \"push-1\"\n");
    assert_eq!(tls.cluster.unwrap().node_id.as_deref(), Some("push-1"));
}

#[test]
fn a_secret_may_come_from_the_environment_or_a_file_and_exactly_one_source_is_set() {
    let from_env = |var: &str| format!("[[apps]]\napikey = \"a\"\nsecret_env = \"{var}\"\n");
    // Cargo sets CARGO_PKG_NAME for every test run: "shaddock", 8 bytes without spaces
    // (CARGO_MANIFEST_DIR would depend on where the checkout is: /tmp/t2 is too short).
    let config = Config::from_toml_str(&from_env("CARGO_PKG_NAME")).unwrap();
    assert_eq!(config.apps[0].secret, env!("CARGO_PKG_NAME"));
    let missing = msg(&from_env("SHADDOCK_TEST_SURELY_UNSET_VARIABLE"));
    assert!(missing.starts_with("apps[0].secret_env: "), "{missing}");
    assert!(missing.contains("SHADDOCK_TEST_SURELY_UNSET_VARIABLE is not set"), "{missing}");

    let dir = std::env::temp_dir().join(format!("shaddock-secret-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("demo.secret"), "from-a-file-123\n").unwrap();
    let file = "[[apps]]\napikey = \"a\"\nsecret_file = \"demo.secret\"\n";
    std::fs::write(dir.join("shaddock.toml"), file).unwrap();
    let config = Config::load(&dir.join("shaddock.toml")).unwrap();
    assert_eq!(config.apps[0].secret, "from-a-file-123", "relative to the file, newline dropped");
    assert!(!format!("{config:?}").contains("from-a-file-123"), "never printed");
    std::fs::remove_file(dir.join("demo.secret")).unwrap();
    let unreadable = Config::load(&dir.join("shaddock.toml")).unwrap_err().to_string();
    assert!(unreadable.starts_with("apps[0].secret_file: cannot read "), "{unreadable}");
    assert!(unreadable.contains("demo.secret"), "{unreadable}");
    std::fs::remove_dir_all(&dir).unwrap();

    let both = "[[apps]]\napikey = \"a\"\nsecret = \"12345678\"\nsecret_env = \"HOME\"\n";
    assert!(msg(both).starts_with("apps[0].secret: set exactly one of"), "{}", msg(both));
    let none = "[[apps]]\napikey = \"a\"\n";
    assert!(msg(none).starts_with("apps[0].secret: set exactly one of"), "{}", msg(none));
}

#[test]
fn the_admin_token_is_optional_comes_from_one_place_and_is_never_printed() {
    let with = |control: &str| format!("[control]\n{control}\n{APP}");
    assert_eq!(parses("").control.admin_token, "", "off by default");
    let config = parses("[control]\nadmin_token = \"an-admin-token-0123\"\n");
    assert_eq!(config.control.admin_token, "an-admin-token-0123");
    assert!(!format!("{config:?}").contains("an-admin-token-0123"), "never printed");
    let short = msg(&with("admin_token_env = \"CARGO_PKG_NAME\""));
    assert!(short.starts_with("control.admin_token: must be at least 16"), "{short}");
    let both = msg(&with("admin_token = \"an-admin-token-0123\"\nadmin_token_env = \"HOME\""));
    assert_eq!(
        both,
        "control.admin_token: set at most one of admin_token, admin_token_env and admin_token_file"
    );
    let unset = msg(&with("admin_token_env = \"SHADDOCK_TEST_SURELY_UNSET_VARIABLE\""));
    assert!(unset.starts_with("control.admin_token_env: the environment variable"), "{unset}");
    let spaced = msg(&with("admin_token = \"an admin token 0123\""));
    assert!(spaced.starts_with("control.admin_token: "), "{spaced}");
}

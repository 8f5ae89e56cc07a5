//! The daemon's configuration: serde structs, built-in defaults, and validation that names the
//! key and the reason.
//!
//! A configuration comes from a TOML file ([`Config::load`], [`Config::from_toml_str`]) or from
//! the built-in defaults ([`Config::default`]). `shaddock.toml` at the repository root is the
//! default file, every key commented; [`Config::default_toml`] returns it and it parses to
//! `Config::default()` except for the demo app's secret.
//!
//! # Invariants
//!
//! A `Config` for which [`Config::validate`] returned `Ok` (every `Config` returned by
//! [`Config::from_toml_str`] or [`Config::load`]) satisfies:
//!
//! - `reactors <= MAX_REACTORS` (`0` means one per core, see [`Config::reactor_count`]);
//! - `backend = "io_uring"` only in a build with the io_uring backend (the `io-uring` cargo
//!   feature, Linux); `"auto"` is always accepted and falls back to epoll at start;
//! - `client.heartbeat_secs` is in `1..=86400`, and `client.heartbeat_timeout_secs`, when set, is
//!   greater than it and at most `172800` (two days);
//! - `client.handshake_timeout_secs` is in `1..=3600`, `client.drain_secs` in `0..=3600`;
//! - `client.max_package_bytes` is in `64..=16_777_215` (Pomelo's 3-byte length) and
//!   `client.max_pending_bytes >= client.max_package_bytes`;
//! - `control.listen` and `client.listen` are not the same address, and `mqtt.listen`, when
//!   set, is neither;
//! - `control.max_body_bytes` is in `64..=16_777_215`; `control.admin_token`, when set, is at
//!   least 16 printable ASCII bytes;
//! - `log.level` is a non-empty `tracing` `EnvFilter` directive;
//! - `apps` holds 1..=`MAX_APPS` apps; every `apikey` is 1..=128 printable ASCII bytes without spaces and
//!   unique across apps; every `secret` is at least 8 printable ASCII bytes without spaces; every
//!   `max_clients` and every `push_rate_per_sec` that is set is at least 1.
//!
//! # Errors
//!
//! Every [`ConfigError`] names what is wrong in its `Display`: the key path (`client.listen`,
//! `apps[1].apikey`) and the reason, with the line and column for errors found while parsing, or
//! the file for errors found while reading it. Secrets are never printed: `AppConfig`'s `Debug`
//! redacts them and no error message contains one.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The largest accepted `reactors`; `reactor_count` never resolves above it either.
pub const MAX_REACTORS: usize = 256;
/// The largest number of `[[apps]]` (an app's id is a `u16`).
pub const MAX_APPS: usize = 65_535;
/// The apikey of the built-in demo app.
pub const DEMO_APIKEY: &str = "demo";
/// The environment variable that supplies the built-in demo app's secret.
pub const DEMO_SECRET_ENV: &str = "SHADDOCK_DEMO_SECRET";
/// The demo app's secret in `shaddock.toml`; a daemon running with it should warn.
pub const PLACEHOLDER_SECRET: &str = "change-me-please";
/// The environment variable that overrides `backend` (the daemon and the test suite read it).
pub const BACKEND_ENV: &str = "SHADDOCK_BACKEND";
/// Length of the generated demo secret, in alphanumeric characters.
const GENERATED_SECRET_LEN: usize = 24;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default = "Config::without_apps")]
pub struct Config {
    /// Number of reactor threads; `0` = one per core.
    pub reactors: usize,
    /// Pin reactor `i` to core `i % cores`.
    pub pin_cores: bool,
    /// The reactors' I/O backend.
    pub backend: BackendChoice,
    /// `[client]`: the Pomelo port (TCP and WebSocket).
    pub client: ClientConfig,
    /// `[control]`: the HTTP control port.
    pub control: ControlConfig,
    /// `[mqtt]`: the MQTT frontend's limits.
    pub mqtt: MqttConfig,
    /// `[socketio]`: the Socket.IO frontend.
    pub socketio: SocketIoConfig,
    /// `[admission]`: limits on new client connections.
    pub admission: AdmissionConfig,
    /// `[cluster]`: the Redis bus that joins several processes; unset = this process alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterConfig>,
    /// `[log]`: logging.
    pub log: LogConfig,
    /// `[[apps]]`: the apps whose channels clients may join.
    pub apps: Vec<AppConfig>,
}

/// `[client]`: the Pomelo port, TCP and WebSocket on the same listener.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// Address the reactors listen on (`SO_REUSEPORT`, one listener per reactor).
    pub listen: SocketAddr,
    /// Heartbeat interval sent in the handshake, seconds; `1..=86400`.
    pub heartbeat_secs: u32,
    /// Close a client silent this long, seconds; unset = 2 × `heartbeat_secs`.
    pub heartbeat_timeout_secs: Option<u32>,
    /// Close a connection that has not finished the handshake by then, seconds; `1..=3600`.
    pub handshake_timeout_secs: u32,
    /// Largest package accepted, bytes; `64..=16_777_215`.
    pub max_package_bytes: usize,
    /// Largest write queue per connection before a kick as "slow", bytes; `>= max_package_bytes`.
    pub max_pending_bytes: usize,
    /// What a second connection with an online clientId does.
    pub duplicate: DuplicatePolicy,
    /// `onAdd` carries the full `users` list only while the channel has at most this many clients.
    pub on_add_users_limit: usize,
    /// Send the route dictionary in the handshake and use dict codes in pushes.
    pub use_dict: bool,
    /// Spread shutdown kicks over this window, seconds; `0` = all at once; `0..=3600`.
    pub drain_secs: u32,
    /// WebSocket upgrades must carry one of these `Origin`s (ASCII case-insensitive); empty = any.
    pub allowed_origins: Vec<String>,
    /// pomelo-protobuf protos for what the server sends (Pomelo's `serverProtos.json`), for
    /// every app without its own; unset = none. Relative to the configuration file's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_protos: Option<PathBuf>,
    /// pomelo-protobuf protos for what clients send (Pomelo's `clientProtos.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_protos: Option<PathBuf>,
    /// `SO_SNDBUF` of client sockets, bytes (`4096..=67_108_864`); unset = the kernel's
    /// autotuning. Bounds what a stalled client pins in kernel memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_buffer_bytes: Option<usize>,
    /// `SO_RCVBUF` of client sockets, bytes (`4096..=67_108_864`); unset = autotuning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receive_buffer_bytes: Option<usize>,
    /// Start even if another process listens on `listen` (and `mqtt.listen`) already, sharing
    /// the port through `SO_REUSEPORT` (the kernel splits new connections between them): for the
    /// processes of one cluster on one machine. Off: a second daemon on the port refuses to start.
    pub share_port: bool,
    /// `[client.tls]`: TLS on the client listeners; unset = plain only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTlsConfig>,
}

/// The reactors' I/O backend as the operator chose it (`backend`, `SHADDOCK_BACKEND`); the server
/// resolves it once at start to the backend it runs on, a
/// [`reactor::sys::Backend`](crate::reactor::sys::Backend).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum BackendChoice {
    /// epoll through `mio`: portable, readiness-based.
    #[default]
    #[serde(rename = "epoll")]
    Epoll,
    /// io_uring: multishot accept and receive over a provided buffer ring, batched sends.
    #[serde(rename = "io_uring")]
    IoUring,
    /// io_uring if the kernel allows it (probed at start), else epoll with a warning.
    #[serde(rename = "auto")]
    Auto,
}

impl BackendChoice {
    /// Whether this build has the io_uring backend (cargo feature `io-uring`, Linux).
    pub const IO_URING_BUILT: bool = cfg!(all(feature = "io-uring", target_os = "linux"));

    /// The name used in the configuration file and in `SHADDOCK_BACKEND`.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendChoice::Epoll => "epoll",
            BackendChoice::IoUring => "io_uring",
            BackendChoice::Auto => "auto",
        }
    }

    /// Parses a configuration name; the error lists the accepted ones.
    pub fn parse(name: &str) -> Result<BackendChoice, String> {
        [BackendChoice::Epoll, BackendChoice::IoUring, BackendChoice::Auto]
            .into_iter()
            .find(|b| b.as_str() == name)
            .ok_or_else(|| format!("must be \"epoll\", \"io_uring\" or \"auto\" (got {name:?})"))
    }
}

/// What happens when a clientId that is already online enters again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DuplicatePolicy {
    /// The new connection wins; the old one is kicked with reason `"replaced"`.
    #[default]
    Replace,
    /// The new connection is refused with Pomelo's `{code:500, msg:"duplicate log in"}`.
    Refuse,
}

/// `[control]`: the HTTP control port (push API, `/metrics`, management page).
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// Address the control thread listens on.
    pub listen: SocketAddr,
    /// Largest request body the push API accepts, bytes (larger is a 413); `64..=16_777_215`.
    pub max_body_bytes: usize,
    /// Wrong (or missing) secrets a source address may send in a minute before it is answered
    /// 429 on every authorized route for a minute; 0 = no limit.
    pub wrong_secrets_per_minute: u32,
    /// The bearer token of the admin API (`GET /api/apps`, and every app's routes besides the
    /// app's own secret); empty = no admin API. Or from `admin_token_env` / `admin_token_file`:
    /// at most one of the three.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub admin_token: String,
    /// An environment variable holding the admin token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token_env: Option<String>,
    /// A file holding the admin token (a trailing newline is dropped); relative to the
    /// configuration file's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token_file: Option<PathBuf>,
    /// The WebSocket URL the management page connects to (`ws://` or `wss://`), for a client
    /// port behind a TLS proxy or on a path; unset = the client port on the page's own host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_client_url: Option<String>,
    /// `[control.tls]`: HTTPS on the control port; unset = plain HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ControlTlsConfig>,
}

/// `[log]`: where `tracing` output goes and how much of it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// A `tracing` `EnvFilter` directive; `RUST_LOG` overrides it.
    pub level: String,
}

/// The log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// `[[apps]]`: one app, whose channel clients join by its `apikey`.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// The app's name on the wire; 1..=128 printable ASCII bytes without spaces; unique.
    pub apikey: String,
    /// Management secret (role "server", HTTP bearer); at least 8 bytes. Never printed. Or, in
    /// its place, `secret_env` or `secret_file`: exactly one of the three.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret: String,
    /// With it, a client must show a token this key signed for its clientId to enter
    /// (`push::identity`); at least 16 printable ASCII bytes. Never printed. Unset: any clientId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    /// The environment variable that holds the secret (read when the file is loaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// A file whose content is the secret (a trailing newline is dropped); relative to the
    /// configuration file's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// Optional limit on clients in the channel; at least 1.
    pub max_clients: Option<usize>,
    /// Optional limit on the app's pushes per second, from every edge (bursts up to one
    /// second's worth; past it the answer is 429); at least 1.
    pub push_rate_per_sec: Option<u32>,
    /// This app's own server protos; an app that sets either file has its own protos (a file
    /// it leaves unset is empty) and its clients name it in the handshake (`user.apikey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_protos: Option<PathBuf>,
    /// This app's own client protos; see `server_protos`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_protos: Option<PathBuf>,
}

impl AppConfig {
    /// An app with no limits and no protos of its own.
    pub fn new(apikey: impl Into<String>, secret: impl Into<String>) -> AppConfig {
        AppConfig {
            apikey: apikey.into(),
            secret: secret.into(),
            secret_env: None,
            secret_file: None,
            client_key: None,
            max_clients: None,
            push_rate_per_sec: None,
            server_protos: None,
            client_protos: None,
        }
    }

    /// Whether the app has protos of its own (either file set).
    pub fn has_own_protos(&self) -> bool {
        self.server_protos.is_some() || self.client_protos.is_some()
    }
}

impl fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppConfig")
            .field("apikey", &self.apikey)
            .field("secret", &"<redacted>")
            .field("client_key", &self.client_key.as_ref().map(|_| "<redacted>"))
            .field("secret_env", &self.secret_env)
            .field("secret_file", &self.secret_file)
            .field("max_clients", &self.max_clients)
            .field("push_rate_per_sec", &self.push_rate_per_sec)
            .field("server_protos", &self.server_protos)
            .field("client_protos", &self.client_protos)
            .finish()
    }
}

/// Why a configuration was rejected; `Display` names the file or the key path, and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file at `path` could not be read.
    /// (The I/O error is held as `error`, not as a `source`, so that a report that prints
    /// causes does not say the reason twice.)
    #[error("{}: {}", .path.display(), io_reason(.error))]
    Read { path: PathBuf, error: io::Error },
    /// The text is not TOML, or a value does not fit its key: a wrong type, an unknown key, a
    /// missing required key. `key` is the key path when one could be named; `line` and `column`
    /// (1-based, in characters) locate the fault; `message` starts with the key path.
    #[error("{message} (line {line}, column {column})")]
    Parse { key: Option<String>, message: String, line: usize, column: usize },
    /// A well-typed value breaks a rule: a range, uniqueness, a relation between two keys. The
    /// reason shows the offending value unless it is a secret.
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    /// The key path the error is about, if one could be named.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Read { .. } => None,
            Self::Parse { key, .. } => key.as_deref(),
            Self::Invalid { key, .. } => Some(key),
        }
    }
}

/// An I/O error's reason without the trailing " (os error N)", for messages that name the file.
pub fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

impl Default for Config {
    /// The built-in defaults (DESIGN §1): one demo app whose secret comes from
    /// `SHADDOCK_DEMO_SECRET`, else is generated once per process (see
    /// [`Config::generated_demo_secret`]).
    fn default() -> Self {
        let secret = std::env::var(DEMO_SECRET_ENV)
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| generated_secret().to_owned());
        Self { apps: vec![AppConfig::new(DEMO_APIKEY, secret)], ..Self::without_apps() }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 3010)),
            heartbeat_secs: 300,
            heartbeat_timeout_secs: None,
            handshake_timeout_secs: 10,
            max_package_bytes: 65_536,
            max_pending_bytes: 1_048_576,
            duplicate: DuplicatePolicy::Replace,
            on_add_users_limit: 100,
            use_dict: true,
            drain_secs: 10,
            allowed_origins: Vec::new(),
            server_protos: None,
            client_protos: None,
            send_buffer_bytes: None,
            receive_buffer_bytes: None,
            share_port: false,
            tls: None,
        }
    }
}

impl fmt::Debug for ControlConfig {
    /// Every field, the admin token redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = if self.admin_token.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("ControlConfig")
            .field("listen", &self.listen)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("wrong_secrets_per_minute", &self.wrong_secrets_per_minute)
            .field("admin_token", &token)
            .field("admin_token_env", &self.admin_token_env)
            .field("admin_token_file", &self.admin_token_file)
            .field("page_client_url", &self.page_client_url)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 3080)),
            max_body_bytes: 65_536,
            wrong_secrets_per_minute: 10,
            admin_token: String::new(),
            admin_token_env: None,
            admin_token_file: None,
            page_client_url: None,
            tls: None,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Human, level: "info".to_owned() }
    }
}

impl Config {
    /// The defaults a file starts from: everything but the apps, which a file must list.
    fn without_apps() -> Self {
        Self {
            reactors: 0,
            pin_cores: true,
            backend: BackendChoice::Epoll,
            client: ClientConfig::default(),
            control: ControlConfig::default(),
            mqtt: MqttConfig::default(),
            socketio: SocketIoConfig::default(),
            cluster: None,
            admission: AdmissionConfig::default(),
            log: LogConfig::default(),
            apps: Vec::new(),
        }
    }

    /// Parses and validates a configuration file's text.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| map_toml_error(text, &e))?;
        config.read_secrets()?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a configuration file; read errors name the file. Relative
    /// file paths in it (the protos, the TLS files) are taken relative to the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError::Read { path: path.to_owned(), error })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| map_toml_error(&text, &e))?;
        if let Some(dir) = path.parent() {
            config.resolve_paths(dir);
        }
        config.read_secrets()?;
        config.validate()?;
        Ok(config)
    }

    /// Fills each app's `secret` from its `secret_env` or `secret_file` (exactly one of the
    /// three), and `control.admin_token` from its `_env` or `_file` (at most one).
    fn read_secrets(&mut self) -> Result<(), ConfigError> {
        for (i, app) in self.apps.iter_mut().enumerate() {
            let prefix = format!("apps[{i}].");
            let keys = secret::SecretKeys { prefix: &prefix, name: "secret" };
            let (env, file) = (app.secret_env.as_deref(), app.secret_file.as_deref());
            secret::fill(&mut app.secret, env, file, &keys, true)?;
        }
        let control = &mut self.control;
        let keys = secret::SecretKeys { prefix: "control.", name: "admin_token" };
        let (env, file) = (control.admin_token_env.as_deref(), control.admin_token_file.as_deref());
        secret::fill(&mut control.admin_token, env, file, &keys, false)
    }

    /// Makes every relative file path in the configuration relative to `dir` instead.
    pub fn resolve_paths(&mut self, dir: &Path) {
        let resolve = |p: &mut Option<PathBuf>| {
            if let Some(path) = p.as_mut().filter(|p| p.is_relative()) {
                *path = dir.join(&*path);
            }
        };
        resolve(&mut self.client.server_protos);
        resolve(&mut self.client.client_protos);
        let resolve_path = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        if let Some(tls) = self.client.tls.as_mut() {
            resolve_path(&mut tls.cert);
            resolve_path(&mut tls.key);
        }
        resolve(&mut self.control.admin_token_file);
        if let Some(tls) = self.control.tls.as_mut() {
            resolve_path(&mut tls.cert);
            resolve_path(&mut tls.key);
            resolve(&mut tls.client_ca);
        }
        for app in &mut self.apps {
            resolve(&mut app.server_protos);
            resolve(&mut app.client_protos);
            resolve(&mut app.secret_file);
        }
    }

    /// The default configuration file, every key commented (what `shaddock config` prints).
    pub fn default_toml() -> &'static str {
        include_str!("../shaddock.toml")
    }

    /// Applies `SHADDOCK_BACKEND` (see [`Config::apply_backend_override`]).
    pub fn apply_backend_env(&mut self) -> Result<(), ConfigError> {
        self.apply_backend_override(std::env::var(BACKEND_ENV).ok().as_deref())
    }

    /// A backend named outside the file (`SHADDOCK_BACKEND`), when set and not empty, overrides
    /// `backend`, so the same file (or the test suite's configuration) runs on either backend.
    /// The result is validated like a file; errors name `SHADDOCK_BACKEND`.
    pub fn apply_backend_override(&mut self, name: Option<&str>) -> Result<(), ConfigError> {
        let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else { return Ok(()) };
        let backend = BackendChoice::parse(name).map_err(|reason| invalid(BACKEND_ENV, reason))?;
        if backend == BackendChoice::IoUring && !BackendChoice::IO_URING_BUILT {
            return Err(invalid(BACKEND_ENV, "this build has no io_uring backend".into()));
        }
        self.backend = backend;
        Ok(())
    }

    /// Number of reactors to start: `reactors`, or one per available core when it is `0`.
    pub fn reactor_count(&self) -> usize {
        match self.reactors {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_REACTORS),
            n => n,
        }
    }

    /// Seconds of client silence before a close: `client.heartbeat_timeout_secs`, else
    /// 2 × `client.heartbeat_secs`.
    pub fn heartbeat_timeout_secs(&self) -> u32 {
        self.client.heartbeat_timeout_secs.unwrap_or(self.client.heartbeat_secs.saturating_mul(2))
    }

    /// The demo app's secret if it was generated at random by [`Config::default`] (neither set
    /// in a file nor in `SHADDOCK_DEMO_SECRET`), so that the daemon can log it once at start.
    pub fn generated_demo_secret(&self) -> Option<&str> {
        let generated = GENERATED_SECRET.get()?;
        self.apps.iter().map(|app| app.secret.as_str()).find(|s| *s == generated)
    }

    /// Whether the demo app's secret was generated at random; see
    /// [`Config::generated_demo_secret`].
    pub fn demo_secret_generated(&self) -> bool {
        self.generated_demo_secret().is_some()
    }

    /// Checks every rule in the module's invariants; the error names the first key that breaks
    /// one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let c = &self.client;
        in_range("reactors", self.reactors, 0, MAX_REACTORS)?;
        ensure(
            self.backend != BackendChoice::IoUring || BackendChoice::IO_URING_BUILT,
            "backend",
            || {
                "this build has no io_uring backend (cargo feature `io-uring`, Linux only); \
             use \"epoll\" or \"auto\""
                    .into()
            },
        )?;
        in_range("client.heartbeat_secs", c.heartbeat_secs, 1, 86_400)?;
        if let Some(timeout) = c.heartbeat_timeout_secs {
            ensure(timeout > c.heartbeat_secs, "client.heartbeat_timeout_secs", || {
                let heartbeat = c.heartbeat_secs;
                format!("must be greater than client.heartbeat_secs ({heartbeat}) (got {timeout})")
            })?;
            in_range("client.heartbeat_timeout_secs", timeout, 2, 172_800)?;
        }
        in_range("client.handshake_timeout_secs", c.handshake_timeout_secs, 1, 3600)?;
        in_range("client.max_package_bytes", c.max_package_bytes, 64, 16_777_215)?;
        let (pending, package) = (c.max_pending_bytes, c.max_package_bytes);
        ensure(pending >= package, "client.max_pending_bytes", || {
            format!("must be at least client.max_package_bytes ({package}) (got {pending})")
        })?;
        in_range("client.drain_secs", c.drain_secs, 0, 3600)?;
        if let Some(tls) = &c.tls {
            tls.validate()?;
        }
        for (key, bytes) in [
            ("client.send_buffer_bytes", c.send_buffer_bytes),
            ("client.receive_buffer_bytes", c.receive_buffer_bytes),
        ] {
            if let Some(bytes) = bytes {
                in_range(key, bytes, 4096, 67_108_864)?;
            }
        }
        for (i, origin) in c.allowed_origins.iter().enumerate() {
            let ok = !origin.is_empty() && origin.bytes().all(|b| b.is_ascii_graphic());
            ensure(ok, &format!("client.allowed_origins[{i}]"), || {
                format!("must be an origin such as \"https://example.com\" (got {origin:?})")
            })?;
        }
        ensure(!same_address(self.control.listen, c.listen), "control.listen", || {
            format!("must not be the same address as client.listen ({})", c.listen)
        })?;
        in_range("control.max_body_bytes", self.control.max_body_bytes, 64, 16_777_215)?;
        let token = &self.control.admin_token;
        let token_ok =
            token.is_empty() || (token.len() >= 16 && token.bytes().all(|b| b.is_ascii_graphic()));
        ensure(token_ok, "control.admin_token", || {
            "must be at least 16 printable ASCII bytes without spaces (an HTTP bearer token)".into()
        })?;
        if let Some(url) = &self.control.page_client_url {
            let ok = (url.starts_with("ws://") || url.starts_with("wss://"))
                && url.len() <= 2048
                && url.bytes().all(|b| b.is_ascii_graphic());
            ensure(ok, "control.page_client_url", || {
                "must be a ws:// or wss:// URL without spaces, at most 2048 bytes".into()
            })?;
        }
        if let Some(mqtt) = self.mqtt.listen {
            ensure(!same_address(mqtt, c.listen), "mqtt.listen", || {
                format!("must not be the same address as client.listen ({})", c.listen)
            })?;
            let control = self.control.listen;
            ensure(!same_address(mqtt, control), "mqtt.listen", || {
                format!("must not be the same address as control.listen ({control})")
            })?;
        }
        self.mqtt.validate()?;
        self.socketio.validate()?;
        if let Some(cluster) = &self.cluster {
            cluster.validate()?;
        }
        self.admission.validate()?;
        let level = self.log.level.trim();
        ensure(!level.is_empty(), "log.level", || "must not be empty".into())?;
        tracing_subscriber::EnvFilter::builder()
            .parse(level)
            .map_err(|e| invalid("log.level", format!("invalid filter {level:?}: {e}")))?;
        if let Some(word) = misspelled_level(level) {
            return Err(invalid(
                "log.level",
                format!(
                    "{word:?} is not a level (trace, debug, info, warn, error, off); a filter for \
                     a module is written module=level"
                ),
            ));
        }
        ensure(!self.apps.is_empty(), "apps", || "at least one app is required".into())?;
        let count = self.apps.len();
        ensure(count <= MAX_APPS, "apps", || {
            format!("at most {MAX_APPS} apps are supported (got {count})")
        })?;
        let mut seen = HashMap::with_capacity(count);
        for (i, app) in self.apps.iter().enumerate() {
            app.validate(i, &mut seen)?;
        }
        Ok(())
    }
}

impl AppConfig {
    /// Checks the app at `apps[index]`; `seen` maps the apikeys of the apps before it to their
    /// index.
    fn validate<'a>(
        &'a self,
        index: usize,
        seen: &mut HashMap<&'a str, usize>,
    ) -> Result<(), ConfigError> {
        let key = |field: &str| format!("apps[{index}].{field}");
        let (apikey, len) = (&self.apikey, self.apikey.len());
        ensure((1..=128).contains(&len), &key("apikey"), || {
            format!("must be 1 to 128 bytes (got {len})")
        })?;
        if let Some(bad) = apikey.chars().find(|ch| !ch.is_ascii_graphic()) {
            let reason = format!("must be printable ASCII without spaces (found {bad:?})");
            return Err(invalid(&key("apikey"), reason));
        }
        if let Some(first) = seen.insert(apikey, index) {
            let reason = format!("duplicate apikey {apikey:?} (also apps[{first}].apikey)");
            return Err(invalid(&key("apikey"), reason));
        }
        let len = self.secret.len();
        ensure(len >= 8, &key("secret"), || format!("must be at least 8 bytes (got {len})"))?;
        if let Some(client_key) = &self.client_key {
            let ok = client_key.len() >= 16 && client_key.bytes().all(|b| b.is_ascii_graphic());
            ensure(ok, &key("client_key"), || {
                "must be at least 16 printable ASCII bytes without spaces".to_owned()
            })?;
        }
        ensure(self.secret.bytes().all(|b| b.is_ascii_graphic()), &key("secret"), || {
            "must be printable ASCII without spaces (it is an HTTP bearer token)".into()
        })?;
        ensure(self.max_clients != Some(0), &key("max_clients"), || {
            "must be at least 1 (got 0)".into()
        })?;
        ensure(self.push_rate_per_sec != Some(0), &key("push_rate_per_sec"), || {
            "must be at least 1 (got 0); leave it unset for no limit".into()
        })
    }
}

/// A directive that is a bare word but no level: `EnvFilter` reads it as a target name and logs
/// nothing else, which is never what `level = "infoo"` meant.
fn misspelled_level(filter: &str) -> Option<&str> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    filter.split(',').map(str::trim).find(|directive| {
        let bare = !directive.is_empty() && !directive.contains(['=', '[']);
        bare && !LEVELS.contains(&directive.to_ascii_lowercase().as_str())
    })
}

fn invalid(key: &str, reason: String) -> ConfigError {
    ConfigError::Invalid { key: key.to_owned(), reason }
}

/// `Ok` if `ok`, else a [`ConfigError::Invalid`] for `key` with `reason()`.
fn ensure(ok: bool, key: &str, reason: impl FnOnce() -> String) -> Result<(), ConfigError> {
    if ok { Ok(()) } else { Err(invalid(key, reason())) }
}

fn in_range<T: PartialOrd + fmt::Display>(
    key: &str,
    v: T,
    min: T,
    max: T,
) -> Result<(), ConfigError> {
    let ok = min <= v && v <= max;
    ensure(ok, key, || format!("must be between {min} and {max} (got {v})"))
}

/// Whether binding both addresses would collide: same non-zero port, and the same IP or either
/// one unspecified.
fn same_address(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// The random demo secret, generated once per process so that `Config::default()` is stable.
static GENERATED_SECRET: OnceLock<String> = OnceLock::new();

fn generated_secret() -> &'static str {
    GENERATED_SECRET.get_or_init(|| {
        const ALPHABET: &[u8; 62] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut secret = String::with_capacity(GENERATED_SECRET_LEN);
        let mut buf = [0u8; 64];
        while secret.len() < GENERATED_SECRET_LEN {
            fill_random(&mut buf);
            // Rejection sampling keeps every character equally likely: 248 = 4 × 62.
            for &b in buf.iter().filter(|&&b| b < 248) {
                if secret.len() < GENERATED_SECRET_LEN {
                    secret.push(char::from(ALPHABET[usize::from(b) % 62]));
                }
            }
        }
        secret
    })
}

fn fill_random(buf: &mut [u8]) {
    let read = File::open("/dev/urandom").and_then(|mut f| f.read_exact(buf));
    if read.is_err() {
        // Not expected on Linux. `RandomState` keys come from the OS's randomness as well.
        for chunk in buf.chunks_mut(8) {
            let word = RandomState::new().build_hasher().finish().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// Maps a toml/serde error to a [`ConfigError::Parse`] that names the key path and line:column.
fn map_toml_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let reason = e.message().trim().replace('\n', "; ");
    let offset = e.span().map_or(0, |span| span.start);
    let (line, column) = line_column(text, offset);
    let path = key_path_at(text, offset);
    let (key, message) = if let Some(rest) = reason.strip_prefix("unknown field `") {
        // The span is on the unknown key itself, on a `[header]` naming it, or on an inline table.
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let key = match path {
            Some(p) if p == field || p.ends_with(&format!(".{field}")) => p,
            Some(p) => format!("{p}.{field}"),
            None => field.to_owned(),
        };
        (Some(key.clone()), format!("unknown key `{key}`{expected}"))
    } else if let Some(rest) = reason.strip_prefix("missing field `") {
        // The span is on the table that lacks the key.
        let field = rest.split('`').next().unwrap_or(rest);
        let key = path.map_or_else(|| field.to_owned(), |p| format!("{p}.{field}"));
        (Some(key.clone()), format!("{key}: missing required key"))
    } else {
        let message = path.as_ref().map_or_else(|| reason.clone(), |p| format!("{p}: {reason}"));
        (path, message)
    };
    ConfigError::Parse { key, message, line, column }
}

/// The key path of the line holding `offset`: `client.listen` on a key line under `[client]`,
/// `apps[1]` on the second `[[apps]]` header, `None` on any other line.
///
/// A line-by-line approximation of TOML, good enough to name a key in a message: a multi-line
/// string or array can fool it, but the line:column beside it is always exact.
fn key_path_at(text: &str, offset: usize) -> Option<String> {
    let mut table = String::new();
    let mut array_lengths: HashMap<String, usize> = HashMap::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let here = offset < start + line.len();
        start += line.len();
        let code = line.split('#').next().unwrap_or_default().trim();
        if let Some(name) = code.strip_prefix("[[").and_then(|c| c.strip_suffix("]]")) {
            let name = normalize_key(name);
            let length = array_lengths.entry(name.clone()).or_insert(0);
            table = format!("{name}[{length}]");
            *length += 1;
        } else if let Some(name) = code.strip_prefix('[').and_then(|c| c.strip_suffix(']')) {
            table = normalize_key(name);
        } else if here {
            let (key, _) = code.split_once('=')?;
            let key = normalize_key(key);
            return Some(if table.is_empty() { key } else { format!("{table}.{key}") });
        }
        if here {
            return Some(table);
        }
    }
    None
}

/// `"client" . listen` → `client.listen`.
fn normalize_key(key: &str) -> String {
    let parts: Vec<&str> = key.split('.').map(|p| p.trim().trim_matches(['"', '\''])).collect();
    parts.join(".")
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (before.matches('\n').count() + 1, before[line_start..].chars().count() + 1)
}

mod admission;
mod cluster;
mod mqtt;
mod secret;
mod socketio;
#[cfg(test)]
mod tests;
mod tls;

pub use admission::AdmissionConfig;
pub use cluster::ClusterConfig;
pub use mqtt::MqttConfig;
pub use socketio::SocketIoConfig;
pub use tls::{ClientTlsConfig, ControlTlsConfig};

//! The apps' pomelo-protobuf protos (Pomelo's `useProtobuf`), loaded and checked at start.
//!
//! A *proto set* is a server file (what shaddock encodes: responses and pushes) and a client
//! file (what clients send: requests), each in Pomelo's own format, and the version Pomelo
//! derives from both. Set 0 is the global one (`client.server_protos` / `client.client_protos`,
//! possibly empty); every app with a file of its own (`apps[i].server_protos` /
//! `.client_protos`) has a set of its own, and every other app uses set 0.
//!
//! # Invariants
//! - Every set was parsed strictly ([`Protos::parse`]) and its errors name the configuration
//!   key, the file, the route and the field.
//! - The server protos of the push routes (`onMsg`, `onAdd`, `onLeave`) fit what shaddock sends
//!   on them ([`check_body`]): every field they require is one shaddock always sends, every
//!   field shaddock sends has a type that holds it. So a platform push never fails to encode;
//!   only an app's own `msg` can (refused at the push).
//! - Each set's handshake object `{"server":..,"client":..,"version":".."}` is rendered once.

use std::fmt;
use std::path::Path;

use crate::config::{Config, io_reason};
use crate::ids::AppId;
use crate::protocol::protobuf::{self, FieldType, Protos, Rule};

use super::body::{ON_ADD, ON_LEAVE, ON_MSG};

/// A proto set's index; `ProtosId::GLOBAL` is the global set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtosId(u16);

impl ProtosId {
    pub const GLOBAL: ProtosId = ProtosId(0);

    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// One server file and one client file, and what the handshake sends of them.
#[derive(Debug)]
pub struct ProtoSet {
    /// Encodes responses and pushes whose route it has.
    pub server: Protos,
    /// Decodes requests whose route it has.
    pub client: Protos,
    /// Pomelo's version of the pair: what a client caches and sends back as `protoVersion`.
    pub version: String,
    /// `{"server":<parsed>,"client":<parsed>,"version":"<version>"}`, as the handshake's
    /// `sys.protos`.
    pub handshake_json: Box<[u8]>,
}

impl ProtoSet {
    pub fn new(server: Protos, client: Protos) -> ProtoSet {
        let version = protobuf::version(&client, &server);
        let mut json = Vec::new();
        json.extend_from_slice(br#"{"server":"#);
        json.extend_from_slice(server.parsed_json().as_bytes());
        json.extend_from_slice(br#","client":"#);
        json.extend_from_slice(client.parsed_json().as_bytes());
        json.extend_from_slice(br#","version":"#);
        // A base64 string needs no escaping.
        json.push(b'"');
        json.extend_from_slice(version.as_bytes());
        json.extend_from_slice(b"\"}");
        ProtoSet { server, client, version, handshake_json: json.into_boxed_slice() }
    }

    /// Whether the set has any route: only then does the handshake say `useProto`.
    pub fn in_use(&self) -> bool {
        !self.server.is_empty() || !self.client.is_empty()
    }
}

/// Every proto set, and which one each app uses.
#[derive(Debug)]
pub struct ProtoSets {
    sets: Vec<ProtoSet>,
    /// Indexed by `AppId`.
    by_app: Vec<ProtosId>,
}

/// Why the protos could not be loaded: the configuration key, its file, and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtosError {
    pub key: String,
    pub path: String,
    pub reason: String,
}

impl fmt::Display for ProtosError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.key, self.path, self.reason)
    }
}

impl std::error::Error for ProtosError {}

impl ProtoSets {
    /// No protos anywhere: every app uses the empty global set.
    pub fn none(apps: usize) -> ProtoSets {
        ProtoSets::from_sets(vec![ProtoSet::new(Protos::default(), Protos::default())], apps)
    }

    /// One set for every app (tests).
    pub fn global(set: ProtoSet, apps: usize) -> ProtoSets {
        ProtoSets::from_sets(vec![set], apps)
    }

    /// These sets, with `app` given a set of its own (tests).
    pub fn with_app_set(mut self, app: AppId, set: ProtoSet) -> ProtoSets {
        let id = ProtosId(u16::try_from(self.sets.len()).expect("fewer sets than apps"));
        self.sets.push(set);
        self.by_app[app.index()] = id;
        self
    }

    fn from_sets(sets: Vec<ProtoSet>, apps: usize) -> ProtoSets {
        ProtoSets { sets, by_app: vec![ProtosId::GLOBAL; apps] }
    }

    /// Reads and checks every protos file the configuration names.
    pub fn load(config: &Config) -> Result<ProtoSets, ProtosError> {
        let client = &config.client;
        let global = load_set(
            ("client.server_protos", client.server_protos.as_deref()),
            ("client.client_protos", client.client_protos.as_deref()),
        )?;
        let mut sets = vec![global];
        let mut by_app = Vec::with_capacity(config.apps.len());
        for (i, app) in config.apps.iter().enumerate() {
            if !app.has_own_protos() {
                by_app.push(ProtosId::GLOBAL);
                continue;
            }
            let server_key = format!("apps[{i}].server_protos");
            let client_key = format!("apps[{i}].client_protos");
            let set = load_set(
                (&server_key, app.server_protos.as_deref()),
                (&client_key, app.client_protos.as_deref()),
            )?;
            let Ok(id) = u16::try_from(sets.len()) else {
                return Err(ProtosError {
                    key: server_key,
                    path: String::new(),
                    reason: "too many apps with protos of their own".into(),
                });
            };
            sets.push(set);
            by_app.push(ProtosId(id));
        }
        Ok(ProtoSets { sets, by_app })
    }

    /// The set `app` uses; [`AppId::NONE`] (no app named yet) uses the global set.
    pub fn id_of(&self, app: AppId) -> ProtosId {
        self.by_app.get(app.index()).copied().unwrap_or(ProtosId::GLOBAL)
    }

    pub fn of(&self, app: AppId) -> &ProtoSet {
        self.get(self.id_of(app))
    }

    pub fn get(&self, id: ProtosId) -> &ProtoSet {
        &self.sets[id.index()]
    }

    /// Every set with its id, the global one first.
    pub fn iter(&self) -> impl Iterator<Item = (ProtosId, &ProtoSet)> {
        self.sets.iter().enumerate().map(|(i, set)| (ProtosId(i as u16), set))
    }
}

fn load_set(
    server: (&str, Option<&Path>),
    client: (&str, Option<&Path>),
) -> Result<ProtoSet, ProtosError> {
    let server_protos = load_file(server)?;
    let client_protos = load_file(client)?;
    let set = ProtoSet::new(server_protos, client_protos);
    if let Err(reason) = check_push_routes(&set.server) {
        let path = server.1.map(|p| p.display().to_string()).unwrap_or_default();
        return Err(ProtosError { key: server.0.to_owned(), path, reason });
    }
    Ok(set)
}

/// One file: JSON, then Pomelo's protos format; an unset key is an empty file.
fn load_file((key, path): (&str, Option<&Path>)) -> Result<Protos, ProtosError> {
    let Some(path) = path else { return Ok(Protos::default()) };
    let error = |reason: String| ProtosError {
        key: key.to_owned(),
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read(path).map_err(|e| error(io_reason(&e)))?;
    let json: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| error(format!("not JSON: {e}")))?;
    if !json.is_object() {
        return Err(error("must be a JSON object of routes".into()));
    }
    Protos::parse(&json).map_err(|e| error(e.to_string()))
}

/// What shaddock puts in (or reads from) one field of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A string.
    String,
    /// A non-negative integer.
    Integer,
    /// A list of strings.
    Strings,
    /// A string or a number (a clientId as clients send it).
    StringOrNumber,
    /// `true`: pomelo-protobuf has no type for it.
    Bool,
    /// Anything (an app's own `msg`).
    Any,
}

impl Expect {
    fn fits(self, rule: Rule, kind: &FieldType) -> bool {
        let single = rule != Rule::Repeated;
        let numeric = matches!(
            kind,
            FieldType::UInt32
                | FieldType::SInt32
                | FieldType::Int32
                | FieldType::Float
                | FieldType::Double
        );
        match self {
            Expect::String => single && *kind == FieldType::String,
            Expect::Integer => single && numeric,
            Expect::Strings => !single && *kind == FieldType::String,
            Expect::StringOrNumber => single && (numeric || *kind == FieldType::String),
            Expect::Bool => false,
            Expect::Any => true,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Expect::String => "a string",
            Expect::Integer => "an integer",
            Expect::Strings => "a list of strings",
            Expect::StringOrNumber => "a string or a number",
            Expect::Bool => "a boolean, which pomelo-protobuf cannot encode",
            Expect::Any => "anything",
        }
    }
}

/// One field of a body shaddock sends or reads.
#[derive(Debug, Clone, Copy)]
pub struct BodyField {
    pub name: &'static str,
    pub expect: Expect,
    /// Sent in every body of the route (only such a field may be `required` in a server proto).
    pub always: bool,
}

/// Which way a body goes, for [`check_body`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// shaddock encodes it with a server proto.
    Sent,
    /// shaddock decodes it with a client proto.
    Read,
}

/// Checks that `route`'s proto in `protos` (if it has one) fits `body`: the reason names the
/// route and the field.
pub fn check_body(
    protos: &Protos,
    route: &str,
    body: &[BodyField],
    direction: Direction,
) -> Result<(), String> {
    let Some(fields) = protos.fields(route) else { return Ok(()) };
    for field in fields {
        let ours = body.iter().find(|b| *b.name == *field.name);
        if let Some(ours) = ours {
            if !ours.expect.fits(field.rule, &field.kind) {
                return Err(format!(
                    "route {route:?}, field {:?}: shaddock {} {} there",
                    field.name,
                    if direction == Direction::Sent { "sends" } else { "reads" },
                    ours.expect.describe()
                ));
            }
        }
        let always = ours.is_some_and(|b| b.always);
        if direction == Direction::Sent && field.rule == Rule::Required && !always {
            return Err(format!(
                "route {route:?}, field {:?} is required, but shaddock does not always send it \
                 (make it optional)",
                field.name
            ));
        }
    }
    Ok(())
}

/// The push routes' bodies (see [`super::body`]).
const ON_MSG_BODY: &[BodyField] = &[BodyField { name: "msg", expect: Expect::Any, always: true }];
const ON_ADD_BODY: &[BodyField] = &[
    BodyField { name: "msg", expect: Expect::String, always: true },
    BodyField { name: "clientId", expect: Expect::String, always: true },
    BodyField { name: "count", expect: Expect::Integer, always: true },
    BodyField { name: "users", expect: Expect::Strings, always: false },
];
const ON_LEAVE_BODY: &[BodyField] = &[
    BodyField { name: "clientId", expect: Expect::String, always: true },
    BodyField { name: "count", expect: Expect::Integer, always: true },
];

fn check_push_routes(server: &Protos) -> Result<(), String> {
    check_body(server, ON_MSG, ON_MSG_BODY, Direction::Sent)?;
    check_body(server, ON_ADD, ON_ADD_BODY, Direction::Sent)?;
    check_body(server, ON_LEAVE, ON_LEAVE_BODY, Direction::Sent)
}

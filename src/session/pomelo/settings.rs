//! What a Pomelo session needs from the configuration, resolved once: heartbeats, the route
//! dictionary, and every handshake response, encoded at start.
//!
//! # Invariants
//! - For each proto set ([`ProtoSets`]) four handshake responses are encoded once: with and
//!   without the dictionary, with and without the protos. A connection's handshake is a copy
//!   of one of them, chosen by the versions the client holds.
//! - The request routes' protos fit what the session reads and sends on them
//!   ([`check_protos`]), so a response of shaddock's own never fails to encode.

use bytes::{Bytes, BytesMut};

use super::route::{HANDLER_ROUTES, PUSH_ROUTES, Resolved, RouteName, resolve};
use crate::config::Config;
use crate::protocol::ProtocolError;
use crate::protocol::pomelo::RouteDict;
use crate::protocol::pomelo::handshake::{self, ProtosOffer};
use crate::protocol::protobuf::Protos;
use crate::push::protos::{BodyField, Direction, Expect, check_body};
use crate::push::{ProtoSet, ProtoSets, ProtosId};

#[derive(Debug)]
pub struct PomeloSettings {
    /// Sent in the handshake: how often a client heartbeats, seconds.
    pub heartbeat_secs: u32,
    /// A working session silent for longer is kicked, seconds.
    pub heartbeat_timeout_secs: u32,
    dict: Option<RouteDict>,
    /// Indexed by [`ProtosId`].
    handshakes: Vec<Handshakes>,
}

/// One proto set's handshake responses, `[with dictionary][with protos]`.
#[derive(Debug)]
struct Handshakes {
    /// The set's version, when it has any route (only then is `useProto` said).
    proto_version: Option<Box<str>>,
    replies: [[Bytes; 2]; 2],
}

impl PomeloSettings {
    /// The settings for `config`, whose protos are `protos`; fails if a request route's proto
    /// does not fit shaddock's bodies, or a handshake would not fit a package.
    pub fn from_config(config: &Config, protos: &ProtoSets) -> Result<PomeloSettings, String> {
        let client = &config.client;
        let dict = match client.use_dict {
            true => Some(RouteDict::new(HANDLER_ROUTES, PUSH_ROUTES).map_err(|e| e.to_string())?),
            false => None,
        };
        for (_, set) in protos.iter() {
            check_protos(set)?;
        }
        PomeloSettings::new(client.heartbeat_secs, config.heartbeat_timeout_secs(), dict, protos)
            .map_err(|e| format!("the handshake with the protos cannot be sent: {e}"))
    }

    pub fn new(
        heartbeat_secs: u32,
        heartbeat_timeout_secs: u32,
        dict: Option<RouteDict>,
        protos: &ProtoSets,
    ) -> Result<Self, ProtocolError> {
        let handshakes = protos
            .iter()
            .map(|(_, set)| Handshakes::encode(heartbeat_secs, dict.as_ref(), set))
            .collect::<Result<_, _>>()?;
        Ok(PomeloSettings { heartbeat_secs, heartbeat_timeout_secs, dict, handshakes })
    }

    /// The route dictionary, when the server uses one (pushes are encoded with it too).
    pub fn dict(&self) -> Option<&RouteDict> {
        self.dict.as_ref()
    }

    /// The handshake response for a client of proto set `protos` that holds
    /// `client_dict_version` and `client_proto_version`.
    pub fn handshake_reply(
        &self,
        protos: ProtosId,
        client_dict_version: Option<&str>,
        client_proto_version: Option<&str>,
    ) -> &Bytes {
        let handshakes = &self.handshakes[protos.index()];
        let dict_cached = match (&self.dict, client_dict_version) {
            (Some(dict), Some(v)) => v == dict.version(),
            _ => false,
        };
        let protos_cached = match (&handshakes.proto_version, client_proto_version) {
            (Some(ours), Some(theirs)) => **ours == *theirs,
            _ => false,
        };
        &handshakes.replies[usize::from(!dict_cached)][usize::from(!protos_cached)]
    }

    /// The route a client's dictionary code stands for.
    pub fn route_of_code(&self, code: u16) -> Option<&str> {
        self.dict.as_ref()?.route(code)
    }
}

impl Handshakes {
    fn encode(
        heartbeat_secs: u32,
        dict: Option<&RouteDict>,
        set: &ProtoSet,
    ) -> Result<Handshakes, ProtocolError> {
        let in_use = set.in_use();
        let encode = |include_dict: bool, include_protos: bool| {
            let offer = match (in_use, include_protos) {
                (false, _) => ProtosOffer::None,
                (true, false) => ProtosOffer::Cached,
                (true, true) => ProtosOffer::Send(&set.handshake_json),
            };
            let mut out = BytesMut::new();
            handshake::encode_response(Some(heartbeat_secs), dict, include_dict, offer, &mut out)
                .map(|()| out.freeze())
        };
        Ok(Handshakes {
            proto_version: in_use.then(|| set.version.as_str().into()),
            replies: [
                [encode(false, false)?, encode(false, true)?],
                [encode(true, false)?, encode(true, true)?],
            ],
        })
    }
}

/// Checks a proto set's request routes (any server type: `*.entryHandler.enter`, ...) against
/// the bodies the session reads ([`request`](super::request)) and sends
/// ([`response`](super::response)).
pub fn check_protos(set: &ProtoSet) -> Result<(), String> {
    let known = |protos: &Protos| {
        protos
            .routes()
            .filter_map(|route| match resolve(route) {
                Resolved::Known(name) => Some((route.to_owned(), name)),
                Resolved::Attack | Resolved::Unknown => None,
            })
            .collect::<Vec<_>>()
    };
    for (route, name) in known(&set.client) {
        check_body(&set.client, &route, request_body(name), Direction::Read)
            .map_err(|e| format!("client protos: {e}"))?;
    }
    for (route, name) in known(&set.server) {
        check_body(&set.server, &route, response_body(name), Direction::Sent)
            .map_err(|e| format!("server protos: {e}"))?;
    }
    Ok(())
}

const fn field(name: &'static str, expect: Expect, always: bool) -> BodyField {
    BodyField { name, expect, always }
}

/// What the request parser reads from each route's body.
fn request_body(name: RouteName) -> &'static [BodyField] {
    const APIKEY: [BodyField; 2] =
        [field("apikey", Expect::String, false), field("apiKey", Expect::String, false)];
    const ENTER: &[BodyField] = &[
        APIKEY[0],
        APIKEY[1],
        field("role", Expect::String, false),
        field("clientId", Expect::StringOrNumber, false),
        field("secret", Expect::String, false),
    ];
    const PUSH_ALL: &[BodyField] = &[APIKEY[0], APIKEY[1], field("msg", Expect::Any, false)];
    const PUSH_BY_CLIENT_ID: &[BodyField] = &[
        APIKEY[0],
        APIKEY[1],
        field("clientId", Expect::StringOrNumber, false),
        field("msg", Expect::Any, false),
    ];
    const KICK: &[BodyField] = &[
        APIKEY[0],
        APIKEY[1],
        field("clientId", Expect::StringOrNumber, false),
        field("reason", Expect::String, false),
    ];
    match name {
        RouteName::Enter => ENTER,
        RouteName::PushAll => PUSH_ALL,
        RouteName::PushByClientId => PUSH_BY_CLIENT_ID,
        RouteName::Kick => KICK,
    }
}

/// Every field any response of the route may carry; `code` and `msg` are in all of them.
fn response_body(name: RouteName) -> &'static [BodyField] {
    const ENTER: &[BodyField] = &[
        field("code", Expect::Integer, true),
        field("msg", Expect::String, true),
        field("users", Expect::Strings, false),
        field("count", Expect::Integer, false),
        field("error", Expect::Bool, false),
    ];
    const PUSHED: &[BodyField] = &[
        field("code", Expect::Integer, true),
        field("msg", Expect::String, true),
        field("recipients", Expect::Integer, false),
    ];
    const KICKED: &[BodyField] = &[
        field("code", Expect::Integer, true),
        field("msg", Expect::String, true),
        field("disconnected", Expect::Integer, false),
    ];
    match name {
        RouteName::Enter => ENTER,
        RouteName::PushAll | RouteName::PushByClientId => PUSHED,
        RouteName::Kick => KICKED,
    }
}

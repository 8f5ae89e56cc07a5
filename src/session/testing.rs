//! The sessions' test harness, shared by every frontend's tests: a world (settings, a push
//! service, an outlet that records, the core's session extras) and connections fed bytes with
//! `now` passed in, with no sockets.
//!
//! Built for the unit tests and, with the `fuzzing` feature, for `crate::fuzzing`, which uses
//! only part of it.
#![cfg_attr(not(test), allow(dead_code))]

use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::config::{DuplicatePolicy, SocketIoConfig};
use crate::ids::ConnId;
use crate::protocol::pomelo::RouteDict;
use crate::push::PushService;
use crate::push::outlet::Recorder;
use crate::push::testing::TestApps;
use crate::session::socketio::{SidKey, SocketIoSettings};
use crate::session::transport::handle_input;
use crate::session::{
    Context, Flow, InputRest, MqttConfig, Now, PerCore, PomeloSettings, Session, SessionSettings,
};

/// Unix seconds at a test world's time 0 (a session's `Now::unix`).
pub const UNIX_T0: u64 = 1_800_000_000;

pub const HEARTBEAT_SECS: u32 = 30;
pub const HEARTBEAT_TIMEOUT: u32 = 60;
pub const HANDSHAKE_TIMEOUT: u32 = 10;
/// The largest package or MQTT packet the world's sessions take.
pub const MAX_PACKAGE: usize = 1024;

/// The settings and push service one or more sessions share.
pub struct World {
    pub settings: SessionSettings,
    pub push: PushService,
    pub out: Recorder,
    pub per_core: PerCore,
    pub t0: Instant,
}

impl World {
    pub fn new() -> World {
        World::with(None, DuplicatePolicy::Replace, None, None)
    }

    pub fn with(
        rate: Option<u32>,
        duplicate: DuplicatePolicy,
        max_clients: Option<usize>,
        dict: Option<RouteDict>,
    ) -> World {
        let refuse_duplicates = duplicate == DuplicatePolicy::Refuse;
        World::of(TestApps { rate, refuse_duplicates, max_clients, dict, ..TestApps::default() })
    }

    /// The world of `apps` (their dictionary and protos too).
    pub fn of(apps: TestApps) -> World {
        let t0 = Instant::now();
        let push = apps.service(t0);
        let pomelo =
            PomeloSettings::new(HEARTBEAT_SECS, HEARTBEAT_TIMEOUT, apps.dict, push.protos());
        World {
            settings: SessionSettings {
                pomelo: pomelo.expect("handshakes fit"),
                mqtt: MqttConfig::default(),
                socketio: SocketIoSettings {
                    sid_key: SidKey::from_bytes([7; 16]),
                    ..SocketIoSettings::from_config(&SocketIoConfig::default())
                },
                max_package_bytes: MAX_PACKAGE,
                allowed_origins: Vec::new(),
                handshake_timeout_secs: HANDSHAKE_TIMEOUT,
            },
            push,
            out: Recorder::default(),
            per_core: PerCore::default(),
            t0,
        }
    }

    /// The instant of second `secs`.
    pub fn at(&self, secs: u32) -> Instant {
        self.t0 + Duration::from_secs(secs.into())
    }
}

/// One connection's session and what it keeps between inputs.
pub struct Conn {
    pub me: ConnId,
    pub session: Session,
    pub rest: Option<Box<InputRest>>,
}

impl Conn {
    pub fn new(index: usize) -> Conn {
        Conn { me: ConnId::new(0, index, 1), session: Session::new(0), rest: None }
    }

    /// Feeds `bytes` at second `now`; returns what the session transmitted and its flow.
    pub fn input(&mut self, world: &mut World, now: u32, bytes: &[u8]) -> (Vec<u8>, Flow) {
        let mut transmit = BytesMut::new();
        let mut cx = Context {
            now: Now { secs: now, at: world.at(now), unix: UNIX_T0 + u64::from(now) },
            me: self.me,
            settings: &world.settings,
            push: &world.push,
            outlet: &mut world.out,
            transmit: &mut transmit,
            per_core: &mut world.per_core,
        };
        let mut data = bytes.to_vec();
        let flow = handle_input(&mut self.session, &mut data, &mut self.rest, &mut cx);
        (transmit.to_vec(), flow)
    }

    /// Feeds `bytes`, which must leave the session going on; returns what it transmitted.
    pub fn feed(&mut self, world: &mut World, now: u32, bytes: &[u8]) -> Vec<u8> {
        let (sent, flow) = self.input(world, now, bytes);
        assert_eq!(flow, Flow::Continue);
        sent
    }

    /// The connection ends: its session leaves what it entered.
    pub fn leave(&mut self, world: &mut World) -> Option<crate::ids::AppId> {
        let now = world.t0;
        self.session.leave(self.me, &world.push, &mut world.out, &mut world.per_core, now)
    }
}

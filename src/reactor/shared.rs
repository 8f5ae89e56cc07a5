//! What the reactors share with each other and with the threads that hold no connection (the
//! control thread, the server): the sessions' settings, the push service, each reactor's inbox
//! and counters.
//!
//! # Invariants
//! - Fixed after start except through atomics, the push service's short locks and the inboxes'
//!   queues; reactors read it without locking on the push path.

use std::time::{Duration, Instant};

use super::admission::Admission;
use super::inbox::{Dispatch, Inboxes};
use crate::config::Config;
use crate::push::flapping::FlapPolicy;
use crate::push::parked::ParkedCaps;
use crate::push::{Apps, FrameEncoder, JoinPolicy, ProtoSets, PushService};
use crate::session::{PomeloSettings, SessionSettings, SocketIoSettings};
use crate::stats::{ReactorCounters, Snapshot};

/// What a reactor enforces per connection, resolved once.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// A write queue past this is a slow consumer, kicked.
    pub max_pending_bytes: usize,
    /// Connection slots each reactor reserves at start (set by the server from the open-file
    /// limit; 0 = grow on demand).
    pub conn_capacity: usize,
}

/// `client.tls` as the reactors run it.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// rustls's configuration, its certificates reloadable.
    pub config: std::sync::Arc<rustls::ServerConfig>,
    /// Plain connections are refused.
    pub required: bool,
    /// TLS handshakes one reactor runs at once.
    pub max_handshakes: usize,
}

#[derive(Debug)]
pub struct Shared {
    pub sessions: SessionSettings,
    /// The admission limits' counts, shared by every reactor's accepts.
    pub admission: Admission,
    pub limits: ConnLimits,
    pub push: PushService,
    pub inboxes: Inboxes,
    /// Indexed by reactor.
    pub reactors: Box<[ReactorCounters]>,
    /// TLS on the client listeners, when configured.
    pub tls: Option<ClientTls>,
}

impl Shared {
    /// What `config` makes of the settings and the push service, for `inboxes.len()` reactors
    /// that each reserve `conn_capacity` slots.
    pub fn new(config: &Config, inboxes: Inboxes, conn_capacity: usize) -> Result<Shared, String> {
        let client = &config.client;
        let protos = ProtoSets::load(config).map_err(|e| e.to_string())?;
        let pomelo = PomeloSettings::from_config(config, &protos)?;
        let encoder = FrameEncoder::new(pomelo.dict().cloned())
            .with_engine_io_1x_polling(config.socketio.engine_io_1x_polling);
        let apps = Apps::from_config(&config.apps)?;
        let policy = JoinPolicy {
            duplicate: client.duplicate,
            on_add_users_limit: client.on_add_users_limit,
            manager_list_bytes: client.max_pending_bytes / 2,
        };
        let cores = inboxes.len();
        Ok(Shared {
            admission: Admission::new(config.admission.clone(), Instant::now()),
            sessions: SessionSettings {
                pomelo,
                mqtt: config.mqtt.clone(),
                socketio: SocketIoSettings::from_config(&config.socketio),
                max_package_bytes: client.max_package_bytes,
                allowed_origins: client.allowed_origins.clone(),
                handshake_timeout_secs: client.handshake_timeout_secs,
            },
            limits: ConnLimits { max_pending_bytes: client.max_pending_bytes, conn_capacity },
            push: PushService::new(apps, protos, cores, encoder, policy, Instant::now())
                .with_flap_policy(FlapPolicy {
                    max_joins: config.admission.flap_max_joins,
                    window: Duration::from_secs(config.admission.flap_window_secs.into()),
                    ban: Duration::from_secs(config.admission.flap_ban_secs.into()),
                })
                .with_parked_caps(ParkedCaps {
                    max_sessions: config.mqtt.max_parked_sessions,
                    max_messages: config.mqtt.session_max_messages,
                    max_bytes: config.mqtt.session_max_bytes,
                }),
            inboxes,
            reactors: (0..cores).map(|_| ReactorCounters::default()).collect(),
            tls: None,
        })
    }

    /// With TLS on the client listeners.
    pub fn with_tls(self, tls: Option<ClientTls>) -> Shared {
        Shared { tls, ..self }
    }

    /// How many apps the server serves.
    pub fn apps(&self) -> usize {
        self.push.app_count()
    }

    /// The push service's outlet for a thread that holds no connection: every effect goes to
    /// the inbox of the core that holds the connection.
    /// The same, forwarding the pushes to whole channels that it accepts to the cluster bus.
    pub fn with_forward(self, forward: crate::push::forward::Forward) -> Shared {
        Shared { push: self.push.with_forward(forward), ..self }
    }

    /// Asks the reactor that holds `conn` what it is; the answer comes on the receiver (`None`:
    /// the connection is gone; the sender dropped: the reactor has stopped).
    pub fn describe(
        &self,
        conn: crate::ids::ConnId,
    ) -> tokio::sync::oneshot::Receiver<Option<super::describe::ConnDetails>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.inboxes.send(conn.core(), super::inbox::Command::Describe { conn, reply });
        answer
    }

    pub fn outlet(&self) -> Dispatch<'_> {
        Dispatch::to_inboxes(&self.inboxes)
    }

    /// Every counter, read now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::take(&self.reactors, self.push.counters())
    }
}

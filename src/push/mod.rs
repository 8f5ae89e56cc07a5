//! The push platform (DESIGN §1, §6): apps and their secrets, and the one push service that
//! every edge calls.
//!
//! - [`service`]: [`PushService`], enter, leave, push to a channel or to one client, presence;
//!   the auth, rate limits and counters in one place.
//! - [`frame`]: a [`Push`] and its [`Frame`], encoded once per wire form.
//! - [`outlet`]: the [`Outlet`] the service hands its effects on connections to.
//! - [`forward`]: pushes accepted here, queued for the cluster bus (`[cluster]`).
//! - [`identity`]: signed clientIds (an app's `client_key`).
//! - [`protos`]: the apps' pomelo-protobuf protos ([`ProtoSets`]), loaded and checked at start.
//! - [`topic`]: the MQTT topics of an app's channel and of one client.
//! - [`retained`]: each app's retained MQTT message. [`parked`]: MQTT sessions whose client is
//!   away.
//! - [`apps`], [`rate`], [`body`] (the pushes' routes and JSON bodies), [`refusal`].
//!
//! Nothing here touches a connection or reads a clock.

pub mod apps;
pub mod body;
pub mod flapping;
pub mod forward;
pub mod frame;
pub mod identity;
pub mod outlet;
pub mod parked;
pub mod protos;
pub mod rate;
pub mod refusal;
pub mod retained;
pub mod service;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod testing;
pub mod topic;
pub mod wrong_secrets;

pub use apps::{App, Apps};
pub use frame::{Frame, FrameEncoder, Push};
pub use outlet::Outlet;
pub use protos::{ProtoSet, ProtoSets, ProtosId};
pub use refusal::Refusal;
pub use service::{AppFigures, ClientJoin, JoinPolicy, Located, PushService};

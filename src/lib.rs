//! shaddock: a push gateway that speaks NetEase Pomelo's hybrid protocol.
//!
//! The crate is laid out as DESIGN §3 describes: [`protocol`] holds sans-IO codecs, [`reactor`]
//! the per-core data plane, [`push`] and [`channel`] the push platform, [`broadcast`] the
//! encode-once fan-out, [`config`] the daemon's configuration, [`control`] the HTTP control port
//! (push API, metrics, management page) and [`server`] the start and stop of a whole server.

pub mod broadcast;
pub mod channel;
pub mod config;
pub mod control;
pub mod limits;
pub mod protocol;
pub mod push;
pub mod reactor;
pub mod server;
pub mod shared;

pub use server::Server;

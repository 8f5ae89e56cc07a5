//! shaddock: a push gateway that speaks NetEase Pomelo's hybrid protocol.
//!
//! The crate is laid out in floors, each importing only from the floors below it
//! (`ARCHITECTURE.md` walks a push through them):
//!
//! 0. [`ids`] (connections, apps, wire forms), [`stats`] (counters and their snapshot),
//!    [`config`], [`limits`].
//! 1. [`protocol`]: sans-IO codecs. [`channel`]: the channel registry.
//! 2. [`push`]: the push service every edge calls, and the encode-once [`push::Frame`].
//! 3. [`session`]: sans-IO frontend sessions and the frontend contract.
//! 4. [`reactor`]: the per-core data plane that drives sessions, and what its threads share
//!    with the rest ([`reactor::shared`]: the push service, the inboxes, the counters).
//! 5. [`control`]: the HTTP control port (push API, metrics, management page). [`cluster`]:
//!    the Redis bus that joins several processes (`[cluster]`).
//! 6. [`server`]: the start and stop of a whole server.
//!
//! With the `fuzzing` feature (off by default; for `fuzz/` and `tests/fuzz_seeds.rs`),
//! `fuzzing` holds the check behind each fuzz target, on the floor of the reactor.

/// The version and the commit it was built from (`0.1.0 (3f2a…)`), as `--version` says it.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("SHADDOCK_COMMIT"), ")");

/// The commit this build comes from (`unknown` outside a git checkout).
pub const COMMIT: &str = env!("SHADDOCK_COMMIT");

pub mod channel;
pub mod cluster;
pub mod config;
pub mod control;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod ids;
pub mod limits;
pub mod protocol;
pub mod push;
pub mod reactor;
pub mod server;
pub mod session;
pub mod stats;
pub mod tls;

pub use server::Server;

//! conn-flood: the load tool of shaddock (issue 5). It opens many Pomelo connections (raw TCP,
//! WebSocket or a mix; or Redis subscribers for the baseline; or MQTT subscribers, against
//! shaddock's MQTT frontend or mosquitto; or Pomelo over Socket.IO, socket.io 0.9 to 4.x on
//! WebSocket or long-polling), spread over source addresses and,
//! past one process's file limit, over worker processes, and measures in phases: connect rate,
//! idle memory per connection, single-broadcast latency, sustained fan-out, and churn.
//!
//! # Layout
//! - [`cli`]: the options; [`coordinator`]: runs the phases; [`summary`]: the results.
//! - [`fleet`]: the event loops, in-process or in worker processes; [`report`]: what they and
//!   the coordinator say to each other.
//! - [`flood`]: one event loop; [`slot`]: one connection's socket; [`conn`]: one connection's
//!   protocol (sans-IO); [`wire`]: the client-side codecs.
//! - [`phase`], [`latency`], [`sustain`]: the bookkeeping (deliveries, losses, latency
//!   histograms, whether a rate was held); [`probe`]: memory readings; [`publisher`]: the
//!   management session that pushes; [`clock`]: the clock every process shares.
//! - [`tls`]: `--tls`, a connection's TLS session around its socket (the publisher stays plain).

pub mod cli;
pub mod clock;
pub mod conn;
pub mod coordinator;
pub mod fleet;
pub mod flood;
pub mod latency;
pub mod phase;
pub mod probe;
pub mod publisher;
pub mod report;
pub mod slot;
pub mod summary;
pub mod sustain;
pub mod tls;
pub mod wire;

pub use cli::Options;
pub use coordinator::run;
pub use summary::Summary;

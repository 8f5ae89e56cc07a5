//! The push platform: apps and their secrets, the routes a Pomelo client may call, request bodies
//! and the reply bodies shaddock sends (DESIGN §1).
//!
//! Nothing here touches a connection: the reactor parses a request with [`request::parse`],
//! authorizes and executes it against the channel registry, and encodes the reply with
//! [`reply`].

pub mod apps;
pub mod reply;
pub mod request;
pub mod route;

pub use apps::{App, AppId, Apps};

//! Push channels: one per app, named by its apikey.
//!
//! [`registry`] is shared by every thread: who is online (presence), the management sessions,
//! and how many members each core holds, so a broadcast goes only to cores with members.
//! [`members`] is per core: the local member list a reactor walks to write a broadcast.
//! [`remote`]: in a cluster, the clients the other nodes hold.

pub mod client_id;
pub mod members;
pub mod presence;
pub mod registry;
pub mod remote;
pub use remote::RemoteJoin;

pub use client_id::ClientId;
pub use members::LocalMembers;
pub use presence::PresenceKey;
pub use registry::{Channel, Channels, Join};

//! The cluster bus (DESIGN §6, `[cluster]`): joins several shaddock processes, on one machine or
//! many, through Redis pub/sub, so that a push to a channel accepted by any node reaches the
//! channel's members on every node.
//!
//! ```text
//! node A: push_all (any edge) --> A's members, at once
//!                             \-> forward queue --> bus thread --PUBLISH {prefix}push:{apikey}-->
//! Redis --> bus thread of B, C --> push_all_from_cluster --> their members (each encodes once)
//! ```
//!
//! # Invariants
//! - **One thread, named `cluster`,** with a tokio current-thread runtime and redis-rs; nothing
//!   here runs on a reactor, and a reactor never waits for it: it hands pushes over through
//!   the push service's bounded [`forward`](crate::push::forward) queue, and receives them
//!   through its inbox like any broadcast.
//! - **Exactly once per member**: the node that accepted a push delivers it to its own members
//!   and publishes it once; every node skips its own messages on the way back.
//! - **In order per publisher**: one queue, one publishing connection, pipelines in queue order;
//!   Redis delivers a connection's messages in order.
//! - **Redis down never stops local delivery**: what cannot be published is counted
//!   (`shaddock_cluster_not_forwarded_total`) and dropped; the thread reconnects with backoff
//!   (100 ms doubling to 5 s) and resubscribes; the state is logged once each way.
//!
//! - **Presence is mirrored, never waited for**: every node keeps the other nodes' clients in
//!   its channel registry (from their join and leave events and, at each connect, their sets in
//!   Redis: `presence.rs`), so counts, lists, duplicates and personal pushes are answered from
//!   memory.
//!
//! # Where it stands (issue 10)
//! Done: pushes to channels (a node follows only the apps it has members of), presence across
//! nodes (counts, lists, onAdd/onLeave, duplicates, a dead node dropped after `node_ttl_secs`),
//! pushes to one client on any node; the C100K run is `tools/conn-flood/c100k.sh`.

mod bus;
mod presence;
pub mod wire;

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::config::{ClusterConfig, Config};
use crate::push::forward::Forwarded;
use crate::reactor::shared::Shared;

/// What the bus needs from `[cluster]`, resolved once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    pub redis: String,
    /// This node's id: `cluster.node_id`, or the hostname and the client port.
    pub node_id: String,
    pub prefix: String,
    /// `cluster.node_ttl_secs`: how long a silent node stays in presence.
    pub node_ttl: std::time::Duration,
}

impl ClusterSettings {
    /// The settings of `cluster`, this node being the one whose client port is `client_port`.
    pub fn from_config(cluster: &ClusterConfig, client_port: u16) -> ClusterSettings {
        let node_id = cluster.node_id.clone().unwrap_or_else(|| default_node_id(client_port));
        ClusterSettings {
            redis: cluster.redis.clone(),
            node_id,
            prefix: cluster.prefix.clone(),
            node_ttl: std::time::Duration::from_secs(cluster.node_ttl_secs.into()),
        }
    }
}

/// The hostname (without whitespace or control characters) and the client port.
fn default_node_id(client_port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host.chars().filter(char::is_ascii_graphic).collect();
    let host = if host.is_empty() { "localhost".to_owned() } else { host };
    format!("{host}:{client_port}")
}

/// Checks `config.cluster.redis` as redis-rs reads it (what `shaddock check` and a start
/// report), naming the key.
pub fn check(config: &Config) -> Result<(), String> {
    match &config.cluster {
        None => Ok(()),
        Some(cluster) => client(&cluster.redis).map(drop),
    }
}

fn client(redis: &str) -> Result<redis::Client, String> {
    redis::Client::open(redis).map_err(|e| format!("cluster.redis: {e}"))
}

/// The running bus thread.
#[derive(Debug)]
pub struct ClusterHandle {
    node_id: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

/// Starts the `cluster` thread: it connects (and reconnects) to Redis on its own, so a start
/// never waits for Redis and never fails because Redis is down.
pub fn start(
    settings: ClusterSettings,
    shared: Arc<Shared>,
    queue: mpsc::Receiver<Forwarded>,
) -> io::Result<ClusterHandle> {
    let client = client(&settings.redis).map_err(io::Error::other)?;
    let (stop, stopped) = oneshot::channel();
    let node_id = settings.node_id.clone();
    let thread = std::thread::Builder::new().name("cluster".into()).spawn(move || {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()?;
        runtime.block_on(bus::run(settings, client, shared, queue, stopped));
        Ok(())
    })?;
    tracing::info!(node = %node_id, "cluster bus starting");
    Ok(ClusterHandle { node_id, stop: Some(stop), thread: Some(thread) })
}

impl ClusterHandle {
    /// This node's id on the bus.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Stops the thread (what is still queued is not published) and joins it.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop.take().map(|stop| stop.send(()));
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(io::Error::other("the cluster thread panicked")),
        }
    }
}

impl Drop for ClusterHandle {
    fn drop(&mut self) {
        self.stop.take().map(|stop| stop.send(()));
    }
}

//! Presence across nodes, the Redis half: each node keeps its own clients of each app in a set
//! (`{prefix}online:{node}:{apikey}`), says it is alive with a key that expires
//! (`{prefix}alive:{node}`, refreshed every third of `cluster.node_ttl_secs`), and announces
//! joins and leaves on `{prefix}presence`. A node that connects (or reconnects) rewrites its sets
//! from its own presence, says `sync`, and reads the other live nodes' sets; a node whose alive
//! key is gone (it died, or lost Redis for longer than the TTL) is dropped from every channel,
//! and its keys are removed.
//!
//! The in-memory mirror this fills is the channel registry's remote presence: counts, lists
//! and personal pushes read it without waiting for Redis.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

use super::{ClusterSettings, wire};
use crate::ids::AppId;
use crate::reactor::shared::Shared;

/// Clients written to Redis in one SADD at most.
const CHUNK: usize = 1000;

/// The apps configured now (a reload's spare slots and removed apps have no presence).
fn apps(shared: &Shared) -> impl Iterator<Item = AppId> {
    shared.push.live_apps().into_iter()
}

/// Says this node is alive for `ttl`; `false` if its key had expired (the others dropped this
/// node meanwhile, so it must announce itself again).
pub(super) async fn refresh(
    conn: &mut MultiplexedConnection,
    settings: &ClusterSettings,
    ttl: Duration,
) -> redis::RedisResult<bool> {
    let alive = wire::alive_key(&settings.prefix, &settings.node_id);
    let millis = ttl.as_millis().min(u128::from(u64::MAX)) as u64;
    let before: Option<String> = redis::cmd("SET")
        .arg(alive)
        .arg(1)
        .arg("PX")
        .arg(millis)
        .arg("GET")
        .query_async(conn)
        .await?;
    Ok(before.is_some())
}

/// Rewrites this node's presence in Redis from its own, and says so (`sync`).
pub(super) async fn announce(
    conn: &mut MultiplexedConnection,
    settings: &ClusterSettings,
    shared: &Shared,
    ttl: Duration,
) -> redis::RedisResult<()> {
    let (prefix, node) = (&settings.prefix, &settings.node_id);
    refresh(conn, settings, ttl).await?;
    conn.sadd::<_, _, ()>(wire::nodes_key(prefix), node).await?;
    for app in apps(shared) {
        let key = wire::online_key(prefix, node, shared.push.apikey(app));
        let ids: Vec<String> =
            shared.push.local_clients(app).iter().map(|id| id.as_str().to_owned()).collect();
        let mut pipe = redis::pipe();
        pipe.del(&key).ignore();
        for chunk in ids.chunks(CHUNK) {
            pipe.sadd(&key, chunk).ignore();
        }
        pipe.query_async::<()>(conn).await?;
    }
    let sync = serde_json::to_string(&wire::PresenceEvent::Sync { node: node.clone() })
        .expect("an event serializes");
    conn.publish::<_, _, ()>(wire::presence_channel(prefix), sync).await
}

/// Reads every other live node's presence into the mirror, and drops the nodes that are not
/// alive (from the mirror and from Redis).
pub(super) async fn load_others(
    conn: &mut MultiplexedConnection,
    settings: &ClusterSettings,
    shared: &Shared,
) -> redis::RedisResult<()> {
    let nodes: Vec<String> = conn.smembers(wire::nodes_key(&settings.prefix)).await?;
    for node in nodes.into_iter().filter(|n| *n != settings.node_id) {
        let alive: bool = conn.exists(wire::alive_key(&settings.prefix, &node)).await?;
        if alive {
            load_node(conn, settings, shared, &Arc::from(node)).await?;
        } else {
            forget(conn, settings, shared, &node).await?;
        }
    }
    // Nodes this one heard of that wrote nothing (any more): gone too.
    check_nodes(conn, settings, shared).await
}

/// Reads `node`'s sets into the mirror (after its `sync`, or at this node's connect).
pub(super) async fn load_node(
    conn: &mut MultiplexedConnection,
    settings: &ClusterSettings,
    shared: &Shared,
    node: &Arc<str>,
) -> redis::RedisResult<()> {
    for app in apps(shared) {
        let key = wire::online_key(&settings.prefix, node, shared.push.apikey(app));
        let ids: Vec<String> = conn.smembers(key).await?;
        shared.push.cluster_replace_node(app, node, &ids, &mut shared.outlet());
    }
    Ok(())
}

/// Drops every node in the mirror whose alive key is gone.
pub(super) async fn check_nodes(
    conn: &mut MultiplexedConnection,
    settings: &ClusterSettings,
    shared: &Shared,
) -> redis::RedisResult<()> {
    for node in shared.push.cluster_nodes() {
        let alive: bool = conn.exists(wire::alive_key(&settings.prefix, &node)).await?;
        if !alive {
            forget(conn, settings, shared, &node).await?;
        }
    }
    Ok(())
}

/// `node` is gone: its clients leave every channel here, and its keys go.
async fn forget(
    conn: &mut MultiplexedConnection,
    settings: &ClusterSettings,
    shared: &Shared,
    node: &str,
) -> redis::RedisResult<()> {
    let gone = shared.push.cluster_node_gone(node, &mut shared.outlet());
    tracing::warn!(
        node,
        clients = gone,
        "cluster: a node is gone (its alive key expired); its clients left"
    );
    let mut pipe = redis::pipe();
    for app in apps(shared) {
        pipe.del(wire::online_key(&settings.prefix, node, shared.push.apikey(app))).ignore();
    }
    pipe.srem(wire::nodes_key(&settings.prefix), node).ignore();
    pipe.query_async::<()>(conn).await
}

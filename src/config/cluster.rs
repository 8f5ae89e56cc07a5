//! `[cluster]`: several shaddock processes (on one machine or many) joined by a Redis bus, so
//! that a push accepted by any of them reaches the channel's members on all of them, and each
//! knows who is online on the others. Off when the section is absent: a single process needs no
//! Redis.

use serde::{Deserialize, Serialize};

use super::{ConfigError, ensure, in_range};

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The Redis server: `redis://[user:password@]host[:port][/db]`, `rediss://…` for TLS, or
    /// `redis+unix:///path/to/socket`, as the redis crate reads it.
    pub redis: String,
    /// This node's name on the bus, unique in the cluster: 1..=128 printable ASCII bytes without
    /// spaces; unset = the hostname and the client port (`host:3010`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// What every Redis key and channel of this cluster starts with, so that several clusters
    /// (or other programs) can share one Redis: 1..=64 printable ASCII bytes without spaces.
    #[serde(default = "ClusterConfig::default_prefix")]
    pub prefix: String,
    /// Pushes waiting for the bus at most; past that (Redis slow or down) a push is delivered
    /// here only and counted as not forwarded. `1..=1_000_000`.
    #[serde(default = "ClusterConfig::default_queue")]
    pub max_queued_pushes: usize,
    /// A node silent this long (dead, or cut off from Redis) drops out of every other node's
    /// presence, seconds; `3..=3600`. A live node refreshes its key every third of it.
    #[serde(default = "ClusterConfig::default_node_ttl")]
    pub node_ttl_secs: u32,
}

impl ClusterConfig {
    fn default_prefix() -> String {
        "shaddock:".to_owned()
    }

    fn default_queue() -> usize {
        10_000
    }

    fn default_node_ttl() -> u32 {
        10
    }

    /// A cluster on `redis` with the defaults.
    pub fn new(redis: impl Into<String>) -> ClusterConfig {
        ClusterConfig {
            redis: redis.into(),
            node_id: None,
            prefix: ClusterConfig::default_prefix(),
            max_queued_pushes: ClusterConfig::default_queue(),
            node_ttl_secs: ClusterConfig::default_node_ttl(),
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let redis = &self.redis;
        let scheme = ["redis://", "rediss://", "redis+unix://", "unix://"];
        ensure(scheme.iter().any(|s| redis.starts_with(s)), "cluster.redis", || {
            "must be a redis://, rediss:// or redis+unix:// URL".to_owned()
        })?;
        if let Some(id) = &self.node_id {
            ensure(printable(id, 128), "cluster.node_id", || {
                format!("must be 1 to 128 printable ASCII bytes without spaces (got {id:?})")
            })?;
        }
        let prefix = &self.prefix;
        ensure(printable(prefix, 64), "cluster.prefix", || {
            format!("must be 1 to 64 printable ASCII bytes without spaces (got {prefix:?})")
        })?;
        in_range("cluster.max_queued_pushes", self.max_queued_pushes, 1, 1_000_000)?;
        in_range("cluster.node_ttl_secs", self.node_ttl_secs, 3, 3600)
    }
}

fn printable(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic())
}

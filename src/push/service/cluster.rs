//! The push service's side of the cluster bus: what the `cluster` thread calls when another
//! node says something. Each call is the remote twin of a local one (a join, a leave, a push
//! to one client), with the same notifications to this node's management sessions, and never
//! forwards anything back to the bus (except the leave of a local client that a newer join on
//! another node replaced).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use super::PushService;
use crate::channel::ClientId;
use crate::config::DuplicatePolicy;
use crate::ids::{AppId, Edge};
use crate::push::body::{self, ON_ADD, ON_LEAVE, ON_MSG};
use crate::push::forward::Forwarded;
use crate::push::outlet::Outlet;
use crate::push::topic;
use crate::stats::KickReason;

impl PushService {
    /// `client_id` entered `app`'s channel on `node`. A local holder of the clientId is
    /// replaced (kicked `replaced`; with `duplicate = "refuse"` the newcomer's node refused it
    /// unless both joined at once, and both stay). Managers here hear `onAdd`.
    pub fn cluster_joined(
        &self,
        app: AppId,
        client_id: &str,
        node: &Arc<str>,
        outlet: &mut dyn Outlet,
    ) {
        let channel = self.channels.get(app);
        if let Some(holder) = channel.find(client_id) {
            if self.policy.duplicate == DuplicatePolicy::Replace
                && channel.evict(client_id, holder).is_some()
            {
                self.forward(|| Forwarded::Left { app, client_id: client_id.into() });
                outlet.kick(holder, KickReason::Replaced);
            }
        }
        let (count, join) = channel.remote_join(client_id, node);
        // The same join heard twice (its event, and the node's presence read at its `sync`)
        // is told once.
        if join != crate::channel::RemoteJoin::Again {
            self.notify_managers(app, ON_ADD, &body::on_add(client_id, count, None), outlet);
        }
    }

    /// `client_id` left `app`'s channel on `node`; managers here hear `onLeave` if `node` was
    /// its holder.
    pub fn cluster_left(&self, app: AppId, client_id: &str, node: &str, outlet: &mut dyn Outlet) {
        if let Some(count) = self.channels.get(app).remote_leave(client_id, node) {
            self.notify_managers(app, ON_LEAVE, &body::on_leave(client_id, count), outlet);
        }
    }

    /// `node` holds exactly `ids` of `app` (read from Redis: it synced, or this node just
    /// connected): joins and leaves are told to managers as if they had just happened.
    pub fn cluster_replace_node(
        &self,
        app: AppId,
        node: &Arc<str>,
        ids: &[String],
        outlet: &mut dyn Outlet,
    ) {
        let channel = self.channels.get(app);
        let before: HashSet<Box<str>> = channel.remote_drop_node(node).into_iter().collect();
        for id in ids {
            channel.remote_join(id, node);
        }
        let count = channel.count();
        let now: HashSet<&str> = ids.iter().map(String::as_str).collect();
        for gone in before.iter().filter(|id| !now.contains(&***id)) {
            self.notify_managers(app, ON_LEAVE, &body::on_leave(gone, count), outlet);
        }
        for new in now.iter().filter(|id| !before.contains(**id)) {
            self.notify_managers(app, ON_ADD, &body::on_add(new, count, None), outlet);
        }
    }

    /// `node` is gone (its alive key expired): its clients leave every channel here.
    pub fn cluster_node_gone(&self, node: &str, outlet: &mut dyn Outlet) -> usize {
        let mut gone = 0;
        for app in (0..self.app_count()).map(|i| AppId(i as u16)) {
            let channel = self.channels.get(app);
            let ids = channel.remote_drop_node(node);
            let count = channel.count();
            for id in &ids {
                self.notify_managers(app, ON_LEAVE, &body::on_leave(id, count), outlet);
            }
            gone += ids.len();
        }
        gone
    }

    /// The other nodes that hold clients of any app, as this node last heard.
    pub fn cluster_nodes(&self) -> Vec<Arc<str>> {
        let mut nodes: Vec<Arc<str>> = (0..self.app_count())
            .flat_map(|i| self.channels.get(AppId(i as u16)).remote_nodes())
            .collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// Whether pushes to `app`'s channel concern this node: it has members of it, or away MQTT
    /// sessions that keep its pushes (so the bus subscribes to the app's channel).
    pub fn wants_pushes(&self, app: AppId, now: Instant) -> bool {
        let channel = self.channels.get(app);
        channel.cores_with_members().next().is_some() || self.parked.count(app, now) > 0
    }

    /// The clientIds of `app` online on this node (what it writes to Redis when it connects).
    pub fn local_clients(&self, app: AppId) -> Vec<ClientId> {
        self.channels.get(app).local_ids()
    }

    /// A disconnect of `client_id` of `app` that another node's admin API asked of this one:
    /// `false` if the client is not online here (any more).
    pub fn disconnect_from_cluster(
        &self,
        app: AppId,
        client_id: &str,
        text: Box<str>,
        outlet: &mut dyn Outlet,
    ) -> bool {
        let Some(target) = self.channels.get(app).find(client_id) else { return false };
        outlet.disconnect(target, text);
        true
    }

    /// A push to `client_id` of `app` that another node accepted for this one (its checks and
    /// rate token taken there): `false` if the client is not online here (any more).
    pub fn push_to_from_cluster(
        &self,
        app: AppId,
        client_id: &str,
        msg: &Value,
        outlet: &mut dyn Outlet,
    ) -> bool {
        let Some(target) = self.channels.get(app).find(client_id) else { return false };
        let push = match self.compose(app, ON_MSG, &body::on_msg(msg)) {
            Ok(push) => {
                push.with_mqtt(topic::client(self.apikey(app), client_id), super::mqtt_payload(msg))
            }
            Err(_) => return false,
        };
        outlet.deliver(target, push);
        self.counters.pushed(Edge::Cluster);
        true
    }

    /// For the bus: [`PushService::push_all_from_cluster`] at `now`.
    pub fn cluster_push_all(&self, app: AppId, msg: &Value, outlet: &mut dyn Outlet) -> bool {
        self.push_all_from_cluster(app, msg, Instant::now(), outlet).is_ok()
    }
}

//! What the admin API asks of the push service: an app's figures, where a client is, and
//! disconnecting one (on whichever node holds it).

use super::PushService;
use crate::ids::{AppId, ConnId};
use crate::push::forward::Forwarded;
use crate::push::refusal::quoted;
use crate::push::{Outlet, Refusal};

/// Where a client is online ([`PushService::locate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    Here(ConnId),
    /// Another node of the cluster, by its id.
    Node(std::sync::Arc<str>),
    Nowhere,
}

/// One app's figures, read at once ([`PushService::app_figures`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppFigures {
    /// Online clients, cluster-wide (this node's while the bus is down or without a cluster).
    pub clients: usize,
    /// Online clients on this node.
    pub local_clients: usize,
    /// Management sessions on this node.
    pub managers: usize,
    /// Pushes this node sent to the app's channel or to one of its clients.
    pub pushes: u64,
    /// The app's clients kicked on this node, for any reason.
    pub kicks: u64,
}

impl PushService {
    /// A client of `app` was kicked (by the reactor holding it, for any reason).
    pub fn client_kicked(&self, app: AppId) {
        if let Some(counters) = self.app_counters.get(app.index()) {
            counters.kicked();
        }
    }

    /// What `app` looks like now: its clients (this node's and, in a cluster, the others'),
    /// management sessions, pushes sent and clients kicked on this node.
    pub fn app_figures(&self, app: AppId) -> AppFigures {
        let channel = self.channels.get(app);
        let counters = &self.app_counters[app.index()];
        AppFigures {
            clients: channel.count(),
            local_clients: channel.local_count(),
            managers: channel.manager_count(),
            pushes: counters.pushes(),
            kicks: counters.kicks(),
        }
    }

    /// Where the client `client_id` of `app` is online: on this node (its connection), on
    /// another node of the cluster, or nowhere.
    pub fn locate(&self, app: AppId, client_id: &str) -> Located {
        let channel = self.channels.get(app);
        match channel.find(client_id) {
            Some(conn) => Located::Here(conn),
            None => channel.remote_holder(client_id).map_or(Located::Nowhere, Located::Node),
        }
    }

    /// Disconnects the client `client_id` of `app`, on whichever node holds it, with the kick's
    /// `text` (Pomelo's kick reason, the MQTT 5.0 DISCONNECT's reason string): 404 if it is not
    /// online, 503 if another node holds it and the bus is down.
    pub fn disconnect(
        &self,
        app: AppId,
        client_id: &str,
        text: &str,
        outlet: &mut dyn Outlet,
    ) -> Result<usize, Refusal> {
        let channel = self.channels.get(app);
        if let Some(target) = channel.find(client_id) {
            outlet.disconnect(target, text.into());
            return Ok(1);
        }
        let Some(node) = channel.remote_holder(client_id) else {
            return Err(Refusal::new(404, "no such client")
                .with_detail(format!("{} is not online", quoted(client_id))));
        };
        if !self.bus_up() {
            return Err(Refusal::new(503, "the cluster bus is down")
                .with_detail(format!("{} is online on node {node}", quoted(client_id))));
        }
        let (client_id, text) = (client_id.into(), text.into());
        match self.forward(|| Forwarded::Disconnect { app, node, client_id, text }) {
            true => Ok(1),
            false => Err(Refusal::new(503, "the cluster bus's queue is full: try again")),
        }
    }
}

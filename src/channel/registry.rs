//! The channel registry: per app, who is online and where.
//!
//! # Invariants
//! - `presence` maps each online clientId to the one connection that holds it; a connection
//!   removes its entry on leave only if the entry still names it (a replaced connection leaves
//!   the newer one in place).
//! - `members_per_core[c]` counts core `c`'s local member list of this channel, maintained by
//!   that core only; other threads read it to decide which cores a broadcast goes to.
//! - `members_per_form[f]` counts the members whose connection has wire form `f`, so that a
//!   broadcast is encoded only in the forms some member uses.
//! - `remote` (a cluster only) maps the clientIds online on other nodes to their node; counts
//!   and lists of who is online cover both. When both locks are taken, `presence` first.
//! - Locks are held only for a join, a leave or a lookup, never on the broadcast path.

use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::client_id::ClientId;
use super::presence::{Presence, PresenceKey};
use super::remote::RemotePresence;
use crate::config::DuplicatePolicy;
use crate::ids::{AppId, ConnId, Forms, WireForm};
use crate::protocol::pomelo::json_str_len;

/// The outcome of a client joining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Join {
    /// Joined; `count` clients are online now. `replaced` was online with the same clientId.
    /// The joining connection keeps `key` to leave.
    Joined { count: usize, replaced: Option<ConnId>, key: PresenceKey },
    /// The clientId is online and the policy is `refuse`.
    Duplicate,
    /// The app's `max_clients` is reached.
    Full,
}

#[derive(Debug)]
pub struct Channel {
    presence: Mutex<Presence>,
    remote: Mutex<RemotePresence>,
    managers: Mutex<Vec<ConnId>>,
    members_per_core: Box<[AtomicU32]>,
    members_per_form: [AtomicU32; WireForm::COUNT],
}

impl Channel {
    fn new(cores: usize) -> Channel {
        Channel {
            presence: Mutex::new(Presence::default()),
            remote: Mutex::new(RemotePresence::default()),
            managers: Mutex::new(Vec::new()),
            members_per_core: (0..cores).map(|_| AtomicU32::new(0)).collect(),
            members_per_form: Default::default(),
        }
    }

    fn presence(&self) -> MutexGuard<'_, Presence> {
        // A panic elsewhere must not take presence down with it: the table is always consistent.
        self.presence.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn remote(&self) -> MutexGuard<'_, RemotePresence> {
        self.remote.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn managers(&self) -> MutexGuard<'_, Vec<ConnId>> {
        self.managers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn join(
        &self,
        client_id: &str,
        conn: ConnId,
        policy: DuplicatePolicy,
        max_clients: Option<usize>,
    ) -> Join {
        let mut presence = self.presence();
        let remote = self.remote();
        let online = presence.get(client_id).is_some() || remote.get(client_id).is_some();
        if online && policy == DuplicatePolicy::Refuse {
            return Join::Duplicate;
        }
        if presence.get(client_id).is_none() && max_clients.is_some_and(|max| presence.len() >= max)
        {
            return Join::Full;
        }
        let (key, replaced) = presence.insert(client_id, conn);
        Join::Joined { count: presence.len() + remote.len(), replaced, key }
    }

    /// Removes the clientId `conn` holds under `key`, if it still holds it; returns the id and
    /// the count left, or `None` if another connection holds the clientId now.
    pub fn leave(&self, key: PresenceKey, conn: ConnId) -> Option<(ClientId, usize)> {
        let mut presence = self.presence();
        let client_id = presence.remove(key, conn)?;
        Some((client_id, presence.len() + self.remote().len()))
    }

    /// Takes `client_id` from `conn`, its holder (taken over before the newcomer enters); the
    /// count left, or `None` if `conn` does not hold it.
    pub fn evict(&self, client_id: &str, conn: ConnId) -> Option<usize> {
        let mut presence = self.presence();
        let key = presence.key(client_id);
        presence.remove(key, conn)?;
        Some(presence.len() + self.remote().len())
    }

    /// The clientId `conn` holds under `key`, if it still holds one.
    pub fn client_id_of(&self, key: PresenceKey, conn: ConnId) -> Option<ClientId> {
        self.presence().id_of(key, conn).cloned()
    }

    pub fn find(&self, client_id: &str) -> Option<ConnId> {
        self.presence().get(client_id)
    }

    /// Clients online, on this node and (in a cluster) on the others.
    pub fn count(&self) -> usize {
        let presence = self.presence();
        presence.len() + self.remote().len()
    }

    /// Clients online on the other nodes.
    pub fn remote_count(&self) -> usize {
        self.remote().len()
    }

    /// Clients online on this node.
    pub fn local_count(&self) -> usize {
        self.presence().len()
    }

    /// The clientIds online on this node.
    pub fn local_ids(&self) -> Vec<ClientId> {
        self.presence().ids().cloned().collect()
    }

    /// The connections of this node's online clients.
    pub fn local_conns(&self) -> Vec<ConnId> {
        self.presence().holders().collect()
    }

    /// The node that holds `client_id`, if another node does.
    pub fn remote_holder(&self, client_id: &str) -> Option<std::sync::Arc<str>> {
        self.remote().get(client_id).cloned()
    }

    /// `node` holds `client_id` now (a join there); the count online after it.
    pub fn remote_join(
        &self,
        client_id: &str,
        node: &std::sync::Arc<str>,
    ) -> (usize, super::remote::RemoteJoin) {
        let presence = self.presence();
        let mut remote = self.remote();
        let join = remote.join(client_id, node);
        (presence.len() + remote.len(), join)
    }

    /// `node` no longer holds `client_id`: the count left, or `None` if the entry was not
    /// `node`'s.
    pub fn remote_leave(&self, client_id: &str, node: &str) -> Option<usize> {
        let presence = self.presence();
        let mut remote = self.remote();
        remote.leave(client_id, node).then(|| presence.len() + remote.len())
    }

    /// Forgets `node`'s clients; the ids it held.
    pub fn remote_drop_node(&self, node: &str) -> Vec<Box<str>> {
        self.remote().drop_node(node)
    }

    /// The other nodes that hold clients here.
    pub fn remote_nodes(&self) -> Vec<std::sync::Arc<str>> {
        let mut nodes: Vec<_> = self.remote().nodes().cloned().collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// Up to `limit` online clientIds (unordered) and the total count.
    pub fn users(&self, limit: usize) -> (Vec<ClientId>, usize) {
        self.users_within(limit, usize::MAX)
    }

    /// At most `limit` online clientIds whose JSON list (escapes, quotes and commas included)
    /// stays within `max_bytes`, and the total count.
    pub fn users_within(&self, limit: usize, max_bytes: usize) -> (Vec<ClientId>, usize) {
        let presence = self.presence();
        let remote = self.remote();
        let mut bytes = 2;
        let users = presence
            .ids()
            .map(ClientId::as_str)
            .chain(remote.ids())
            .take(limit)
            .take_while(|id| {
                bytes += json_str_len(id) + 1;
                bytes <= max_bytes
            })
            .map(ClientId::new)
            .collect();
        (users, presence.len() + remote.len())
    }

    /// A page of online clientIds in sorted order: the `limit` smallest ids after `cursor` (all
    /// ids when `cursor` is `None`), and the total count. Costs one pass over the channel under
    /// the presence lock, keeping only the page (a bounded heap), never a copy of every id.
    pub fn users_after(&self, cursor: Option<&str>, limit: usize) -> (Vec<ClientId>, usize) {
        let presence = self.presence();
        let remote = self.remote();
        let total = presence.len() + remote.len();
        let mut page: BinaryHeap<&str> = BinaryHeap::with_capacity(limit.min(total));
        let ids = presence.ids().map(ClientId::as_str).chain(remote.ids());
        for id in ids.filter(|id| cursor.is_none_or(|c| *id > c)) {
            if page.len() < limit {
                page.push(id);
            } else if let Some(mut largest) = page.peek_mut() {
                if id < *largest {
                    *largest = id;
                }
            }
        }
        (page.into_sorted_vec().into_iter().map(ClientId::new).collect(), total)
    }

    /// The member `from` (form `from_form`) goes on as `to` (form `to_form`, the same core):
    /// the clientId it holds under `key`, if it still holds it, is `to`'s now, and the form
    /// counts follow. Nobody left or joined.
    pub fn rehome(
        &self,
        key: PresenceKey,
        (from, from_form): (ConnId, WireForm),
        (to, to_form): (ConnId, WireForm),
    ) -> bool {
        debug_assert_eq!(from.core(), to.core());
        let held = self.presence().rehome(key, from, to);
        self.members_per_form[to_form.index()].fetch_add(1, Ordering::Relaxed);
        self.members_per_form[from_form.index()].fetch_sub(1, Ordering::Relaxed);
        held
    }

    /// The management session `from` goes on as `to`.
    pub fn rehome_manager(&self, from: ConnId, to: ConnId) {
        self.managers().iter_mut().filter(|m| **m == from).for_each(|m| *m = to);
    }

    pub fn add_manager(&self, conn: ConnId) {
        self.managers().push(conn);
    }

    pub fn remove_manager(&self, conn: ConnId) {
        self.managers().retain(|&m| m != conn);
    }

    /// Management sessions of the app on this node.
    pub fn manager_count(&self) -> usize {
        self.managers().len()
    }

    /// Whether the app has a management session (only then is an `onAdd` worth building).
    pub fn has_managers(&self) -> bool {
        !self.managers().is_empty()
    }

    /// A copy of the management sessions (a handful), taken so no lock is held while sending.
    pub fn managers_snapshot(&self) -> Vec<ConnId> {
        self.managers().clone()
    }

    /// A member of wire form `form` joined core `core`'s member list.
    pub fn member_added(&self, core: usize, form: WireForm) {
        self.members_per_core[core].fetch_add(1, Ordering::Relaxed);
        self.members_per_form[form.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn member_removed(&self, core: usize, form: WireForm) {
        self.members_per_core[core].fetch_sub(1, Ordering::Relaxed);
        self.members_per_form[form.index()].fetch_sub(1, Ordering::Relaxed);
    }

    /// The wire forms some member uses right now.
    pub fn forms_in_use(&self) -> Forms {
        WireForm::ALL
            .into_iter()
            .filter(|f| self.members_per_form[f.index()].load(Ordering::Relaxed) > 0)
            .fold(Forms::NONE, Forms::with)
    }

    /// The cores holding members and how many each holds right now.
    pub fn cores_with_members(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.members_per_core
            .iter()
            .enumerate()
            .map(|(core, n)| (core, n.load(Ordering::Relaxed) as usize))
            .filter(|&(_, n)| n > 0)
    }
}

/// Every app's channel, indexed by `AppId`.
#[derive(Debug)]
pub struct Channels {
    by_app: Vec<Channel>,
}

impl Channels {
    pub fn new(apps: usize, cores: usize) -> Channels {
        Channels { by_app: (0..apps).map(|_| Channel::new(cores)).collect() }
    }

    pub fn get(&self, app: AppId) -> &Channel {
        &self.by_app[app.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(index: usize) -> ConnId {
        ConnId::new(0, index, 1)
    }

    fn joined(join: Join) -> (usize, Option<ConnId>, PresenceKey) {
        match join {
            Join::Joined { count, replaced, key } => (count, replaced, key),
            other => panic!("expected a join, got {other:?}"),
        }
    }

    #[test]
    fn replace_keeps_the_newer_holder_on_leave() {
        let ch = Channel::new(2);
        let (count, replaced, key) = joined(ch.join("c1", conn(1), DuplicatePolicy::Replace, None));
        assert_eq!((count, replaced), (1, None));
        let (count, replaced, key2) =
            joined(ch.join("c1", conn(2), DuplicatePolicy::Replace, None));
        assert_eq!((count, replaced, key2), (1, Some(conn(1)), key));
        assert_eq!(ch.leave(key, conn(1)), None);
        assert_eq!(ch.find("c1"), Some(conn(2)));
        let (id, left) = ch.leave(key, conn(2)).expect("the holder leaves");
        assert_eq!((id.as_str(), left), ("c1", 0));
        assert_eq!(ch.find("c1"), None);
    }

    #[test]
    fn refuse_and_full() {
        let ch = Channel::new(1);
        joined(ch.join("a", conn(1), DuplicatePolicy::Refuse, Some(1)));
        assert_eq!(ch.join("a", conn(2), DuplicatePolicy::Refuse, Some(1)), Join::Duplicate);
        assert_eq!(ch.join("b", conn(3), DuplicatePolicy::Refuse, Some(1)), Join::Full);
        // Replacing an online id is not a new client: a full channel still takes it.
        let (count, replaced, _) = joined(ch.join("a", conn(4), DuplicatePolicy::Replace, Some(1)));
        assert_eq!((count, replaced), (1, Some(conn(1))));
        assert_eq!(ch.count(), 1);
    }

    #[test]
    fn users_within_counts_the_json_bytes_escapes_included() {
        let ch = Channel::new(1);
        let quotes = "\"".repeat(100);
        for i in 0..10 {
            ch.join(&format!("{quotes}{i}"), conn(i), DuplicatePolicy::Replace, None);
        }
        let max = 1000;
        let (users, count) = ch.users_within(usize::MAX, max);
        let json: Vec<&str> = users.iter().map(ClientId::as_str).collect();
        let len = serde_json::to_string(&json).unwrap().len();
        assert_eq!(count, 10);
        assert!(len <= max, "{len} bytes of JSON for a {max}-byte budget");
        assert_eq!(users.len(), 4, "each id is 203 bytes escaped, 204 with its comma");
    }

    #[test]
    fn users_after_pages_in_sorted_order() {
        let ch = Channel::new(1);
        for (i, id) in ["d", "b", "e", "a", "c"].into_iter().enumerate() {
            ch.join(id, conn(i), DuplicatePolicy::Replace, None);
        }
        let page = |cursor, limit| {
            let (ids, total) = ch.users_after(cursor, limit);
            (ids.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(""), total)
        };
        assert_eq!(page(None, 2), ("ab".into(), 5));
        assert_eq!(page(Some("b"), 2), ("cd".into(), 5));
        assert_eq!(page(Some("d"), 2), ("e".into(), 5));
        assert_eq!(page(Some("e"), 2), ("".into(), 5));
        assert_eq!(page(Some("bb"), 10), ("cde".into(), 5));
        assert_eq!(page(None, 0), ("".into(), 5));
    }

    #[test]
    fn cores_with_members_skips_empty_cores() {
        let ch = Channel::new(3);
        ch.member_added(2, WireForm::PomeloTcp);
        ch.member_added(2, WireForm::PomeloTcp);
        ch.member_added(0, WireForm::PomeloWebSocket);
        ch.member_removed(0, WireForm::PomeloWebSocket);
        assert_eq!(ch.cores_with_members().collect::<Vec<_>>(), [(2, 2)]);
        assert_eq!(ch.forms_in_use(), Forms::one(WireForm::PomeloTcp));
    }
}

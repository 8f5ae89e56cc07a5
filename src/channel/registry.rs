//! The channel registry: per app, who is online and where.
//!
//! # Invariants
//! - `presence` maps each online clientId to the one connection that holds it; a connection
//!   removes its entry on leave only if the entry still names it (a replaced connection leaves
//!   the newer one in place).
//! - `members_per_core[c]` counts core `c`'s local member list of this channel, maintained by
//!   that core only; other threads read it to decide which cores a broadcast goes to.
//! - Locks are held only for a join, a leave or a lookup, never on the broadcast path.

use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::DuplicatePolicy;
use crate::reactor::ConnId;

/// The outcome of a client joining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Join {
    /// Joined; `count` clients are online now. `replaced` was online with the same clientId.
    Joined { count: usize, replaced: Option<ConnId> },
    /// The clientId is online and the policy is `refuse`.
    Duplicate,
    /// The app's `max_clients` is reached.
    Full,
}

#[derive(Debug)]
pub struct Channel {
    presence: Mutex<HashMap<Arc<str>, ConnId>>,
    managers: Mutex<Vec<ConnId>>,
    members_per_core: Box<[AtomicU32]>,
}

impl Channel {
    fn new(cores: usize) -> Channel {
        Channel {
            presence: Mutex::new(HashMap::new()),
            managers: Mutex::new(Vec::new()),
            members_per_core: (0..cores).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    fn presence(&self) -> MutexGuard<'_, HashMap<Arc<str>, ConnId>> {
        // A panic elsewhere must not take presence down with it: the map is always consistent.
        self.presence.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn managers(&self) -> MutexGuard<'_, Vec<ConnId>> {
        self.managers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn join(
        &self,
        client_id: &Arc<str>,
        conn: ConnId,
        policy: DuplicatePolicy,
        max_clients: Option<usize>,
    ) -> Join {
        let mut presence = self.presence();
        match presence.get_mut(client_id) {
            Some(_) if policy == DuplicatePolicy::Refuse => Join::Duplicate,
            Some(holder) => {
                let replaced = std::mem::replace(holder, conn);
                Join::Joined { count: presence.len(), replaced: Some(replaced) }
            }
            None => {
                if max_clients.is_some_and(|max| presence.len() >= max) {
                    return Join::Full;
                }
                presence.insert(client_id.clone(), conn);
                Join::Joined { count: presence.len(), replaced: None }
            }
        }
    }

    /// Removes `client_id` if `conn` still holds it; returns the count left, or `None` if
    /// another connection holds the clientId now.
    pub fn leave(&self, client_id: &str, conn: ConnId) -> Option<usize> {
        let mut presence = self.presence();
        if presence.get(client_id) == Some(&conn) {
            presence.remove(client_id);
            if presence.is_empty() {
                presence.shrink_to_fit();
            }
            Some(presence.len())
        } else {
            None
        }
    }

    pub fn find(&self, client_id: &str) -> Option<ConnId> {
        self.presence().get(client_id).copied()
    }

    pub fn count(&self) -> usize {
        self.presence().len()
    }

    /// Up to `limit` online clientIds (unordered) and the total count.
    pub fn users(&self, limit: usize) -> (Vec<Arc<str>>, usize) {
        let presence = self.presence();
        (presence.keys().take(limit).cloned().collect(), presence.len())
    }

    /// A page of online clientIds in sorted order: the `limit` smallest ids after `cursor` (all
    /// ids when `cursor` is `None`), and the total count. Costs one pass over the channel under
    /// the presence lock, keeping only the page (a bounded heap), never a copy of every id.
    pub fn users_after(&self, cursor: Option<&str>, limit: usize) -> (Vec<Arc<str>>, usize) {
        let presence = self.presence();
        let mut page: BinaryHeap<&Arc<str>> = BinaryHeap::with_capacity(limit.min(presence.len()));
        for id in presence.keys().filter(|id| cursor.is_none_or(|c| &***id > c)) {
            if page.len() < limit {
                page.push(id);
            } else if let Some(mut largest) = page.peek_mut() {
                if id < *largest {
                    *largest = id;
                }
            }
        }
        (page.into_sorted_vec().into_iter().cloned().collect(), presence.len())
    }

    pub fn add_manager(&self, conn: ConnId) {
        self.managers().push(conn);
    }

    pub fn remove_manager(&self, conn: ConnId) {
        self.managers().retain(|&m| m != conn);
    }

    /// A copy of the management sessions (a handful), taken so no lock is held while sending.
    pub fn managers_snapshot(&self) -> Vec<ConnId> {
        self.managers().clone()
    }

    pub fn member_added(&self, core: usize) {
        self.members_per_core[core].fetch_add(1, Ordering::Relaxed);
    }

    pub fn member_removed(&self, core: usize) {
        self.members_per_core[core].fetch_sub(1, Ordering::Relaxed);
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

    pub fn get(&self, app: crate::push::AppId) -> &Channel {
        &self.by_app[app.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(index: u32) -> ConnId {
        ConnId { core: 0, index, generation: 1 }
    }

    #[test]
    fn replace_keeps_the_newer_holder_on_leave() {
        let ch = Channel::new(2);
        let id: Arc<str> = "c1".into();
        assert_eq!(
            ch.join(&id, conn(1), DuplicatePolicy::Replace, None),
            Join::Joined { count: 1, replaced: None }
        );
        assert_eq!(
            ch.join(&id, conn(2), DuplicatePolicy::Replace, None),
            Join::Joined { count: 1, replaced: Some(conn(1)) }
        );
        assert_eq!(ch.leave("c1", conn(1)), None);
        assert_eq!(ch.find("c1"), Some(conn(2)));
        assert_eq!(ch.leave("c1", conn(2)), Some(0));
        assert_eq!(ch.find("c1"), None);
    }

    #[test]
    fn refuse_and_full() {
        let ch = Channel::new(1);
        let a: Arc<str> = "a".into();
        let b: Arc<str> = "b".into();
        ch.join(&a, conn(1), DuplicatePolicy::Refuse, Some(1));
        assert_eq!(ch.join(&a, conn(2), DuplicatePolicy::Refuse, Some(1)), Join::Duplicate);
        assert_eq!(ch.join(&b, conn(3), DuplicatePolicy::Refuse, Some(1)), Join::Full);
        assert_eq!(ch.count(), 1);
    }

    #[test]
    fn users_after_pages_in_sorted_order() {
        let ch = Channel::new(1);
        for (i, id) in ["d", "b", "e", "a", "c"].into_iter().enumerate() {
            ch.join(&id.into(), conn(i as u32), DuplicatePolicy::Replace, None);
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
        ch.member_added(2);
        ch.member_added(2);
        ch.member_added(0);
        ch.member_removed(0);
        assert_eq!(ch.cores_with_members().collect::<Vec<_>>(), [(2, 2)]);
    }
}

//! Who is online in one channel on the other nodes of a cluster (`[cluster]`): each clientId
//! and the node that holds it, as this node last heard from the bus.
//!
//! # Invariants
//! - At most one entry per clientId; a newer join from any node takes the entry over (as a
//!   newer connection takes a local one).
//! - An entry is removed only by a leave from the node it names, or when that node is dropped
//!   (dead, or resynced), so a late leave from a replaced holder never removes the newcomer.
//! - Node names are shared (`Arc<str>`): an entry costs its clientId and a pointer.

use std::collections::HashMap;
use std::sync::Arc;

/// The remote clients of one channel.
#[derive(Debug, Default)]
pub struct RemotePresence {
    holders: HashMap<Box<str>, Arc<str>>,
}

impl RemotePresence {
    pub fn len(&self) -> usize {
        self.holders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.holders.is_empty()
    }

    /// The node that holds `client_id`.
    pub fn get(&self, client_id: &str) -> Option<&Arc<str>> {
        self.holders.get(client_id)
    }

    /// `node` holds `client_id` now; true if it was not online anywhere else before.
    pub fn join(&mut self, client_id: &str, node: &Arc<str>) -> bool {
        self.holders.insert(client_id.into(), Arc::clone(node)).is_none()
    }

    /// `node` no longer holds `client_id`; true if the entry was `node`'s (and is gone).
    pub fn leave(&mut self, client_id: &str, node: &str) -> bool {
        match self.holders.get(client_id) {
            Some(holder) if &**holder == node => self.holders.remove(client_id).is_some(),
            _ => false,
        }
    }

    /// Forgets every client of `node`; the clientIds it held.
    pub fn drop_node(&mut self, node: &str) -> Vec<Box<str>> {
        let gone: Vec<Box<str>> =
            self.holders.iter().filter(|(_, n)| &***n == node).map(|(id, _)| id.clone()).collect();
        for id in &gone {
            self.holders.remove(id);
        }
        gone
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.holders.keys().map(|id| &**id)
    }

    /// Every node that holds a client here.
    pub fn nodes(&self) -> impl Iterator<Item = &Arc<str>> {
        self.holders.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_join_takes_over_and_only_the_holders_leave_counts() {
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let mut remote = RemotePresence::default();
        assert!(remote.join("phone", &a));
        assert!(!remote.join("phone", &b), "online before: a newer join takes it over");
        assert!(!remote.leave("phone", "a"), "the replaced holder's late leave changes nothing");
        assert_eq!(remote.get("phone").map(|n| &**n), Some("b"));
        assert!(remote.leave("phone", "b"));
        assert!(remote.is_empty());
    }

    #[test]
    fn dropping_a_node_forgets_its_clients_only() {
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let mut remote = RemotePresence::default();
        remote.join("1", &a);
        remote.join("2", &b);
        remote.join("3", &a);
        let mut gone = remote.drop_node("a");
        gone.sort();
        assert_eq!(gone, vec![Box::from("1"), Box::from("3")]);
        assert_eq!(remote.ids().collect::<Vec<_>>(), ["2"]);
    }
}

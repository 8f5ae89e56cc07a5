//! Who is online in one channel on the other nodes of a cluster (`[cluster]`): each clientId
//! and the node that holds it, as this node last heard from the bus.
//!
//! # Invariants
//! - At most one entry per clientId; a newer join from any node takes the entry over (as a
//!   newer connection takes a local one).
//! - An entry is removed only by a leave from the node it names, or when that node is dropped
//!   (dead, or resynced), so a late leave from a replaced holder never removes the newcomer.
//! - An entry costs what a local one does (32 bytes, its id inline up to 22 bytes): the node is
//!   a 16-bit index into the channel's few node names.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use hashbrown::HashTable;

use super::client_id::ClientId;

/// What a join heard from another node changes here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteJoin {
    /// The clientId was not online on another node.
    New,
    /// It was, on a different node: this one took it over.
    Moved,
    /// It was already this node's: nothing changes (managers need not hear it again).
    Again,
}

/// The remote clients of one channel: `(clientId, node index)` in one table (32 bytes an entry,
/// ids of up to 22 bytes inline, as local presence keeps them), and the few node names.
#[derive(Debug, Default)]
pub struct RemotePresence {
    table: HashTable<(ClientId, u16)>,
    /// Node names by index, and how many entries name each (a node is never forgotten here:
    /// a cluster has a handful, and a node that comes back gets its old index).
    nodes: Vec<(Arc<str>, u32)>,
    hasher: RandomState,
}

impl RemotePresence {
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    fn hash(&self, client_id: &str) -> u64 {
        self.hasher.hash_one(client_id)
    }

    fn node_index(&mut self, node: &Arc<str>) -> u16 {
        match self.nodes.iter().position(|(name, _)| name == node) {
            Some(i) => i as u16,
            None => {
                self.nodes.push((Arc::clone(node), 0));
                (self.nodes.len() - 1) as u16
            }
        }
    }

    /// The node that holds `client_id`.
    pub fn get(&self, client_id: &str) -> Option<&Arc<str>> {
        let (_, node) =
            self.table.find(self.hash(client_id), |(id, _)| id.as_str() == client_id)?;
        Some(&self.nodes[usize::from(*node)].0)
    }

    /// `node` holds `client_id` now: whether it is new here, moved from another node, or
    /// `node`'s already (the same join heard twice: as an event and in a node's presence).
    pub fn join(&mut self, client_id: &str, node: &Arc<str>) -> RemoteJoin {
        let index = self.node_index(node);
        let hash = self.hash(client_id);
        self.nodes[usize::from(index)].1 += 1;
        if let Some((_, holder)) = self.table.find_mut(hash, |(id, _)| id.as_str() == client_id) {
            let before = std::mem::replace(holder, index);
            self.nodes[usize::from(before)].1 -= 1;
            return if before == index { RemoteJoin::Again } else { RemoteJoin::Moved };
        }
        let hasher = &self.hasher;
        self.table.insert_unique(hash, (ClientId::new(client_id), index), |(id, _)| {
            hasher.hash_one(id.as_str())
        });
        RemoteJoin::New
    }

    /// `node` no longer holds `client_id`; true if the entry was `node`'s (and is gone).
    pub fn leave(&mut self, client_id: &str, node: &str) -> bool {
        let Some(index) = self.nodes.iter().position(|(name, _)| &**name == node) else {
            return false;
        };
        let hash = self.hash(client_id);
        let found = self
            .table
            .find_entry(hash, |(id, n)| id.as_str() == client_id && usize::from(*n) == index);
        match found {
            Ok(entry) => {
                entry.remove();
                self.nodes[index].1 -= 1;
                true
            }
            Err(_) => false,
        }
    }

    /// Forgets every client of `node`; the clientIds it held.
    pub fn drop_node(&mut self, node: &str) -> Vec<Box<str>> {
        let Some(index) = self.nodes.iter().position(|(name, _)| &**name == node) else {
            return Vec::new();
        };
        let mut gone = Vec::with_capacity(self.nodes[index].1 as usize);
        self.table.retain(|(id, n)| {
            let theirs = usize::from(*n) == index;
            if theirs {
                gone.push(Box::from(id.as_str()));
            }
            !theirs
        });
        self.nodes[index].1 = 0;
        gone
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.table.iter().map(|(id, _)| id.as_str())
    }

    /// Every node that holds a client here.
    pub fn nodes(&self) -> impl Iterator<Item = &Arc<str>> {
        self.nodes.iter().filter(|(_, held)| *held > 0).map(|(name, _)| name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_join_takes_over_and_only_the_holders_leave_counts() {
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let mut remote = RemotePresence::default();
        assert_eq!(remote.join("phone", &a), RemoteJoin::New);
        assert_eq!(remote.join("phone", &a), RemoteJoin::Again, "the same join heard twice");
        assert_eq!(remote.join("phone", &b), RemoteJoin::Moved, "a newer join takes it over");
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
        assert_eq!(remote.nodes().map(|n| &**n).collect::<Vec<_>>(), ["b"]);
        assert_eq!(remote.join("1", &a), RemoteJoin::New, "a node that comes back is known again");
        assert_eq!(remote.get("1").map(|n| &**n), Some("a"));
    }
}

//! Who is online in one channel: each clientId and the connection that holds it.
//!
//! # Layout
//! One hashbrown `HashTable` of `(ClientId, ConnId)`: 32 bytes per entry, with ids of up to 22
//! bytes stored inline, so an online client costs no allocation of its own. The holder keeps only
//! a 32-bit [`PresenceKey`] (its id's hash) to leave: it finds its entry by that hash and its own
//! `ConnId`, and the entry gives back the id.
//!
//! # Invariants
//! - At most one entry per clientId.
//! - An entry's table hash is `spread` of its id's key; the key comes from a per-channel
//!   random SipHash key, so clients cannot choose ids that collide.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::client_id::ClientId;
use crate::ids::ConnId;

/// The 32-bit hash of a clientId that its holder keeps to leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceKey(pub u32);

#[derive(Debug, Default)]
pub struct Presence {
    table: HashTable<(ClientId, ConnId)>,
    hasher: std::hash::RandomState,
}

/// The table hash of a key: hashbrown reads both the top 7 bits and the low bits of the hash,
/// and multiplying by an odd constant spreads the key's 32 bits over both.
fn spread(key: PresenceKey) -> u64 {
    u64::from(key.0).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl Presence {
    pub fn key(&self, client_id: &str) -> PresenceKey {
        PresenceKey(self.hasher.hash_one(client_id) as u32)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn get(&self, client_id: &str) -> Option<ConnId> {
        let hash = spread(self.key(client_id));
        self.table.find(hash, |(id, _)| id.as_str() == client_id).map(|&(_, conn)| conn)
    }

    /// Makes `conn` the holder of `client_id`; returns the key and the previous holder.
    pub fn insert(&mut self, client_id: &str, conn: ConnId) -> (PresenceKey, Option<ConnId>) {
        let key = self.key(client_id);
        let hash = spread(key);
        if let Some((_, holder)) = self.table.find_mut(hash, |(id, _)| id.as_str() == client_id) {
            return (key, Some(std::mem::replace(holder, conn)));
        }
        let hasher = &self.hasher;
        let rehash =
            |(id, _): &(ClientId, ConnId)| spread(PresenceKey(hasher.hash_one(id.as_str()) as u32));
        self.table.insert_unique(hash, (ClientId::new(client_id), conn), rehash);
        (key, None)
    }

    /// Removes the entry that `conn` holds under `key`, if it still holds one; returns its id.
    pub fn remove(&mut self, key: PresenceKey, conn: ConnId) -> Option<ClientId> {
        let entry = self.table.find_entry(spread(key), |&(_, holder)| holder == conn).ok()?;
        let ((client_id, _), _) = entry.remove();
        if self.table.is_empty() {
            self.table = HashTable::new();
        }
        Some(client_id)
    }

    /// Hands the entry that `from` holds under `key` to `to`; false if `from` holds none.
    pub fn rehome(&mut self, key: PresenceKey, from: ConnId, to: ConnId) -> bool {
        match self.table.find_mut(spread(key), |&(_, holder)| holder == from) {
            Some((_, holder)) => {
                *holder = to;
                true
            }
            None => false,
        }
    }

    /// The id that `conn` holds under `key`, if it still holds one.
    pub fn id_of(&self, key: PresenceKey, conn: ConnId) -> Option<&ClientId> {
        self.table.find(spread(key), |&(_, holder)| holder == conn).map(|(id, _)| id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &ClientId> {
        self.table.iter().map(|(id, _)| id)
    }

    /// The connections that hold an entry.
    pub fn holders(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.table.iter().map(|&(_, holder)| holder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(index: usize) -> ConnId {
        ConnId::new(0, index, 1)
    }

    #[test]
    fn an_entry_is_32_bytes() {
        assert_eq!(std::mem::size_of::<(ClientId, ConnId)>(), 32);
    }

    #[test]
    fn insert_replace_and_remove_by_holder() {
        let mut p = Presence::default();
        let (key, previous) = p.insert("a", conn(1));
        assert_eq!(previous, None);
        assert_eq!(p.get("a"), Some(conn(1)));
        let (again, previous) = p.insert("a", conn(2));
        assert_eq!((again, previous), (key, Some(conn(1))));
        assert_eq!(p.remove(key, conn(1)), None, "the replaced holder removes nothing");
        assert_eq!(p.remove(key, conn(2)).map(|id| id.to_string()), Some("a".into()));
        assert!(p.is_empty() && p.get("a").is_none());
    }

    #[test]
    fn many_ids_round_trip() {
        let mut p = Presence::default();
        let keys: Vec<_> = (0..5000).map(|i| p.insert(&format!("client-{i}"), conn(i)).0).collect();
        assert_eq!(p.len(), 5000);
        for (i, key) in keys.iter().enumerate().step_by(2) {
            assert!(p.remove(*key, conn(i)).is_some());
        }
        assert_eq!(p.len(), 2500);
        assert_eq!(p.get("client-1"), Some(conn(1)));
        assert_eq!(p.get("client-2"), None);
        let long = "x".repeat(300);
        p.insert(&long, conn(9));
        assert_eq!(p.get(&long), Some(conn(9)));
    }
}

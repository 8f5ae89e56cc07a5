//! A reactor's connection table: a `Slab` of [`Conn`]s with a generation per connection.
//!
//! # Invariants
//! - A slab index names the connection to its backend (with the generation); it is reused after
//!   the connection closes.
//! - Every connection gets a generation that no earlier connection of this reactor had (until
//!   the 24-bit counter wraps, 16 million accepts later), so a stale [`ConnId`] never reaches a
//!   connection that reused its slot.

use slab::Slab;

use super::conn::Conn;
use crate::ids::ConnId;

#[derive(Debug, Default)]
pub struct ConnTable {
    slab: Slab<Conn>,
    next_generation: u32,
}

impl ConnTable {
    /// A table with room for `capacity` connections before it regrows.
    pub fn with_capacity(capacity: usize) -> ConnTable {
        ConnTable { slab: Slab::with_capacity(capacity), next_generation: 0 }
    }

    /// The slab index the next insert will use.
    pub fn next_index(&self) -> usize {
        self.slab.vacant_key()
    }

    /// Hands out the generation for the next connection.
    pub fn next_generation(&mut self) -> u32 {
        self.next_generation = self.next_generation.wrapping_add(1) & ConnId::GENERATION_MASK;
        self.next_generation
    }

    pub fn insert(&mut self, conn: Conn) -> usize {
        self.slab.insert(conn)
    }

    pub fn get(&self, index: usize) -> Option<&Conn> {
        self.slab.get(index)
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut Conn> {
        self.slab.get_mut(index)
    }

    /// The connection at `index` only if it is still the one with `generation`.
    pub fn get_live(&mut self, index: usize, generation: u32) -> Option<&mut Conn> {
        self.slab.get_mut(index).filter(|c| c.generation == generation)
    }

    pub fn remove(&mut self, index: usize) -> Option<Conn> {
        self.slab.try_remove(index)
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Every live connection as (index, generation).
    pub fn ids(&self) -> Vec<(usize, u32)> {
        self.slab.iter().map(|(i, c)| (i, c.generation)).collect()
    }
}

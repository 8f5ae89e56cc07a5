//! A reactor's own member lists: for each app, the slab indexes of its local client members.
//!
//! # Invariants
//! - A connection is in at most one list, at the position its `member_slot` records.
//! - Removal is `swap_remove`: O(1), and the caller must update the `member_slot` of the member
//!   that moved into the freed position (returned by [`LocalMembers::remove`]).

use crate::ids::AppId;

#[derive(Debug)]
pub struct LocalMembers {
    by_app: Vec<Vec<u32>>,
}

impl LocalMembers {
    pub fn new(apps: usize) -> LocalMembers {
        LocalMembers { by_app: (0..apps).map(|_| Vec::new()).collect() }
    }

    /// Adds `conn` (a slab index) and returns its slot.
    pub fn add(&mut self, app: AppId, conn: u32) -> u32 {
        let list = &mut self.by_app[app.index()];
        list.push(conn);
        (list.len() - 1) as u32
    }

    /// Removes the member at `slot`; returns the connection that moved into `slot`, if any.
    pub fn remove(&mut self, app: AppId, slot: u32) -> Option<u32> {
        let list = &mut self.by_app[app.index()];
        let slot = slot as usize;
        if slot >= list.len() {
            return None;
        }
        list.swap_remove(slot);
        let moved = list.get(slot).copied();
        if list.is_empty() {
            list.shrink_to_fit();
        }
        moved
    }

    /// Puts `conn` in the place of the member at `slot` (which goes on as `conn`: same slot).
    pub fn replace(&mut self, app: AppId, slot: u32, conn: u32) {
        if let Some(member) = self.by_app[app.index()].get_mut(slot as usize) {
            *member = conn;
        }
    }

    /// The member at `position`, if the list is that long.
    pub fn get(&self, app: AppId, position: usize) -> Option<u32> {
        self.by_app[app.index()].get(position).copied()
    }

    pub fn len(&self, app: AppId) -> usize {
        self.by_app[app.index()].len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_remove_reports_the_moved_member() {
        let app = AppId(0);
        let mut m = LocalMembers::new(1);
        assert_eq!(m.add(app, 10), 0);
        assert_eq!(m.add(app, 11), 1);
        assert_eq!(m.add(app, 12), 2);
        assert_eq!(m.remove(app, 0), Some(12));
        assert_eq!(m.get(app, 0), Some(12));
        assert_eq!(m.remove(app, 1), None); // the last one: nothing moves
        assert_eq!(m.len(app), 1);
        assert_eq!(m.remove(app, 5), None);
        m.replace(app, 0, 20);
        assert_eq!(m.get(app, 0), Some(20));
    }
}

//! What this node tells the other nodes of a cluster (`[cluster]`), on its way to the bus: the
//! pushes it accepted (to channels, and to clients another node holds) and the joins and leaves
//! of its clients. A bounded queue from whichever thread acted (a reactor running a session, the
//! control thread) to the bus thread, which publishes on Redis.
//!
//! # Invariants
//! - **Offering never blocks**: a full queue (Redis slow or down) drops the forward and counts
//!   it (`not_forwarded`); a push has reached this node's members already, and a lost join or
//!   leave is repaired when the bus reconnects (the node rewrites its presence whole).
//! - **One queue**, so the pushes of one publisher (one management session, one HTTP client
//!   waiting for each answer) leave in the order they were accepted.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::ids::AppId;
use crate::stats::{ClusterCounters, add};

/// What the other nodes must hear, in the order it happened here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarded {
    /// `onMsg {msg}` to `app`'s channel (`msg` as JSON).
    Push { app: AppId, msg: Bytes },
    /// `client_id` entered `app`'s channel here.
    Joined { app: AppId, client_id: Box<str> },
    /// `client_id` left `app`'s channel here (closed, kicked, replaced).
    Left { app: AppId, client_id: Box<str> },
    /// `onMsg {msg}` to `client_id`, whom `node` holds.
    PushTo { app: AppId, node: Arc<str>, client_id: Box<str>, msg: Bytes },
    /// Disconnect `client_id`, whom `node` holds, with the kick's `text` (the admin API).
    Disconnect { app: AppId, node: Arc<str>, client_id: Box<str>, text: Box<str> },
}

impl Forwarded {
    /// A push (to a channel or to one client), not a join or a leave.
    pub fn is_push(&self) -> bool {
        matches!(self, Forwarded::Push { .. } | Forwarded::PushTo { .. })
    }
}

/// The push service's end of the queue.
#[derive(Debug)]
pub struct Forward {
    queue: mpsc::Sender<Forwarded>,
}

/// A queue of at most `capacity` pushes: the push service's end, and the bus thread's.
pub fn queue(capacity: usize) -> (Forward, mpsc::Receiver<Forwarded>) {
    let (queue, receiver) = mpsc::channel(capacity.max(1));
    (Forward { queue }, receiver)
}

impl Forward {
    /// Hands `forwarded` to the bus thread, or counts it as not forwarded; whether it went.
    pub fn offer(&self, forwarded: Forwarded, counters: &ClusterCounters) -> bool {
        let queued = self.queue.try_send(forwarded).is_ok();
        if !queued {
            add(&counters.not_forwarded, 1);
        }
        queued
    }
}

/// `msg` as JSON.
pub fn json(msg: &serde_json::Value) -> Bytes {
    Bytes::from(serde_json::to_vec(msg).expect("a JSON value serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_arrive_in_order_and_a_full_queue_counts_what_it_drops() {
        let counters = ClusterCounters::default();
        let (forward, mut receiver) = queue(2);
        for n in 0..3 {
            let msg = json(&serde_json::json!({ "n": n }));
            forward.offer(Forwarded::Push { app: AppId(0), msg }, &counters);
        }
        let msg = |n: &'static [u8]| Forwarded::Push { app: AppId(0), msg: Bytes::from_static(n) };
        assert_eq!(receiver.try_recv().unwrap(), msg(br#"{"n":0}"#));
        assert_eq!(receiver.try_recv().unwrap(), msg(br#"{"n":1}"#));
        assert!(receiver.try_recv().is_err());
        assert_eq!(counters.snapshot().not_forwarded, 1);
    }
}

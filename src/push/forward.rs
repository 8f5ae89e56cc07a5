//! Pushes to whole channels that this node accepted, on their way to the cluster bus
//! (`[cluster]`): a bounded queue from whichever thread pushed (a reactor running a management
//! session, the control thread) to the bus thread, which publishes them on Redis.
//!
//! # Invariants
//! - **Offering never blocks**: a full queue (Redis slow or down) drops the forward and counts
//!   it (`not_forwarded`); the push has reached this node's members already.
//! - **One queue**, so the pushes of one publisher (one management session, one HTTP client
//!   waiting for each answer) leave in the order they were accepted.

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::ids::AppId;
use crate::stats::{ClusterCounters, add};

/// A push for the other nodes: `onMsg {msg}` to `app`'s channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    pub app: AppId,
    /// `msg`, as JSON.
    pub msg: Bytes,
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
    /// Hands `msg` for `app` to the bus thread, or counts it as not forwarded.
    pub fn offer(&self, app: AppId, msg: &serde_json::Value, counters: &ClusterCounters) {
        let msg = Bytes::from(serde_json::to_vec(msg).expect("a JSON value serializes"));
        if self.queue.try_send(Forwarded { app, msg }).is_err() {
            add(&counters.not_forwarded, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_arrive_in_order_and_a_full_queue_counts_what_it_drops() {
        let counters = ClusterCounters::default();
        let (forward, mut receiver) = queue(2);
        for n in 0..3 {
            forward.offer(AppId(0), &serde_json::json!({ "n": n }), &counters);
        }
        assert_eq!(receiver.try_recv().unwrap().msg, Bytes::from_static(br#"{"n":0}"#));
        assert_eq!(receiver.try_recv().unwrap().msg, Bytes::from_static(br#"{"n":1}"#));
        assert!(receiver.try_recv().is_err());
        assert_eq!(counters.snapshot().not_forwarded, 1);
    }
}

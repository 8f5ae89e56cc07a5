//! The bus thread's loop: connect to Redis, subscribe to every app's channel, then publish the
//! queued pushes and deliver the ones other nodes published, until Redis goes away (then back
//! off and connect again) or the server stops.
//!
//! While the bus is down, pushes still reach this node's members (the push service delivered
//! them before queueing them here); each one that finds the bus down is counted as not
//! forwarded, and none is kept for later: a push platform's message is news, and a burst of old
//! pushes after an outage would be worse than none. The state change is logged once each way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubStream};
use tokio::sync::{mpsc, oneshot};

use super::{ClusterSettings, wire};
use crate::ids::AppId;
use crate::push::forward::Forwarded;
use crate::reactor::shared::Shared;
use crate::stats::{ClusterCounters, add};

/// Longest wait for Redis to accept a connection, a subscription or a publish.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);
/// Pushes published in one pipeline at most.
const BATCH: usize = 256;
/// The first and the longest wait between connection attempts.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How a connected spell ended.
enum Ended {
    Stopped,
    Lost(String),
}

/// Runs the bus until `stop` fires (or its sender is dropped, or the queue closes).
pub(super) async fn run(
    settings: ClusterSettings,
    client: redis::Client,
    shared: Arc<Shared>,
    mut queue: mpsc::Receiver<Forwarded>,
    mut stop: oneshot::Receiver<()>,
) {
    let counters = &shared.push.counters().cluster;
    let mut backoff = BACKOFF_FIRST;
    let mut down_since: Option<Instant> = None;
    loop {
        let why = match connect(&client, &settings, &shared).await {
            Ok((mut publisher, stream)) => {
                add(&counters.up, 1);
                match down_since.take() {
                    Some(at) => tracing::info!(
                        node = %settings.node_id,
                        down_for = ?at.elapsed(),
                        "cluster bus up again: pushes go to every node"
                    ),
                    None => tracing::info!(node = %settings.node_id, "cluster bus up"),
                }
                backoff = BACKOFF_FIRST;
                let ended =
                    serve(&settings, &shared, &mut publisher, stream, &mut queue, &mut stop).await;
                counters.up.store(0, std::sync::atomic::Ordering::Relaxed);
                match ended {
                    Ended::Stopped => return,
                    Ended::Lost(why) => why,
                }
            }
            Err(e) => e,
        };
        if down_since.is_none() {
            down_since = Some(Instant::now());
            tracing::warn!(
                node = %settings.node_id,
                error = %why,
                "cluster bus down: pushes reach this node's members only until it is back"
            );
        }
        if !wait_down(backoff, &mut queue, &mut stop, counters).await {
            return;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// A connection to publish on and the subscription to every app's channel.
async fn connect(
    client: &redis::Client,
    settings: &ClusterSettings,
    shared: &Shared,
) -> Result<(MultiplexedConnection, PubSubStream), String> {
    let timed = |what: &'static str| move |_| format!("{what}: no answer within {REDIS_TIMEOUT:?}");
    let publisher = tokio::time::timeout(REDIS_TIMEOUT, client.get_multiplexed_async_connection())
        .await
        .map_err(timed("connect"))?
        .map_err(|e| format!("connect: {e}"))?;
    let mut pubsub = tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(timed("connect"))?
        .map_err(|e| format!("connect: {e}"))?;
    let push = &shared.push;
    let channels: Vec<String> = (0..push.app_count())
        .map(|i| wire::channel(&settings.prefix, push.apikey(AppId(i as u16))))
        .collect();
    tokio::time::timeout(REDIS_TIMEOUT, pubsub.subscribe(&channels))
        .await
        .map_err(timed("subscribe"))?
        .map_err(|e| format!("subscribe: {e}"))?;
    let (_sink, stream) = pubsub.split();
    Ok((publisher, stream))
}

/// Publishes and delivers until the connection is lost or the server stops.
async fn serve(
    settings: &ClusterSettings,
    shared: &Shared,
    publisher: &mut MultiplexedConnection,
    mut stream: PubSubStream,
    queue: &mut mpsc::Receiver<Forwarded>,
    stop: &mut oneshot::Receiver<()>,
) -> Ended {
    let counters = &shared.push.counters().cluster;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            biased;
            _ = &mut *stop => return Ended::Stopped,
            message = stream.next() => match message {
                Some(message) => deliver(settings, shared, &message),
                None => return Ended::Lost("the subscription connection closed".into()),
            },
            taken = queue.recv_many(&mut batch, BATCH) => {
                if taken == 0 {
                    return Ended::Stopped;
                }
                if let Err(why) = publish(settings, shared, publisher, &batch).await {
                    add(&counters.not_forwarded, batch.len() as u64);
                    batch.clear();
                    return Ended::Lost(why);
                }
                batch.clear();
            }
        }
    }
}

/// Publishes `batch` in one pipeline, in order.
async fn publish(
    settings: &ClusterSettings,
    shared: &Shared,
    publisher: &mut MultiplexedConnection,
    batch: &[Forwarded],
) -> Result<(), String> {
    let counters = &shared.push.counters().cluster;
    let started = Instant::now();
    let mut pipe = redis::pipe();
    for push in batch {
        let channel = wire::channel(&settings.prefix, shared.push.apikey(push.app));
        pipe.cmd("PUBLISH").arg(channel).arg(wire::encode(&settings.node_id, &push.msg)).ignore();
    }
    tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async::<()>(publisher))
        .await
        .map_err(|_| format!("publish: no answer within {REDIS_TIMEOUT:?}"))?
        .map_err(|e| format!("publish: {e}"))?;
    add(&counters.published, batch.len() as u64);
    let micros = started.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
    counters.publish_micros.store(micros, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// A message from the bus: another node's push, to this node's members.
fn deliver(settings: &ClusterSettings, shared: &Shared, message: &redis::Msg) {
    let counters = &shared.push.counters().cluster;
    let push = &shared.push;
    let app = wire::apikey_of(&settings.prefix, message.get_channel_name())
        .and_then(|apikey| push.lookup(apikey).ok());
    let decoded = wire::decode(message.get_payload_bytes());
    let (app, bus_push) = match (app, decoded) {
        (Some(app), Ok(bus_push)) => (app, bus_push),
        (app, decoded) => {
            add(&counters.dropped, 1);
            let channel = message.get_channel_name();
            let why = decoded.err().map_or("an unknown app".to_owned(), |e| e.to_string());
            tracing::debug!(channel, known_app = app.is_some(), why, "cluster bus: not a push");
            return;
        }
    };
    if bus_push.node == settings.node_id {
        // This node's own push, delivered here when it was accepted.
        return;
    }
    add(&counters.received, 1);
    let mut outlet = shared.outlet();
    if let Err(refusal) =
        push.push_all_from_cluster(app, &bus_push.msg, Instant::now(), &mut outlet)
    {
        add(&counters.dropped, 1);
        tracing::debug!(from = bus_push.node, error = %refusal.msg, "cluster bus: push not delivered");
    }
}

/// Waits `backoff` while the bus is down, counting every queued push as not forwarded; `false`
/// when the server stops meanwhile.
async fn wait_down(
    backoff: Duration,
    queue: &mut mpsc::Receiver<Forwarded>,
    stop: &mut oneshot::Receiver<()>,
    counters: &ClusterCounters,
) -> bool {
    let wait = tokio::time::sleep(backoff);
    tokio::pin!(wait);
    loop {
        tokio::select! {
            biased;
            _ = &mut *stop => return false,
            () = &mut wait => return true,
            forwarded = queue.recv() => match forwarded {
                Some(_) => add(&counters.not_forwarded, 1),
                None => return false,
            },
        }
    }
}

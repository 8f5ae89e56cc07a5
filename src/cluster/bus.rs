//! The bus thread's loop: connect to Redis, subscribe (every app's push channel, the presence
//! channel, this node's own channel), announce this node's presence and read the others', then
//! publish what the forward queue brings and deliver what other nodes publish, refreshing this
//! node's alive key and checking the others', until Redis goes away (then back off and connect
//! again) or the server stops.
//!
//! While the bus is down, pushes still reach this node's members (the push service delivered
//! them before queueing them here); each one that finds the bus down is counted as not
//! forwarded, and none is kept for later: a push platform's message is news, and a burst of old
//! pushes after an outage would be worse than none. Joins and leaves meanwhile are not lost:
//! the reconnect rewrites this node's presence whole. The state change is logged once each way.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use tokio::sync::{mpsc, oneshot};

use super::{ClusterSettings, presence, wire};
use crate::ids::AppId;
use crate::push::forward::Forwarded;
use crate::reactor::shared::Shared;
use crate::stats::{ClusterCounters, add};

/// Longest wait for Redis to accept a connection, a subscription or a publish.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);
/// Pushes published in one pipeline at most.
const BATCH: usize = 256;
/// How often the apps this node subscribes to are brought in line with its members.
const INTEREST_EVERY: Duration = Duration::from_millis(250);
/// The first and the longest wait between connection attempts.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How a connected spell ended.
enum Ended {
    Stopped,
    Lost(String),
}

/// What the bus holds while connected.
struct Connected {
    publisher: MultiplexedConnection,
    sink: PubSubSink,
    stream: PubSubStream,
    /// The apps whose push channel is subscribed.
    subscribed: HashSet<AppId>,
    /// The apps configured when the other nodes' presence was last read: an app a reload adds
    /// has its presence read when it appears.
    known: HashSet<AppId>,
}

impl Connected {
    /// Every `INTEREST_EVERY`: follows the apps' push channels, and reads the other nodes'
    /// presence again when a reload added an app (their clients of it joined before this node
    /// knew its apikey, so their joins were dropped here).
    async fn follow_apps(
        &mut self,
        settings: &ClusterSettings,
        shared: &Shared,
    ) -> Result<(), String> {
        self.follow_interest(settings, shared, &[]).await?;
        let live: HashSet<AppId> = shared.push.live_apps().into_iter().collect();
        if !live.is_subset(&self.known) {
            timed("read presence", presence::load_others(&mut self.publisher, settings, shared))
                .await?;
        }
        self.known = live;
        Ok(())
    }

    /// Subscribes to the push channels of the apps with members here (and of `joining`, about
    /// to have one), and unsubscribes from the others'.
    async fn follow_interest(
        &mut self,
        settings: &ClusterSettings,
        shared: &Shared,
        joining: &[AppId],
    ) -> Result<(), String> {
        let push = &shared.push;
        let now = Instant::now();
        let wanted: HashSet<AppId> = (0..push.app_count())
            .map(|i| AppId(i as u16))
            .filter(|&app| joining.contains(&app) || push.wants_pushes(app, now))
            .collect();
        let channel = |app: &AppId| wire::channel(&settings.prefix, push.apikey(*app));
        let new: Vec<String> = wanted.difference(&self.subscribed).map(channel).collect();
        let old: Vec<String> = self.subscribed.difference(&wanted).map(channel).collect();
        if !new.is_empty() {
            timed("subscribe", self.sink.subscribe(&new)).await?;
        }
        if !old.is_empty() {
            timed("unsubscribe", self.sink.unsubscribe(&old)).await?;
        }
        self.subscribed = wanted;
        Ok(())
    }
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
            Ok(connected) => {
                add(&counters.up, 1);
                match down_since.take() {
                    Some(at) => tracing::info!(
                        node = %settings.node_id,
                        down_for_ms = at.elapsed().as_millis() as u64,
                        "cluster bus up again: pushes go to every node"
                    ),
                    None => tracing::info!(node = %settings.node_id, "cluster bus up"),
                }
                backoff = BACKOFF_FIRST;
                let ended = serve(&settings, &shared, connected, &mut queue, &mut stop).await;
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

/// Within [`REDIS_TIMEOUT`], or a message saying what did not answer.
async fn timed<T>(
    what: &str,
    work: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(REDIS_TIMEOUT, work).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {REDIS_TIMEOUT:?}")),
    }
}

/// Connects, subscribes, announces this node and reads the others.
async fn connect(
    client: &redis::Client,
    settings: &ClusterSettings,
    shared: &Shared,
) -> Result<Connected, String> {
    let publisher = timed("connect", client.get_multiplexed_async_connection()).await?;
    let mut pubsub = timed("connect", client.get_async_pubsub()).await?;
    let prefix = &settings.prefix;
    let channels = [wire::presence_channel(prefix), wire::node_channel(prefix, &settings.node_id)];
    timed("subscribe", pubsub.subscribe(&channels)).await?;
    let (sink, stream) = pubsub.split();
    let known = shared.push.live_apps().into_iter().collect();
    let mut connected = Connected { publisher, sink, stream, subscribed: HashSet::new(), known };
    connected.follow_interest(settings, shared, &[]).await?;
    let (publisher, ttl) = (&mut connected.publisher, settings.node_ttl);
    timed("announce", presence::announce(publisher, settings, shared, ttl)).await?;
    timed("read presence", presence::load_others(publisher, settings, shared)).await?;
    Ok(connected)
}

/// Publishes and delivers until the connection is lost or the server stops.
async fn serve(
    settings: &ClusterSettings,
    shared: &Shared,
    connected: Connected,
    queue: &mut mpsc::Receiver<Forwarded>,
    stop: &mut oneshot::Receiver<()>,
) -> Ended {
    let mut connected = connected;
    let counters = &shared.push.counters().cluster;
    let mut batch = Vec::with_capacity(BATCH);
    let mut ticks = tokio::time::interval(settings.node_ttl / 3);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    let mut interest = tokio::time::interval(INTEREST_EVERY);
    interest.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = 0u64;
    loop {
        let result = tokio::select! {
            biased;
            _ = &mut *stop => return Ended::Stopped,
            message = connected.stream.next() => match message {
                Some(message) => deliver(settings, shared, &mut connected.publisher, &message).await,
                None => return Ended::Lost("the subscription connection closed".into()),
            },
            taken = queue.recv_many(&mut batch, BATCH) => {
                if taken == 0 {
                    return Ended::Stopped;
                }
                // A join of an app not followed yet: subscribe before the join is told, so that
                // a push made after another node hears of it is heard here too.
                let joining: Vec<AppId> = batch
                    .iter()
                    .filter_map(|f| match f {
                        Forwarded::Joined { app, .. } if !connected.subscribed.contains(app) => Some(*app),
                        _ => None,
                    })
                    .collect();
                if !joining.is_empty() {
                    if let Err(why) = connected.follow_interest(settings, shared, &joining).await {
                        return Ended::Lost(why);
                    }
                }
                let published = publish(settings, shared, &mut connected.publisher, &batch).await;
                if published.is_err() {
                    let pushes = batch.iter().filter(|f| f.is_push()).count();
                    add(&counters.not_forwarded, pushes as u64);
                }
                batch.clear();
                published
            }
            _ = ticks.tick() => {
                tick += 1;
                keep_alive(settings, shared, &mut connected.publisher, tick % 2 == 0).await
            }
            _ = interest.tick() => connected.follow_apps(settings, shared).await,
        };
        if let Err(why) = result {
            return Ended::Lost(why);
        }
    }
}

/// Refreshes this node's alive key (announcing it again if it had expired), and every other
/// tick drops the nodes whose key is gone.
async fn keep_alive(
    settings: &ClusterSettings,
    shared: &Shared,
    publisher: &mut MultiplexedConnection,
    check: bool,
) -> Result<(), String> {
    let ttl = settings.node_ttl;
    if !timed("refresh", presence::refresh(publisher, settings, ttl)).await? {
        tracing::warn!(node = %settings.node_id, "cluster: this node's alive key had expired; announcing it again");
        timed("announce", presence::announce(publisher, settings, shared, ttl)).await?;
    }
    if check {
        timed("check nodes", presence::check_nodes(publisher, settings, shared)).await?;
    }
    Ok(())
}

/// Publishes `batch` in one pipeline, in order.
async fn publish(
    settings: &ClusterSettings,
    shared: &Shared,
    publisher: &mut MultiplexedConnection,
    batch: &[Forwarded],
) -> Result<(), String> {
    let counters = &shared.push.counters().cluster;
    let (prefix, node) = (&settings.prefix, &settings.node_id);
    let push = &shared.push;
    let started = Instant::now();
    let mut pipe = redis::pipe();
    let mut pushes = 0;
    for forwarded in batch {
        match forwarded {
            Forwarded::Push { app, msg } => {
                pushes += 1;
                let channel = wire::channel(prefix, push.apikey(*app));
                pipe.publish(channel, wire::encode(node, msg)).ignore();
            }
            Forwarded::Joined { app, client_id } | Forwarded::Left { app, client_id } => {
                let apikey = push.apikey(*app);
                let key = wire::online_key(prefix, node, apikey);
                let (node, app, id) = (node.clone(), apikey.to_owned(), client_id.to_string());
                let event = if matches!(forwarded, Forwarded::Joined { .. }) {
                    pipe.sadd(key, &id).ignore();
                    wire::PresenceEvent::Join { node, app, id }
                } else {
                    pipe.srem(key, &id).ignore();
                    wire::PresenceEvent::Leave { node, app, id }
                };
                let event = serde_json::to_string(&event).expect("an event serializes");
                pipe.publish(wire::presence_channel(prefix), event).ignore();
            }
            Forwarded::PushTo { app, node: holder, client_id, msg } => {
                pushes += 1;
                let msg = serde_json::from_slice(msg).unwrap_or(serde_json::Value::Null);
                let to = wire::ToClient {
                    app: push.apikey(*app).to_owned(),
                    id: client_id.to_string(),
                    msg,
                    disconnect: None,
                };
                let to = serde_json::to_string(&to).expect("a push serializes");
                pipe.publish(wire::node_channel(prefix, holder), to).ignore();
            }
            Forwarded::Disconnect { app, node: holder, client_id, text } => {
                let to = wire::ToClient {
                    app: push.apikey(*app).to_owned(),
                    id: client_id.to_string(),
                    msg: serde_json::Value::Null,
                    disconnect: Some(text.to_string()),
                };
                let to = serde_json::to_string(&to).expect("a disconnect serializes");
                pipe.publish(wire::node_channel(prefix, holder), to).ignore();
            }
        }
    }
    timed("publish", pipe.query_async::<()>(publisher)).await?;
    add(&counters.published, pushes);
    let micros = started.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
    counters.publish_micros.store(micros, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// A message from the bus: another node's push, join or leave, or a push to a client here.
async fn deliver(
    settings: &ClusterSettings,
    shared: &Shared,
    publisher: &mut MultiplexedConnection,
    message: &redis::Msg,
) -> Result<(), String> {
    let counters = &shared.push.counters().cluster;
    let channel = message.get_channel_name();
    let payload = message.get_payload_bytes();
    let prefix = &settings.prefix;
    if channel == wire::presence_channel(prefix) {
        return on_presence(settings, shared, publisher, payload).await;
    }
    if channel == wire::node_channel(prefix, &settings.node_id) {
        let delivered = serde_json::from_slice::<wire::ToClient>(payload).ok().is_some_and(|to| {
            let app = shared.push.lookup(&to.app).ok();
            let push = &shared.push;
            app.is_some_and(|app| match to.disconnect {
                Some(text) => {
                    push.disconnect_from_cluster(app, &to.id, text.into(), &mut shared.outlet())
                }
                None => push.push_to_from_cluster(app, &to.id, &to.msg, &mut shared.outlet()),
            })
        });
        add(if delivered { &counters.received } else { &counters.dropped }, 1);
        return Ok(());
    }
    let push = &shared.push;
    let app = wire::apikey_of(prefix, channel).and_then(|apikey| push.lookup(apikey).ok());
    let decoded = wire::decode(payload);
    let (app, bus_push) = match (app, decoded) {
        (Some(app), Ok(bus_push)) => (app, bus_push),
        (app, decoded) => {
            add(&counters.dropped, 1);
            let why = decoded.err().map_or("an unknown app".to_owned(), |e| e.to_string());
            tracing::debug!(channel, known_app = app.is_some(), why, "cluster bus: not a push");
            return Ok(());
        }
    };
    if bus_push.node == settings.node_id {
        // This node's own push, delivered here when it was accepted.
        return Ok(());
    }
    add(&counters.received, 1);
    if !push.cluster_push_all(app, &bus_push.msg, &mut shared.outlet()) {
        add(&counters.dropped, 1);
    }
    Ok(())
}

/// A join, a leave or a sync on another node.
async fn on_presence(
    settings: &ClusterSettings,
    shared: &Shared,
    publisher: &mut MultiplexedConnection,
    payload: &[u8],
) -> Result<(), String> {
    let Ok(event) = serde_json::from_slice::<wire::PresenceEvent>(payload) else {
        add(&shared.push.counters().cluster.dropped, 1);
        return Ok(());
    };
    let push = &shared.push;
    let mut outlet = shared.outlet();
    match event {
        wire::PresenceEvent::Join { node, .. }
        | wire::PresenceEvent::Leave { node, .. }
        | wire::PresenceEvent::Sync { node }
            if node == settings.node_id => {}
        wire::PresenceEvent::Join { node, app, id } => {
            if let Ok(app) = push.lookup(&app) {
                push.cluster_joined(app, &id, &Arc::from(node), &mut outlet);
            }
        }
        wire::PresenceEvent::Leave { node, app, id } => {
            if let Ok(app) = push.lookup(&app) {
                push.cluster_left(app, &id, &node, &mut outlet);
            }
        }
        wire::PresenceEvent::Sync { node } => {
            let node = Arc::from(node);
            timed("read presence", presence::load_node(publisher, settings, shared, &node)).await?;
        }
    }
    Ok(())
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
                // Presence is rewritten whole at the reconnect; pushes are lost.
                Some(forwarded) if forwarded.is_push() => add(&counters.not_forwarded, 1),
                Some(_) => {}
                None => return false,
            },
        }
    }
}

//! The push service: the one path every edge takes to the push platform.
//!
//! A Pomelo or MQTT management session, the HTTP API (and later the Socket.IO frontend and the
//! cluster bus) call the same functions here and get the same answers: the same
//! [`Refusal`] codes, the same rate limit (one bucket per app, whichever edge pushes), the same
//! counters (`shaddock_pushes_total{source}` is labelled by [`Edge`], nothing else differs).
//!
//! # What it owns
//! The apps (apikeys, secrets, limits, protos), the channel registry (presence, management sessions,
//! members per core and per wire form), the per-app push rates, the apps' retained MQTT
//! messages, the [`FrameEncoder`] and the push counters.
//!
//! # Invariants
//! - **It never touches a connection.** Effects on connections (a broadcast per core, a push to
//!   one connection, kicking a replaced session) go to the caller's [`Outlet`].
//! - **A broadcast is encoded once**, in the forms the channel's members use, and handed to each
//!   core with members; a push to one client is handed over unencoded and encoded once by the
//!   core that holds it, in that client's form.
//! - **Checks in a fixed order**, the first failure answers: app (404), authority (the edge's:
//!   401 / 403), the server draining (503), the push itself (400), the target online (404), the
//!   rate (429). Only a push
//!   that is sent takes a token or counts.
//! - Time is passed in (`now`), never read.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;

use super::body::{self, ON_ADD, ON_LEAVE, ON_MSG};
use super::flapping::{FlapPolicy, Flapping};
use super::forward::{self, Forward, Forwarded};
use super::frame::{Frame, FrameEncoder, Push};
use super::outlet::Outlet;
use super::parked::{Parked, ParkedCaps, ParkedSession};
use super::rate::PushRates;
use super::refusal::quoted;
use super::retained::Retained;
use super::wrong_secrets::WrongSecrets;
use super::{Apps, ProtoSets, Refusal, topic};
use crate::channel::{Channels, ClientId, Join, PresenceKey};
use crate::config::DuplicatePolicy;
use crate::ids::{AppId, ConnId, Edge, WireForm};
use crate::stats::{AppCounters, KickReason, PushCounters};

/// Most clientIds listed in a management session's enter response.
pub const USERS_IN_ENTER_RESPONSE: usize = 10_000;

/// An app's `onAdd` carries the `users` list at most this often: joins in between carry the
/// clientId and the count, so strangers who join and leave cannot make every join cost each
/// manager the whole list.
pub const ON_ADD_USERS_EVERY: Duration = Duration::from_secs(1);

/// The most bytes of JSON an `onAdd`'s `users` list takes; a longer list is left out.
pub const ON_ADD_USERS_BYTES: usize = 16 * 1024;

/// How joins are decided, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct JoinPolicy {
    /// What a second connection with an online clientId does.
    pub duplicate: DuplicatePolicy,
    /// `onAdd` lists every online clientId only while the channel has at most this many.
    pub on_add_users_limit: usize,
    /// The most bytes of clientIds in a management session's enter response (half its write
    /// queue's limit, so its own answer never makes it a slow consumer).
    pub manager_list_bytes: usize,
}

/// A client's join, as the push service decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientJoin {
    /// Joined; the session keeps `key` to leave.
    Joined(PresenceKey),
    /// The clientId is online and the policy is `refuse` (Pomelo's "duplicate log in").
    Duplicate,
}

#[derive(Debug)]
pub struct PushService {
    apps: Apps,
    channels: Channels,
    rates: PushRates,
    encoder: FrameEncoder,
    protos: ProtoSets,
    policy: JoinPolicy,
    counters: PushCounters,
    /// Per app, indexed by `AppId`.
    app_counters: Box<[AppCounters]>,
    users_gate: UsersGate,
    retained: Retained,
    parked: Parked,
    wrong_secrets: WrongSecrets,
    flapping: Flapping,
    /// Set when the server starts draining: pushes are refused (503) rather than answered with
    /// recipients that the draining reactors will not write to.
    stopping: AtomicBool,
    /// The cluster bus's queue (`[cluster]`): pushes to whole channels accepted here go on to
    /// the other nodes.
    forward: Option<Forward>,
}

/// When each app's `onAdd` may next carry the `users` list.
#[derive(Debug)]
struct UsersGate {
    t0: Instant,
    /// Per app: milliseconds after `t0` from which the next list may go.
    next_ms: Box<[AtomicU64]>,
}

impl UsersGate {
    /// Whether `app`'s onAdd at `now` may carry the list (and if so, closes the gate for
    /// [`ON_ADD_USERS_EVERY`]).
    fn take(&self, app: AppId, now: Instant) -> bool {
        let ms = now.saturating_duration_since(self.t0).as_millis() as u64;
        let Some(next) = self.next_ms.get(app.index()) else { return false };
        let due = next.load(Ordering::Relaxed);
        let again = ms + ON_ADD_USERS_EVERY.as_millis() as u64;
        ms >= due && next.compare_exchange(due, again, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

impl PushService {
    /// The service for `apps` (with their `protos`), with channels for `cores` reactors; rates
    /// start full at `now`.
    pub fn new(
        apps: Apps,
        protos: ProtoSets,
        cores: usize,
        encoder: FrameEncoder,
        policy: JoinPolicy,
        now: Instant,
    ) -> PushService {
        let slots = apps.slots();
        let rates: Vec<Option<u32>> = (0..slots)
            .map(|i| apps.get(AppId(i as u16)).and_then(|app| app.push_rate_per_sec))
            .collect();
        let users_gate =
            UsersGate { t0: now, next_ms: (0..slots).map(|_| AtomicU64::new(0)).collect() };
        PushService {
            users_gate,
            app_counters: (0..slots).map(|_| AppCounters::default()).collect(),
            stopping: AtomicBool::new(false),
            channels: Channels::new(slots, cores),
            retained: Retained::new(slots),
            wrong_secrets: WrongSecrets::new(slots, now),
            flapping: Flapping::new(slots, FlapPolicy::OFF),
            parked: Parked::new(slots, ParkedCaps::default()),
            rates: PushRates::new(&rates, now),
            apps,
            encoder,
            protos,
            policy,
            counters: PushCounters::default(),
            forward: None,
        }
    }

    /// The same service, forwarding the pushes to whole channels it accepts to `forward`.
    pub fn with_forward(self, forward: Forward) -> PushService {
        PushService { forward: Some(forward), ..self }
    }

    /// Whether `token` lets `client_id` enter `app`'s channel at `unix_now`: always, for an app
    /// without a `client_key`; else a 401 saying what is wrong with it.
    pub fn check_client_token(
        &self,
        app: AppId,
        client_id: &str,
        token: Option<&str>,
        unix_now: u64,
    ) -> Result<(), Refusal> {
        let Some(settings) = self.apps.get(app) else { return Ok(()) };
        let Some(key) = &settings.client_key else { return Ok(()) };
        key.verify(self.apikey(app), client_id, token, unix_now)
            .map_err(|e| Refusal::new(401, e.to_string()))
    }

    /// Whether `app` takes signed clientIds only.
    pub fn requires_client_tokens(&self, app: AppId) -> bool {
        self.apps.get(app).is_some_and(|settings| settings.client_key.is_some())
    }

    /// Whether this node is one of a cluster (`[cluster]`).
    pub fn clustered(&self) -> bool {
        self.forward.is_some()
    }

    /// Whether the cluster bus is connected now.
    fn bus_up(&self) -> bool {
        self.counters.cluster.up.load(Ordering::Relaxed) > 0
    }

    /// In a cluster, hands what `make` makes to the bus thread; `false` if its queue was full
    /// (or there is no cluster).
    fn forward(&self, make: impl FnOnce() -> Forwarded) -> bool {
        self.forward.as_ref().is_some_and(|forward| forward.offer(make(), &self.counters.cluster))
    }

    /// The same service, refusing flapping clientIds by `policy`.
    pub fn with_flap_policy(self, policy: FlapPolicy) -> PushService {
        PushService { flapping: Flapping::new(self.apps.slots(), policy), ..self }
    }

    /// The same service, with away sessions bounded by `caps`.
    pub fn with_parked_caps(self, caps: ParkedCaps) -> PushService {
        PushService { parked: Parked::new(self.apps.slots(), caps), ..self }
    }

    /// How many app slots there are (`AppId`s are `0..app_count`): the configured apps, the
    /// removed ones, and room for those a reload adds ([`super::apps::SPARE_SLOTS`]).
    pub fn app_count(&self) -> usize {
        self.apps.slots()
    }

    /// The apps configured now, in slot order.
    pub fn live_apps(&self) -> Vec<AppId> {
        self.apps.live()
    }

    pub fn encoder(&self) -> &FrameEncoder {
        &self.encoder
    }

    pub fn counters(&self) -> &PushCounters {
        &self.counters
    }

    /// Counts a push sent to `app` (its channel or one of its clients) by `edge`.
    fn count_push(&self, edge: Edge, app: AppId) {
        self.counters.pushed(edge);
        self.app_counters[app.index()].pushed();
    }

    /// The server is draining: from now on every push is refused with 503.
    pub fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    fn check_running(&self) -> Result<(), Refusal> {
        match self.stopping.load(Ordering::Relaxed) {
            false => Ok(()),
            true => Err(Refusal::new(503, "the server is shutting down")),
        }
    }

    /// `app`'s configuration: apikey, limits, whether its clients must be signed.
    pub fn app(&self, app: AppId) -> Option<std::sync::Arc<super::App>> {
        self.apps.get(app)
    }

    /// The last settings of the app `apikey` names, even if a reload removed it.
    pub fn known_app(&self, apikey: &str) -> Option<std::sync::Arc<super::App>> {
        self.apps.known(apikey)
    }

    /// The apikey of `app`.
    pub fn apikey(&self, app: AppId) -> &str {
        self.apps.apikey(app)
    }

    /// Every app's protos.
    pub fn protos(&self) -> &ProtoSets {
        &self.protos
    }

    /// 404 for an app a reload removed (its sessions are being kicked; a request they sent
    /// meanwhile, or a join that raced the reload, finds it gone).
    fn check_live(&self, app: AppId) -> Result<(), Refusal> {
        match self.apps.is_live(app) {
            true => Ok(()),
            false => {
                let apikey = quoted(self.apikey(app));
                Err(Refusal::new(404, format!("unknown apikey {apikey}: the app was removed")))
            }
        }
    }

    /// The app `apikey` names (404 if none).
    pub fn lookup(&self, apikey: &str) -> Result<AppId, Refusal> {
        self.apps
            .lookup(apikey)
            .ok_or_else(|| Refusal::new(404, format!("unknown apikey {}", quoted(apikey))))
    }

    /// The app `apikey` names, if `secret` is its management secret (404, then 401). Another
    /// app's secret is a wrong secret, never access to this app. Wrong secrets are counted
    /// (`shaddock_wrong_secrets_total`) and logged, at most once per 10 s per app.
    pub fn authenticate(
        &self,
        apikey: &str,
        secret: Option<&str>,
        now: Instant,
    ) -> Result<AppId, Refusal> {
        let app = self.lookup(apikey)?;
        match secret {
            None => Err(Refusal::new(401, "missing secret")),
            Some(s) if !self.apps.get(app).is_some_and(|settings| settings.secret_matches(s)) => {
                self.counters.wrong_secret();
                self.wrong_secrets.note(app, apikey, now);
                Err(Refusal::new(401, "wrong secret"))
            }
            Some(_) => Ok(app),
        }
    }

    /// `conn` (a connection of wire form `form`) joins `app`'s channel as `client_id` at `now`.
    /// A replaced holder of the clientId is kicked; management sessions hear `onAdd`, with the
    /// `users` list only while the channel is small, the list short, and the app has not sent
    /// one in the last [`ON_ADD_USERS_EVERY`].
    pub fn enter_client(
        &self,
        app: AppId,
        conn: ConnId,
        form: WireForm,
        client_id: &str,
        now: Instant,
        outlet: &mut dyn Outlet,
    ) -> Result<ClientJoin, Refusal> {
        self.check_live(app)?;
        if let Err(until) = self.flapping.join(app, client_id, now) {
            let secs = until.saturating_duration_since(now).as_secs().max(1);
            return Err(Refusal {
                retry_after: Some(Duration::from_secs(secs)),
                ..Refusal::new(429, "flapping: this clientId joined too often")
                    .with_detail(format!("refused for {secs} s"))
            });
        }
        let channel = self.channels.get(app);
        let max_clients = self.apps.get(app).and_then(|settings| settings.max_clients);
        let (count, replaced, key) =
            match channel.join(client_id, conn, self.policy.duplicate, max_clients) {
                Join::Duplicate => return Ok(ClientJoin::Duplicate),
                Join::Full => return Err(Refusal::new(503, "the app's client limit is reached")),
                Join::Joined { count, replaced, key } => (count, replaced, key),
            };
        channel.member_added(conn.core(), form);
        self.counters.joined();
        self.forward(|| Forwarded::Joined { app, client_id: client_id.into() });
        if let Some(old) = replaced {
            outlet.kick(old, KickReason::Replaced);
        }
        let limit = self.policy.on_add_users_limit;
        let listed = count <= limit && channel.has_managers() && self.users_gate.take(app, now);
        let users = listed
            .then(|| channel.users_within(limit, ON_ADD_USERS_BYTES))
            .filter(|(users, count)| users.len() == *count)
            .map(|(users, _)| users);
        self.notify_managers(
            app,
            ON_ADD,
            &body::on_add(client_id, count, users.as_deref()),
            outlet,
        );
        Ok(ClientJoin::Joined(key))
    }

    /// The client `conn` leaves `app`'s channel; management sessions hear `onLeave` when its
    /// clientId went offline (not when a newer connection holds it now).
    pub fn leave_client(
        &self,
        app: AppId,
        conn: ConnId,
        form: WireForm,
        key: PresenceKey,
        outlet: &mut dyn Outlet,
    ) {
        let channel = self.channels.get(app);
        channel.member_removed(conn.core(), form);
        self.counters.left();
        if let Some((client_id, count)) = channel.leave(key, conn) {
            self.forward(|| Forwarded::Left { app, client_id: client_id.as_str().into() });
            self.notify_managers(app, ON_LEAVE, &body::on_leave(client_id.as_str(), count), outlet);
        }
    }

    /// The client `from` of `app`'s channel goes on as `to`, a connection of the same core (a
    /// Socket.IO polling session upgraded to WebSocket): presence and the form counts follow,
    /// and nobody hears of it (no `onLeave`, no `onAdd`). False if `from` no longer held its
    /// clientId (replaced meanwhile); it is a member still, and leaves as `to`.
    pub fn rehome_client(
        &self,
        app: AppId,
        key: PresenceKey,
        from: (ConnId, WireForm),
        to: (ConnId, WireForm),
    ) -> bool {
        self.channels.get(app).rehome(key, from, to)
    }

    /// The management session `from` of `app` goes on as `to`.
    pub fn rehome_manager(&self, app: AppId, from: ConnId, to: ConnId) {
        self.channels.get(app).rehome_manager(from, to);
    }

    /// `conn` connects as `client_id` of `app` (an MQTT CONNECT, before it enters the channel):
    /// an online holder of the clientId loses it at once (managers hear `onLeave`, so that it
    /// neither counts nor parks a session when its close comes) and is kicked as replaced; or,
    /// with `duplicate = "refuse"`, the connection is refused (`false`).
    pub fn take_over(
        &self,
        app: AppId,
        client_id: &str,
        conn: ConnId,
        outlet: &mut dyn Outlet,
    ) -> bool {
        let channel = self.channels.get(app);
        let refuse = self.policy.duplicate == DuplicatePolicy::Refuse;
        let Some(holder) = channel.find(client_id).filter(|&h| h != conn) else {
            // Held on another node: that node replaces its own when this one's join arrives.
            return !(refuse && channel.remote_holder(client_id).is_some());
        };
        if refuse {
            return false;
        }
        if let Some(count) = channel.evict(client_id, holder) {
            self.forward(|| Forwarded::Left { app, client_id: client_id.into() });
            self.notify_managers(app, ON_LEAVE, &body::on_leave(client_id, count), outlet);
        }
        outlet.kick(holder, KickReason::Replaced);
        true
    }

    /// The clientId that `conn`, a client of `app`, holds under `key` (`None` once replaced).
    pub fn client_id_of(&self, app: AppId, key: PresenceKey, conn: ConnId) -> Option<ClientId> {
        self.channels.get(app).client_id_of(key, conn)
    }

    /// `conn` becomes a management session of `app` (the edge authenticated it); returns who is
    /// online (at most [`USERS_IN_ENTER_RESPONSE`]) and how many.
    pub fn enter_manager(&self, app: AppId, conn: ConnId) -> (Vec<ClientId>, usize) {
        let channel = self.channels.get(app);
        channel.add_manager(conn);
        channel.users_within(USERS_IN_ENTER_RESPONSE, self.policy.manager_list_bytes)
    }

    pub fn leave_manager(&self, app: AppId, conn: ConnId) {
        self.channels.get(app).remove_manager(conn);
    }

    /// Pushes `onMsg {msg}` to every client of `app`'s channel; returns how many it reached. In a
    /// cluster the push goes on to the other nodes, and their clients count while the bus is up.
    pub fn push_all(
        &self,
        edge: Edge,
        app: AppId,
        msg: &Value,
        now: Instant,
        outlet: &mut dyn Outlet,
    ) -> Result<usize, Refusal> {
        self.check_running()?;
        self.check_live(app)?;
        let (push, frame) = self.channel_push(app, msg)?;
        self.take_token(app, now)?;
        if edge != Edge::Cluster {
            self.forward(|| Forwarded::Push { app, msg: forward::json(msg) });
        }
        let recipients = self.broadcast(app, &push, frame, now, outlet);
        self.count_push(edge, app);
        // Clients online on other nodes are counted as reached while the bus is up: the push is
        // on its way to them.
        let remote = if self.bus_up() { self.channels.get(app).remote_count() } else { 0 };
        Ok(recipients + remote)
    }

    /// A push to `app`'s channel that another node accepted (its checks and its rate token were
    /// taken there): to this node's members, never forwarded again.
    pub fn push_all_from_cluster(
        &self,
        app: AppId,
        msg: &Value,
        now: Instant,
        outlet: &mut dyn Outlet,
    ) -> Result<usize, Refusal> {
        self.check_running()?;
        let (push, frame) = self.channel_push(app, msg)?;
        let recipients = self.broadcast(app, &push, frame, now, outlet);
        self.count_push(Edge::Cluster, app);
        Ok(recipients)
    }

    /// `onMsg {msg}` to `app`'s channel, and its frame in the forms the members use.
    fn channel_push(&self, app: AppId, msg: &Value) -> Result<(Push, Frame), Refusal> {
        let push = self
            .compose(app, ON_MSG, &body::on_msg(msg))?
            .with_mqtt(topic::channel(self.apikey(app)), mqtt_payload(msg));
        let frame = self.encode(&push, self.channels.get(app))?;
        Ok((push, frame))
    }

    /// Hands `frame` to every core with members of `app`'s channel, and `push` to its away MQTT
    /// sessions; how many that reached.
    fn broadcast(
        &self,
        app: AppId,
        push: &Push,
        frame: Frame,
        now: Instant,
        outlet: &mut dyn Outlet,
    ) -> usize {
        let channel = self.channels.get(app);
        let frame = frame.stamped(now);
        let mut recipients = 0;
        for (core, members) in channel.cores_with_members() {
            recipients += members;
            outlet.broadcast(core, app, frame.clone());
        }
        if let Some(mqtt) = &push.mqtt {
            recipients += self.parked.offer_all(app, mqtt, now);
        }
        recipients
    }

    /// Pushes `onMsg {msg}` to the client `client_id` of `app` (404 if it is not online).
    pub fn push_to(
        &self,
        edge: Edge,
        app: AppId,
        client_id: &str,
        msg: &Value,
        now: Instant,
        outlet: &mut dyn Outlet,
    ) -> Result<usize, Refusal> {
        self.check_running()?;
        self.check_live(app)?;
        let push = self
            .compose(app, ON_MSG, &body::on_msg(msg))?
            .with_mqtt(topic::client(self.apikey(app), client_id), mqtt_payload(msg));
        // Its one recipient's core encodes it; whichever form that is, it must fit.
        self.encoder.check(&push).map_err(cannot_encode)?;
        let Some(target) = self.channels.get(app).find(client_id) else {
            if let Some(node) = self.channels.get(app).remote_holder(client_id) {
                if !self.bus_up() {
                    return Err(Refusal::new(503, "the cluster bus is down")
                        .with_detail(format!("{} is online on node {node}", quoted(client_id))));
                }
                self.take_token(app, now)?;
                let (client_id, msg) = (client_id.into(), forward::json(msg));
                self.forward(|| Forwarded::PushTo { app, node, client_id, msg });
                self.count_push(edge, app);
                return Ok(1);
            }
            // An MQTT client away with a persistent session gets it when it comes back.
            let away = push.mqtt.as_ref().filter(|_| self.parked.holds(app, client_id, now));
            if let Some(mqtt) = away {
                self.take_token(app, now)?;
                // Taken back in between: the client is connecting, not online yet.
                if self.parked.offer_to(app, client_id, mqtt, now) {
                    self.count_push(edge, app);
                    return Ok(1);
                }
            }
            return Err(Refusal::new(404, "no such client")
                .with_detail(format!("{} is not online", quoted(client_id))));
        };
        self.take_token(app, now)?;
        outlet.deliver(target, push);
        self.count_push(edge, app);
        Ok(1)
    }

    /// Keeps `session` for `client_id` of `app` while its MQTT client is away; `false` when the
    /// app has no room for another away session.
    pub fn park(&self, app: AppId, client_id: &str, session: ParkedSession, now: Instant) -> bool {
        let max_clients = self.apps.get(app).and_then(|settings| settings.max_clients);
        self.parked.park(app, client_id, session, max_clients, now)
    }

    /// Takes back `client_id`'s away session, if it has one that has not expired at `now`.
    pub fn unpark(&self, app: AppId, client_id: &str, now: Instant) -> Option<ParkedSession> {
        self.parked.take(app, client_id, now)
    }

    /// Keeps `msg` as `app`'s retained MQTT message (what a new MQTT subscriber receives first);
    /// `None` clears it.
    pub fn retain(&self, app: AppId, msg: Option<&Value>) {
        if self.apps.is_live(app) {
            self.retained.set(app, msg.map(mqtt_payload).unwrap_or_default());
        }
    }

    /// `app`'s retained MQTT message: the payload a new subscriber receives first.
    pub fn retained(&self, app: AppId) -> Option<Bytes> {
        self.retained.get(app)
    }

    /// A page of `app`'s online clientIds in sorted order after `cursor`, and the total.
    pub fn clients(
        &self,
        app: AppId,
        cursor: Option<&str>,
        limit: usize,
    ) -> (Vec<ClientId>, usize) {
        self.channels.get(app).users_after(cursor, limit)
    }

    /// The push of `body` on `route` to `app`'s sessions, with the app's protos (400 naming the
    /// field if its proto of the route cannot hold the body).
    fn compose(&self, app: AppId, route: &'static str, body: &Value) -> Result<Push, Refusal> {
        Push::with_protos(route, body, &self.protos.of(app).server).map_err(|e| {
            Refusal::bad_request(format!("the push does not fit the {route} proto: {e}"))
        })
    }

    /// The push encoded in the forms the channel's members use.
    fn encode(&self, push: &Push, channel: &crate::channel::Channel) -> Result<Frame, Refusal> {
        self.encoder.encode(push, channel.forms_in_use()).map_err(cannot_encode)
    }

    fn take_token(&self, app: AppId, now: Instant) -> Result<(), Refusal> {
        self.rates.take(app, now).map_err(|exceeded| Refusal {
            retry_after: Some(exceeded.retry_after),
            ..Refusal::new(
                429,
                format!("push rate exceeded: this app may push {} times per second", exceeded.rate),
            )
        })
    }

    /// Pushes `route` with `body` to every management session of `app`, each encoded by its own
    /// core (a handful of sessions, so the lock is held only to copy their ids).
    fn notify_managers(
        &self,
        app: AppId,
        route: &'static str,
        body: &Value,
        outlet: &mut dyn Outlet,
    ) {
        let managers = self.channels.get(app).managers_snapshot();
        if managers.is_empty() {
            return;
        }
        let push = match self.compose(app, route, body) {
            Ok(push) => push,
            Err(refusal) => {
                // Cannot happen: the push routes' protos were checked against these bodies.
                tracing::warn!(%app, route, msg = %refusal.msg, "management push not sent");
                return;
            }
        };
        for manager in managers {
            outlet.deliver(manager, push.clone());
        }
    }
}

/// What an MQTT client receives of a push's `msg`: its JSON.
fn mqtt_payload(msg: &Value) -> Bytes {
    // A `Value` always serializes: its keys are strings.
    Bytes::from(serde_json::to_vec(msg).unwrap_or_default())
}

fn cannot_encode(e: crate::protocol::ProtocolError) -> Refusal {
    Refusal::bad_request(format!("push cannot be encoded: {e}"))
}

mod admin;
mod cluster;
mod reload;
#[cfg(test)]
mod tests;

pub use admin::{AppFigures, Located};
pub use reload::REMOVED_REASON;

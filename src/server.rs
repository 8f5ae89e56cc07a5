//! Starting and stopping a whole shaddock server in-process: the reactors, what they share, and
//! the control thread (HTTP push API, metrics, management page).
//!
//! The daemon (`main.rs`) and the integration tests both start servers through [`Server`].

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use crate::cluster::{self, ClusterHandle, ClusterSettings};
use crate::config::Config;
use crate::control::{self, ControlHandle, ControlSettings};
use crate::push::ProtoSets;
use crate::reactor::Reactor;
use crate::reactor::inbox::{Command, Inbox, Inboxes};
use crate::reactor::shared::Shared;
use crate::reactor::sys::{self, Backend, Driver, Seed};
use crate::session::PomeloSettings;
use crate::stats::{KickReason, Snapshot};
use crate::tls::certificates::{self, Certificates};

/// A running server: its reactors, listening on the client port (and on `mqtt.listen` when
/// set), and the control thread, listening on the control port.
#[derive(Debug)]
pub struct Server {
    client_addr: SocketAddr,
    mqtt_addr: Option<SocketAddr>,
    control_addr: SocketAddr,
    shared: Arc<Shared>,
    backend: Backend,
    threads: Vec<JoinHandle<io::Result<()>>>,
    /// `None` only once [`Server::shutdown`] has stopped it (or if it failed to start).
    control: Option<ControlHandle>,
    drain_secs: u32,
    /// The certificates served (`client.tls`, `control.tls`), for [`Server::reload_certificates`].
    certificates: Vec<(&'static str, Arc<Certificates>)>,
    /// The cluster bus, when `[cluster]` is set; `None` once stopped.
    cluster: Option<ClusterHandle>,
    /// `control.tls` as rustls runs it, for the control thread.
    control_tls: Option<Arc<rustls::ServerConfig>>,
    /// The configuration it runs with: the start's, with the apps of the last reload.
    config: std::sync::Mutex<Config>,
}

/// The TLS listeners' certificates and rustls configurations, loaded at start.
struct Tls {
    client: Option<crate::reactor::shared::ClientTls>,
    control: Option<Arc<rustls::ServerConfig>>,
    certificates: Vec<(&'static str, Arc<Certificates>)>,
}

impl Tls {
    /// Reads `client.tls` and `control.tls`; an error names the key and the file.
    fn load(config: &Config) -> Result<Tls, String> {
        let mut tls = Tls { client: None, control: None, certificates: Vec::new() };
        if let Some(client) = &config.client.tls {
            let certs = Certificates::load(&client.cert, &client.key)
                .map_err(|e| format!("client.tls: {e}"))?;
            tls.client = Some(crate::reactor::shared::ClientTls {
                config: certificates::server_config(Arc::clone(&certs)),
                required: client.required,
                max_handshakes: client.max_handshakes_per_reactor,
            });
            tls.certificates.push(("client", certs));
        }
        if let Some(control) = &config.control.tls {
            let certs = Certificates::load(&control.cert, &control.key)
                .map_err(|e| format!("control.tls: {e}"))?;
            let https =
                certificates::https_config(Arc::clone(&certs), control.client_ca.as_deref())
                    .map_err(|e| format!("control.tls: {e}"))?;
            tls.control = Some(https);
            tls.certificates.push(("control", certs));
        }
        Ok(tls)
    }
}

/// A reactor thread's answer to "did your backend start?".
type Started = mpsc::Receiver<io::Result<()>>;

/// What a reactor thread starts from: its backend's seed and its inbox.
type ReactorSeed = (Seed, Arc<Inbox>);

impl Server {
    /// Checks what `config` names beyond its own text (the protos files), as a start would,
    /// without starting anything (`shaddock check`).
    pub fn check(config: &Config) -> Result<(), String> {
        let protos = ProtoSets::load(config).map_err(|e| e.to_string())?;
        PomeloSettings::from_config(config, &protos)?;
        cluster::check(config)?;
        Tls::load(config).map(drop)
    }

    /// Validates `config`, picks the reactors' backend (`backend`; `"auto"` probes io_uring and
    /// falls back to epoll), binds the client port and `mqtt.listen` when set (port 0 picks a
    /// free one) and starts one reactor thread per configured core, each accepting on both,
    /// then the control thread on `control.listen`.
    pub fn start(config: Config) -> io::Result<Server> {
        Server::start_with_probe(config, sys::probe_io_uring)
    }

    /// [`Server::start`] with another io_uring probe, so that a test can make it fail.
    pub fn start_with_probe(config: Config, probe: fn() -> io::Result<()>) -> io::Result<Server> {
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        config.validate().map_err(|e| invalid(e.to_string()))?;
        let open_files = crate::limits::raise_open_files();
        let cores = config.reactor_count();
        let backend = sys::resolve(config.backend, probe)?;
        let (listeners, client_addr, mqtt_addr) = bind_ports(&config, cores)?;
        let tls = Tls::load(&config).map_err(invalid)?;
        cluster::check(&config).map_err(invalid)?;
        let (seeds, inboxes) = seeds(backend, cores)?;
        let shared = Shared::new(&config, inboxes, conn_capacity(open_files, cores));
        let shared = shared.map_err(invalid)?.with_tls(tls.client);
        let (shared, bus_queue) = match &config.cluster {
            None => (shared, None),
            Some(cluster) => {
                let (forward, queue) = crate::push::forward::queue(cluster.max_queued_pushes);
                (shared.with_forward(forward), Some(queue))
            }
        };
        let shared = Arc::new(shared);
        let mut server = Server {
            client_addr,
            mqtt_addr,
            control_addr: config.control.listen,
            shared,
            backend,
            threads: Vec::with_capacity(cores),
            control: None,
            drain_secs: config.client.drain_secs,
            certificates: tls.certificates,
            cluster: None,
            control_tls: tls.control,
            config: std::sync::Mutex::new(config.clone()),
        };
        let started = server.spawn_reactors(seeds, listeners, config.pin_cores)?;
        server.wait_for_reactors(started)?;
        let backend = backend.as_str();
        let tls = match &server.shared.tls {
            None => "off",
            Some(tls) if tls.required => "required",
            Some(_) => "beside plain",
        };
        tracing::info!(
            reactors = cores,
            backend,
            tls,
            // A number (not `Some(20000)`); no limit is RLIM_INFINITY, as the kernel says it.
            open_files = open_files.unwrap_or(u64::MAX),
            "client port listening addr={client_addr}"
        );
        if let Some(mqtt_addr) = mqtt_addr {
            tracing::info!(reactors = cores, tls, "mqtt port listening addr={mqtt_addr}");
        }
        if let (Some(cluster), Some(queue)) = (&config.cluster, bus_queue) {
            let settings = ClusterSettings::from_config(cluster, client_addr.port());
            match cluster::start(settings, Arc::clone(&server.shared), queue) {
                Ok(handle) => server.cluster = Some(handle),
                Err(e) => {
                    server.abort();
                    return Err(io::Error::new(e.kind(), format!("cluster: {e}")));
                }
            }
        }
        server.start_control(&config)?;
        Ok(server)
    }

    /// One thread per core, pinned when asked, each building its backend from its seed and its
    /// listeners.
    fn spawn_reactors(
        &mut self,
        seeds: Vec<ReactorSeed>,
        listeners: Listeners,
        pin_cores: bool,
    ) -> io::Result<Vec<Started>> {
        let core_ids =
            if pin_cores { core_affinity::get_core_ids().unwrap_or_default() } else { Vec::new() };
        let mut started = Vec::with_capacity(seeds.len());
        for (core, (seed, listeners)) in seeds.into_iter().zip(listeners).enumerate() {
            let shared = Arc::clone(&self.shared);
            let pin = (!core_ids.is_empty()).then(|| core_ids[core % core_ids.len()]);
            let (ready, ready_rx) = mpsc::sync_channel(1);
            started.push(ready_rx);
            let thread = std::thread::Builder::new()
                .name(format!("reactor-{core}"))
                .spawn(move || run_reactor(core, pin, seed, listeners, shared, ready))?;
            self.threads.push(thread);
        }
        Ok(started)
    }

    /// Waits until every reactor's backend is up; stops the others if one failed.
    fn wait_for_reactors(&mut self, started: Vec<Started>) -> io::Result<()> {
        for ready in started {
            let result = ready.recv().unwrap_or_else(|_| Err(io::Error::other("reactor died")));
            if let Err(e) = result {
                self.abort();
                let backend = self.backend.as_str();
                return Err(io::Error::new(e.kind(), format!("{backend} backend: {e}")));
            }
        }
        Ok(())
    }

    fn start_control(&mut self, config: &Config) -> io::Result<()> {
        let settings = ControlSettings::from_config(config, self.client_addr);
        let shared = Arc::clone(&self.shared);
        let tls = self.control_tls.clone();
        match control::start(config.control.listen, shared, settings, tls) {
            Ok(control) => {
                self.control_addr = control.local_addr();
                self.control = Some(control);
                Ok(())
            }
            Err(e) => {
                self.abort();
                let listen = config.control.listen;
                Err(io::Error::new(e.kind(), format!("control port {listen}: {e}")))
            }
        }
    }

    /// Reads every TLS listener's certificate files again (SIGHUP): the next handshakes present
    /// the new chain, established connections keep theirs. A listener whose files fail keeps
    /// its old chain; the error names the file, and is logged.
    pub fn reload_certificates(&self) -> Result<(), String> {
        let mut failed = Vec::new();
        for (listener, certs) in &self.certificates {
            match certs.reload() {
                Ok(()) => tracing::info!(listener, "TLS certificates reloaded"),
                Err(e) => {
                    tracing::warn!(listener, error = %e, "TLS reload failed: serving the old certificates");
                    failed.push(format!("{listener}.tls: {e}"));
                }
            }
        }
        if failed.is_empty() { Ok(()) } else { Err(failed.join("; ")) }
    }

    /// Stops what started, at once, after a failed start.
    fn abort(&mut self) {
        self.stop(0);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }

    /// The address the client port is bound to (with the real port when the config said 0).
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The address `mqtt.listen` is bound to (with the real port when the config said 0), or
    /// `None` when it is not set.
    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.mqtt_addr
    }

    /// The address the control port is bound to (with the real port when the config said 0).
    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    /// The reactors' backend (`"auto"` resolved).
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Every counter, read now (the backend's gauges as last published, about once a second).
    pub fn stats(&self) -> Snapshot {
        self.shared.snapshot()
    }

    /// Open connections on each reactor, indexed by reactor.
    pub fn connections_per_reactor(&self) -> Vec<u64> {
        self.stats().reactors.iter().map(|r| r.connections()).collect()
    }

    /// How many connections were kicked with this reason (`"slow"`, `"heartbeat timeout"`, ...;
    /// `"protocol error"` counts every protocol error).
    pub fn kicks_total(&self, reason: &str) -> u64 {
        let Some(reason) = KickReason::ALL.into_iter().find(|r| r.as_str() == reason) else {
            return 0;
        };
        self.stats().kicks(reason)
    }

    /// Graceful drain: at once, the reactors stop accepting and start kicking every client with
    /// reason `"shutdown"` (spread over `client.drain_secs`) and the control port stops taking
    /// requests; then the control thread finishes its in-flight requests (at most
    /// `control::SHUTDOWN_GRACE`) and every reactor is joined. Nothing the control thread waits
    /// for delays the client port's stop.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop(self.drain_secs);
        if let Some(control) = self.control.as_mut() {
            control.stop_taking_requests();
        }
        let mut result = self.cluster.take().map_or(Ok(()), ClusterHandle::shutdown);
        if let Some(Err(e)) = self.control.take().map(ControlHandle::shutdown) {
            result = Err(e);
        }
        for thread in self.threads.drain(..) {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(_) => result = Err(io::Error::other("a reactor thread panicked")),
            }
        }
        result
    }

    fn stop(&self, drain_secs: u32) {
        self.shared.push.begin_shutdown();
        self.shared.inboxes.send_all(|| Command::Shutdown { drain_secs });
    }
}

/// Each reactor's listeners, one of each port: the client port's, then `mqtt.listen`'s when set.
type Listeners = Vec<Vec<TcpListener>>;

/// Binds the client port and `mqtt.listen` when set, one listener per reactor each; the
/// listeners by reactor and the addresses bound (port 0 resolved).
fn bind_ports(
    config: &Config,
    cores: usize,
) -> io::Result<(Listeners, SocketAddr, Option<SocketAddr>)> {
    let buffers = sys::SocketBuffers {
        send: config.client.send_buffer_bytes,
        receive: config.client.receive_buffer_bytes,
    };
    let unshared = |addr: SocketAddr| match config.client.share_port {
        true => Ok(()),
        false => sys::ensure_unshared(addr),
    };
    let listen = config.client.listen;
    unshared(listen)
        .map_err(|e| io::Error::new(e.kind(), format!("client.listen {listen}: {e}")))?;
    let client = sys::bind_listeners_with(config.client.listen, cores, buffers)?;
    let client_addr = client[0].local_addr()?;
    let mut listeners: Listeners = client.into_iter().map(|l| vec![l]).collect();
    let Some(listen) = config.mqtt.listen else {
        return Ok((listeners, client_addr, None));
    };
    let mqtt = unshared(listen)
        .and_then(|()| sys::bind_listeners_with(listen, cores, buffers))
        .map_err(|e| io::Error::new(e.kind(), format!("mqtt.listen {listen}: {e}")))?;
    let mqtt_addr = mqtt[0].local_addr()?;
    for (own, listener) in listeners.iter_mut().zip(mqtt) {
        own.push(listener);
    }
    Ok((listeners, client_addr, Some(mqtt_addr)))
}

/// Each reactor's backend seed and inbox, for a backend of `kind`, and all the inboxes.
fn seeds(kind: Backend, cores: usize) -> io::Result<(Vec<ReactorSeed>, Inboxes)> {
    let mut seeds = Vec::with_capacity(cores);
    let mut inboxes = Vec::with_capacity(cores);
    for _ in 0..cores {
        let (seed, waker) = sys::seed(kind)?;
        let inbox = Arc::new(Inbox::new(waker));
        inboxes.push(Arc::clone(&inbox));
        seeds.push((seed, inbox));
    }
    Ok((seeds, Inboxes::new(inboxes)))
}

/// A reactor thread: pins itself, builds its backend (a ring belongs to the thread that set it
/// up), says whether that worked, and runs until drained.
fn run_reactor(
    core: usize,
    pin: Option<core_affinity::CoreId>,
    (seed, inbox): (Seed, Arc<Inbox>),
    listeners: Vec<TcpListener>,
    shared: Arc<Shared>,
    ready: mpsc::SyncSender<io::Result<()>>,
) -> io::Result<()> {
    if let Some(id) = pin {
        core_affinity::set_for_current(id);
    }
    let sys = match Driver::new(seed, listeners) {
        Ok(sys) => sys,
        Err(e) => {
            let _ = ready.send(Err(io::Error::new(e.kind(), e.to_string())));
            return Err(e);
        }
    };
    let _ = ready.send(Ok(()));
    let result = Reactor::new(core, sys, inbox, shared).run();
    if let Err(e) = &result {
        tracing::error!(core, error = %e, "reactor stopped");
    }
    result
}

/// Connection slots each reactor reserves up front: its share of the open-file limit. The
/// reservation is address space, not memory: a page is touched only when connections arrive, and
/// the table never regrows (regrowing would leave the old table behind in the allocator).
fn conn_capacity(open_files: Option<u64>, reactors: usize) -> usize {
    const WITHOUT_LIMIT: u64 = 1 << 16;
    const MOST: u64 = 1 << 20;
    let files = open_files.unwrap_or(WITHOUT_LIMIT).min(MOST * reactors as u64);
    (files / reactors.max(1) as u64) as usize
}

impl Drop for Server {
    /// A server dropped without [`Server::shutdown`] kicks everyone at once and lets its
    /// reactors and its control thread finish in the background.
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.stop(0);
        }
    }
}

mod reload;

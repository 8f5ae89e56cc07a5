//! Starting and stopping a whole shaddock server in-process: the reactors, what they share, and
//! the control thread (HTTP push API, metrics, management page).
//!
//! The daemon (`main.rs`) and the integration tests both start servers through [`Server`].

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use crate::channel::Channels;
use crate::config::Config;
use crate::control::{self, ControlHandle, ControlSettings};
use crate::push::Apps;
use crate::reactor::Reactor;
use crate::reactor::inbox::{Command, Inbox};
use crate::reactor::stats::{KickReason, ReactorStats};
use crate::reactor::sys::{self, Backend, Driver};
use crate::shared::{Settings, Shared};

/// A running server: its reactors, listening on the client port, and the control thread,
/// listening on the control port.
#[derive(Debug)]
pub struct Server {
    client_addr: SocketAddr,
    control_addr: SocketAddr,
    shared: Arc<Shared>,
    backend: Backend,
    threads: Vec<JoinHandle<io::Result<()>>>,
    /// `None` only once [`Server::shutdown`] has stopped it (or if it failed to start).
    control: Option<ControlHandle>,
    drain_secs: u32,
}

impl Server {
    /// Validates `config`, picks the reactors' backend (`backend`; `"auto"` probes io_uring and
    /// falls back to epoll), binds the client port (port 0 picks a free one) and starts one
    /// reactor thread per configured core, then the control thread on `control.listen`.
    pub fn start(config: Config) -> io::Result<Server> {
        Server::start_with_probe(config, sys::probe_io_uring)
    }

    /// [`Server::start`] with another io_uring probe, so that a test can make it fail.
    pub fn start_with_probe(config: Config, probe: fn() -> io::Result<()>) -> io::Result<Server> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        let open_files = crate::limits::raise_open_files();
        let cores = config.reactor_count();
        let backend = sys::resolve(config.backend, probe)?;
        let listeners = sys::bind_listeners(config.client.listen, cores)?;
        let client_addr = listeners[0].local_addr()?;
        let mut seeds = Vec::with_capacity(cores);
        let mut inboxes = Vec::with_capacity(cores);
        for _ in 0..cores {
            let (seed, waker) = sys::seed(backend)?;
            inboxes.push(Arc::new(Inbox::new(waker)));
            seeds.push(seed);
        }
        let apps = Apps::from_config(&config.apps).map_err(invalid)?;
        let mut settings = Settings::from_config(&config).map_err(invalid)?;
        settings.conn_capacity = conn_capacity(open_files, cores);
        let shared = Arc::new(Shared {
            settings,
            channels: Channels::new(apps.len(), cores),
            apps,
            inboxes,
            stats: (0..cores).map(|_| ReactorStats::default()).collect(),
        });
        let core_ids = if config.pin_cores {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut threads = Vec::with_capacity(cores);
        let mut readiness = Vec::with_capacity(cores);
        for (core, (seed, listener)) in seeds.into_iter().zip(listeners).enumerate() {
            let inbox = Arc::clone(&shared.inboxes[core]);
            let shared = Arc::clone(&shared);
            let pin = (!core_ids.is_empty()).then(|| core_ids[core % core_ids.len()]);
            let (ready, ready_rx) = mpsc::sync_channel(1);
            readiness.push(ready_rx);
            let thread =
                std::thread::Builder::new().name(format!("reactor-{core}")).spawn(move || {
                    if let Some(id) = pin {
                        core_affinity::set_for_current(id);
                    }
                    // The backend is built here: a ring belongs to the thread that set it up.
                    let sys = match Driver::new(seed, listener) {
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
                })?;
            threads.push(thread);
        }
        let mut server = Server {
            client_addr,
            control_addr: config.control.listen,
            shared,
            backend,
            threads,
            control: None,
            drain_secs: config.client.drain_secs,
        };
        for ready in readiness {
            let started = ready.recv().unwrap_or_else(|_| Err(io::Error::other("reactor died")));
            if let Err(e) = started {
                server.drain_secs = 0;
                let _ = server.shutdown();
                let backend = backend.as_str();
                return Err(io::Error::new(e.kind(), format!("{backend} backend: {e}")));
            }
        }
        let backend = backend.as_str();
        tracing::info!(
            reactors = cores,
            backend,
            ?open_files,
            "client port listening addr={client_addr}"
        );
        let settings = ControlSettings::from_config(&config, client_addr);
        match control::start(config.control.listen, Arc::clone(&server.shared), settings) {
            Ok(control) => {
                server.control_addr = control.local_addr();
                server.control = Some(control);
                Ok(server)
            }
            Err(e) => {
                server.drain_secs = 0;
                let _ = server.shutdown();
                let listen = config.control.listen;
                Err(io::Error::new(e.kind(), format!("control port {listen}: {e}")))
            }
        }
    }

    /// The address the client port is bound to (with the real port when the config said 0).
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The address the control port is bound to (with the real port when the config said 0).
    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    /// The reactors' backend (`"auto"` resolved).
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The io_uring receive-buffer gauges, summed over the reactors: (buffers in the rings,
    /// buffers the kernel may fill now, receives that found a ring empty, sends in flight).
    /// Published about once a second; all 0 on epoll.
    pub fn ring_stats(&self) -> (u64, u64, u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.shared.stats.iter().fold((0, 0, 0, 0), |(t, f, x, s), st| {
            (
                t + st.recv_buffers.load(Relaxed),
                f + st.recv_buffers_free.load(Relaxed),
                x + st.recv_buffer_exhaustions.load(Relaxed),
                s + st.sends_in_flight.load(Relaxed),
            )
        })
    }

    /// Open connections on each reactor, indexed by reactor.
    pub fn connections_per_reactor(&self) -> Vec<u64> {
        self.shared.stats.iter().map(|s| s.connections()).collect()
    }

    /// How many connections were kicked with this reason (`"slow"`, `"heartbeat timeout"`, ...;
    /// `"protocol error"` counts every protocol error).
    pub fn kicks_total(&self, reason: &str) -> u64 {
        let Some(reason) = KickReason::ALL.into_iter().find(|r| r.as_str() == reason) else {
            return 0;
        };
        self.shared.stats.iter().map(|s| s.kicks(reason)).sum()
    }

    /// Graceful drain: stop the control port (no new HTTP pushes), stop accepting, kick every
    /// client with reason `"shutdown"` spread over `client.drain_secs`, then join every reactor.
    pub fn shutdown(mut self) -> io::Result<()> {
        let mut result = self.control.take().map_or(Ok(()), ControlHandle::shutdown);
        self.stop(self.drain_secs);
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
        for inbox in &self.shared.inboxes {
            inbox.send(Command::Shutdown { drain_secs });
        }
    }
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

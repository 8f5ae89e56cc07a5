//! A reload of a running server (SIGHUP, [`Server::reload`]): the apps and the TLS
//! certificates change without dropping a connection; what only a start reads is named in the
//! log as waiting for the next start.
//!
//! # Invariants
//! - **All or nothing for the apps**: a reload the push service cannot apply (no room for more
//!   apps, an apikey twice), or that changes an app's protos (read at start only), changes no
//!   app; the caller logs why and the server goes on as it was.
//! - **Nobody is dropped** but the sessions of a removed app (kicked "app removed"); changed
//!   apps keep their clients and management sessions.

use std::time::Instant;

use super::Server;
use crate::config::Config;
use crate::push::apps::AppsChange;

/// What a reload did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// The apikeys added, changed and removed.
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Sections whose changes wait for the next start (`client`, `admission`, ...).
    pub need_restart: Vec<&'static str>,
    /// Listeners whose certificate files could not be read (they keep the old chain).
    pub certificate_errors: Vec<String>,
}

impl Server {
    /// Applies `new`: its apps (added, changed, removed) and every TLS listener's certificate
    /// files; any other setting that differs from the running one is named in
    /// [`Reloaded::need_restart`]. An error says why no app changed.
    pub fn reload(&self, new: &Config) -> Result<Reloaded, String> {
        // The certificates first, whatever becomes of the apps: a certificate rotation is not
        // held up by a mistake elsewhere in the file (each listener logs its own outcome).
        let certificate_errors = self.reload_certificates().err().into_iter().collect();
        let mut running = self.config.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.check_protos(new)?;
        let push = &self.shared.push;
        let change = push.reload_apps(&new.apps, Instant::now(), &mut self.shared.outlet())?;
        let names = |apps: &[crate::ids::AppId]| -> Vec<String> {
            apps.iter().map(|&app| push.apikey(app).to_owned()).collect()
        };
        let AppsChange { added, changed, removed } = &change;
        let reloaded = Reloaded {
            added: names(added),
            changed: names(changed),
            removed: names(removed),
            need_restart: need_restart(&running, new),
            certificate_errors,
        };
        running.apps = new.apps.clone();
        Ok(reloaded)
    }

    /// Protos are read at start only: an apikey the server has known (configured now, or
    /// removed by an earlier reload) keeps the protos files it started with, and an app new to
    /// the server has none of its own.
    fn check_protos(&self, new: &Config) -> Result<(), String> {
        for (i, app) in new.apps.iter().enumerate() {
            let same = match self.shared.push.known_app(&app.apikey) {
                Some(known) => known.protos_match(app),
                None => !app.has_own_protos(),
            };
            if !same {
                return Err(format!(
                    "apps[{i}] ({}): protos are read at start only: restart to change them",
                    app.apikey
                ));
            }
        }
        Ok(())
    }
}

/// The sections of `new` that differ from `running` beyond what a reload applies.
fn need_restart(running: &Config, new: &Config) -> Vec<&'static str> {
    let mut sections = Vec::new();
    let mut differs = |name: &'static str, changed: bool| {
        if changed {
            sections.push(name);
        }
    };
    differs("reactors", running.reactors != new.reactors);
    differs("backend", running.backend != new.backend);
    differs("pin_cores", running.pin_cores != new.pin_cores);
    differs("client", running.client != new.client);
    differs("control", running.control != new.control);
    differs("admission", running.admission != new.admission);
    differs("mqtt", running.mqtt != new.mqtt);
    differs("socketio", running.socketio != new.socketio);
    differs("cluster", running.cluster != new.cluster);
    differs("log", running.log != new.log);
    sections
}

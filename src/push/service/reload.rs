//! A reload of the apps (SIGHUP): the push service's side of it.
//!
//! New apps are open at once; changed ones take their new secret, limits, rate and client key
//! for the next request (a changed rate starts with a full bucket); a removed app's clients and
//! management sessions on this node are kicked with [`REMOVED_REASON`], its away MQTT sessions
//! and retained message dropped, and its apikey is unknown from then on.

use std::time::Instant;

use bytes::Bytes;

use super::PushService;
use crate::config::AppConfig;
use crate::push::Outlet;
use crate::push::apps::AppsChange;

/// The kick reason of the sessions of an app a reload removed.
pub const REMOVED_REASON: &str = "app removed";

impl PushService {
    /// Makes `configs` the apps served from `now`; effects on the removed apps' connections go
    /// to `outlet`. Nothing changes if it fails (the reason says why).
    pub fn reload_apps(
        &self,
        configs: &[AppConfig],
        now: Instant,
        outlet: &mut dyn Outlet,
    ) -> Result<AppsChange, String> {
        let change = self.apps.reload(configs)?;
        for &app in change.added.iter().chain(&change.changed) {
            let rate = self.apps.get(app).and_then(|settings| settings.push_rate_per_sec);
            self.rates.set(app, rate, now);
        }
        for &app in &change.removed {
            self.rates.set(app, None, now);
            self.retained.set(app, Bytes::new());
            self.parked.clear(app);
            let channel = self.channels.get(app);
            for conn in channel.local_conns().into_iter().chain(channel.managers_snapshot()) {
                outlet.disconnect(conn, REMOVED_REASON.into());
            }
        }
        Ok(change)
    }
}

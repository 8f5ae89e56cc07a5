//! Where the push service's effects on connections go: the reactors that hold them.
//!
//! The push service never touches a connection. What it decides for connections (a broadcast to
//! a core's members, one push to one connection, a kick) it hands to an [`Outlet`]: the
//! reactors' inboxes from the control thread, the reactor's own queue (or another core's inbox)
//! from a reactor. Tests record them.

use super::frame::{Frame, Push};
use crate::ids::{AppId, ConnId};
use crate::stats::KickReason;

/// A sink for the push service's effects, each bound for the core that holds the connection.
pub trait Outlet {
    /// Write `frame` to every local member of `app`'s channel on `core`.
    fn broadcast(&mut self, core: usize, app: AppId, frame: Frame);
    /// Write `push` to one connection, encoded by its core in the connection's own form, if the
    /// connection still exists.
    fn deliver(&mut self, conn: ConnId, push: Push);
    /// Kick one connection with `reason`, if it still exists.
    fn kick(&mut self, conn: ConnId, reason: KickReason);
    /// Kick one connection as [`KickReason::Disconnected`] with the caller's `text` (the admin
    /// API's disconnect), if it still exists.
    fn disconnect(&mut self, conn: ConnId, text: Box<str>);
}

/// An outlet that keeps what it is handed, for tests (and the fuzz targets).
#[cfg(any(test, feature = "fuzzing"))]
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub broadcasts: Vec<(usize, AppId, Frame)>,
    pub deliveries: Vec<(ConnId, Push)>,
    pub kicks: Vec<(ConnId, KickReason)>,
    pub disconnects: Vec<(ConnId, Box<str>)>,
}

#[cfg(any(test, feature = "fuzzing"))]
impl Outlet for Recorder {
    fn broadcast(&mut self, core: usize, app: AppId, frame: Frame) {
        self.broadcasts.push((core, app, frame));
    }

    fn deliver(&mut self, conn: ConnId, push: Push) {
        self.deliveries.push((conn, push));
    }

    fn kick(&mut self, conn: ConnId, reason: KickReason) {
        self.kicks.push((conn, reason));
    }

    fn disconnect(&mut self, conn: ConnId, text: Box<str>) {
        self.disconnects.push((conn, text));
    }
}

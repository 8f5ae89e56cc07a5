//! `/metrics` per app: each app's clients and management sessions on this node, and the pushes
//! sent and clients kicked here, labelled `app` (the apikey). One series per app and family, so
//! the cardinality is the number of configured apps.

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::push::{AppFigures, PushService};

/// A family: its name, its help, and its number of an app's figures.
type Family = (&'static str, &'static str, fn(&AppFigures) -> u64);

pub(super) fn encode(push: &PushService, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let apps: Vec<(&str, AppFigures)> =
        push.live_apps().into_iter().map(|app| (push.apikey(app), push.app_figures(app))).collect();
    let gauges: [Family; 2] = [
        ("shaddock_app_clients", "Online clients of the app on this node.", |f| {
            f.local_clients as u64
        }),
        ("shaddock_app_managers", "Management sessions of the app on this node.", |f| {
            f.managers as u64
        }),
    ];
    for (name, help, value) in gauges {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (apikey, figures) in &apps {
            ConstGauge::new(value(figures)).encode(family.encode_family(&[("app", *apikey)])?)?;
        }
    }
    let counters: [Family; 2] = [
        (
            "shaddock_app_pushes",
            "Pushes this node sent to the app's channel or to one of its clients.",
            |f| f.pushes,
        ),
        ("shaddock_app_kicks", "The app's clients kicked on this node, for any reason.", |f| {
            f.kicks
        }),
    ];
    for (name, help, value) in counters {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (apikey, figures) in &apps {
            ConstCounter::new(value(figures)).encode(family.encode_family(&[("app", *apikey)])?)?;
        }
    }
    Ok(())
}

//! `/metrics`: `shaddock_push_fanout_seconds`, the histogram of each reactor's fan-out times
//! (from a push accepted to its last local member's write handed to the backend), labelled
//! `reactor`.

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::stats::Snapshot;

pub(super) fn encode(stats: &Snapshot, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let mut family = encoder.encode_descriptor(
        "shaddock_push_fanout_seconds",
        "Per reactor: from a push accepted to its last local member's write handed to the backend.",
        None,
        MetricType::Histogram,
    )?;
    for (core, r) in stats.reactors.iter().enumerate() {
        let reactor = core.to_string();
        let fanout = &r.fanout;
        let labels = [("reactor", reactor.as_str())];
        let mut metric = family.encode_family(&labels)?;
        let sum = fanout.sum_micros as f64 / 1e6;
        metric.encode_histogram::<NoLabelSet>(sum, fanout.count(), &fanout.buckets(), None)?;
    }
    Ok(())
}

//! The process's own figures on `/metrics`, read from `/proc` at scrape time: the build
//! (`shaddock_build_info{version, commit}`), CPU time, and open and maximum file descriptors
//! (the first limit a push gateway meets: one connection is one descriptor), named as the
//! Prometheus client libraries name them so that stock dashboards and alerts work.

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Writes the process's metrics; a figure `/proc` does not give is left out.
pub(super) fn encode(encoder: &mut DescriptorEncoder) -> fmt::Result {
    let labels = [("version", env!("CARGO_PKG_VERSION")), ("commit", crate::COMMIT)];
    let mut family = encoder.encode_descriptor(
        "shaddock_build_info",
        "The build: its version and commit (always 1).",
        None,
        MetricType::Gauge,
    )?;
    ConstGauge::new(1).encode(family.encode_family(&labels)?)?;
    if let Some(seconds) = cpu_seconds() {
        ConstCounter::new(seconds).encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time the process has used, seconds.",
            None,
            MetricType::Counter,
        )?)?;
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        ConstGauge::new(fds.count() as i64).encode(encoder.encode_descriptor(
            "process_open_fds",
            "File descriptors open (client connections, listeners, the rest).",
            None,
            MetricType::Gauge,
        )?)?;
    }
    if let Some(max) = rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
        ConstGauge::new(max as i64).encode(encoder.encode_descriptor(
            "process_max_fds",
            "The open-file limit in force: past it, new connections are refused.",
            None,
            MetricType::Gauge,
        )?)?;
    }
    Ok(())
}

fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let ticks = cpu_ticks(&stat)?;
    Some(ticks as f64 / rustix::param::clock_ticks_per_second() as f64)
}

/// utime + stime from `/proc/self/stat` (fields 14 and 15, counted after the `(comm)`, which may
/// hold spaces and parentheses).
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_a_command_name_with_spaces() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 25 17 0 0 20 0 \
                    3 0 555 1000 200";
        assert_eq!(cpu_ticks(stat), Some(42));
        assert_eq!(cpu_ticks("garbage"), None);
        assert!(cpu_seconds().is_some(), "this process's own");
    }
}

//! Memory readings for the idle phase: the server's resident set (`/proc/PID/status` VmRSS) and
//! the kernel's memory for sockets (`/proc/meminfo` Slab, `/proc/net/sockstat` `TCP: ... mem`).
//!
//! Readings are taken before the connect phase and at the end of the idle phase; the growth per
//! connection is their difference over the connections held. On loopback the kernel figures
//! cover both ends of every connection (the server's socket and the tool's), and anything else the
//! machine did meanwhile: they are an upper bound for one server-side socket.

use serde::{Deserialize, Serialize};

/// The page size `sockstat`'s `mem` counts in.
const PAGE: u64 = 4096;

/// One set of readings; a figure that could not be read is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    /// The server's VmRSS, bytes, summed over its processes (only with `--server-pid`).
    pub server_rss: Option<u64>,
    /// `Slab:` from /proc/meminfo, bytes.
    pub slab: Option<u64>,
    /// `TCP: ... mem` from /proc/net/sockstat, in bytes (it counts pages).
    pub tcp_mem: Option<u64>,
    /// `TCP: inuse` from /proc/net/sockstat.
    pub tcp_inuse: Option<u64>,
}

impl Reading {
    /// Reads everything now; `server_pids` may be empty (no RSS then), or name the several
    /// processes of one server (a cluster's nodes), whose RSS is summed.
    pub fn take(server_pids: &[u32]) -> Reading {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let rss = |pid: &u32| {
            read(&format!("/proc/{pid}/status")).as_deref().and_then(|s| kb_field(s, "VmRSS:"))
        };
        let rss: Option<Vec<u64>> = server_pids.iter().map(rss).collect();
        let meminfo = read("/proc/meminfo");
        let sockstat = read("/proc/net/sockstat");
        Reading {
            server_rss: rss.filter(|r| !r.is_empty()).map(|r| r.iter().sum()),
            slab: meminfo.as_deref().and_then(|s| kb_field(s, "Slab:")),
            tcp_mem: sockstat
                .as_deref()
                .and_then(|s| sockstat_field(s, "mem"))
                .map(|pages| pages * PAGE),
            tcp_inuse: sockstat.as_deref().and_then(|s| sockstat_field(s, "inuse")),
        }
    }
}

/// Growth per connection between two readings, bytes (may be negative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PerConn {
    /// Server RSS growth per connection.
    pub server_rss: Option<f64>,
    /// Slab growth per connection (both ends of the loopback connection).
    pub slab: Option<f64>,
    /// TCP socket memory growth per connection (both ends).
    pub tcp_mem: Option<f64>,
}

/// `(after - before) / conns` for each figure both readings have.
pub fn per_conn(before: &Reading, after: &Reading, conns: u64) -> PerConn {
    let each = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) if conns > 0 => Some((b as f64 - a as f64) / conns as f64),
        _ => None,
    };
    PerConn {
        server_rss: each(before.server_rss, after.server_rss),
        slab: each(before.slab, after.slab),
        tcp_mem: each(before.tcp_mem, after.tcp_mem),
    }
}

/// A `Key:   1234 kB` line of /proc/PID/status or /proc/meminfo, in bytes.
pub fn kb_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let mut words = line[key.len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => Some(value * 1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// A field of the `TCP:` line of /proc/net/sockstat (`inuse`, `orphan`, `tw`, `alloc`, `mem`).
pub fn sockstat_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("TCP:"))?;
    let words: Vec<&str> = line.split_whitespace().skip(1).collect();
    words
        .chunks(2)
        .find(|pair| pair.first() == Some(&key))
        .and_then(|pair| pair.get(1)?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tshaddock\nVmPeak:\t  30000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
    const MEMINFO: &str =
        "MemTotal:       24000000 kB\nSlab:             286396 kB\nSReclaimable:     100 kB\n";
    const SOCKSTAT: &str =
        "sockets: used 18\nTCP: inuse 2 orphan 0 tw 11 alloc 7 mem 178\nUDP: inuse 0 mem 3\n";

    #[test]
    fn parses_proc_files() {
        assert_eq!(kb_field(STATUS, "VmRSS:"), Some(12_345 * 1024));
        assert_eq!(kb_field(STATUS, "Threads:"), Some(3));
        assert_eq!(kb_field(MEMINFO, "Slab:"), Some(286_396 * 1024));
        assert_eq!(kb_field(MEMINFO, "Missing:"), None);
        assert_eq!(sockstat_field(SOCKSTAT, "mem"), Some(178));
        assert_eq!(sockstat_field(SOCKSTAT, "inuse"), Some(2));
        assert_eq!(sockstat_field(SOCKSTAT, "tw"), Some(11));
        assert_eq!(sockstat_field(SOCKSTAT, "nope"), None);
    }

    #[test]
    fn growth_per_connection() {
        let before = Reading {
            server_rss: Some(1_000_000),
            slab: Some(5_000_000),
            tcp_mem: Some(4096),
            tcp_inuse: Some(2),
        };
        let after = Reading {
            server_rss: Some(3_850_000),
            slab: Some(4_000_000),
            tcp_mem: None,
            tcp_inuse: Some(38_002),
        };
        let g = per_conn(&before, &after, 19_000);
        assert_eq!(g.server_rss, Some(150.0));
        assert!(g.slab.unwrap() < 0.0);
        assert_eq!(g.tcp_mem, None);
        assert_eq!(per_conn(&before, &after, 0), PerConn::default());
    }

    #[test]
    fn reads_this_machine() {
        let me = std::process::id();
        let r = Reading::take(&[me]);
        let one = r.server_rss.unwrap();
        assert!(one > 0);
        let twice = Reading::take(&[me, me]).server_rss.unwrap();
        assert!(twice >= one && twice <= 2 * one + (8 << 20), "summed: {one} then {twice}");
        assert_eq!(Reading::take(&[]).server_rss, None);
        assert!(r.slab.is_some() && r.tcp_inuse.is_some() && r.tcp_mem.is_some());
    }
}

//! The coordinator: starts the fleet of loops and the publisher, runs the phases in order, each
//! bounded in time, prints the progress line, and returns the [`Summary`].
//!
//! # Bounds
//! Every wait has a deadline: the connect phase `--connect-secs`, each push `--settle-ms`, each
//! sustained step twice `--step-secs` plus the settle time, churn `--churn-secs` plus the settle
//! time, and the whole run `--max-secs` (a loop also stops by itself past it).

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::cli::{MqttPublisher, Options, Proto, SioTransport, Transport};
use crate::clock::now_ns;
use crate::fleet::Fleet;
use crate::latency::Latency;
use crate::phase::merge;
use crate::probe::{Reading, per_conn};
use crate::publisher::{Dialect, Publisher};
use crate::report::{Command, Envelope, PhaseKind, PhaseSpec, PhaseStats, Progress, Report};
use crate::summary::{
    BroadcastResult, ChurnResult, ConnectResult, IdleResult, StepResult, Summary, SustainedResult,
    TlsResult, median,
};
use crate::sustain::{StepOutcome, judge, rates};

/// How long loops (and worker processes) get to start and to stop.
const START_STOP: Duration = Duration::from_secs(15);
/// How long a loop gets to answer `Begin` or `End`.
const ANSWER: Duration = Duration::from_secs(30);

/// Runs every phase `opts` asks for; `exe` is the conn-flood binary, needed for worker
/// processes.
pub fn run(opts: &Options, exe: Option<&Path>) -> anyhow::Result<Summary> {
    let open_files = shaddock::limits::raise_open_files();
    opts.check(open_files)?;
    let started = Instant::now();
    let procs = opts.procs();
    let fleet = Fleet::start(&opts.loop_spec(), procs, opts.threads, exe)?;
    let mut run = Run {
        opts,
        progress: vec![Progress::default(); fleet.loops()],
        fleet,
        publisher: None,
        seq: 0,
        phase: "start",
        next_print: Instant::now(),
        deadline: started + Duration::from_secs_f64(opts.max_secs),
    };
    let result = run.phases();
    if let Some(publisher) = run.publisher.take() {
        publisher.close();
    }
    let loops = run.fleet.loops();
    run.fleet.stop(START_STOP);
    if !opts.quiet && std::io::stderr().is_terminal() {
        eprintln!();
    }
    let mut summary = result?;
    summary.procs = procs;
    summary.loops = loops;
    summary.secs = started.elapsed().as_secs_f64();
    Ok(summary)
}

struct Run<'a> {
    opts: &'a Options,
    fleet: Fleet,
    progress: Vec<Progress>,
    publisher: Option<Publisher>,
    /// The next push's sequence number.
    seq: u64,
    phase: &'static str,
    next_print: Instant,
    deadline: Instant,
}

impl Run<'_> {
    fn phases(&mut self) -> anyhow::Result<Summary> {
        let opts = self.opts;
        let mqtt = opts.mqtt_options();
        let mut summary = Summary {
            server: match opts.proto() {
                Proto::Pomelo | Proto::SocketIo => "shaddock",
                Proto::Redis => "redis",
                Proto::Mqtt => "mqtt",
            }
            .into(),
            target: match opts.target.len() {
                0 | 1 => opts.target().to_string(),
                n => format!("{} (+{} more)", opts.target(), n - 1),
            },
            conns: opts.conns,
            transport: match (opts.proto(), opts.transport) {
                (Proto::Redis, _) => "redis".into(),
                (Proto::Mqtt, _) => format!("mqtt {} qos {}", mqtt.version.name(), mqtt.qos),
                (Proto::SocketIo, _) => {
                    let transport = match opts.sio_transport {
                        SioTransport::Websocket => "ws",
                        SioTransport::Polling => "polling",
                    };
                    format!("socket.io {} {transport}", opts.sio_version().name())
                }
                (Proto::Pomelo, Transport::Tcp) => "tcp".into(),
                (Proto::Pomelo, Transport::Ws) => "ws".into(),
                (Proto::Pomelo, Transport::Mix) => format!("mix:{}% ws", opts.ws_percent),
            },
            msg_bytes: opts.msg_bytes,
            ..Summary::default()
        };
        if opts.tls {
            summary.transport += match opts.tls_version {
                None => " tls",
                Some(crate::tls::TlsVersion::V12) => " tls1.2",
                Some(crate::tls::TlsVersion::V13) => " tls1.3",
            };
        }
        self.wait_all("start", START_STOP, |r| matches!(r, Report::Ready))?;
        let before = Reading::take(&opts.server_pid);
        let connect = self.connect()?;
        if connect.entered == 0 {
            let reasons: Vec<String> =
                connect.errors.iter().map(|(why, n)| format!("{n} × {why}")).collect();
            bail!("no connection entered: {}", reasons.join("; "));
        }
        summary.connect = Some(connect);
        for phase in opts.later_phases() {
            match phase {
                PhaseKind::Idle => summary.idle = Some(self.idle(before)?),
                PhaseKind::Broadcast => summary.broadcast = Some(self.broadcast()?),
                PhaseKind::Sustained => summary.sustained = Some(self.sustained()?),
                PhaseKind::Churn => summary.churn = Some(self.churn()?),
                PhaseKind::Connect => {}
            }
        }
        Ok(summary)
    }

    /// The next report that is not progress, waiting at most `timeout`.
    fn next(&mut self, timeout: Duration) -> anyhow::Result<Option<Envelope>> {
        if Instant::now() >= self.deadline {
            bail!("the run took longer than --max-secs");
        }
        let got = self.fleet.recv(timeout)?;
        self.print_progress(false);
        match got {
            Some(Envelope { from, report: Report::Progress(p) }) => {
                if let Some(slot) = self.progress.get_mut(from) {
                    *slot = p;
                }
                Ok(None)
            }
            Some(Envelope { from, report: Report::Fatal(why) }) => bail!("loop {from}: {why}"),
            other => Ok(other),
        }
    }

    /// Takes reports until every loop sent one that `matches`, within `limit`.
    fn wait_all(
        &mut self,
        what: &str,
        limit: Duration,
        mut matches: impl FnMut(&Report) -> bool,
    ) -> anyhow::Result<Vec<Report>> {
        let deadline = Instant::now() + limit;
        let mut got: Vec<Option<Report>> = vec![None; self.fleet.loops()];
        while got.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("timed out after {limit:?} waiting for every loop to {what}");
            }
            if let Some(envelope) = self.next(left.min(Duration::from_millis(50)))? {
                if matches(&envelope.report) {
                    if let Some(slot) = got.get_mut(envelope.from) {
                        *slot = Some(envelope.report);
                    }
                }
            }
        }
        Ok(got.into_iter().flatten().collect())
    }

    /// Lets `duration` pass, keeping the progress line going.
    fn pass(&mut self, duration: Duration) -> anyhow::Result<()> {
        let until = Instant::now() + duration;
        while Instant::now() < until {
            let left = until.saturating_duration_since(Instant::now());
            if let Some(envelope) = self.next(left.min(Duration::from_millis(50)))? {
                bail!("unexpected report from loop {}: {:?}", envelope.from, envelope.report);
            }
        }
        Ok(())
    }

    fn print_progress(&mut self, force: bool) {
        if self.opts.quiet || (!force && Instant::now() < self.next_print) {
            return;
        }
        let terminal = std::io::stderr().is_terminal();
        // A log file gets a line every ten intervals instead of a line redrawn in place.
        let every = self.opts.progress_ms.max(10) * if terminal { 1 } else { 10 };
        self.next_print = Instant::now() + Duration::from_millis(every);
        let sum = |f: fn(&Progress) -> u64| self.progress.iter().map(f).sum::<u64>();
        let line = format!(
            "{}[{:<9}] entered {:>7}/{} · connecting {:>5} · failed {:>5} · delivered {:>10} · reconnects {:>6}   ",
            if terminal { "\r" } else { "" },
            self.phase,
            sum(|p| p.entered),
            self.opts.conns,
            sum(|p| p.connecting),
            sum(|p| p.failed),
            sum(|p| p.deliveries),
            sum(|p| p.reconnects),
        );
        let line = if terminal { line } else { line.trim_end().to_string() + "\n" };
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
    }

    fn begin(&mut self, kind: PhaseKind, track: usize, churn_per_sec: f64) -> anyhow::Result<()> {
        self.phase = kind.name();
        self.fleet.send(&Command::Begin(PhaseSpec {
            kind,
            seq_start: self.seq,
            track,
            churn_per_sec,
        }))?;
        self.wait_all("begin a phase", ANSWER, |r| matches!(r, Report::Begun))?;
        Ok(())
    }

    /// Tells the loops every push below `self.seq` is out; true when all caught up.
    fn await_caught(&mut self) -> anyhow::Result<bool> {
        let settle = self.opts.settle_ms;
        self.fleet.send(&Command::Await { seq_end: self.seq, timeout_ms: settle })?;
        let limit = Duration::from_millis(settle) + ANSWER;
        let caught = self.wait_all("catch up", limit, |r| matches!(r, Report::Caught { .. }))?;
        Ok(caught.iter().all(|r| matches!(r, Report::Caught { complete: true })))
    }

    fn end(&mut self) -> anyhow::Result<PhaseStats> {
        self.fleet.send(&Command::End)?;
        let done = self.wait_all("end a phase", ANSWER, |r| matches!(r, Report::Done(_)))?;
        let mut total = PhaseStats::default();
        for report in &done {
            if let Report::Done(stats) = report {
                merge(&mut total, stats);
            }
        }
        self.print_progress(true);
        Ok(total)
    }

    fn publisher(&mut self) -> anyhow::Result<&mut Publisher> {
        if self.publisher.is_none() {
            let opts = self.opts;
            let dialect = match (opts.proto(), opts.mqtt_publisher) {
                (Proto::Pomelo | Proto::SocketIo, _) | (Proto::Mqtt, MqttPublisher::Pomelo) => {
                    Dialect::Pomelo
                }
                (Proto::Redis, _) => Dialect::Redis,
                (Proto::Mqtt, MqttPublisher::Mqtt) => Dialect::Mqtt(opts.mqtt_options().version),
            };
            let publisher = Publisher::connect(
                dialect,
                opts.publisher_target(),
                &opts.apps(),
                opts.msg_bytes,
                Duration::from_secs(10),
            )
            .context("connecting the publisher")?;
            self.publisher = Some(publisher);
        }
        self.publisher.as_mut().context("publisher")
    }

    /// Sends `count` pushes at `rate` per second, stopping at `limit`; returns how many were
    /// sent, the first send time (ns) and the seconds from the first to the last send.
    fn push_at_rate(
        &mut self,
        rate: f64,
        count: u64,
        limit: Duration,
    ) -> anyhow::Result<(u64, u64, f64)> {
        let start = Instant::now();
        let first_ns = now_ns();
        let mut last = start;
        let mut sent = 0;
        while sent < count {
            let due = start + Duration::from_secs_f64(sent as f64 / rate);
            let now = Instant::now();
            if now - start > limit {
                break;
            }
            if due > now {
                // Sleep in short slices so progress keeps flowing.
                let nap = (due - now).min(Duration::from_millis(20));
                if let Some(envelope) = self.next(nap)? {
                    bail!("unexpected report from loop {}: {:?}", envelope.from, envelope.report);
                }
                continue;
            }
            let seq = self.seq;
            self.seq += 1;
            self.publisher()?.publish(seq)?;
            last = Instant::now();
            sent += 1;
        }
        Ok((sent, first_ns, (last - start).as_secs_f64()))
    }

    fn connect(&mut self) -> anyhow::Result<ConnectResult> {
        let opts = self.opts;
        self.begin(PhaseKind::Connect, 0, 0.0)?;
        let until = Instant::now() + Duration::from_secs_f64(opts.connect_secs);
        loop {
            let settled: u64 = self.progress.iter().map(|p| p.entered + p.failed).sum();
            if settled >= opts.conns || Instant::now() >= until {
                break;
            }
            if let Some(envelope) = self.next(Duration::from_millis(50))? {
                bail!("unexpected report from loop {}: {:?}", envelope.from, envelope.report);
            }
        }
        let stats = self.end()?;
        let secs = match (stats.first_connect_ns, stats.last_entered_ns) {
            (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
            _ => 0.0,
        };
        let mut latency = Latency::new();
        latency.add_sparse(&stats.enter_latency);
        let tls = opts.tls.then(|| {
            let secs = match (stats.first_connect_ns, stats.last_tls_ns) {
                (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
                _ => 0.0,
            };
            let mut latency = Latency::new();
            latency.add_sparse(&stats.tls_latency);
            TlsResult {
                handshakes: stats.tls_handshakes,
                secs,
                handshakes_per_sec: if secs > 0.0 {
                    stats.tls_handshakes as f64 / secs
                } else {
                    0.0
                },
                handshake_latency: latency.percentiles(),
                negotiated: stats.tls_negotiated.clone(),
            }
        });
        Ok(ConnectResult {
            entered: stats.entered,
            failed: opts.conns.saturating_sub(stats.entered),
            secs,
            conns_per_sec: if secs > 0.0 { stats.entered as f64 / secs } else { 0.0 },
            enter_latency: latency.percentiles(),
            errors: stats.errors,
            tls,
        })
    }

    fn idle(&mut self, before: Reading) -> anyhow::Result<IdleResult> {
        let secs = self.opts.idle_secs;
        self.begin(PhaseKind::Idle, 0, 0.0)?;
        self.pass(Duration::from_secs_f64(secs))?;
        let after = Reading::take(&self.opts.server_pid);
        let stats = self.end()?;
        Ok(IdleResult {
            secs,
            held: stats.entered,
            dropped: stats.dropped,
            before,
            after,
            per_conn: per_conn(&before, &after, stats.entered),
        })
    }

    fn broadcast(&mut self) -> anyhow::Result<BroadcastResult> {
        let opts = self.opts;
        let settle = Duration::from_millis(opts.settle_ms);
        self.publisher()?;
        self.begin(PhaseKind::Broadcast, opts.pushes, 0.0)?;
        let mut recipients = Vec::with_capacity(opts.pushes);
        let mut refusals = Vec::new();
        let mut complete_pushes = 0;
        for _ in 0..opts.pushes {
            let seq = self.seq;
            self.seq += 1;
            let publisher = self.publisher()?;
            publisher.publish(seq)?;
            let got = publisher.collect(publisher.requests_per_push(), settle);
            if got.counted > 0 {
                recipients.push(got.recipients as f64);
            }
            refusals.extend(got.refusals);
            complete_pushes += usize::from(self.await_caught()?);
            self.pass(Duration::from_millis(opts.push_gap_ms))?;
        }
        let stats = self.end()?;
        let last: Vec<f64> = stats.push_max_ns.iter().map(|&ns| ns as f64 / 1e6).collect();
        let mut latency = Latency::new();
        latency.add_sparse(&stats.latency);
        refusals.dedup();
        Ok(BroadcastResult {
            pushes: opts.pushes,
            recipients: (!recipients.is_empty())
                .then(|| recipients.iter().sum::<f64>() / recipients.len() as f64),
            stayed_up: stats.stayed_up,
            deliveries: stats.deliveries,
            lost: stats.lost,
            out_of_order: stats.out_of_order,
            complete_pushes,
            latency: latency.percentiles(),
            last_recipient_median_ms: median(&last),
            last_recipient_min_ms: last.iter().copied().reduce(f64::min).unwrap_or(0.0),
            last_recipient_max_ms: last.iter().copied().fold(0.0, f64::max),
            last_recipient_ms: last,
            refusals,
        })
    }

    fn sustained(&mut self) -> anyhow::Result<SustainedResult> {
        let opts = self.opts;
        let settle = Duration::from_millis(opts.settle_ms);
        let step_limit = Duration::from_secs_f64(opts.step_secs * 2.0);
        let mut result = SustainedResult::default();
        let mut misses = 0;
        for rate in rates(opts.rate_start, opts.rate_factor, opts.rate_max, opts.rate_steps) {
            self.publisher()?;
            self.begin(PhaseKind::Sustained, 0, 0.0)?;
            let planned = (rate * opts.step_secs).ceil().max(1.0) as u64;
            let (sent, first_ns, send_secs) = self.push_at_rate(rate, planned, step_limit)?;
            let publisher = self.publisher()?;
            let got = publisher.collect(sent * publisher.requests_per_push(), settle);
            self.await_caught()?;
            let stats = self.end()?;
            let mut latency = Latency::new();
            latency.add_sparse(&stats.latency);
            let percentiles = latency.percentiles();
            let outcome = StepOutcome {
                rate,
                secs: opts.step_secs,
                planned,
                sent,
                send_secs,
                recipients: stats.stayed_up,
                deliveries: stats.deliveries,
                lost: stats.lost,
                span_secs: stats
                    .last_recv_ns
                    .map_or(0.0, |last| last.saturating_sub(first_ns) as f64 / 1e9),
                p99_ms: percentiles.p99_ms,
            };
            let verdict = judge(&outcome, opts.p99_limit_ms);
            if verdict.held() {
                result.best_delivered_per_sec = verdict.delivered_per_sec;
                result.best_rate = rate;
                result.best_p99_ms = percentiles.p99_ms;
            }
            result.steps.push(StepResult {
                outcome,
                verdict,
                latency: percentiles,
                server_recipients: got.recipients,
                out_of_order: stats.out_of_order,
                dropped: stats.dropped,
                errors: stats.errors,
                refusals: got.refusals,
            });
            if !verdict.held() {
                misses += 1;
                if misses >= opts.rate_misses {
                    break;
                }
            }
            self.pass(Duration::from_millis(200))?;
        }
        Ok(result)
    }

    fn churn(&mut self) -> anyhow::Result<ChurnResult> {
        let opts = self.opts;
        let settle = Duration::from_millis(opts.settle_ms);
        self.publisher()?;
        let per_loop = opts.churn_rate / self.fleet.loops() as f64;
        let rss_before = Reading::take(&opts.server_pid).server_rss;
        self.begin(PhaseKind::Churn, 0, per_loop)?;
        let started = Instant::now();
        let count = (opts.churn_push_rate * opts.churn_secs).ceil() as u64;
        let limit = Duration::from_secs_f64(opts.churn_secs * 2.0);
        let (sent, _, _) = self.push_at_rate(opts.churn_push_rate, count, limit)?;
        let left = Duration::from_secs_f64(opts.churn_secs).saturating_sub(started.elapsed());
        self.pass(left)?;
        let secs = started.elapsed().as_secs_f64();
        let publisher = self.publisher()?;
        publisher.collect(sent * publisher.requests_per_push(), settle);
        self.await_caught()?;
        let stats = self.end()?;
        let rss_after = Reading::take(&opts.server_pid).server_rss;
        let mut latency = Latency::new();
        latency.add_sparse(&stats.latency);
        let mut reconnect = Latency::new();
        reconnect.add_sparse(&stats.enter_latency);
        Ok(ChurnResult {
            secs,
            target_rate: opts.churn_rate,
            churned: stats.churned,
            churned_per_sec: stats.churned as f64 / secs.max(f64::MIN_POSITIVE),
            reconnects: stats.reconnects,
            reconnect_failures: stats.failed,
            stayed_up: stats.stayed_up,
            pushes: sent,
            deliveries: stats.deliveries,
            lost: stats.lost,
            out_of_order: stats.out_of_order,
            dropped: stats.dropped,
            latency: latency.percentiles(),
            reconnect_latency: reconnect.percentiles(),
            server_rss_before: rss_before,
            server_rss_after: rss_after,
            errors: stats.errors,
        })
    }
}

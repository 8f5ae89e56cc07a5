//! The command line: every knob of a run, with defaults sized for this 2-core machine, and the
//! checks that turn them into loop settings.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::{bail, ensure};
use clap::{Parser, ValueEnum};

use crate::conn::MqttOptions;
use crate::report::{LoopSpec, Mode, PhaseKind};
use crate::tls::{TlsSpec, TlsVersion};
use crate::wire::{mqtt, socketio};

/// The environment variable holding the demo app's secret (as the daemon reads it).
const DEMO_SECRET_ENV: &str = "SHADDOCK_DEMO_SECRET";
/// The secret of the demo app in the repository's `shaddock.toml`.
const PLACEHOLDER_SECRET: &str = "change-me-please";
/// Open files a process needs besides its connections (poll, waker, stdio, publisher, slack).
const SPARE_FILES: u64 = 64;

/// Which transport Pomelo connections use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// Raw TCP.
    Tcp,
    /// WebSocket.
    Ws,
    /// Both: `--ws-percent` % over WebSocket.
    Mix,
}

/// The protocol every connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Proto {
    /// Pomelo's hybrid protocol (shaddock).
    Pomelo,
    /// Redis `SUBSCRIBE` / `PUBLISH` (the baseline; the same as `--redis`).
    Redis,
    /// MQTT: `SUBSCRIBE push/{apikey}` (shaddock's MQTT frontend, or a broker such as mosquitto).
    Mqtt,
    /// Pomelo over Socket.IO on WebSocket (shaddock's sioconnector frontend).
    #[value(name = "socketio", alias = "socket.io", alias = "sio")]
    SocketIo,
}

/// The socket.io generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SioVersion {
    /// socket.io 0.9: `GET {path}/1/` for a sid, then `{path}/1/websocket/<sid>`; the server
    /// sends heartbeats.
    #[value(name = "0.9", alias = "09")]
    V09,
    /// Engine.IO 3 (socket.io 1.x-2.x): the client pings.
    #[value(name = "3")]
    V3,
    /// Engine.IO 4 (socket.io 3.x-4.x): the server pings.
    #[value(name = "4")]
    V4,
}

/// The Socket.IO transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SioTransport {
    /// WebSocket from the start (socket.io-client's `transports: ['websocket']`).
    Websocket,
    /// HTTP long-polling, never upgraded (`transports: ['polling']`): one GET always
    /// outstanding on one connection, POSTs on a second; two sockets per client.
    Polling,
}

/// The MQTT version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MqttVersion {
    /// 3.1.1 (protocol level 4).
    #[value(name = "3.1.1", alias = "311", alias = "4")]
    V311,
    /// 5.0 (protocol level 5).
    #[value(name = "5", alias = "5.0")]
    V5,
}

/// Who pushes in an MQTT run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MqttPublisher {
    /// An MQTT connection (user name the apikey, password the secret) publishing at QoS 1 to
    /// `push/{apikey}`.
    Mqtt,
    /// A Pomelo management session's `pushAll` (shaddock only; answers count the recipients).
    Pomelo,
}

/// conn-flood: open many Pomelo (or Redis) connections and measure connect rate, idle memory,
/// broadcast latency, sustained fan-out and churn.
#[derive(Debug, Clone, Parser)]
#[command(name = "conn-flood", version)]
pub struct Options {
    /// The server's client port [default: 127.0.0.1:3010, with --redis 127.0.0.1:6379]. Repeat
    /// for several servers (the nodes of a Redis Cluster, shaddock processes on their own
    /// ports): event loop `l` connects to the `l mod count`-th; the publisher to the first.
    #[arg(long)]
    pub target: Vec<SocketAddr>,
    /// Connections to open.
    #[arg(long, short = 'n', default_value_t = 1_000)]
    pub conns: u64,
    /// Pomelo transport.
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    pub transport: Transport,
    /// With `--transport mix`: the share of WebSocket connections, percent.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub ws_percent: u8,
    /// The WebSocket request path.
    #[arg(long, default_value = "/")]
    pub ws_path: String,
    /// An app to join, `APIKEY=SECRET` (the secret is for the management session; without one,
    /// $SHADDOCK_DEMO_SECRET or the placeholder of shaddock.toml). Repeat for several apps:
    /// connection i joins app i mod count. With --redis the apikey is the channel.
    #[arg(long = "app", value_name = "APIKEY[=SECRET]", default_value = "demo")]
    pub apps: Vec<String>,
    /// Speak Redis SUBSCRIBE/PUBLISH instead of Pomelo, for the baseline (`--proto redis`).
    #[arg(long)]
    pub redis: bool,
    /// The protocol [default: pomelo; redis with --redis].
    #[arg(long, value_enum, default_value_t = Proto::Pomelo)]
    pub proto: Proto,
    /// MQTT: the protocol version.
    #[arg(long, value_enum, default_value_t = MqttVersion::V311)]
    pub mqtt_version: MqttVersion,
    /// MQTT: the QoS subscribers ask for (the publisher publishes at QoS 1).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub qos: u8,
    /// MQTT: the keep alive CONNECT asks for, seconds (PINGREQ at half of it, or the server's
    /// 5.0 Server Keep Alive, unless --heartbeat-secs).
    #[arg(long, default_value_t = 300)]
    pub mqtt_keepalive: u16,
    /// MQTT: who publishes.
    #[arg(long, value_enum, default_value_t = MqttPublisher::Mqtt)]
    pub mqtt_publisher: MqttPublisher,
    /// Socket.IO: the generation the clients speak.
    #[arg(long, value_enum, default_value_t = SioVersion::V4)]
    pub sio_version: SioVersion,
    /// Socket.IO: the transport.
    #[arg(long, value_enum, default_value_t = SioTransport::Websocket)]
    pub sio_transport: SioTransport,
    /// Socket.IO: the path (socket.io's `path` option; no trailing `/`).
    #[arg(long, default_value = "/socket.io")]
    pub sio_path: String,
    /// Run every client connection inside TLS (the server's `[client.tls]`), for every --proto
    /// and --transport but Socket.IO long-polling; needs --tls-ca. A connection counts as
    /// connected once the TLS handshake and then its protocol's own handshake are done, so the
    /// connect rate includes the TLS handshake (reported on its own as well). The publisher
    /// (management session, MQTT publisher) stays plain.
    #[arg(long)]
    pub tls: bool,
    /// With --tls: the CA certificate(s) to trust, PEM.
    #[arg(long, value_name = "PATH", requires = "tls")]
    pub tls_ca: Option<PathBuf>,
    /// With --tls: the server name sent in SNI and verified against the certificate (a DNS name
    /// or an IP address).
    #[arg(long, value_name = "NAME", default_value = "localhost", requires = "tls")]
    pub tls_name: String,
    /// With --tls: offer only this version [default: 1.3 and 1.2, the server chooses].
    #[arg(long, value_enum, requires = "tls")]
    pub tls_version: Option<TlsVersion>,
    /// Where the publisher connects, always plain [default: --target].
    #[arg(long, value_name = "ADDR")]
    pub publisher_target: Option<SocketAddr>,
    /// Source addresses to spread connections over, from --source-base upward (each has its own
    /// ephemeral port range). 0 = let the kernel choose.
    #[arg(long, default_value_t = 8)]
    pub sources: u8,
    /// The first source address.
    #[arg(long, default_value = "127.0.0.2")]
    pub source_base: Ipv4Addr,
    /// Worker processes [default: enough that none holds more than --conns-per-proc].
    #[arg(long)]
    pub procs: Option<usize>,
    /// The most connections one process holds (one process may open at most 20,000 files).
    #[arg(long, default_value_t = 18_000)]
    pub conns_per_proc: u64,
    /// Event-loop threads per process.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Connects in flight per loop (from connect to entered).
    #[arg(long, default_value_t = 256)]
    pub connect_window: usize,
    /// Attempts per connection before it counts as failed.
    #[arg(long, default_value_t = 3)]
    pub connect_attempts: u8,
    /// The longest the connect phase may take, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub connect_secs: f64,
    /// Heartbeat interval, seconds [default: what the server's handshake says; Redis: none;
    /// Socket.IO: EIO 3 pings at the open packet's pingInterval, EIO 4 and 0.9 only answer the
    /// server's pings (with this set, 0.9 also sends `2::` on its own, EIO 4 nothing)].
    #[arg(long)]
    pub heartbeat_secs: Option<f64>,
    /// Phases to run, in this order; connect always runs first.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "connect,idle,broadcast,sustained,churn"
    )]
    pub phases: Vec<PhaseKind>,
    /// How long the idle phase holds the connections, seconds.
    #[arg(long, default_value_t = 5.0)]
    pub idle_secs: f64,
    /// The server's pid, to read its RSS in the idle phase; repeat for a server of several
    /// processes (the RSS is their sum).
    #[arg(long)]
    pub server_pid: Vec<u32>,
    /// Single pushes in the broadcast phase.
    #[arg(long, default_value_t = 20)]
    pub pushes: usize,
    /// Pause between two single pushes, ms.
    #[arg(long, default_value_t = 100)]
    pub push_gap_ms: u64,
    /// Bytes in each pushed message (the `msg` string; Redis: the payload).
    #[arg(long, default_value_t = 100)]
    pub msg_bytes: usize,
    /// How long to wait for every stable connection to receive every push, ms.
    #[arg(long, default_value_t = 5_000)]
    pub settle_ms: u64,
    /// Sustained: the first rate, pushes per second.
    #[arg(long, default_value_t = 50.0)]
    pub rate_start: f64,
    /// Sustained: each step multiplies the rate by this.
    #[arg(long, default_value_t = 2.0)]
    pub rate_factor: f64,
    /// Sustained: the highest rate tried.
    #[arg(long, default_value_t = 100_000.0)]
    pub rate_max: f64,
    /// Sustained: the most steps.
    #[arg(long, default_value_t = 8)]
    pub rate_steps: usize,
    /// Sustained: the search stops after this many steps not held (the best held step is the
    /// highest held one; a server whose latency dips as frames start to share writes can miss a
    /// low rate and hold a higher one).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_misses: u32,
    /// Sustained: seconds per step.
    #[arg(long, default_value_t = 3.0)]
    pub step_secs: f64,
    /// Sustained: the 99th percentile latency a held rate may have, ms.
    #[arg(long, default_value_t = 250.0)]
    pub p99_limit_ms: f64,
    /// Churn: reconnects per second (over all loops).
    #[arg(long, default_value_t = 1_000.0)]
    pub churn_rate: f64,
    /// Churn: how long, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub churn_secs: f64,
    /// Churn: pushes per second meanwhile.
    #[arg(long, default_value_t = 10.0)]
    pub churn_push_rate: f64,
    /// Progress line interval, ms (loops report at this interval too).
    #[arg(long, default_value_t = 500)]
    pub progress_ms: u64,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
    /// The whole run stops after this long, seconds.
    #[arg(long, default_value_t = 900.0)]
    pub max_secs: f64,
    /// clientIds are this prefix followed by the connection number.
    #[arg(long, default_value = "cf")]
    pub client_prefix: String,
    /// The largest package, frame or reply accepted, bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_package: usize,
    /// Internal: run as a worker process (reads its orders on stdin).
    #[arg(long, hide = true)]
    pub worker: bool,
}

impl Options {
    /// The protocol (`--redis` is `--proto redis`).
    pub fn proto(&self) -> Proto {
        if self.redis { Proto::Redis } else { self.proto }
    }

    /// The target address.
    pub fn target(&self) -> SocketAddr {
        self.target.first().copied().unwrap_or_else(|| {
            let port = match self.proto() {
                Proto::Pomelo | Proto::SocketIo => 3010,
                Proto::Redis => 6379,
                Proto::Mqtt => 1883,
            };
            SocketAddr::from((Ipv4Addr::LOCALHOST, port))
        })
    }

    /// Where the publisher connects.
    pub fn publisher_target(&self) -> SocketAddr {
        self.publisher_target.unwrap_or_else(|| self.target())
    }

    /// MQTT: how subscribers connect.
    pub fn mqtt_options(&self) -> MqttOptions {
        MqttOptions {
            version: match self.mqtt_version {
                MqttVersion::V311 => mqtt::Version::V311,
                MqttVersion::V5 => mqtt::Version::V5,
            },
            qos: self.qos,
            keep_alive: self.mqtt_keepalive,
        }
    }

    /// Socket.IO: the generation.
    pub fn sio_version(&self) -> socketio::Version {
        match self.sio_version {
            SioVersion::V09 => socketio::Version::V09,
            SioVersion::V3 => socketio::Version::Eio3,
            SioVersion::V4 => socketio::Version::Eio4,
        }
    }

    /// The apps as `(apikey, secret)`.
    pub fn apps(&self) -> Vec<(String, String)> {
        self.apps
            .iter()
            .map(|app| match app.split_once('=') {
                Some((apikey, secret)) => (apikey.to_string(), secret.to_string()),
                None => (
                    app.clone(),
                    std::env::var(DEMO_SECRET_ENV).unwrap_or_else(|_| PLACEHOLDER_SECRET.into()),
                ),
            })
            .collect()
    }

    /// Sockets per connection: 2 for a Socket.IO polling client (GETs and POSTs), else 1.
    pub fn sockets_per_conn(&self) -> u64 {
        match (self.proto(), self.sio_transport) {
            (Proto::SocketIo, SioTransport::Polling) => 2,
            _ => 1,
        }
    }

    /// Worker processes for this run (`--conns-per-proc` counts sockets).
    pub fn procs(&self) -> usize {
        let per_proc = (self.conns_per_proc / self.sockets_per_conn()).max(1);
        self.procs.unwrap_or_else(|| self.conns.div_ceil(per_proc).max(1) as usize)
    }

    /// The phases after connect, in run order, each once.
    pub fn later_phases(&self) -> Vec<PhaseKind> {
        let order = [PhaseKind::Idle, PhaseKind::Broadcast, PhaseKind::Sustained, PhaseKind::Churn];
        order.into_iter().filter(|p| self.phases.contains(p)).collect()
    }

    /// The source addresses.
    pub fn source_addrs(&self) -> Vec<Ipv4Addr> {
        if self.sources == 0 {
            return vec![Ipv4Addr::UNSPECIFIED];
        }
        let base = u32::from(self.source_base);
        (0..u32::from(self.sources)).map(|i| Ipv4Addr::from(base.wrapping_add(i))).collect()
    }

    /// Checks the options against each other and the open-file limit.
    pub fn check(&self, open_files: Option<u64>) -> anyhow::Result<()> {
        ensure!(self.conns >= 1, "--conns must be at least 1");
        ensure!(self.threads >= 1, "--threads must be at least 1");
        ensure!(!self.apps.is_empty(), "at least one --app");
        ensure!(self.connect_window >= 1, "--connect-window must be at least 1");
        ensure!(self.connect_attempts >= 1, "--connect-attempts must be at least 1");
        ensure!(self.rate_start > 0.0, "--rate-start must be positive");
        ensure!(self.pushes <= 100_000, "--pushes is at most 100000");
        ensure!(self.churn_push_rate > 0.0, "--churn-push-rate must be positive");
        ensure!(
            !(self.redis && self.proto != Proto::Pomelo && self.proto != Proto::Redis),
            "--redis contradicts --proto {:?}",
            self.proto
        );
        ensure!(
            self.sio_path.starts_with('/') && !self.sio_path.ends_with('/'),
            "--sio-path starts with / and has no trailing / (got {:?})",
            self.sio_path
        );
        if self.sources > 0 {
            ensure!(
                self.source_base.is_loopback()
                    && u32::from(self.source_base) + u32::from(self.sources) - 1
                        <= u32::from(Ipv4Addr::new(127, 255, 255, 254)),
                "source addresses must stay within 127.0.0.0/8"
            );
        }
        for target in self.target.iter().copied().chain([self.target(), self.publisher_target()]) {
            ensure!(target.ip().is_loopback(), "conn-flood targets loopback only (got {target})");
        }
        if let Some(spec) = self.tls_spec()? {
            ensure!(
                self.sockets_per_conn() == 1,
                "--tls does not run Socket.IO long-polling (a client's GETs and POSTs take two \
                 connections): use --sio-transport websocket"
            );
            crate::tls::Client::new(&spec)?;
        }
        let procs = self.procs();
        let per_proc = self.conns.div_ceil(procs as u64);
        let sockets = per_proc * self.sockets_per_conn();
        if let Some(limit) = open_files {
            if sockets + SPARE_FILES > limit {
                bail!(
                    "{per_proc} connections ({sockets} sockets) per process but only {limit} \
                     open files: use more --procs or a lower --conns-per-proc"
                );
            }
        }
        Ok(())
    }

    /// `--tls` as the loops take it; an error when --tls-ca is missing.
    pub fn tls_spec(&self) -> anyhow::Result<Option<TlsSpec>> {
        if !self.tls {
            return Ok(None);
        }
        let Some(ca) = &self.tls_ca else {
            bail!("--tls needs --tls-ca PATH (the CA that signed the server's certificate, PEM)");
        };
        Ok(Some(TlsSpec { ca: ca.clone(), name: self.tls_name.clone(), version: self.tls_version }))
    }

    /// The settings every event loop shares (`loops` and `loop_id` are set by the fleet).
    pub fn loop_spec(&self) -> LoopSpec {
        let mode = match self.proto() {
            Proto::Redis => Mode::Redis,
            Proto::Mqtt => Mode::Mqtt(self.mqtt_options()),
            Proto::SocketIo => Mode::SocketIo {
                version: self.sio_version(),
                path: self.sio_path.clone(),
                polling: self.sio_transport == SioTransport::Polling,
            },
            Proto::Pomelo => {
                let ws_percent = match self.transport {
                    Transport::Tcp => 0,
                    Transport::Ws => 100,
                    Transport::Mix => self.ws_percent,
                };
                Mode::Pomelo { ws_percent, ws_path: self.ws_path.clone() }
            }
        };
        LoopSpec {
            target: self.target(),
            targets: self.target.clone(),
            mode,
            apps: self.apps().into_iter().map(|(apikey, _)| apikey).collect(),
            sources: self.source_addrs(),
            conns: self.conns,
            loops: 1,
            loop_id: 0,
            client_prefix: self.client_prefix.clone(),
            connect_window: self.connect_window,
            connect_attempts: self.connect_attempts,
            heartbeat_secs: self.heartbeat_secs,
            progress_ms: self.progress_ms.max(10),
            max_secs: self.max_secs + 30.0,
            max_package: self.max_package,
            tls: self.tls_spec().ok().flatten(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        Options::try_parse_from(std::iter::once("conn-flood").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults() {
        let o = parse(&[]);
        assert_eq!(o.target(), "127.0.0.1:3010".parse().unwrap());
        assert_eq!(o.procs(), 1);
        assert_eq!(o.later_phases().len(), 4);
        assert_eq!(o.source_addrs()[7], Ipv4Addr::new(127, 0, 0, 9));
        o.check(Some(20_000)).unwrap();
        let r = parse(&["--redis"]);
        assert_eq!(r.target(), "127.0.0.1:6379".parse().unwrap());
        assert_eq!(r.loop_spec().mode, Mode::Redis);
        assert_eq!(parse(&["--proto", "redis"]).loop_spec().mode, Mode::Redis);
    }

    #[test]
    fn several_targets_go_to_the_loops_and_the_first_is_the_publishers() {
        let o = parse(&["--redis", "--target", "127.0.0.1:7001", "--target", "127.0.0.1:7002"]);
        assert_eq!(o.publisher_target(), "127.0.0.1:7001".parse().unwrap());
        let spec = o.loop_spec();
        assert_eq!(spec.targets.len(), 2);
        assert_eq!(spec.targets[1], "127.0.0.1:7002".parse().unwrap());
        assert!(
            parse(&["--target", "10.0.0.1:3010"]).check(Some(20_000)).is_err(),
            "loopback only"
        );
    }

    #[test]
    fn mqtt_options() {
        let m = parse(&["--proto", "mqtt"]);
        assert_eq!(m.target(), "127.0.0.1:1883".parse().unwrap());
        let opts = MqttOptions { version: mqtt::Version::V311, qos: 0, keep_alive: 300 };
        assert_eq!(m.loop_spec().mode, Mode::Mqtt(opts));
        let m = parse(&["--proto", "mqtt", "--mqtt-version", "5", "--qos", "1"]);
        let opts = MqttOptions { version: mqtt::Version::V5, qos: 1, keep_alive: 300 };
        assert_eq!(m.loop_spec().mode, Mode::Mqtt(opts));
        assert_eq!(
            parse(&["--proto", "mqtt", "--mqtt-version", "311"]).mqtt_version,
            MqttVersion::V311
        );
        assert!(Options::try_parse_from(["conn-flood", "--qos", "2"]).is_err());
        assert!(parse(&["--redis", "--proto", "mqtt"]).check(None).is_err());
    }

    #[test]
    fn socketio_options() {
        let s = parse(&["--proto", "socketio"]);
        assert_eq!(s.target(), "127.0.0.1:3010".parse().unwrap());
        let mode = Mode::SocketIo {
            version: socketio::Version::Eio4,
            path: "/socket.io".into(),
            polling: false,
        };
        assert_eq!(s.loop_spec().mode, mode);
        assert_eq!(s.sockets_per_conn(), 1);
        s.check(None).unwrap();
        for (flag, version) in [
            ("0.9", socketio::Version::V09),
            ("3", socketio::Version::Eio3),
            ("4", socketio::Version::Eio4),
        ] {
            let s = parse(&["--proto", "socket.io", "--sio-version", flag, "--sio-path", "/io"]);
            let mode = Mode::SocketIo { version, path: "/io".into(), polling: false };
            assert_eq!(s.loop_spec().mode, mode);
        }
        let p = parse(&["--proto", "sio", "--sio-transport", "polling", "-n", "19000"]);
        let mode = Mode::SocketIo {
            version: socketio::Version::Eio4,
            path: "/socket.io".into(),
            polling: true,
        };
        assert_eq!(p.loop_spec().mode, mode);
        assert_eq!((p.sockets_per_conn(), p.procs()), (2, 3), "9,000 clients per process");
        p.check(Some(20_000)).unwrap();
        let one =
            parse(&["--proto", "sio", "--sio-transport", "polling", "-n", "9990", "--procs", "1"]);
        assert!(one.check(Some(20_000)).is_err(), "19,980 sockets do not fit");
        assert!(Options::try_parse_from(["conn-flood", "--sio-transport", "xhr"]).is_err());
        assert!(Options::try_parse_from(["conn-flood", "--sio-version", "2"]).is_err());
        assert!(parse(&["--proto", "sio", "--sio-path", "/io/"]).check(None).is_err());
        assert!(parse(&["--proto", "sio", "--sio-path", "io"]).check(None).is_err());
    }

    #[test]
    fn processes_follow_the_per_process_cap() {
        assert_eq!(parse(&["-n", "19000"]).procs(), 2);
        assert_eq!(parse(&["-n", "36000"]).procs(), 2);
        assert_eq!(parse(&["-n", "36001"]).procs(), 3);
        assert_eq!(parse(&["-n", "100", "--procs", "2"]).procs(), 2);
        let too_many = parse(&["-n", "19990", "--procs", "1"]);
        assert!(too_many.check(Some(20_000)).is_err());
    }

    #[test]
    fn apps_phases_and_transport() {
        let o = parse(&[
            "--app",
            "a=s3cret-aaa",
            "--app",
            "b=s3cret-bbb",
            "--phases",
            "churn,idle",
            "--transport",
            "mix",
            "--ws-percent",
            "30",
        ]);
        assert_eq!(o.apps()[1], ("b".to_string(), "s3cret-bbb".to_string()));
        assert_eq!(o.later_phases(), [PhaseKind::Idle, PhaseKind::Churn]);
        assert!(matches!(o.loop_spec().mode, Mode::Pomelo { ws_percent: 30, .. }));
        assert_eq!(o.loop_spec().apps, ["a", "b"]);
    }

    #[test]
    fn tls_options() {
        assert_eq!(parse(&[]).loop_spec().tls, None);
        let no_ca = parse(&["--tls"]);
        assert!(no_ca.check(None).unwrap_err().to_string().contains("--tls-ca"));
        let t = parse(&["--tls", "--tls-ca", "/nonexistent/ca.pem", "--tls-version", "1.2"]);
        let spec = TlsSpec {
            ca: "/nonexistent/ca.pem".into(),
            name: "localhost".into(),
            version: Some(TlsVersion::V12),
        };
        assert_eq!(t.loop_spec().tls, Some(spec));
        assert!(t.check(None).unwrap_err().to_string().contains("/nonexistent/ca.pem"));
        let named = parse(&["--tls", "--tls-ca", "ca.pem", "--tls-name", "127.0.0.1"]);
        assert_eq!(named.tls_spec().unwrap().unwrap().name, "127.0.0.1");
        let polling =
            parse(&["--proto", "sio", "--sio-transport", "polling", "--tls", "--tls-ca", "x"]);
        assert!(polling.check(None).unwrap_err().to_string().contains("long-polling"));
        for lone in [&["--tls-ca", "ca.pem"][..], &["--tls-version", "1.3"], &["--tls-name", "a"]] {
            let args = std::iter::once("conn-flood").chain(lone.iter().copied());
            assert!(Options::try_parse_from(args).is_err(), "{lone:?} without --tls");
        }
        assert!(Options::try_parse_from(["conn-flood", "--tls", "--tls-version", "1.1"]).is_err());
    }

    #[test]
    fn refuses_what_is_not_loopback() {
        assert!(parse(&["--target", "10.0.0.1:3010"]).check(None).is_err());
        assert!(parse(&["--publisher-target", "10.0.0.1:3010"]).check(None).is_err());
        let o = parse(&["--target", "127.0.0.1:3443", "--publisher-target", "127.0.0.1:3010"]);
        assert_eq!(o.publisher_target(), "127.0.0.1:3010".parse().unwrap());
        assert_eq!(parse(&["--target", "127.0.0.1:9"]).publisher_target().port(), 9);
        assert!(parse(&["--source-base", "10.0.0.2"]).check(None).is_err());
        assert!(parse(&["--sources", "0"]).check(None).is_ok());
    }
}

//! The shaddock daemon: command line, logging, start, and graceful drain on SIGTERM/SIGINT.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing_subscriber::EnvFilter;

use shaddock::Server;
use shaddock::config::{Config, LogFormat, PLACEHOLDER_SECRET};

/// A push gateway that speaks NetEase Pomelo's hybrid protocol.
#[derive(Debug, Parser)]
#[command(version = shaddock::VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon (the default command).
    Run {
        /// The configuration file; without it, the built-in defaults (one demo app).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print the default configuration, every key commented.
    Config,
    /// Validate a configuration file and say which key is wrong and why. Exit status: 0 valid,
    /// 1 invalid, 2 valid but with warnings (a placeholder secret).
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Run { config: None }) {
        Command::Run { config } => run(config),
        Command::Config => {
            print!("{}", Config::default_toml());
            Ok(())
        }
        Command::Check { config: path } => match check(&path) {
            Ok(0) => Ok(()),
            Ok(_) => return ExitCode::from(2),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shaddock: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `shaddock check`: the file, then what it names (the protos), as a start would read them;
/// returns how many warnings it printed.
fn check(path: &std::path::Path) -> anyhow::Result<usize> {
    let config = Config::load(path)?;
    Server::check(&config).map_err(anyhow::Error::msg)?;
    let placeholders: Vec<usize> =
        (0..config.apps.len()).filter(|&i| config.apps[i].secret == PLACEHOLDER_SECRET).collect();
    for i in &placeholders {
        eprintln!(
            "shaddock: warning: apps[{i}].secret is the placeholder of the default file: anyone \
             who has read it can push to the app's clients; change it"
        );
    }
    match placeholders.len() {
        0 => println!("{}: ok", path.display()),
        n => println!("{}: ok, with {n} warning(s)", path.display()),
    }
    Ok(placeholders.len())
}

fn run(path: Option<PathBuf>) -> anyhow::Result<()> {
    let mut config = match &path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    config.apply_backend_env()?;
    init_logging(&config)?;
    if let Some(secret) = config.generated_demo_secret() {
        tracing::warn!(
            apikey = "demo",
            secret,
            "no SHADDOCK_DEMO_SECRET set: generated a management secret for the demo app"
        );
        // Ready to paste into the shell that runs the README's curl examples.
        eprintln!("export SECRET={secret}");
    }
    for app in config.apps.iter().filter(|a| a.secret == PLACEHOLDER_SECRET) {
        tracing::warn!(apikey = %app.apikey, "this app still has the placeholder secret from the default file: change it");
    }
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP]).context("installing signal handlers")?;
    let server = Server::start(config.clone()).context("starting the server")?;
    for signal in signals.forever() {
        if signal == SIGHUP {
            reload(&server, path.as_deref());
            continue;
        }
        tracing::info!(signal, drain_secs = config.client.drain_secs, "draining before exit");
        break;
    }
    server.shutdown().context("draining")?;
    tracing::info!("stopped");
    Ok(())
}

/// SIGHUP: reads the configuration file again and applies its apps and certificates; a file
/// that does not load (or a reload that cannot apply) keeps the running configuration, and the
/// log says why.
fn reload(server: &Server, path: Option<&std::path::Path>) {
    let Some(path) = path else {
        tracing::info!("SIGHUP: started without --config, so only certificates are read again");
        let _ = server.reload_certificates();
        return;
    };
    let loaded = Config::load(path).map_err(anyhow::Error::from).and_then(|mut config| {
        config.apply_backend_env()?;
        Ok(config)
    });
    let config = match loaded {
        Ok(config) => config,
        Err(e) => {
            let file = path.display();
            tracing::warn!(%file, error = %e, "reload failed: the running configuration stays");
            // The certificate files are those the running configuration names.
            let _ = server.reload_certificates();
            return;
        }
    };
    match server.reload(&config) {
        Ok(done) => {
            tracing::info!(
                added = %done.added.join(","),
                changed = %done.changed.join(","),
                removed = %done.removed.join(","),
                "configuration reloaded"
            );
            if !done.need_restart.is_empty() {
                let sections = done.need_restart.join(", ");
                tracing::warn!(%sections, "these settings changed and take effect at the next start");
            }
        }
        Err(e) => tracing::warn!(error = %e, "reload failed: the running configuration stays"),
    }
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) => EnvFilter::try_new(directives).context("RUST_LOG")?,
        Err(_) => EnvFilter::try_new(&config.log.level).context("log.level")?,
    };
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
    Ok(())
}

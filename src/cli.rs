//! The command line: `ecr-proxy serve …`, `ecr-proxy emulator …` and `ecr-proxy cache …`
//! (`cache_cmd`). Every flag can also be
//! given as an `ECR_PROXY_*` environment variable; `--help` shows each one's variable and default
//! the same way. This module parses, wires and starts things: under `--local` it starts the
//! emulator and makes it the proxy's ECR, so `proxy` never imports the emulator. It says at start
//! what the proxy talks to. Only `main.rs` exits the process.

pub mod cache_cmd;
mod emulator_cmd;

pub use emulator_cmd::{EmulatorArgs, MissingLayersArg};

use crate::config::{self, Listen, ProxyConfig};
use crate::ecr::startup::{self, CredentialStatus};
use crate::ecr::Upstream;
use crate::emulator::{self, EmulatorConfig, RunningEmulator};
use crate::proxy::{self, RunningProxy};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "ecr-proxy",
    version,
    about = "An OCI registry that keeps images in Amazon ECR"
)]
pub struct Cli {
    /// Log format (RUST_LOG filters, e.g. `debug` or `info,ecr_proxy=debug`)
    #[arg(
        long,
        global = true,
        env = "ECR_PROXY_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the registry: the OCI distribution API on top of Amazon ECR.
    Serve(ServeArgs),
    /// Run the local ECR-compatible backend (AWS JSON 1.1 API, SigV4, data on disk).
    Emulator(EmulatorArgs),
    /// The disk cache ([cache]): warm it with images, show what it holds, prune it.
    Cache(cache_cmd::CacheArgs),
}

/// `--listen` and `--blob-mode` can be set in the config file too, which must win over their
/// defaults: `Cli::parse_layered` keeps them only when the command line or their variable gave
/// them, and `config::load` layers the rest.
#[derive(Parser, Debug)]
pub struct ServeArgs {
    /// Address to listen on, HOST:PORT; a host name is resolved at start
    #[arg(
        long,
        env = "ECR_PROXY_LISTEN",
        default_value = "127.0.0.1:5000",
        value_name = "HOST:PORT"
    )]
    pub listen: Option<Listen>,
    /// TOML configuration file (config/ecr-proxy.toml documents every key)
    #[arg(long, env = "ECR_PROXY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run the ECR emulator in this process, with its data in DIR, and use it as ECR (no AWS
    /// needed); also turns on create-on-push and stream mode unless the file or environment
    /// sets them
    #[arg(long, env = "ECR_PROXY_LOCAL", value_name = "DIR")]
    pub local: Option<PathBuf>,
    /// How blob GETs are answered (under --local: stream, unless the file sets it)
    #[arg(long, env = "ECR_PROXY_BLOB_MODE", default_value = "redirect")]
    pub blob_mode: Option<BlobModeArg>,
}

impl Cli {
    /// Parse a command line (`main` passes the process's). A value clap took from the default
    /// of `serve --listen` or `--blob-mode` is dropped, so that the config file can set it.
    pub fn parse_layered<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Cli::command().try_get_matches_from(args)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        if let (Command::Serve(args), Some(m)) =
            (&mut cli.command, matches.subcommand_matches("serve"))
        {
            let defaulted = |id| m.value_source(id) == Some(ValueSource::DefaultValue);
            if defaulted("listen") {
                args.listen = None;
            }
            if defaulted("blob_mode") {
                args.blob_mode = None;
            }
        }
        Ok(cli)
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BlobModeArg {
    /// The proxy fetches the layer and streams it.
    Stream,
    /// 307 to ECR's presigned layer URL.
    Redirect,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("the embedded ECR emulator (--local) could not start: {0}")]
    Local(#[source] emulator::EmulatorError),
    #[error(transparent)]
    Emulator(#[from] emulator::EmulatorError),
    #[error("cannot resolve the listen address {listen}: {why}")]
    Resolve { listen: Listen, why: String },
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Start(#[from] proxy::StartError),
    #[error("cannot install the SIGTERM/SIGINT handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Drain(#[from] proxy::DrainError),
    #[error(transparent)]
    Cache(#[from] cache_cmd::CacheError),
}

impl Cli {
    /// The log level without `RUST_LOG`: `info`, but `warn` for the cache commands, whose
    /// in-process proxy would otherwise log every request among the progress lines.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            Command::Cache(_) => "warn",
            _ => "info",
        }
    }
}

/// Set up logging. `RUST_LOG` filters; without it, `level` (`Cli::default_log_level`), and the
/// SDK's own targets only at ERROR (`ecr::startup::QUIET_SDK_LOGS`): the start-up line says what
/// was found, and failed ECR calls are logged by `ecr::errors`.
pub fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},{}", startup::QUIET_SDK_LOGS))
    });
    // Colours only for a person at a terminal, not in files or a container's log.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// How long start-up waits for the credential providers to answer (IMDS, the last of the
/// default chain, may wait on its own timeouts where no instance metadata answers). The proxy
/// already serves meanwhile; only the start-up line waits.
const CREDENTIALS_WAIT: Duration = Duration::from_secs(10);

/// Run a command: `serve` and `emulator` until they are stopped (Ctrl-C or SIGTERM), `cache`
/// until it is done, its progress written to `output`. Returns the report for standard output
/// (only the `cache` commands have one).
pub async fn run(cli: Cli, output: cache_cmd::Output) -> Result<String, CliError> {
    match cli.command {
        Command::Serve(args) => {
            let flags = config::Flags {
                listen: args.listen,
                local: args.local.clone(),
                blob_mode: args.blob_mode.map(|m| match m {
                    BlobModeArg::Stream => config::BlobMode::Stream,
                    BlobModeArg::Redirect => config::BlobMode::Redirect,
                }),
            };
            let mut config = config::load(args.config.as_deref(), &config::ProcessEnv, &flags)?;
            let listen = config.listen.clone();
            // Lives until the proxy has stopped.
            let _emulator = match config.local.clone() {
                Some(dir) => Some(start_local(&dir, &mut config).await?),
                None => None,
            };
            let running = proxy::start(config).await?;
            // Before "ready": a signal from then on drains (earlier, it ends the process).
            let mut signals = Signals::install()?;
            // The start-up line may wait for credentials (up to CREDENTIALS_WAIT); a signal
            // meanwhile must start the drain at once, not after it.
            let first = tokio::select! {
                biased;
                s = signals.next() => s,
                () = announce(&running, &listen) => signals.next().await,
            };
            tracing::info!(
                "{first} received: draining for up to {}s (a second SIGTERM or SIGINT stops at once)",
                running.drain_period().as_secs()
            );
            let second = async {
                let again = signals.next().await;
                tracing::warn!("{again} received during the drain: stopping at once");
            };
            running.drain(second).await?;
            Ok(String::new())
        }
        Command::Emulator(args) => {
            let mut signals = Signals::install()?;
            let running = emulator_cmd::start(&args).await?;
            let signal = signals.next().await;
            tracing::info!("{signal} received: stopping the emulator");
            running.shutdown();
            Ok(String::new())
        }
        Command::Cache(args) => cache_cmd::run(args, output).await,
    }
}

/// `--local`: the emulator on a loopback port, made the proxy's ECR with its own credentials.
async fn start_local(dir: &Path, config: &mut ProxyConfig) -> Result<RunningEmulator, CliError> {
    let emu_config = EmulatorConfig::new(dir);
    let creds = emu_config
        .credentials
        .first()
        .map(|c| (c.access_key_id.clone(), c.secret_access_key.clone()));
    let region = emu_config.region.clone();
    let emu = emulator::start(emu_config).await.map_err(CliError::Local)?;
    config.upstream = Upstream {
        region: Some(region),
        endpoint_url: Some(emu.endpoint()),
        static_credentials: creds,
        registry_id: None,
    };
    Ok(emu)
}

/// The start-up line: where the registry listens, which ECR it calls, and whether it has
/// credentials. "ready" only with credentials; without, a WARN that says what to set.
async fn announce(running: &RunningProxy, listen: &Listen) {
    let s = running.ecr().startup(CREDENTIALS_WAIT).await;
    let registry = running.url();
    match &s.credentials {
        CredentialStatus::Found(source) => tracing::info!(
            %registry, %listen, endpoint = %s.endpoint, region = %s.region,
            registry_id = ?s.registry.to_string(), credentials = ?source,
            "ecr-proxy ready"
        ),
        CredentialStatus::Missing(why) => tracing::warn!(
            %registry, %listen, endpoint = %s.endpoint, region = %s.region,
            registry_id = ?s.registry.to_string(), credentials = "none",
            "ecr-proxy serves, but found no AWS credentials ({why}): set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or give it a role (IRSA, EKS Pod Identity, an \
             instance profile); /readyz answers 503 until ECR answers"
        ),
    }
}

/// SIGTERM and SIGINT (Ctrl-C), caught from installation on, so that a second one during a
/// drain is not lost. The first asks for a drain; a second stops at once (what operators expect
/// of Ctrl-C pressed twice); the process exits 0 either way, as it stopped because it was told to.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, CliError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate()).map_err(CliError::Signals)?,
                int: signal(SignalKind::interrupt()).map_err(CliError::Signals)?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The next signal's name.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            "Ctrl-C"
        }
    }
}

#[cfg(test)]
mod tests;

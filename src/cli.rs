//! The command line: `ecr-proxy serve …` and `ecr-proxy emulator …`. Flags can also be given as
//! `ECR_PROXY_*` environment variables. This module parses and starts things; only `main.rs`
//! exits the process.

use crate::emulator::{self, Credentials, EmulatorConfig, MissingLayers};
use crate::{config, proxy};
use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "ecr-proxy",
    version,
    about = "An OCI registry that keeps images in Amazon ECR"
)]
pub struct Cli {
    /// Log format.
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
}

#[derive(Parser, Debug)]
pub struct ServeArgs {
    /// Address to listen on [env: ECR_PROXY_LISTEN; default 127.0.0.1:5000].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// TOML configuration file (see config/).
    #[arg(long, env = "ECR_PROXY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Run the embedded ECR emulator on this directory and use it as ECR (no AWS needed).
    #[arg(long)]
    pub local: Option<PathBuf>,
    /// How blob GETs are answered [env: ECR_PROXY_BLOB_MODE].
    #[arg(long)]
    pub blob_mode: Option<BlobModeArg>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BlobModeArg {
    /// The proxy fetches the layer and streams it.
    Stream,
    /// 307 to ECR's presigned layer URL.
    Redirect,
}

#[derive(Parser, Debug)]
pub struct EmulatorArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "ECR_PROXY_EMULATOR_LISTEN",
        default_value = "127.0.0.1:5100"
    )]
    pub listen: SocketAddr,
    /// Directory for repositories, layers, manifests and uploads (created if missing).
    #[arg(long, env = "ECR_PROXY_EMULATOR_DATA")]
    pub data: PathBuf,
    /// The twelve-digit account id of the emulated registry.
    #[arg(
        long,
        env = "ECR_PROXY_EMULATOR_ACCOUNT_ID",
        default_value = "123456789012"
    )]
    pub account_id: String,
    #[arg(long, env = "ECR_PROXY_EMULATOR_REGION", default_value = "us-east-1")]
    pub region: String,
    /// The access key id requests must be signed with.
    #[arg(long, env = "ECR_PROXY_EMULATOR_ACCESS_KEY_ID", default_value = "test")]
    pub access_key_id: String,
    /// The secret access key requests must be signed with.
    #[arg(
        long,
        env = "ECR_PROXY_EMULATOR_SECRET_ACCESS_KEY",
        default_value = "test",
        hide_env_values = true
    )]
    pub secret_access_key: String,
    /// The `partSize` InitiateLayerUpload announces, in bytes (5–20 MiB).
    #[arg(long, env = "ECR_PROXY_EMULATOR_PART_SIZE", default_value_t = emulator::DEFAULT_PART_SIZE)]
    pub part_size: u64,
    /// How BatchCheckLayerAvailability reports an absent layer.
    #[arg(
        long,
        env = "ECR_PROXY_EMULATOR_MISSING_LAYERS",
        default_value = "failure"
    )]
    pub missing_layers: MissingLayersArg,
    /// Fault injection, e.g. `UploadLayerPart:throttle=0.2,drop=0.1;*:latency=5ms`.
    #[arg(long, env = "ECR_PROXY_EMULATOR_FAULTS", default_value = "")]
    pub faults: String,
    /// Seed for fault injection (same seed, same faults).
    #[arg(long, env = "ECR_PROXY_EMULATOR_FAULT_SEED", default_value_t = 0)]
    pub fault_seed: u64,
    /// Expire an upload no part reached for this many seconds, with its data (ECR expires
    /// unfinished uploads too; the default is a day)
    #[arg(long, env = "ECR_PROXY_EMULATOR_UPLOAD_EXPIRY_SECS", default_value_t = emulator::DEFAULT_UPLOAD_EXPIRY.as_secs())]
    pub upload_expiry_secs: u64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MissingLayersArg {
    /// A `failures[]` entry with MissingLayerDigest.
    Failure,
    /// A `layers[]` entry with layerAvailability UNAVAILABLE.
    Unavailable,
}

impl EmulatorArgs {
    pub fn config(&self) -> EmulatorConfig {
        EmulatorConfig {
            listen: self.listen,
            data_dir: self.data.clone(),
            account_id: self.account_id.clone(),
            region: self.region.clone(),
            credentials: vec![Credentials {
                access_key_id: self.access_key_id.clone(),
                secret_access_key: self.secret_access_key.clone(),
            }],
            part_size: self.part_size,
            missing_layers: match self.missing_layers {
                MissingLayersArg::Failure => MissingLayers::Failure,
                MissingLayersArg::Unavailable => MissingLayers::Unavailable,
            },
            faults: self.faults.clone(),
            fault_seed: self.fault_seed,
        }
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Emulator(#[from] emulator::EmulatorError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Start(#[from] proxy::StartError),
    #[error("cannot install the SIGTERM/SIGINT handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Drain(#[from] proxy::DrainError),
}

/// Set up logging (`RUST_LOG` filters; default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Run a command until it is stopped (Ctrl-C or SIGTERM).
pub async fn run(cli: Cli) -> Result<(), CliError> {
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
            let config = config::load(args.config.as_deref(), &config::ProcessEnv, &flags)?;
            let running = proxy::start(config).await?;
            // Before "ready": a signal from then on drains (earlier, it ends the process).
            let mut signals = Signals::install()?;
            let upstream = running
                .emulator()
                .map(|e| e.endpoint())
                .unwrap_or_else(|| "AWS".into());
            tracing::info!(registry = %format!("http://{}", running.addr()), %upstream, "ecr-proxy ready");
            let first = signals.next().await;
            tracing::info!(
                "{first} received: draining for up to {}s (a second SIGTERM or SIGINT stops at once)",
                running.drain_period().as_secs()
            );
            let second = async {
                let again = signals.next().await;
                tracing::warn!("{again} received during the drain: stopping at once");
            };
            running.drain(second).await?;
            Ok(())
        }
        Command::Emulator(args) => {
            let tuning = emulator::EmulatorTuning {
                upload_expiry: std::time::Duration::from_secs(args.upload_expiry_secs),
            };
            let mut signals = Signals::install()?;
            let running = emulator::start_tuned(args.config(), tuning).await?;
            tracing::info!(endpoint = %running.endpoint(), data = %args.data.display(), "emulator ready");
            let signal = signals.next().await;
            tracing::info!("{signal} received: stopping the emulator");
            running.shutdown();
            Ok(())
        }
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

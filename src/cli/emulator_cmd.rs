//! The `emulator` subcommand: its flags (each with its `ECR_PROXY_EMULATOR_*` variable and
//! default, sizes in the config file's units) and starting it. The emulator's behaviour is
//! `emulator`'s; this module only turns flags into its configuration.

use super::CliError;
use crate::config::{ByteSize, Listen};
use crate::emulator::{self, Credentials, EmulatorConfig, MissingLayers, RunningEmulator};
use clap::{Parser, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
pub struct EmulatorArgs {
    /// Address to listen on, HOST:PORT; a host name is resolved at start
    #[arg(
        long,
        env = "ECR_PROXY_EMULATOR_LISTEN",
        default_value = "127.0.0.1:5100",
        value_name = "HOST:PORT"
    )]
    pub listen: Listen,
    /// Directory for repositories, layers, manifests and uploads (created if missing)
    #[arg(long, env = "ECR_PROXY_EMULATOR_DATA", value_name = "DIR")]
    pub data: PathBuf,
    /// The twelve-digit account id of the emulated registry
    #[arg(
        long,
        env = "ECR_PROXY_EMULATOR_ACCOUNT_ID",
        default_value = "123456789012"
    )]
    pub account_id: String,
    /// The region the emulated registry names in repository ARNs and URIs (requests signed for
    /// any region are accepted)
    #[arg(long, env = "ECR_PROXY_EMULATOR_REGION", default_value = "us-east-1")]
    pub region: String,
    /// The access key id requests must be signed with
    #[arg(long, env = "ECR_PROXY_EMULATOR_ACCESS_KEY_ID", default_value = "test")]
    pub access_key_id: String,
    /// The secret access key requests must be signed with
    #[arg(
        long,
        env = "ECR_PROXY_EMULATOR_SECRET_ACCESS_KEY",
        default_value = "test",
        hide_env_values = true
    )]
    pub secret_access_key: String,
    /// The partSize InitiateLayerUpload announces: 5MiB to 20MiB, in bytes or with a unit as in
    /// the config file (KiB, MiB, GiB)
    #[arg(
        long,
        env = "ECR_PROXY_EMULATOR_PART_SIZE",
        default_value_t = ByteSize(emulator::DEFAULT_PART_SIZE),
        value_name = "SIZE"
    )]
    pub part_size: ByteSize,
    /// How BatchCheckLayerAvailability reports an absent layer
    #[arg(
        long,
        env = "ECR_PROXY_EMULATOR_MISSING_LAYERS",
        default_value = "failure"
    )]
    pub missing_layers: MissingLayersArg,
    /// Fault injection, e.g. `UploadLayerPart:throttle=0.2,drop=0.1;*:latency=5ms` (none unless set)
    #[arg(long, env = "ECR_PROXY_EMULATOR_FAULTS", value_name = "SPEC")]
    pub faults: Option<String>,
    /// Seed for fault injection (same seed, same faults)
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
    /// The emulator's configuration, listening on `listen` (the flag's address, resolved).
    pub fn config(&self, listen: SocketAddr) -> EmulatorConfig {
        EmulatorConfig {
            listen,
            data_dir: self.data.clone(),
            account_id: self.account_id.clone(),
            region: self.region.clone(),
            credentials: vec![Credentials {
                access_key_id: self.access_key_id.clone(),
                secret_access_key: self.secret_access_key.clone(),
            }],
            part_size: self.part_size.0,
            missing_layers: match self.missing_layers {
                MissingLayersArg::Failure => MissingLayers::Failure,
                MissingLayersArg::Unavailable => MissingLayers::Unavailable,
            },
            faults: self.faults.clone().unwrap_or_default(),
            fault_seed: self.fault_seed,
        }
    }
}

/// Resolve the listen address and start the emulator.
pub async fn start(args: &EmulatorArgs) -> Result<RunningEmulator, CliError> {
    let resolve_error = |why: String| CliError::Resolve {
        listen: args.listen.clone(),
        why,
    };
    let addr = *args
        .listen
        .resolve()
        .await
        .map_err(|e| resolve_error(e.to_string()))?
        .first()
        .ok_or_else(|| resolve_error("the name has no address".into()))?;
    let tuning = emulator::EmulatorTuning {
        upload_expiry: std::time::Duration::from_secs(args.upload_expiry_secs),
    };
    let running = emulator::start_tuned(args.config(addr), tuning).await?;
    tracing::info!(endpoint = %running.endpoint(), listen = %args.listen, data = %args.data.display(), "emulator ready");
    Ok(running)
}

//! `ecr-proxy emulator`: a local Amazon ECR. It speaks ECR's AWS JSON 1.1 protocol for the
//! operations the proxy uses, with ECR's validation, limits and exceptions; verifies SigV4;
//! keeps its data on disk; and serves the layer download URLs it hands out. The proxy reaches it
//! through aws-sdk-ecr exactly as it reaches AWS, so every test exercises the real translation.
//!
//! Layers: `server` (connections) → `api` (one call: body, SigV4, faults, errors) → `ops` (ECR's
//! rules) → `store` (index and disk). This module and its children must not import the proxy or
//! `aws_sdk_ecr`: the emulator is the far side of the wire.

mod api;
mod download;
pub mod error;
pub mod faults;
mod input;
mod manifest;
mod ops;
mod server;
pub mod sigv4;
mod store;
mod sweeper;

pub use ops::MissingLayers;
pub use sigv4::Credentials;
pub use sweeper::DEFAULT_UPLOAD_EXPIRY;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The `partSize` ECR announces: 10 MiB.
pub const DEFAULT_PART_SIZE: u64 = crate::parts::ECR_PART_SIZE;

/// How to run an emulator.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub account_id: String,
    pub region: String,
    pub credentials: Vec<Credentials>,
    pub part_size: u64,
    pub missing_layers: MissingLayers,
    /// Fault-injection spec (see `faults`), empty for none.
    pub faults: String,
    pub fault_seed: u64,
}

impl EmulatorConfig {
    /// Defaults for `data_dir`: loopback ephemeral port, account 123456789012, us-east-1,
    /// credentials `test`/`test`, no faults.
    pub fn new(data_dir: impl Into<PathBuf>) -> EmulatorConfig {
        EmulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            credentials: vec![Credentials {
                access_key_id: "test".into(),
                secret_access_key: "test".into(),
            }],
            part_size: DEFAULT_PART_SIZE,
            missing_layers: MissingLayers::Failure,
            faults: String::new(),
            fault_seed: 0,
        }
    }
}

/// Settings beside `EmulatorConfig`: kept apart only because `EmulatorConfig` is built field by
/// field outside the emulator (`cli.rs`); `start` uses the defaults.
#[derive(Clone, Debug)]
pub struct EmulatorTuning {
    /// An upload no part reached for this long is expired with its data (see
    /// `DEFAULT_UPLOAD_EXPIRY` for why a day).
    pub upload_expiry: Duration,
}

impl Default for EmulatorTuning {
    fn default() -> Self {
        EmulatorTuning {
            upload_expiry: DEFAULT_UPLOAD_EXPIRY,
        }
    }
}

/// Why an emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("invalid emulator configuration: {0}")]
    Config(String),
    #[error("cannot open the data directory {path}: {source}")]
    Store {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// State shared by every connection.
pub(crate) struct Shared {
    config: EmulatorConfig,
    addr: SocketAddr,
    ctx: ops::Ctx,
    faults: faults::Faults,
    /// Seconds added to "now" when a download URL's expiry is checked (see `set_clock_skew_secs`).
    clock_skew_secs: AtomicI64,
    /// Request-body buffers kept for reuse (see `api::BodyPool`).
    bodies: api::BodyPool,
    /// Calls per operation (every operation, answered or not), for tests that count ECR calls.
    calls: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// Layer downloads (GETs of download URLs) served, whole or ranged.
    downloads: std::sync::atomic::AtomicU64,
    /// Microseconds waited before each 256 KiB of a layer download (a slow S3), 0 for none.
    download_pace_us: std::sync::atomic::AtomicU64,
    /// The next layer download breaks off after this many bytes (once), 0 for none.
    download_cut: std::sync::atomic::AtomicU64,
}

/// A running emulator. Dropping it (or `shutdown`) stops it and closes its connections.
pub struct RunningEmulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
    sweeper: tokio::task::JoinHandle<()>,
}

impl RunningEmulator {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL to give aws-sdk-ecr or the AWS CLI.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The sizes of the parts layer `digest` of `repo` was uploaded in (for tests of re-chunking).
    pub fn layer_parts(&self, repo: &str, digest: &str) -> Option<Vec<u64>> {
        let index = self.shared.ctx.store.lock();
        index
            .repos
            .get(repo)?
            .layers
            .get(digest)
            .map(|l| l.parts.clone())
    }

    /// Wait until the server stops (it runs until shut down).
    pub async fn wait(self) {
        let _ = (&mut { self }.task).await;
    }

    /// Move the clock that download URLs are checked against by `secs` seconds: for tests of
    /// URL expiry (3601 makes a URL handed out now expired). Nothing else uses it.
    /// Calls of `op` the fault rules have seen (retries included); 0 for operations no rule covers.
    pub fn fault_calls(&self, op: &str) -> u64 {
        self.shared.faults.calls(op)
    }

    /// Calls of ECR operation `op` received so far (`GetDownloadUrlForLayer`, …).
    pub fn calls(&self, op: &str) -> u64 {
        let c = self.shared.calls.lock().unwrap_or_else(|p| p.into_inner());
        c.get(op).copied().unwrap_or(0)
    }

    /// Wait `pace` before each 256 KiB of every layer download from now on (a slow S3: for tests
    /// that must see a download in progress); zero turns it off.
    pub fn set_download_pace(&self, pace: std::time::Duration) {
        self.shared
            .download_pace_us
            .store(pace.as_micros() as u64, Ordering::Relaxed);
    }

    /// Break the next layer download off after `bytes` bytes (the connection errors, as a reset
    /// S3 connection would): for tests of resumed downloads. Once.
    pub fn cut_next_download_after(&self, bytes: u64) {
        self.shared.download_cut.store(bytes, Ordering::Relaxed);
    }

    /// Layer downloads (GET of a download URL) served so far.
    pub fn downloads(&self) -> u64 {
        self.shared.downloads.load(Ordering::Relaxed)
    }

    /// Faults of `kind` injected into `op` so far.
    pub fn faults_injected(&self, op: &str, kind: faults::Fault) -> u64 {
        self.shared.faults.injected(op, kind)
    }

    pub fn set_clock_skew_secs(&self, secs: i64) {
        self.shared.clock_skew_secs.store(secs, Ordering::Relaxed);
    }

    /// Uploads in progress (not completed, not expired).
    pub fn upload_count(&self) -> usize {
        self.shared.ctx.store.lock().uploads.len()
    }

    pub fn shutdown(self) {
        self.task.abort();
        self.sweeper.abort();
    }
}

impl Shared {
    pub(crate) fn count_call(&self, op: &str) {
        let mut c = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        match c.get_mut(op) {
            Some(n) => *n += 1,
            None => {
                c.insert(op.to_string(), 1);
            }
        }
    }

    pub(crate) fn count_download(&self) {
        self.downloads.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.task.abort();
        self.sweeper.abort();
    }
}

/// Open the data directory, bind, and serve in the background.
pub async fn start(config: EmulatorConfig) -> Result<RunningEmulator, EmulatorError> {
    start_tuned(config, EmulatorTuning::default()).await
}

/// `start` with tuning settings.
pub async fn start_tuned(
    config: EmulatorConfig,
    tuning: EmulatorTuning,
) -> Result<RunningEmulator, EmulatorError> {
    if tuning.upload_expiry.is_zero() {
        return Err(EmulatorError::Config(
            "the upload expiry must be more than zero".into(),
        ));
    }
    if !crate::names::is_registry_id(&config.account_id) {
        return Err(EmulatorError::Config(format!(
            "account id `{}` must be twelve digits",
            config.account_id
        )));
    }
    if config.credentials.is_empty() {
        return Err(EmulatorError::Config(
            "at least one access key is needed".into(),
        ));
    }
    if !(crate::parts::MIN_PART_SIZE..=crate::parts::MAX_PART_SIZE).contains(&config.part_size) {
        return Err(EmulatorError::Config(format!(
            "part size {} must be between 5 MiB and 20 MiB",
            config.part_size
        )));
    }
    let faults =
        faults::Faults::parse(&config.faults, config.fault_seed).map_err(EmulatorError::Config)?;
    let dir = config.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || store::Store::open(&dir))
        .await
        .expect("store loading does not panic")
        .map_err(|source| EmulatorError::Store {
            path: config.data_dir.clone(),
            source,
        })?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| EmulatorError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| EmulatorError::Bind {
            addr: config.listen,
            source,
        })?;
    let ctx = ops::Ctx {
        store,
        account: config.account_id.clone(),
        region: config.region.clone(),
        part_size: config.part_size,
        missing_layers: config.missing_layers,
    };
    let shared = Arc::new(Shared {
        config,
        addr,
        ctx,
        faults,
        clock_skew_secs: AtomicI64::new(0),
        bodies: api::BodyPool::default(),
        calls: Default::default(),
        downloads: Default::default(),
        download_pace_us: Default::default(),
        download_cut: Default::default(),
    });
    // Uploads that expired while the emulator was down go before anything is served.
    let (swept, expiry) = (shared.clone(), tuning.upload_expiry);
    let _ = tokio::task::spawn_blocking(move || sweeper::sweep(&swept, expiry)).await;
    let sweeper = tokio::spawn(sweeper::run(shared.clone(), expiry));
    tracing::info!(%addr, "ECR emulator listening");
    let task = tokio::spawn(server::accept_loop(listener, shared.clone()));
    Ok(RunningEmulator {
        addr,
        shared,
        task,
        sweeper,
    })
}

fn unix_now() -> i64 {
    download::unix_now()
}

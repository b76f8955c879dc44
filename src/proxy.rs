//! The registry server: the OCI Distribution / Docker Registry v2 API, carried out with ECR API
//! calls. `server` accepts connections and applies the tower layers; `handlers` parse the route
//! and answer per resource; `sessions` hold blob uploads; `error` is the one place errors become
//! responses. This module wires them together. It must not import `aws_sdk_ecr` (see `ecr`).

pub mod error;
mod fetch;
mod handlers;
mod holder;
mod manifest_cache;
mod repos;
pub mod route;
mod server;
pub mod sessions;

use crate::config::{Listen, ProxyConfig};
use crate::ecr::Ecr;
use sessions::Sessions;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What every request handler shares.
pub struct App {
    pub ecr: Ecr,
    pub sessions: Arc<Sessions>,
    pub config: ProxyConfig,
    pub fetcher: fetch::Fetcher,
    pub manifests: manifest_cache::ManifestCache,
}

/// Bytes of manifests kept by digest.
const MANIFEST_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no AWS region is configured: set AWS_REGION (or upstream.region in the config file)")]
    NoRegion,
    #[error("cannot load the system's CA certificates for fetching layers over HTTPS (install ca-certificates): {0}")]
    Tls(std::io::Error),
    #[error(
        "cannot create the upload spool directory (set uploads.spool_dir to a writable place): {0}"
    )]
    Spool(std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: Listen,
        source: std::io::Error,
    },
}

/// A running proxy. Dropping it stops it.
pub struct RunningProxy {
    addr: SocketAddr,
    app: Arc<App>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningProxy {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its ECR client (for the start-up report).
    pub fn ecr(&self) -> &Ecr {
        &self.app.ecr
    }

    /// Upload sessions open right now.
    pub fn open_sessions(&self) -> usize {
        self.app.sessions.len()
    }

    /// Bytes of the buffer budget promised right now.
    pub fn budget_in_use(&self) -> u64 {
        self.app.sessions.budget.in_use()
    }

    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start the proxy against `config.upstream` (under `--local` the CLI has pointed it at the
/// emulator it started). A host name in `config.listen` is resolved here; the first of its
/// addresses that binds is used.
pub async fn start(config: ProxyConfig) -> Result<RunningProxy, StartError> {
    let ecr = Ecr::connect(&config.upstream).await;
    if !ecr.has_region() {
        return Err(StartError::NoRegion);
    }
    let bind_error = |source| StartError::Bind {
        addr: config.listen.clone(),
        source,
    };
    let listener = tokio::net::TcpListener::bind((config.listen.host(), config.listen.port()))
        .await
        .map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let spool = sessions::spool::Spool::create(
        config.uploads.spool_dir.as_deref(),
        config.uploads.spool_max,
    )
    .map_err(StartError::Spool)?;
    let sessions = Arc::new(Sessions::new(
        config.buffer_budget,
        config.session_idle,
        config.uploads.max_sessions_per_client,
        spool,
    ));
    sessions.spawn_reaper(Duration::from_secs(30).min(config.session_idle));
    let fetcher = fetch::Fetcher::new().map_err(StartError::Tls)?;
    let manifests = manifest_cache::ManifestCache::new(MANIFEST_CACHE_BYTES);
    let app = Arc::new(App {
        ecr,
        sessions,
        config,
        fetcher,
        manifests,
    });
    tracing::info!(%addr, "registry listening");
    let task = tokio::spawn(server::accept_loop(listener, app.clone()));
    Ok(RunningProxy { addr, app, task })
}

//! The registry server: the OCI Distribution / Docker Registry v2 API, carried out with ECR API
//! calls. `server` accepts connections and applies the tower layers; `handlers` parse the route
//! and answer per resource; `sessions` hold blob uploads; `error` is the one place errors become
//! responses; `admin` serves the health and metrics endpoints on a port of their own. This module
//! wires them together (with `crate::shared`'s invalidations from other replicas, when
//! `[sessions]` names a Redis) and stops them (`RunningProxy::drain`). It must not import `aws_sdk_ecr`
//! (see `ecr`).

mod admin;
mod cached;
pub mod error;
mod fetch;
mod handlers;
mod holder;
mod manifest_cache;
mod readiness;
mod repos;
pub mod route;
mod server;
pub mod sessions;

use crate::auth::Auth;
use crate::config::{Listen, ProxyConfig};
use crate::ecr::Ecr;
use crate::listener::{Drained, Stop};
use crate::metrics::Metrics;
use crate::tls::Tls;
use sessions::Sessions;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What every request handler shares.
pub struct App {
    pub ecr: Ecr,
    pub sessions: Arc<Sessions>,
    pub config: ProxyConfig,
    pub fetcher: fetch::Fetcher,
    pub manifests: manifest_cache::ManifestCache,
    /// Set when a drain begins: `/readyz` answers 503 from then on.
    pub draining: AtomicBool,
    /// Concurrent `/readyz` probes share one ECR call.
    pub readiness: readiness::Readiness,
    pub metrics: Metrics,
    /// `[auth]`: who may do what. `None`: everyone may do everything (a loopback sidecar).
    pub auth: Option<Arc<Auth>>,
    /// `[cache]`: pulls served from disk.
    pub cache: Option<Arc<crate::cache::Cache>>,
    /// Concurrent manifest lookups through the cache share one ECR call.
    pub flights: cached::flight::Flights,
    /// `[sessions] redis_url`: state shared with other replicas.
    pub shared: Option<crate::shared::Shared>,
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
    #[error(transparent)]
    Auth(#[from] crate::auth::SetupError),
    #[error("cannot open the cache folder {dir} (cache.dir): {source}")]
    Cache {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
    /// `[tls]`: a certificate, key or client CA that cannot be used (the message names it).
    #[error(transparent)]
    ServerTls(#[from] crate::tls::TlsError),
    #[error(
        "refusing to serve {addr} without authentication: anyone who reaches it could push, \
         retag and delete every image the proxy's AWS role can. Add an [auth] section (README \
         § Authentication), listen on 127.0.0.1, or, if something in front of the proxy \
         authenticates clients, set server.allow_unauthenticated = true \
         (ECR_PROXY_ALLOW_UNAUTHENTICATED=true)"
    )]
    Unauthenticated { addr: SocketAddr },
    #[error(transparent)]
    Shared(#[from] crate::shared::SharedError),
    #[error("cannot listen on {addr} (server.admin_listen, ECR_PROXY_ADMIN_LISTEN): {source}")]
    AdminBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Why a drain did not end cleanly.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error("the accept loop ended abnormally: {0}")]
    AcceptLoop(#[from] tokio::task::JoinError),
}

/// What a drain left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// Connections still open at the end of the drain period (or at a second signal), cut.
    pub cut: usize,
    /// Upload sessions open at the end: their clients must push those blobs again (0 with a
    /// shared session store: other replicas go on with them).
    pub unfinished_uploads: usize,
}

/// A running proxy. Dropping it stops it at once; `drain` stops it gracefully.
pub struct RunningProxy {
    addr: SocketAddr,
    app: Arc<App>,
    task: tokio::task::JoinHandle<Drained>,
    stop: Stop,
    /// The admin listener, when `server.admin_listen` is set.
    admin: Option<admin::Admin>,
    /// Whether the registry port speaks TLS (`[tls]`).
    tls: bool,
}

impl RunningProxy {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The registry's base URL: `https://ADDR` with `[tls]`, else `http://ADDR`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The admin listener's address (`/healthz`, `/readyz`, `/metrics`), when one is configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(admin::Admin::addr)
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

    /// How long `drain` lets requests in progress finish (`server.drain_secs`).
    pub fn drain_period(&self) -> Duration {
        self.app.config.connections.drain_period
    }

    /// Stop gracefully (SIGTERM): `/readyz` answers 503 at once; the listening socket is closed,
    /// so new connections are refused; idle connections are closed; requests in progress get
    /// `drain_period` to finish (each connection closes after its last answer); then the
    /// connections left are cut. `stop_now` resolving (a second signal) cuts them at once. Each
    /// step is logged, with the uploads left unfinished. The embedded emulator serves to the end,
    /// and so does the admin listener (its `/readyz` answers 503 `draining` to new connections
    /// meanwhile); it stops once the registry's connections are done.
    pub async fn drain(
        mut self,
        stop_now: impl Future<Output = ()>,
    ) -> Result<Stopped, DrainError> {
        self.app.draining.store(true, Ordering::SeqCst);
        match self.admin_addr() {
            Some(admin) => tracing::info!(
                %admin,
                "draining: /readyz answers 503 from now on (the admin listener keeps answering \
                 until the drain ends)"
            ),
            None => tracing::info!("draining: /readyz answers 503 from now on"),
        }
        self.stop.drain();
        let drained = tokio::select! {
            joined = &mut self.task => joined,
            () = stop_now => {
                self.stop.cut();
                (&mut self.task).await
            }
        }?;
        if let Some(admin) = self.admin.take() {
            admin.stop().await;
        }
        if self.app.shared.is_some() {
            // Each upload's state is in Redis as its last request left it: other replicas go on.
            let copies = self.app.sessions.len();
            tracing::info!(
                copies,
                "stopped: uploads in progress stay in the shared session store for other replicas"
            );
            return Ok(Stopped {
                cut: drained.cut,
                unfinished_uploads: 0,
            });
        }
        let unfinished_uploads = self.app.sessions.len();
        if unfinished_uploads > 0 {
            tracing::warn!(
                unfinished_uploads,
                "stopped: {unfinished_uploads} uploads unfinished (their clients must push those \
                 blobs again)"
            );
        } else {
            tracing::info!(unfinished_uploads, "stopped: 0 uploads unfinished");
        }
        Ok(Stopped {
            cut: drained.cut,
            unfinished_uploads,
        })
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start the proxy against `config.upstream` (under `--local` the CLI has pointed it at the
/// emulator it started). A host name in `config.listen` is resolved here; the first of its
/// addresses that binds is used. With `[tls]` the registry port speaks only TLS (the admin
/// listener stays plain HTTP); its certificate and key are read before anything binds.
pub async fn start(config: ProxyConfig) -> Result<RunningProxy, StartError> {
    let auth = match &config.auth {
        Some(settings) => Some(Arc::new(Auth::new(settings)?)),
        None => None,
    };
    let tls = config.tls.as_ref().map(Tls::load).transpose()?;
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
    if auth.is_none() && !addr.ip().is_loopback() {
        if !config.allow_unauthenticated {
            return Err(StartError::Unauthenticated { addr });
        }
        tracing::warn!(
            %addr,
            "serving a non-loopback address without authentication \
             (server.allow_unauthenticated): every client may push, retag and delete"
        );
    }
    let admin_listener = match config.admin_listen {
        Some(a) => Some(admin::bind(a).await?),
        None => None,
    };
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
    let metrics = metrics_for(&sessions, config.buffer_budget);
    let cache = match &config.cache {
        Some(c) => {
            let cache = crate::cache::Cache::open(c, metrics.clone()).map_err(|source| {
                StartError::Cache {
                    dir: c.dir.clone(),
                    source,
                }
            })?;
            let weak = Arc::downgrade(&cache);
            metrics.gauge_fn(
                "cache_fills_in_flight",
                "Blobs being fetched into the disk cache",
                move || {
                    weak.upgrade()
                        .map_or(0, |c| c.stats().fills_in_flight as u64)
                },
            );
            let weak = Arc::downgrade(&cache);
            metrics.gauge_fn(
                "cache_bytes",
                "Bytes of blobs and manifests in the disk cache",
                move || weak.upgrade().map_or(0, |c| c.stats().bytes),
            );
            Some(cache)
        }
        None => None,
    };
    let shared = crate::shared::Shared::new(&config.sessions, metrics.clone())?;
    let app = Arc::new(App {
        ecr: ecr.with_metrics(metrics.clone()),
        sessions,
        config,
        fetcher,
        draining: AtomicBool::new(false),
        readiness: readiness::Readiness::default(),
        manifests: manifests.with_metrics(metrics.clone()),
        metrics,
        auth,
        cache,
        flights: cached::flight::Flights::default(),
        shared,
    });
    if let Some(shared) = &app.shared {
        let weak = Arc::downgrade(&app);
        shared.on_invalidation(move |notice| {
            if let Some(app) = weak.upgrade() {
                invalidated(&app, notice);
            }
        });
    }
    tracing::info!(%addr, tls = tls.is_some(), "registry listening");
    let stop = Stop::default();
    let serves_tls = tls.is_some();
    let task = tokio::spawn(server::accept_loop(
        listener,
        app.clone(),
        stop.clone(),
        tls,
    ));
    let admin = admin_listener.map(|(l, a)| admin::Admin::spawn(l, a, app.clone()));
    Ok(RunningProxy {
        addr,
        app,
        task,
        stop,
        admin,
        tls: serves_tls,
    })
}

/// What another replica (or this one) announced through `[sessions]`: the in-memory manifest
/// cache and, with `[cache]`, the disk cache forget it. After a lost subscription the in-memory
/// cache is cleared, since deletes may have been missed (the disk cache re-asks ECR past
/// `cache.tag_ttl_secs`).
fn invalidated(app: &App, notice: crate::shared::Notice) {
    use crate::shared::Notice;
    let msg = match notice {
        Notice::Resubscribed => {
            app.manifests.clear();
            tracing::info!(
                "cleared the in-memory manifest cache: invalidations from other replicas may                  have been missed while the Redis subscription was down"
            );
            return;
        }
        Notice::Invalidate(msg) => msg,
    };
    let valid = crate::names::is_repository_name(&msg.repository)
        && msg.tag.as_deref().is_none_or(crate::names::is_oci_tag)
        && msg
            .digest
            .as_deref()
            .is_none_or(|d| crate::digest::Digest::parse(d).is_ok());
    if !valid {
        tracing::warn!(
            ?msg,
            "ignored an invalidation naming no valid repository, tag or digest"
        );
        return;
    }
    tracing::debug!(?msg, "invalidation from a replica");
    if msg.kind == crate::shared::InvalidationKind::Upload {
        match (&msg.upload, msg.version) {
            (Some(id), None) => app.sessions.remove_in(&msg.repository, id),
            (Some(id), Some(v)) => app.sessions.remove_stale(&msg.repository, id, v),
            (None, _) => {}
        }
        return;
    }
    if let (crate::shared::InvalidationKind::Delete, Some(d)) = (msg.kind, &msg.digest) {
        app.manifests.remove(&msg.repository, d);
    }
    if let Some(cache) = &app.cache {
        cached::manifests::forget_elsewhere(cache, &msg);
    }
}

/// The proxy's metrics, with the gauges read from `sessions` at each scrape (weakly: the
/// registry must not keep the sessions, and their spool directory, alive).
fn metrics_for(sessions: &Arc<Sessions>, budget: u64) -> Metrics {
    let m = Metrics::new();
    let s = Arc::downgrade(sessions);
    m.gauge_fn("upload_sessions", "Blob uploads open", move || {
        s.upgrade().map_or(0, |s| s.len() as u64)
    });
    let s = Arc::downgrade(sessions);
    m.gauge_fn(
        "buffer_bytes_in_use",
        "Bytes of the upload buffer budget promised to parts (free buffers kept for reuse included)",
        move || s.upgrade().map_or(0, |s| s.budget.in_use()),
    );
    m.gauge_fn(
        "buffer_bytes_limit",
        "The upload buffer budget (uploads.buffer_budget)",
        move || budget,
    );
    m
}

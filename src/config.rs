//! The proxy's configuration: a TOML file (examples in `config/`), overridden by `ECR_PROXY_*`
//! environment variables, overridden by flags. The environment is read through the `Env` trait so
//! tests pass a map instead of mutating the process. Everything is validated here, before any
//! port is bound, with messages that say what to fix. AWS settings (credentials, region,
//! `AWS_ENDPOINT_URL_ECR`) stay with the AWS SDK's own chain.

mod auth;
mod cache;
mod limits;
mod sessions;
mod values;

pub use auth::{Action, AuthSettings, Issuer, Rule, TlsSettings};
pub use cache::{CacheSettings, MirrorRoute};

pub use limits::{ConnectionLimits, UploadLimits};
pub use sessions::SessionsSettings;
pub use values::{parse_size, ByteSize, Listen};

use crate::ecr::{NewRepository, Upstream};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MIB: u64 = 1024 * 1024;

/// Where blob GETs get their bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobMode {
    /// 307 to ECR's presigned layer URL.
    Redirect,
    /// The proxy fetches the layer and streams it.
    Stream,
}

/// Which repositories are created on first push, and how.
#[derive(Clone, Debug)]
pub struct CreatePolicy {
    pub enabled: bool,
    /// Name patterns (`*` matches anything, `/` included); empty means every name.
    pub patterns: Vec<String>,
    pub settings: NewRepository,
}

impl CreatePolicy {
    pub fn allows(&self, name: &str) -> bool {
        self.enabled && (self.patterns.is_empty() || self.patterns.iter().any(|p| glob(p, name)))
    }
}

/// Whether `s` matches the pattern `p`, where `*` matches any run of characters, `/` included.
/// Iterative (backtracking only to the last `*`), so a pattern with many stars against a long
/// name (an OIDC subject) costs at most length × length steps, never exponential time.
pub fn glob(p: &str, s: &str) -> bool {
    let (p, s) = (p.as_bytes(), s.as_bytes());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// `HOST:PORT`; a host name is resolved when the proxy binds.
    pub listen: Listen,
    /// A listener of its own for `/healthz`, `/readyz` and `/metrics` (`server.admin_listen`).
    pub admin_listen: Option<std::net::SocketAddr>,
    pub upstream: Upstream,
    /// Cut parts of this size instead of ECR's `partSize` (5–20 MiB).
    pub part_size: Option<u64>,
    pub create: CreatePolicy,
    pub session_idle: Duration,
    pub buffer_budget: u64,
    pub blob_mode: BlobMode,
    /// Run the embedded emulator on this directory and use it as ECR.
    pub local: Option<PathBuf>,
    pub connections: ConnectionLimits,
    /// A request without a body gets 503 when its answer has not begun within this.
    pub request_timeout: Duration,
    pub uploads: UploadLimits,
    /// `[auth]`: without it every client may do everything the proxy's IAM role may.
    pub auth: Option<AuthSettings>,
    /// `[tls]`: without it the registry speaks plain HTTP.
    pub tls: Option<TlsSettings>,
    /// `server.allow_unauthenticated`: serve a non-loopback address without `[auth]`.
    pub allow_unauthenticated: bool,
    /// `[cache]`: pulls served from a disk cache (blobs are then always streamed).
    pub cache: Option<CacheSettings>,
    /// `[[mirror.routes]]`: upstream registries' names mapped onto ECR repositories.
    pub mirror_routes: Vec<MirrorRoute>,
    /// `[sessions]`: state shared between replicas through Redis (none without `redis_url`).
    pub sessions: SessionsSettings,
}

/// Reads configuration variables.
pub trait Env {
    fn var(&self, key: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, key: &str) -> Option<String> {
        self.get(key).cloned()
    }
}

/// A configuration problem, with what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<String>,
    blob_mode: Option<BlobMode>,
    #[serde(default)]
    upstream: UpstreamFile,
    #[serde(default)]
    repositories: ReposFile,
    #[serde(default)]
    uploads: UploadsFile,
    #[serde(default)]
    server: limits::ServerFile,
    auth: Option<auth::AuthFile>,
    tls: Option<auth::TlsFile>,
    cache: Option<cache::CacheFile>,
    mirror: Option<cache::MirrorFile>,
    sessions: Option<sessions::SessionsFile>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct UpstreamFile {
    region: Option<String>,
    registry_id: Option<String>,
    endpoint_url: Option<String>,
    part_size: Option<Size>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct ReposFile {
    create_on_push: Option<bool>,
    create_patterns: Option<Vec<String>>,
    image_tag_mutability: Option<String>,
    scan_on_push: Option<bool>,
    encryption_type: Option<String>,
    kms_key: Option<String>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct UploadsFile {
    buffer_budget: Option<Size>,
    idle_timeout_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    budget_wait_secs: Option<u64>,
    max_uploads_per_client: Option<usize>,
    spool_dir: Option<PathBuf>,
    spool_max: Option<Size>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum Size {
    Bytes(u64),
    Text(String),
}

fn size_of(s: &Size) -> Result<u64, String> {
    match s {
        Size::Bytes(n) => Ok(*n),
        Size::Text(t) => parse_size(t),
    }
}

/// Flags given on the command line (they win over everything).
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub listen: Option<Listen>,
    pub local: Option<PathBuf>,
    pub blob_mode: Option<BlobMode>,
}

/// Build the configuration from a file (optional), the environment and flags.
pub fn load(file: Option<&Path>, env: &dyn Env, flags: &Flags) -> Result<ProxyConfig, ConfigError> {
    let base = file
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let f: File = match file {
        None => File::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.into(),
                source,
            })?;
            toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.into(),
                message: e.message().to_string(),
            })?
        }
    };
    let invalid = |what: &str, msg: String| ConfigError::Invalid(format!("{what}: {msg}"));
    let local = flags
        .local
        .clone()
        .or_else(|| env.var("ECR_PROXY_LOCAL").map(PathBuf::from));

    let listen = match (&flags.listen, env.var("ECR_PROXY_LISTEN").or(f.listen)) {
        (Some(a), _) => a.clone(),
        (None, Some(s)) => s.parse().map_err(|m| invalid("listen", m))?,
        (None, None) => Listen::from(std::net::SocketAddr::from(([127, 0, 0, 1], 5000))),
    };
    let blob_mode_given = flags.blob_mode.is_some()
        || env.var("ECR_PROXY_BLOB_MODE").is_some()
        || f.blob_mode.is_some();
    let blob_mode = match (flags.blob_mode, env.var("ECR_PROXY_BLOB_MODE")) {
        (Some(m), _) => m,
        (None, Some(s)) => match s.as_str() {
            "stream" => BlobMode::Stream,
            "redirect" => BlobMode::Redirect,
            _ => {
                return Err(invalid(
                    "ECR_PROXY_BLOB_MODE",
                    format!("`{s}` must be `stream` or `redirect`"),
                ))
            }
        },
        (None, None) => f
            .blob_mode
            .unwrap_or(if local.is_some() || f.cache.is_some() {
                BlobMode::Stream
            } else {
                BlobMode::Redirect
            }),
    };
    let part_size = match env
        .var("ECR_PROXY_PART_SIZE")
        .map(Size::Text)
        .or(f.upstream.part_size)
    {
        Some(s) => Some(size_of(&s).map_err(|m| invalid("part_size", m))?),
        None => None,
    };
    if let Some(p) = part_size {
        if !(crate::parts::MIN_PART_SIZE..=crate::parts::MAX_PART_SIZE).contains(&p) {
            return Err(invalid(
                "part_size",
                format!("{p} bytes is outside ECR's 5 MiB–20 MiB part limits"),
            ));
        }
    }
    let budget = match env
        .var("ECR_PROXY_BUFFER_BUDGET")
        .map(Size::Text)
        .or(f.uploads.buffer_budget)
    {
        Some(s) => size_of(&s).map_err(|m| invalid("buffer_budget", m))?,
        None => 512 * MIB,
    };
    let needed = crate::parts::part_cost(part_size.unwrap_or(crate::parts::ECR_PART_SIZE));
    if budget < needed {
        return Err(invalid("buffer_budget", format!("{budget} bytes cannot hold one part in flight; it needs at least {needed} ({} MiB)", needed.div_ceil(MIB))));
    }
    let idle_secs = match env.var("ECR_PROXY_SESSION_IDLE_SECS") {
        Some(s) => s.parse().map_err(|_| {
            invalid(
                "ECR_PROXY_SESSION_IDLE_SECS",
                format!("`{s}` is not a number of seconds"),
            )
        })?,
        None => f.uploads.idle_timeout_secs.unwrap_or(3600),
    };
    let admin_listen = limits::admin_listen(&f.server, env, &listen)?;
    let connections = limits::connections(&f.server, env)?;
    let request_timeout = limits::request_timeout(&f.server, env)?;
    let uploads = limits::uploads(
        limits::UploadsKeys {
            body_timeout_secs: f.uploads.body_timeout_secs,
            budget_wait_secs: f.uploads.budget_wait_secs,
            max_sessions_per_client: f.uploads.max_uploads_per_client,
            spool_dir: f.uploads.spool_dir.clone(),
            spool_max: match env
                .var("ECR_PROXY_SPOOL_MAX")
                .map(Size::Text)
                .or(f.uploads.spool_max.clone())
            {
                Some(s) => Some(size_of(&s).map_err(|m| invalid("spool_max", m))?),
                None => None,
            },
        },
        env,
    )?;
    let allow_unauthenticated = match env.var("ECR_PROXY_ALLOW_UNAUTHENTICATED") {
        Some(s) => s.parse().map_err(|_| {
            invalid(
                "ECR_PROXY_ALLOW_UNAUTHENTICATED",
                format!("`{s}` must be true or false"),
            )
        })?,
        None => f.server.allow_unauthenticated.unwrap_or(false),
    };
    let auth = auth::auth(f.auth, &base)?;
    let tls = auth::tls(f.tls, &base)?;
    let cache = cache::cache(f.cache, &base)?;
    let mirror_routes = cache::routes(f.mirror)?;
    let sessions = sessions::sessions(f.sessions, env)?;
    if cache.is_some() && blob_mode == BlobMode::Redirect {
        debug_assert!(blob_mode_given);
        return Err(invalid(
            "blob_mode",
            "`redirect` sends clients to ECR for blobs, so [cache] would never serve one; use \
             `stream` (the default with [cache])"
                .into(),
        ));
    }
    let r = f.repositories;
    let create_on_push = match env.var("ECR_PROXY_CREATE_REPOSITORIES") {
        Some(s) => s.parse().map_err(|_| {
            invalid(
                "ECR_PROXY_CREATE_REPOSITORIES",
                format!("`{s}` must be true or false"),
            )
        })?,
        None => r.create_on_push.unwrap_or(local.is_some()),
    };
    let mutability = env
        .var("ECR_PROXY_TAG_MUTABILITY")
        .or(r.image_tag_mutability)
        .unwrap_or_else(|| "MUTABLE".into());
    if !["MUTABLE", "IMMUTABLE"].contains(&mutability.as_str()) {
        return Err(invalid(
            "image_tag_mutability",
            format!("`{mutability}` must be MUTABLE or IMMUTABLE"),
        ));
    }
    let encryption_type = r.encryption_type.unwrap_or_else(|| "AES256".into());
    if !["AES256", "KMS", "KMS_DSSE"].contains(&encryption_type.as_str()) {
        return Err(invalid(
            "encryption_type",
            format!("`{encryption_type}` must be AES256, KMS or KMS_DSSE"),
        ));
    }
    let patterns = env
        .var("ECR_PROXY_CREATE_PATTERNS")
        .map(|s| {
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        })
        .or(r.create_patterns)
        .unwrap_or_default();
    let registry_id = env.var("ECR_PROXY_REGISTRY_ID").or(f.upstream.registry_id);
    if let Some(id) = &registry_id {
        if !crate::names::is_registry_id(id) {
            return Err(invalid(
                "registry_id",
                format!("`{id}` must be a twelve-digit account id"),
            ));
        }
    }
    Ok(ProxyConfig {
        listen,
        admin_listen,
        upstream: Upstream {
            region: f.upstream.region,
            endpoint_url: f.upstream.endpoint_url,
            static_credentials: None,
            registry_id,
        },
        part_size,
        create: CreatePolicy {
            enabled: create_on_push,
            patterns,
            settings: NewRepository {
                image_tag_mutability: mutability,
                scan_on_push: r.scan_on_push.unwrap_or(false),
                encryption_type,
                kms_key: r.kms_key,
            },
        },
        session_idle: Duration::from_secs(idle_secs),
        buffer_budget: budget,
        blob_mode,
        local,
        connections,
        request_timeout,
        uploads,
        auth,
        tls,
        allow_unauthenticated,
        cache,
        mirror_routes,
        sessions,
    })
}

#[cfg(test)]
mod tests;

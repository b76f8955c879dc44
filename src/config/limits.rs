//! The limits that keep one client from stopping the service for others: connection timers and
//! caps and the request timeout (`[server]`) and upload limits (`[uploads]`), read from the file
//! and `ECR_PROXY_*` variables with their defaults; and the other `[server]` key, the admin
//! listener's address (`admin_listen`), checked against the registry's. Only values live here;
//! `listener`, `proxy::server`, `proxy::admin` and `proxy::sessions` enforce them.

use super::{ConfigError, Env, Listen};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Connection limits, enforced by the accept loop and hyper.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// A request's head must arrive whole within this (slow-header clients are cut).
    pub header_read_timeout: Duration,
    /// A kept-alive connection with no request in progress is closed after this.
    pub keep_alive_idle: Duration,
    /// Connections served at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// On SIGTERM/SIGINT, how long requests in progress may take to finish before their
    /// connections are cut (under Kubernetes' default 30 s grace period).
    pub drain_period: Duration,
}

/// Upload limits, enforced by `proxy::sessions` and the upload handlers.
#[derive(Clone, Debug)]
pub struct UploadLimits {
    /// A request body that sends no byte for this long is ended; the upload keeps what it got.
    pub body_read_timeout: Duration,
    /// How long a request waits for part memory when the budget is spent before it gets 429.
    pub budget_wait: Duration,
    /// Upload sessions one client address may have open at once.
    pub max_sessions_per_client: usize,
    /// Where idle uploads park their buffered tail, so it holds no memory; `None` is the system's
    /// temporary directory.
    pub spool_dir: Option<PathBuf>,
    /// The most bytes parked in the spool at once; past it, tails stay in memory.
    pub spool_max: u64,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(20),
            keep_alive_idle: Duration::from_secs(90),
            max_connections: 4096,
            drain_period: Duration::from_secs(25),
        }
    }
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits {
            body_read_timeout: Duration::from_secs(30),
            budget_wait: Duration::from_secs(60),
            max_sessions_per_client: 1024,
            spool_dir: None,
            spool_max: 4 << 30,
        }
    }
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct ServerFile {
    header_read_timeout_secs: Option<u64>,
    keep_alive_idle_secs: Option<u64>,
    max_connections: Option<usize>,
    drain_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    admin_listen: Option<String>,
    /// Serve a non-loopback address without `[auth]` (read in `config`).
    pub(super) allow_unauthenticated: Option<bool>,
}

/// A request without a body (GET, HEAD, DELETE) must have its answer's head within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The `[uploads]` keys this module reads (the budget and expiry are read in `config`).
#[derive(Default, Debug)]
pub(super) struct UploadsKeys {
    pub body_timeout_secs: Option<u64>,
    pub budget_wait_secs: Option<u64>,
    pub max_sessions_per_client: Option<usize>,
    pub spool_dir: Option<PathBuf>,
    pub spool_max: Option<u64>,
}

fn number<T: std::str::FromStr>(
    env: &dyn Env,
    var: &str,
    file: Option<T>,
) -> Result<Option<T>, ConfigError> {
    match env.var(var) {
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| ConfigError::Invalid(format!("{var}: `{s}` is not a whole number"))),
        None => Ok(file),
    }
}

fn positive(what: &str, n: u64) -> Result<u64, ConfigError> {
    if n == 0 {
        return Err(ConfigError::Invalid(format!(
            "{what}: must be at least 1 (0 would turn the limit off)"
        )));
    }
    Ok(n)
}

pub(super) fn connections(f: &ServerFile, env: &dyn Env) -> Result<ConnectionLimits, ConfigError> {
    let d = ConnectionLimits::default();
    let secs = |var, file: Option<u64>, default: Duration, what| -> Result<Duration, ConfigError> {
        Ok(match number(env, var, file)? {
            Some(n) => Duration::from_secs(positive(what, n)?),
            None => default,
        })
    };
    let header_read_timeout = secs(
        "ECR_PROXY_HEADER_TIMEOUT_SECS",
        f.header_read_timeout_secs,
        d.header_read_timeout,
        "header_read_timeout_secs",
    )?;
    let keep_alive_idle = secs(
        "ECR_PROXY_KEEP_ALIVE_SECS",
        f.keep_alive_idle_secs,
        d.keep_alive_idle,
        "keep_alive_idle_secs",
    )?;
    let max_connections = match number(env, "ECR_PROXY_MAX_CONNECTIONS", f.max_connections)? {
        Some(n) => positive("max_connections", n as u64)? as usize,
        None => d.max_connections,
    };
    let drain_period = match number(env, "ECR_PROXY_DRAIN_SECS", f.drain_secs)? {
        Some(0) => {
            return Err(ConfigError::Invalid(
                "drain_secs: must be at least 1 (0 would cut every request in progress on \
                 SIGTERM); keep it under the orchestrator's grace period (Kubernetes: 30 s)"
                    .into(),
            ))
        }
        Some(n) => Duration::from_secs(n),
        None => d.drain_period,
    };
    Ok(ConnectionLimits {
        header_read_timeout,
        keep_alive_idle,
        max_connections,
        drain_period,
    })
}

/// `server.request_timeout_secs` (`ECR_PROXY_REQUEST_TIMEOUT_SECS`), at least 1 s.
pub(super) fn request_timeout(f: &ServerFile, env: &dyn Env) -> Result<Duration, ConfigError> {
    Ok(
        match number(
            env,
            "ECR_PROXY_REQUEST_TIMEOUT_SECS",
            f.request_timeout_secs,
        )? {
            Some(n) => Duration::from_secs(positive("request_timeout_secs", n)?),
            None => REQUEST_TIMEOUT,
        },
    )
}

/// `server.admin_listen` (`ECR_PROXY_ADMIN_LISTEN`): where `/healthz`, `/readyz` and `/metrics`
/// are also served, on a listener of their own; unset (or empty) means none. It must not be the
/// registry's `listen` address, nor overlap it (the same port on the same or an unspecified
/// address); port 0 (a free port for each) never clashes.
pub(super) fn admin_listen(
    f: &ServerFile,
    env: &dyn Env,
    listen: &Listen,
) -> Result<Option<SocketAddr>, ConfigError> {
    let Some(s) = env.var("ECR_PROXY_ADMIN_LISTEN").or(f.admin_listen.clone()) else {
        return Ok(None);
    };
    let admin: SocketAddr = s.parse().map_err(|_| {
        ConfigError::Invalid(format!(
            "admin_listen: `{s}` is not an address like 0.0.0.0:9090"
        ))
    })?;
    // A host name in `listen` may resolve to the admin address: the same port is refused.
    let overlaps = match listen.ip() {
        Some(ip) => admin.ip() == ip || admin.ip().is_unspecified() || ip.is_unspecified(),
        None => true,
    };
    if admin.port() != 0 && admin.port() == listen.port() && overlaps {
        return Err(ConfigError::Invalid(format!(
            "admin_listen: {admin} is the registry's own address (listen = {listen}); give the \
             admin listener a port of its own, e.g. 0.0.0.0:9090, or leave it unset"
        )));
    }
    Ok(Some(admin))
}

pub(super) fn uploads(k: UploadsKeys, env: &dyn Env) -> Result<UploadLimits, ConfigError> {
    let d = UploadLimits::default();
    let body_read_timeout = match number(env, "ECR_PROXY_BODY_TIMEOUT_SECS", k.body_timeout_secs)? {
        Some(n) => Duration::from_secs(positive("body_timeout_secs", n)?),
        None => d.body_read_timeout,
    };
    let budget_wait = match number(env, "ECR_PROXY_BUDGET_WAIT_SECS", k.budget_wait_secs)? {
        Some(n) => Duration::from_secs(n),
        None => d.budget_wait,
    };
    let max_sessions_per_client = match number(
        env,
        "ECR_PROXY_MAX_UPLOADS_PER_CLIENT",
        k.max_sessions_per_client,
    )? {
        Some(n) => positive("max_uploads_per_client", n as u64)? as usize,
        None => d.max_sessions_per_client,
    };
    let spool_dir = env
        .var("ECR_PROXY_SPOOL_DIR")
        .map(PathBuf::from)
        .or(k.spool_dir);
    Ok(UploadLimits {
        body_read_timeout,
        budget_wait,
        max_sessions_per_client,
        spool_dir,
        spool_max: k.spool_max.unwrap_or(d.spool_max),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_drain_period_comes_from_the_file_then_the_environment_and_is_never_zero() {
        let file = |secs| ServerFile {
            drain_secs: secs,
            ..ServerFile::default()
        };
        let period = |f: &ServerFile, e: &[(&str, &str)]| {
            connections(f, &env(e)).map(|l| l.drain_period.as_secs())
        };
        assert_eq!(period(&file(None), &[]).unwrap(), 25);
        assert_eq!(period(&file(Some(10)), &[]).unwrap(), 10);
        assert_eq!(
            period(&file(Some(10)), &[("ECR_PROXY_DRAIN_SECS", "5")]).unwrap(),
            5
        );
        for (f, e) in [
            (file(Some(0)), vec![]),
            (file(None), vec![("ECR_PROXY_DRAIN_SECS", "0")]),
        ] {
            let msg = period(&f, &e).unwrap_err().to_string();
            assert!(msg.contains("drain_secs: must be at least 1"), "{msg}");
        }
        let msg = period(&file(None), &[("ECR_PROXY_DRAIN_SECS", "soon")])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("ECR_PROXY_DRAIN_SECS"), "{msg}");
    }

    #[test]
    fn the_admin_address_is_optional_and_never_the_registry_s_own() {
        let listen: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let file = |a: Option<&str>| ServerFile {
            admin_listen: a.map(str::to_string),
            ..ServerFile::default()
        };
        let admin = |f: &ServerFile, e: &[(&str, &str)], l: SocketAddr| {
            admin_listen(f, &env(e), &l.into()).map(|a| a.map(|a| a.to_string()))
        };
        assert_eq!(admin(&file(None), &[], listen).unwrap(), None);
        let parsed: ServerFile = toml::from_str("admin_listen = \"0.0.0.0:9090\"").unwrap();
        assert_eq!(
            admin(&parsed, &[], listen).unwrap(),
            Some("0.0.0.0:9090".into())
        );
        assert_eq!(
            admin(&file(Some("0.0.0.0:9090")), &[], listen).unwrap(),
            Some("0.0.0.0:9090".into())
        );
        assert_eq!(
            admin(
                &file(Some("0.0.0.0:9090")),
                &[("ECR_PROXY_ADMIN_LISTEN", "127.0.0.1:9091")],
                listen
            )
            .unwrap(),
            Some("127.0.0.1:9091".into())
        );
        // Beside the registry on the same address, and both on free ports: no clash.
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert!(admin(&file(Some("127.0.0.1:0")), &[], any)
            .unwrap()
            .is_some());
        assert!(admin(&file(Some("[::1]:5000")), &[], listen)
            .unwrap()
            .is_some());
        let wild: SocketAddr = "0.0.0.0:5000".parse().unwrap();
        for (a, l) in [
            ("127.0.0.1:5000", listen),
            ("0.0.0.0:5000", listen),
            ("127.0.0.1:5000", wild),
        ] {
            let msg = admin(&file(Some(a)), &[], l).unwrap_err().to_string();
            assert!(
                msg.contains("admin_listen") && msg.contains("registry's own address"),
                "{a} beside {l}: {msg}"
            );
        }
        let msg = admin(
            &file(None),
            &[("ECR_PROXY_ADMIN_LISTEN", "anywhere")],
            listen,
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("not an address like"), "{msg}");
    }
}

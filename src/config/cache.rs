//! The `[cache]` and `[mirror]` sections: the mirror's disk cache (folder, size, how long a tag
//! is trusted, how stale an answer may be while ECR cannot be asked) and the routes that map an
//! upstream registry's names (`?ns=docker.io`, or names without `ns` for a default route) onto
//! ECR repositories. Values only, checked here; `crate::cache` and the proxy's mirror layer use
//! them.

use super::{parse_size, ConfigError};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[cache]`, checked.
#[derive(Clone, Debug)]
pub struct CacheSettings {
    pub dir: PathBuf,
    /// Bytes of blobs and manifests kept; least recently used ones go first.
    pub max_size: u64,
    /// A tag's digest is trusted this long, then asked of ECR again.
    pub tag_ttl: Duration,
    /// While ECR cannot be asked, tags resolve to their last known digest for this long.
    pub max_stale: Duration,
}

/// One `[[mirror.routes]]` entry.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MirrorRoute {
    /// The upstream registry as clients name it (`docker.io`, `ghcr.io`).
    pub registry: String,
    /// Put before the name to make the ECR repository (`docker-hub/`).
    pub prefix: String,
    /// Names without `?ns=` are this registry's (a Docker `registry-mirrors` entry sends Docker
    /// Hub names so): for a proxy that is a dedicated mirror.
    #[serde(default)]
    pub default: bool,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct CacheFile {
    dir: Option<PathBuf>,
    max_size: Option<toml::Value>,
    tag_ttl_secs: Option<u64>,
    max_stale_secs: Option<u64>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct MirrorFile {
    #[serde(default)]
    routes: Vec<MirrorRoute>,
}

fn invalid(msg: String) -> ConfigError {
    ConfigError::Invalid(msg)
}

/// `[cache]` as given, or `None` when the section is absent.
pub(super) fn cache(
    f: Option<CacheFile>,
    base: &Path,
) -> Result<Option<CacheSettings>, ConfigError> {
    let Some(f) = f else { return Ok(None) };
    let dir = f
        .dir
        .ok_or_else(|| invalid("cache.dir: the folder for cached blobs is required".into()))?;
    let max_size = match f.max_size {
        None => {
            return Err(invalid(
                "cache.max_size: required (for example \"20GiB\")".into(),
            ))
        }
        Some(toml::Value::Integer(n)) if n > 0 => n as u64,
        Some(toml::Value::String(s)) => {
            parse_size(&s).map_err(|m| invalid(format!("cache.max_size: {m}")))?
        }
        Some(other) => return Err(invalid(format!("cache.max_size: `{other}` is not a size"))),
    };
    if max_size < 16 * 1024 * 1024 {
        return Err(invalid(format!(
            "cache.max_size: {max_size} bytes is too small to hold an image (at least 16MiB)"
        )));
    }
    let tag_ttl = f.tag_ttl_secs.unwrap_or(60);
    let max_stale = f.max_stale_secs.unwrap_or(86_400);
    if max_stale < tag_ttl {
        return Err(invalid(format!(
            "cache.max_stale_secs ({max_stale}) must be at least cache.tag_ttl_secs ({tag_ttl})"
        )));
    }
    Ok(Some(CacheSettings {
        dir: if dir.is_relative() {
            base.join(dir)
        } else {
            dir
        },
        max_size,
        tag_ttl: Duration::from_secs(tag_ttl),
        max_stale: Duration::from_secs(max_stale),
    }))
}

/// `[[mirror.routes]]`, checked: registries named once, prefixes that are repository name
/// beginnings ending in `/`, at most one default.
pub(super) fn routes(f: Option<MirrorFile>) -> Result<Vec<MirrorRoute>, ConfigError> {
    let routes = f.map(|m| m.routes).unwrap_or_default();
    for (i, r) in routes.iter().enumerate() {
        let what = format!("mirror.routes #{} ({})", i + 1, r.registry);
        if r.registry.is_empty() || r.registry.contains('/') {
            return Err(invalid(format!(
                "{what}: `registry` is a host name like docker.io"
            )));
        }
        let stem = r.prefix.strip_suffix('/').unwrap_or("");
        if stem.is_empty()
            || crate::names::ecr_repository_name_problem(&format!("{stem}/x1")).is_some()
        {
            return Err(invalid(format!(
                "{what}: `prefix` must be the start of ECR repository names ending in `/`, like \"docker-hub/\""
            )));
        }
        if routes[..i].iter().any(|o| o.registry == r.registry) {
            return Err(invalid(format!(
                "{what}: the registry has another route before"
            )));
        }
    }
    if routes.iter().filter(|r| r.default).count() > 1 {
        return Err(invalid(
            "mirror.routes: only one route may be the default".into(),
        ));
    }
    Ok(routes)
}

//! The `[sessions]` section: where replicas share upload sessions and manifest invalidations
//! (`redis_url`, `ECR_PROXY_REDIS_URL`) and the prefix of every key and channel they use there
//! (`key_prefix`). Values only, checked here; `crate::shared` connects. Without `redis_url`
//! everything stays in the process.

use super::{ConfigError, Env};
use serde::Deserialize;

/// The default `key_prefix`.
pub const DEFAULT_KEY_PREFIX: &str = "ecr-proxy:";

/// `[sessions]`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionsSettings {
    /// `redis://[user:password@]host[:port][/db]`; `None`: nothing is shared.
    pub redis_url: Option<String>,
    /// Put before every Redis key and channel name (several deployments may share one Redis).
    pub key_prefix: String,
}

impl Default for SessionsSettings {
    fn default() -> Self {
        SessionsSettings {
            redis_url: None,
            key_prefix: DEFAULT_KEY_PREFIX.into(),
        }
    }
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct SessionsFile {
    redis_url: Option<String>,
    key_prefix: Option<String>,
}

fn invalid(msg: String) -> ConfigError {
    ConfigError::Invalid(msg)
}

/// `[sessions]` with `ECR_PROXY_REDIS_URL` over the file's `redis_url`.
pub(super) fn sessions(
    f: Option<SessionsFile>,
    env: &dyn Env,
) -> Result<SessionsSettings, ConfigError> {
    let f = f.unwrap_or_default();
    let redis_url = env.var("ECR_PROXY_REDIS_URL").or(f.redis_url);
    if let Some(url) = &redis_url {
        check_url(url)?;
    }
    let key_prefix = f.key_prefix.unwrap_or_else(|| DEFAULT_KEY_PREFIX.into());
    if key_prefix.len() > 64
        || key_prefix
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid(format!(
            "sessions.key_prefix: `{key_prefix}` must be at most 64 characters without spaces"
        )));
    }
    Ok(SessionsSettings {
        redis_url,
        key_prefix,
    })
}

/// A URL the Redis client accepts, without TLS (not built in).
fn check_url(url: &str) -> Result<(), ConfigError> {
    use redis::IntoConnectionInfo;
    if url.starts_with("rediss://") {
        return Err(invalid(
            "sessions.redis_url (ECR_PROXY_REDIS_URL): TLS to Redis (rediss://) is not supported; \
             use redis:// inside the cluster's network"
                .into(),
        ));
    }
    if !url.starts_with("redis://") && !url.starts_with("redis+unix://") {
        return Err(invalid(format!(
            "sessions.redis_url (ECR_PROXY_REDIS_URL): `{url}` must start with redis:// (for \
             example redis://redis:6379)"
        )));
    }
    url.into_connection_info().map(|_| ()).map_err(|e| {
        invalid(format!(
            "sessions.redis_url (ECR_PROXY_REDIS_URL): `{url}` is not a Redis URL: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(toml: &str, env: &[(&str, &str)]) -> Result<SessionsSettings, ConfigError> {
        let f: Option<SessionsFile> = Some(toml::from_str(toml).unwrap());
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        sessions(f, &env)
    }

    #[test]
    fn absent_means_in_process() {
        let s = sessions(None, &HashMap::new()).unwrap();
        assert_eq!(s, SessionsSettings::default());
        assert_eq!(s.key_prefix, "ecr-proxy:");
    }

    #[test]
    fn environment_wins_over_the_file() {
        let s = parse(
            "redis_url = \"redis://127.0.0.1:6379\"\nkey_prefix = \"team-a:\"",
            &[("ECR_PROXY_REDIS_URL", "redis://redis.example:6380/2")],
        )
        .unwrap();
        assert_eq!(s.redis_url.as_deref(), Some("redis://redis.example:6380/2"));
        assert_eq!(s.key_prefix, "team-a:");
    }

    #[test]
    fn bad_values_say_what_to_fix() {
        let e = |t: &str| parse(t, &[]).unwrap_err().to_string();
        assert!(e("redis_url = \"http://x\"").contains("must start with redis://"));
        assert!(e("redis_url = \"rediss://x\"").contains("not supported"));
        assert!(e("redis_url = \"redis://x:notaport\"").contains("not a Redis URL"));
        assert!(e("key_prefix = \"a b\"").contains("without spaces"));
    }
}

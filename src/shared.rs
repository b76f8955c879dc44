//! State shared between replicas through Redis (`[sessions] redis_url`): one `Shared` handle per
//! process holding a `ConnectionManager` (one multiplexed connection that reconnects by itself),
//! with bounded timeouts, typed errors, a "Redis reachable?" notion logged once per change
//! (`health`), and the `ecr_proxy_redis_errors_total{op}` count. `invalidate` carries manifest
//! invalidations between replicas over pub/sub; `subscriber` keeps a subscription of its own
//! alive.
//!
//! Owns the Redis client and nothing else: it knows no HTTP, no ECR, no proxy types (the proxy
//! hands it callbacks), and `uploads` is the upload session store (record, tail, fenced lock) built on the
//! plain operations below (`get`, `set_ex`, `del`, `eval`, `publish`). Every key and channel name
//! given to them is put after `key_prefix`.

mod health;
pub mod invalidate;
mod subscriber;
pub mod uploads;

pub use invalidate::Notice;
pub use invalidate::{Invalidation, InvalidationKind};
pub use redis::Script;
pub use subscriber::SubscriptionEvent;
pub use uploads::{Begin, End, Lease, Position, Status, TailWrite, UploadRecord};

use crate::config::SessionsSettings;
use crate::metrics::Metrics;
use health::Health;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long opening a connection to Redis may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long Redis may take to answer one command.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// An operation as a whole (a reconnection included) gives up after this.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(4);

/// Why a Redis operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    /// Redis answered with an error, or could not be reached (the message says which).
    #[error("Redis {op}: {source}")]
    Redis {
        op: &'static str,
        #[source]
        source: redis::RedisError,
    },
    #[error("Redis {op}: no answer within {} s", OPERATION_TIMEOUT.as_secs())]
    TimedOut { op: &'static str },
    /// `redis_url` cannot be used (config checks it first, so only a bug or a race lands here).
    #[error("cannot use the Redis URL (sessions.redis_url): {0}")]
    Url(redis::RedisError),
}

impl SharedError {
    /// Whether the failure says Redis is unreachable (as opposed to an error answer).
    pub fn unreachable(&self) -> bool {
        match self {
            SharedError::TimedOut { .. } => true,
            SharedError::Redis { source, .. } => {
                source.is_io_error()
                    || source.is_timeout()
                    || source.is_connection_dropped()
                    || source.is_connection_refusal()
            }
            SharedError::Url(_) => false,
        }
    }
}

struct Inner {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    health: Arc<Health>,
    metrics: Metrics,
    /// Subscription tasks, stopped when the last handle goes.
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in self.tasks.get_mut().unwrap_or_else(|p| p.into_inner()) {
            t.abort();
        }
    }
}

/// The process's handle on Redis (cheap to clone). Creating it does not connect: the first
/// operation does, so a proxy starts (and serves pulls) while Redis is down.
#[derive(Clone)]
pub struct Shared(Arc<Inner>);

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("prefix", &self.0.prefix)
            .finish()
    }
}

impl Shared {
    /// A handle for `settings.redis_url` (`None` without one). Must run inside a Tokio runtime.
    pub fn new(
        settings: &SessionsSettings,
        metrics: Metrics,
    ) -> Result<Option<Shared>, SharedError> {
        let Some(url) = &settings.redis_url else {
            return Ok(None);
        };
        let client = redis::Client::open(url.as_str()).map_err(SharedError::Url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(SharedError::Url)?;
        Ok(Some(Shared(Arc::new(Inner {
            client,
            conn,
            prefix: settings.key_prefix.clone(),
            health: Arc::new(Health::default()),
            metrics,
            tasks: Mutex::default(),
        }))))
    }

    /// `name` after the configured `key_prefix`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.0.prefix)
    }

    /// Whether the last operation or subscription attempt reached Redis (`None`: none yet).
    pub fn reachable(&self) -> Option<bool> {
        self.0.health.reachable()
    }

    /// Run `f` on the connection within `OPERATION_TIMEOUT`, noting health and errors.
    async fn run<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, SharedError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let result = match tokio::time::timeout(OPERATION_TIMEOUT, f(self.0.conn.clone())).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(SharedError::Redis { op, source }),
            Err(_) => Err(SharedError::TimedOut { op }),
        };
        match &result {
            Ok(_) => self.0.health.note(true, op, None),
            Err(e) => {
                self.0.metrics.redis_error(op);
                if e.unreachable() {
                    self.0.health.note(false, op, Some(e));
                }
            }
        }
        result
    }

    /// The value of key `name`, if it exists.
    pub async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, SharedError> {
        let key = self.key(name);
        self.run("get", |mut c| async move {
            redis::cmd("GET").arg(&key).query_async(&mut c).await
        })
        .await
    }

    /// Set key `name` to `value`, expiring after `ttl` (rounded up to whole milliseconds).
    pub async fn set_ex(&self, name: &str, value: &[u8], ttl: Duration) -> Result<(), SharedError> {
        let key = self.key(name);
        let ms = ttl.as_millis().max(1) as u64;
        self.run("set", |mut c| async move {
            redis::cmd("SET")
                .arg(&key)
                .arg(value)
                .arg("PX")
                .arg(ms)
                .query_async(&mut c)
                .await
        })
        .await
    }

    /// Delete key `name`; whether it existed.
    pub async fn del(&self, name: &str) -> Result<bool, SharedError> {
        let key = self.key(name);
        self.run("del", |mut c| async move {
            redis::cmd("DEL")
                .arg(&key)
                .query_async::<u64>(&mut c)
                .await
                .map(|n| n > 0)
        })
        .await
    }

    /// Run a Lua `script` atomically (EVALSHA, loading it on first use) with `keys` (each put
    /// after the prefix, as Redis requires keys to be named) and `args`.
    pub async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<T, SharedError> {
        let mut invocation = script.prepare_invoke();
        for k in keys {
            invocation.key(self.key(k));
        }
        for a in args {
            invocation.arg(*a);
        }
        self.run("eval", |mut c| async move {
            invocation.invoke_async(&mut c).await
        })
        .await
    }

    /// Publish `payload` on channel `name`; how many subscribers received it.
    pub async fn publish(&self, name: &str, payload: &[u8]) -> Result<u64, SharedError> {
        let channel = self.key(name);
        self.run("publish", |mut c| async move {
            redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(payload)
                .query_async(&mut c)
                .await
        })
        .await
    }

    /// Keep a subscription to channel `name` on a connection of its own, resubscribing whenever
    /// Redis comes back; `handler` sees each message and each (re)subscription. Stops when the
    /// last handle is dropped.
    pub fn subscribe(
        &self,
        name: &str,
        handler: impl Fn(SubscriptionEvent) + Send + Sync + 'static,
    ) {
        let task = tokio::spawn(subscriber::run(
            self.0.client.clone(),
            self.key(name),
            self.0.health.clone(),
            self.0.metrics.clone(),
            handler,
        ));
        self.0
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task.abort_handle());
    }
}

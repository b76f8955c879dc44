//! What the proxy measures: one Prometheus registry per running proxy with its metric families,
//! recorded into by `proxy` (requests, bytes, the manifest cache) and `ecr` (calls), and encoded
//! for `GET /metrics` in the Prometheus text format (0.0.4). `request` holds what one request
//! caused (its route, ECR request ids, bytes) for the access log.
//!
//! This module imports nothing else of the project (both `ecr` and `proxy` depend on it), and
//! serves no HTTP. Labels are `&'static str` and numbers, never a repository name or anything a
//! client chooses (each label value is a time series). Gauges of state that exists anyway (open
//! uploads, buffer memory) are read at scrape time through `gauge_fn`, not mirrored.
//!
//! Adding a metric: a field in `Families`, one `register` line in `Metrics::new`, and a method
//! that records into it.

mod gauge_fn;
pub mod request;

use gauge_fn::GaugeFn;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `Content-Type` of `encode`'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EcrLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    kind: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TailLabel {
    tail: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// 1 ms to about 131 s: a manifest from the cache takes well under 1 ms, a streamed push of a
/// large layer minutes (it lands in `+Inf`).
fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 18))
}

/// 5 ms to about 41 s: ECR answers in tens of milliseconds, a 10 MiB part in about a second.
fn ecr_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

struct Families {
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Histograms<RouteLabel>,
    ecr_calls: Family<EcrLabels, Counter>,
    ecr_duration: Histograms<OperationLabel>,
    upload_bytes: Counter,
    download_bytes: Counter,
    cache_hits: Counter,
    cache_misses: Counter,
    auth_denials: Family<ReasonLabel, Counter>,
    tokens_issued: Counter,
    disk_cache: Family<CacheLabels, Counter>,
    disk_cache_served: Counter,
    disk_cache_fetched: Counter,
    disk_cache_evictions: Counter,
    disk_cache_corrupt: Counter,
    redis_errors: Family<OpLabel, Counter>,
    upload_takeovers: Family<TailLabel, Counter>,
}

struct Inner {
    families: Families,
    /// Locked only to register and to encode (a scrape), never to record.
    registry: Mutex<Registry>,
}

/// The registry and its families (cheap to clone; clones record into the same registry).
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let f = Families {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(request_buckets),
            ecr_calls: Family::default(),
            ecr_duration: Family::new_with_constructor(ecr_buckets),
            upload_bytes: Counter::default(),
            download_bytes: Counter::default(),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            auth_denials: Family::default(),
            tokens_issued: Counter::default(),
            disk_cache: Family::default(),
            disk_cache_served: Counter::default(),
            disk_cache_fetched: Counter::default(),
            disk_cache_evictions: Counter::default(),
            disk_cache_corrupt: Counter::default(),
            redis_errors: Family::default(),
            upload_takeovers: Family::default(),
        };
        // Names without the prefix; counters get `_total` from the encoder.
        let mut r = Registry::with_prefix("ecr_proxy");
        r.register(
            "http_requests",
            "Requests answered, by route kind, method and status",
            f.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response head, by route kind",
            f.http_duration.clone(),
        );
        r.register(
            "ecr_calls",
            "ECR API calls, by operation and outcome (ok, or the kind of failure)",
            f.ecr_calls.clone(),
        );
        r.register(
            "ecr_call_duration_seconds",
            "Duration of ECR API calls (the SDK's retries included), by operation",
            f.ecr_duration.clone(),
        );
        r.register(
            "upload_bytes",
            "Blob bytes received from clients in upload request bodies",
            f.upload_bytes.clone(),
        );
        r.register(
            "download_bytes",
            "Blob bytes sent to clients (stream mode; redirected GETs send none)",
            f.download_bytes.clone(),
        );
        r.register(
            "manifest_cache_hits",
            "Manifest GETs and HEADs by digest answered from the cache",
            f.cache_hits.clone(),
        );
        r.register(
            "manifest_cache_misses",
            "Manifest GETs and HEADs by digest that had to ask ECR",
            f.cache_misses.clone(),
        );
        r.register(
            "auth_denials",
            "Requests refused by authentication or the access rules, by reason \
             (unauthenticated, bad_credentials, expired, forbidden, insufficient_scope)",
            f.auth_denials.clone(),
        );
        r.register(
            "auth_tokens_issued",
            "Tokens signed by the token endpoint",
            f.tokens_issued.clone(),
        );
        r.register(
            "cache_lookups",
            "Disk cache ([cache]) lookups by kind (blob, manifest, tag) and result (hit; miss: \
             asked of ECR; stale: ECR could not be asked and the last known answer was given)",
            f.disk_cache.clone(),
        );
        r.register(
            "cache_served_bytes",
            "Blob bytes sent to clients from the disk cache's complete files",
            f.disk_cache_served.clone(),
        );
        r.register(
            "cache_fetched_bytes",
            "Blob bytes fetched from ECR into the disk cache",
            f.disk_cache_fetched.clone(),
        );
        r.register(
            "cache_evictions",
            "Blobs and manifests evicted from the disk cache (least recently used first)",
            f.disk_cache_evictions.clone(),
        );
        r.register(
            "cache_corrupt",
            "Cached blobs or manifests whose bytes no longer matched (dropped and fetched again)",
            f.disk_cache_corrupt.clone(),
        );
        r.register(
            "redis_errors",
            "Redis operations ([sessions]) that failed or timed out, by op (get, set, eval, \
             publish, subscribe)",
            f.redis_errors.clone(),
        );
        r.register(
            "upload_takeovers",
            "Uploads this replica took over from the session store ([sessions]: another replica \
             saved them last), by how the tail's part body went on: none (no tail), resumed \
             (from the hash state saved with it), rehashed (hashed again: no usable state)",
            f.upload_takeovers.clone(),
        );
        Metrics(Arc::new(Inner {
            families: f,
            registry: Mutex::new(r),
        }))
    }

    /// A gauge whose value `read` gives at each scrape (state the proxy keeps anyway).
    pub fn gauge_fn(
        &self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> u64 + Send + Sync + 'static,
    ) {
        self.registry().register(name, help, GaugeFn::new(read));
    }

    /// One answered request: `route` is the route's kind, `elapsed` the time to its head.
    pub fn http_request(
        &self,
        route: &'static str,
        method: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        let f = &self.0.families;
        f.http_requests
            .get_or_create(&HttpLabels {
                route,
                method,
                status,
            })
            .inc();
        f.http_duration
            .get_or_create(&RouteLabel { route })
            .observe(elapsed.as_secs_f64());
    }

    /// One ECR call: `outcome` is `ok` or the kind of failure.
    pub fn ecr_call(&self, operation: &'static str, outcome: &'static str, elapsed: Duration) {
        let f = &self.0.families;
        f.ecr_calls
            .get_or_create(&EcrLabels { operation, outcome })
            .inc();
        f.ecr_duration
            .get_or_create(&OperationLabel { operation })
            .observe(elapsed.as_secs_f64());
    }

    /// Blob bytes received from a client.
    pub fn upload_bytes(&self, n: u64) {
        self.0.families.upload_bytes.inc_by(n);
    }

    /// The counter of blob bytes sent to clients, for a body to add to as its frames go out.
    pub fn download_bytes(&self) -> Counter {
        self.0.families.download_bytes.clone()
    }

    /// A manifest looked up in the cache.
    pub fn manifest_cache(&self, hit: bool) {
        let f = &self.0.families;
        if hit {
            f.cache_hits.inc();
        } else {
            f.cache_misses.inc();
        }
    }

    /// A request refused by authentication or the rules; `reason` is one of a fixed few.
    pub fn auth_denial(&self, reason: &'static str) {
        self.0
            .families
            .auth_denials
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// A token signed by the token endpoint.
    pub fn token_issued(&self) {
        self.0.families.tokens_issued.inc();
    }

    /// A disk cache lookup: `kind` is blob, manifest or tag; `result` hit, miss or stale.
    pub fn cache_lookup(&self, kind: &'static str, result: &'static str) {
        self.0
            .families
            .disk_cache
            .get_or_create(&CacheLabels { kind, result })
            .inc();
    }

    /// The counter of blob bytes served from the disk cache, added to as frames go out.
    pub fn cache_served_bytes(&self) -> Counter {
        self.0.families.disk_cache_served.clone()
    }

    /// Blob bytes fetched from ECR into the disk cache.
    pub fn cache_fetched_bytes(&self, n: u64) {
        self.0.families.disk_cache_fetched.inc_by(n);
    }

    pub fn cache_evicted(&self, n: u64) {
        self.0.families.disk_cache_evictions.inc_by(n);
    }

    pub fn cache_corrupt(&self) {
        self.0.families.disk_cache_corrupt.inc();
    }

    /// A Redis operation (`[sessions]`) that failed or timed out; `op` is one of a fixed few.
    pub fn redis_error(&self, op: &'static str) {
        self.0
            .families
            .redis_errors
            .get_or_create(&OpLabel { op })
            .inc();
    }

    /// An upload taken over from the session store; `tail`: `none`, `resumed` or `rehashed`.
    pub fn upload_takeover(&self, tail: &'static str) {
        self.0
            .families
            .upload_takeovers
            .get_or_create(&TailLabel { tail })
            .inc();
    }

    /// Every metric in the Prometheus text format (`CONTENT_TYPE`).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(8 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry())?;
        Ok(out)
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.0.registry.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests;

//! Manifests fetched by digest, kept so repeated pulls skip ECR: a cache keyed by (repository,
//! digest), bounded by total bytes, evicting the oldest entries first. A manifest's bytes never
//! change, but the image can go away, so an entry must not outlive it:
//! - every delete through this proxy removes what ECR removed (`remove`), and so does one
//!   through another replica when `[sessions]` shares invalidations (`remove`, or `clear` when
//!   some may have been missed);
//! - a fetch that raced with a delete does not put its stale answer back (`generation`);
//! - an entry is served for at most `TTL`, which bounds what this proxy cannot see: deletes
//!   through another replica or directly in ECR, and lifecycle-policy expiry.
//!
//! Each lookup counts as a hit or a miss in `Metrics`.
//!
//! Owns only the in-memory map; it must not call ECR or know about HTTP.

use crate::metrics::Metrics;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an entry is served before ECR is asked again.
pub const TTL: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct Cached {
    pub bytes: Bytes,
    pub media_type: String,
}

type Key = (String, String);

struct Entry {
    cached: Cached,
    stored: Instant,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Key, Entry>,
    order: VecDeque<Key>,
    size: usize,
    /// Bumped by every `remove`; a `put` made with an older value is dropped.
    generation: u64,
}

impl Inner {
    fn forget(&mut self, key: &Key) {
        if let Some(e) = self.map.remove(key) {
            self.size -= e.cached.bytes.len();
            self.order.retain(|k| k != key);
        }
    }
}

pub struct ManifestCache {
    cap: usize,
    ttl: Duration,
    inner: Mutex<Inner>,
    metrics: Metrics,
}

impl ManifestCache {
    pub fn new(cap_bytes: usize) -> ManifestCache {
        ManifestCache::with_ttl(cap_bytes, TTL)
    }

    pub fn with_ttl(cap_bytes: usize, ttl: Duration) -> ManifestCache {
        ManifestCache {
            cap: cap_bytes,
            ttl,
            inner: Mutex::new(Inner::default()),
            metrics: Metrics::default(),
        }
    }

    /// Count hits and misses in `metrics` (a cache starts with a registry of its own).
    pub fn with_metrics(mut self, metrics: Metrics) -> ManifestCache {
        self.metrics = metrics;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current generation: read it before asking ECR, hand it to `put` with the answer.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The entry, unless it is older than the TTL (then it is dropped).
    pub fn get(&self, repo: &str, digest: &str) -> Option<Cached> {
        let key = (repo.to_string(), digest.to_string());
        let found = {
            let mut inner = self.lock();
            match inner.map.get(&key) {
                Some(e) if e.stored.elapsed() < self.ttl => Some(e.cached.clone()),
                Some(_) => {
                    inner.forget(&key);
                    None
                }
                None => None,
            }
        };
        self.metrics.manifest_cache(found.is_some());
        found
    }

    /// Keep `entry`, fetched from ECR after `generation()` returned `seen`; dropped when a delete
    /// happened since (the answer may describe an image that is gone).
    pub fn put(&self, repo: &str, digest: &str, entry: Cached, seen: u64) {
        if entry.bytes.len() > self.cap {
            return;
        }
        let mut inner = self.lock();
        if inner.generation != seen {
            return;
        }
        let key = (repo.to_string(), digest.to_string());
        if let Some(e) = inner.map.get_mut(&key) {
            e.stored = Instant::now();
            return;
        }
        inner.size += entry.bytes.len();
        inner.map.insert(
            key.clone(),
            Entry {
                cached: entry,
                stored: Instant::now(),
            },
        );
        inner.order.push_back(key);
        while inner.size > self.cap {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(e) = inner.map.remove(&old) {
                inner.size -= e.cached.bytes.len();
            }
        }
    }

    /// Forget every entry (invalidations from other replicas may have been missed).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.map.clear();
        inner.order.clear();
        inner.size = 0;
    }

    /// Forget a manifest whose image ECR removed (or may have removed).
    pub fn remove(&self, repo: &str, digest: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.forget(&(repo.to_string(), digest.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(n: usize) -> Cached {
        Cached {
            bytes: Bytes::from(vec![0u8; n]),
            media_type: "m".into(),
        }
    }

    #[test]
    fn bounded_by_bytes_oldest_first() {
        let c = ManifestCache::new(10);
        c.put("r", "a", e(4), 0);
        c.put("r", "b", e(4), 0);
        c.put("r", "c", e(4), 0);
        assert!(c.get("r", "a").is_none());
        assert!(c.get("r", "b").is_some() && c.get("r", "c").is_some());
        assert!(c.get("other", "b").is_none());
        c.remove("r", "b");
        assert!(c.get("r", "b").is_none());
        c.put("r", "huge", e(11), c.generation());
        assert!(c.get("r", "huge").is_none());
    }

    #[test]
    fn a_fetch_that_raced_a_delete_is_not_kept() {
        let c = ManifestCache::new(100);
        let seen = c.generation();
        c.remove("r", "a");
        c.put("r", "a", e(4), seen);
        assert!(c.get("r", "a").is_none());
        c.put("r", "a", e(4), c.generation());
        assert!(c.get("r", "a").is_some());
    }

    #[test]
    fn clear_forgets_everything_and_drops_racing_fetches() {
        let c = ManifestCache::new(100);
        c.put("r", "a", e(4), 0);
        let seen = c.generation();
        c.clear();
        assert!(c.get("r", "a").is_none());
        c.put("r", "b", e(4), seen);
        assert!(c.get("r", "b").is_none());
        c.put("r", "b", e(4), c.generation());
        assert!(c.get("r", "b").is_some());
    }

    #[test]
    fn entries_expire() {
        let c = ManifestCache::with_ttl(100, Duration::ZERO);
        c.put("r", "a", e(4), 0);
        assert!(c.get("r", "a").is_none());
        let c4 = ManifestCache::with_ttl(100, Duration::from_secs(60));
        c4.put("r", "b", e(4), 0);
        assert!(c4.get("r", "b").is_some());
    }
}

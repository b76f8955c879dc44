//! The mirror's disk cache (`[cache]`): blobs by digest (filled once however many clients wait,
//! verified by SHA-256 before they count as complete, and by CRC-32 per 256 KiB each time they are
//! served), manifests by digest, tags with the time ECR last confirmed them, and which
//! repository holds which digest. Least recently used entries are evicted past `max_size`. It
//! survives restarts and `kill -9`: partial fills are removed at start, complete files are
//! found again, their last use is their modification time. This module owns the files under
//! `cache.dir` and knows nothing of HTTP or ECR: the proxy asks it and gives it a `Source`.

mod entries;
mod fill;
mod filling;
mod index;
pub mod layout;
pub mod meta;
mod scan;
pub mod stored;

pub use fill::{Failure, Fill, Opened, Source, SourceError};
pub use meta::{Manifest, Tag};
pub use stored::{Fallback, Stored};

use crate::config::CacheSettings;
use crate::metrics::Metrics;
use index::{Index, Kind};
use layout::{is_hex, Layout};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// After a failed ECR lookup, stale answers are given without asking ECR again for this long.
const UNREACHABLE_FOR: Duration = Duration::from_secs(5);

/// Blobs filled at once; more wait for a slot (each holds up to 256 KiB of buffer).
const FILL_SLOTS: usize = 64;

/// What `cache stats` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    pub blobs: usize,
    pub manifests: usize,
    pub bytes: u64,
    pub max_size: u64,
    pub fills_in_flight: usize,
}

/// The cache under one folder.
pub struct Cache {
    /// Held open and locked while the cache is open: one process writes a cache folder.
    _lock: std::fs::File,
    layout: Layout,
    pub settings: CacheSettings,
    index: Mutex<Index>,
    fills: Mutex<HashMap<String, Arc<Fill>>>,
    slots: Arc<tokio::sync::Semaphore>,
    metrics: Metrics,
    /// Bumped by every push and delete through the proxy: an ECR answer fetched across one is
    /// not written to the cache (it may be the state before).
    generation: std::sync::atomic::AtomicU64,
    /// Until when ECR is taken as unreachable (a failed lookup), so stale answers meanwhile do
    /// not each wait for another failing call.
    unreachable_until: Mutex<Option<std::time::Instant>>,
}

impl Cache {
    /// Open (or create) the cache: take its lock, remove partial fills, index what is complete.
    /// A folder another process has open is refused (`ErrorKind::WouldBlock`, saying so): two
    /// writers would remove each other's fills and evict each other's files.
    pub fn open(settings: &CacheSettings, metrics: Metrics) -> std::io::Result<Arc<Cache>> {
        let layout = Layout::new(&settings.dir);
        for d in [layout.blobs(), layout.partials(), layout.manifests()] {
            std::fs::create_dir_all(&d)?;
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(layout.root().join("lock"))?;
        if let Err(e) = lock.try_lock() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!(
                    "another ecr-proxy process has this cache folder open ({e}); stop it first, \
                     or give this one a folder of its own"
                ),
            ));
        }
        let (index, removed) = scan::scan(&layout)?;
        tracing::info!(
            dir = %settings.dir.display(),
            blobs = index.count(Kind::Blob),
            manifests = index.count(Kind::Manifest),
            bytes = index.total(),
            leftovers_removed = removed,
            "disk cache opened"
        );
        let cache = Arc::new(Cache {
            _lock: lock,
            layout,
            settings: settings.clone(),
            index: Mutex::new(index),
            fills: Mutex::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(FILL_SLOTS)),
            metrics,
            generation: Default::default(),
            unreachable_until: Mutex::default(),
        });
        cache.evict();
        Ok(cache)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Lock order: `fills` before `index`, never the other way (`stats` takes one at a time).
    pub fn stats(&self) -> Stats {
        let (blobs, manifests, bytes) = {
            let i = self.index.lock().expect("cache index");
            (i.count(Kind::Blob), i.count(Kind::Manifest), i.total())
        };
        Stats {
            blobs,
            manifests,
            bytes,
            max_size: self.settings.max_size,
            fills_in_flight: self.fills.lock().expect("fills").len(),
        }
    }

    // ---- blobs

    /// Whether `repository` is known to hold blob `hex`.
    pub fn blob_linked(&self, repository: &str, hex: &str) -> bool {
        self.layout.blob_link(repository, hex).exists()
    }

    pub fn link_blob(&self, repository: &str, hex: &str) {
        if let Err(e) = meta::link(&self.layout.blob_link(repository, hex)) {
            tracing::warn!("cannot write to the cache: {e}");
        }
    }

    /// Whether the index holds blob `hex` (a well-formed digest).
    fn has_blob(&self, hex: &str) -> bool {
        is_hex(hex)
            && self
                .index
                .lock()
                .expect("cache index")
                .contains(Kind::Blob, hex)
    }

    /// Forget blob `hex`, whose file is gone (another process pruned it, or a person did).
    fn lost_blob(&self, hex: &str) {
        self.index
            .lock()
            .expect("cache index")
            .remove(Kind::Blob, hex);
    }

    /// The complete blob `hex`, opened, if the cache has it (its use noted).
    pub async fn stored_blob(&self, hex: &str) -> Option<Stored> {
        if !self.has_blob(hex) {
            return None;
        }
        let Ok(file) = tokio::fs::File::open(self.layout.blob(hex)).await else {
            self.lost_blob(hex);
            return None;
        };
        let file = file.into_std().await;
        let size = file.metadata().ok()?.len();
        let crcs = tokio::fs::read(self.layout.crc(hex))
            .await
            .ok()
            .and_then(|b| stored::decode_crcs(&b, size));
        let Some(crcs) = crcs else {
            self.forget_blob(hex, "its CRC table is missing or does not fit it");
            return None;
        };
        self.used(Kind::Blob, hex);
        Some(Stored {
            file: Arc::new(file),
            size,
            crcs: Arc::new(crcs),
        })
    }

    /// Size of the complete blob `hex`, if the cache has it.
    pub fn blob_size(&self, hex: &str) -> Option<u64> {
        if !self.has_blob(hex) {
            return None;
        }
        match std::fs::metadata(self.layout.blob(hex)) {
            Ok(m) => Some(m.len()),
            Err(_) => {
                self.lost_blob(hex);
                None
            }
        }
    }

    /// Drop blob `hex` (its bytes no longer match); the next request fills it again.
    pub fn forget_blob(&self, hex: &str, why: &str) {
        tracing::warn!(digest = %format!("sha256:{hex}"), "dropping a cached blob: {why}");
        self.metrics.cache_corrupt();
        // Under the index lock, so a fill completing meanwhile cannot have its new files deleted.
        let mut index = self.index.lock().expect("cache index");
        index.remove(Kind::Blob, hex);
        let _ = std::fs::remove_file(self.layout.blob(hex));
        let _ = std::fs::remove_file(self.layout.crc(hex));
    }

    // ---- size

    fn used(&self, kind: Kind, hex: &str) {
        let persist = self.index.lock().expect("cache index").touch(kind, hex);
        if persist {
            let path = match kind {
                Kind::Blob => self.layout.blob(hex),
                Kind::Manifest => self.layout.manifest(hex),
            };
            if let Ok(f) = std::fs::File::options().write(true).open(&path) {
                let _ = f.set_modified(SystemTime::now());
            }
        }
    }

    /// Evict least recently used entries until the total is within `max_size`.
    pub fn evict(&self) -> (usize, u64) {
        self.evict_to(self.settings.max_size)
    }

    /// Evict least recently used entries until the total is within `limit` (`cache prune`).
    /// Files are removed under the index lock, so a fill completing meanwhile keeps its own.
    pub fn evict_to(&self, limit: u64) -> (usize, u64) {
        let mut index = self.index.lock().expect("cache index");
        let victims = index.evict_to(limit);
        let mut bytes = 0;
        for (kind, hex, size) in &victims {
            bytes += size;
            match kind {
                Kind::Blob => {
                    let _ = std::fs::remove_file(self.layout.blob(hex));
                    let _ = std::fs::remove_file(self.layout.crc(hex));
                }
                Kind::Manifest => {
                    let _ = std::fs::remove_file(self.layout.manifest(hex));
                }
            }
        }
        drop(index);
        if !victims.is_empty() {
            self.metrics.cache_evicted(victims.len() as u64);
            tracing::info!(
                evicted = victims.len(),
                bytes,
                "disk cache: evicted the least recently used"
            );
        }
        (victims.len(), bytes)
    }

    pub fn stale_limit(&self) -> Duration {
        self.settings.max_stale
    }
}

#[cfg(test)]
mod tests;

//! The mirror's disk cache (`[cache]`): blobs by digest (filled once however many clients wait,
//! verified by SHA-256 before they count as complete, and by CRC-32 per 256 KiB each time they are
//! served), manifests by digest, tags with the time ECR last confirmed them, and which
//! repository holds which digest. Least recently used entries are evicted past `max_size`. It
//! survives restarts and `kill -9`: partial fills are removed at start, complete files are
//! found again, their last use is their modification time. This module owns the files under
//! `cache.dir` and knows nothing of HTTP or ECR: the proxy asks it and gives it a `Source`.

mod fill;
mod index;
pub mod layout;
pub mod meta;
pub mod stored;

pub use fill::{Failure, Fill, Opened, Source, SourceError};
pub use meta::{Manifest, Tag};
pub use stored::{Fallback, Stored};

use crate::config::CacheSettings;
use crate::metrics::Metrics;
use index::{Index, Kind};
use layout::{is_hex, Layout};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

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
        let mut removed = 0;
        for e in std::fs::read_dir(layout.partials())?.flatten() {
            if std::fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
        let index = scan(&layout)?;
        tracing::info!(
            dir = %settings.dir.display(),
            blobs = index.count(Kind::Blob),
            manifests = index.count(Kind::Manifest),
            bytes = index.total(),
            partial_fills_removed = removed,
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
        });
        cache.evict();
        Ok(cache)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn stats(&self) -> Stats {
        let i = self.index.lock().expect("cache index");
        Stats {
            blobs: i.count(Kind::Blob),
            manifests: i.count(Kind::Manifest),
            bytes: i.total(),
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
        let size = file.metadata().await.ok()?.len();
        let crcs = tokio::fs::read(self.layout.crc(hex))
            .await
            .ok()
            .and_then(|b| stored::decode_crcs(&b, size));
        let Some(crcs) = crcs else {
            self.forget_blob(hex, "its CRC table is missing or does not fit it");
            return None;
        };
        self.used(Kind::Blob, hex);
        Some(Stored { file, size, crcs })
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
        self.index
            .lock()
            .expect("cache index")
            .remove(Kind::Blob, hex);
        let _ = std::fs::remove_file(self.layout.blob(hex));
        let _ = std::fs::remove_file(self.layout.crc(hex));
    }

    /// The fill of blob `hex` under way, or a new one from `source` (then `true`); `None` when the blob is
    /// complete in the cache by now (read it with `stored_blob`).
    pub fn fill(
        self: &Arc<Self>,
        hex: &str,
        source: Arc<dyn Source>,
    ) -> std::io::Result<Option<(Arc<Fill>, bool)>> {
        assert!(is_hex(hex), "cache keys are sha256 hex digests");
        let mut fills = self.fills.lock().expect("fills");
        if let Some(f) = fills.get(hex) {
            return Ok(Some((f.clone(), false)));
        }
        if self
            .index
            .lock()
            .expect("cache index")
            .contains(Kind::Blob, hex)
        {
            return Ok(None);
        }
        let partial = self
            .layout
            .partial(hex, &uuid::Uuid::new_v4().simple().to_string());
        let file = Arc::new(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&partial)?,
        );
        let (fill, tx) = Fill::new(hex, file.clone());
        fills.insert(hex.to_string(), fill.clone());
        drop(fills);
        let cache = self.clone();
        let hex = hex.to_string();
        tokio::spawn(async move {
            let slot = cache.slots.clone().acquire_owned().await;
            let outcome = match fill::run(&hex, file, source, &tx).await {
                Ok(filled) => {
                    let size = filled.size;
                    let placed = cache.complete(&hex, &partial, filled).map_err(|e| {
                        Failure::Broken(format!("cannot put the blob in place in the cache: {e}"))
                    });
                    // Readers get the last bytes only now: the blob is verified and in place, so
                    // a client that has all of it finds it complete when it asks again.
                    if placed.is_ok() {
                        tx.send_modify(|p| p.written = size);
                    }
                    placed
                }
                Err(e) => Err(e),
            };
            drop(slot);
            if let Err(e) = &outcome {
                let _ = std::fs::remove_file(&partial);
                if matches!(e, Failure::Broken(_)) {
                    tracing::warn!(digest = %format!("sha256:{hex}"), "cache fill failed: {e}");
                }
            }
            let fetched = tx.borrow().written;
            cache.metrics.cache_fetched_bytes(fetched);
            // Remove before telling readers, so a reader that sees the outcome and asks again
            // finds the stored blob (or starts a new fill), never this finished one.
            cache.fills.lock().expect("fills").remove(&hex);
            tx.send_modify(|p| p.outcome = Some(outcome));
        });
        Ok(Some((fill, true)))
    }

    /// A verified fill: its CRC table, then the blob renamed into place, indexed.
    fn complete(&self, hex: &str, partial: &Path, filled: fill::Filled) -> std::io::Result<()> {
        meta::write_atomically(&self.layout.crc(hex), &stored::encode_crcs(&filled.crcs))?;
        std::fs::rename(partial, self.layout.blob(hex))?;
        let size = filled.size + filled.crcs.len() as u64 * 4;
        self.index
            .lock()
            .expect("cache index")
            .insert(Kind::Blob, hex, size, index::now_nanos());
        self.evict();
        Ok(())
    }

    // ---- manifests and tags

    pub fn manifest(&self, repository: &str, hex: &str) -> Option<Manifest> {
        if !is_hex(hex) || !self.layout.manifest_link(repository, hex).exists() {
            return None;
        }
        match meta::read_manifest(&self.layout, hex) {
            Some(m) => {
                self.used(Kind::Manifest, hex);
                Some(m)
            }
            None => {
                if self
                    .index
                    .lock()
                    .expect("cache index")
                    .remove(Kind::Manifest, hex)
                    .is_some()
                {
                    self.metrics.cache_corrupt();
                }
                None
            }
        }
    }

    pub fn put_manifest(&self, repository: &str, hex: &str, m: &Manifest) {
        if !is_hex(hex) {
            return;
        }
        let written = meta::write_manifest(&self.layout, hex, m).and_then(|size| {
            meta::link(&self.layout.manifest_link(repository, hex)).map(|()| size)
        });
        match written {
            Ok(size) => {
                self.index.lock().expect("cache index").insert(
                    Kind::Manifest,
                    hex,
                    size,
                    index::now_nanos(),
                );
                self.evict();
            }
            Err(e) => tracing::warn!("cannot write a manifest to the cache: {e}"),
        }
    }

    pub fn tag(&self, repository: &str, tag: &str) -> Option<Tag> {
        meta::read_tag(&self.layout, repository, tag)
    }

    pub fn put_tag(&self, repository: &str, tag: &str, digest: &str, media_type: &str) {
        let t = Tag {
            digest: digest.to_string(),
            media_type: media_type.to_string(),
            checked: meta::now_secs(),
        };
        if let Err(e) = meta::write_tag(&self.layout, repository, tag, &t) {
            tracing::warn!("cannot write a tag to the cache: {e}");
        }
    }

    /// Forget tag `tag` of `repository` (re-tagged or deleted through the proxy).
    pub fn forget_tag(&self, repository: &str, tag: &str) {
        meta::remove_tag(&self.layout, repository, tag);
    }

    /// Forget that `repository` holds manifest `hex` and every tag of it pointing there (the
    /// manifest was deleted through the proxy). The bytes stay for other repositories.
    pub fn forget_manifest(&self, repository: &str, hex: &str) {
        let _ = std::fs::remove_file(self.layout.manifest_link(repository, hex));
        for tag in meta::tags_pointing_to(&self.layout, repository, hex) {
            meta::remove_tag(&self.layout, repository, &tag);
        }
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
    pub fn evict_to(&self, limit: u64) -> (usize, u64) {
        let victims = self.index.lock().expect("cache index").evict_to(limit);
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

/// Index the complete blobs and manifests under `layout` (last use: modification time).
fn scan(layout: &Layout) -> std::io::Result<Index> {
    let mut index = Index::default();
    let mtime = |m: &std::fs::Metadata| {
        m.modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos())
    };
    for shard in std::fs::read_dir(layout.blobs())?.flatten() {
        for e in std::fs::read_dir(shard.path())?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !is_hex(&name) {
                continue;
            }
            let Ok(m) = e.metadata() else { continue };
            let crc = std::fs::metadata(layout.crc(&name)).map_or(0, |c| c.len());
            index.insert(Kind::Blob, &name, m.len() + crc, mtime(&m));
        }
    }
    for e in std::fs::read_dir(layout.manifests())?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let (true, Ok(m)) = (is_hex(&name), e.metadata()) {
            index.insert(Kind::Manifest, &name, m.len(), mtime(&m));
        }
    }
    Ok(index)
}

#[cfg(test)]
mod tests;

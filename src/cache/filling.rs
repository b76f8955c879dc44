//! Starting and finishing fills (`Cache::fill`): one fill per blob, joined by every reader that
//! asks meanwhile. Its task waits for one of `FILL_SLOTS`, and only then makes the partial file
//! and asks the source, so queued fills hold no file or download; a fill nobody waits for by the
//! time it gets its slot is dropped unstarted. The size the source announces is reserved in the
//! index (eviction makes room before the bytes land). A verified fill's CRC table is written,
//! then the blob renamed into place and indexed; whatever happens (a failure, a panic), the fill
//! leaves the table of fills when its task ends. Lock order: `fills` before `index`.

use super::fill::{self, Failure, Fill, Progress, Source};
use super::index::{self, Kind};
use super::{meta, stored, Cache};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

/// Removes the fill from the table when its task ends, however it ends.
struct Leave {
    cache: Arc<Cache>,
    hex: String,
}

impl Drop for Leave {
    fn drop(&mut self) {
        if let Ok(mut fills) = self.cache.fills.lock() {
            fills.remove(&self.hex);
        }
    }
}

impl Cache {
    /// The fill of blob `hex` under way, or a new one from `source` (then `true`); `None` when
    /// the blob is complete in the cache by now (read it with `stored_blob`).
    pub fn fill(
        self: &Arc<Self>,
        hex: &str,
        source: Arc<dyn Source>,
    ) -> std::io::Result<Option<(Arc<Fill>, bool)>> {
        assert!(
            super::layout::is_hex(hex),
            "cache keys are sha256 hex digests"
        );
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
        let (fill, tx) = Fill::new(hex);
        fills.insert(hex.to_string(), fill.clone());
        drop(fills);
        let leave = Leave {
            cache: self.clone(),
            hex: hex.to_string(),
        };
        tokio::spawn(run(leave, source, tx));
        Ok(Some((fill, true)))
    }

    /// Whether anyone but the table of fills still holds the fill of `hex`.
    fn awaited(&self, hex: &str) -> bool {
        let fills = self.fills.lock().expect("fills");
        fills.get(hex).is_some_and(|f| Arc::strong_count(f) > 1)
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
}

/// The fill's task: a slot, the partial file, the bytes, the blob in place; then readers told.
async fn run(leave: Leave, source: Arc<dyn Source>, tx: watch::Sender<Progress>) {
    let cache = leave.cache.clone();
    let hex = leave.hex.clone();
    let slot = cache.slots.clone().acquire_owned().await;
    if !cache.awaited(&hex) {
        // Everyone who asked has gone: the download is not started.
        drop(leave);
        let why = "no one waited for the fill any more".to_string();
        tx.send_modify(|p| p.outcome = Some(Err(Failure::Broken(why))));
        return;
    }
    let partial = cache
        .layout
        .partial(&hex, &uuid::Uuid::new_v4().simple().to_string());
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&partial);
    let file = match opened {
        Ok(f) => Arc::new(f),
        Err(e) => {
            drop(leave);
            let why = format!("cannot write to the cache: {e}");
            tx.send_modify(|p| p.outcome = Some(Err(Failure::Broken(why))));
            return;
        }
    };
    if let Some(f) = cache.fills.lock().expect("fills").get(&hex) {
        f.set_file(file.clone());
    }
    let mut reserved = 0u64;
    let mut announce = |size: u64| {
        reserved = size;
        cache.index.lock().expect("cache index").reserve(size);
        cache.evict();
    };
    let outcome = match fill::run(&hex, file, source, &tx, &mut announce).await {
        Ok(filled) => {
            let size = filled.size;
            cache.index.lock().expect("cache index").release(reserved);
            reserved = 0;
            let placed = cache.complete(&hex, &partial, filled).map_err(|e| {
                Failure::Broken(format!("cannot put the blob in place in the cache: {e}"))
            });
            // Readers get the last bytes only now: the blob is verified and in place, so a
            // client that has all of it finds it complete when it asks again.
            if placed.is_ok() {
                tx.send_modify(|p| p.written = size);
            }
            placed
        }
        Err(e) => Err(e),
    };
    cache.index.lock().expect("cache index").release(reserved);
    drop(slot);
    if let Err(e) = &outcome {
        let _ = std::fs::remove_file(&partial);
        if matches!(e, Failure::Broken(_)) {
            tracing::warn!(digest = %format!("sha256:{hex}"), "cache fill failed: {e}");
        }
    }
    cache.metrics.cache_fetched_bytes(tx.borrow().written);
    // Out of the table before readers hear the outcome, so one that asks again finds the stored
    // blob (or starts a new fill), never this finished one.
    drop(leave);
    tx.send_modify(|p| p.outcome = Some(outcome));
}

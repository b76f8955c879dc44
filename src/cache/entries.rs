//! The cache's small entries, as `Cache` methods: manifests by digest (served for a repository
//! only through its link), tags with the time ECR last confirmed them, and the generation and
//! "ECR unreachable" marks the serve-stale rule reads. Files through `meta`; sizes through the
//! index.

use super::index::{self, Kind};
use super::layout::is_hex;
use super::{meta, Cache, Manifest, Tag, UNREACHABLE_FOR};
use std::time::{Duration, SystemTime};

impl Cache {
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

    /// How long ago ECR last confirmed that `repository` holds manifest `hex` (the link's
    /// modification time).
    pub fn manifest_checked(&self, repository: &str, hex: &str) -> Option<Duration> {
        let m = std::fs::metadata(self.layout.manifest_link(repository, hex)).ok()?;
        Some(m.modified().ok()?.elapsed().unwrap_or_default())
    }

    /// ECR confirmed that `repository` holds manifest `hex` just now.
    pub fn confirm_manifest(&self, repository: &str, hex: &str) {
        if let Ok(f) = std::fs::File::options()
            .write(true)
            .open(self.layout.manifest_link(repository, hex))
        {
            let _ = f.set_modified(SystemTime::now());
        }
    }

    /// The count of pushes and deletes so far (compare before and after an ECR lookup).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A push or delete through the proxy changed what ECR holds.
    pub fn changed(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// ECR could not be asked just now: for the next `UNREACHABLE_FOR`, take that as known.
    pub fn note_unreachable(&self) {
        *self.unreachable_until.lock().expect("unreachable") =
            Some(std::time::Instant::now() + UNREACHABLE_FOR);
    }

    /// Whether ECR failed to answer within the last `UNREACHABLE_FOR`.
    pub fn known_unreachable(&self) -> bool {
        self.unreachable_until
            .lock()
            .expect("unreachable")
            .is_some_and(|t| std::time::Instant::now() < t)
    }
}

//! `cache stats` and `cache prune`: the cache folder without ECR. `stats` only reads (file sizes
//! and modification times, which are the cache's record of last use), so it is safe beside a
//! running proxy; `prune` opens the cache (`crate::cache::Cache`, which removes what a crash
//! left) and evicts through it, least recently used first. Reports are returned as text.

use super::progress::{count, size};
use super::CacheError;
use crate::cache::layout::{is_hex, Layout};
use crate::cache::Cache;
use crate::config::CacheSettings;
use crate::metrics::Metrics;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// What the folder holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Survey {
    pub blobs: usize,
    pub blob_bytes: u64,
    pub manifests: usize,
    pub manifest_bytes: u64,
    pub tags: usize,
    /// Blobs being filled (by a running proxy) or left by one that was killed.
    pub partial: usize,
    pub oldest: Option<SystemTime>,
    pub newest: Option<SystemTime>,
}

impl Survey {
    fn used(&mut self, m: &std::fs::Metadata) {
        if let Ok(t) = m.modified() {
            self.oldest = Some(self.oldest.map_or(t, |o| o.min(t)));
            self.newest = Some(self.newest.map_or(t, |n| n.max(t)));
        }
    }
}

/// Read the folder (a missing one is empty). Sizes are counted as the cache counts them: a
/// blob with its CRC table, a manifest file whole.
pub fn survey(layout: &Layout) -> std::io::Result<Survey> {
    let mut s = Survey::default();
    for shard in entries(&layout.blobs())? {
        for e in entries(&shard)? {
            let name = e
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let Ok(m) = std::fs::metadata(&e) else {
                continue;
            };
            if !is_hex(&name) || !m.is_file() {
                continue;
            }
            let crc = std::fs::metadata(layout.crc(&name)).map_or(0, |c| c.len());
            s.blobs += 1;
            s.blob_bytes += m.len() + crc;
            s.used(&m);
        }
    }
    for e in entries(&layout.manifests())? {
        let name = e
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if let (true, Ok(m)) = (is_hex(&name), std::fs::metadata(&e)) {
            s.manifests += 1;
            s.manifest_bytes += m.len();
            s.used(&m);
        }
    }
    s.partial = entries(&layout.partials())?.len();
    s.tags = count_files(&layout.root().join("tags"))?;
    Ok(s)
}

/// The paths in `dir`, none if it does not exist.
fn entries(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(rd) => Ok(rd.flatten().map(|e| e.path()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Files under `dir`, at any depth, but for the temporary ones (a leading `.`).
fn count_files(dir: &Path) -> std::io::Result<usize> {
    let mut n = 0;
    for p in entries(dir)? {
        let hidden = p
            .file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with('.'));
        if p.is_dir() {
            n += count_files(&p)?;
        } else if !hidden {
            n += 1;
        }
    }
    Ok(n)
}

/// `cache stats`: one `name  value` line each.
pub fn stats(settings: &CacheSettings) -> Result<String, CacheError> {
    let layout = Layout::new(&settings.dir);
    let s = survey(&layout).map_err(|source| CacheError::Folder {
        dir: settings.dir.clone(),
        source,
    })?;
    let bytes = s.blob_bytes + s.manifest_bytes;
    let now = SystemTime::now();
    let when = |t: Option<SystemTime>| t.map_or_else(|| "-".to_string(), |t| moment(t, now));
    let pct = (bytes as f64 * 100.0 / settings.max_size.max(1) as f64).round();
    Ok(format!(
        "folder         {}\n\
         blobs          {} ({})\n\
         manifests      {} ({})\n\
         tags           {}\n\
         used           {} of {} ({pct}%), {bytes} bytes\n\
         oldest use     {}\n\
         newest use     {}\n\
         partial fills  {}\n",
        settings.dir.display(),
        s.blobs,
        size(s.blob_bytes),
        s.manifests,
        size(s.manifest_bytes),
        s.tags,
        size(bytes),
        size(settings.max_size),
        when(s.oldest),
        when(s.newest),
        s.partial,
    ))
}

/// `cache prune`: evict least recently used blobs and manifests until at most `to` bytes are
/// left; say what went.
pub fn prune(settings: &CacheSettings, to: u64) -> Result<String, CacheError> {
    // Opened without a limit, so that opening evicts nothing this report would not count.
    let unlimited = CacheSettings {
        max_size: u64::MAX,
        ..settings.clone()
    };
    let cache = Cache::open(&unlimited, Metrics::new()).map_err(|source| CacheError::Folder {
        dir: settings.dir.clone(),
        source,
    })?;
    let before = cache.stats();
    let (entries, bytes) = cache.evict_to(to);
    let after = cache.stats();
    let left = format!(
        "the cache holds {} in {} and {} (cache.max_size {})",
        size(after.bytes),
        count(after.blobs as u64, "blob"),
        count(after.manifests as u64, "manifest"),
        size(settings.max_size)
    );
    Ok(if entries == 0 {
        format!("nothing to remove: {left}, within {}\n", size(to))
    } else {
        format!(
            "removed {} and {}, {} ({bytes} bytes), least recently used first; {left}\n",
            count((before.blobs - after.blobs) as u64, "blob"),
            count((before.manifests - after.manifests) as u64, "manifest"),
            size(bytes),
        )
    })
}

/// `2025-05-01 12:00:00 UTC (3 h ago)`.
fn moment(t: SystemTime, now: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil(days as i64);
    let ago = now.duration_since(t).map_or(0, |d| d.as_secs());
    let ago = match ago {
        0..=59 => format!("{ago} s ago"),
        60..=3599 => format!("{} min ago", ago / 60),
        3600..=172_799 => format!("{} h ago", ago / 3600),
        _ => format!("{} days ago", ago / 86_400),
    };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC ({ago})",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The calendar date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_723), (2024, 1, 1));
        assert_eq!(civil(19_782), (2024, 2, 29));
        let t = UNIX_EPOCH + Duration::from_secs(1_714_564_800 + 3661);
        assert_eq!(
            moment(t, t + Duration::from_secs(7200)),
            "2024-05-01 13:01:01 UTC (2 h ago)"
        );
    }

    #[test]
    fn a_missing_folder_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let s = survey(&Layout::new(&dir.path().join("none"))).unwrap();
        assert_eq!(s, Survey::default());
    }
}

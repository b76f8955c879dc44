//! Where idle uploads park their buffered tail so it holds no memory: one file per parked tail in
//! a directory of this process's own. Files are written and read in place, with no await, so a
//! request dropped mid-way (a closed connection, an HTTP/2 reset) can never lose a tail or leave
//! a file behind: a tail is at most 1.34 × part size, a few milliseconds into the page cache, and
//! it is parked only when its upload is idle. A file is removed when its tail is taken back or
//! dropped. The bytes parked at once are capped: past the cap a tail stays in
//! memory (and counts against the budget), so parking cannot fill the disk. Knows nothing of
//! sessions or parts beyond the bytes it is given.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const PREFIX: &str = "ecr-proxy-spool-";

/// Remove the spool directories under `parent` left by proxies that died without cleaning up
/// (`kill -9`, a crash): their parked tails belong to uploads nobody can resume. A directory
/// counts as orphaned when no process has the pid in its name (checked through `/proc`; where
/// there is no `/proc`, nothing is removed). Pids are per pid namespace, so proxies in different
/// containers must not share one `spool_dir`. Returns how many were removed.
fn remove_orphans(parent: &Path) -> usize {
    if !Path::new("/proc/self").exists() {
        return 0;
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.strip_prefix(PREFIX))
                .and_then(|rest| rest.split_once('-'))
                .and_then(|(pid, _)| pid.parse::<u32>().ok());
            pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        })
        .filter(|e| std::fs::remove_dir_all(e.path()).is_ok())
        .count()
}

/// The spool directory; removed with its files when dropped.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// Bytes in spool files now, and the most there may be.
    used: Arc<AtomicU64>,
    max: u64,
}

/// A parked tail's file; removed (and its bytes uncounted) when dropped.
#[derive(Debug)]
pub struct SpoolFile {
    path: PathBuf,
    len: usize,
    used: Arc<AtomicU64>,
}

impl Spool {
    /// A fresh directory for this process under `parent` (the system's temporary directory when
    /// `None`).
    pub fn create(parent: Option<&Path>, max: u64) -> std::io::Result<Spool> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        std::fs::create_dir_all(&parent)?;
        let removed = remove_orphans(&parent);
        if removed > 0 {
            tracing::info!(removed, dir = %parent.display(), "removed spool directories of proxies that are gone");
        }
        let dir = parent.join(format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir(&dir)?;
        Ok(Spool {
            dir,
            used: Arc::default(),
            max,
        })
    }

    /// Bytes parked right now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write `bytes` to a new file named `name`, in place: there is no await in here, so a
    /// request dropped while it parks cannot leave a file behind or its bytes counted.
    pub fn save(&self, name: &str, bytes: &[u8]) -> std::io::Result<SpoolFile> {
        let n = bytes.len() as u64;
        let counted = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                (u + n <= self.max).then_some(u + n)
            });
        if counted.is_err() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!(
                    "the spool holds {} bytes and may hold {}",
                    self.used(),
                    self.max
                ),
            ));
        }
        // From here the file and its count belong to the guard: any failure undoes both.
        let file = SpoolFile {
            path: self.dir.join(name),
            len: bytes.len(),
            used: self.used.clone(),
        };
        std::fs::File::create(&file.path).and_then(|mut f| f.write_all(bytes))?;
        Ok(file)
    }
}

impl SpoolFile {
    /// Read the file back into `into` (exactly its length) and remove it, in place.
    pub fn load(self, into: &mut [u8]) -> std::io::Result<()> {
        std::fs::File::open(&self.path).and_then(|mut f| f.read_exact(&mut into[..self.len]))
    }

    /// Read the file's bytes without removing it (saving a parked tail elsewhere).
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        let mut bytes = vec![0u8; self.len];
        std::fs::File::open(&self.path).and_then(|mut f| f.read_exact(&mut bytes))?;
        Ok(bytes)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        self.used.fetch_sub(self.len as u64, Ordering::AcqRel);
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parked_bytes_come_back_and_the_cap_holds() {
        let spool = Spool::create(None, 10).unwrap();
        let file = spool.save("a", b"abcdef").expect("fits");
        assert_eq!(spool.used(), 6);
        let refused = spool
            .save("b", b"ghijkl")
            .expect_err("6 + 6 is over the cap of 10");
        assert_eq!(refused.kind(), std::io::ErrorKind::StorageFull);
        assert_eq!(spool.used(), 6);
        assert_eq!(std::fs::read_dir(spool.dir()).unwrap().count(), 1);
        let mut back = [0u8; 16];
        file.load(&mut back).unwrap();
        assert_eq!(&back[..6], b"abcdef");
        assert_eq!(spool.used(), 0, "a file taken back is uncounted");
        assert_eq!(std::fs::read_dir(spool.dir()).unwrap().count(), 0);
        let dir = spool.dir().to_path_buf();
        drop(spool);
        assert!(!dir.exists());
    }

    #[test]
    fn spool_directories_of_dead_proxies_are_removed_at_start() {
        let parent = std::env::temp_dir().join(format!("spool-orphans-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&parent).unwrap();
        // A pid above the kernel's maximum (4194304) is never a live process.
        let dead = parent.join(format!("{PREFIX}4294967295-x"));
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("tail"), b"parked").unwrap();
        let alive = parent.join(format!("{PREFIX}{}-y", std::process::id()));
        std::fs::create_dir(&alive).unwrap();
        let unrelated = parent.join("something-else");
        std::fs::create_dir(&unrelated).unwrap();
        let spool = Spool::create(Some(&parent), 10).unwrap();
        assert!(!dead.exists(), "a dead proxy's spool is removed");
        assert!(
            alive.exists() && unrelated.exists(),
            "a live one's and others are kept"
        );
        drop(spool);
        std::fs::remove_dir_all(&parent).unwrap();
    }
}

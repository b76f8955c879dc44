//! Where idle uploads park their buffered tail so it holds no memory: one file per parked tail in
//! a directory of this process's own, written and read back on the blocking pool without a copy
//! (the part buffer itself moves to the file and back). A file is removed when its tail is
//! taken back or dropped. The bytes parked at once are capped: past the cap a tail stays in
//! memory (and counts against the budget), so parking cannot fill the disk. Knows nothing of
//! sessions or parts beyond the bytes it is given.

use bytes::BytesMut;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
        let dir = parent.join(format!(
            "ecr-proxy-spool-{}-{}",
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

    /// Write `buf[..len]` to a new file named `name`; the buffer comes back either way.
    pub async fn save(
        &self,
        name: &str,
        buf: BytesMut,
        len: usize,
    ) -> (BytesMut, std::io::Result<SpoolFile>) {
        let n = len as u64;
        let counted = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                (u + n <= self.max).then_some(u + n)
            });
        if counted.is_err() {
            let full = std::io::Error::other(format!(
                "the spool holds {} bytes, its limit is {}",
                self.used(),
                self.max
            ));
            return (buf, Err(full));
        }
        let path = self.dir.join(name);
        let (buf, written) = tokio::task::spawn_blocking(move || {
            let written = std::fs::File::create(&path)
                .and_then(|mut f| f.write_all(&buf[..len]))
                .map(|()| path);
            (buf, written)
        })
        .await
        .expect("the spool writer does not panic");
        match written {
            Ok(path) => {
                let used = self.used.clone();
                (buf, Ok(SpoolFile { path, len, used }))
            }
            Err(e) => {
                self.used.fetch_sub(n, Ordering::AcqRel);
                let _ = std::fs::remove_file(self.dir.join(name));
                (buf, Err(e))
            }
        }
    }
}

impl SpoolFile {
    /// Read the file back into the start of `buf` (at least `len` long) and remove it.
    pub async fn load(self, mut buf: BytesMut) -> (BytesMut, std::io::Result<()>) {
        tokio::task::spawn_blocking(move || {
            let read = std::fs::File::open(&self.path)
                .and_then(|mut f| f.read_exact(&mut buf[..self.len]));
            (buf, read)
        })
        .await
        .expect("the spool reader does not panic")
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

    #[tokio::test]
    async fn parked_bytes_come_back_and_the_cap_holds() {
        let spool = Spool::create(None, 10).unwrap();
        let mut buf = BytesMut::zeroed(16);
        buf[..6].copy_from_slice(b"abcdef");
        let (buf, file) = spool.save("a", buf, 6).await;
        let file = file.expect("fits");
        assert_eq!(spool.used(), 6);
        let (_, refused) = spool.save("b", buf.clone(), 6).await;
        assert!(refused.is_err(), "6 + 6 is over the cap of 10");
        assert_eq!(spool.used(), 6);
        let (back, read) = file.load(BytesMut::zeroed(16)).await;
        read.unwrap();
        assert_eq!(&back[..6], b"abcdef");
        assert_eq!(spool.used(), 0, "a file taken back is uncounted");
        assert_eq!(std::fs::read_dir(spool.dir()).unwrap().count(), 0);
        let dir = spool.dir().to_path_buf();
        drop(spool);
        assert!(!dir.exists());
    }
}

//! Where idle uploads park their buffered tail so it holds no memory: one file per parked tail in
//! a directory of this process's own, written and read back on the blocking pool without a copy
//! (the part buffer itself moves to the file and back). A file is removed when its tail is
//! taken back or dropped. Knows nothing of sessions or parts beyond the bytes it is given.

use bytes::BytesMut;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The spool directory; removed with its files when dropped.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
}

/// A parked tail's file; removed when dropped.
#[derive(Debug)]
pub struct SpoolFile {
    path: PathBuf,
    len: usize,
}

impl Spool {
    /// A fresh directory for this process under `parent` (the system's temporary directory when
    /// `None`).
    pub fn create(parent: Option<&Path>) -> std::io::Result<Spool> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        std::fs::create_dir_all(&parent)?;
        let dir = parent.join(format!(
            "ecr-proxy-spool-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir(&dir)?;
        Ok(Spool { dir })
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
            Ok(path) => (buf, Ok(SpoolFile { path, len })),
            Err(e) => (buf, Err(e)),
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
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

//! Where the emulator's data lives under its data directory, and the atomic file writes that
//! make it survive a restart. Layout:
//! `repos/<name with / as +>/{repository.json, layers/<algo>-<hex>.json, images/<algo>-<hex>.json, tags/t_<tag>}`
//! (a tag file holds `<digest>\n<tag>`; long names and tags are hashed, see `Layout::repo`, `Layout::tag`),
//! `blobs/<algo>/<hex>`, `uploads/<id>/{meta.json, data}`, `url-key`.
//! This module must not apply ECR rules; it reads and writes what it is given.

use serde::{de::DeserializeOwned, Serialize};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Paths under the data directory.
#[derive(Clone, Debug)]
pub struct Layout {
    pub root: PathBuf,
}

fn file_key(digest: &str) -> String {
    digest.replace(':', "-")
}

/// File names are at most 255 bytes, but repository names reach 256 characters and tags 300:
/// names longer than this are stored under a hash (the record inside carries the real name).
const MAX_PLAIN_NAME: usize = 200;

fn hashed(name: &str) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(name.as_bytes()))
}

impl Layout {
    pub fn repos(&self) -> PathBuf {
        self.root.join("repos")
    }
    /// `a/b` is kept as `a+b`; a long name as `+<sha256 of the name>` (`+` is in no name).
    pub fn repo(&self, name: &str) -> PathBuf {
        if name.len() > MAX_PLAIN_NAME {
            return self.repos().join(format!("+{}", hashed(name)));
        }
        self.repos().join(name.replace('/', "+"))
    }
    pub fn repo_file(&self, name: &str) -> PathBuf {
        self.repo(name).join("repository.json")
    }
    pub fn layer(&self, repo: &str, digest: &str) -> PathBuf {
        self.repo(repo)
            .join("layers")
            .join(format!("{}.json", file_key(digest)))
    }
    pub fn image(&self, repo: &str, digest: &str) -> PathBuf {
        self.repo(repo)
            .join("images")
            .join(format!("{}.json", file_key(digest)))
    }
    /// `t_<tag>`, or `h_<sha256 of the tag>` for a long tag (the file holds the tag too).
    pub fn tag(&self, repo: &str, tag: &str) -> PathBuf {
        let file = if tag.len() > MAX_PLAIN_NAME {
            format!("h_{}", hashed(tag))
        } else {
            format!("t_{tag}")
        };
        self.repo(repo).join("tags").join(file)
    }
    pub fn blob(&self, digest: &str) -> PathBuf {
        let (algo, hex) = digest.split_once(':').unwrap_or(("unknown", digest));
        self.root.join("blobs").join(algo).join(hex)
    }
    pub fn uploads(&self) -> PathBuf {
        self.root.join("uploads")
    }
    pub fn upload_dir(&self, id: &str) -> PathBuf {
        self.uploads().join(id)
    }
    pub fn upload_meta(&self, id: &str) -> PathBuf {
        self.upload_dir(id).join("meta.json")
    }
    pub fn upload_data(&self, id: &str) -> PathBuf {
        self.upload_dir(id).join("data")
    }
    pub fn trash(&self) -> PathBuf {
        self.root.join("trash")
    }
}

/// Write `bytes` to `path` so that a reader (or a restart) sees the old or the new content, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().expect("data paths have a parent");
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    drop(f);
    fs::rename(&tmp, path)
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    write_atomic(path, &bytes)
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<T> {
    let bytes = fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

/// Remove a file; a file that is already gone is fine.
pub fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The `(file name, path)` of each entry of `dir`, skipping temporary files; none if it is absent.
pub fn entries(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(".tmp-") {
            out.push((name, entry.path()));
        }
    }
    Ok(out)
}

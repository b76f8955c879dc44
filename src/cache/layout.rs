//! Where the cache keeps what, under its folder:
//! - `blobs/sha256/ab/<hex>`: a complete, verified blob, with `<hex>.crc` beside it (the CRC-32 of
//!   each 256 KiB, checked as it is served);
//! - `partial/<hex>.<id>`: a blob being filled (never served from its name; removed at start);
//! - `manifests/sha256/<hex>`: a manifest (first line its media type, then its bytes);
//! - `tags/<repository>/_t/<tag>`: the digest a tag pointed to and when ECR last said so;
//! - `links/<repository>/_b/<hex>` and `_m/<hex>`: the repository holds that blob or manifest
//!   (content is stored once per digest; a digest is served for a repository only if linked,
//!   so one repository's blobs are never served as another's).
//!
//! Repository names (ECR's grammar: segments start with a letter or digit) and tags never
//! contain `..` or start a segment with `_`, so they cannot escape or collide. Paths only.

use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    pub fn blob(&self, hex: &str) -> PathBuf {
        self.blobs().join(&hex[..2]).join(hex)
    }

    pub fn crc(&self, hex: &str) -> PathBuf {
        self.blobs().join(&hex[..2]).join(format!("{hex}.crc"))
    }

    pub fn partials(&self) -> PathBuf {
        self.root.join("partial")
    }

    pub fn partial(&self, hex: &str, id: &str) -> PathBuf {
        self.partials().join(format!("{hex}.{id}"))
    }

    pub fn manifests(&self) -> PathBuf {
        self.root.join("manifests/sha256")
    }

    pub fn manifest(&self, hex: &str) -> PathBuf {
        self.manifests().join(hex)
    }

    pub fn tag(&self, repository: &str, tag: &str) -> PathBuf {
        self.tags(repository).join(tag)
    }

    /// The folder of `repository`'s tags (`_t`: no repository segment starts with `_`, so
    /// repository `app` with tag `web` and repository `app/web` never share a path).
    pub fn tags(&self, repository: &str) -> PathBuf {
        self.root.join("tags").join(repository).join("_t")
    }

    pub fn blob_link(&self, repository: &str, hex: &str) -> PathBuf {
        self.root
            .join("links")
            .join(repository)
            .join("_b")
            .join(hex)
    }

    pub fn manifest_link(&self, repository: &str, hex: &str) -> PathBuf {
        self.root
            .join("links")
            .join(repository)
            .join("_m")
            .join(hex)
    }
}

/// Whether `hex` is a sha256 hex digest (64 lowercase hex digits): the only names the cache
/// makes files from.
pub fn is_hex(hex: &str) -> bool {
    hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

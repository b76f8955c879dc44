//! The small files of the cache: manifests by digest (their media type, then their bytes,
//! checked against the digest when read), tags (the digest a tag pointed to and when ECR last
//! said so), and the links saying which repository holds which digest. Writes go to a temporary
//! name and are renamed into place, so a reader (or a crash) never sees half a file. Files only;
//! the size accounting is `Cache`'s.

use super::layout::Layout;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Write `bytes` to `path` through a temporary file in the same folder.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("cache paths have a folder");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("f"),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// A cached manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub bytes: Bytes,
}

pub fn write_manifest(layout: &Layout, hex: &str, m: &Manifest) -> std::io::Result<u64> {
    let mut out = Vec::with_capacity(m.media_type.len() + 1 + m.bytes.len());
    out.extend_from_slice(m.media_type.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&m.bytes);
    write_atomically(&layout.manifest(hex), &out)?;
    Ok(out.len() as u64)
}

/// The manifest `hex`, if its file is there and its bytes hash to it (a damaged file is
/// removed and reads as absent).
pub fn read_manifest(layout: &Layout, hex: &str) -> Option<Manifest> {
    let path = layout.manifest(hex);
    let raw = std::fs::read(&path).ok()?;
    let split = raw.iter().position(|&b| b == b'\n')?;
    let (head, body) = (&raw[..split], &raw[split + 1..]);
    if hex::encode(Sha256::digest(body)) != hex {
        tracing::warn!(path = %path.display(), "a cached manifest does not match its digest; removed");
        let _ = std::fs::remove_file(&path);
        return None;
    }
    Some(Manifest {
        media_type: String::from_utf8(head.to_vec()).ok()?,
        bytes: Bytes::copy_from_slice(body),
    })
}

/// What a tag pointed to, and when ECR last said so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub digest: String,
    pub media_type: String,
    /// Seconds since the epoch.
    pub checked: u64,
}

impl Tag {
    /// How long ago ECR last confirmed it.
    pub fn age(&self) -> Duration {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Duration::from_secs(now.saturating_sub(self.checked))
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn write_tag(layout: &Layout, repository: &str, tag: &str, t: &Tag) -> std::io::Result<()> {
    let json = serde_json::to_vec(t).map_err(std::io::Error::other)?;
    write_atomically(&layout.tag(repository, tag), &json)
}

pub fn read_tag(layout: &Layout, repository: &str, tag: &str) -> Option<Tag> {
    let raw = std::fs::read(layout.tag(repository, tag)).ok()?;
    serde_json::from_slice(&raw).ok()
}

pub fn remove_tag(layout: &Layout, repository: &str, tag: &str) {
    let _ = std::fs::remove_file(layout.tag(repository, tag));
}

/// Every tag of `repository` that points to `hex`.
pub fn tags_pointing_to(layout: &Layout, repository: &str, hex: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(layout.tags(repository)) else {
        return Vec::new();
    };
    let digest = format!("sha256:{hex}");
    dir.filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let t = read_tag(layout, repository, &name)?;
            (t.digest == digest).then_some(name)
        })
        .collect()
}

pub fn link(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    write_atomically(path, b"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_tags_and_links_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout::new(dir.path());
        let body = Bytes::from_static(b"{\"schemaVersion\":2}");
        let hex = hex::encode(Sha256::digest(&body));
        let m = Manifest {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            bytes: body.clone(),
        };
        write_manifest(&l, &hex, &m).unwrap();
        assert_eq!(read_manifest(&l, &hex), Some(m));
        // A damaged file reads as absent, and is gone.
        let path = l.manifest(&hex);
        let mut raw = std::fs::read(&path).unwrap();
        *raw.last_mut().unwrap() ^= 1;
        std::fs::write(&path, raw).unwrap();
        assert_eq!(read_manifest(&l, &hex), None);
        assert!(!path.exists());
        let t = Tag {
            digest: format!("sha256:{hex}"),
            media_type: "x".into(),
            checked: now_secs(),
        };
        write_tag(&l, "docker-hub/library/nginx", "latest", &t).unwrap();
        assert_eq!(read_tag(&l, "docker-hub/library/nginx", "latest"), Some(t));
        assert_eq!(
            tags_pointing_to(&l, "docker-hub/library/nginx", &hex),
            vec!["latest".to_string()]
        );
        remove_tag(&l, "docker-hub/library/nginx", "latest");
        assert_eq!(read_tag(&l, "docker-hub/library/nginx", "latest"), None);
        let p = l.blob_link("a/b", &hex);
        link(&p).unwrap();
        assert!(p.exists());
    }
}

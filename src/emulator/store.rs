//! The emulator's state: an in-memory index of repositories, layers, images, tags and uploads,
//! written through to disk (see `disk`) before any answer goes out, and loaded back on start.
//! This module keeps data consistent and durable; the ECR rules live in `ops`, not here.

mod disk;
pub mod model;

pub use disk::Layout;
use model::{ImageRecord, LayerRecord, RepoState, RepositoryRecord, UploadRecord};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// An upload in progress: its record, whether a part is being written, and the running hash of
/// the bytes received so far (absent after a restart; then the data file is hashed at completion).
pub struct UploadState {
    pub record: UploadRecord,
    pub busy: bool,
    pub hasher: Option<Sha256>,
}

/// Everything the emulator knows, indexed in memory.
#[derive(Default)]
pub struct Index {
    pub repos: BTreeMap<String, RepoState>,
    pub uploads: HashMap<String, UploadState>,
}

/// The index behind a lock, plus the data directory it mirrors.
pub struct Store {
    layout: Layout,
    index: Mutex<Index>,
    url_key: Vec<u8>,
}

impl Store {
    /// Open (creating if needed) the data directory and load everything in it.
    pub fn open(root: &Path) -> io::Result<Store> {
        let layout = Layout {
            root: root.to_path_buf(),
        };
        fs::create_dir_all(layout.repos())?;
        fs::create_dir_all(layout.uploads())?;
        let _ = fs::remove_dir_all(layout.trash());
        let url_key = load_or_create_key(&layout)?;
        let index = load_index(&layout)?;
        Ok(Store {
            layout,
            index: Mutex::new(index),
            url_key,
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The secret that signs download URLs (kept on disk so URLs survive a restart).
    pub fn url_key(&self) -> &[u8] {
        &self.url_key
    }

    /// Lock the index. Operations hold it only for bookkeeping and small writes, never while
    /// moving layer bytes.
    pub fn lock(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn save_repository(&self, r: &RepositoryRecord) -> io::Result<()> {
        disk::write_json(&self.layout.repo_file(&r.name), r)
    }

    pub fn save_layer(&self, repo: &str, digest: &str, l: &LayerRecord) -> io::Result<()> {
        disk::write_json(&self.layout.layer(repo, digest), l)
    }

    pub fn save_image(&self, repo: &str, i: &ImageRecord) -> io::Result<()> {
        disk::write_json(&self.layout.image(repo, &i.digest), i)
    }

    pub fn remove_image(&self, repo: &str, digest: &str) -> io::Result<()> {
        disk::remove(&self.layout.image(repo, digest))
    }

    pub fn save_tag(&self, repo: &str, tag: &str, digest: &str) -> io::Result<()> {
        disk::write_atomic(
            &self.layout.tag(repo, tag),
            format!("{digest}\n{tag}").as_bytes(),
        )
    }

    pub fn remove_tag(&self, repo: &str, tag: &str) -> io::Result<()> {
        disk::remove(&self.layout.tag(repo, tag))
    }

    pub fn save_upload(&self, u: &UploadRecord) -> io::Result<()> {
        disk::write_json(&self.layout.upload_meta(&u.id), u)
    }

    pub fn remove_upload(&self, id: &str) -> io::Result<()> {
        match fs::remove_dir_all(self.layout.upload_dir(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Remove a repository's directory (its blobs stay in the shared blob store).
    pub fn remove_repository(&self, name: &str) -> io::Result<()> {
        let trash = self.layout.trash().join(uuid::Uuid::new_v4().to_string());
        fs::create_dir_all(self.layout.trash())?;
        fs::rename(self.layout.repo(name), &trash)?;
        fs::remove_dir_all(trash)
    }
}

fn load_or_create_key(layout: &Layout) -> io::Result<Vec<u8>> {
    let path = layout.root.join("url-key");
    match fs::read(&path) {
        Ok(k) if k.len() >= 32 => Ok(k),
        _ => {
            let key: Vec<u8> = (0..2)
                .flat_map(|_| uuid::Uuid::new_v4().into_bytes())
                .collect();
            disk::write_atomic(&path, &key)?;
            Ok(key)
        }
    }
}

fn load_index(layout: &Layout) -> io::Result<Index> {
    let mut index = Index::default();
    for (_, dir) in disk::entries(&layout.repos())? {
        let record: RepositoryRecord = disk::read_json(&dir.join("repository.json"))?;
        let mut repo = RepoState::new(record);
        for (name, path) in disk::entries(&dir.join("layers"))? {
            let digest = name
                .strip_suffix(".json")
                .unwrap_or(&name)
                .replacen('-', ":", 1);
            repo.layers.insert(digest, disk::read_json(&path)?);
        }
        for (_, path) in disk::entries(&dir.join("images"))? {
            let image: ImageRecord = disk::read_json(&path)?;
            repo.images.insert(image.digest.clone(), image);
        }
        for (name, path) in disk::entries(&dir.join("tags"))? {
            let content = fs::read_to_string(&path)?;
            // `<digest>\n<tag>`; files from before the tag was kept inside hold only the digest.
            let (digest, tag) = match content.split_once('\n') {
                Some((digest, tag)) => (digest.to_string(), tag.to_string()),
                None => match name.strip_prefix("t_") {
                    Some(tag) => (content.clone(), tag.to_string()),
                    None => continue,
                },
            };
            repo.tags.insert(tag, digest);
        }
        index.repos.insert(repo.record.name.clone(), repo);
    }
    for (id, dir) in disk::entries(&layout.uploads())? {
        let Ok(record) = disk::read_json::<UploadRecord>(&dir.join("meta.json")) else {
            // Initiated but its record never landed: nothing was acknowledged, drop it.
            let _ = fs::remove_dir_all(&dir);
            continue;
        };
        // Bytes written after the last acknowledged part are not part of the upload.
        let data = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("data"))?;
        data.set_len(record.received)?;
        index.uploads.insert(
            id,
            UploadState {
                record,
                busy: false,
                hasher: None,
            },
        );
    }
    Ok(index)
}

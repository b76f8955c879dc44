//! The emulator's records: what a repository, a layer, an image and an upload are, in the form
//! they are kept on disk (JSON). Plain data: no I/O, no ECR rules.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// A repository's settings, as CreateRepository made it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryRecord {
    pub name: String,
    pub created_at: f64,
    pub image_tag_mutability: String,
    #[serde(default)]
    pub exclusion_filters: Vec<String>,
    pub scan_on_push: bool,
    pub encryption_type: String,
    pub kms_key: Option<String>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
}

/// A completed layer in one repository. Its bytes are in the shared blob directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerRecord {
    pub size: u64,
    /// The sizes of the parts it was uploaded in, in order (kept so tests can check the proxy's cuts).
    #[serde(default)]
    pub parts: Vec<u64>,
}

/// A blob a manifest references, with what the manifest says of it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BlobRef {
    pub digest: String,
    pub size: u64,
    pub media_type: Option<String>,
}

/// An image: a manifest stored byte for byte, and what was read from it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    pub digest: String,
    pub manifest: String,
    pub media_type: String,
    pub pushed_at: f64,
    /// Config and layers (image manifests) the manifest references.
    #[serde(default)]
    pub blobs: Vec<BlobRef>,
    /// Child manifests (manifest lists and indexes).
    #[serde(default)]
    pub children: Vec<String>,
    pub subject: Option<String>,
    pub artifact_type: Option<String>,
    pub config_media_type: Option<String>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An upload in progress. Its bytes are in `uploads/<id>/data`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadRecord {
    pub id: String,
    pub repository: String,
    pub parts: Vec<u64>,
    pub received: u64,
    pub created_at: f64,
    /// When a part was last accepted (absent until the first; records from before it existed
    /// count from `created_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub touched_at: Option<f64>,
}

impl UploadRecord {
    /// When the upload was last used: its last part, else its start.
    pub fn last_activity(&self) -> f64 {
        self.touched_at.unwrap_or(self.created_at)
    }
}

/// Everything known of one repository.
#[derive(Clone, Debug)]
pub struct RepoState {
    pub record: RepositoryRecord,
    pub layers: HashMap<String, LayerRecord>,
    pub images: HashMap<String, ImageRecord>,
    pub tags: BTreeMap<String, String>,
}

impl RepoState {
    pub fn new(record: RepositoryRecord) -> RepoState {
        RepoState {
            record,
            layers: HashMap::new(),
            images: HashMap::new(),
            tags: BTreeMap::new(),
        }
    }

    /// The tags that point at `digest`, sorted.
    pub fn tags_of(&self, digest: &str) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(_, d)| d.as_str() == digest)
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Whether any image in this repository references blob `digest`.
    pub fn blob_referenced(&self, digest: &str) -> Option<&BlobRef> {
        self.images
            .values()
            .flat_map(|i| i.blobs.iter())
            .find(|b| b.digest == digest)
    }

    /// Whether a manifest list or index in this repository references image `digest`.
    pub fn image_referenced_by_list(&self, digest: &str) -> bool {
        self.images
            .values()
            .any(|i| i.children.iter().any(|c| c == digest))
    }
}

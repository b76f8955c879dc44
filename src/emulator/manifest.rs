//! Reading what ECR reads from a manifest: its media type, the blobs (config and layers) or child
//! manifests it references, its `subject`, `artifactType` and annotations. The bytes themselves
//! are never re-serialised. Pure functions.

use super::store::model::BlobRef;
use serde_json::Value;
use std::collections::BTreeMap;

pub const DOCKER_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_V1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What a manifest references and declares.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    /// The top-level `mediaType` member, if present.
    pub media_type: Option<String>,
    pub blobs: Vec<BlobRef>,
    pub children: Vec<String>,
    pub subject: Option<String>,
    pub artifact_type: Option<String>,
    pub config_media_type: Option<String>,
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Whether `media_type` is a manifest list or an image index.
pub fn is_index(media_type: &str) -> bool {
    media_type == DOCKER_LIST || media_type == OCI_INDEX
}

/// Parse a manifest; `None` when it is not a JSON object. `media_type` is the effective type
/// (the one the pusher declared, or the manifest's own).
pub fn parse(text: &str, media_type: Option<&str>) -> Option<Parsed> {
    let v: Value = serde_json::from_str(text).ok()?;
    let obj = v.as_object()?;
    let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let mut p = Parsed {
        media_type: str_of(&v, "mediaType"),
        subject: v.get("subject").and_then(|s| str_of(s, "digest")),
        artifact_type: str_of(&v, "artifactType"),
        config_media_type: v.get("config").and_then(|c| str_of(c, "mediaType")),
        annotations: obj.get("annotations").and_then(Value::as_object).map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        }),
        ..Parsed::default()
    };
    let effective = media_type
        .map(str::to_string)
        .or_else(|| p.media_type.clone());
    let descriptors = |k: &str| {
        v.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    if effective.as_deref().is_some_and(is_index)
        || (effective.is_none() && obj.contains_key("manifests"))
    {
        p.children = descriptors("manifests")
            .iter()
            .filter_map(|d| str_of(d, "digest"))
            .collect();
    } else if matches!(
        effective.as_deref(),
        Some(DOCKER_V1) | Some(DOCKER_V1_SIGNED)
    ) {
        for l in descriptors("fsLayers") {
            if let Some(d) = str_of(&l, "blobSum") {
                if !p.blobs.iter().any(|b| b.digest == d) {
                    p.blobs.push(BlobRef {
                        digest: d,
                        size: 0,
                        media_type: None,
                    });
                }
            }
        }
    } else {
        let config = v.get("config").cloned().into_iter();
        for d in config.chain(descriptors("layers")) {
            let foreign = d
                .get("urls")
                .and_then(Value::as_array)
                .is_some_and(|u| !u.is_empty())
                || str_of(&d, "mediaType").is_some_and(|m| m.contains(".foreign."));
            if let (Some(digest), false) = (str_of(&d, "digest"), foreign) {
                let size = d.get("size").and_then(Value::as_u64).unwrap_or(0);
                p.blobs.push(BlobRef {
                    digest,
                    size,
                    media_type: str_of(&d, "mediaType"),
                });
            }
        }
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_manifest_references_config_and_layers() {
        let m = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:c","size":2},
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:l","size":5},
                      {"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"sha256:f","size":9,"urls":["https://x"]}],
            "subject":{"digest":"sha256:s"},"annotations":{"a":"b"}}"#;
        let p = parse(m, None).unwrap();
        let digests: Vec<&str> = p.blobs.iter().map(|b| b.digest.as_str()).collect();
        assert_eq!(digests, ["sha256:c", "sha256:l"]);
        assert_eq!(p.blobs[1].size, 5);
        assert_eq!(p.subject.as_deref(), Some("sha256:s"));
        assert_eq!(p.annotations.unwrap()["a"], "b");
        assert!(p.children.is_empty());
    }

    #[test]
    fn index_references_children_and_non_objects_are_refused() {
        let m = r#"{"schemaVersion":2,"manifests":[{"digest":"sha256:a"},{"digest":"sha256:b"}]}"#;
        let p = parse(m, Some(OCI_INDEX)).unwrap();
        assert_eq!(p.children, ["sha256:a", "sha256:b"]);
        assert!(p.blobs.is_empty());
        assert!(parse("[]", None).is_none());
        assert!(parse("{", None).is_none());
    }
}

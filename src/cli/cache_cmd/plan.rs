//! What a manifest asks `cache warm` to fetch next: an index (OCI image index, Docker manifest
//! list) names child manifests, narrowed to the `--platform`s asked for; an image manifest
//! names its config and layers. Pure parsing of manifest JSON: no I/O.

use super::image::Platform;
use crate::digest::Digest;
use serde::Deserialize;

/// A content descriptor, as manifests write them.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<DescribedPlatform>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct DescribedPlatform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl std::fmt::Display for DescribedPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    /// The OCI artifact manifest's name for its contents.
    #[serde(default)]
    blobs: Option<Vec<Descriptor>>,
    #[serde(default)]
    fs_layers: Option<serde_json::Value>,
}

/// A blob to fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
}

/// What one manifest leads to.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Child manifests (by digest), already narrowed to the platforms asked for.
    Manifests(Vec<Digest>),
    /// Blobs (config first, then layers).
    Blobs(Vec<Blob>),
}

/// Read a manifest's JSON. `platforms` narrows an index's children (empty: all of them).
pub fn next(bytes: &[u8], platforms: &[Platform]) -> Result<Next, String> {
    let raw: Raw =
        serde_json::from_slice(bytes).map_err(|e| format!("the manifest is not valid: {e}"))?;
    if raw.fs_layers.is_some() {
        return Err(
            "Docker schema 1 manifests cannot be warmed (ECR keeps them only for \
                    old images; push the image again as schema 2 or OCI)"
                .into(),
        );
    }
    if let Some(children) = raw.manifests {
        let chosen: Vec<&Descriptor> = children
            .iter()
            .filter(|c| platforms.is_empty() || platforms.iter().any(|p| matches(c, p)))
            .collect();
        if chosen.is_empty() && !children.is_empty() {
            let offered: Vec<String> = children
                .iter()
                .filter_map(|c| c.platform.as_ref().map(ToString::to_string))
                .collect();
            let asked: Vec<String> = platforms.iter().map(ToString::to_string).collect();
            return Err(format!(
                "the index has no manifest for {} (it has: {})",
                asked.join(", "),
                if offered.is_empty() {
                    "no platforms named".to_string()
                } else {
                    offered.join(", ")
                }
            ));
        }
        return chosen
            .into_iter()
            .map(|c| digest(&c.digest))
            .collect::<Result<_, _>>()
            .map(Next::Manifests);
    }
    let blobs = raw
        .config
        .into_iter()
        .chain(raw.layers.unwrap_or_default())
        .chain(raw.blobs.unwrap_or_default())
        .filter(|d| !foreign(&d.media_type))
        .map(|d| {
            Ok(Blob {
                digest: digest(&d.digest)?,
                size: d.size,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Next::Blobs(blobs))
}

fn digest(s: &str) -> Result<Digest, String> {
    Digest::parse(s).map_err(|e| format!("the manifest names {e}"))
}

/// Layers a registry does not hold (Windows base layers, fetched from their `urls`).
fn foreign(media_type: &str) -> bool {
    media_type.contains(".foreign.") || media_type.contains("nondistributable")
}

fn matches(child: &Descriptor, wanted: &Platform) -> bool {
    child.platform.as_ref().is_some_and(|p| {
        p.os == wanted.os
            && p.architecture == wanted.architecture
            && (wanted.variant.is_none() || p.variant == wanted.variant)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn an_image_names_its_config_then_layers() {
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"c","digest":"{}","size":3}},
            "layers":[{{"mediaType":"l","digest":"{}","size":10}},
            {{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{}","size":9}}]}}"#,
            d('a'),
            d('b'),
            d('c')
        );
        let Next::Blobs(b) = next(m.as_bytes(), &[]).unwrap() else {
            panic!("not an image")
        };
        assert_eq!(
            b.iter()
                .map(|b| (b.digest.to_string(), b.size))
                .collect::<Vec<_>>(),
            [(d('a'), 3), (d('b'), 10)],
            "the foreign layer is not in any registry"
        );
    }

    #[test]
    fn an_index_narrowed_to_platforms() {
        let m = format!(
            r#"{{"schemaVersion":2,"manifests":[
            {{"digest":"{}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},
            {{"digest":"{}","size":1,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
            {{"digest":"{}","size":1,"platform":{{"os":"unknown","architecture":"unknown"}}}}]}}"#,
            d('a'),
            d('b'),
            d('c')
        );
        let all = next(m.as_bytes(), &[]).unwrap();
        assert!(matches!(all, Next::Manifests(ref v) if v.len() == 3));
        let arm = next(m.as_bytes(), &["linux/arm64".parse().unwrap()]).unwrap();
        assert_eq!(arm, Next::Manifests(vec![Digest::parse(&d('b')).unwrap()]));
        let e = next(m.as_bytes(), &["linux/s390x".parse().unwrap()]).unwrap_err();
        assert!(
            e.contains("no manifest for linux/s390x") && e.contains("linux/arm64/v8"),
            "{e}"
        );
    }

    #[test]
    fn schema1_and_garbage_are_refused() {
        assert!(next(br#"{"schemaVersion":1,"fsLayers":[]}"#, &[])
            .unwrap_err()
            .contains("schema 1"));
        assert!(next(b"nope", &[]).is_err());
        assert!(
            next(br#"{"layers":[{"digest":"md5:00","size":1}]}"#, &[]).is_err(),
            "a digest the proxy cannot serve"
        );
    }
}

//! The mirror's disk cache (`[cache]`) against the emulator: a second pull makes no download,
//! pushes and deletes keep it right, a flipped byte is caught and refetched, pulls go on through
//! an ECR outage within the staleness bound (and a clear 503 past it), a crowd shares one fill
//! and gets its first bytes before the fill ends, the size limit evicts the least recently used,
//! and a `kill -9` mid-fill leaves nothing partial to serve.

#[path = "cache/crowd.rs"]
mod crowd;
#[path = "cache/hits.rs"]
mod hits;
#[path = "cache/limits.rs"]
mod limits;
#[path = "cache/outage.rs"]
mod outage;

use crate::support::*;
use crate::uploads::push_blob;
use bytes::Bytes;

pub const OCI: &str = "application/vnd.oci.image.manifest.v1+json";

/// A stack whose proxy caches in `conf/cache` with `[cache]` settings `extra` (after `dir`).
pub async fn cache_stack(extra: &str) -> Stack {
    let toml = format!("[cache]\ndir = \"cache\"\n{extra}\n");
    Stack::start_config(&toml, &[], &[]).await
}

/// The same, with an emulator that injects `faults` (see `emulator::faults`).
pub async fn cache_faulty(extra: &str, faults: &str) -> Stack {
    let toml = format!("[cache]\ndir = \"cache\"\n{extra}\n");
    Stack::start_config_faulty(&toml, &[], &[], faults).await
}

/// Push an image of `layers` to `repo:tag`; its manifest.
pub async fn push_image(s: &Stack, repo: &str, tag: &str, layers: &[Vec<u8>]) -> String {
    let cfg = format!(r#"{{"layers":{}}}"#, layers.len());
    let cd = push_blob(s, repo, cfg.as_bytes()).await;
    let mut entries = Vec::new();
    for l in layers {
        let d = push_blob(s, repo, l).await;
        entries.push(format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":{}}}"#,
            l.len()
        ));
    }
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{}]}}"#,
        cfg.len(),
        entries.join(",")
    );
    let r = request(
        "PUT",
        &s.url(&format!("/v2/{repo}/manifests/{tag}")),
        &[("Content-Type", OCI)],
        m.clone(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    m
}

/// Pull `repo:reference` over `url` (a proxy base URL): the manifest and every blob, each
/// checked against its digest; the manifest's bytes.
pub async fn pull(url: &str, repo: &str, reference: &str) -> Result<Bytes, String> {
    let r = request(
        "GET",
        &format!("{url}/v2/{repo}/manifests/{reference}"),
        &[("Accept", OCI)],
        Bytes::new(),
    )
    .await;
    if r.status != 200 {
        return Err(format!(
            "manifest {repo}:{reference}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ));
    }
    let m: serde_json::Value = serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
    let mut digests = vec![m["config"]["digest"].as_str().unwrap().to_string()];
    for l in m["layers"].as_array().unwrap() {
        digests.push(l["digest"].as_str().unwrap().to_string());
    }
    for d in digests {
        let b = request(
            "GET",
            &format!("{url}/v2/{repo}/blobs/{d}"),
            &[],
            Bytes::new(),
        )
        .await;
        if b.status != 200 {
            return Err(format!("blob {d}: {}", b.status));
        }
        if digest(&b.body) != d {
            return Err(format!("blob {d}: the bytes hash to {}", digest(&b.body)));
        }
    }
    Ok(r.body)
}

/// Bytes in files under `dir`, recursively.
pub fn disk_use(dir: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => disk_use(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

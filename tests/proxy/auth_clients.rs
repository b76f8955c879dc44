//! Real clients against a proxy configured with the example `[auth]` (`auth::EXAMPLE`:
//! alice may push `team-a/*`, everyone signed in may pull): `docker login` + push + pull,
//! skopeo with `--dest-creds` and `--src-creds`, containerd's `ctr --user`. Each checks what the
//! user would: digests and bytes that came back, what landed in ECR, and the message a refused
//! client prints. The plain-HTTP behaviour is `auth`'s; this owns only the client runs.

#[path = "auth_clients/containerd.rs"]
mod containerd;
#[path = "auth_clients/docker.rs"]
mod docker;
#[path = "auth_clients/skopeo.rs"]
mod skopeo;

pub use crate::auth::{basic, stack_with, EXAMPLE};
use crate::support::*;
use bytes::Bytes;
use std::process::Output;

/// A client run's exit status and output, for failure messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// stdout and stderr together, for asserting on what a client printed.
pub fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// This machine's architecture as image platforms name it.
pub fn platform_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// An OCI layout at `dir` with one image for this machine, tagged `tag`: tar layers of
/// `sizes` bytes of data from `seed`. Returns the layout, the manifest and the layers.
pub fn image_layout(
    dir: &std::path::Path,
    tag: &str,
    seed: u64,
    sizes: &[usize],
) -> (OciLayout, Vec<u8>, Vec<Vec<u8>>) {
    let layout = OciLayout::create(dir);
    let layers: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| tar_layer(&format!("f{i}"), &data(seed + i as u64, len)))
        .collect();
    let manifest = layout.image(platform_arch(), &layers);
    layout.tag(tag, OCI_MANIFEST, &manifest);
    (layout, manifest, layers)
}

/// Push every blob of `layout` and then `manifest` as `repo:tag` over plain HTTP with
/// `authorization`.
pub async fn push_layout(
    s: &Stack,
    layout: &OciLayout,
    manifest: &[u8],
    repo: &str,
    tag: &str,
    authorization: &str,
) {
    let manifest_digest = digest(manifest);
    for (d, bytes) in layout.blobs() {
        if d == manifest_digest {
            continue;
        }
        let r = request(
            "POST",
            &s.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")),
            &[("Authorization", authorization)],
            bytes,
        )
        .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
    let r = request(
        "PUT",
        &s.url(&format!("/v2/{repo}/manifests/{tag}")),
        &[
            ("Authorization", authorization),
            ("Content-Type", OCI_MANIFEST),
        ],
        manifest.to_vec(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

/// The digest ECR holds under `repo:tag`, if any.
pub async fn ecr_digest(s: &Stack, repo: &str, tag: &str) -> Option<String> {
    let listed = s
        .ecr
        .list_images()
        .repository_name(repo)
        .send()
        .await
        .ok()?;
    listed
        .image_ids()
        .iter()
        .find(|id| id.image_tag() == Some(tag))
        .and_then(|id| id.image_digest().map(str::to_string))
}

/// The manifest bytes ECR holds under `repo:tag`.
pub async fn ecr_manifest(s: &Stack, repo: &str, tag: &str) -> Bytes {
    Bytes::from(stored_manifest(&s.ecr, repo, tag).await.0)
}

/// How many images ECR holds in `repo` (none when the repository does not exist).
pub async fn ecr_image_count(s: &Stack, repo: &str) -> usize {
    s.ecr
        .list_images()
        .repository_name(repo)
        .send()
        .await
        .map(|l| l.image_ids().len())
        .unwrap_or(0)
}

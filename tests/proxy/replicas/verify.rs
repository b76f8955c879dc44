//! What the replica acceptance tests check in the emulator through the AWS SDK, as a user of
//! ECR would: a manifest as stored under its tag (byte for byte, and its digest), a layer's
//! bytes as ECR serves them (byte for byte), and the part sizes ECR received (whole 10 MiB
//! parts, then a shorter last one). Also the OCI layouts the skopeo pushes copy from.

use crate::support::*;
use bytes::Bytes;
use ecr_proxy::emulator::RunningEmulator;
use std::path::Path;

const PART: u64 = 10 * MIB as u64;

/// An image written as an OCI layout: its manifest, its config, and its layers as the seeds
/// and lengths of `data` (regenerated when checked, so a test does not hold them all).
pub struct Image {
    pub manifest: Vec<u8>,
    pub config: Vec<u8>,
    pub layers: Vec<(u64, usize)>,
}

impl Image {
    /// Write an image of `layers` (`data(seed, len)` each) tagged `tag` as an OCI layout at `dir`.
    pub fn write(dir: &Path, tag: &str, layers: &[(u64, usize)]) -> Image {
        let layout = OciLayout::create(dir);
        let bytes: Vec<Vec<u8>> = layers.iter().map(|&(s, n)| data(s, n)).collect();
        let manifest = layout.image("amd64", &bytes);
        layout.tag(tag, OCI_MANIFEST, &manifest);
        let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        let hex = m["config"]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        let config = std::fs::read(dir.join("blobs/sha256").join(hex)).expect("the config blob");
        Image {
            manifest,
            config,
            layers: layers.to_vec(),
        }
    }

    /// Every blob: the config, then each layer.
    pub fn blobs(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        std::iter::once(self.config.clone()).chain(self.layers.iter().map(|&(s, n)| data(s, n)))
    }
}

/// `skopeo copy --dest-tls-verify=false --preserve-digests oci:LAYOUT:TAG docker://DEST`,
/// skopeo's state in `home`; its output whatever the outcome.
pub async fn skopeo_push(
    home: &Path,
    layout: &Path,
    tag: &str,
    dest: &str,
) -> std::process::Output {
    let source = format!("oci:{}:{tag}", layout.display());
    let dest = format!("docker://{dest}");
    skopeo_output(
        home,
        &[
            "copy",
            "--dest-tls-verify=false",
            "--preserve-digests",
            &source,
            &dest,
        ],
    )
    .await
}

/// skopeo's or docker's exit status and output, for assertion messages.
pub fn describe(out: &std::process::Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The bytes ECR serves for layer `digest` of `repo` (a manifest must reference it).
pub async fn layer_bytes(ecr: &aws_sdk_ecr::Client, repo: &str, digest: &str) -> Bytes {
    let url = ecr
        .get_download_url_for_layer()
        .repository_name(repo)
        .layer_digest(digest)
        .send()
        .await
        .unwrap_or_else(|e| panic!("download URL of {repo}@{digest}: {e:?}"))
        .download_url()
        .unwrap()
        .to_string();
    let r = request("GET", &url, &[], Bytes::new()).await;
    assert_eq!(r.status, 200, "download of {repo}@{digest}");
    r.body
}

/// ECR received layer `digest` of `repo` (`len` bytes) in whole 10 MiB parts and a shorter,
/// non-empty last one.
pub fn assert_parts(emu: &RunningEmulator, repo: &str, digest: &str, len: usize) {
    let parts = emu
        .layer_parts(repo, digest)
        .unwrap_or_else(|| panic!("{repo}@{digest} is not a layer in ECR"));
    let (last, full) = parts.split_last().expect("at least one part");
    assert!(
        full.iter().all(|&p| p == PART) && *last > 0 && *last <= PART,
        "parts of {repo}@{digest}: {parts:?}"
    );
    assert_eq!(parts.iter().sum::<u64>(), len as u64, "{repo}@{digest}");
}

/// `image` is in ECR as `repo:tag`: the manifest byte for byte under the manifest's digest,
/// and every blob (config and layers) byte for byte in exact parts.
pub async fn assert_image(
    ecr: &aws_sdk_ecr::Client,
    emu: &RunningEmulator,
    repo: &str,
    tag: &str,
    image: &Image,
) {
    let (manifest, d) = stored_manifest(ecr, repo, tag).await;
    assert!(
        manifest.as_bytes() == image.manifest.as_slice(),
        "{repo}:{tag}: the manifest in ECR differs:\n{manifest}"
    );
    assert_eq!(d, digest(&image.manifest), "{repo}:{tag}");
    for blob in image.blobs() {
        let d = digest(&blob);
        let got = layer_bytes(ecr, repo, &d).await;
        assert!(
            got.as_ref() == blob.as_slice(),
            "{repo}@{d} ({} bytes) differs in ECR: {} bytes with digest {}",
            blob.len(),
            got.len(),
            digest(&got)
        );
        assert_parts(emu, repo, &d, blob.len());
    }
}

/// `blobs`, uploaded to `repo`, are layers in ECR with exactly their bytes, in exact parts: a
/// manifest referencing them is pushed through the proxy at `base` (ECR serves only referenced
/// layers), then each is downloaded and compared.
pub async fn assert_blobs_in_ecr(
    ecr: &aws_sdk_ecr::Client,
    emu: &RunningEmulator,
    base: &str,
    repo: &str,
    blobs: &[Vec<u8>],
) {
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let cd = digest(&config);
    let url = format!("{base}/v2/{repo}/blobs/uploads/?digest={cd}");
    let r = request("POST", &url, &[], config.clone()).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let layers: Vec<(String, usize)> = blobs.iter().map(|b| (digest(b), b.len())).collect();
    let manifest = oci_manifest(&config, &layers);
    let url = format!("{base}/v2/{repo}/manifests/all");
    let r = request("PUT", &url, &[("Content-Type", OCI_MANIFEST)], manifest).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    for b in blobs {
        let d = digest(b);
        assert_parts(emu, repo, &d, b.len());
        let got = layer_bytes(ecr, repo, &d).await;
        assert!(got.as_ref() == b.as_slice(), "layer {d} differs in ECR");
    }
}

//! skopeo copies through the proxy: an OCI image layout written here, copied to the proxy with
//! `skopeo copy --preserve-digests`, then checked in the emulator byte for byte (manifest and
//! layers) along with the part sizes ECR received.

use crate::support::*;
use bytes::Bytes;
use std::path::Path;

const PART: u64 = 10 * MIB as u64;

/// Layer sizes around ECR's 10 MiB part boundary, plus one large layer.
fn layer_sizes() -> [usize; 5] {
    [
        100 * 1024,
        (9.9 * MIB as f64).floor() as usize,
        10 * MIB,
        10 * MIB + 1,
        64 * MIB,
    ]
}

/// The part sizes ECR should see for a layer of `len` bytes: full parts, then a shorter tail.
fn expected_parts(len: u64) -> Vec<u64> {
    let mut parts = vec![PART; (len / PART) as usize];
    if !len.is_multiple_of(PART) {
        parts.push(len % PART);
    }
    parts
}

/// An OCI image layout at `dir` holding one image tagged `tag`; returns the manifest bytes
/// and the layers.
fn write_layout(dir: &Path, tag: &str) -> (Vec<u8>, Vec<Vec<u8>>) {
    let layout = OciLayout::create(dir);
    let layers: Vec<Vec<u8>> = layer_sizes()
        .iter()
        .enumerate()
        .map(|(i, &len)| data(100 + i as u64, len))
        .collect();
    let manifest = layout.image("amd64", &layers);
    layout.tag(tag, OCI_MANIFEST, &manifest);
    (manifest, layers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copy_oci_layout_lands_byte_for_byte() {
    if !tool_available("skopeo", "--version") {
        return;
    }
    let stack = Stack::start().await;
    let port = stack.proxy.addr().port();
    let repo = format!("skopeo/copy-{port}");
    let tag = "v1";
    let src = tempfile::tempdir().expect("temporary directory");
    let layout = src.path().join("layout");
    let (manifest, layers) = write_layout(&layout, tag);

    let source = format!("oci:{}:{tag}", layout.display());
    let dest = format!("docker://{}/{repo}:{tag}", stack.host());
    skopeo(
        src.path(),
        &[
            "copy",
            "--dest-tls-verify=false",
            "--preserve-digests",
            &source,
            &dest,
        ],
    )
    .await;

    let got = stack
        .ecr
        .batch_get_image()
        .repository_name(&repo)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(tag)
                .build(),
        )
        .accepted_media_types("application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .expect("BatchGetImage");
    assert!(got.failures().is_empty(), "failures: {:?}", got.failures());
    let image = got.images().first().expect("the image is in ECR");
    assert_eq!(
        image.image_manifest().unwrap_or_default(),
        std::str::from_utf8(&manifest).unwrap(),
        "the manifest is stored byte for byte"
    );
    assert_eq!(
        image.image_id().and_then(|id| id.image_digest()),
        Some(digest(&manifest).as_str())
    );

    for layer in &layers {
        let d = digest(layer);
        let fetched = layer_from_emulator(&stack, &repo, &d).await;
        assert!(
            fetched == Bytes::copy_from_slice(layer),
            "layer {d} ({} bytes) differs: got {} bytes",
            layer.len(),
            fetched.len()
        );
        assert_eq!(
            stack.emu.layer_parts(&repo, &d),
            Some(expected_parts(layer.len() as u64)),
            "parts of layer {d} ({} bytes)",
            layer.len()
        );
    }
}

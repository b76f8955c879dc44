//! Real-client pull round trips: OCI layouts written here are pushed to the proxy with
//! `skopeo copy --preserve-digests`, copied back out into new layouts, and compared blob for blob
//! with the source (manifests, configs, layers), with blobs streamed through the proxy or
//! redirected to the emulator's download URLs.

use crate::support::*;
use std::collections::BTreeMap;

/// Layer sizes: small, a few MiB, and one over ECR's 10 MiB part size.
const SIZES: [usize; 3] = [1024, 3 * MIB + 7, 12 * MIB + 5];

/// Every blob of `out` equals the source's: the same digests, the same bytes.
fn assert_same_blobs(src: &BTreeMap<String, Vec<u8>>, out: &OciLayout) {
    let got = out.blobs();
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&got), names(src), "the copied layout's blobs");
    for (d, bytes) in src {
        assert!(
            got[d] == *bytes,
            "blob {d} differs ({} bytes, copied {} bytes)",
            bytes.len(),
            got[d].len()
        );
    }
}

/// The descriptor `index.json` of `out` gives for `tag`: its digest and media type.
fn tagged(out: &OciLayout, tag: &str) -> (String, String) {
    let desc = out
        .tagged(tag)
        .unwrap_or_else(|| panic!("{tag} in {}/index.json", out.dir.display()));
    (
        desc["digest"].as_str().unwrap_or("").to_string(),
        desc["mediaType"].as_str().unwrap_or("").to_string(),
    )
}

/// Push a single-platform layout and copy it back, with blobs served in `mode`.
async fn round_trip(mode: &str) {
    if !tool_available("skopeo", "--version") {
        return;
    }
    let stack = Stack::start_with(&[("ECR_PROXY_BLOB_MODE", mode)]).await;
    let port = stack.proxy.addr().port();
    let repo = format!("roundtrip/{mode}-{port}");
    let tag = "v1";
    let tmp = tempfile::tempdir().expect("temporary directory");
    let src = OciLayout::create(&tmp.path().join("src"));
    let layers: Vec<Vec<u8>> = SIZES
        .iter()
        .enumerate()
        .map(|(i, &len)| data(300 + i as u64, len))
        .collect();
    let manifest = src.image("amd64", &layers);
    src.tag(tag, OCI_MANIFEST, &manifest);
    let remote = format!("docker://{}/{repo}:{tag}", stack.host());

    skopeo(
        tmp.path(),
        &[
            "copy",
            "--dest-tls-verify=false",
            "--preserve-digests",
            &format!("oci:{}:{tag}", src.dir.display()),
            &remote,
        ],
    )
    .await;

    let out = OciLayout {
        dir: tmp.path().join("out"),
    };
    skopeo(
        tmp.path(),
        &[
            "copy",
            "--src-tls-verify=false",
            "--preserve-digests",
            &remote,
            &format!("oci:{}:{tag}", out.dir.display()),
        ],
    )
    .await;

    assert_eq!(
        tagged(&out, tag),
        (digest(&manifest), OCI_MANIFEST.to_string()),
        "the copied manifest"
    );
    assert_same_blobs(&src.blobs(), &out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_round_trip_streamed() {
    round_trip("stream").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_round_trip_redirected() {
    round_trip("redirect").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_round_trip_multi_platform_index() {
    if !tool_available("skopeo", "--version") {
        return;
    }
    let stack = Stack::start_with(&[("ECR_PROXY_BLOB_MODE", "stream")]).await;
    let port = stack.proxy.addr().port();
    let repo = format!("roundtrip/multi-{port}");
    let tag = "multi";
    let tmp = tempfile::tempdir().expect("temporary directory");
    let src = OciLayout::create(&tmp.path().join("src"));
    let amd64 = src.image("amd64", &[data(400, 2 * MIB), data(401, 1000)]);
    let arm64 = src.image("arm64", &[data(410, 11 * MIB), data(411, 2000)]);
    let index = src.index(&[("amd64", &amd64), ("arm64", &arm64)]);
    src.tag(tag, OCI_INDEX, &index);
    let remote = format!("docker://{}/{repo}:{tag}", stack.host());

    skopeo(
        tmp.path(),
        &[
            "copy",
            "--all",
            "--dest-tls-verify=false",
            "--preserve-digests",
            &format!("oci:{}:{tag}", src.dir.display()),
            &remote,
        ],
    )
    .await;

    // ECR holds the index under the tag, byte for byte.
    let got = stack
        .ecr
        .batch_get_image()
        .repository_name(&repo)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(tag)
                .build(),
        )
        .accepted_media_types(OCI_INDEX)
        .send()
        .await
        .expect("BatchGetImage");
    assert!(got.failures().is_empty(), "failures: {:?}", got.failures());
    let image = got.images().first().expect("the index is in ECR");
    assert_eq!(
        image.image_manifest().unwrap_or_default(),
        std::str::from_utf8(&index).unwrap(),
        "the index is stored byte for byte"
    );
    assert_eq!(
        image.image_id().and_then(|id| id.image_digest()),
        Some(digest(&index).as_str())
    );
    assert_eq!(image.image_manifest_media_type(), Some(OCI_INDEX));

    let out = OciLayout {
        dir: tmp.path().join("out"),
    };
    skopeo(
        tmp.path(),
        &[
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--preserve-digests",
            &remote,
            &format!("oci:{}:{tag}", out.dir.display()),
        ],
    )
    .await;

    assert_eq!(
        tagged(&out, tag),
        (digest(&index), OCI_INDEX.to_string()),
        "the copied index"
    );
    assert_same_blobs(&src.blobs(), &out);
}

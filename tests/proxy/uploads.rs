//! Blob uploads over plain HTTP in every form the spec allows, and what lands in ECR: the bytes,
//! the digest, and the part sizes the emulator received.

use crate::support::*;
use bytes::Bytes;

#[path = "uploads/digests.rs"]
mod digests;

const PART: u64 = 10 * MIB as u64;

/// Push a manifest referencing `layers` so ECR lets us download them, then compare bytes.
pub async fn assert_layers_in_ecr(stack: &Stack, repo: &str, layers: &[&[u8]]) {
    let config = b"{}".to_vec();
    let cd = push_blob(stack, repo, &config).await;
    let descs: Vec<String> = layers.iter().map(|l| format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}"#, digest(l), l.len())).collect();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":2}},"layers":[{}]}}"#,
        descs.join(",")
    );
    let r = request(
        "PUT",
        &stack.url(&format!("/v2/{repo}/manifests/check")),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        manifest,
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    for l in layers {
        assert_eq!(
            layer_from_emulator(stack, repo, &digest(l)).await,
            Bytes::copy_from_slice(l)
        );
    }
}

/// One-request upload; returns the digest.
pub async fn push_blob(stack: &Stack, repo: &str, bytes: &[u8]) -> String {
    let d = digest(bytes);
    let r = request(
        "POST",
        &stack.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")),
        &[],
        bytes.to_vec(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("docker-content-digest"), d);
    d
}

async fn begin(stack: &Stack, repo: &str) -> String {
    let r = request(
        "POST",
        &stack.url(&format!("/v2/{repo}/blobs/uploads/")),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("range"), "0-0");
    assert!(!r.header("docker-upload-uuid").is_empty());
    r.header("location").to_string()
}

async fn patch_chunks(stack: &Stack, location: &str, bytes: &[u8], chunk: usize) -> String {
    let mut loc = location.to_string();
    for (i, c) in bytes.chunks(chunk).enumerate() {
        let start = i * chunk;
        let range = format!("{}-{}", start, start + c.len() - 1);
        let r = request(
            "PATCH",
            &stack.url(&loc),
            &[
                ("Content-Range", &range),
                ("Content-Type", "application/octet-stream"),
            ],
            c.to_vec(),
        )
        .await;
        assert_eq!(
            r.status,
            202,
            "chunk {i}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.header("range"), format!("0-{}", start + c.len() - 1));
        loc = r.header("location").to_string();
    }
    loc
}

async fn finish(stack: &Stack, location: &str, digest: &str, body: Vec<u8>) -> Resp {
    request(
        "PUT",
        &stack.url(&format!("{location}?digest={digest}")),
        &[],
        body,
    )
    .await
}

#[tokio::test]
async fn one_byte_chunks() {
    let s = Stack::start().await;
    let bytes = data(1, 300);
    let loc = begin(&s, "chunks/tiny").await;
    let loc = patch_chunks(&s, &loc, &bytes, 1).await;
    let r = finish(&s, &loc, &digest(&bytes), vec![]).await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("location"),
        format!("/v2/chunks/tiny/blobs/{}", digest(&bytes))
    );
    assert_eq!(
        s.emu.layer_parts("chunks/tiny", &digest(&bytes)),
        Some(vec![300])
    );
    assert_layers_in_ecr(&s, "chunks/tiny", &[&bytes]).await;
}

#[tokio::test]
async fn three_mib_chunks_are_recut_into_exact_parts() {
    let s = Stack::start().await;
    let bytes = data(2, 25 * MIB);
    let loc = begin(&s, "chunks/big").await;
    let loc = patch_chunks(&s, &loc, &bytes, 3 * MIB).await;
    let status = request("GET", &s.url(&loc), &[], Bytes::new()).await;
    assert_eq!(status.status, 204);
    assert_eq!(status.header("range"), format!("0-{}", 25 * MIB - 1));
    let r = finish(&s, &loc, &digest(&bytes), vec![]).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        s.emu.layer_parts("chunks/big", &digest(&bytes)),
        Some(vec![PART, PART, 5 * MIB as u64])
    );
    assert_layers_in_ecr(&s, "chunks/big", &[&bytes]).await;
}

#[tokio::test]
async fn part_buffers_are_handed_back_and_reused() {
    let s = Stack::start().await;
    // The budget counts in KiB.
    let cost = ecr_proxy::parts::part_cost(PART).div_ceil(1024) * 1024;
    assert_eq!(s.proxy.budget_in_use(), 0);
    // Five parts, one PATCH: one buffer fills while the other is sent, so two are enough.
    let first = data(30, 45 * MIB);
    push_blob(&s, "reuse/a", &first).await;
    assert_eq!(
        s.proxy.budget_in_use(),
        2 * cost,
        "both part buffers came back and are kept, promise included"
    );
    // The next upload takes those two instead of promising (and allocating) more: with one
    // part sent and the next one filling, still two buffers in all (four without reuse).
    let second = data(31, 15 * MIB);
    let loc = begin(&s, "reuse/b").await;
    let loc = patch_chunks(&s, &loc, &second, 15 * MIB).await;
    assert_eq!(s.proxy.budget_in_use(), 2 * cost);
    let r = finish(&s, &loc, &digest(&second), vec![]).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(s.proxy.budget_in_use(), 2 * cost);
    assert_layers_in_ecr(&s, "reuse/a", &[&first]).await;
    assert_layers_in_ecr(&s, "reuse/b", &[&second]).await;
}

#[tokio::test]
async fn part_sizes_are_exact_for_every_length() {
    let s = Stack::start().await;
    for (i, len) in [
        100 * 1024,
        PART as usize - 1,
        PART as usize,
        PART as usize + 1,
        2 * PART as usize + 7,
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = data(10 + i as u64, len);
        let d = push_blob(&s, "parts/exact", &bytes).await;
        let parts = s.emu.layer_parts("parts/exact", &d).expect("layer in ECR");
        let (last, full) = parts.split_last().unwrap();
        assert!(full.iter().all(|p| *p == PART), "{len}: {parts:?}");
        assert!(*last >= 1 && *last <= PART, "{len}: {parts:?}");
        assert_eq!(parts.iter().sum::<u64>(), len as u64);
    }
}

#[tokio::test]
async fn streamed_patch_and_final_chunk_on_put() {
    let s = Stack::start().await;
    let bytes = data(3, 12 * MIB + 5);
    let loc = begin(&s, "stream/app").await;
    // One PATCH with chunked transfer encoding and no length, as docker sends it.
    let r = request_streamed(
        "PATCH",
        &s.url(&loc),
        Bytes::from(bytes[..11 * MIB].to_vec()),
        64 * 1024,
    )
    .await;
    assert_eq!(r.status, 202);
    assert_eq!(r.header("range"), format!("0-{}", 11 * MIB - 1));
    let loc = r.header("location").to_string();
    let r = finish(&s, &loc, &digest(&bytes), bytes[11 * MIB..].to_vec()).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        s.emu.layer_parts("stream/app", &digest(&bytes)),
        Some(vec![PART, 2 * MIB as u64 + 5])
    );
    assert_layers_in_ecr(&s, "stream/app", &[&bytes]).await;
}

#[tokio::test]
async fn post_then_put_with_the_whole_body() {
    let s = Stack::start().await;
    let bytes = data(4, 3 * MIB);
    let loc = begin(&s, "monolith/app").await;
    let r = finish(&s, &loc, &digest(&bytes), bytes.clone()).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("docker-content-digest"), digest(&bytes));
    // Pushing the same bytes again: ECR says LayerAlreadyExists, which is success.
    push_blob(&s, "monolith/app", &bytes).await;
    let head = request(
        "HEAD",
        &s.url(&format!("/v2/monolith/app/blobs/{}", digest(&bytes))),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, "3145728")
    );
}

#[tokio::test]
async fn out_of_order_chunk_is_416_with_the_valid_range() {
    let s = Stack::start().await;
    let loc = begin(&s, "order/app").await;
    let loc = patch_chunks(&s, &loc, &data(5, 100), 100).await;
    let r = request(
        "PATCH",
        &s.url(&loc),
        &[("Content-Range", "150-199")],
        data(6, 50),
    )
    .await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("range"), "0-99");
    assert_eq!(r.header("location"), loc);
    // The upload goes on from where it stands.
    let r = request(
        "PATCH",
        &s.url(&loc),
        &[("Content-Range", "100-149")],
        data(6, 50),
    )
    .await;
    assert_eq!((r.status, r.header("range")), (202, "0-149"));
}

#[tokio::test]
async fn cancelled_upload_is_unknown_afterwards() {
    let s = Stack::start().await;
    let loc = begin(&s, "cancel/app").await;
    let r = request("DELETE", &s.url(&loc), &[], Bytes::new()).await;
    assert_eq!(r.status, 204);
    let r = request("PATCH", &s.url(&loc), &[], data(7, 10)).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "BLOB_UPLOAD_UNKNOWN")
    );
    assert_eq!(s.proxy.open_sessions(), 0);
}

#[tokio::test]
async fn upload_id_is_bound_to_its_repository() {
    let s = Stack::start().await;
    let loc = begin(&s, "owner/app").await;
    let other = loc.replace("/v2/owner/app/", "/v2/other/app/");
    let r = request("PATCH", &s.url(&other), &[], data(8, 10)).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "BLOB_UPLOAD_UNKNOWN")
    );
}

#[tokio::test]
async fn empty_blob_is_answered_without_ecr() {
    let s = Stack::start().await;
    let empty = digest(b"");
    let r = request(
        "POST",
        &s.url(&format!("/v2/empty/app/blobs/uploads/?digest={empty}")),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 201);
    let head = request(
        "HEAD",
        &s.url(&format!("/v2/empty/app/blobs/{empty}")),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!((head.status, head.header("content-length")), (200, "0"));
    // Also through POST + PUT with no bytes at all.
    let loc = begin(&s, "empty/app").await;
    assert_eq!(finish(&s, &loc, &empty, vec![]).await.status, 201);
}

#[tokio::test]
async fn mount_answers_201_when_the_target_has_the_layer_else_202() {
    let s = Stack::start().await;
    let bytes = data(11, 1000);
    let d = push_blob(&s, "mount/target", &bytes).await;
    let r = request(
        "POST",
        &s.url(&format!(
            "/v2/mount/target/blobs/uploads/?mount={d}&from=mount/source"
        )),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        (r.status, r.header("docker-content-digest")),
        (201, d.as_str())
    );
    let absent = digest(b"absent");
    let r = request(
        "POST",
        &s.url(&format!(
            "/v2/mount/target/blobs/uploads/?mount={absent}&from=mount/source"
        )),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 202);
    assert!(r
        .header("location")
        .starts_with("/v2/mount/target/blobs/uploads/"));
}

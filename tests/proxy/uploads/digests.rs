//! A blob whose bytes do not have the digest the client gives: ECR computes the digest at
//! CompleteLayerUpload and refuses it (InvalidLayerException), the proxy answers 400
//! DIGEST_INVALID saying so, the upload is gone, and no layer is left in ECR. The proxy does not
//! hash uploads itself, so every form of upload must reach ECR's verdict the same way.

use super::{begin, finish, patch_chunks, PART};
use crate::support::*;
use bytes::Bytes;

/// The answer is ECR's verdict: DIGEST_INVALID naming InvalidLayerException from
/// CompleteLayerUpload and what it means.
fn assert_refused_by_ecr(r: &Resp) {
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "DIGEST_INVALID"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let detail = v["errors"][0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("InvalidLayerException from CompleteLayerUpload (request id ")
            && detail.contains("ECR computed another digest"),
        "{detail}"
    );
}

/// Neither digest is a layer of `repo`: not in BatchCheckLayerAvailability, not through HEAD.
async fn assert_no_layer(s: &Stack, repo: &str, digests: &[&str]) {
    let check = s
        .ecr
        .batch_check_layer_availability()
        .repository_name(repo)
        .set_layer_digests(Some(digests.iter().map(|d| d.to_string()).collect()))
        .send()
        .await
        .unwrap();
    assert!(
        check.layers().is_empty(),
        "nothing may be completed in ECR: {:?}",
        check.layers()
    );
    for d in digests {
        let r = request(
            "HEAD",
            &s.url(&format!("/v2/{repo}/blobs/{d}")),
            &[],
            Bytes::new(),
        )
        .await;
        assert_eq!(r.status, 404, "{d}");
    }
}

#[tokio::test]
async fn wrong_digest_is_refused_and_nothing_lands() {
    let s = Stack::start().await;
    let bytes = data(9, 11 * MIB);
    let wrong = digest(b"something else");
    let loc = begin(&s, "wrong/app").await;
    let r = finish(&s, &loc, &wrong, bytes.clone()).await;
    assert_refused_by_ecr(&r);
    let r = request("GET", &s.url(&loc), &[], Bytes::new()).await;
    assert_eq!(r.status, 404, "the upload ends");
    assert_no_layer(&s, "wrong/app", &[&digest(&bytes), &wrong]).await;
}

#[tokio::test]
async fn a_wrong_digest_on_a_chunked_upload_is_ecrs_verdict_and_leaves_no_layer() {
    let s = Stack::start().await;
    let bytes = data(21, 25 * MIB);
    let right = digest(&bytes);
    let wrong = digest(b"not these bytes");
    let loc = begin(&s, "wrong/chunks").await;
    let loc = patch_chunks(&s, &loc, &bytes, 3 * MIB).await;
    let r = finish(&s, &loc, &wrong, vec![]).await;
    assert_refused_by_ecr(&r);
    let r = request("GET", &s.url(&loc), &[], Bytes::new()).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "BLOB_UPLOAD_UNKNOWN"),
        "the client must start over"
    );
    assert_eq!(s.proxy.open_sessions(), 0);
    assert_no_layer(&s, "wrong/chunks", &[&right, &wrong]).await;

    // Starting over with the right digest stores the bytes in parts of exactly 10, 10 and 5 MiB.
    let loc = begin(&s, "wrong/chunks").await;
    let loc = patch_chunks(&s, &loc, &bytes, 3 * MIB).await;
    let r = finish(&s, &loc, &right, vec![]).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        s.emu.layer_parts("wrong/chunks", &right),
        Some(vec![PART, PART, 5 * MIB as u64])
    );
    super::assert_layers_in_ecr(&s, "wrong/chunks", &[&bytes]).await;
}

#[tokio::test]
async fn a_wrong_digest_on_a_one_request_upload_or_a_final_chunk_is_refused_by_ecr() {
    let s = Stack::start().await;
    let bytes = data(22, 12 * MIB);
    let wrong = digest(b"not these bytes");
    // One request: POST with the digest and the whole body.
    let r = request(
        "POST",
        &s.url(&format!("/v2/wrong/whole/blobs/uploads/?digest={wrong}")),
        &[],
        bytes.clone(),
    )
    .await;
    assert_refused_by_ecr(&r);
    // A PATCH, then the rest on the PUT.
    let loc = begin(&s, "wrong/whole").await;
    let (first, rest) = bytes.split_at(7 * MIB);
    let loc = patch_chunks(&s, &loc, first, 7 * MIB).await;
    let r = request(
        "PUT",
        &s.url(&format!("{loc}?digest={wrong}")),
        &[(
            "Content-Range",
            &format!("{}-{}", first.len(), bytes.len() - 1),
        )],
        rest.to_vec(),
    )
    .await;
    assert_refused_by_ecr(&r);
    assert_eq!(s.proxy.open_sessions(), 0);
    assert_no_layer(&s, "wrong/whole", &[&digest(&bytes), &wrong]).await;
}

/// An empty upload never reaches ECR (it cannot hold the empty blob): only the empty blob's
/// digest matches it, and the proxy knows that digest without hashing anything.
#[tokio::test]
async fn an_empty_upload_with_another_digest_is_refused_without_ecr() {
    let s = Stack::start().await;
    let wrong = digest(b"x");
    let r = request(
        "POST",
        &s.url(&format!("/v2/wrong/empty/blobs/uploads/?digest={wrong}")),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));
    let loc = begin(&s, "wrong/empty").await;
    let r = finish(&s, &loc, &wrong, vec![]).await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));
    let r = request("GET", &s.url(&loc), &[], Bytes::new()).await;
    assert_eq!(r.status, 404);
    let loc = begin(&s, "wrong/empty").await;
    let r = finish(&s, &loc, &digest(b""), vec![]).await;
    assert_eq!(r.status, 201);
}

/// A completion that failed in a way worth retrying keeps the upload; the same PUT sent again
/// (its body is not appended twice) gets ECR's verdict on the digest.
#[tokio::test]
async fn a_resend_after_a_throttled_completion_gets_ecrs_verdict() {
    // The SDK's three attempts at the first CompleteLayerUpload are throttled.
    let s = Stack::start_faulty(&[], "CompleteLayerUpload:throttle=1,count=3", 1).await;
    let bytes = data(23, 6 * MIB);
    let wrong = digest(b"not these bytes");
    let loc = begin(&s, "wrong/resend").await;
    let r = finish(&s, &loc, &wrong, bytes.clone()).await;
    assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
    let r = finish(&s, &loc, &wrong, bytes.clone()).await;
    assert_refused_by_ecr(&r);
    let r = request("GET", &s.url(&loc), &[], Bytes::new()).await;
    assert_eq!(r.status, 404, "the upload ends");
    assert_no_layer(&s, "wrong/resend", &[&digest(&bytes), &wrong]).await;
}

//! Manifest pushes and the error cases a registry client must see in the spec's format: bad
//! names and digests, unknown repositories, immutable tags, missing blobs, oversize manifests.

use crate::support::*;
use crate::uploads::push_blob;
use bytes::Bytes;

const OCI: &str = "application/vnd.oci.image.manifest.v1+json";

async fn image_manifest(s: &Stack, repo: &str, seed: u64) -> String {
    let config = format!(r#"{{"seed":{seed}}}"#);
    let cd = push_blob(s, repo, config.as_bytes()).await;
    let layer = data(seed, 2000);
    let ld = push_blob(s, repo, &layer).await;
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":2000}}]}}"#,
        config.len()
    )
}

async fn put_manifest(s: &Stack, repo: &str, reference: &str, manifest: &str) -> Resp {
    request(
        "PUT",
        &s.url(&format!("/v2/{repo}/manifests/{reference}")),
        &[("Content-Type", OCI)],
        manifest.to_string(),
    )
    .await
}

#[tokio::test]
async fn manifest_bytes_reach_ecr_unchanged() {
    let s = Stack::start().await;
    // Unusual spacing and key order: any re-serialisation would change the digest.
    let m = image_manifest(&s, "man/app", 1)
        .await
        .replace(",\"layers\"", " ,  \"layers\"");
    let r = put_manifest(&s, "man/app", "v1", &m).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("docker-content-digest"), digest(m.as_bytes()));
    assert_eq!(
        r.header("location"),
        format!("/v2/man/app/manifests/{}", digest(m.as_bytes()))
    );
    let got = s
        .ecr
        .batch_get_image()
        .repository_name("man/app")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("v1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let image = &got.images()[0];
    assert_eq!(image.image_manifest(), Some(m.as_str()));
    assert_eq!(image.image_manifest_media_type(), Some(OCI));
    // By digest: checked first, then stored untagged; pushing again is still success.
    let r = put_manifest(&s, "man/app", &digest(m.as_bytes()), &m).await;
    assert_eq!(r.status, 201);
    let r = put_manifest(&s, "man/app", "v1", &m).await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn subject_is_echoed_in_oci_subject() {
    let s = Stack::start().await;
    let base = image_manifest(&s, "sub/app", 2).await;
    assert_eq!(put_manifest(&s, "sub/app", "base", &base).await.status, 201);
    let cfg = push_blob(&s, "sub/app", b"{}").await;
    let artifact = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI}","artifactType":"application/vnd.example.sbom","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{cfg}","size":2}},"layers":[],"subject":{{"mediaType":"{OCI}","digest":"{}","size":{}}}}}"#,
        digest(base.as_bytes()),
        base.len()
    );
    let r = put_manifest(&s, "sub/app", &digest(artifact.as_bytes()), &artifact).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("oci-subject"), digest(base.as_bytes()));
}

#[tokio::test]
async fn bad_names_and_digests() {
    let s = Stack::start().await;
    let r = request(
        "POST",
        &s.url("/v2/Bad_Name/blobs/uploads/"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "NAME_INVALID"));
    let r = request(
        "HEAD",
        &s.url("/v2/ok/app/blobs/sha256:nothex"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = request(
        "POST",
        &s.url("/v2/ok/app/blobs/uploads/?digest=md5:abc"),
        &[],
        b"x".to_vec(),
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));
    let r = request("PUT", &s.url("/v2/ok/app/manifests/sha256:0000000000000000000000000000000000000000000000000000000000000000"), &[("Content-Type", OCI)], "{}").await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));
    let r = request(
        "DELETE",
        &s.url(&format!("/v2/ok/app/blobs/{}", digest(b"x"))),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (405, "UNSUPPORTED"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert!(v["errors"][0]["message"].is_string() && v["errors"][0]["detail"].is_string());
}

/// `a` is a valid OCI name but ECR's names are 2–256 characters: every route refuses it before
/// any ECR call (the emulator would have answered InvalidParameterException).
#[tokio::test]
async fn a_one_letter_name_is_name_invalid_on_every_route() {
    let s = Stack::start().await;
    let d = digest(b"x");
    for (method, path) in [
        ("POST", "/v2/a/blobs/uploads/".to_string()),
        ("GET", "/v2/a/manifests/latest".to_string()),
        ("GET", "/v2/a/tags/list".to_string()),
        ("GET", format!("/v2/a/blobs/{d}")),
        ("GET", format!("/v2/a/referrers/{d}")),
        ("HEAD", format!("/v2/a/blobs/{d}")),
    ] {
        let r = request(method, &s.url(&path), &[], Bytes::new()).await;
        assert_eq!(r.status, 400, "{method} {path}");
        if method != "HEAD" {
            assert_eq!(r.error_code(), "NAME_INVALID", "{method} {path}");
            let body = String::from_utf8_lossy(&r.body);
            assert!(body.contains("2 to 256 characters"), "{body}");
        }
    }
}

#[tokio::test]
async fn unknown_repository_without_creation_is_name_unknown() {
    let s = Stack::start_with(&[("ECR_PROXY_CREATE_REPOSITORIES", "false")]).await;
    let r = request(
        "POST",
        &s.url("/v2/not/there/blobs/uploads/"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "NAME_UNKNOWN"));
    let r = request(
        "POST",
        &s.url(&format!(
            "/v2/not/there/blobs/uploads/?digest={}",
            digest(b"abc")
        )),
        &[],
        b"abc".to_vec(),
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "NAME_UNKNOWN"));
}

#[tokio::test]
async fn creation_follows_the_name_patterns() {
    let s = Stack::start_with(&[
        ("ECR_PROXY_CREATE_PATTERNS", "team-*/*"),
        ("ECR_PROXY_TAG_MUTABILITY", "IMMUTABLE"),
    ])
    .await;
    assert_eq!(
        request(
            "POST",
            &s.url("/v2/team-a/app/blobs/uploads/"),
            &[],
            Bytes::new()
        )
        .await
        .status,
        202
    );
    let r = request(
        "POST",
        &s.url("/v2/other/app/blobs/uploads/"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "NAME_UNKNOWN"));
    let repo = s
        .ecr
        .describe_repositories()
        .repository_names("team-a/app")
        .send()
        .await
        .unwrap();
    assert_eq!(
        repo.repositories()[0]
            .image_tag_mutability()
            .map(|m| m.as_str()),
        Some("IMMUTABLE")
    );
}

#[tokio::test]
async fn immutable_tag_is_tag_invalid_but_the_same_push_succeeds() {
    let s = Stack::start_with(&[("ECR_PROXY_TAG_MUTABILITY", "IMMUTABLE")]).await;
    let a = image_manifest(&s, "imm/app", 3).await;
    let b = image_manifest(&s, "imm/app", 4).await;
    assert_eq!(put_manifest(&s, "imm/app", "v1", &a).await.status, 201);
    assert_eq!(put_manifest(&s, "imm/app", "v1", &a).await.status, 201);
    let r = put_manifest(&s, "imm/app", "v1", &b).await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "TAG_INVALID"));
}

#[tokio::test]
async fn manifest_with_a_missing_blob_is_manifest_blob_unknown() {
    let s = Stack::start().await;
    let m = image_manifest(&s, "miss/app", 5)
        .await
        .replace(&digest(&data(5, 2000)), &digest(b"never pushed"));
    let r = put_manifest(&s, "miss/app", "v1", &m).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
}

#[tokio::test]
async fn oversize_manifest_is_refused_before_any_ecr_call() {
    let s = Stack::start().await;
    let big = format!(r#"{{"schemaVersion":2,"pad":"{}"}}"#, "x".repeat(4 * MIB));
    let r = put_manifest(&s, "huge/app", "v1", &big).await;
    assert_eq!((r.status, r.error_code().as_str()), (413, "SIZE_INVALID"));
    // Had ECR been called, the repository would have been created on first push.
    let e = s
        .ecr
        .describe_repositories()
        .repository_names("huge/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_ecr::error::ProvideErrorMetadata::code(&e),
        Some("RepositoryNotFoundException")
    );
    let r = put_manifest(&s, "huge/app", "v1", "not json").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MANIFEST_INVALID")
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let s = Stack::start().await;
    let r = request("GET", &s.url("/healthz"), &[], Bytes::new()).await;
    assert_eq!((r.status, r.body.as_ref()), (200, b"ok".as_ref()));
    let r = request("GET", &s.url("/readyz"), &[], Bytes::new()).await;
    assert_eq!(r.status, 200);
    let r = request("GET", &s.url("/v2/"), &[], Bytes::new()).await;
    assert_eq!(
        (r.status, r.header("docker-distribution-api-version")),
        (200, "registry/2.0")
    );
    // With ECR gone, the proxy is alive but not ready, and pushes say UNAVAILABLE.
    let url = s.url("/readyz");
    let push = s.url("/v2/gone/app/blobs/uploads/");
    let Stack { proxy, emu, .. } = s;
    drop(emu);
    let r = request("GET", &url, &[], Bytes::new()).await;
    assert_eq!(r.status, 503);
    let r = request("POST", &push, &[], Bytes::new()).await;
    assert_eq!((r.status, r.error_code().as_str()), (503, "UNAVAILABLE"));
    drop(proxy);
}

#[tokio::test]
async fn a_blob_named_by_another_algorithm_is_unknown_and_cannot_be_deleted() {
    let s = Stack::start().await;
    let path = format!("/v2/ok/app/blobs/sha512:{}", "ab".repeat(64));
    for method in ["GET", "HEAD"] {
        let r = request(method, &s.url(&path), &[], Bytes::new()).await;
        assert_eq!(r.status, 404, "{method}: no sha512 blob can exist in ECR");
        if method == "GET" {
            assert_eq!(r.error_code(), "BLOB_UNKNOWN");
        }
    }
    let r = request("DELETE", &s.url(&path), &[], Bytes::new()).await;
    assert_eq!((r.status, r.error_code().as_str()), (405, "UNSUPPORTED"));
    let malformed = request(
        "GET",
        &s.url("/v2/ok/app/blobs/sha512:xyz"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        (malformed.status, malformed.error_code().as_str()),
        (400, "DIGEST_INVALID")
    );
}

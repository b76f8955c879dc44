//! Correctness of the pull and manifest handlers over plain HTTP, one test per finding of issue 9
//! item 3: the manifest cache forgets deleted images (by tag and by digest), referrers of a
//! missing repository, `n=0` paging, the manifest `Content-Type` check, the empty blob in a
//! missing repository, an inverted `Range`, and tag parameters on a push by digest. Owns only
//! these tests; helpers stay here.

use crate::support::*;
use crate::uploads::push_blob;
use bytes::Bytes;

const OCI: &str = "application/vnd.oci.image.manifest.v1+json";
const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// An image manifest over a config and one layer, both pushed; returns the manifest bytes.
async fn manifest(s: &Stack, repo: &str, seed: u64) -> String {
    let cfg = format!(r#"{{"seed":{seed}}}"#);
    let cd = push_blob(s, repo, cfg.as_bytes()).await;
    let ld = push_blob(s, repo, &data(seed, 3000)).await;
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":3000}}]}}"#,
        cfg.len()
    )
}

async fn put(s: &Stack, repo: &str, reference: &str, content_type: &str, m: &str) -> Resp {
    let url = s.url(&format!("/v2/{repo}/manifests/{reference}"));
    request(
        "PUT",
        &url,
        &[("Content-Type", content_type)],
        m.to_string(),
    )
    .await
}

async fn call(s: &Stack, method: &str, path: &str) -> Resp {
    request(method, &s.url(path), &[], Bytes::new()).await
}

/// GET by digest (which fills the cache), then check it is served.
async fn cached(s: &Stack, repo: &str, d: &str, m: &str) {
    for _ in 0..2 {
        let r = call(s, "GET", &format!("/v2/{repo}/manifests/{d}")).await;
        assert_eq!((r.status, r.body.as_ref()), (200, m.as_bytes()));
    }
}

async fn assert_gone(s: &Stack, repo: &str, d: &str) {
    for method in ["GET", "HEAD"] {
        let r = call(s, method, &format!("/v2/{repo}/manifests/{d}")).await;
        assert_eq!(
            r.status, 404,
            "{method} {repo}@{d} after its image was deleted"
        );
        if method == "GET" {
            assert_eq!(r.error_code(), "MANIFEST_UNKNOWN");
        }
    }
}

#[tokio::test]
async fn deleting_the_last_tag_forgets_the_cached_manifest() {
    let s = Stack::start().await;
    let m = manifest(&s, "cache/tag", 1).await;
    let d = digest(m.as_bytes());
    assert_eq!(put(&s, "cache/tag", "v1", OCI, &m).await.status, 201);
    assert_eq!(put(&s, "cache/tag", "v2", OCI, &m).await.status, 201);
    cached(&s, "cache/tag", &d, &m).await;
    // Not the last tag: the image stays, and so does the answer by digest.
    assert_eq!(
        call(&s, "DELETE", "/v2/cache/tag/manifests/v1")
            .await
            .status,
        202
    );
    cached(&s, "cache/tag", &d, &m).await;
    // The last tag: ECR deletes the image with it.
    assert_eq!(
        call(&s, "DELETE", "/v2/cache/tag/manifests/v2")
            .await
            .status,
        202
    );
    assert_gone(&s, "cache/tag", &d).await;
}

#[tokio::test]
async fn deleting_by_digest_forgets_the_cached_manifest() {
    let s = Stack::start().await;
    let m = manifest(&s, "cache/digest", 2).await;
    let d = digest(m.as_bytes());
    assert_eq!(put(&s, "cache/digest", &d, OCI, &m).await.status, 201);
    cached(&s, "cache/digest", &d, &m).await;
    let r = call(&s, "DELETE", &format!("/v2/cache/digest/manifests/{d}")).await;
    assert_eq!(r.status, 202);
    assert_gone(&s, "cache/digest", &d).await;

    // Deleted behind the proxy's back, then deleted through it: ECR says it is not there, and
    // the proxy forgets its cached copy all the same.
    assert_eq!(put(&s, "cache/digest", "t", OCI, &m).await.status, 201);
    cached(&s, "cache/digest", &d, &m).await;
    let id = aws_sdk_ecr::types::ImageIdentifier::builder()
        .image_digest(&d)
        .build();
    s.ecr
        .batch_delete_image()
        .repository_name("cache/digest")
        .image_ids(id)
        .send()
        .await
        .expect("BatchDeleteImage");
    let r = call(&s, "DELETE", &format!("/v2/cache/digest/manifests/{d}")).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    assert_gone(&s, "cache/digest", &d).await;
}

#[tokio::test]
async fn referrers_of_a_missing_repository_are_an_empty_index() {
    let s = Stack::start().await;
    let d = digest(b"no such subject");
    let r = call(&s, "GET", &format!("/v2/no/such/repo/referrers/{d}")).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), OCI_INDEX);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
    );
}

#[tokio::test]
async fn n_zero_is_an_empty_page_without_link() {
    let s = Stack::start().await;
    let m = manifest(&s, "page/zero", 3).await;
    for t in ["a", "b", "c"] {
        assert_eq!(put(&s, "page/zero", t, OCI, &m).await.status, 201);
    }
    // n=1 pages on (so the absence below is not an accident of the data).
    let r = call(&s, "GET", "/v2/page/zero/tags/list?n=1").await;
    assert!(r.header("link").contains("last=a"), "{:?}", r.headers);
    for (path, key) in [
        ("/v2/page/zero/tags/list?n=0", "tags"),
        ("/v2/page/zero/tags/list?n=0&last=a", "tags"),
        ("/v2/_catalog?n=0", "repositories"),
    ] {
        let r = call(&s, "GET", path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("link"), "", "{path}: no Link for n=0");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v[key], serde_json::json!([]), "{path}");
    }
}

#[tokio::test]
async fn manifest_put_with_a_type_the_registry_does_not_serve_is_invalid() {
    let s = Stack::start().await;
    let m = manifest(&s, "ctype/app", 4).await;
    for bad in ["text/html", "application/vnd.oci.image.config.v1+json"] {
        let r = put(&s, "ctype/app", "v1", bad, &m).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "MANIFEST_INVALID"),
            "{bad}"
        );
    }
    let r = call(&s, "GET", "/v2/ctype/app/manifests/v1").await;
    assert_eq!(r.status, 404, "nothing was stored");
    // A manifest with no Content-Type of its own is typed by its `mediaType`.
    let r = put(&s, "ctype/app", "v1", "application/octet-stream", &m).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let r = call(&s, "GET", "/v2/ctype/app/manifests/v1").await;
    assert_eq!((r.status, r.header("content-type")), (200, OCI));
    assert_eq!(r.body, m.as_bytes());
}

#[tokio::test]
async fn the_empty_blob_exists_only_in_repositories_that_exist() {
    let s = Stack::start().await;
    for method in ["HEAD", "GET"] {
        let r = call(&s, method, &format!("/v2/never/pushed/blobs/{EMPTY}")).await;
        assert_eq!(r.status, 404, "{method} in a missing repository");
    }
    push_blob(&s, "some/repo", b"x").await;
    for method in ["HEAD", "GET"] {
        let r = call(&s, method, &format!("/v2/some/repo/blobs/{EMPTY}")).await;
        assert_eq!(r.status, 200, "{method}");
        assert_eq!(
            (
                r.header("content-length"),
                r.header("docker-content-digest")
            ),
            ("0", EMPTY)
        );
        assert!(r.body.is_empty());
    }
}

#[tokio::test]
async fn an_inverted_range_is_not_satisfiable_in_both_modes() {
    for mode in ["stream", "redirect"] {
        let s = Stack::start_with(&[("ECR_PROXY_BLOB_MODE", mode)]).await;
        let blob = data(9, 2048);
        let d = push_blob(&s, "range/app", &blob).await;
        let url = s.url(&format!("/v2/range/app/blobs/{d}"));
        let r = request("GET", &url, &[("Range", "bytes=500-0")], Bytes::new()).await;
        assert_eq!(r.status, 416, "{mode}");
        assert_eq!(r.header("content-range"), "bytes */2048", "{mode}");
        assert!(r.body.is_empty(), "{mode}");
        // A valid range still gets its bytes (stream) or the redirect that serves them.
        let r = request("GET", &url, &[("Range", "bytes=500-999")], Bytes::new()).await;
        let want = if mode == "stream" { 206 } else { 307 };
        assert_eq!(r.status, want, "{mode}");
    }
}

#[tokio::test]
async fn push_by_digest_with_tag_parameters_applies_each_tag() {
    let s = Stack::start().await;
    let m = manifest(&s, "tagparam/app", 5).await;
    let d = digest(m.as_bytes());
    let r = put(&s, "tagparam/app", &format!("{d}?tag=one&tag=two"), OCI, &m).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let applied: Vec<&str> = r
        .headers
        .get_all("oci-tag")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(applied, ["one", "two"]);
    for t in ["one", "two"] {
        let r = call(&s, "GET", &format!("/v2/tagparam/app/manifests/{t}")).await;
        assert_eq!((r.status, r.body.as_ref()), (200, m.as_bytes()), "{t}");
    }
    let r = put(&s, "tagparam/app", &format!("{d}?tag=-bad"), OCI, &m).await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "TAG_INVALID"));
}

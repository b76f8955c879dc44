//! A manifest an image index references cannot be deleted (ECR's per-item failure
//! ImageReferencedByManifestList): the client gets a 4xx that says so, over plain HTTP and
//! through skopeo, and the manifest is still there.

use crate::support::*;
use crate::uploads::push_blob;
use bytes::Bytes;

/// An image manifest and an index over it in `repo`; returns the image manifest's digest.
async fn image_under_an_index(s: &Stack, repo: &str) -> String {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let cd = push_blob(s, repo, config).await;
    let ld = push_blob(s, repo, &data(7, 3000)).await;
    let image = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":3000}}]}}"#,
        config.len()
    );
    let image_digest = digest(image.as_bytes());
    let put = |reference: String, media: &'static str, body: String| async move {
        let url = s.url(&format!("/v2/{repo}/manifests/{reference}"));
        let r = request("PUT", &url, &[("Content-Type", media)], body).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    };
    put(image_digest.clone(), OCI_MANIFEST, image.clone()).await;
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{image_digest}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        image.len()
    );
    put("multi".into(), OCI_INDEX, index).await;
    image_digest
}

#[tokio::test]
async fn deleting_a_manifest_an_index_references_is_a_409_that_says_so() {
    let s = Stack::start().await;
    let d = image_under_an_index(&s, "ref/app").await;
    let url = s.url(&format!("/v2/ref/app/manifests/{d}"));
    let r = request("DELETE", &url, &[], Bytes::new()).await;
    assert_eq!((r.status, r.error_code().as_str()), (409, "DENIED"));
    assert_eq!(r.header("retry-after"), "", "not retryable");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let message = v["errors"][0]["message"].as_str().unwrap();
    let detail = v["errors"][0]["detail"].as_str().unwrap();
    assert!(
        message.contains("referenced by an image index"),
        "{message}"
    );
    assert!(
        detail.starts_with("ImageReferencedByManifestList from BatchDeleteImage"),
        "{detail}"
    );
    // Still there.
    let r = request("GET", &url, &[("Accept", OCI_MANIFEST)], Bytes::new()).await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_delete_of_a_manifest_an_index_references_shows_the_409_and_why() {
    if !tool_available("skopeo", "--version") {
        return;
    }
    let s = Stack::start().await;
    let d = image_under_an_index(&s, "ref/skopeo").await;
    let home = tempfile::tempdir().expect("temporary directory");
    let target = format!("docker://{}/ref/skopeo@{d}", s.host());
    let out = tokio::process::Command::new("skopeo")
        .args(["--insecure-policy", "delete", "--tls-verify=false", &target])
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", home.path())
        .env("TMPDIR", home.path())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), out)
        .await
        .expect("skopeo delete finishes within 120 s")
        .expect("skopeo runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "skopeo delete succeeded: {stderr}");
    assert!(stderr.contains("409"), "{stderr}");
    assert!(stderr.contains("referenced by an image index"), "{stderr}");
    let r = request(
        "GET",
        &s.url(&format!("/v2/ref/skopeo/manifests/{d}")),
        &[("Accept", OCI_MANIFEST)],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200, "the manifest is still there");
}

//! The read side over plain HTTP: manifests by tag and digest, blobs redirected or streamed with
//! ranges (also right after upload, before any manifest), deletes, tag and catalog paging,
//! referrers, and cross-repository mounts.

use crate::support::*;
use crate::uploads::push_blob;
use bytes::Bytes;

const OCI: &str = "application/vnd.oci.image.manifest.v1+json";

async fn push_image(s: &Stack, repo: &str, tag: &str, seed: u64) -> (String, Vec<u8>) {
    let cfg = format!(r#"{{"seed":{seed}}}"#);
    let cd = push_blob(s, repo, cfg.as_bytes()).await;
    let layer = data(seed, 5000);
    let ld = push_blob(s, repo, &layer).await;
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":5000}}]}}"#,
        cfg.len()
    );
    let r = request(
        "PUT",
        &s.url(&format!("/v2/{repo}/manifests/{tag}")),
        &[("Content-Type", OCI)],
        m.clone(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    (m, layer)
}

#[tokio::test]
async fn manifests_by_tag_and_digest() {
    let s = Stack::start().await;
    let (m, _) = push_image(&s, "pull/app", "v1", 1).await;
    let d = digest(m.as_bytes());
    for reference in ["v1", d.as_str()] {
        let r = request(
            "GET",
            &s.url(&format!("/v2/pull/app/manifests/{reference}")),
            &[("Accept", OCI)],
            Bytes::new(),
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, m.as_bytes());
        assert_eq!(
            (r.header("content-type"), r.header("docker-content-digest")),
            (OCI, d.as_str())
        );
        let h = request(
            "HEAD",
            &s.url(&format!("/v2/pull/app/manifests/{reference}")),
            &[],
            Bytes::new(),
        )
        .await;
        assert_eq!(
            (h.status, h.header("content-length"), h.body.len()),
            (200, m.len().to_string().as_str(), 0)
        );
    }
    // A client that accepts only Docker types does not get an OCI manifest.
    let r = request(
        "GET",
        &s.url("/v2/pull/app/manifests/v1"),
        &[(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    let r = request(
        "GET",
        &s.url("/v2/pull/app/manifests/nope"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    let r = request("GET", &s.url("/v2/no/such/manifests/v1"), &[], Bytes::new()).await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "NAME_UNKNOWN"));
}

#[tokio::test]
async fn blobs_redirect_to_the_emulator_url() {
    let s = Stack::start_with(&[("ECR_PROXY_BLOB_MODE", "redirect")]).await;
    let (_, layer) = push_image(&s, "redir/app", "v1", 2).await;
    let r = request(
        "GET",
        &s.url(&format!("/v2/redir/app/blobs/{}", digest(&layer))),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 307);
    let location = r.header("location").to_string();
    assert!(
        location.starts_with(&format!("{}/__layers/redir/app/", s.emu.endpoint())),
        "{location}"
    );
    assert_eq!(
        request("GET", &location, &[], Bytes::new()).await.body,
        layer
    );
}

#[tokio::test]
async fn blobs_stream_with_ranges() {
    let s = Stack::start_with(&[("ECR_PROXY_BLOB_MODE", "stream")]).await;
    let (_, layer) = push_image(&s, "stream/app", "v1", 3).await;
    let url = s.url(&format!("/v2/stream/app/blobs/{}", digest(&layer)));
    let r = request("GET", &url, &[], Bytes::new()).await;
    assert_eq!(
        (r.status, r.header("docker-content-digest")),
        (200, digest(&layer).as_str())
    );
    assert_eq!(r.body, layer);
    let r = request("GET", &url, &[("Range", "bytes=1000-1999")], Bytes::new()).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &layer[1000..2000]);
    assert_eq!(r.header("content-range"), "bytes 1000-1999/5000");
    let missing = s.url(&format!("/v2/stream/app/blobs/{}", digest(b"missing")));
    let r = request("GET", &missing, &[], Bytes::new()).await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "BLOB_UNKNOWN"));
}

#[tokio::test]
async fn a_blob_is_readable_right_after_upload() {
    for mode in ["stream", "redirect"] {
        let s = Stack::start_with(&[("ECR_PROXY_BLOB_MODE", mode)]).await;
        let bytes = data(4, 12 * MIB);
        let d = push_blob(&s, "fresh/app", &bytes).await;
        let r = request(
            "GET",
            &s.url(&format!("/v2/fresh/app/blobs/{d}")),
            &[],
            Bytes::new(),
        )
        .await;
        let body = if mode == "redirect" {
            assert_eq!(r.status, 307);
            request("GET", r.header("location"), &[], Bytes::new())
                .await
                .body
        } else {
            assert_eq!(r.status, 200);
            r.body
        };
        assert_eq!(body, bytes, "{mode}");
        // The holder that made it readable is not a tag and not a referrer.
        let tags = request("GET", &s.url("/v2/fresh/app/tags/list"), &[], Bytes::new()).await;
        let v: serde_json::Value = serde_json::from_slice(&tags.body).unwrap();
        assert_eq!(v["tags"], serde_json::json!([]));
    }
}

#[tokio::test]
async fn delete_by_tag_then_by_digest() {
    let s = Stack::start().await;
    let (m, _) = push_image(&s, "del/app", "v1", 5).await;
    let d = digest(m.as_bytes());
    let r = request(
        "PUT",
        &s.url("/v2/del/app/manifests/v2"),
        &[("Content-Type", OCI)],
        m.clone(),
    )
    .await;
    assert_eq!(r.status, 201);
    let r = request(
        "DELETE",
        &s.url("/v2/del/app/manifests/v1"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 202);
    assert_eq!(
        request("GET", &s.url("/v2/del/app/manifests/v1"), &[], Bytes::new())
            .await
            .status,
        404
    );
    assert_eq!(
        request("GET", &s.url("/v2/del/app/manifests/v2"), &[], Bytes::new())
            .await
            .status,
        200
    );
    assert_eq!(
        request(
            "GET",
            &s.url(&format!("/v2/del/app/manifests/{d}")),
            &[],
            Bytes::new()
        )
        .await
        .status,
        200
    );
    let r = request(
        "DELETE",
        &s.url(&format!("/v2/del/app/manifests/{d}")),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 202);
    let r = request(
        "GET",
        &s.url(&format!("/v2/del/app/manifests/{d}")),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    assert_eq!(
        request("GET", &s.url("/v2/del/app/manifests/v2"), &[], Bytes::new())
            .await
            .status,
        404
    );
    let r = request(
        "DELETE",
        &s.url("/v2/del/app/manifests/v1"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
}

/// Follow `Link` headers from `first`, collecting `key` from each page.
async fn follow(s: &Stack, first: &str, key: &str) -> (Vec<String>, usize) {
    let (mut all, mut pages, mut next) = (Vec::new(), 0, Some(first.to_string()));
    while let Some(path) = next {
        let r = request("GET", &s.url(&path), &[], Bytes::new()).await;
        assert_eq!(r.status, 200, "{path}");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let items: Vec<String> = v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        assert!(items.len() <= 100);
        all.extend(items);
        pages += 1;
        let link = r.header("link").to_string();
        next = (!link.is_empty()).then(|| {
            link.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_string()
        });
    }
    (all, pages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_and_catalog_page_by_link() {
    let s = Stack::start().await;
    let (m, _) = push_image(&s, "many/tags", "seed", 6).await;
    let mut want: Vec<String> = (0..2500).map(|i| format!("t{i}")).collect();
    // ECR allows 1,000 tags per image: spread them over three variants of the manifest.
    let variants: Vec<String> = (0..3)
        .map(|i| m.replacen('{', &format!(r#"{{"annotations":{{"v":"{i}"}},"#), 1))
        .collect();
    for (b, batch) in want.chunks(50).enumerate() {
        let puts = batch.iter().enumerate().map(|(i, t)| {
            s.ecr
                .put_image()
                .repository_name("many/tags")
                .image_manifest(&variants[(b * 50 + i) % 3])
                .image_manifest_media_type(OCI)
                .image_tag(t)
                .send()
        });
        for r in futures_util::future::join_all(puts).await {
            r.expect("PutImage");
        }
    }
    want.push("seed".into());
    want.sort();
    let (got, pages) = follow(&s, "/v2/many/tags/tags/list?n=100", "tags").await;
    assert_eq!(got, want);
    assert_eq!(pages, 26);
    let (after, _) = follow(
        &s,
        &format!("/v2/many/tags/tags/list?n=100&last={}", want[1234]),
        "tags",
    )
    .await;
    assert_eq!(after, want[1235..]);
    let r = request(
        "GET",
        &s.url("/v2/many/tags/tags/list?n=abc"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "PAGINATION_NUMBER_INVALID")
    );

    let mut repos: Vec<String> = (0..250).map(|i| format!("cat/r{i:03}")).collect();
    for batch in repos.chunks(25) {
        let creates = batch
            .iter()
            .map(|n| s.ecr.create_repository().repository_name(n).send());
        for r in futures_util::future::join_all(creates).await {
            r.expect("CreateRepository");
        }
    }
    repos.push("many/tags".into());
    repos.sort();
    let (got, pages) = follow(&s, "/v2/_catalog?n=100", "repositories").await;
    assert_eq!((got.clone(), pages), (repos.clone(), 3));
    let (after, _) = follow(
        &s,
        &format!("/v2/_catalog?n=100&last={}", repos[99]),
        "repositories",
    )
    .await;
    assert_eq!(after, repos[100..]);
}

#[tokio::test]
async fn referrers_list_filter_and_empty() {
    let s = Stack::start().await;
    let (base, _) = push_image(&s, "ref/app", "v1", 7).await;
    let subject = digest(base.as_bytes());
    let empty_cfg = push_blob(&s, "ref/app", b"{}").await;
    let mut pushed = Vec::new();
    for (i, kind) in [
        "application/vnd.example.sbom",
        "application/vnd.example.signature",
    ]
    .iter()
    .enumerate()
    {
        let a = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI}","artifactType":"{kind}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{empty_cfg}","size":2}},"layers":[],"subject":{{"mediaType":"{OCI}","digest":"{subject}","size":{}}},"annotations":{{"n":"{i}"}}}}"#,
            base.len()
        );
        let r = request(
            "PUT",
            &s.url(&format!("/v2/ref/app/manifests/{}", digest(a.as_bytes()))),
            &[("Content-Type", OCI)],
            a.clone(),
        )
        .await;
        assert_eq!((r.status, r.header("oci-subject")), (201, subject.as_str()));
        pushed.push(digest(a.as_bytes()));
    }
    let r = request(
        "GET",
        &s.url(&format!("/v2/ref/app/referrers/{subject}")),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, "application/vnd.oci.image.index.v1+json")
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let mut got: Vec<String> = v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    pushed.sort();
    assert_eq!(got, pushed);
    let r = request(
        "GET",
        &s.url(&format!(
            "/v2/ref/app/referrers/{subject}?artifactType=application/vnd.example.sbom"
        )),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.header("oci-filters-applied"), "artifactType");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let m = &v["manifests"].as_array().unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(
        (
            m[0]["artifactType"].as_str(),
            m[0]["annotations"]["n"].as_str()
        ),
        (Some("application/vnd.example.sbom"), Some("0"))
    );
    let r = request(
        "GET",
        &s.url(&format!(
            "/v2/ref/app/referrers/{}",
            digest(b"no referrers")
        )),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (
            v["schemaVersion"].as_i64(),
            v["manifests"].as_array().map(Vec::len)
        ),
        (Some(2), Some(0))
    );
}

#[tokio::test]
async fn mount_copies_from_another_repository() {
    let s = Stack::start().await;
    let bytes = data(8, 11 * MIB);
    let d = push_blob(&s, "mnt/source", &bytes).await;
    let r = request(
        "POST",
        &s.url(&format!(
            "/v2/mnt/target/blobs/uploads/?mount={d}&from=mnt/source"
        )),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        (r.status, r.header("location")),
        (201, format!("/v2/mnt/target/blobs/{d}").as_str())
    );
    let check = s
        .ecr
        .batch_check_layer_availability()
        .repository_name("mnt/target")
        .layer_digests(&d)
        .send()
        .await
        .unwrap();
    assert_eq!(
        check.layers().first().and_then(|l| l.layer_size()),
        Some(11 * MIB as i64)
    );
    let got = request(
        "GET",
        &s.url(&format!("/v2/mnt/target/blobs/{d}")),
        &[],
        Bytes::new(),
    )
    .await;
    let body = if got.status == 307 {
        request("GET", got.header("location"), &[], Bytes::new())
            .await
            .body
    } else {
        got.body
    };
    assert_eq!(body, bytes);
    // From a repository that lacks it: a normal upload starts.
    let r = request(
        "POST",
        &s.url(&format!(
            "/v2/mnt/target/blobs/uploads/?mount={}&from=mnt/source",
            digest(b"x")
        )),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 202);
}

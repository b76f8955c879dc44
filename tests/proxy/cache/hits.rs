//! Hits: the second pull asks ECR for no download URL and downloads nothing; HEAD is answered
//! from the cache; a flipped byte in a cached blob is caught and the blob refetched, the client
//! getting the right bytes; pushes and deletes through the proxy keep the cache right.

use super::*;

#[tokio::test]
async fn the_second_pull_makes_no_download() {
    let s = cache_stack("max_size = \"1GiB\"").await;
    let layers = vec![data(1, 3 * MIB + 11), data(2, 200 * 1024)];
    let m = push_image(&s, "mirror/app", "v1", &layers).await;
    let first = pull(&s.url(""), "mirror/app", "v1").await.unwrap();
    assert_eq!(first, m.as_bytes());
    let (urls, downloads) = (s.emu.calls("GetDownloadUrlForLayer"), s.emu.downloads());
    assert_eq!(downloads, 3, "config and two layers, once each");
    let d = digest(m.as_bytes());
    for reference in ["v1", d.as_str()] {
        assert_eq!(
            pull(&s.url(""), "mirror/app", reference).await.unwrap(),
            m.as_bytes()
        );
    }
    assert_eq!(
        s.emu.calls("GetDownloadUrlForLayer"),
        urls,
        "no download URL asked again"
    );
    assert_eq!(s.emu.downloads(), downloads, "no layer downloaded again");
    let batch_get = s.emu.calls("BatchGetImage");
    assert_eq!(
        pull(&s.url(""), "mirror/app", &d).await.unwrap(),
        m.as_bytes()
    );
    assert_eq!(
        s.emu.calls("BatchGetImage"),
        batch_get,
        "a manifest by digest from the cache"
    );
    let head = request(
        "HEAD",
        &s.url(&format!("/v2/mirror/app/blobs/{}", digest(&layers[0]))),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, (3 * MIB + 11).to_string().as_str())
    );
    // Ranges from the cache.
    let r = request(
        "GET",
        &s.url(&format!("/v2/mirror/app/blobs/{}", digest(&layers[0]))),
        &[("Range", "bytes=1048570-1048580")],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body.as_ref(), &layers[0][1048570..=1048580]);
    assert!(metric(&s, "ecr_proxy_cache_lookups_total", "result=\"hit\"").await >= 6.0);
    assert!(metric(&s, "ecr_proxy_cache_served_bytes_total", "").await >= (3 * MIB) as f64);
}

#[tokio::test]
async fn another_repository_gets_a_cached_blob_only_if_ecr_says_it_holds_it() {
    let s = cache_stack("max_size = \"1GiB\"").await;
    let layer = data(3, 2 * MIB);
    push_image(&s, "team-a/app", "v1", std::slice::from_ref(&layer)).await;
    pull(&s.url(""), "team-a/app", "v1").await.unwrap();
    let r = request(
        "GET",
        &s.url(&format!("/v2/team-b/other/blobs/{}", digest(&layer))),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        r.status, 404,
        "team-b/other does not hold it: the cache's copy is not served to it"
    );
}

#[tokio::test]
async fn a_flipped_byte_is_caught_and_the_blob_refetched() {
    let s = cache_stack("max_size = \"1GiB\"").await;
    let layer = data(4, 3 * MIB);
    push_image(&s, "mirror/flip", "v1", std::slice::from_ref(&layer)).await;
    pull(&s.url(""), "mirror/flip", "v1").await.unwrap();
    let d = digest(&layer);
    let hex = d.strip_prefix("sha256:").unwrap();
    let file = s
        .conf()
        .join("cache/blobs/sha256")
        .join(&hex[..2])
        .join(hex);
    let mut raw = std::fs::read(&file).unwrap();
    raw[2 * MIB + 5] ^= 0x01;
    std::fs::write(&file, raw).unwrap();
    let before = s.emu.downloads();
    let r = request(
        "GET",
        &s.url(&format!("/v2/mirror/flip/blobs/{d}")),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(digest(&r.body), d, "the client got the right bytes");
    assert_eq!(s.emu.downloads(), before + 1, "refetched from ECR");
    assert_eq!(metric(&s, "ecr_proxy_cache_corrupt_total", "").await, 1.0);
    // And the cache holds the right bytes again.
    for _ in 0..100 {
        if std::fs::read(&file).is_ok_and(|b| digest(&b) == d) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(digest(&std::fs::read(&file).unwrap()), d);
}

#[tokio::test]
async fn pushes_and_deletes_through_the_proxy_keep_the_cache_right() {
    let s = cache_stack("max_size = \"1GiB\"\ntag_ttl_secs = 3600\nmax_stale_secs = 3600").await;
    let m1 = push_image(&s, "mirror/tags", "latest", &[data(5, 1000)]).await;
    assert_eq!(
        pull(&s.url(""), "mirror/tags", "latest").await.unwrap(),
        m1.as_bytes()
    );
    // A re-tag through the proxy: the next pull (within the tag's hour) gets the new image.
    let m2 = push_image(&s, "mirror/tags", "latest", &[data(6, 1000)]).await;
    assert_eq!(
        pull(&s.url(""), "mirror/tags", "latest").await.unwrap(),
        m2.as_bytes()
    );
    // A delete through the proxy: by digest and by tag, 404 at once.
    let d2 = digest(m2.as_bytes());
    let r = request(
        "DELETE",
        &s.url(&format!("/v2/mirror/tags/manifests/{d2}")),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 202);
    for reference in [d2.as_str(), "latest"] {
        let r = request(
            "GET",
            &s.url(&format!("/v2/mirror/tags/manifests/{reference}")),
            &[("Accept", OCI)],
            Bytes::new(),
        )
        .await;
        assert_eq!(r.status, 404, "{reference}");
    }
}

#[tokio::test]
async fn a_download_cut_off_part_way_resumes_with_a_range_request() {
    let s = cache_stack("max_size = \"1GiB\"").await;
    let layer = data(9, 5 * MIB + 3);
    push_image(&s, "mirror/cut", "v1", std::slice::from_ref(&layer)).await;
    let d = digest(&layer);
    let before = (s.emu.downloads(), s.emu.calls("GetDownloadUrlForLayer"));
    s.emu.cut_next_download_after(2 * MIB as u64 + 100);
    let r = request(
        "GET",
        &s.url(&format!("/v2/mirror/cut/blobs/{d}")),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(digest(&r.body), d, "the client got every byte right");
    assert_eq!(
        s.emu.downloads() - before.0,
        2,
        "the cut download, then the rest"
    );
    assert_eq!(
        s.emu.calls("GetDownloadUrlForLayer") - before.1,
        2,
        "a fresh URL for the resumed request"
    );
    // Complete in the cache now.
    let again = request(
        "GET",
        &s.url(&format!("/v2/mirror/cut/blobs/{d}")),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(digest(&again.body), d);
    assert_eq!(s.emu.downloads() - before.0, 2);
}

#[tokio::test]
async fn deleting_one_tag_keeps_the_image_s_other_tags_in_the_cache() {
    let s = cache_stack("max_size = \"1GiB\"\ntag_ttl_secs = 1\nmax_stale_secs = 3600").await;
    let m = push_image(&s, "mirror/twotags", "a", &[data(11, 1000)]).await;
    let r = request(
        "PUT",
        &s.url("/v2/mirror/twotags/manifests/b"),
        &[("Content-Type", OCI)],
        m.clone(),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        pull(&s.url(""), "mirror/twotags", "b").await.unwrap(),
        m.as_bytes()
    );
    let r = request(
        "DELETE",
        &s.url("/v2/mirror/twotags/manifests/a"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 202);
    let Stack {
        proxy, emu, _dir, ..
    } = s;
    emu.shutdown();
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let url = format!("http://{}", proxy.addr());
    assert_eq!(
        pull(&url, "mirror/twotags", "b").await.unwrap(),
        m.as_bytes(),
        "b survives a's delete"
    );
    assert_eq!(
        pull(&url, "mirror/twotags", &digest(m.as_bytes()))
            .await
            .unwrap(),
        m.as_bytes()
    );
}

#[tokio::test]
async fn an_image_deleted_directly_in_ecr_answers_404_once_its_digest_is_asked_again() {
    let s = cache_stack("max_size = \"1GiB\"\ntag_ttl_secs = 1\nmax_stale_secs = 3600").await;
    let m = push_image(&s, "mirror/gone", "v1", &[data(12, 1000)]).await;
    let d = digest(m.as_bytes());
    assert_eq!(
        pull(&s.url(""), "mirror/gone", &d).await.unwrap(),
        m.as_bytes()
    );
    s.ecr
        .batch_delete_image()
        .repository_name("mirror/gone")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_digest(&d)
                .build(),
        )
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let r = request(
        "GET",
        &s.url(&format!("/v2/mirror/gone/manifests/{d}")),
        &[("Accept", OCI)],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        r.status, 404,
        "past tag_ttl_secs the digest is asked of ECR again"
    );
}

#[tokio::test]
async fn a_failed_fill_for_one_repository_does_not_fail_another_that_holds_the_blob() {
    let s = cache_faulty(
        "max_size = \"1GiB\"",
        "GetDownloadUrlForLayer:latency=300ms",
    )
    .await;
    let layer = data(13, 2 * MIB);
    let d = digest(&layer);
    push_image(&s, "team/owner", "v1", std::slice::from_ref(&layer)).await;
    push_image(&s, "team/other", "v1", &[data(14, 100)]).await;
    let other = {
        let url = s.url(&format!("/v2/team/other/blobs/{d}"));
        tokio::spawn(async move { request("GET", &url, &[], Bytes::new()).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let owner = request(
        "GET",
        &s.url(&format!("/v2/team/owner/blobs/{d}")),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        owner.status,
        200,
        "{}",
        String::from_utf8_lossy(&owner.body)
    );
    assert_eq!(digest(&owner.body), d);
    assert_eq!(other.await.unwrap().status, 404);
}

//! GetDownloadUrlForLayer and the URLs it hands out, fetched over plain HTTP: the layer's bytes,
//! `Range` (206 + Content-Range), HEAD; an edited URL or an expired one gets 403; unknown and
//! unreferenced layers get LayersNotFoundException and LayerInaccessibleException.

use crate::support::{push_blob, push_image, sha256, status, Env};
use crate::wire::{get, http};
use aws_sdk_ecr::operation::get_download_url_for_layer::GetDownloadUrlForLayerError;
use aws_sdk_ecr::Client;

async fn url_for(c: &Client, repo: &str, digest: &str) -> String {
    let out = c
        .get_download_url_for_layer()
        .repository_name(repo)
        .layer_digest(digest)
        .send()
        .await
        .unwrap();
    assert_eq!(out.layer_digest(), Some(digest));
    out.download_url().unwrap().to_string()
}

/// `s` with the character at `at` replaced by another hex digit.
fn edit_at(s: &str, at: usize) -> String {
    let old = s.as_bytes()[at];
    let new = if old == b'0' { '1' } else { '0' };
    format!("{}{new}{}", &s[..at], &s[at + 1..])
}

#[tokio::test]
async fn download_urls_serve_bytes_ranges_and_head() {
    let env = Env::start().await;
    let c = &env.client;
    env.repo("app").await;
    let img = push_image(c, "app", 3, Some("v1")).await;
    let (layer, digest) = (&img.layer.0, &img.layer.1);
    let url = url_for(c, "app", digest).await;

    let full = get(&url).await;
    assert_eq!(full.status, 200);
    assert_eq!(full.body, *layer);
    assert_eq!(sha256(&full.body), *digest);
    assert_eq!(
        full.header("content-length"),
        Some(layer.len().to_string().as_str())
    );
    let config = get(&url_for(c, "app", &img.config.1).await).await;
    assert_eq!(
        config.body, img.config.0,
        "config blobs are downloadable too"
    );

    let part = http("GET", &url, &[("range", "bytes=5-9")], Vec::new()).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.body, layer[5..10]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 5-9/{}", layer.len()).as_str())
    );
    assert_eq!(part.header("content-length"), Some("5"));

    let head = http("HEAD", &url, &[], Vec::new()).await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(layer.len().to_string().as_str())
    );
    assert!(head.body.is_empty());
}

#[tokio::test]
async fn edited_urls_are_refused() {
    let env = Env::start().await;
    let c = &env.client;
    env.repo("app").await;
    let img = push_image(c, "app", 4, Some("v1")).await;
    let url = url_for(c, "app", &img.layer.1).await;
    assert_eq!(get(&url).await.status, 200);

    let signature = edit_at(&url, url.len() - 1);
    let refused = get(&signature).await;
    assert_eq!(refused.status, 403, "{signature}");
    assert!(
        refused.body.is_empty()
            || String::from_utf8_lossy(&refused.body).contains("SignatureDoesNotMatch")
    );

    let hex_start = url.find("sha256:").unwrap() + "sha256:".len();
    let path = edit_at(&url, hex_start + 3);
    assert_ne!(path, url);
    assert_eq!(get(&path).await.status, 403, "{path}");
    // Pointing the signed URL at another existing blob is refused too.
    let other = url.replace(&img.layer.1, &img.config.1);
    assert_eq!(get(&other).await.status, 403);
}

#[tokio::test]
async fn urls_expire_after_an_hour_and_survive_a_restart() {
    let env = Env::start().await;
    let c = &env.client;
    env.repo("app").await;
    let img = push_image(c, "app", 5, Some("v1")).await;
    let url = url_for(c, "app", &img.layer.1).await;
    let old = env.endpoint();

    let env = env.restart().await;
    let moved = url.replace(&old, &env.endpoint());
    assert_ne!(moved, url);
    let ok = get(&moved).await;
    assert_eq!(ok.status, 200, "a URL stays valid across a restart");
    assert_eq!(ok.body, img.layer.0);

    env.emu.set_clock_skew_secs(3500);
    assert_eq!(get(&moved).await.status, 200, "still inside the hour");
    env.emu.set_clock_skew_secs(3601);
    let expired = get(&moved).await;
    assert_eq!(expired.status, 403);
    assert!(String::from_utf8_lossy(&expired.body).contains("Request has expired"));
}

#[tokio::test]
async fn unknown_and_unreferenced_layers_have_no_url() {
    let env = Env::start().await;
    let c = &env.client;
    env.repo("app").await;
    let never = sha256(b"never uploaded");
    let err = c
        .get_download_url_for_layer()
        .repository_name("app")
        .layer_digest(&never)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(400));
    assert!(matches!(
        err.into_service_error(),
        GetDownloadUrlForLayerError::LayersNotFoundException(_)
    ));

    let (_, lonely) = push_blob(c, "app", 6, 1000).await;
    let err = c
        .get_download_url_for_layer()
        .repository_name("app")
        .layer_digest(&lonely)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        GetDownloadUrlForLayerError::LayerInaccessibleException(_)
    ));

    push_image(c, "app", 7, Some("v1")).await;
    let err = c
        .get_download_url_for_layer()
        .repository_name("app")
        .layer_digest(&lonely)
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.into_service_error(),
            GetDownloadUrlForLayerError::LayerInaccessibleException(_)
        ),
        "an image that does not reference the layer does not make it accessible"
    );
    let err = c
        .get_download_url_for_layer()
        .repository_name("nope")
        .layer_digest(&lonely)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        GetDownloadUrlForLayerError::RepositoryNotFoundException(_)
    ));
}

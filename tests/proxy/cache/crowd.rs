//! A crowd pulling one uncached image: 16 clients, a 256 MiB image in four layers, one
//! download per layer from ECR, every client's bytes verified, and the first bytes reach the
//! clients while the fill is still running (the emulator's downloads are slowed so the fill
//! takes seconds).

use super::*;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use std::time::Duration;

const LAYER: usize = 64 * MIB;

#[tokio::test]
async fn sixteen_clients_share_one_fill_per_layer_and_stream_as_it_fills() {
    let s = cache_stack("max_size = \"2GiB\"").await;
    let layers: Vec<Vec<u8>> = (0..4).map(|i| data(100 + i, LAYER)).collect();
    let m = push_image(&s, "mirror/big", "v1", &layers).await;
    let digests: Vec<String> = layers.iter().map(|l| digest(l)).collect();
    drop(layers);
    // 256 KiB per 2 ms: a 64 MiB layer takes at least half a second to fill.
    s.emu.set_download_pace(Duration::from_millis(2));
    let before = s.emu.downloads();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<Bytes>>();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let client = client.clone();
        let url = s.url("");
        let digests = digests.clone();
        let metrics = s.url("/metrics");
        tasks.push(tokio::spawn(async move {
            let mut fills_seen_at_first_byte = Vec::new();
            // Each client takes the layers in its own order.
            for k in 0..4 {
                let d = &digests[(i + k) % 4];
                let resp = client
                    .get(format!("{url}/v2/mirror/big/blobs/{d}").parse().unwrap())
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                let mut body = resp.into_body().into_data_stream();
                let mut hasher = sha2::Sha256::default();
                let mut n = 0usize;
                let mut first = true;
                while let Some(chunk) = body.next().await {
                    let chunk = chunk.unwrap();
                    if first && !chunk.is_empty() {
                        first = false;
                        let m = request("GET", &metrics, &[], Bytes::new()).await;
                        let text = String::from_utf8_lossy(&m.body).to_string();
                        let in_flight: f64 = text
                            .lines()
                            .find(|l| l.starts_with("ecr_proxy_cache_fills_in_flight "))
                            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
                            .unwrap_or(0.0);
                        fills_seen_at_first_byte.push(in_flight);
                    }
                    sha2::Digest::update(&mut hasher, &chunk);
                    n += chunk.len();
                }
                assert_eq!(n, LAYER);
                let got = format!("sha256:{}", hex::encode(sha2::Digest::finalize(hasher)));
                assert_eq!(&got, d, "client {i} got layer {d} right");
            }
            fills_seen_at_first_byte
        }));
    }
    let mut first_bytes_during_a_fill = 0;
    for t in tasks {
        let seen = t.await.unwrap();
        first_bytes_during_a_fill += seen.iter().filter(|&&f| f >= 1.0).count();
    }
    assert_eq!(
        s.emu.downloads() - before,
        4,
        "one download per layer for 16 clients"
    );
    // Each client's first layer was being filled when it asked (the fills take seconds); its
    // later layers were mostly complete by then.
    assert!(
        first_bytes_during_a_fill >= 8,
        "clients got their first bytes while fills were running ({first_bytes_during_a_fill} of 64 layer reads)"
    );
    s.emu.set_download_pace(Duration::ZERO);
    assert_eq!(
        pull(&s.url(""), "mirror/big", "v1").await.unwrap(),
        m.as_bytes()
    );
    assert_eq!(
        s.emu.downloads() - before,
        5,
        "the layers once, and the config blob"
    );
    assert_eq!(
        pull(&s.url(""), "mirror/big", "v1").await.unwrap(),
        m.as_bytes()
    );
    assert_eq!(s.emu.downloads() - before, 5, "and all of it is cached now");
}

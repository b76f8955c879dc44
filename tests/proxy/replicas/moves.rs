//! One upload's requests on different replicas, each request on the next one: POST on A, each
//! 3 MiB PATCH and each status GET on another, PUT on yet another. The bytes reach ECR in parts
//! of exactly 10, 10 and 5 MiB and read back whole; a cancel on one replica ends the upload on
//! all; a stored upload expires after the session idle time, as a local one does, unless
//! requests on any replica keep it alive. Every takeover with a tail goes on hashing the part
//! body from the state saved with it (counted in `ecr_proxy_upload_takeovers_total`).

use super::dropped::begin;
use super::{Redis, Replicas};
use crate::support::*;
use bytes::Bytes;

const MIB: usize = 1 << 20;
const PART: u64 = 10 * MIB as u64;

/// PATCH `piece` as the bytes from `start` on, through `url`: the next location.
async fn patch_one(url: &str, loc: &str, start: usize, piece: &[u8]) -> String {
    let end = start + piece.len() - 1;
    let range = format!("{start}-{end}");
    let r = request(
        "PATCH",
        &format!("{url}{loc}"),
        &[
            ("Content-Range", range.as_str()),
            ("Content-Type", "application/octet-stream"),
        ],
        piece.to_vec(),
    )
    .await;
    assert_eq!(
        r.status,
        202,
        "PATCH {range} on {url}: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("range"), format!("0-{end}"), "PATCH {range}");
    r.header("location").to_string()
}

/// Send `bytes` in `chunk`-sized PATCHes, request `i` to `urls[i % len]`, checking each answer's
/// `Range` and, between PATCHes, the status through the replica after.
async fn patch_around(urls: &[String], mut loc: String, bytes: &[u8], chunk: usize) -> String {
    for (i, piece) in bytes.chunks(chunk).enumerate() {
        let start = i * chunk;
        let end = start + piece.len() - 1;
        loc = patch_one(&urls[i % urls.len()], &loc, start, piece).await;
        let next = &urls[(i + 1) % urls.len()];
        let r = request("GET", &format!("{next}{loc}"), &[], Bytes::new()).await;
        assert_eq!(r.status, 204, "status after PATCH {i}");
        assert_eq!(
            r.header("range"),
            format!("0-{end}"),
            "status after PATCH {i}"
        );
    }
    loc
}

async fn put(url: &str, loc: &str, digest: &str) -> Resp {
    let sep = if loc.contains('?') { '&' } else { '?' };
    request(
        "PUT",
        &format!("{url}{loc}{sep}digest={digest}"),
        &[],
        Bytes::new(),
    )
    .await
}

#[tokio::test]
async fn each_request_of_a_chunked_upload_on_another_replica() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let r = Replicas::start(&redis.url(), &["", "", ""]).await;
    let urls: Vec<String> = (0..3).map(|i| r.url(i)).collect();
    let bytes = data(31, 25 * MIB);
    let right = digest(&bytes);

    let loc = begin(&urls[0], "moves/app").await;
    let rotated = [urls[1].clone(), urls[2].clone(), urls[0].clone()];
    let loc = patch_around(&rotated, loc, &bytes, 3 * MIB).await;
    // 9 PATCHes went to replicas 1, 2, 0, …, the last to 0: the PUT goes to the one after it.
    let resp = put(&urls[1], &loc, &right).await;
    assert_eq!(resp.status, 201, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(resp.header("docker-content-digest"), right);
    assert_eq!(
        r.emu.layer_parts("moves/app", &right),
        Some(vec![PART, PART, 5 * MIB as u64])
    );
    // Every PATCH but the first, and the PUT, took the upload over with a tail: each went on
    // hashing the part body from the state saved with the tail, none hashed the tail again.
    let (mut resumed, mut rehashed) = (0.0, 0.0);
    for url in &urls {
        resumed += super::metric_at(url, "ecr_proxy_upload_takeovers_total", "resumed").await;
        rehashed += super::metric_at(url, "ecr_proxy_upload_takeovers_total", "rehashed").await;
    }
    assert_eq!((resumed, rehashed), (9.0, 0.0));
    for url in &urls {
        let got = request(
            "GET",
            &format!("{url}/v2/moves/app/blobs/{right}"),
            &[],
            Bytes::new(),
        )
        .await;
        assert_eq!(got.status, 200);
        assert!(
            got.body == bytes,
            "the blob read back through {url} differs"
        );
        // The finished upload is gone everywhere.
        let gone = request("GET", &format!("{url}{loc}"), &[], Bytes::new()).await;
        assert_eq!(
            (gone.status, gone.error_code().as_str()),
            (404, "BLOB_UPLOAD_UNKNOWN")
        );
    }
}

#[tokio::test]
async fn a_cancel_on_one_replica_ends_the_upload_everywhere() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let r = Replicas::start(&redis.url(), &["", "", ""]).await;
    let urls: Vec<String> = (0..3).map(|i| r.url(i)).collect();
    let bytes = data(32, 3 * MIB);

    // Cancelled through B after a PATCH through A: no replica goes on with it.
    let loc = begin(&urls[0], "moves/cancel").await;
    let loc = patch_around(&urls[..1], loc, &bytes, 3 * MIB).await;
    let resp = request("DELETE", &format!("{}{loc}", urls[1]), &[], Bytes::new()).await;
    assert_eq!(resp.status, 204);
    for url in &urls {
        let r = request(
            "PATCH",
            &format!("{url}{loc}"),
            &[("Content-Range", "3145728-3145737")],
            vec![7u8; 10],
        )
        .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (404, "BLOB_UPLOAD_UNKNOWN")
        );
    }
}

#[tokio::test]
async fn a_stored_upload_expires_after_the_same_idle_time_as_a_local_one() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let idle = "[uploads]\nidle_timeout_secs = 2\n";
    let r = Replicas::start(&redis.url(), &[idle, idle, idle]).await;
    let urls: Vec<String> = (0..3).map(|i| r.url(i)).collect();
    let bytes = data(33, 6 * MIB);

    // Kept alive by requests on other replicas for longer than the idle time: it goes on.
    let mut loc = begin(&urls[0], "moves/idle").await;
    for (i, piece) in bytes.chunks(MIB).enumerate() {
        tokio::time::sleep(std::time::Duration::from_millis(900)).await;
        loc = patch_one(&urls[(i + 1) % 3], &loc, i * MIB, piece).await;
    }
    let resp = put(&urls[0], &loc, &digest(&bytes)).await;
    assert_eq!(resp.status, 201, "{}", String::from_utf8_lossy(&resp.body));

    // Left idle: gone from every replica and from Redis after the idle time.
    let loc = begin(&urls[1], "moves/idle").await;
    tokio::time::sleep(std::time::Duration::from_millis(3000)).await;
    for url in &urls {
        let gone = request("GET", &format!("{url}{loc}"), &[], Bytes::new()).await;
        assert_eq!(
            (gone.status, gone.error_code().as_str()),
            (404, "BLOB_UPLOAD_UNKNOWN")
        );
    }
}

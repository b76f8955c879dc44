//! The request timeout (`server.request_timeout_secs`): a GET, HEAD or DELETE whose answer has not
//! begun in time gets 503 UNAVAILABLE with Retry-After; requests with a body (bounded by the body
//! timeout) and a streamed blob body that takes longer than the timeout are left alone.

use crate::metrics::{get, http, scrape};
use crate::support::*;
use crate::uploads::push_blob;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_slow_ecr_gets_503_after_the_request_timeout() {
    // InitiateLayerUpload is slower than the timeout too: a POST must not be cut by it.
    let s = Stack::start_faulty(
        &[("ECR_PROXY_REQUEST_TIMEOUT_SECS", "1")],
        "BatchGetImage:latency=3000ms;InitiateLayerUpload:latency=1500ms",
        0,
    )
    .await;
    let path = "/v2/slow/app/manifests/v1";
    let r = get(&s, path, &[]).await;
    assert_eq!((r.status, r.error_code().as_str()), (503, "UNAVAILABLE"));
    assert_eq!(r.header("retry-after"), "5");
    assert!(!r.header("x-request-id").is_empty());
    assert_eq!(r.header("docker-distribution-api-version"), "registry/2.0");
    let detail = String::from_utf8_lossy(&r.body).to_string();
    assert!(detail.contains("no answer within 1 s"), "{detail}");
    let h = request("HEAD", &s.url(path), &[], Bytes::new()).await;
    assert_eq!(
        (h.status, h.header("retry-after"), h.body.len()),
        (503, "5", 0)
    );
    // Requests with a body are not cut by it: the body timeout bounds them.
    let r = request(
        "POST",
        &s.url("/v2/slow/app/blobs/uploads/"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let m = scrape(&s).await;
    m.assert(&http("manifest", "GET", 503), 1.0);
    m.assert(&http("manifest", "HEAD", 503), 1.0);
    m.assert(&http("upload", "POST", 202), 1.0);
}

/// A client reading a streamed blob slower than the timeout gets every byte: the timeout ends at
/// the answer's head, never in its body.
#[tokio::test]
async fn a_slowly_read_blob_is_not_cut_by_the_request_timeout() {
    let s = Stack::start_with(&[
        ("ECR_PROXY_REQUEST_TIMEOUT_SECS", "1"),
        ("ECR_PROXY_BLOB_MODE", "stream"),
    ])
    .await;
    let blob = data(7, 24 * MIB);
    let d = push_blob(&s, "slow/read", &blob).await;
    let mut conn = tokio::net::TcpStream::connect(s.proxy.addr())
        .await
        .expect("connect");
    let head = format!(
        "GET /v2/slow/read/blobs/{d} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        s.host()
    );
    conn.write_all(head.as_bytes()).await.expect("send");
    // About 2 s of reading at 256 KiB every 20 ms: twice the timeout.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = conn.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let end = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", blob.len())),
        "{head}"
    );
    let body = &got[end + 4..];
    assert_eq!(body.len(), blob.len(), "the whole blob came");
    assert_eq!(digest(body), d);
}

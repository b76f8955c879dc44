//! Attacks a review of the upload hardening found, each kept as a regression test: a race past
//! the per-client cap, a byte-a-second body, a full spool, half a request head, a throttled
//! completion retried, a failed part while its request waits for memory, an overflowing
//! Content-Range.

use crate::support::*;
use bytes::Bytes;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// POSTs sent at once cannot all pass the per-client cap: a slot is taken and counted in one
/// step, before InitiateLayerUpload is awaited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_posts_cannot_bypass_the_per_client_cap() {
    let s = Stack::start_with(&[("ECR_PROXY_MAX_UPLOADS_PER_CLIENT", "2")]).await;
    // The repository exists first, so every POST only waits for InitiateLayerUpload.
    let r = request(
        "POST",
        &s.url("/v2/review/cap/blobs/uploads/"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 202);
    // Connections opened first, then every request head written at once.
    let mut conns = Vec::new();
    for _ in 0..30 {
        conns.push(TcpStream::connect(s.proxy.addr()).await.unwrap());
    }
    let head = format!(
        "POST /v2/review/cap/blobs/uploads/ HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
        s.host()
    );
    for c in &mut conns {
        c.write_all(head.as_bytes()).await.unwrap();
    }
    let mut accepted = 1;
    let mut statuses = Vec::new();
    for mut c in conns {
        use tokio::io::AsyncReadExt;
        let mut b = [0u8; 12];
        c.read_exact(&mut b).await.unwrap();
        let status = String::from_utf8_lossy(&b[9..12]).to_string();
        if status == "202" {
            accepted += 1;
        }
        statuses.push(status);
    }
    eprintln!("statuses: {statuses:?}");
    assert!(
        accepted <= 2,
        "{accepted} uploads open from one address with a cap of 2 ({} sessions in the table)",
        s.proxy.open_sessions()
    );
}

/// A body that sends one byte a second never pauses for `PARK_AFTER` (2 s) nor for the body
/// timeout. Unless it gives its part buffer up while others wait for memory, a handful of such
/// connections (budget / part cost: 38 with the defaults) would spend the budget for everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byte_a_second_per_upload_cannot_hold_the_budget_from_everyone() {
    let s = Stack::start_with(&[
        ("ECR_PROXY_BUFFER_BUDGET", "27MiB"), // two part buffers (13.4 MiB each at 10 MiB parts)
        ("ECR_PROXY_BUDGET_WAIT_SECS", "3"),
    ])
    .await;
    let mut drips = Vec::new();
    for _ in 0..2 {
        let r = request(
            "POST",
            &s.url("/v2/review/drip/blobs/uploads/"),
            &[],
            Bytes::new(),
        )
        .await;
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
        let loc = r.header("location").to_string();
        let mut c = TcpStream::connect(s.proxy.addr()).await.unwrap();
        let head = format!(
            "PATCH {loc} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            s.host(),
            20 * MIB
        );
        c.write_all(head.as_bytes()).await.unwrap();
        drips.push(c);
    }
    let dripping = tokio::spawn(async move {
        for _ in 0..20 {
            for c in &mut drips {
                let _ = c.write_all(b"x").await;
            }
            tokio::time::sleep(Duration::from_millis(900)).await;
        }
        drips
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bytes = data(11, MIB);
    let d = digest(&bytes);
    let r = request(
        "POST",
        &s.url(&format!("/v2/review/victim/blobs/uploads/?digest={d}")),
        &[],
        bytes,
    )
    .await;
    dripping.abort();
    assert_eq!(
        r.status,
        201,
        "a 1 MiB push while two uploads drip a byte a second: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
}

/// Once the spool is full (`spool_max`), an idle tail cannot park and stays in memory. Unless
/// such an upload is ended when others wait for memory, budget / part cost idle uploads (38 by
/// default) would stop every other push until they expire (an hour by default). Shown with a
/// small spool so it runs fast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_does_not_let_idle_uploads_hold_the_budget() {
    let s = Stack::start_with(&[
        ("ECR_PROXY_BUFFER_BUDGET", "27MiB"), // two part buffers
        // Idle uploads the full spool refuses are ended after 5 s idle when memory is needed.
        ("ECR_PROXY_BUDGET_WAIT_SECS", "15"),
        ("ECR_PROXY_SPOOL_MAX", "2MiB"),
    ])
    .await;
    // Three abandoned uploads with a 1 MiB tail each (1.33 MiB parked): the first fills the spool.
    for i in 0..3 {
        let r = request(
            "POST",
            &s.url("/v2/review/full/blobs/uploads/"),
            &[],
            Bytes::new(),
        )
        .await;
        assert_eq!(r.status, 202);
        let loc = r.header("location").to_string();
        let r = request("PATCH", &s.url(&loc), &[], data(20 + i, MIB)).await;
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
        tokio::time::sleep(Duration::from_millis(1500)).await; // parked (or not) by the reaper
    }
    let bytes = data(12, MIB);
    let d = digest(&bytes);
    let r = request(
        "POST",
        &s.url(&format!("/v2/review/victim/blobs/uploads/?digest={d}")),
        &[],
        bytes,
    )
    .await;
    assert_eq!(
        r.status,
        201,
        "a push while idle uploads hold the budget ({} bytes in use): {} {}",
        s.proxy.budget_in_use(),
        r.status,
        String::from_utf8_lossy(&r.body)
    );
}

/// A client that sends half a request head does not keep its connection (and fd) beyond the
/// header read timeout (slowloris; `connections.rs` tries it with 1,100 connections).
#[tokio::test]
async fn the_header_read_timeout_is_enforced() {
    use tokio::io::AsyncReadExt;
    let s = Stack::start_with(&[("ECR_PROXY_HEADER_TIMEOUT_SECS", "1")]).await;
    let mut c = TcpStream::connect(s.proxy.addr()).await.unwrap();
    c.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut b = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(4), c.read(&mut b)).await;
    assert!(
        closed.is_ok(),
        "a connection with half a request head is still open 4 s after a 1 s header timeout"
    );
}

/// A throttled CompleteLayerUpload answers 429 "retry this request": the same PUT sent again (a
/// monolithic PUT with its body) must complete, not append its body a second time.
#[tokio::test]
async fn a_throttled_complete_can_be_retried_as_told() {
    // The SDK's three attempts at the first CompleteLayerUpload are throttled.
    let s = Stack::start_faulty(&[], "CompleteLayerUpload:throttle=1,count=3", 1).await;
    let bytes = data(30, MIB);
    let d = digest(&bytes);
    let r = request(
        "POST",
        &s.url("/v2/review/complete/blobs/uploads/"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 202);
    let loc = r.header("location").to_string();
    let put = || async {
        request(
            "PUT",
            &s.url(&format!("{loc}?digest={d}")),
            &[],
            bytes.clone(),
        )
        .await
    };
    let r = put().await;
    assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("retry-after"), "1");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = put().await;
    assert_eq!(
        r.status,
        201,
        "the same PUT retried after a 429: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
}

/// A part that fails while its own request waits for memory for the next part: the request
/// must see the failure (and the memory come free) at once, not wait the whole `budget_wait`
/// for memory that is its own. Here the budget holds one part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_part_frees_its_memory_while_its_request_waits_for_memory() {
    let s = Stack::start_faulty(
        &[
            ("ECR_PROXY_PART_SIZE", "5MiB"),
            ("ECR_PROXY_BUFFER_BUDGET", "7MiB"),
            ("ECR_PROXY_BUDGET_WAIT_SECS", "15"),
        ],
        "UploadLayerPart:throttle=1,count=3",
        1,
    )
    .await;
    let r = request(
        "POST",
        &s.url("/v2/review/selfwait/blobs/uploads/"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 202);
    let loc = r.header("location").to_string();
    let began = std::time::Instant::now();
    // 5 MiB fill part 1 (shipped, throttled three times); the 6th MiB needs a second buffer.
    let r = request("PATCH", &s.url(&loc), &[], data(40, 6 * MIB)).await;
    let took = began.elapsed();
    let body = String::from_utf8_lossy(&r.body).to_string();
    assert!(
        took < Duration::from_secs(8) && !body.contains("budget"),
        "answered after {took:?} (the part's three throttled attempts take at most ~3 s): {} {body}",
        r.status
    );
}

/// `0-18446744073709551615` as a `Content-Range` must get an answer (416), not overflow.
#[tokio::test]
async fn a_huge_content_range_does_not_panic_the_handler() {
    use tokio::io::AsyncReadExt;
    let s = Stack::start().await;
    let r = request(
        "POST",
        &s.url("/v2/review/range/blobs/uploads/"),
        &[],
        Bytes::new(),
    )
    .await;
    let loc = r.header("location").to_string();
    let mut c = TcpStream::connect(s.proxy.addr()).await.unwrap();
    let head = format!(
        "PATCH {loc} HTTP/1.1\r\nHost: {}\r\nContent-Range: 0-18446744073709551615\r\nContent-Length: 1\r\n\r\nx",
        s.host()
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 416"), "answer: {text:?}");
}

//! Upload sessions under attack: clients that open uploads and walk away, stall mid-body, open
//! too many, send digests the proxy cannot check, or meet a throttled or busy upstream. None of
//! them may hold memory they do not use or stop anyone else's push; a failure worth retrying
//! keeps the upload where the client can resume it.

use crate::support::*;
use crate::uploads::assert_layers_in_ecr;
use bytes::Bytes;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// POST a new upload; its Location.
async fn begin(s: &Stack, repo: &str) -> String {
    let r = request(
        "POST",
        &s.url(&format!("/v2/{repo}/blobs/uploads/")),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    r.header("location").to_string()
}

/// Start a PATCH that declares `declared` bytes, send `sent` of them, and keep the connection.
async fn stall_patch(s: &Stack, location: &str, declared: usize, sent: &[u8]) -> TcpStream {
    let mut c = TcpStream::connect(s.proxy.addr()).await.expect("connect");
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n",
        s.host()
    );
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(sent).await.unwrap();
    c.flush().await.unwrap();
    c
}

/// Whether the server has answered or closed `c` (without waiting for it to).
async fn answered(c: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_millis(50), c.read(&mut b)).await,
        Ok(Ok(_)) | Ok(Err(_))
    )
}

/// Poll `f` every 100 ms until it holds, for at most `tries` times; false if it never did.
async fn eventually(tries: usize, mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..tries {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f()
}

async fn push_one_mib(s: &Stack, repo: &str, seed: u64) {
    let bytes = data(seed, MIB);
    let d = digest(&bytes);
    let r = request(
        "POST",
        &s.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")),
        &[],
        bytes.clone(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_layers_in_ecr(s, repo, &[&bytes]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_abandoned_uploads_do_not_hold_the_budget() {
    let s = Stack::start().await;
    for i in 0..100 {
        let loc = begin(&s, "hostage/abandon").await;
        let c = stall_patch(&s, &loc, 20 * MIB, &[i as u8]).await;
        drop(c); // walk away mid-body
    }
    // Every one of them keeps its byte (the client may come back) but no part memory.
    let s2 = &s;
    assert!(
        eventually(100, || s2.proxy.budget_in_use() == 0).await,
        "abandoned uploads still hold {} bytes of the budget",
        s.proxy.budget_in_use()
    );
    assert_eq!(s.proxy.open_sessions(), 100);
    push_one_mib(&s, "hostage/after-abandon", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_patches_block_nothing_and_give_their_memory_back() {
    let s = Stack::start_with(&[("ECR_PROXY_BODY_TIMEOUT_SECS", "6")]).await;
    let mut stalled = Vec::new();
    for i in 0..20u8 {
        let loc = begin(&s, "hostage/stall").await;
        stalled.push((loc.clone(), stall_patch(&s, &loc, 20 * MIB, &[i]).await));
    }
    // Status and cancel answer while the PATCHes are still stalled (their connections open).
    for (loc, _) in &stalled[..10] {
        let r = request("GET", &s.url(loc), &[], Bytes::new()).await;
        assert_eq!(r.status, 204);
        assert_eq!(r.header("range"), "0-0");
    }
    for (loc, _) in &stalled[10..] {
        let r = request("DELETE", &s.url(loc), &[], Bytes::new()).await;
        assert_eq!(r.status, 204);
        let r = request("GET", &s.url(loc), &[], Bytes::new()).await;
        assert_eq!(r.status, 404, "a cancelled upload is gone");
        assert_eq!(r.error_code(), "BLOB_UPLOAD_UNKNOWN");
    }
    push_one_mib(&s, "hostage/while-stalled", 2).await;
    for (loc, c) in &mut stalled[..10] {
        assert!(
            !answered(c).await,
            "{loc} was answered before its body timed out"
        );
    }
    // After the body timeout every stalled request has ended and the budget is whole again.
    for (_, c) in &mut stalled[..10] {
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), c.read_to_end(&mut rest)).await;
        let text = String::from_utf8_lossy(&rest);
        assert!(
            text.starts_with("HTTP/1.1 400"),
            "stalled PATCH answered: {text}"
        );
        assert!(text.contains("BLOB_UPLOAD_INVALID"), "{text}");
        assert!(text.to_ascii_lowercase().contains("range: 0-0"), "{text}");
    }
    let s2 = &s;
    assert!(
        eventually(100, || s2.proxy.budget_in_use() == 0).await,
        "stalled uploads still hold {} bytes",
        s.proxy.budget_in_use()
    );
    // The stalled uploads kept their byte: each can be finished.
    let (loc, _) = &stalled[0];
    let rest = data(3, 2 * MIB);
    let mut whole = vec![0u8];
    whole.extend_from_slice(&rest);
    let r = request(
        "PUT",
        &s.url(&format!("{loc}?digest={}", digest(&whole))),
        &[("Content-Range", &format!("1-{}", rest.len()))],
        rest,
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_layers_in_ecr(&s, "hostage/stall", &[&whole]).await;
}

#[tokio::test]
async fn one_client_cannot_open_more_uploads_than_its_cap() {
    let s = Stack::start_with(&[("ECR_PROXY_MAX_UPLOADS_PER_CLIENT", "3")]).await;
    let mut locs = Vec::new();
    for _ in 0..3 {
        locs.push(begin(&s, "hostage/cap").await);
    }
    let r = request(
        "POST",
        &s.url("/v2/hostage/cap/blobs/uploads/"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.error_code(), "TOOMANYREQUESTS");
    assert_eq!(r.header("retry-after"), "1");
    let r = request("DELETE", &s.url(&locs[0]), &[], Bytes::new()).await;
    assert_eq!(r.status, 204);
    begin(&s, "hostage/cap").await;
}

#[tokio::test]
async fn a_put_that_fails_handles_the_session_the_same_way_every_time() {
    let s = Stack::start().await;
    let bytes = data(5, 3 * MIB);
    let loc = begin(&s, "hostage/put").await;
    let r = request("PATCH", &s.url(&loc), &[], bytes.clone()).await;
    assert_eq!(r.status, 202);
    let range = format!("0-{}", bytes.len() - 1);
    // Digests the proxy cannot check leave the upload as it was.
    for bad in ["sha256:abc", "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e", "md5:x"] {
        let r = request("PUT", &s.url(&format!("{loc}?digest={bad}")), &[], Bytes::new()).await;
        assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"), "{bad}");
        let r = request("GET", &s.url(&loc), &[], Bytes::new()).await;
        assert_eq!((r.status, r.header("range")), (204, range.as_str()), "after {bad}");
    }
    // A digest that does not match ends the upload, and its memory is back.
    let wrong = digest(b"something else");
    let r = request(
        "PUT",
        &s.url(&format!("{loc}?digest={wrong}")),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));
    let r = request("GET", &s.url(&loc), &[], Bytes::new()).await;
    assert_eq!(r.status, 404);
    let s2 = &s;
    assert!(eventually(100, || s2.proxy.budget_in_use() == 0).await);
    assert_eq!(s.proxy.open_sessions(), 0);
}

#[tokio::test]
async fn an_upload_idle_past_its_expiry_stops_even_mid_request() {
    let s = Stack::start_with(&[
        ("ECR_PROXY_SESSION_IDLE_SECS", "1"),
        ("ECR_PROXY_BODY_TIMEOUT_SECS", "600"),
    ])
    .await;
    let loc = begin(&s, "hostage/expire").await;
    let mut c = stall_patch(&s, &loc, 20 * MIB, b"x").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), c.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    assert!(text.contains("BLOB_UPLOAD_UNKNOWN"), "{text}");
    let r = request("GET", &s.url(&loc), &[], Bytes::new()).await;
    assert_eq!(r.status, 404);
    assert_eq!(s.proxy.open_sessions(), 0);
}

/// PATCH `chunk` at `offset`; the response.
async fn patch_at(s: &Stack, loc: &str, offset: usize, chunk: &[u8]) -> Resp {
    let range = format!("{offset}-{}", offset + chunk.len() - 1);
    request(
        "PATCH",
        &s.url(loc),
        &[("Content-Range", &range)],
        chunk.to_vec(),
    )
    .await
}

#[tokio::test]
async fn a_throttled_part_keeps_the_upload_and_the_same_chunk_succeeds_when_retried() {
    // The first three UploadLayerPart calls (the SDK's three attempts at part 1) are throttled.
    let s = Stack::start_faulty(
        &[("ECR_PROXY_PART_SIZE", "5MiB")],
        "UploadLayerPart:throttle=1,count=3",
        1,
    )
    .await;
    let bytes = data(6, 13 * MIB);
    let loc = begin(&s, "hostage/throttle").await;
    // Chunk 1 stays in the tail; chunk 2 fills part 1, which is throttled.
    let r = patch_at(&s, &loc, 0, &bytes[..3 * MIB]).await;
    assert_eq!(r.status, 202);
    let r = patch_at(&s, &loc, 3 * MIB, &bytes[3 * MIB..6 * MIB]).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (429, "TOOMANYREQUESTS"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("retry-after"), "1");
    assert_eq!(
        r.header("range"),
        format!("0-{}", 3 * MIB - 1),
        "the request had no effect"
    );
    assert_eq!(r.header("location"), loc);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = patch_at(&s, &loc, 3 * MIB, &bytes[3 * MIB..6 * MIB]).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("range"), format!("0-{}", 6 * MIB - 1));
    let r = request(
        "PUT",
        &s.url(&format!("{loc}?digest={}", digest(&bytes))),
        &[("Content-Range", &format!("{}-{}", 6 * MIB, bytes.len() - 1))],
        bytes[6 * MIB..].to_vec(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        s.emu.fault_calls("UploadLayerPart"),
        6,
        "3 throttled + 3 parts"
    );
    assert_layers_in_ecr(&s, "hostage/throttle", &[&bytes]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_answers_429_with_a_range_to_resume_from() {
    // Room for one part: part 1 is in flight for 3 s (slow ECR), so the bytes after it find no
    // memory within the second this proxy waits.
    let s = Stack::start_faulty(
        &[
            ("ECR_PROXY_PART_SIZE", "5MiB"),
            ("ECR_PROXY_BUFFER_BUDGET", "7MiB"),
            ("ECR_PROXY_BUDGET_WAIT_SECS", "1"),
        ],
        "UploadLayerPart:latency=3000ms",
        1,
    )
    .await;
    let bytes = data(7, 6 * MIB);
    let loc = begin(&s, "hostage/busy").await;
    let r = request("PATCH", &s.url(&loc), &[], bytes.clone()).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (429, "TOOMANYREQUESTS"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("retry-after"), "1");
    let got: usize = r
        .header("range")
        .strip_prefix("0-")
        .and_then(|e| e.parse().ok())
        .expect("a Range");
    let resume = got + 1;
    assert_eq!(
        resume,
        5 * MIB,
        "what was read before memory ran out is kept"
    );
    // A client that honours Retry-After: part 1 is still in flight for a while.
    let mut tries = 0;
    let r = loop {
        let r = request(
            "PUT",
            &s.url(&format!("{loc}?digest={}", digest(&bytes))),
            &[("Content-Range", &format!("{resume}-{}", bytes.len() - 1))],
            bytes[resume..].to_vec(),
        )
        .await;
        tries += 1;
        if r.status != 429 || tries == 10 {
            break r;
        }
        assert_eq!(
            r.header("range"),
            format!("0-{got}"),
            "a refused retry changes nothing"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_layers_in_ecr(&s, "hostage/busy", &[&bytes]).await;
}

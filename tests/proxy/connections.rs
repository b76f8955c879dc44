//! Connection limits, attacked on a real `ecr-proxy serve --local` process: slow request heads
//! under an fd limit of 1024 (prlimit), the connection cap, the keep-alive idle timeout, and
//! `Connection: close` on an early answer. Raw TCP clients, so every byte sent is the test's.

#[path = "connections/raw.rs"]
pub(crate) mod raw;

use raw::{closed_within, ensure_nofile, get_v2, read_response, Served};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_heads_are_cut_even_when_descriptors_run_out() {
    const SLOW: usize = 1100;
    ensure_nofile(SLOW as u64 + 256);
    let served = Served::start(&[("ECR_PROXY_HEADER_TIMEOUT_SECS", "3")], Some(1024)).await;
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..SLOW {
        let mut s = served.connect().await;
        clients.spawn(async move {
            // A request head that never ends, one byte a second; returns when the server cuts.
            let head = format!("GET /v2/ HTTP/1.1\r\nHost: registry\r\nX-Slow-{i}: ");
            let mut bytes = head.into_bytes().into_iter().chain(std::iter::repeat(b'a'));
            let mut buf = [0u8; 64];
            for _ in 0..120 {
                let byte = [bytes.next().unwrap()];
                if s.write_all(&byte).await.is_err() {
                    return true;
                }
                if let Ok(r) = tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await
                {
                    if matches!(r, Ok(0) | Err(_)) {
                        return true;
                    }
                }
            }
            false // still open after 2 minutes of one byte a second
        });
    }
    let mut cut = 0;
    while let Some(done) = clients.join_next().await {
        cut += usize::from(done.expect("client task"));
    }
    assert_eq!(
        cut, SLOW,
        "every slow connection is closed by the header timeout"
    );

    let mut s = served.connect().await;
    assert_eq!(
        get_v2(&mut s).await.status,
        200,
        "GET /v2/ once they are cut"
    );

    let lines = served.log_lines("accept");
    assert!(
        !lines.is_empty(),
        "the process never ran out of descriptors, so the test did not test that"
    );
    let mut seconds: Vec<&str> = lines
        .iter()
        .map(|v| {
            v["timestamp"]
                .as_str()
                .and_then(|t| t.get(..19))
                .unwrap_or("")
        })
        .collect();
    let all = seconds.len();
    seconds.dedup();
    assert_eq!(
        seconds.len(),
        all,
        "more than one accept line in a second: {lines:#?}"
    );
    let other: Vec<_> = served
        .log_lines("open files")
        .into_iter()
        .filter(|v| {
            !v["fields"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("accept")
        })
        .collect();
    assert!(other.is_empty(), "other lines about open files: {other:#?}");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let served = Served::start(&[("ECR_PROXY_MAX_CONNECTIONS", "2")], None).await;
    let mut a = served.connect().await;
    let mut b = served.connect().await;
    assert_eq!(get_v2(&mut a).await.status, 200);
    assert_eq!(get_v2(&mut b).await.status, 200);

    let mut c = served.connect().await;
    c.write_all(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\n\r\n")
        .await
        .expect("the kernel takes the request");
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_secs(2), c.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "a third connection was served over a cap of 2"
    );

    drop(a);
    let head = read_response(&mut c).await;
    assert_eq!(
        head.status, 200,
        "the waiting connection is served once one closes"
    );
    assert_eq!(
        get_v2(&mut b).await.status,
        200,
        "the others are still served"
    );
}

#[tokio::test]
async fn idle_kept_alive_connections_are_closed_after_the_keep_alive_time() {
    let env = [
        ("ECR_PROXY_HEADER_TIMEOUT_SECS", "1"),
        ("ECR_PROXY_KEEP_ALIVE_SECS", "5"),
    ];
    let served = Served::start(&env, None).await;
    let mut s = served.connect().await;
    let first = get_v2(&mut s).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("connection"), None, "kept alive");
    // Idle longer than the header timeout, shorter than the keep-alive time: still usable.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        get_v2(&mut s).await.status,
        200,
        "kept alive past the header timeout"
    );
    assert!(
        closed_within(&mut s, Duration::from_secs(15)).await,
        "an idle kept-alive connection is never closed"
    );
}

#[tokio::test]
async fn an_early_answer_to_a_large_body_says_connection_close() {
    let served = Served::start(&[], None).await;
    let mut s = served.connect().await;
    s.write_all(
        b"POST /v2/early/blobs/uploads/ HTTP/1.1\r\nHost: registry\r\nContent-Length: 0\r\n\r\n",
    )
    .await
    .unwrap();
    let started = read_response(&mut s).await;
    assert_eq!(started.status, 202, "upload started");
    let location = started.header("location").expect("Location").to_string();
    let path = location.trim_start_matches(&format!("http://{}", served.addr));

    // A 32 MiB PATCH whose Content-Range does not start at 0; the body keeps coming.
    let len = 32 * 1024 * 1024;
    let mut early = served.connect().await;
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: registry\r\nContent-Type: application/octet-stream\r\n\
         Content-Range: 100-{}\r\nContent-Length: {len}\r\n\r\n",
        100 + len - 1
    );
    early.write_all(head.as_bytes()).await.unwrap();
    let (mut rd, mut wr) = early.into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![7u8; 64 * 1024];
        for _ in 0..len / chunk.len() {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
        }
        wr
    });
    let answer = read_response(&mut rd).await;
    assert_eq!(answer.status, 416, "wrong Content-Range");
    assert_eq!(
        answer.header("connection"),
        Some("close"),
        "{:?}",
        answer.headers
    );
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(10), rd.read_to_end(&mut rest)).await;
    assert!(
        ended.is_ok(),
        "the connection is closed after the early answer"
    );
    let _ = writer.await;

    // An answer to a body that was read keeps the connection.
    s.write_all(
        format!("PATCH {path} HTTP/1.1\r\nHost: registry\r\nContent-Length: 5\r\n\r\nhello")
            .as_bytes(),
    )
    .await
    .unwrap();
    let ok = read_response(&mut s).await;
    assert_eq!(ok.status, 202);
    assert_eq!(
        ok.header("connection"),
        None,
        "a normal PATCH keeps the connection"
    );
    assert_eq!(get_v2(&mut s).await.status, 200, "and it is usable");
}

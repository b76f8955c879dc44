//! Saves of an upload's state that meet trouble (no part memory free while the tail is parked,
//! Redis refusing the write) and state that must travel with the upload (a throttled
//! completion's resend on another replica). Each test asserts what the client sees (they failed
//! on the first wiring, c81aeae). Helpers: `dropped.rs`.

use super::dropped::{begin, describe, h1_patch, patch, put, send_bytes, start, PART5};
use super::Redis;
use crate::support::*;
use bytes::Bytes;
use std::time::Duration;

/// A PATCH whose every byte arrived must not fail because saving its tail needs part memory:
/// its tail was parked (the body paused), and at the end the one part of the budget is taken
/// by another upload's part in flight. The client is told 429 "retry this request"; the retry
/// must work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_whose_parked_tail_meets_a_full_budget_at_the_end_is_kept() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let env = [
        PART5,
        ("ECR_PROXY_BUFFER_BUDGET", "7MiB"),
        ("ECR_PROXY_BUDGET_WAIT_SECS", "1"),
    ];
    let r = start(&redis.url(), 1, "UploadLayerPart:latency=10000ms", &env).await;
    let a = r.url(0);
    let x = data(45, MIB);
    let loc = begin(&a, "handover/parked").await;
    let (tx, answer) = h1_patch(format!("{a}{loc}"), vec![]);
    send_bytes(&tx, &x).await;
    // The body pauses: after 2 s its tail is parked in the spool, its memory given back.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let y = begin(&a, "handover/busy").await;
    let (a2, y2) = (a.clone(), y.clone());
    let other = tokio::spawn(async move { patch(&a2, &y2, 0, &data(46, 5 * MIB)).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(tx); // the body ends: every byte of it arrived
    let ended = answer.await.expect("PATCH task");
    eprintln!("PATCH whose body ended: {}", describe(&ended));
    let other = other.await.expect("other PATCH");
    assert_eq!(other.status, 202, "{}", describe(&other));
    let retried = if ended.status == 202 {
        None
    } else {
        // Retry as told, once the other part has landed and the lease has passed.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Some(patch(&a, &loc, 0, &x).await)
    };
    if let Some(r) = &retried {
        eprintln!("the retry: {}", describe(r));
    }
    assert_eq!(
        ended.status,
        202,
        "the PATCH answered {}; its retry answered {:?}",
        describe(&ended),
        retried.as_ref().map(describe)
    );
}

/// A PUT whose completion ECR throttled answers 429 "retry this request"; the same PUT sent
/// again is a resend (its body is already in ECR). In-process this works
/// (`attacks::a_throttled_complete_can_be_retried_as_told`); through replicas the retry lands on
/// another one, which must know the same.
#[tokio::test]
async fn a_throttled_complete_retried_on_another_replica_completes() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let r = start(
        &redis.url(),
        3,
        "CompleteLayerUpload:throttle=1,count=3",
        &[],
    )
    .await;
    let urls: Vec<String> = (0..3).map(|i| r.url(i)).collect();
    let bytes = data(47, MIB);
    let d = digest(&bytes);
    let loc = begin(&urls[0], "handover/complete").await;
    let first = put(&urls[1], &loc, &d, bytes.clone()).await;
    assert_eq!(first.status, 429, "{}", describe(&first));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let again = put(&urls[2], &loc, &d, bytes.clone()).await;
    assert_eq!(
        again.status,
        201,
        "the same PUT retried on another replica: {}",
        describe(&again)
    );
}

/// A `redis-server` with a memory limit and the deploy's `noeviction` policy
/// (`deploy/kubernetes/shared/redis.yaml`: 200 MB), killed on drop; `None` as `Redis::start`.
async fn small_redis(maxmemory: &str) -> Option<(tokio::process::Child, String)> {
    if !tool_available("redis-server", "--version") {
        return None;
    }
    let port = super::redis::free_port();
    let child = tokio::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--maxmemory", maxmemory, "--maxmemory-policy", "noeviction"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server starts");
    super::redis::wait_listening(port, "redis-server").await;
    Some((child, format!("redis://127.0.0.1:{port}")))
}

/// A PATCH whose save fails in Redis (here: Redis's memory, the deploy's `noeviction` policy;
/// a Redis blip does the same) is answered 503 with Retry-After, "nothing of the upload was
/// changed". The client retries as told, after freeing room; the upload must still be there
/// (no part reached ECR in that request, so the state saved before still matches ECR).
#[tokio::test]
async fn a_patch_answered_503_because_its_save_failed_can_be_retried() {
    let Some((_redis, url)) = small_redis("40mb").await else {
        return;
    };
    let r = start(&url, 1, "", &[]).await;
    let a = r.url(0);
    let mut stored = Vec::new();
    let mut failed = None;
    for i in 0..4 {
        let loc = begin(&a, "handover/oom").await;
        let bytes = data(50 + i, 9 * MIB);
        let r = patch(&a, &loc, 0, &bytes).await;
        eprintln!("upload {i}: PATCH of 9 MiB: {}", describe(&r));
        if r.status == 202 {
            stored.push(loc);
        } else {
            failed = Some((loc, bytes, r));
            break;
        }
    }
    let (loc, bytes, refused) = failed.expect("a 9 MiB tail that does not fit in 40 MB");
    eprintln!(
        "{} tails of 9 MiB were stored before one did not fit",
        stored.len()
    );
    assert_eq!(refused.status, 503, "{}", describe(&refused));
    let wait: u64 = refused.header("retry-after").parse().expect("Retry-After");
    for l in &stored {
        let r = request("DELETE", &format!("{a}{l}"), &[], Bytes::new()).await;
        assert_eq!(r.status, 204, "{}", describe(&r));
    }
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let again = patch(&a, &loc, 0, &bytes).await;
    assert_eq!(
        again.status,
        202,
        "the PATCH retried after Retry-After ({wait} s), with Redis emptied: {}",
        describe(&again)
    );
}

//! The upload session store in a real Redis: a record and tail saved (appended or replaced) and
//! read back, the lock held by one request at a time, its fencing token (once a lease has run
//! out and another replica took the upload, the first can neither save nor extend it), and an
//! upload whose holder died mid-request ended rather than resumed.

use super::redis::Redis;
use ecr_proxy::config::SessionsSettings;
use ecr_proxy::shared::{Begin, End, Position, Shared, Status, TailWrite, UploadRecord};
use std::time::Duration;

fn handles(redis: &Redis) -> (Shared, Shared) {
    let settings = SessionsSettings {
        redis_url: Some(redis.url()),
        key_prefix: "test:".into(),
    };
    let one = || {
        Shared::new(&settings, ecr_proxy::metrics::Metrics::new())
            .unwrap()
            .unwrap()
    };
    (one(), one())
}

fn record() -> UploadRecord {
    UploadRecord {
        repository: "team-a/app".into(),
        ecr_upload_id: "u-1".into(),
        part_size: 10 << 20,
        committed: 0,
        received: 0,
        version: 1,
        completing: None,
    }
}

fn at(committed: u64, received: u64) -> Position {
    Position {
        committed,
        received,
        completing: None,
    }
}

const TTL: Duration = Duration::from_secs(60);
const LEASE: Duration = Duration::from_secs(5);

#[tokio::test]
async fn one_replica_at_a_time_holds_an_upload_and_a_late_one_is_fenced_out() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let (a, b) = handles(&redis);
    let lease = a.create_upload("up1", &record(), TTL, None).await.unwrap();
    assert_eq!(lease, None, "created without a lock");
    assert_eq!(
        b.upload_status("up1").await.unwrap(),
        Status::Open(record())
    );

    // A request on A: locked, B waits; the tail is written, then appended to.
    let Begin::Locked(lease_a, seen) = a
        .begin_upload("up1", Duration::from_millis(400), TTL)
        .await
        .unwrap()
    else {
        panic!("free")
    };
    assert_eq!(seen, record());
    assert_eq!(
        b.begin_upload("up1", LEASE, TTL).await.unwrap(),
        Begin::Busy
    );
    let end = a
        .end_upload(&lease_a, at(0, 5), TailWrite::Replace(b"hello"), TTL)
        .await
        .unwrap();
    assert_eq!(end, End::Saved);
    let Begin::Locked(lease_b, seen) = b.begin_upload("up1", LEASE, TTL).await.unwrap() else {
        panic!("released by A")
    };
    assert_eq!((seen.received, seen.version), (5, lease_a.token));
    assert!(lease_b.token > lease_a.token);
    assert_eq!(b.upload_tail("up1").await.unwrap(), b"hello");
    // An append that does not start at the stored tail's end is refused whole.
    let wrong = TailWrite::Append {
        at: 3,
        bytes: b" world",
    };
    let end = b.end_upload(&lease_b, at(0, 11), wrong, TTL).await.unwrap();
    assert_eq!(end, End::TailMismatch);
    let right = TailWrite::Append {
        at: 5,
        bytes: b" world",
    };
    let end = b.end_upload(&lease_b, at(0, 11), right, TTL).await.unwrap();
    assert_eq!(end, End::Saved);
    assert_eq!(a.upload_tail("up1").await.unwrap(), b"hello world");

    // A takes it again and pauses past its lease: B takes it over with a new token, and A,
    // back, can neither save nor renew.
    let Begin::Locked(late, _) = a
        .begin_upload("up1", Duration::from_millis(300), TTL)
        .await
        .unwrap()
    else {
        panic!("free")
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The lease ran out with `busy` set: the upload is ended, not resumed.
    assert_eq!(b.upload_status("up1").await.unwrap(), Status::Abandoned);
    assert_eq!(
        b.begin_upload("up1", LEASE, TTL).await.unwrap(),
        Begin::Abandoned
    );
    assert_eq!(b.upload_status("up1").await.unwrap(), Status::Unknown);
    let end = a
        .end_upload(&late, at(0, 20), TailWrite::Replace(b"late"), TTL)
        .await
        .unwrap();
    assert_eq!(end, End::Fenced);
    assert!(!a.renew_upload(&late, LEASE, TTL).await.unwrap());
    assert_eq!(
        b.begin_upload("up1", LEASE, TTL).await.unwrap(),
        Begin::Unknown
    );
}

#[tokio::test]
async fn a_renewed_lease_keeps_the_upload_and_delete_fences_its_holder_out() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let (a, b) = handles(&redis);
    let lease = a
        .create_upload("up2", &record(), TTL, Some(Duration::from_millis(400)))
        .await
        .unwrap()
        .expect("created locked");
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(a
            .renew_upload(&lease, Duration::from_millis(400), TTL)
            .await
            .unwrap());
    }
    assert_eq!(
        b.begin_upload("up2", LEASE, TTL).await.unwrap(),
        Begin::Busy
    );
    // A cancel elsewhere deletes it: the holder's save is fenced out and writes nothing.
    b.delete_upload("up2").await.unwrap();
    let end = a
        .end_upload(&lease, at(0, 3), TailWrite::Replace(b"abc"), TTL)
        .await
        .unwrap();
    assert_eq!(end, End::Fenced);
    assert_eq!(a.upload_status("up2").await.unwrap(), Status::Unknown);
    assert_eq!(a.upload_tail("up2").await.unwrap(), b"");
}

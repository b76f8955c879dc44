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
        hash_state: String::new(),
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
    let end = b
        .end_upload_after(&lease_b, at(0, 11), &[], right, "state of 11", TTL)
        .await
        .unwrap();
    assert_eq!(end, End::Saved);
    assert_eq!(a.upload_tail("up1").await.unwrap(), b"hello world");
    // The tail comes back as the segments each save wrote, with the hash state of the last.
    assert_eq!(
        a.upload_tail_segments("up1").await.unwrap(),
        [b"hello".to_vec(), b" world".to_vec()]
    );
    let Status::Open(stored) = a.upload_status("up1").await.unwrap() else {
        panic!("open")
    };
    assert_eq!(stored.hash_state, "state of 11");

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

#[tokio::test]
async fn a_delete_by_a_lease_that_no_longer_holds_the_upload_deletes_nothing() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let (a, b) = handles(&redis);
    let stale = a
        .create_upload("up4", &record(), TTL, Some(LEASE))
        .await
        .unwrap()
        .expect("created locked");
    let saved = a
        .end_upload(&stale, at(0, 3), TailWrite::Replace(b"abc"), TTL)
        .await
        .unwrap();
    assert_eq!(saved, End::Saved);
    // B holds it now: A's old lease (a request that found the tail not adding up after its
    // lease was lost) may not delete it.
    let Begin::Locked(lease_b, _) = b.begin_upload("up4", LEASE, TTL).await.unwrap() else {
        panic!("free")
    };
    assert!(!a.delete_held_upload(&stale).await.unwrap());
    assert_eq!(b.upload_tail("up4").await.unwrap(), b"abc");
    assert!(b.delete_held_upload(&lease_b).await.unwrap());
    assert_eq!(b.upload_status("up4").await.unwrap(), Status::Unknown);
    assert_eq!(b.upload_tail("up4").await.unwrap(), b"");
}

#[tokio::test]
async fn a_tail_saved_in_many_small_appends_is_whole_and_written_anew_past_the_segment_limit() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let (a, b) = handles(&redis);
    a.create_upload("up3", &record(), TTL, None).await.unwrap();
    let mut want = Vec::new();
    let mut compacted = 0;
    for i in 0..40u64 {
        let Begin::Locked(lease, seen) = a.begin_upload("up3", LEASE, TTL).await.unwrap() else {
            panic!("free")
        };
        assert_eq!(seen.received, want.len() as u64);
        let byte = [i as u8];
        let append = TailWrite::Append {
            at: want.len() as u64,
            bytes: &byte,
        };
        let next = at(0, want.len() as u64 + 1);
        match a.end_upload(&lease, next, append, TTL).await.unwrap() {
            End::Saved => want.push(i as u8),
            End::TailMismatch => {
                // Too many segments: the holder writes the whole tail again, as one.
                compacted += 1;
                want.push(i as u8);
                let whole = TailWrite::Replace(&want);
                let end = a.end_upload(&lease, next, whole, TTL).await.unwrap();
                assert_eq!(end, End::Saved);
            }
            End::Fenced => panic!("fenced out"),
        }
        assert_eq!(b.upload_tail("up3").await.unwrap(), want, "after save {i}");
    }
    assert_eq!(compacted, 1, "one rewrite after 32 segments");
    a.delete_upload("up3").await.unwrap();
    assert_eq!(b.upload_tail("up3").await.unwrap(), b"");
    for token in 1..50 {
        let key = format!("upload:{{up3}}:seg:{token}");
        assert_eq!(
            b.get(&key).await.unwrap(),
            None,
            "segment {token} left behind"
        );
    }
}

#[tokio::test]
async fn segments_sent_during_a_request_are_listed_in_order_before_its_last_bytes() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let (a, b) = handles(&redis);
    a.create_upload("up4", &record(), TTL, None).await.unwrap();
    let Begin::Locked(lease, _) = a.begin_upload("up4", LEASE, TTL).await.unwrap() else {
        panic!("free")
    };
    let names = [format!("{}.0", lease.token), format!("{}.1", lease.token)];
    a.put_segment("up4", &names[0], b"one ", TTL).await.unwrap();
    a.put_segment("up4", &names[1], b"two ", TTL).await.unwrap();
    let last = TailWrite::Append {
        at: 0,
        bytes: b"three",
    };
    let end = a
        .end_upload_after(&lease, at(0, 13), &names, last, "", TTL)
        .await
        .unwrap();
    assert_eq!(end, End::Saved);
    assert_eq!(b.upload_tail("up4").await.unwrap(), b"one two three");
    // A holder whose upload was cancelled meanwhile is fenced out: its last bytes are not
    // kept, and the caller drops the segments it sent during the request.
    let Begin::Locked(lease, _) = a.begin_upload("up4", LEASE, TTL).await.unwrap() else {
        panic!("free")
    };
    let sent = [format!("{}.0", lease.token)];
    a.put_segment("up4", &sent[0], b"four ", TTL).await.unwrap();
    b.delete_upload("up4").await.unwrap();
    let late = TailWrite::Append {
        at: 13,
        bytes: b"!",
    };
    let end = a
        .end_upload_after(&lease, at(0, 19), &sent, late, "", TTL)
        .await
        .unwrap();
    assert_eq!(end, End::Fenced);
    a.drop_segments("up4", &sent).await.unwrap();
    for name in [sent[0].clone(), lease.token.to_string()] {
        let key = format!("upload:{{up4}}:seg:{name}");
        assert_eq!(
            b.get(&key).await.unwrap(),
            None,
            "segment {name} left behind"
        );
    }
    assert_eq!(b.upload_status("up4").await.unwrap(), Status::Unknown);
}

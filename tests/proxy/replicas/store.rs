//! The upload session store in a real Redis: a record and tail saved and loaded, the lock held by
//! one replica at a time, and its fencing token: once a lease has run out and another replica
//! took the upload, the first can neither save nor extend nor release it.

use super::redis::Redis;
use ecr_proxy::config::SessionsSettings;
use ecr_proxy::shared::{Shared, UploadRecord};
use std::time::Duration;

#[tokio::test]
async fn one_replica_at_a_time_holds_an_upload_and_a_late_one_is_fenced_out() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let settings = SessionsSettings {
        redis_url: Some(redis.url()),
        key_prefix: "test:".into(),
    };
    let a = Shared::new(&settings, ecr_proxy::metrics::Metrics::new())
        .unwrap()
        .unwrap();
    let b = Shared::new(&settings, ecr_proxy::metrics::Metrics::new())
        .unwrap()
        .unwrap();
    let ttl = Duration::from_secs(60);
    let record = UploadRecord {
        repository: "team-a/app".into(),
        ecr_upload_id: "u-1".into(),
        part_size: 10 << 20,
        committed: 0,
    };
    a.create_upload("up1", &record, ttl).await.unwrap();
    assert_eq!(
        b.load_upload("up1").await.unwrap(),
        Some((record.clone(), Vec::new()))
    );

    let lease_a = a
        .lock_upload("up1", Duration::from_millis(400))
        .await
        .unwrap()
        .expect("free");
    assert_eq!(
        b.lock_upload("up1", Duration::from_secs(5)).await.unwrap(),
        None,
        "held by A"
    );
    let moved = UploadRecord {
        committed: 10 << 20,
        ..record.clone()
    };
    assert!(a
        .save_upload(&lease_a, &moved, b"tail bytes", ttl)
        .await
        .unwrap());
    assert_eq!(
        b.load_upload("up1").await.unwrap(),
        Some((moved.clone(), b"tail bytes".to_vec()))
    );

    // A's lease runs out (its replica died mid-request): B takes the upload, with a new token.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let lease_b = b
        .lock_upload("up1", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("expired");
    assert!(lease_b.token > lease_a.token);
    // A, back from a pause, is fenced out: it cannot overwrite, extend or release B's hold.
    let stale = UploadRecord {
        committed: 20 << 20,
        ..record.clone()
    };
    assert!(!a.save_upload(&lease_a, &stale, b"late", ttl).await.unwrap());
    assert!(!a
        .renew_upload(&lease_a, Duration::from_secs(5))
        .await
        .unwrap());
    a.unlock_upload(&lease_a).await.unwrap();
    assert_eq!(
        a.lock_upload("up1", Duration::from_secs(5)).await.unwrap(),
        None,
        "still B's"
    );
    assert_eq!(
        b.load_upload("up1").await.unwrap(),
        Some((moved, b"tail bytes".to_vec()))
    );
    assert!(b
        .renew_upload(&lease_b, Duration::from_secs(5))
        .await
        .unwrap());
    b.unlock_upload(&lease_b).await.unwrap();
    assert!(
        a.lock_upload("up1", Duration::from_secs(5))
            .await
            .unwrap()
            .is_some(),
        "free again"
    );
    a.delete_upload("up1").await.unwrap();
    assert_eq!(b.load_upload("up1").await.unwrap(), None);
}

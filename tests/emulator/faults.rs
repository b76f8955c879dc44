//! Fault injection as a client sees it: `throttle` gives ThrottlingException, `server` gives
//! ServerException (500), `drop` closes the connection after the call was carried out (the part
//! landed, as a later retry learns from InvalidLayerPartException), and the same seed gives the
//! same sequence of outcomes.

use crate::support::{code, complete, data, initiate, part, sha256, status, Env};
use aws_sdk_ecr::error::SdkError;
use aws_sdk_ecr::operation::initiate_layer_upload::InitiateLayerUploadError;
use aws_sdk_ecr::operation::upload_layer_part::UploadLayerPartError;

#[tokio::test]
async fn throttle_and_server_faults_become_ecr_exceptions() {
    let env = Env::start_with(|c| {
        c.faults = "DescribeRepositories:throttle=1;InitiateLayerUpload:server=1".into()
    })
    .await;
    let c = &env.client;
    env.repo("app").await;
    let err = c.describe_repositories().send().await.unwrap_err();
    assert_eq!(status(&err), Some(400));
    assert_eq!(code(&err).as_deref(), Some("ThrottlingException"));
    let err = c
        .initiate_layer_upload()
        .repository_name("app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(500));
    assert!(matches!(
        err.into_service_error(),
        InitiateLayerUploadError::ServerException(_)
    ));
    let listed = c.list_images().repository_name("app").send().await.unwrap();
    assert!(
        listed.image_ids().is_empty(),
        "other operations are untouched"
    );
}

#[tokio::test]
async fn a_dropped_part_has_landed_and_a_retry_learns_it() {
    let env = Env::start_with(|c| c.faults = "UploadLayerPart:drop=1".into()).await;
    let c = &env.client;
    env.repo("app").await;
    let id = initiate(c, "app").await;
    let bytes = data(9, 6 * 1024 * 1024 + 100);
    let (first, rest) = bytes.split_at(6 * 1024 * 1024);
    let err = part(c, "app", &id, 0, first).await.unwrap_err();
    assert!(
        matches!(err, SdkError::DispatchFailure(_)),
        "the connection was dropped: {err:?}"
    );
    assert_eq!(code(&err), None);

    let env = env.restart_with(|c| c.faults.clear()).await;
    let c = &env.client;
    let err = part(c, "app", &id, 0, first).await.unwrap_err();
    let UploadLayerPartError::InvalidLayerPartException(e) = err.into_service_error() else {
        panic!("the retried part must be refused as already received");
    };
    assert_eq!(e.last_valid_byte_received, Some(first.len() as i64 - 1));
    part(c, "app", &id, first.len(), rest).await.unwrap();
    let done = complete(c, "app", &id, &sha256(&bytes)).await.unwrap();
    assert_eq!(done.layer_digest, Some(sha256(&bytes)));
    assert_eq!(
        env.emu.layer_parts("app", &sha256(&bytes)),
        Some(vec![first.len() as u64, rest.len() as u64])
    );
}

/// Which of 20 DescribeRepositories calls were throttled, with `throttle=0.5` and this seed.
async fn throttled(seed: u64) -> Vec<bool> {
    let env = Env::start_with(|c| {
        c.faults = "DescribeRepositories:throttle=0.5".into();
        c.fault_seed = seed;
    })
    .await;
    let mut out = Vec::new();
    for _ in 0..20 {
        match env.client.describe_repositories().send().await {
            Ok(_) => out.push(false),
            Err(e) => {
                assert_eq!(code(&e).as_deref(), Some("ThrottlingException"));
                out.push(true);
            }
        }
    }
    out
}

#[tokio::test]
async fn the_same_seed_gives_the_same_outcomes() {
    let a = throttled(7).await;
    assert_eq!(a, throttled(7).await);
    assert!(
        a.contains(&true) && a.contains(&false),
        "about half are throttled: {a:?}"
    );
    assert_ne!(a, throttled(8).await, "another seed, another sequence");
}

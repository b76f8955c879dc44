//! The layer upload path through aws-sdk-ecr: InitiateLayerUpload, UploadLayerPart,
//! CompleteLayerUpload and BatchCheckLayerAvailability, and every exception they raise on
//! purpose: InvalidLayerPart (with its extra members), UploadNotFound, EmptyUpload, InvalidLayer,
//! LayerAlreadyExists, InvalidParameter (digest list sizes, a part over 20 MiB).

use crate::support::{code, complete, data, initiate, part, push_blob, sha256, status, Env, MIB};
use aws_sdk_ecr::operation::complete_layer_upload::CompleteLayerUploadError;
use aws_sdk_ecr::operation::upload_layer_part::UploadLayerPartError;
use aws_sdk_ecr::types::{LayerAvailability, LayerFailureCode};
use ecr_proxy::emulator::MissingLayers;

#[tokio::test]
async fn upload_then_check_availability() {
    let env = Env::start().await;
    let c = &env.client;
    env.repo("app").await;
    let out = c
        .initiate_layer_upload()
        .repository_name("app")
        .send()
        .await
        .unwrap();
    assert_eq!(out.part_size, Some(10_485_760));
    let id = out.upload_id.unwrap();
    assert_eq!(id.len(), 36, "a UUID-shaped upload id: {id}");
    let bytes = data(7, 3000);
    let up = part(c, "app", &id, 0, &bytes).await.unwrap();
    assert_eq!(up.last_byte_received, Some(2999));
    assert_eq!(up.upload_id.as_deref(), Some(id.as_str()));
    assert_eq!(up.repository_name.as_deref(), Some("app"));
    assert_eq!(up.registry_id.as_deref(), Some("123456789012"));
    let digest = sha256(&bytes);
    let done = complete(c, "app", &id, &digest).await.unwrap();
    assert_eq!(done.layer_digest.as_deref(), Some(digest.as_str()));
    assert_eq!(done.upload_id.as_deref(), Some(id.as_str()));

    let missing = sha256(b"never uploaded");
    let out = c
        .batch_check_layer_availability()
        .repository_name("app")
        .layer_digests(&digest)
        .layer_digests(&missing)
        .layer_digests("not-a-digest")
        .send()
        .await
        .unwrap();
    let layers = out.layers();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0].layer_digest(), Some(digest.as_str()));
    assert_eq!(
        layers[0].layer_availability(),
        Some(&LayerAvailability::Available)
    );
    assert_eq!(layers[0].layer_size(), Some(3000));
    let failures: Vec<_> = out
        .failures()
        .iter()
        .map(|f| (f.layer_digest().unwrap(), f.failure_code().unwrap().clone()))
        .collect();
    assert_eq!(
        failures,
        [
            (missing.as_str(), LayerFailureCode::MissingLayerDigest),
            ("not-a-digest", LayerFailureCode::InvalidLayerDigest)
        ]
    );

    let err = c
        .batch_check_layer_availability()
        .repository_name("nope")
        .layer_digests(&digest)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("RepositoryNotFoundException"));
    let too_many: Vec<String> = (0..101).map(|i| sha256(&[i as u8])).collect();
    let err = c
        .batch_check_layer_availability()
        .repository_name("app")
        .set_layer_digests(Some(too_many))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("InvalidParameterException"));
}

#[tokio::test]
async fn missing_layers_can_be_reported_as_unavailable() {
    let env = Env::start_with(|c| c.missing_layers = MissingLayers::Unavailable).await;
    env.repo("app").await;
    let missing = sha256(b"never uploaded");
    let out = env
        .client
        .batch_check_layer_availability()
        .repository_name("app")
        .layer_digests(&missing)
        .send()
        .await
        .unwrap();
    assert!(out.failures().is_empty());
    assert_eq!(out.layers().len(), 1);
    assert_eq!(out.layers()[0].layer_digest(), Some(missing.as_str()));
    assert_eq!(
        out.layers()[0].layer_availability(),
        Some(&LayerAvailability::Unavailable)
    );
}

#[tokio::test]
async fn a_part_that_skips_ahead_reports_the_last_byte_received() {
    let env = Env::start().await;
    let c = &env.client;
    env.repo("app").await;
    let id = initiate(c, "app").await;
    let bytes = data(3, 2000);
    part(c, "app", &id, 0, &bytes[..1000]).await.unwrap();
    for first in [1500, 500] {
        let err = part(c, "app", &id, first, &bytes[first..first + 100])
            .await
            .unwrap_err();
        assert_eq!(status(&err), Some(400));
        let UploadLayerPartError::InvalidLayerPartException(e) = err.into_service_error() else {
            panic!("InvalidLayerPartException expected for a part at {first}");
        };
        assert_eq!(e.last_valid_byte_received, Some(999), "part at {first}");
        assert_eq!(e.upload_id.as_deref(), Some(id.as_str()));
        assert_eq!(e.repository_name.as_deref(), Some("app"));
        assert_eq!(e.registry_id.as_deref(), Some("123456789012"));
    }
    // The refused parts changed nothing: the rest follows on from byte 1000.
    let out = part(c, "app", &id, 1000, &bytes[1000..]).await.unwrap();
    assert_eq!(out.last_byte_received, Some(1999));
}

#[tokio::test]
async fn unknown_or_foreign_upload_ids_are_not_found() {
    let env = Env::start().await;
    let c = &env.client;
    env.repo("one").await;
    env.repo("two").await;
    let unknown = "6cb64b8a-9378-0e33-2ab1-b780fab8a9e9";
    let err = part(c, "one", unknown, 0, b"abc").await.unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        UploadLayerPartError::UploadNotFoundException(_)
    ));
    let err = complete(c, "one", unknown, &sha256(b"abc"))
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        CompleteLayerUploadError::UploadNotFoundException(_)
    ));

    let id = initiate(c, "one").await;
    let err = part(c, "two", &id, 0, b"abc").await.unwrap_err();
    assert_eq!(status(&err), Some(400));
    assert!(matches!(
        err.into_service_error(),
        UploadLayerPartError::UploadNotFoundException(_)
    ));
    part(c, "one", &id, 0, b"abc").await.unwrap();
    let err = complete(c, "two", &id, &sha256(b"abc")).await.unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        CompleteLayerUploadError::UploadNotFoundException(_)
    ));
    complete(c, "one", &id, &sha256(b"abc")).await.unwrap();
}

#[tokio::test]
async fn completion_refuses_empty_wrong_and_duplicate_layers() {
    let env = Env::start().await;
    let c = &env.client;
    env.repo("app").await;
    let id = initiate(c, "app").await;
    let err = complete(c, "app", &id, &sha256(b"")).await.unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        CompleteLayerUploadError::EmptyUploadException(_)
    ));

    let bytes = data(11, 5000);
    part(c, "app", &id, 0, &bytes).await.unwrap();
    let err = complete(c, "app", &id, &sha256(b"other bytes"))
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(400));
    assert!(matches!(
        err.into_service_error(),
        CompleteLayerUploadError::InvalidLayerException(_)
    ));
    let too_many: Vec<String> = (0..101).map(|i| sha256(&[i as u8])).collect();
    let err = c
        .complete_layer_upload()
        .repository_name("app")
        .upload_id(&id)
        .set_layer_digests(Some(too_many))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        CompleteLayerUploadError::InvalidParameterException(_)
    ));
    complete(c, "app", &id, &sha256(&bytes)).await.unwrap();

    let again = initiate(c, "app").await;
    part(c, "app", &again, 0, &bytes).await.unwrap();
    let err = complete(c, "app", &again, &sha256(&bytes))
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        CompleteLayerUploadError::LayerAlreadyExistsException(_)
    ));

    // A finished upload is gone, whether it completed or ended in LayerAlreadyExists.
    for done in [&id, &again] {
        let err = part(c, "app", done, 5000, b"more").await.unwrap_err();
        assert!(matches!(
            err.into_service_error(),
            UploadLayerPartError::UploadNotFoundException(_)
        ));
        let err = complete(c, "app", done, &sha256(&bytes)).await.unwrap_err();
        assert!(matches!(
            err.into_service_error(),
            CompleteLayerUploadError::UploadNotFoundException(_)
        ));
    }

    // The same bytes are a new layer in another repository.
    env.repo("other").await;
    assert_eq!(push_blob(c, "other", 11, 5000).await.0, bytes);
}

#[tokio::test]
async fn a_part_over_20_mib_is_rejected() {
    let env = Env::start().await;
    let c = &env.client;
    env.repo("app").await;
    let id = initiate(c, "app").await;
    let big = data(5, 20 * MIB + 1);
    let err = part(c, "app", &id, 0, &big).await.unwrap_err();
    assert_eq!(status(&err), Some(400));
    let msg = aws_sdk_ecr::error::ProvideErrorMetadata::message(&err)
        .unwrap_or_default()
        .to_string();
    assert!(matches!(
        err.into_service_error(),
        UploadLayerPartError::InvalidParameterException(_)
    ));
    assert!(
        msg.starts_with("Invalid parameter at 'layerPartBlob' failed to satisfy constraint: "),
        "{msg}"
    );
    // Nothing landed: the upload still starts at byte 0.
    let small = &big[..1000];
    part(c, "app", &id, 0, small).await.unwrap();
    complete(c, "app", &id, &sha256(small)).await.unwrap();
}

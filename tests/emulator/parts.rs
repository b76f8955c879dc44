//! ECR's part-size rule: every part but the last must be at least 5 MiB, and a too-small part is
//! only reported at CompleteLayerUpload. A layer in exact 10 MiB parts plus a short last part is
//! accepted (and recorded with those part sizes, bytes intact); the same bytes with a 3 MiB
//! middle part are refused with LayerPartTooSmallException after every part was accepted.

use crate::support::{
    complete, data, initiate, oci_manifest, parts, push_blob, push_layer, put_manifest, sha256,
    status, Env, MIB, OCI_MANIFEST,
};
use crate::wire::get;
use aws_sdk_ecr::operation::complete_layer_upload::CompleteLayerUploadError;
use aws_sdk_ecr::types::LayerFailureCode;

const LEN: usize = 20 * MIB + 1_234_567;

#[tokio::test]
async fn exact_10_mib_parts_and_a_short_last_part_are_accepted() {
    let env = Env::start().await;
    let c = &env.client;
    env.repo("big").await;
    let bytes = data(42, LEN);
    let sizes = [10 * MIB, 10 * MIB, 1_234_567];
    let digest = push_layer(c, "big", &bytes, &sizes).await;
    assert_eq!(
        env.emu.layer_parts("big", &digest),
        Some(sizes.iter().map(|&s| s as u64).collect())
    );

    let (config, config_digest) = push_blob(c, "big", 43, 200).await;
    let manifest = oci_manifest((&config_digest, config.len()), &[(&digest, LEN)], "");
    put_manifest(c, "big", &manifest, OCI_MANIFEST, Some("v1")).await;
    let url = c
        .get_download_url_for_layer()
        .repository_name("big")
        .layer_digest(&digest)
        .send()
        .await
        .unwrap();
    let got = get(url.download_url().unwrap()).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body.len(), LEN);
    assert!(got.body == bytes, "the layer's bytes come back in order");
}

#[tokio::test]
async fn a_3_mib_middle_part_is_refused_at_completion() {
    let env = Env::start().await;
    let c = &env.client;
    env.repo("big").await;
    let bytes = data(42, LEN);
    let id = initiate(c, "big").await;
    // Every part is accepted as it arrives...
    parts(
        c,
        "big",
        &id,
        &bytes,
        0,
        &[10 * MIB, 3 * MIB, LEN - 13 * MIB],
    )
    .await;
    // ...and the small one is only reported now.
    let digest = sha256(&bytes);
    let err = complete(c, "big", &id, &digest).await.unwrap_err();
    assert_eq!(status(&err), Some(400));
    assert!(matches!(
        err.into_service_error(),
        CompleteLayerUploadError::LayerPartTooSmallException(_)
    ));

    let out = c
        .batch_check_layer_availability()
        .repository_name("big")
        .layer_digests(&digest)
        .send()
        .await
        .unwrap();
    assert!(
        out.layers().is_empty(),
        "the refused layer is not available"
    );
    assert_eq!(
        out.failures()[0].failure_code(),
        Some(&LayerFailureCode::MissingLayerDigest)
    );
    assert_eq!(env.emu.layer_parts("big", &digest), None);
}

//! Durability: stop the emulator between two steps of a push and start a new one on the same
//! directory (new client, new port). An upload carries on from its acknowledged parts; images,
//! tags, layers and repository settings come back as they were; uploads of a deleted repository
//! stay gone.

use crate::support::{
    complete, data, initiate, parts, push_image, put_manifest, sha256, Env, MIB, OCI_MANIFEST,
};
use crate::wire::get;
use aws_sdk_ecr::types::{ImageIdentifier, ImageTagMutability, LayerAvailability};

#[tokio::test]
async fn an_upload_carries_on_after_a_restart() {
    let env = Env::start().await;
    env.repo("app").await;
    let bytes = data(21, 12 * MIB + 777);
    let id = initiate(&env.client, "app").await;
    parts(&env.client, "app", &id, &bytes[..6 * MIB], 0, &[6 * MIB]).await;

    let env = env.restart().await;
    let c = &env.client;
    parts(c, "app", &id, &bytes, 6 * MIB, &[6 * MIB, 777]).await;
    let digest = sha256(&bytes);
    let done = complete(c, "app", &id, &digest).await.unwrap();
    assert_eq!(done.layer_digest, Some(digest.clone()));
    assert_eq!(
        env.emu.layer_parts("app", &digest),
        Some(vec![6 * MIB as u64, 6 * MIB as u64, 777])
    );
    let out = c
        .batch_check_layer_availability()
        .repository_name("app")
        .layer_digests(&digest)
        .send()
        .await
        .unwrap();
    assert_eq!(out.layers()[0].layer_size(), Some(bytes.len() as i64));
}

#[tokio::test]
async fn images_tags_and_layers_survive_a_restart() {
    let env = Env::start().await;
    let c = &env.client;
    c.create_repository()
        .repository_name("team/app")
        .image_tag_mutability(ImageTagMutability::Immutable)
        .send()
        .await
        .unwrap();
    let img = push_image(c, "team/app", 1, Some("v1")).await;
    put_manifest(c, "team/app", &img.manifest, OCI_MANIFEST, Some("latest")).await;
    let untagged = push_image(c, "team/app", 2, None).await;

    let env = env.restart().await;
    let c = &env.client;
    let repos = c.describe_repositories().send().await.unwrap();
    assert_eq!(repos.repositories().len(), 1);
    assert_eq!(
        repos.repositories()[0].image_tag_mutability(),
        Some(&ImageTagMutability::Immutable)
    );

    let out = c
        .batch_get_image()
        .repository_name("team/app")
        .image_ids(ImageIdentifier::builder().image_tag("v1").build())
        .image_ids(
            ImageIdentifier::builder()
                .image_digest(&untagged.digest)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(out.failures().is_empty());
    assert_eq!(
        out.images()[0].image_manifest(),
        Some(img.manifest.as_str())
    );
    assert_eq!(
        out.images()[0].image_manifest_media_type(),
        Some(OCI_MANIFEST)
    );
    assert_eq!(
        out.images()[1].image_manifest(),
        Some(untagged.manifest.as_str())
    );

    let listed = c
        .list_images()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    let mut ids: Vec<_> = listed
        .image_ids()
        .iter()
        .map(|i| (i.image_digest().unwrap(), i.image_tag()))
        .collect();
    ids.sort();
    let mut want = vec![
        (img.digest.as_str(), Some("latest")),
        (img.digest.as_str(), Some("v1")),
        (untagged.digest.as_str(), None),
    ];
    want.sort();
    assert_eq!(ids, want);

    let checked = c
        .batch_check_layer_availability()
        .repository_name("team/app")
        .layer_digests(&img.layer.1)
        .layer_digests(&img.config.1)
        .send()
        .await
        .unwrap();
    let sizes: Vec<_> = checked
        .layers()
        .iter()
        .map(|l| (l.layer_availability().cloned(), l.layer_size()))
        .collect();
    assert_eq!(
        sizes,
        [
            (
                Some(LayerAvailability::Available),
                Some(img.layer.0.len() as i64)
            ),
            (
                Some(LayerAvailability::Available),
                Some(img.config.0.len() as i64)
            )
        ]
    );
    let url = c
        .get_download_url_for_layer()
        .repository_name("team/app")
        .layer_digest(&img.layer.1)
        .send()
        .await
        .unwrap();
    assert_eq!(get(url.download_url().unwrap()).await.body, img.layer.0);

    // The tag's immutability still holds after the restart.
    let err = c
        .put_image()
        .repository_name("team/app")
        .image_manifest(&untagged.manifest)
        .image_manifest_media_type(OCI_MANIFEST)
        .image_tag("v1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        crate::support::code(&err).as_deref(),
        Some("ImageTagAlreadyExistsException")
    );
}

#[tokio::test]
async fn uploads_of_a_deleted_repository_stay_gone_after_a_restart() {
    let env = Env::start().await;
    env.repo("app").await;
    let bytes = data(22, 6 * MIB + 10);
    let id = initiate(&env.client, "app").await;
    parts(&env.client, "app", &id, &bytes[..6 * MIB], 0, &[6 * MIB]).await;
    env.client
        .delete_repository()
        .repository_name("app")
        .send()
        .await
        .unwrap();
    env.repo("app").await;

    let env = env.restart().await;
    let err = crate::support::part(&env.client, "app", &id, 6 * MIB, &bytes[6 * MIB..])
        .await
        .unwrap_err();
    assert_eq!(
        crate::support::code(&err).as_deref(),
        Some("UploadNotFoundException")
    );
}

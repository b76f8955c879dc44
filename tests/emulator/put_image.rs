//! PutImage's rules and exceptions through aws-sdk-ecr: LayersNotFound, ImageDigestDoesNotMatch,
//! ImageAlreadyExists, ReferencedImagesNotFound (an index whose child was never pushed),
//! ImageTagAlreadyExists (IMMUTABLE repository), a manifest without any media type, and tags that
//! move in a MUTABLE repository.

use crate::images::{by_digest, by_tag, get_one};
use crate::support::{
    oci_manifest, push_blob, push_image, put_manifest, sha256, status, Env, OCI_INDEX, OCI_MANIFEST,
};
use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_sdk_ecr::operation::put_image::PutImageError;
use aws_sdk_ecr::types::{ImageFailureCode, ImageTagMutability};

#[tokio::test]
async fn put_image_exceptions() {
    let env = Env::start().await;
    let c = &env.client;
    env.repo("app").await;
    let (config, config_digest) = push_blob(c, "app", 1, 100).await;
    let (layer, layer_digest) = push_blob(c, "app", 2, 2000).await;
    let never = sha256(b"never uploaded");
    let put = |manifest: String, media_type: &str, tag: Option<&str>, digest: Option<String>| {
        c.put_image()
            .repository_name("app")
            .image_manifest(manifest)
            .image_manifest_media_type(media_type)
            .set_image_tag(tag.map(str::to_string))
            .set_image_digest(digest)
            .send()
    };

    let dangling = oci_manifest((&config_digest, config.len()), &[(&never, 10)], "");
    let err = put(dangling, OCI_MANIFEST, Some("x"), None)
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(400));
    assert!(matches!(
        err.into_service_error(),
        PutImageError::LayersNotFoundException(_)
    ));

    let manifest = oci_manifest(
        (&config_digest, config.len()),
        &[(&layer_digest, layer.len())],
        "",
    );
    let wrong = sha256(b"something else");
    let err = put(manifest.clone(), OCI_MANIFEST, Some("v1"), Some(wrong))
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        PutImageError::ImageDigestDoesNotMatchException(_)
    ));
    let digest = put_manifest(c, "app", &manifest, OCI_MANIFEST, Some("v1")).await;
    let err = put(manifest.clone(), OCI_MANIFEST, Some("v1"), None)
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        PutImageError::ImageAlreadyExistsException(_)
    ));
    let err = put(manifest.clone(), OCI_MANIFEST, Some("bad tag!"), None)
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        PutImageError::InvalidParameterException(_)
    ));

    let child = format!(
        "{{\"mediaType\":\"{OCI_MANIFEST}\",\"digest\":\"{digest}\",\"size\":{}}}",
        manifest.len()
    );
    let missing =
        format!("{{\"mediaType\":\"{OCI_MANIFEST}\",\"digest\":\"{never}\",\"size\":10}}");
    let index = |children: &str| {
        format!("{{\"schemaVersion\":2,\"mediaType\":\"{OCI_INDEX}\",\"manifests\":[{children}]}}")
    };
    let err = put(
        index(&format!("{child},{missing}")),
        OCI_INDEX,
        Some("multi"),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        PutImageError::ReferencedImagesNotFoundException(_)
    ));
    put_manifest(c, "app", &index(&child), OCI_INDEX, Some("multi")).await;
    let out = c
        .batch_delete_image()
        .repository_name("app")
        .image_ids(by_digest(&digest))
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.failures()[0].failure_code(),
        Some(&ImageFailureCode::ImageReferencedByManifestList)
    );
    assert!(out.image_ids().is_empty());

    let bare = manifest.replacen(&format!("\"mediaType\": \"{OCI_MANIFEST}\","), "", 1);
    assert_ne!(bare, manifest);
    let err = c
        .put_image()
        .repository_name("app")
        .image_manifest(&bare)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.message(), Some("Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Invalid JSON syntax'"));
    put_manifest(c, "app", &bare, OCI_MANIFEST, None).await;

    let err = c
        .put_image()
        .repository_name("nope")
        .image_manifest(&manifest)
        .image_manifest_media_type(OCI_MANIFEST)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        PutImageError::RepositoryNotFoundException(_)
    ));
}

#[tokio::test]
async fn immutable_tags_cannot_move() {
    let env = Env::start().await;
    let c = &env.client;
    c.create_repository()
        .repository_name("frozen")
        .image_tag_mutability(ImageTagMutability::Immutable)
        .send()
        .await
        .unwrap();
    let first = push_image(c, "frozen", 1, Some("v1")).await;
    let second = push_image(c, "frozen", 2, None).await;
    let err = c
        .put_image()
        .repository_name("frozen")
        .image_manifest(&second.manifest)
        .image_manifest_media_type(OCI_MANIFEST)
        .image_tag("v1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(400));
    assert!(matches!(
        err.into_service_error(),
        PutImageError::ImageTagAlreadyExistsException(_)
    ));
    assert_eq!(
        get_one(c, "frozen", by_tag("v1")).await.unwrap().0,
        first.manifest,
        "the tag did not move"
    );
    put_manifest(c, "frozen", &second.manifest, OCI_MANIFEST, Some("v2")).await;

    env.repo("moving").await;
    let a = push_image(c, "moving", 1, Some("latest")).await;
    let b = push_image(c, "moving", 2, Some("latest")).await;
    assert_eq!(
        get_one(c, "moving", by_tag("latest")).await.unwrap().0,
        b.manifest,
        "a mutable tag moves"
    );
    assert_eq!(
        get_one(c, "moving", by_digest(&a.digest)).await.unwrap().0,
        a.manifest,
        "the old image stays, untagged"
    );
}

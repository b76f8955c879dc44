//! PutImage, BatchGetImage and BatchDeleteImage through aws-sdk-ecr: manifests kept byte for byte
//! with their media type, per-item failures (ImageNotFound, ImageTagDoesNotMatchDigest,
//! MissingDigestAndTag, a media type not accepted), tag-only and whole-image deletes.

use crate::support::{code, push_image, put_manifest, sha256, status, Env, OCI_MANIFEST};
use aws_sdk_ecr::types::{ImageFailureCode, ImageIdentifier};
use aws_sdk_ecr::Client;

pub fn by_tag(t: &str) -> ImageIdentifier {
    ImageIdentifier::builder().image_tag(t).build()
}

pub fn by_digest(d: &str) -> ImageIdentifier {
    ImageIdentifier::builder().image_digest(d).build()
}

/// BatchGetImage of one id: the manifest (or the failure code).
pub async fn get_one(
    c: &Client,
    repo: &str,
    id: ImageIdentifier,
) -> Result<(String, String), ImageFailureCode> {
    let out = c
        .batch_get_image()
        .repository_name(repo)
        .image_ids(id)
        .send()
        .await
        .unwrap();
    match (out.images(), out.failures()) {
        ([image], []) => Ok((
            image.image_manifest().unwrap().to_string(),
            image.image_manifest_media_type().unwrap().to_string(),
        )),
        ([], [failure]) => Err(failure.failure_code().unwrap().clone()),
        other => panic!("one image or one failure expected, got {other:?}"),
    }
}

#[tokio::test]
async fn put_then_batch_get_returns_the_exact_bytes() {
    let env = Env::start().await;
    let c = &env.client;
    env.repo("app").await;
    let img = push_image(c, "app", 1, Some("v1")).await;
    assert_eq!(img.digest, sha256(img.manifest.as_bytes()));
    let other = push_image(c, "app", 2, Some("v2")).await;

    let out = c
        .batch_get_image()
        .repository_name("app")
        .image_ids(by_tag("v1"))
        .image_ids(by_digest(&img.digest))
        .image_ids(by_tag("nope"))
        .image_ids(
            ImageIdentifier::builder()
                .image_tag("v1")
                .image_digest(&other.digest)
                .build(),
        )
        .image_ids(ImageIdentifier::builder().build())
        .send()
        .await
        .unwrap();
    assert_eq!(out.images().len(), 2);
    for image in out.images() {
        assert_eq!(
            image.image_manifest(),
            Some(img.manifest.as_str()),
            "byte for byte"
        );
        assert_eq!(image.image_manifest_media_type(), Some(OCI_MANIFEST));
        assert_eq!(
            image.image_id().unwrap().image_digest(),
            Some(img.digest.as_str())
        );
        assert_eq!(image.repository_name(), Some("app"));
    }
    assert_eq!(out.images()[0].image_id().unwrap().image_tag(), Some("v1"));
    let codes: Vec<_> = out
        .failures()
        .iter()
        .map(|f| f.failure_code().unwrap().clone())
        .collect();
    assert_eq!(
        codes,
        [
            ImageFailureCode::ImageNotFound,
            ImageFailureCode::ImageTagDoesNotMatchDigest,
            ImageFailureCode::MissingDigestAndTag
        ]
    );
    assert_eq!(
        out.failures()[0].image_id().unwrap().image_tag(),
        Some("nope")
    );

    let docker_v2 = "application/vnd.docker.distribution.manifest.v2+json";
    let out = c
        .batch_get_image()
        .repository_name("app")
        .image_ids(by_tag("v1"))
        .accepted_media_types(docker_v2)
        .send()
        .await
        .unwrap();
    assert!(
        out.images().is_empty(),
        "the stored OCI manifest is not in an accepted type"
    );
    assert_eq!(out.failures().len(), 1);
    let out = c
        .batch_get_image()
        .repository_name("app")
        .image_ids(by_tag("v1"))
        .accepted_media_types(docker_v2)
        .accepted_media_types(OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.images()[0].image_manifest(),
        Some(img.manifest.as_str())
    );

    let err = c
        .batch_get_image()
        .repository_name("app")
        .set_image_ids(Some(vec![]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(400));
    assert_eq!(code(&err).as_deref(), Some("InvalidParameterException"));
    let err = c
        .batch_get_image()
        .repository_name("nope")
        .image_ids(by_tag("v1"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("RepositoryNotFoundException"));
}

#[tokio::test]
async fn batch_delete_by_tag_removes_the_tag_and_by_digest_the_image() {
    let env = Env::start().await;
    let c = &env.client;
    env.repo("app").await;
    let img = push_image(c, "app", 1, Some("a")).await;
    put_manifest(c, "app", &img.manifest, OCI_MANIFEST, Some("b")).await;

    let out = c
        .batch_delete_image()
        .repository_name("app")
        .image_ids(by_tag("a"))
        .image_ids(by_tag("zzz"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.image_ids().len(), 1);
    assert_eq!(out.image_ids()[0].image_tag(), Some("a"));
    assert_eq!(out.image_ids()[0].image_digest(), Some(img.digest.as_str()));
    assert_eq!(
        out.failures()[0].failure_code(),
        Some(&ImageFailureCode::ImageNotFound)
    );
    assert_eq!(
        get_one(c, "app", by_tag("a")).await,
        Err(ImageFailureCode::ImageNotFound)
    );
    assert_eq!(
        get_one(c, "app", by_tag("b")).await.unwrap().0,
        img.manifest,
        "the other tag stays"
    );
    assert_eq!(
        get_one(c, "app", by_digest(&img.digest)).await.unwrap().0,
        img.manifest
    );

    let out = c
        .batch_delete_image()
        .repository_name("app")
        .image_ids(by_digest(&img.digest))
        .send()
        .await
        .unwrap();
    assert!(out.failures().is_empty());
    assert_eq!(out.image_ids()[0].image_digest(), Some(img.digest.as_str()));
    assert_eq!(
        get_one(c, "app", by_digest(&img.digest)).await,
        Err(ImageFailureCode::ImageNotFound)
    );
    assert_eq!(
        get_one(c, "app", by_tag("b")).await,
        Err(ImageFailureCode::ImageNotFound)
    );

    let single = push_image(c, "app", 2, Some("only")).await;
    c.batch_delete_image()
        .repository_name("app")
        .image_ids(by_tag("only"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get_one(c, "app", by_digest(&single.digest)).await,
        Err(ImageFailureCode::ImageNotFound),
        "last tag gone, image gone"
    );
    let err = c
        .batch_delete_image()
        .repository_name("app")
        .set_image_ids(Some(vec![]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("InvalidParameterException"));
}

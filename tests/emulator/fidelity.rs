//! Limits and filters where the emulator once differed from ECR in ways that could hide a proxy
//! bug: ListImageReferrers' own page size (20, with a nextToken) and limits (maxResults 1–50,
//! 0–5 artifactTypes of 1–255 characters, artifactStatus), the imageStatus filter of ListImages
//! and DescribeImages, CreateRepository's kmsKey and exclusion filters, and a bad tag in
//! DescribeImages (InvalidParameterException, not ImageNotFound). Through aws-sdk-ecr.

use crate::support::{code, oci_manifest, push_blob, push_image, put_manifest, Env, OCI_MANIFEST};
use aws_sdk_ecr::types::{
    ArtifactStatusFilter, DescribeImagesFilter, EncryptionConfiguration, EncryptionType,
    ImageIdentifier, ImageStatusFilter, ImageTagMutability, ImageTagMutabilityExclusionFilter,
    ImageTagMutabilityExclusionFilterType, ListImageReferrersFilter, ListImagesFilter,
    SubjectIdentifier,
};

const INVALID: Option<&str> = Some("InvalidParameterException");

/// Push `n` referrers of a new image in `repo`; the subject's digest.
async fn subject_with_referrers(env: &Env, repo: &str, n: usize) -> String {
    let c = &env.client;
    let subject = push_image(c, repo, 1, Some("v1")).await;
    let (blob, blob_digest) = push_blob(c, repo, 77, 500).await;
    for i in 0..n {
        let extra = format!(
            ",\n  \"artifactType\": \"application/vnd.example.n{}\",\n  \"subject\": {{\"mediaType\":\"{OCI_MANIFEST}\",\"digest\":\"{}\",\"size\":{}}},\n  \"annotations\": {{\"n\": \"{i}\"}}",
            i % 3,
            subject.digest,
            subject.manifest.len()
        );
        let manifest = oci_manifest(
            (&subject.config.1, subject.config.0.len()),
            &[(&blob_digest, blob.len())],
            &extra,
        );
        put_manifest(c, repo, &manifest, OCI_MANIFEST, None).await;
    }
    subject.digest
}

fn subject_id(digest: &str) -> SubjectIdentifier {
    SubjectIdentifier::builder()
        .image_digest(digest)
        .build()
        .unwrap()
}

#[tokio::test]
async fn referrers_page_at_20_and_follow_the_token() {
    let env = Env::start().await;
    env.repo("app").await;
    let subject = subject_with_referrers(&env, "app", 25).await;
    let list = || {
        env.client
            .list_image_referrers()
            .repository_name("app")
            .subject_id(subject_id(&subject))
    };
    let first = list().send().await.unwrap();
    assert_eq!(first.referrers().len(), 20, "ECR's default page is 20");
    let token = first.next_token().expect("a nextToken after 20 of 25");
    let second = list().next_token(token).send().await.unwrap();
    assert_eq!(second.referrers().len(), 5);
    assert_eq!(second.next_token(), None);
    let mut all: Vec<&str> = first.referrers().iter().map(|r| r.digest()).collect();
    all.extend(second.referrers().iter().map(|r| r.digest()));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 25, "the two pages hold every referrer once");

    let fifty = list().max_results(50).send().await.unwrap();
    assert_eq!(fifty.referrers().len(), 25);
    assert_eq!(fifty.next_token(), None);
    for bad in [0, 51] {
        let err = list().max_results(bad).send().await.unwrap_err();
        assert_eq!(code(&err).as_deref(), INVALID, "maxResults {bad}");
    }
}

#[tokio::test]
async fn referrer_filters_are_checked_and_applied() {
    let env = Env::start().await;
    env.repo("app").await;
    let subject = subject_with_referrers(&env, "app", 6).await;
    let with = |filter: ListImageReferrersFilter| {
        env.client
            .list_image_referrers()
            .repository_name("app")
            .subject_id(subject_id(&subject))
            .filter(filter)
            .send()
    };
    let types = |n: usize| (0..n).map(|i| format!("application/vnd.example.n{i}"));
    let empty = ListImageReferrersFilter::builder()
        .set_artifact_types(Some(Vec::new()))
        .build();
    assert_eq!(
        with(empty).await.unwrap().referrers().len(),
        6,
        "[] filters nothing"
    );
    let two = ListImageReferrersFilter::builder()
        .set_artifact_types(Some(types(2).collect()))
        .build();
    assert_eq!(with(two).await.unwrap().referrers().len(), 4);
    let five = ListImageReferrersFilter::builder()
        .set_artifact_types(Some(types(5).collect()))
        .build();
    assert_eq!(with(five).await.unwrap().referrers().len(), 6);
    for bad in [
        types(6).collect::<Vec<_>>(),
        vec![String::new()],
        vec!["t".repeat(256)],
    ] {
        let f = ListImageReferrersFilter::builder()
            .set_artifact_types(Some(bad.clone()))
            .build();
        let err = with(f).await.unwrap_err();
        assert_eq!(code(&err).as_deref(), INVALID, "artifactTypes {bad:?}");
    }
    let long_ok = ListImageReferrersFilter::builder()
        .artifact_types("t".repeat(255))
        .build();
    assert!(with(long_ok).await.unwrap().referrers().is_empty());

    for (status, want) in [
        (ArtifactStatusFilter::Active, 6),
        (ArtifactStatusFilter::Any, 6),
        (ArtifactStatusFilter::Archived, 0),
        (ArtifactStatusFilter::Activating, 0),
    ] {
        let f = ListImageReferrersFilter::builder()
            .artifact_status(status.clone())
            .build();
        assert_eq!(with(f).await.unwrap().referrers().len(), want, "{status:?}");
    }
    let f = ListImageReferrersFilter::builder()
        .artifact_status(ArtifactStatusFilter::from("DELETED"))
        .build();
    assert_eq!(code(&with(f).await.unwrap_err()).as_deref(), INVALID);
}

#[tokio::test]
async fn image_status_filters_are_checked_and_applied() {
    let env = Env::start().await;
    env.repo("app").await;
    push_image(&env.client, "app", 1, Some("v1")).await;
    for (status, want) in [
        (None, 1),
        (Some(ImageStatusFilter::Active), 1),
        (Some(ImageStatusFilter::Any), 1),
        (Some(ImageStatusFilter::Archived), 0),
        (Some(ImageStatusFilter::Activating), 0),
    ] {
        let f = ListImagesFilter::builder()
            .set_image_status(status.clone())
            .build();
        let out = env
            .client
            .list_images()
            .repository_name("app")
            .filter(f)
            .send()
            .await;
        assert_eq!(
            out.unwrap().image_ids().len(),
            want,
            "ListImages {status:?}"
        );
        let f = DescribeImagesFilter::builder()
            .set_image_status(status.clone())
            .build();
        let out = env
            .client
            .describe_images()
            .repository_name("app")
            .filter(f)
            .send()
            .await;
        assert_eq!(
            out.unwrap().image_details().len(),
            want,
            "DescribeImages {status:?}"
        );
    }
    let f = ListImagesFilter::builder()
        .image_status(ImageStatusFilter::from("GONE"))
        .build();
    let err = env
        .client
        .list_images()
        .repository_name("app")
        .filter(f)
        .send()
        .await;
    assert_eq!(code(&err.unwrap_err()).as_deref(), INVALID);
}

#[tokio::test]
async fn describe_images_refuses_a_bad_tag_as_a_parameter() {
    let env = Env::start().await;
    env.repo("app").await;
    push_image(&env.client, "app", 1, Some("v1")).await;
    for bad in ["no spaces".to_string(), String::new(), "t".repeat(301)] {
        let id = ImageIdentifier::builder().image_tag(bad.clone()).build();
        let err = env
            .client
            .describe_images()
            .repository_name("app")
            .image_ids(id)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err).as_deref(), INVALID, "tag {bad:?}");
    }
    let id = ImageIdentifier::builder().image_tag("v2").build();
    let err = env
        .client
        .describe_images()
        .repository_name("app")
        .image_ids(id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("ImageNotFoundException"));
}

#[tokio::test]
async fn create_repository_checks_kms_keys_and_exclusion_filters() {
    let env = Env::start().await;
    let kms = |key: String| {
        EncryptionConfiguration::builder()
            .encryption_type(EncryptionType::Kms)
            .kms_key(key)
            .build()
            .unwrap()
    };
    let create = |name: &str| env.client.create_repository().repository_name(name);
    for bad in [String::new(), "k".repeat(2049)] {
        let err = create("bad-kms")
            .encryption_configuration(kms(bad))
            .send()
            .await;
        assert_eq!(code(&err.unwrap_err()).as_deref(), INVALID);
    }
    let out = create("kms")
        .encryption_configuration(kms("k".repeat(2048)))
        .send()
        .await;
    let repo = out.unwrap().repository.unwrap();
    let enc = repo.encryption_configuration.unwrap();
    assert_eq!(enc.kms_key.map(|k| k.len()), Some(2048));

    let filter = |t: &str, f: &str| {
        ImageTagMutabilityExclusionFilter::builder()
            .filter_type(ImageTagMutabilityExclusionFilterType::from(t))
            .filter(f)
            .build()
            .unwrap()
    };
    let with = |name: &str, f: ImageTagMutabilityExclusionFilter| {
        create(name)
            .image_tag_mutability(ImageTagMutability::ImmutableWithExclusion)
            .image_tag_mutability_exclusion_filters(f)
            .send()
    };
    for (t, f) in [
        ("REGEX", "dev-*"),
        ("", "dev-*"),
        ("WILDCARD", "dev/*"),
        ("WILDCARD", ""),
    ] {
        let err = with("bad-filter", filter(t, f)).await.unwrap_err();
        assert_eq!(code(&err).as_deref(), INVALID, "{t:?} {f:?}");
    }
    let out = with("excl", filter("WILDCARD", "dev-*")).await.unwrap();
    let filters = out
        .repository
        .unwrap()
        .image_tag_mutability_exclusion_filters
        .unwrap();
    assert_eq!(filters[0].filter(), "dev-*");
}

//! The paginated views through aws-sdk-ecr: ListImages (one entry per tag, untagged once, the
//! default page of 100), DescribeImages (tags, size, media type; its parameter rules and
//! ImageNotFoundException) and ListImageReferrers (artifacts with a `subject`, filtered by type).

use crate::support::{code, oci_manifest, push_blob, push_image, put_manifest, Env, OCI_MANIFEST};
use aws_sdk_ecr::operation::describe_images::DescribeImagesError;
use aws_sdk_ecr::types::{
    ImageIdentifier, ListImageReferrersFilter, ListImagesFilter, SubjectIdentifier, TagStatus,
};
use aws_sdk_ecr::Client;

async fn list(c: &Client, repo: &str, status: TagStatus) -> Vec<(String, Option<String>)> {
    let filter = ListImagesFilter::builder().tag_status(status).build();
    let out = c
        .list_images()
        .repository_name(repo)
        .filter(filter)
        .send()
        .await
        .unwrap();
    assert!(out.next_token.is_none());
    let mut ids: Vec<_> = out
        .image_ids()
        .iter()
        .map(|i| {
            (
                i.image_digest().unwrap().to_string(),
                i.image_tag().map(str::to_string),
            )
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn list_images_has_one_entry_per_tag_and_untagged_images_once() {
    let env = Env::start().await;
    let c = &env.client;
    env.repo("app").await;
    let a = push_image(c, "app", 1, Some("a1")).await;
    put_manifest(c, "app", &a.manifest, OCI_MANIFEST, Some("a2")).await;
    let b = push_image(c, "app", 2, None).await;

    let mut want = vec![
        (a.digest.clone(), Some("a1".to_string())),
        (a.digest.clone(), Some("a2".to_string())),
        (b.digest.clone(), None),
    ];
    want.sort();
    assert_eq!(list(c, "app", TagStatus::Any).await, want);
    assert_eq!(list(c, "app", TagStatus::Tagged).await.len(), 2);
    assert_eq!(
        list(c, "app", TagStatus::Untagged).await,
        [(b.digest.clone(), None)]
    );
}

#[tokio::test]
async fn list_images_pages_at_100_by_default() {
    let env = Env::start().await;
    let c = &env.client;
    env.repo("app").await;
    let img = push_image(c, "app", 1, Some("t000")).await;
    for i in 1..150 {
        put_manifest(
            c,
            "app",
            &img.manifest,
            OCI_MANIFEST,
            Some(&format!("t{i:03}")),
        )
        .await;
    }
    let first = c.list_images().repository_name("app").send().await.unwrap();
    assert_eq!(first.image_ids().len(), 100);
    let token = first
        .next_token
        .clone()
        .expect("a nextToken after 100 entries");
    let second = c
        .list_images()
        .repository_name("app")
        .next_token(token)
        .send()
        .await
        .unwrap();
    assert_eq!(second.image_ids().len(), 50);
    assert!(second.next_token.is_none());
    let mut tags: Vec<&str> = first
        .image_ids()
        .iter()
        .chain(second.image_ids())
        .map(|i| i.image_tag().unwrap())
        .collect();
    tags.sort();
    tags.dedup();
    assert_eq!(tags.len(), 150);
    assert!(first
        .image_ids()
        .iter()
        .chain(second.image_ids())
        .all(|i| i.image_digest() == Some(img.digest.as_str())));

    let err = c
        .list_images()
        .repository_name("app")
        .max_results(0)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("InvalidParameterException"));
    let err = c
        .list_images()
        .repository_name("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("RepositoryNotFoundException"));
}

#[tokio::test]
async fn describe_images_details_and_rules() {
    let env = Env::start().await;
    let c = &env.client;
    env.repo("app").await;
    let img = push_image(c, "app", 1, Some("v1")).await;
    put_manifest(c, "app", &img.manifest, OCI_MANIFEST, Some("latest")).await;
    let id = ImageIdentifier::builder().image_tag("v1").build();

    let out = c
        .describe_images()
        .repository_name("app")
        .image_ids(id.clone())
        .send()
        .await
        .unwrap();
    let d = &out.image_details()[0];
    assert_eq!(d.image_digest(), Some(img.digest.as_str()));
    assert_eq!(d.image_tags(), ["latest", "v1"]);
    assert_eq!(
        d.image_size_in_bytes(),
        Some((img.config.0.len() + img.layer.0.len()) as i64)
    );
    assert_eq!(d.image_manifest_media_type(), Some(OCI_MANIFEST));
    assert!(d.image_pushed_at().is_some());
    let all = c
        .describe_images()
        .repository_name("app")
        .send()
        .await
        .unwrap();
    assert_eq!(
        all.image_details().len(),
        1,
        "one entry per image, not per tag"
    );

    push_image(c, "app", 2, Some("v2")).await;
    let page = c
        .describe_images()
        .repository_name("app")
        .max_results(1)
        .send()
        .await
        .unwrap();
    let token = page.next_token.expect("a second page");
    let err = c
        .describe_images()
        .repository_name("app")
        .image_ids(id.clone())
        .next_token(token)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        DescribeImagesError::InvalidParameterException(_)
    ));
    let err = c
        .describe_images()
        .repository_name("app")
        .image_ids(id)
        .max_results(5)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        DescribeImagesError::InvalidParameterException(_)
    ));
    let err = c
        .describe_images()
        .repository_name("app")
        .set_image_ids(Some(vec![]))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        DescribeImagesError::InvalidParameterException(_)
    ));
    let unknown = ImageIdentifier::builder().image_tag("nope").build();
    let err = c
        .describe_images()
        .repository_name("app")
        .image_ids(unknown)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        DescribeImagesError::ImageNotFoundException(_)
    ));
}

#[tokio::test]
async fn list_image_referrers_lists_artifacts_of_a_subject() {
    let env = Env::start().await;
    let c = &env.client;
    env.repo("app").await;
    let subject = push_image(c, "app", 1, Some("v1")).await;
    let (empty, empty_digest) = (b"{}".to_vec(), crate::support::sha256(b"{}"));
    crate::support::push_layer(c, "app", &empty, &[2]).await;
    let mut referrers = Vec::new();
    for (seed, artifact_type) in [
        (10, "application/vnd.example.sbom.v1+json"),
        (11, "application/vnd.example.signature.v1"),
    ] {
        let (blob, blob_digest) = push_blob(c, "app", seed, 700).await;
        let extra = format!(
            ",\n  \"artifactType\": \"{artifact_type}\",\n  \"subject\": {{\"mediaType\":\"{OCI_MANIFEST}\",\"digest\":\"{}\",\"size\":{}}},\n  \"annotations\": {{\"org.example.seed\": \"{seed}\"}}",
            subject.digest,
            subject.manifest.len()
        );
        let manifest = oci_manifest(
            (&empty_digest, empty.len()),
            &[(&blob_digest, blob.len())],
            &extra,
        )
        .replace(
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.empty.v1+json",
        );
        let digest = put_manifest(c, "app", &manifest, OCI_MANIFEST, None).await;
        referrers.push((digest, manifest.len(), artifact_type, seed.to_string()));
    }
    referrers.sort();

    let subject_id = SubjectIdentifier::builder()
        .image_digest(&subject.digest)
        .build()
        .unwrap();
    let out = c
        .list_image_referrers()
        .repository_name("app")
        .subject_id(subject_id.clone())
        .send()
        .await
        .unwrap();
    let mut got: Vec<_> = out
        .referrers()
        .iter()
        .map(|r| {
            assert_eq!(r.media_type(), OCI_MANIFEST);
            let seed = r.annotations().unwrap()["org.example.seed"].clone();
            (
                r.digest().to_string(),
                r.size() as usize,
                r.artifact_type().unwrap(),
                seed,
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, referrers);

    let filter = ListImageReferrersFilter::builder()
        .artifact_types("application/vnd.example.signature.v1")
        .build();
    let out = c
        .list_image_referrers()
        .repository_name("app")
        .subject_id(subject_id)
        .filter(filter)
        .send()
        .await
        .unwrap();
    assert_eq!(out.referrers().len(), 1);
    assert_eq!(
        out.referrers()[0].artifact_type(),
        Some("application/vnd.example.signature.v1")
    );
    let other = SubjectIdentifier::builder()
        .image_digest(&referrers[0].0)
        .build()
        .unwrap();
    let out = c
        .list_image_referrers()
        .repository_name("app")
        .subject_id(other)
        .send()
        .await
        .unwrap();
    assert!(out.referrers().is_empty());
}

//! Names at the edges of ECR's rules are stored and reloaded faithfully: tags of 300 characters,
//! tags that look like the store's own file prefixes or like `.`/`..`, and a repository name of
//! 256 characters, each through PutImage, a restart, ListImages and BatchGetImage.

use crate::support::{push_image, put_manifest, Env, OCI_MANIFEST};
use aws_sdk_ecr::types::ImageIdentifier;

#[tokio::test]
async fn long_and_odd_tags_survive_a_restart() {
    let env = Env::start().await;
    env.repo("app").await;
    let long = "v".repeat(300);
    let tags = [
        "t_x",
        "t_t_y",
        ".",
        "..",
        "-",
        "_",
        long.as_str(),
        "UPPER.case-mix_1",
    ];
    let img = push_image(&env.client, "app", 1, Some(tags[0])).await;
    for t in &tags[1..] {
        put_manifest(&env.client, "app", &img.manifest, OCI_MANIFEST, Some(t)).await;
    }
    let env = env.restart().await;
    let c = &env.client;
    let listed = c.list_images().repository_name("app").send().await.unwrap();
    let mut got: Vec<&str> = listed
        .image_ids()
        .iter()
        .map(|i| i.image_tag().unwrap())
        .collect();
    got.sort();
    let mut want = tags.to_vec();
    want.sort();
    assert_eq!(got, want);
    for t in tags {
        let out = c
            .batch_get_image()
            .repository_name("app")
            .image_ids(ImageIdentifier::builder().image_tag(t).build())
            .send()
            .await
            .unwrap();
        assert_eq!(out.images().len(), 1, "tag {t}");
        assert_eq!(
            out.images()[0].image_manifest(),
            Some(img.manifest.as_str())
        );
    }
    let err = c
        .put_image()
        .repository_name("app")
        .image_manifest(&img.manifest)
        .image_manifest_media_type(OCI_MANIFEST)
        .image_tag("v".repeat(301))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        crate::support::code(&err).as_deref(),
        Some("InvalidParameterException")
    );
}

#[tokio::test]
async fn a_256_character_repository_name_works_and_survives_a_restart() {
    let env = Env::start().await;
    let names = [
        "r".repeat(256),
        format!("{}/{}", "a".repeat(127), "b".repeat(128)),
    ];
    for name in &names {
        env.repo(name).await;
        push_image(&env.client, name, 2, Some("v1")).await;
    }
    let env = env.restart().await;
    let c = &env.client;
    let out = c.describe_repositories().send().await.unwrap();
    let mut got: Vec<&str> = out
        .repositories()
        .iter()
        .map(|r| r.repository_name().unwrap())
        .collect();
    got.sort();
    let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(got, want);
    for name in &names {
        let out = c
            .batch_get_image()
            .repository_name(name)
            .image_ids(ImageIdentifier::builder().image_tag("v1").build())
            .send()
            .await
            .unwrap();
        assert_eq!(out.images().len(), 1, "{name}");
    }
    let err = c
        .create_repository()
        .repository_name("r".repeat(257))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        crate::support::code(&err).as_deref(),
        Some("InvalidParameterException")
    );
}

//! CreateRepository, DescribeRepositories (with pagination), DeleteRepository and
//! GetAuthorizationToken through aws-sdk-ecr, with their exceptions: RepositoryAlreadyExists,
//! RepositoryNotFound, RepositoryNotEmpty and InvalidParameter in ECR's message template.

use crate::support::{code, push_image, status, Env};
use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_sdk_ecr::operation::create_repository::CreateRepositoryError;
use aws_sdk_ecr::operation::delete_repository::DeleteRepositoryError;
use aws_sdk_ecr::operation::describe_repositories::DescribeRepositoriesError;
use aws_sdk_ecr::types::{EncryptionType, ImageTagMutability};
use base64_simd::STANDARD;

#[tokio::test]
async fn create_describe_delete_and_their_exceptions() {
    let env = Env::start().await;
    let c = &env.client;
    let out = c
        .create_repository()
        .repository_name("team/app")
        .image_tag_mutability(ImageTagMutability::Immutable)
        .send()
        .await
        .unwrap();
    let repo = out.repository.unwrap();
    assert_eq!(repo.repository_name(), Some("team/app"));
    assert_eq!(repo.registry_id(), Some("123456789012"));
    assert_eq!(
        repo.repository_arn(),
        Some("arn:aws:ecr:us-east-1:123456789012:repository/team/app")
    );
    assert_eq!(
        repo.repository_uri(),
        Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app")
    );
    assert_eq!(
        repo.image_tag_mutability(),
        Some(&ImageTagMutability::Immutable)
    );
    assert_eq!(
        repo.encryption_configuration().map(|e| e.encryption_type()),
        Some(&EncryptionType::Aes256)
    );
    assert!(repo.created_at().is_some());

    let err = c
        .create_repository()
        .repository_name("team/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(400));
    assert!(matches!(
        err.into_service_error(),
        CreateRepositoryError::RepositoryAlreadyExistsException(_)
    ));

    let described = c
        .describe_repositories()
        .repository_names("team/app")
        .send()
        .await
        .unwrap();
    let repos = described.repositories();
    assert_eq!(repos.len(), 1);
    assert_eq!(
        repos[0].image_tag_mutability(),
        Some(&ImageTagMutability::Immutable)
    );

    let err = c
        .describe_repositories()
        .repository_names("team/app")
        .repository_names("nope")
        .send()
        .await
        .unwrap_err();
    let err = err.into_service_error();
    assert!(
        matches!(
            err,
            DescribeRepositoriesError::RepositoryNotFoundException(_)
        ),
        "{err:?}"
    );
    assert_eq!(
        err.message(),
        Some(
            "The repository with name 'nope' does not exist in the registry with id '123456789012'"
        )
    );

    let deleted = c
        .delete_repository()
        .repository_name("team/app")
        .send()
        .await
        .unwrap();
    assert_eq!(
        deleted.repository.unwrap().repository_name(),
        Some("team/app")
    );
    let err = c
        .describe_repositories()
        .repository_names("team/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("RepositoryNotFoundException"));
    let err = c
        .delete_repository()
        .repository_name("team/app")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        DeleteRepositoryError::RepositoryNotFoundException(_)
    ));
}

#[tokio::test]
async fn describe_repositories_pages_through_max_results_and_next_token() {
    let env = Env::start().await;
    let c = &env.client;
    for name in ["e-repo", "a-repo", "d-repo", "b-repo", "c-repo"] {
        env.repo(name).await;
    }
    let (mut seen, mut token, mut pages) = (Vec::new(), None::<String>, Vec::new());
    loop {
        let out = c
            .describe_repositories()
            .max_results(2)
            .set_next_token(token.take())
            .send()
            .await
            .unwrap();
        pages.push(out.repositories().len());
        seen.extend(
            out.repositories()
                .iter()
                .map(|r| r.repository_name().unwrap().to_string()),
        );
        match out.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(pages, [2, 2, 1]);
    assert_eq!(seen, ["a-repo", "b-repo", "c-repo", "d-repo", "e-repo"]);
    let all = c.describe_repositories().send().await.unwrap();
    assert_eq!(all.repositories().len(), 5);
    assert!(all.next_token.is_none());

    let first = c
        .describe_repositories()
        .max_results(2)
        .send()
        .await
        .unwrap();
    let err = c
        .describe_repositories()
        .repository_names("a-repo")
        .next_token(first.next_token.unwrap())
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        err.into_service_error(),
        DescribeRepositoriesError::InvalidParameterException(_)
    ));
    for bad in [0, 1001] {
        let err = c
            .describe_repositories()
            .max_results(bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            code(&err).as_deref(),
            Some("InvalidParameterException"),
            "maxResults {bad}"
        );
        assert!(err
            .message()
            .unwrap()
            .starts_with("Invalid parameter at 'maxResults' failed to satisfy constraint: "));
    }
}

#[tokio::test]
async fn delete_repository_with_images_needs_force() {
    let env = Env::start().await;
    let c = &env.client;
    env.repo("full").await;
    push_image(c, "full", 1, Some("v1")).await;
    let err = c
        .delete_repository()
        .repository_name("full")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(400));
    assert_eq!(code(&err).as_deref(), Some("RepositoryNotEmptyException"));
    c.delete_repository()
        .repository_name("full")
        .force(true)
        .send()
        .await
        .unwrap();
    let err = c
        .list_images()
        .repository_name("full")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("RepositoryNotFoundException"));
}

#[tokio::test]
async fn bad_repository_names_are_refused_in_ecrs_words() {
    let env = Env::start().await;
    let c = &env.client;
    let template = "Invalid parameter at 'repositoryName' failed to satisfy constraint: ";
    for bad in ["Upper", "a", "trailing/", "-dash", "sp ace"] {
        let err = c
            .create_repository()
            .repository_name(bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(status(&err), Some(400), "{bad}");
        let msg = err.message().unwrap_or_default().to_string();
        assert!(
            matches!(
                err.into_service_error(),
                CreateRepositoryError::InvalidParameterException(_)
            ),
            "{bad}"
        );
        assert!(msg.starts_with(template), "{bad}: {msg}");
    }
    let err = c
        .create_repository()
        .repository_name("Upper")
        .send()
        .await
        .unwrap_err();
    assert!(err
        .message()
        .unwrap()
        .contains("must satisfy regular expression"));
    let err = c
        .initiate_layer_upload()
        .repository_name("Bad!")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("InvalidParameterException"));
    let err = c.initiate_layer_upload().send().await.unwrap_err();
    assert_eq!(err.message(), Some("Invalid parameter at 'repositoryName' failed to satisfy constraint: 'Member must not be null'"));
    let out = c.describe_repositories().send().await.unwrap();
    assert!(out.repositories().is_empty(), "nothing was created");
}

#[tokio::test]
async fn authorization_token_decodes_to_the_aws_user() {
    let env = Env::start().await;
    let out = env.client.get_authorization_token().send().await.unwrap();
    let data = out.authorization_data();
    assert_eq!(data.len(), 1);
    let token = STANDARD
        .decode_to_vec(data[0].authorization_token().unwrap())
        .unwrap();
    let token = String::from_utf8(token).unwrap();
    let (user, password) = token.split_once(':').unwrap();
    assert_eq!(user, "AWS");
    assert!(!password.is_empty());
    assert_eq!(
        data[0].proxy_endpoint(),
        Some("https://123456789012.dkr.ecr.us-east-1.amazonaws.com")
    );
    let expires = data[0].expires_at().unwrap().secs();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now + 11 * 3600..=now + 13 * 3600).contains(&expires),
        "a 12-hour token"
    );
}

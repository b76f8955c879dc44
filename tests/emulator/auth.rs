//! SigV4 at the emulator's door: unsigned calls, unknown access keys, wrong secrets and bodies
//! changed after signing are refused with 403 and AWS's codes (via aws-sdk-ecr and raw HTTP);
//! a raw call signed by aws-sigv4 is served, an unknown X-Amz-Target gets 400
//! UnknownOperationException, and another account's registryId gets AccessDeniedException.

use crate::support::{client, code, status, Env};
use crate::wire::{api_headers, api_post, api_send};

const CREDS: Option<(&str, &str)> = Some(("test", "test"));

#[tokio::test]
async fn unsigned_calls_are_refused() {
    let env = Env::start().await;
    let resp = api_post(&env.endpoint(), "DescribeRepositories", "{}", None).await;
    assert_eq!(resp.status, 403);
    assert_eq!(resp.json()["__type"], "MissingAuthenticationTokenException");
    assert_eq!(
        resp.header("content-type"),
        Some("application/x-amz-json-1.1")
    );
}

#[tokio::test]
async fn unknown_access_keys_are_unrecognized() {
    let env = Env::start().await;
    let stranger = client(&env.endpoint(), "AKIDSTRANGER", "test");
    let err = stranger.describe_repositories().send().await.unwrap_err();
    assert_eq!(status(&err), Some(403));
    assert_eq!(code(&err).as_deref(), Some("UnrecognizedClientException"));
    let resp = api_post(
        &env.endpoint(),
        "DescribeRepositories",
        "{}",
        Some(("AKIDSTRANGER", "test")),
    )
    .await;
    assert_eq!(resp.status, 403);
    assert_eq!(resp.json()["__type"], "UnrecognizedClientException");
}

#[tokio::test]
async fn wrong_secrets_and_changed_bodies_are_invalid_signatures() {
    let env = Env::start().await;
    let wrong = client(&env.endpoint(), "test", "not-the-secret");
    let err = wrong
        .create_repository()
        .repository_name("app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(403));
    assert_eq!(code(&err).as_deref(), Some("InvalidSignatureException"));
    let resp = api_post(
        &env.endpoint(),
        "DescribeRepositories",
        "{}",
        Some(("test", "nope")),
    )
    .await;
    assert_eq!(resp.status, 403);
    assert_eq!(resp.json()["__type"], "InvalidSignatureException");

    let signed_for = r#"{"repositoryName":"app"}"#;
    let headers = api_headers(&env.endpoint(), "CreateRepository", signed_for, CREDS);
    let resp = api_send(&env.endpoint(), &headers, r#"{"repositoryName":"evil"}"#).await;
    assert_eq!(resp.status, 403);
    assert_eq!(resp.json()["__type"], "InvalidSignatureException");
    let repos = env.client.describe_repositories().send().await.unwrap();
    assert!(
        repos.repositories().is_empty(),
        "refused calls changed nothing"
    );

    let resp = api_send(&env.endpoint(), &headers, signed_for).await;
    assert_eq!(resp.status, 200, "the untouched request goes through");
    assert_eq!(resp.json()["repository"]["repositoryName"], "app");
}

#[tokio::test]
async fn unknown_targets_are_refused() {
    let env = Env::start().await;
    let ok = api_post(&env.endpoint(), "DescribeRepositories", "{}", CREDS).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["repositories"], serde_json::json!([]));

    let resp = api_post(&env.endpoint(), "PutLifecyclePolicy", "{}", CREDS).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["__type"], "UnknownOperationException");
    let resp = api_post(&env.endpoint(), "", "{}", CREDS).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["__type"], "UnknownOperationException");

    let resp = api_post(&env.endpoint(), "DescribeRepositories", "[1,2]", CREDS).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["__type"], "SerializationException");
}

#[tokio::test]
async fn another_registry_is_denied() {
    let env = Env::start().await;
    env.repo("app").await;
    let err = env
        .client
        .describe_repositories()
        .registry_id("999999999999")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(400));
    assert_eq!(code(&err).as_deref(), Some("AccessDeniedException"));
    let ours = env
        .client
        .describe_repositories()
        .registry_id("123456789012")
        .send()
        .await
        .unwrap();
    assert_eq!(ours.repositories().len(), 1);
    let err = env
        .client
        .describe_repositories()
        .registry_id("12")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("InvalidParameterException"));
}

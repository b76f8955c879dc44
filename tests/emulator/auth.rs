//! SigV4 at the emulator's door: unsigned calls, unknown access keys, wrong secrets and bodies
//! changed after signing are refused with 403 and AWS's codes (via aws-sdk-ecr and raw HTTP);
//! a raw call signed by aws-sigv4 is served, an unknown X-Amz-Target gets 400
//! UnknownOperationException, and another account's registryId gets AccessDeniedException.
//! A malformed Authorization header is 400 IncompleteSignatureException, a date more than 15
//! minutes off 400 RequestExpired, and both (like an unknown key) are answered before the body.

use crate::support::{client, code, status, Env};
use crate::wire::{api_headers, api_headers_at, api_post, api_send};

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

#[tokio::test]
async fn malformed_and_expired_signatures_are_400() {
    let env = Env::start().await;
    let body = "{}";
    let good = api_headers(&env.endpoint(), "DescribeRepositories", body, CREDS);
    let with_auth = |auth: &str| {
        let mut h = good.clone();
        h.retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
        h.push(("authorization".into(), auth.into()));
        h
    };
    for bad in [
        "garbage",
        "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ecr",
    ] {
        let resp = api_send(&env.endpoint(), &with_auth(bad), body).await;
        assert_eq!(resp.status, 400, "{bad}");
        assert_eq!(resp.json()["__type"], "IncompleteSignatureException");
    }
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let stale = api_headers_at(
        &env.endpoint(),
        "DescribeRepositories",
        body,
        CREDS,
        hour_ago,
    );
    let resp = api_send(&env.endpoint(), &stale, body).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["__type"], "RequestExpired");
}

/// Send `headers` announcing a 30 MiB body, then only 1 KiB of it, and wait (bounded) for an
/// answer: the emulator must answer from the headers alone.
async fn answer_before_body(endpoint: &str, headers: &[(String, String)]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(endpoint.trim_start_matches("http://"))
        .await
        .unwrap();
    let mut head = String::from("POST / HTTP/1.1\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", 30 * 1024 * 1024));
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[b'x'; 1024]).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        while !String::from_utf8_lossy(&got).contains('}') {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), read)
        .await
        .expect("an answer before the body was sent: the emulator waited for the body");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn credentials_are_checked_before_the_body_is_read() {
    let env = Env::start().await;
    let stranger = api_headers(
        &env.endpoint(),
        "UploadLayerPart",
        "{}",
        Some(("AKIDSTRANGER", "x")),
    );
    let answer = answer_before_body(&env.endpoint(), &stranger).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("UnrecognizedClientException"), "{answer}");

    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let stale = api_headers_at(&env.endpoint(), "UploadLayerPart", "{}", CREDS, hour_ago);
    let answer = answer_before_body(&env.endpoint(), &stale).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("RequestExpired"), "{answer}");
}

//! OIDC JWTs as passwords through a real proxy: tokens minted by the test from keys it
//! generates, the issuer's JWKS served on loopback (`oidc/issuer.rs`) or given as a local
//! file. A token pushes and pulls as a Basic password (any user name) and through the
//! `/token` flow; wrong audience, wrong issuer, expired and badly signed tokens get 401 with
//! the challenge; rules match on claims; a replaced JWKS file takes effect without a restart;
//! an issuer that cannot be reached is 503, not 401.

#[path = "oidc/issuer.rs"]
pub mod issuer;

use crate::auth::{basic, bearer, push_image, token, OCI};
use crate::support::*;
use bytes::Bytes;
use issuer::*;
use serde_json::json;

/// GitHub's issuer, as a config names it when its keys come from a file.
const GITHUB: &str = "https://token.actions.githubusercontent.com";
const SUBJECT: &str = "repo:org/app:ref:refs/heads/main";

const RULES: &str = r#"
[[auth.rules]]
subjects = ["repo:org/app:ref:refs/heads/main"]
repositories = ["org/*"]
actions = ["pull", "push"]
"#;

/// Where the proxy gets the issuer's keys.
enum Keys<'a> {
    Url(&'a JwksServer),
    File(&'a TestKey),
}

/// A stack trusting one issuer for `ecr-proxy`, with `rules`; the issuer's name.
async fn stack(keys: Keys<'_>, rules: &str) -> (Stack, String) {
    let (issuer, source, files) = match keys {
        Keys::Url(server) => (
            server.issuer(),
            format!("jwks_url = \"{}\"", server.jwks_url()),
            vec![],
        ),
        Keys::File(key) => (
            GITHUB.to_string(),
            "jwks_file = \"jwks.json\"".to_string(),
            vec![("jwks.json", jwks(&[key]))],
        ),
    };
    let toml = format!(
        "[auth]\n[[auth.issuers]]\nissuer = \"{issuer}\"\naudiences = [\"ecr-proxy\"]\n{source}\n{rules}"
    );
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_bytes())).collect();
    let s = Stack::start_config(&toml, &files, &[("ECR_PROXY_BLOB_MODE", "stream")]).await;
    (s, issuer)
}

async fn get_manifest(s: &Stack, path: &str, auth: &str) -> Resp {
    request(
        "GET",
        &s.url(path),
        &[("Authorization", auth), ("Accept", OCI)],
        Bytes::new(),
    )
    .await
}

/// A push and a pull with the token as a Basic password, and with a token from `/token`.
async fn push_and_pull(s: &Stack, jwt: &str) {
    let password = basic("x", jwt);
    let (m1, l1) = push_image(s, "org/app", "v1", &password, 1).await;
    let tok = token(
        s,
        Some(&basic("anyone", jwt)),
        &["repository:org/app:pull,push"],
    )
    .await;
    let (m2, _) = push_image(s, "org/app", "v2", &bearer(&tok), 2).await;
    for (tag, m) in [("v1", &m1), ("v2", &m2)] {
        for auth in [password.clone(), bearer(&tok)] {
            let r = get_manifest(s, &format!("/v2/org/app/manifests/{tag}"), &auth).await;
            assert_eq!((r.status, r.body.as_ref()), (200, m.as_bytes()));
        }
    }
    let b = request(
        "GET",
        &s.url(&format!("/v2/org/app/blobs/{}", digest(&l1))),
        &[("Authorization", &password)],
        Bytes::new(),
    )
    .await;
    assert_eq!((b.status, b.body.as_ref()), (200, l1.as_slice()));
    // The rule names `org/*` only.
    let r = request(
        "POST",
        &s.url("/v2/team-b/app/blobs/uploads/"),
        &[("Authorization", &password)],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains(SUBJECT));
}

/// Wrong audience, wrong issuer, expired and bad signature: 401 with the challenge on a
/// registry route and at `/token`, saying why.
async fn refusals(s: &Stack, issuer: &str, key: &TestKey) {
    let forger = key.another();
    let cases = [
        (
            key.sign(&github_claims(issuer, "sts.amazonaws.com", 300)),
            "expected one of: `ecr-proxy`",
        ),
        (
            key.sign(&github_claims(
                "https://gitlab.example.com",
                "ecr-proxy",
                300,
            )),
            "is not accepted here",
        ),
        (
            key.sign(&github_claims(issuer, "ecr-proxy", -600)),
            "expired",
        ),
        (
            forger.sign(&github_claims(issuer, "ecr-proxy", 300)),
            "bad signature",
        ),
    ];
    let challenge = format!(
        "Bearer realm=\"http://{}/token\",service=\"ecr-proxy\"",
        s.host()
    );
    for (jwt, says) in cases {
        let r = get_manifest(s, "/v2/org/app/manifests/v1", &basic("x", &jwt)).await;
        let body = String::from_utf8_lossy(&r.body).to_string();
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (401, "UNAUTHORIZED"),
            "{says}: {body}"
        );
        assert!(
            r.header("www-authenticate").starts_with(&challenge),
            "{says}: {}",
            r.header("www-authenticate")
        );
        assert!(body.contains(says), "{says}: {body}");
        assert!(
            !body.contains(jwt.split('.').nth(2).unwrap()),
            "the token is not echoed"
        );
        let t = request(
            "GET",
            &s.url("/token?service=ecr-proxy&scope=repository%3Aorg%2Fapp%3Apull"),
            &[("Authorization", &basic("x", &jwt))],
            Bytes::new(),
        )
        .await;
        assert_eq!(t.status, 401, "{says} at /token");
    }
}

#[tokio::test]
async fn a_token_from_a_served_jwks_pushes_pulls_and_bad_ones_get_401() {
    let key = TestKey::rsa("gh-1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let (s, issuer) = stack(Keys::Url(&server), RULES).await;
    push_and_pull(&s, &key.sign(&github_claims(&issuer, "ecr-proxy", 300))).await;
    refusals(&s, &issuer, &key).await;
    assert_eq!(server.jwks_hits(), 1, "the keys were fetched once");
}

#[tokio::test]
async fn a_token_checked_with_a_local_jwks_file_pushes_pulls_and_bad_ones_get_401() {
    let key = TestKey::ec("gh-1");
    let (s, issuer) = stack(Keys::File(&key), RULES).await;
    assert_eq!(issuer, GITHUB);
    push_and_pull(&s, &key.sign(&github_claims(&issuer, "ecr-proxy", 300))).await;
    refusals(&s, &issuer, &key).await;
    // Rotation: the file is replaced with the new key; it works without a restart, the old
    // key stops working.
    let new = TestKey::rsa("gh-2");
    std::fs::write(s.conf().join("jwks.json.new"), jwks(&[&new])).unwrap();
    std::fs::rename(s.conf().join("jwks.json.new"), s.conf().join("jwks.json")).unwrap();
    let fresh = basic("x", &new.sign(&github_claims(&issuer, "ecr-proxy", 300)));
    let mut status = 0;
    for _ in 0..100 {
        status = get_manifest(&s, "/v2/org/app/manifests/v1", &fresh)
            .await
            .status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200, "the new key is used within 5 s");
    let old = basic("x", &key.sign(&github_claims(&issuer, "ecr-proxy", 301)));
    let r = get_manifest(&s, "/v2/org/app/manifests/v1", &old).await;
    assert_eq!(r.status, 401);
    assert!(String::from_utf8_lossy(&r.body).contains("key `gh-1`"));
}

#[tokio::test]
async fn a_rule_with_claims_matches_only_tokens_that_carry_them() {
    let key = TestKey::ec("k");
    let server = JwksServer::start(jwks(&[&key])).await;
    let rules = r#"
[[auth.rules]]
subjects = ["repo:org/app:*"]
claims = { ref = "refs/heads/main" }
repositories = ["org/*"]
actions = ["pull", "push"]
[[auth.rules]]
subjects = ["repo:org/app:*"]
repositories = ["org/*"]
actions = ["pull"]
"#;
    let (s, issuer) = stack(Keys::Url(&server), rules).await;
    let main = basic("x", &key.sign(&github_claims(&issuer, "ecr-proxy", 300)));
    let (m, _) = push_image(&s, "org/app", "v1", &main, 3).await;
    let mut c = github_claims(&issuer, "ecr-proxy", 300);
    c["sub"] = json!("repo:org/app:ref:refs/heads/feature");
    c["ref"] = json!("refs/heads/feature");
    let feature = basic("x", &key.sign(&c));
    let r = request(
        "POST",
        &s.url("/v2/org/app/blobs/uploads/"),
        &[("Authorization", &feature)],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    let r = get_manifest(&s, "/v2/org/app/manifests/v1", &feature).await;
    assert_eq!((r.status, r.body.as_ref()), (200, m.as_bytes()));
    // Through the token endpoint: the feature branch is granted pull only.
    let t = token(&s, Some(&feature), &["repository:org/app:pull,push"]).await;
    let r = request(
        "POST",
        &s.url("/v2/org/app/blobs/uploads/"),
        &[("Authorization", &bearer(&t))],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn an_issuer_that_cannot_be_reached_is_503_not_401() {
    let addr = closed_addr().await;
    let toml = format!(
        "[auth]\n[[auth.issuers]]\nissuer = \"http://{addr}\"\naudiences = [\"ecr-proxy\"]\n{RULES}"
    );
    let s = Stack::start_config(&toml, &[], &[]).await;
    let key = TestKey::ec("k");
    let jwt = key.sign(&github_claims(&format!("http://{addr}"), "ecr-proxy", 300));
    let r = get_manifest(&s, "/v2/org/app/manifests/v1", &basic("x", &jwt)).await;
    assert_eq!(r.status, 503);
    let body = String::from_utf8_lossy(&r.body);
    assert!(
        body.contains(&format!("http://{addr}/.well-known/openid-configuration")),
        "{body}"
    );
}

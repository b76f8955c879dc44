//! What is refused, and how: 401 with the challenge on every route, wrong passwords, 403 for a
//! known subject without the right (with nothing reaching ECR), tokens used beyond their
//! scope or after they expire, and the denials in `/metrics`.

use super::*;

/// Every route, and the scope its challenge must name.
fn routes() -> Vec<(&'static str, String, Option<&'static str>)> {
    let d = format!("sha256:{}", "a".repeat(64));
    vec![
        ("GET", "/v2/".into(), None),
        ("GET", "/v2/_catalog".into(), Some("registry:catalog:*")),
        (
            "GET",
            "/v2/team-a/app/tags/list".into(),
            Some("repository:team-a/app:pull"),
        ),
        (
            "GET",
            "/v2/team-a/app/manifests/v1".into(),
            Some("repository:team-a/app:pull"),
        ),
        (
            "HEAD",
            "/v2/team-a/app/manifests/v1".into(),
            Some("repository:team-a/app:pull"),
        ),
        (
            "PUT",
            "/v2/team-a/app/manifests/v1".into(),
            Some("repository:team-a/app:pull,push"),
        ),
        (
            "DELETE",
            format!("/v2/team-a/app/manifests/{d}"),
            Some("repository:team-a/app:delete"),
        ),
        (
            "GET",
            format!("/v2/team-a/app/blobs/{d}"),
            Some("repository:team-a/app:pull"),
        ),
        (
            "HEAD",
            format!("/v2/team-a/app/blobs/{d}"),
            Some("repository:team-a/app:pull"),
        ),
        (
            "DELETE",
            format!("/v2/team-a/app/blobs/{d}"),
            Some("repository:team-a/app:delete"),
        ),
        (
            "POST",
            "/v2/team-a/app/blobs/uploads/".into(),
            Some("repository:team-a/app:pull,push"),
        ),
        (
            "PATCH",
            "/v2/team-a/app/blobs/uploads/x1".into(),
            Some("repository:team-a/app:pull,push"),
        ),
        (
            "PUT",
            format!("/v2/team-a/app/blobs/uploads/x1?digest={d}"),
            Some("repository:team-a/app:pull,push"),
        ),
        (
            "GET",
            "/v2/team-a/app/blobs/uploads/x1".into(),
            Some("repository:team-a/app:pull,push"),
        ),
        (
            "DELETE",
            "/v2/team-a/app/blobs/uploads/x1".into(),
            Some("repository:team-a/app:pull,push"),
        ),
        (
            "GET",
            format!("/v2/team-a/app/referrers/{d}"),
            Some("repository:team-a/app:pull"),
        ),
    ]
}

#[tokio::test]
async fn anonymous_requests_get_401_with_the_challenge_on_every_route() {
    let Some(s) = stack_with(EXAMPLE, &[]).await else {
        return;
    };
    let realm = format!("http://{}/token", s.host());
    for (method, path, scope) in routes() {
        let r = request(method, &s.url(&path), &[], Bytes::new()).await;
        assert_eq!(r.status, 401, "{method} {path}");
        let mut want = format!("Bearer realm=\"{realm}\",service=\"ecr-proxy\"");
        if let Some(scope) = scope {
            want.push_str(&format!(",scope=\"{scope}\""));
        }
        assert_eq!(r.header("www-authenticate"), want, "{method} {path}");
        if method != "HEAD" {
            assert_eq!(r.error_code(), "UNAUTHORIZED", "{method} {path}");
        }
        assert_eq!(r.header("docker-distribution-api-version"), "registry/2.0");
    }
    // The open endpoints stay open.
    for path in ["/healthz", "/metrics"] {
        let r = request("GET", &s.url(path), &[], Bytes::new()).await;
        assert_eq!(r.status, 200, "{path}");
    }
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_get_401() {
    let Some(s) = stack_with(EXAMPLE, &[]).await else {
        return;
    };
    for auth in [
        basic("alice", "wrong"),
        basic("mallory", "alice-pw"),
        "Basic not-base64!".to_string(),
        "Digest username=alice".to_string(),
    ] {
        let r = request(
            "GET",
            &s.url("/v2/"),
            &[("Authorization", &auth)],
            Bytes::new(),
        )
        .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (401, "UNAUTHORIZED"),
            "{auth}"
        );
        assert!(r.header("www-authenticate").starts_with("Bearer realm="));
        // The token endpoint refuses them too, with a Basic challenge.
        let t = request(
            "GET",
            &s.url("/token?service=ecr-proxy&scope=repository:team-a/app:pull"),
            &[("Authorization", &auth)],
            Bytes::new(),
        )
        .await;
        assert_eq!(t.status, 401, "{auth}");
        assert_eq!(t.header("www-authenticate"), "Basic realm=\"ecr-proxy\"");
    }
    let ok = request(
        "GET",
        &s.url("/v2/"),
        &[("Authorization", &basic("alice", "alice-pw"))],
        Bytes::new(),
    )
    .await;
    assert_eq!(ok.status, 200);
    assert!(metric(&s, "ecr_proxy_auth_denials_total", "bad_credentials").await >= 8.0);
}

#[tokio::test]
async fn bob_may_pull_but_not_push_and_nothing_reaches_ecr() {
    let Some(s) = stack_with(EXAMPLE, &[]).await else {
        return;
    };
    let alice = basic("alice", "alice-pw");
    let (m, layer) = push_image(&s, "team-a/app", "v1", &alice, 1).await;
    let calls_before = metric(&s, "ecr_proxy_ecr_calls_total", "").await;
    let bob = basic("bob", "bob-pw");
    // Basic credentials, then a token that asked for push (and got only pull).
    let tok = token(&s, Some(&bob), &["repository:team-a/app:pull,push"]).await;
    for auth in [bob.clone(), bearer(&tok)] {
        let r = request(
            "POST",
            &s.url("/v2/team-a/app/blobs/uploads/"),
            &[("Authorization", &auth)],
            Bytes::new(),
        )
        .await;
        assert_eq!((r.status, r.error_code().as_str()), (403, "DENIED"));
        let r = request(
            "PUT",
            &s.url("/v2/team-a/app/manifests/v2"),
            &[("Authorization", &auth), ("Content-Type", OCI)],
            m.clone(),
        )
        .await;
        assert_eq!((r.status, r.error_code().as_str()), (403, "DENIED"));
        let d = digest(m.as_bytes());
        let r = request(
            "DELETE",
            &s.url(&format!("/v2/team-a/app/manifests/{d}")),
            &[("Authorization", &auth)],
            Bytes::new(),
        )
        .await;
        assert_eq!((r.status, r.error_code().as_str()), (403, "DENIED"));
    }
    assert_eq!(
        metric(&s, "ecr_proxy_ecr_calls_total", "").await,
        calls_before,
        "a refused request makes no ECR call"
    );
    // The image is untouched, and bob may pull it, with either credential.
    for auth in [bob.clone(), bearer(&tok)] {
        let r = request(
            "GET",
            &s.url(&format!("/v2/team-a/app/blobs/{}", digest(&layer))),
            &[("Authorization", &auth)],
            Bytes::new(),
        )
        .await;
        assert_eq!((r.status, r.body.as_ref()), (200, layer.as_slice()));
    }
    let tags = s
        .ecr
        .list_images()
        .repository_name("team-a/app")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.image_ids().len(), 1, "no v2 tag reached ECR");
    assert_eq!(
        metric(&s, "ecr_proxy_auth_denials_total", "forbidden").await,
        3.0
    );
    assert_eq!(
        metric(&s, "ecr_proxy_auth_denials_total", "insufficient_scope").await,
        3.0
    );
}

#[tokio::test]
async fn a_token_is_good_only_for_its_scope_and_its_lifetime() {
    let Some(s) = stack_with(EXAMPLE, &[]).await else {
        return;
    };
    let alice = basic("alice", "alice-pw");
    push_image(&s, "team-a/app", "v1", &alice, 3).await;
    let tok = token(&s, Some(&alice), &["repository:team-a/app:pull,push"]).await;
    let ok = request(
        "GET",
        &s.url("/v2/team-a/app/manifests/v1"),
        &[("Authorization", &bearer(&tok)), ("Accept", OCI)],
        Bytes::new(),
    )
    .await;
    assert_eq!(ok.status, 200);
    // alice may pull team-b/app, but not with a token for team-a/app.
    let r = request(
        "GET",
        &s.url("/v2/team-b/app/manifests/v1"),
        &[("Authorization", &bearer(&tok)), ("Accept", OCI)],
        Bytes::new(),
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (403, "DENIED"));
    assert!(
        r.header("www-authenticate")
            .ends_with(",scope=\"repository:team-b/app:pull\",error=\"insufficient_scope\""),
        "{}",
        r.header("www-authenticate")
    );
    // An expired token signed with the right key: 401, `invalid_token`.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = mint(now - 400, now - 60, KEY);
    let r = request(
        "GET",
        &s.url("/v2/team-a/app/manifests/v1"),
        &[("Authorization", &bearer(&expired))],
        Bytes::new(),
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (401, "UNAUTHORIZED"));
    assert!(r
        .header("www-authenticate")
        .ends_with("error=\"invalid_token\""));
    assert!(String::from_utf8_lossy(&r.body).contains("expired"));
    // The same claims, still valid, are accepted: the key file is the proxy's (replicas agree).
    let fresh = mint(now - 1, now + 60, KEY);
    let r = request(
        "GET",
        &s.url("/v2/team-a/app/manifests/v1"),
        &[("Authorization", &bearer(&fresh)), ("Accept", OCI)],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200);
    // A token signed with another key is refused.
    let forged = mint(now - 1, now + 60, b"another-key-0123456789abcdef0123456789");
    let r = request(
        "GET",
        &s.url("/v2/team-a/app/manifests/v1"),
        &[("Authorization", &bearer(&forged))],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(metric(&s, "ecr_proxy_auth_denials_total", "expired").await >= 1.0);
}

/// A token as the proxy signs them, for alice to pull `team-a/app`, valid from `nbf` to `exp`
/// (seconds since the epoch), signed with `key`.
fn mint(nbf: u64, exp: u64, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"iss": "ecr-proxy", "aud": "ecr-proxy", "sub": "alice",
            "exp": exp, "nbf": nbf, "iat": nbf, "jti": format!("t{exp}"), "kind": "password",
            "access": [{"type": "repository", "name": "team-a/app", "actions": ["pull"]}]}),
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .unwrap()
}

#[tokio::test]
async fn the_token_endpoint_refuses_what_would_make_huge_tokens() {
    let Some(s) = stack_with(EXAMPLE, &[]).await else {
        return;
    };
    let long = format!(
        "/token?service=ecr-proxy&scope=repository%3Apublic%2F{}%3Apull",
        "a".repeat(5300)
    );
    let r = request("GET", &s.url(&long), &[], Bytes::new()).await;
    assert_eq!(r.status, 400, "a name ECR cannot hold");
    let many: Vec<String> = (0..40)
        .map(|i| format!("scope=repository%3Apublic%2Fr{i:02}%3Apull"))
        .collect();
    let r = request(
        "GET",
        &s.url(&format!("/token?service=ecr-proxy&{}", many.join("&"))),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 400, "more scopes than a client asks for");
}

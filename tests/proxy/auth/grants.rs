//! What is allowed: pushes and pulls with Basic credentials and with tokens, anonymous pulls of
//! public repositories (with and without an anonymous token), the catalog filtered to what the
//! subject may pull, htpasswd edits taking effect without a restart, and the upload cap counted
//! per subject.

use super::*;

#[tokio::test]
async fn alice_pushes_and_pulls_with_basic_credentials_and_with_tokens() {
    let Some(s) = stack_with(EXAMPLE, &[]).await else {
        return;
    };
    let alice = basic("alice", "alice-pw");
    let (m1, l1) = push_image(&s, "team-a/app", "v1", &alice, 10).await;
    let tok = token(
        &s,
        Some(&alice),
        &["repository:team-a/app:pull,push,delete"],
    )
    .await;
    let (m2, l2) = push_image(&s, "team-a/app", "v2", &bearer(&tok), 11).await;
    for (tag, m, layer) in [("v1", &m1, &l1), ("v2", &m2, &l2)] {
        for auth in [alice.clone(), bearer(&tok)] {
            let r = request(
                "GET",
                &s.url(&format!("/v2/team-a/app/manifests/{tag}")),
                &[("Authorization", &auth), ("Accept", OCI)],
                Bytes::new(),
            )
            .await;
            assert_eq!((r.status, r.body.as_ref()), (200, m.as_bytes()));
            assert_eq!(r.header("docker-content-digest"), digest(m.as_bytes()));
            let b = request(
                "GET",
                &s.url(&format!("/v2/team-a/app/blobs/{}", digest(layer))),
                &[("Authorization", &auth)],
                Bytes::new(),
            )
            .await;
            assert_eq!((b.status, b.body.as_ref()), (200, layer.as_slice()));
        }
    }
    // Delete with the token that carries `delete`.
    let d = digest(m1.as_bytes());
    let r = request(
        "DELETE",
        &s.url(&format!("/v2/team-a/app/manifests/{d}")),
        &[("Authorization", &bearer(&tok))],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 202);
    // The token endpoint granted exactly what was asked and allowed: alice asked for push on
    // team-b too, and got only pull there.
    let t = token(&s, Some(&alice), &["repository:team-b/app:pull,push"]).await;
    let r = request(
        "POST",
        &s.url("/v2/team-b/app/blobs/uploads/"),
        &[("Authorization", &bearer(&t))],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(metric(&s, "ecr_proxy_auth_tokens_issued_total", "").await >= 2.0);
}

#[tokio::test]
async fn public_repositories_are_pulled_without_credentials() {
    let Some(s) = stack_with(
        &EXAMPLE.replace(
            r#"repositories = ["team-a/*"]"#,
            r#"repositories = ["team-a/*", "public/*"]"#,
        ),
        &[],
    )
    .await
    else {
        return;
    };
    let (m, layer) = push_image(&s, "public/base", "1.0", &basic("alice", "alice-pw"), 20).await;
    // No Authorization at all (curl), and an anonymous token (docker's flow).
    let anon = token(&s, None, &["repository:public/base:pull,push"]).await;
    for headers in [
        vec![("Accept", OCI)],
        vec![("Accept", OCI), ("Authorization", &*bearer(&anon))],
    ] {
        let r = request(
            "GET",
            &s.url("/v2/public/base/manifests/1.0"),
            &headers,
            Bytes::new(),
        )
        .await;
        assert_eq!((r.status, r.body.as_ref()), (200, m.as_bytes()));
    }
    let r = request(
        "GET",
        &s.url(&format!("/v2/public/base/blobs/{}", digest(&layer))),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!((r.status, r.body.as_ref()), (200, layer.as_slice()));
    // Pushing there still needs credentials: the anonymous token holds only pull.
    let r = request(
        "POST",
        &s.url("/v2/public/base/blobs/uploads/"),
        &[("Authorization", &bearer(&anon))],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "UNAUTHORIZED"),
        "sign in to push"
    );
    let r = request(
        "POST",
        &s.url("/v2/public/base/blobs/uploads/"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 401);
    let r = request("GET", &s.url("/v2/team-a/app/tags/list"), &[], Bytes::new()).await;
    assert_eq!(r.status, 401);
}

const CATALOG: &str = r#"
[auth]
htpasswd = "users.htpasswd"
anonymous_pull = ["public/*"]
[[auth.rules]]
subjects = ["alice"]
repositories = ["*"]
actions = ["pull", "push"]
[[auth.rules]]
subjects = ["bob"]
repositories = ["team-b/*"]
actions = ["pull"]
[[auth.rules]]
subjects = ["bob"]
repositories = ["secret/*"]
actions = ["catalog"]
"#;

#[tokio::test]
async fn the_catalog_lists_only_what_the_subject_may_pull_or_see() {
    let Some(s) = stack_with(CATALOG, &[]).await else {
        return;
    };
    let alice = basic("alice", "alice-pw");
    for (i, repo) in [
        "team-a/app",
        "team-b/app",
        "team-b/db",
        "public/base",
        "secret/x",
    ]
    .iter()
    .enumerate()
    {
        push_image(&s, repo, "v1", &alice, 30 + i as u64).await;
    }
    let list = |v: serde_json::Value| -> Vec<String> {
        v["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect()
    };
    let get = |auth: String, q: &'static str| {
        let url = s.url(&format!("/v2/_catalog{q}"));
        async move {
            let r = request("GET", &url, &[("Authorization", &auth)], Bytes::new()).await;
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            (
                serde_json::from_slice::<serde_json::Value>(&r.body).unwrap(),
                r.header("link").to_string(),
            )
        }
    };
    let bob = basic("bob", "bob-pw");
    let (v, _) = get(bob.clone(), "").await;
    assert_eq!(
        list(v),
        ["public/base", "secret/x", "team-b/app", "team-b/db"]
    );
    // Pages are of the filtered list.
    let (v, link) = get(bob.clone(), "?n=2").await;
    assert_eq!(list(v), ["public/base", "secret/x"]);
    assert!(link.contains("last=secret%2Fx"), "{link}");
    let (v, _) = get(alice.clone(), "").await;
    assert_eq!(list(v).len(), 5);
    // With a token: the catalog scope, filtered by the token's subject.
    let tok = token(&s, Some(&bob), &["registry:catalog:*"]).await;
    let (v, _) = get(bearer(&tok), "").await;
    assert_eq!(
        list(v),
        ["public/base", "secret/x", "team-b/app", "team-b/db"]
    );
    // A token without the catalog scope may not list.
    let other = token(&s, Some(&bob), &["repository:team-b/app:pull"]).await;
    let r = request(
        "GET",
        &s.url("/v2/_catalog"),
        &[("Authorization", &bearer(&other))],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 403);
    // Listing needs a signed-in subject, even where some repositories are public.
    let r = request("GET", &s.url("/v2/_catalog"), &[], Bytes::new()).await;
    assert_eq!(r.status, 401);
    let anon = token(&s, None, &["registry:catalog:*"]).await;
    let r = request(
        "GET",
        &s.url("/v2/_catalog"),
        &[("Authorization", &bearer(&anon))],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        r.status, 401,
        "an anonymous token holds no catalog scope: sign in"
    );
}

#[tokio::test]
async fn an_htpasswd_edit_takes_effect_without_a_restart() {
    let Some(s) = stack_with(EXAMPLE, &[]).await else {
        return;
    };
    let Some(carol) = htpasswd_line("carol", "carol-pw") else {
        return;
    };
    let Some(alice_new) = htpasswd_line("alice", "new-pw") else {
        return;
    };
    let v2 = |auth: String| {
        let url = s.url("/v2/");
        async move {
            request("GET", &url, &[("Authorization", &auth)], Bytes::new())
                .await
                .status
        }
    };
    assert_eq!(v2(basic("carol", "carol-pw")).await, 401);
    assert_eq!(v2(basic("alice", "alice-pw")).await, 200);
    let bob = htpasswd_line("bob", "bob-pw").unwrap();
    std::fs::write(
        s.conf().join("users.htpasswd"),
        format!("{alice_new}\n{bob}\n{carol}\n"),
    )
    .unwrap();
    // The file is looked at again at most once a second.
    let mut status = 0;
    for _ in 0..50 {
        status = v2(basic("carol", "carol-pw")).await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "carol signs in after the edit");
    assert_eq!(
        v2(basic("alice", "alice-pw")).await,
        401,
        "alice's old password, remembered before, no longer works"
    );
    assert_eq!(v2(basic("alice", "new-pw")).await, 200);
    // A broken edit keeps the last good file.
    std::fs::write(s.conf().join("users.htpasswd"), [0xff, 0xfe, 0x00]).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(v2(basic("carol", "carol-pw")).await, 200);
}

#[tokio::test]
async fn the_upload_cap_counts_per_subject() {
    let Some(s) = stack_with(
        &EXAMPLE
            .replace("[auth]", "[uploads]\nmax_uploads_per_client = 2\n[auth]")
            .replace(r#"subjects = ["alice"]"#, r#"subjects = ["alice", "bob"]"#),
        &[],
    )
    .await
    else {
        return;
    };
    let start = |auth: String| {
        let url = s.url("/v2/team-a/app/blobs/uploads/");
        async move { request("POST", &url, &[("Authorization", &auth)], Bytes::new()).await }
    };
    let alice = basic("alice", "alice-pw");
    assert_eq!(start(alice.clone()).await.status, 202);
    assert_eq!(start(alice.clone()).await.status, 202);
    let third = start(alice.clone()).await;
    assert_eq!(
        (third.status, third.error_code().as_str()),
        (429, "TOOMANYREQUESTS")
    );
    assert!(
        String::from_utf8_lossy(&third.body).contains("`alice`"),
        "{}",
        String::from_utf8_lossy(&third.body)
    );
    // Another subject from the same address has slots of its own.
    assert_eq!(start(basic("bob", "bob-pw")).await.status, 202);
    let tok = token(&s, Some(&alice), &["repository:team-a/app:push"]).await;
    assert_eq!(
        start(bearer(&tok)).await.status,
        429,
        "a token of alice's counts as alice"
    );
}

//! Where keys come from and when they are fetched again: discovery, a local JWKS file re-read
//! when replaced, a refetch for an unknown `kid` at most once per `REFETCH_GAP` (counted on the
//! test server), one fetch for many concurrent requests, the hourly refresh, and an issuer
//! that cannot be reached (with and without keys from before).

use super::*;
use crate::auth::oidc::source::{MAX_AGE, REFETCH_GAP};
use std::time::Duration;

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} did not happen within 5 s");
}

#[tokio::test]
async fn keys_are_found_through_discovery() {
    let key = TestKey::rsa("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let oidc = Oidc::new(&[config(&server.issuer(), None)]).unwrap();
    let claims = github_claims(&server.issuer(), "ecr-proxy", 300);
    oidc.verify(&key.sign(&claims)).await.unwrap();
    assert_eq!((server.discovery_hits(), server.jwks_hits()), (1, 1));
    // A refetch goes straight to the discovered URL.
    oidc.clock.advance(REFETCH_GAP + Duration::from_secs(1));
    let why = refused(oidc.verify(&TestKey::rsa("k2").sign(&claims)).await);
    assert!(why.contains("key `k2`"), "{why}");
    assert_eq!((server.discovery_hits(), server.jwks_hits()), (1, 2));
}

#[tokio::test]
async fn a_jwks_file_is_used_and_read_again_when_replaced() {
    let (old, new) = (TestKey::ec("2024"), TestKey::rsa("2025"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks(&[&old])).unwrap();
    let mut c = config("https://kubernetes.default.svc", None);
    c.jwks_file = Some(path.clone());
    let oidc = Oidc::new(&[c]).unwrap();
    let claims = github_claims("https://kubernetes.default.svc", "ecr-proxy", 300);
    oidc.verify(&old.sign(&claims)).await.unwrap();
    let why = refused(oidc.verify(&new.sign(&claims)).await);
    assert!(why.contains("key `2025`"), "{why}");
    // Rotation: the file is replaced (written aside, renamed over) with the new key only.
    let tmp = dir.path().join("jwks.json.tmp");
    std::fs::write(&tmp, jwks(&[&new])).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    tokio::time::sleep(crate::watch::CHECK_EVERY + Duration::from_millis(100)).await;
    oidc.verify(&new.sign(&claims)).await.unwrap();
    let why = refused(oidc.verify(&old.sign(&claims)).await);
    assert!(why.contains("key `2024`"), "{why}");
    // A file that is not a key set cannot be configured.
    std::fs::write(&path, "{}").unwrap();
    let mut c = config("https://k8s", None);
    c.jwks_file = Some(path);
    let e = Oidc::new(&[c]).err().unwrap().to_string();
    assert!(
        e.contains("auth.issuers `https://k8s`") && e.contains("JWKS file"),
        "{e}"
    );
}

#[tokio::test]
async fn an_unknown_kid_refetches_at_most_once_per_gap() {
    let (k1, k2) = (TestKey::rsa("k1"), TestKey::rsa("k2"));
    let (server, oidc) = served(&[&k1], "").await;
    let claims = github_claims(&server.issuer(), "ecr-proxy", 300);
    oidc.verify(&k1.sign(&claims)).await.unwrap();
    assert_eq!(server.jwks_hits(), 1);
    // The issuer rotates; its new key is not fetched until the gap has passed.
    server.set_jwks(jwks(&[&k1, &k2]));
    let t2 = k2.sign(&claims);
    assert!(refused(oidc.verify(&t2).await).contains("key `k2`"));
    assert_eq!(server.jwks_hits(), 1);
    oidc.clock.advance(REFETCH_GAP + Duration::from_secs(1));
    oidc.verify(&t2).await.unwrap();
    assert_eq!(server.jwks_hits(), 2);
    // A flood of made-up kids costs nothing more than the refused tokens.
    for i in 0..50 {
        let fake = TestKey::ec(&format!("random-{i}"));
        let why = refused(oidc.verify(&fake.sign(&claims)).await);
        assert!(why.contains(&format!("key `random-{i}`")), "{why}");
    }
    assert_eq!(server.jwks_hits(), 2);
    oidc.clock.advance(REFETCH_GAP + Duration::from_secs(1));
    refused(oidc.verify(&TestKey::ec("random-x").sign(&claims)).await);
    assert_eq!(server.jwks_hits(), 3);
}

#[tokio::test]
async fn concurrent_first_requests_fetch_once() {
    let key = TestKey::ec("k1");
    let (server, oidc) = served(&[&key], "").await;
    let oidc = std::sync::Arc::new(oidc);
    let claims = github_claims(&server.issuer(), "ecr-proxy", 300);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (oidc, jwt) = (oidc.clone(), key.sign(&claims));
            tokio::spawn(async move { oidc.verify(&jwt).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(server.jwks_hits(), 1);
}

#[tokio::test]
async fn keys_are_refreshed_in_the_background_after_an_hour() {
    let key = TestKey::ec("k1");
    let (server, oidc) = served(&[&key], "").await;
    let claims = github_claims(&server.issuer(), "ecr-proxy", 7200);
    oidc.verify(&key.sign(&claims)).await.unwrap();
    oidc.clock.advance(MAX_AGE + Duration::from_secs(1));
    oidc.verify(&key.sign(&claims)).await.unwrap();
    eventually("the background refresh", || server.jwks_hits() == 2).await;
    oidc.verify(&key.sign(&claims)).await.unwrap();
    assert_eq!(server.jwks_hits(), 2, "one refresh");
}

#[tokio::test]
async fn an_unreachable_issuer_is_unavailable_without_keys_and_harmless_with_them() {
    let addr = closed_addr().await;
    let iss = format!("http://{addr}");
    let url = format!("http://{addr}/jwks");
    let oidc = Oidc::new(&[config(&iss, Some(url.clone()))]).unwrap();
    let key = TestKey::ec("k1");
    let jwt = key.sign(&github_claims(&iss, "ecr-proxy", 300));
    for _ in 0..2 {
        match oidc.verify(&jwt).await {
            Err(Failure::Unavailable(why)) => {
                assert!(
                    why.contains(&format!("issuer `{iss}`")) && why.contains(&url),
                    "{why}"
                )
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
    // Keys fetched before keep working while the issuer is down, past the hourly refresh too
    // (the tokens live two hours, as the clock is moved past one).
    let (server, oidc) = served(&[&key], "").await;
    let claims = github_claims(&server.issuer(), "ecr-proxy", 7200);
    oidc.verify(&key.sign(&claims)).await.unwrap();
    server.set_jwks("not json".into());
    oidc.clock.advance(MAX_AGE + Duration::from_secs(1));
    oidc.verify(&key.sign(&claims)).await.unwrap();
    eventually("the failed refresh", || server.jwks_hits() == 2).await;
    oidc.verify(&key.sign(&claims)).await.unwrap();
    drop(server);
    oidc.clock.advance(REFETCH_GAP + Duration::from_secs(1));
    let why = refused(oidc.verify(&TestKey::ec("k9").sign(&claims)).await);
    assert!(why.contains("key `k9`"), "{why}");
    oidc.verify(&key.sign(&claims)).await.unwrap();
}

//! `Oidc` against a test issuer whose keys are generated when the test runs and whose JWKS is
//! served on 127.0.0.1 (`issuer`, shared with the proxy tests): what a right token maps to, and
//! every refusal with its `Failure`. How keys are fetched, cached and rotated: `tests/keys.rs`.

#[path = "../../../tests/proxy/oidc/issuer.rs"]
mod issuer;
mod keys;

use super::*;
use crate::auth::Kind;
use issuer::*;
use jsonwebtoken::{Algorithm, Header};
use serde_json::json;

fn config(iss: &str, jwks_url: Option<String>) -> Issuer {
    Issuer {
        issuer: iss.to_string(),
        audiences: vec!["ecr-proxy".into(), "registry".into()],
        jwks_url,
        jwks_file: None,
        subject_claim: "sub".into(),
        subject_prefix: String::new(),
    }
}

/// An issuer serving `keys`, and an `Oidc` trusting it through its `jwks_url`.
async fn served(keys: &[&TestKey], prefix: &str) -> (JwksServer, Oidc) {
    let server = JwksServer::start(jwks(keys)).await;
    let mut c = config(&server.issuer(), Some(server.jwks_url()));
    c.subject_prefix = prefix.to_string();
    let oidc = Oidc::new(&[c]).unwrap();
    (server, oidc)
}

fn refused(r: Result<Subject, Failure>) -> String {
    match r {
        Err(Failure::BadCredentials(why)) => why,
        other => panic!("expected BadCredentials, got {other:?}"),
    }
}

#[tokio::test]
async fn a_right_token_maps_to_its_subject_with_the_prefix_and_claims() {
    let (rsa, ec, ed) = (TestKey::rsa("r1"), TestKey::ec("e1"), TestKey::ed("d1"));
    let (server, oidc) = served(&[&rsa, &ec, &ed], "github:").await;
    let claims = github_claims(&server.issuer(), "ecr-proxy", 300);
    let s = oidc.verify(&rsa.sign(&claims)).await.unwrap();
    assert_eq!(&*s.name, "github:repo:org/app:ref:refs/heads/main");
    assert_eq!(s.kind, Kind::Oidc);
    assert_eq!(
        s.claims.get("ref").map(String::as_str),
        Some("refs/heads/main")
    );
    assert_eq!(s.claims.get("run_number").map(String::as_str), Some("42"));
    assert_eq!(s.claims.get("iss"), Some(&server.issuer()));
    assert!(
        !s.claims.contains_key("groups"),
        "arrays are not claims rules match"
    );
    // EC and Ed25519 keys of the same set; `aud` as a list holding one accepted audience.
    let mut listed = claims.clone();
    listed["aud"] = json!(["sts.amazonaws.com", "registry"]);
    for key in [&ec, &ed] {
        let s = oidc.verify(&key.sign(&listed)).await.unwrap();
        assert_eq!(&*s.name, "github:repo:org/app:ref:refs/heads/main");
    }
    // The set was fetched once; a token seen before is not verified again.
    let again = rsa.sign(&claims);
    oidc.verify(&again).await.unwrap();
    assert_eq!(oidc.verified.len(), 3);
    assert_eq!(server.jwks_hits(), 1);
}

#[tokio::test]
async fn a_custom_subject_claim_is_used_and_a_missing_one_named() {
    let key = TestKey::ec("k");
    let server = JwksServer::start(jwks(&[&key])).await;
    let mut c = config(&server.issuer(), Some(server.jwks_url()));
    c.subject_claim = "repository".into();
    c.subject_prefix = "gh:".into();
    let oidc = Oidc::new(&[c]).unwrap();
    let mut claims = github_claims(&server.issuer(), "ecr-proxy", 300);
    assert_eq!(
        &*oidc.verify(&key.sign(&claims)).await.unwrap().name,
        "gh:org/app"
    );
    claims.as_object_mut().unwrap().remove("repository");
    let why = refused(oidc.verify(&key.sign(&claims)).await);
    assert!(why.contains("no `repository` claim"), "{why}");
}

#[tokio::test]
async fn wrong_audience_issuer_and_expired_tokens_are_refused() {
    let key = TestKey::rsa("k1");
    let (server, oidc) = served(&[&key], "").await;
    let iss = server.issuer();
    let why = refused(
        oidc.verify(&key.sign(&github_claims(&iss, "sts.amazonaws.com", 300)))
            .await,
    );
    assert!(
        why.contains("`sts.amazonaws.com`")
            && why.contains("expected one of: `ecr-proxy`, `registry`"),
        "{why}"
    );
    let why = refused(
        oidc.verify(&key.sign(&github_claims("https://evil.example", "ecr-proxy", 300)))
            .await,
    );
    assert!(
        why.contains("issuer `https://evil.example` is not accepted") && why.contains(&iss),
        "{why}"
    );
    // Past `exp` by more than the leeway; within it, still good.
    let expired = key.sign(&github_claims(&iss, "ecr-proxy", -120));
    assert_eq!(oidc.verify(&expired).await, Err(Failure::Expired));
    oidc.verify(&key.sign(&github_claims(&iss, "ecr-proxy", -30)))
        .await
        .unwrap();
    // No `exp`, no `aud`, `nbf` ahead.
    for (claim, value, says) in [
        ("exp", None, "no `exp` claim"),
        ("aud", None, "no `aud` claim"),
        ("nbf", Some(json!(now() + 600)), "not valid yet"),
        ("exp", Some(json!("soon")), "`exp` claim is not a number"),
    ] {
        let mut c = github_claims(&iss, "ecr-proxy", 300);
        match value {
            Some(v) => c[claim] = v,
            None => drop(c.as_object_mut().unwrap().remove(claim)),
        }
        let why = refused(oidc.verify(&key.sign(&c)).await);
        assert!(why.contains(says), "{claim}: {why}");
    }
}

#[tokio::test]
async fn a_cached_token_is_refused_once_expired() {
    let key = TestKey::ec("k1");
    let (server, oidc) = served(&[&key], "").await;
    let jwt = key.sign(&github_claims(&server.issuer(), "ecr-proxy", 100));
    oidc.verify(&jwt).await.unwrap();
    assert_eq!(oidc.verified.len(), 1);
    oidc.clock.advance(std::time::Duration::from_secs(200));
    assert_eq!(oidc.verify(&jwt).await, Err(Failure::Expired));
    assert_eq!(oidc.verified.len(), 0);
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let key = TestKey::rsa("k1");
    let other = TestKey::rsa("k1");
    let (server, oidc) = served(&[&key], "").await;
    let claims = github_claims(&server.issuer(), "ecr-proxy", 300);
    // Signed by another key under the issuer's kid.
    let why = refused(oidc.verify(&other.sign(&claims)).await);
    assert!(
        why.starts_with("bad signature") && why.contains("key `k1`"),
        "{why}"
    );
    // `alg: none`: the issuer's header with the algorithm replaced and no signature.
    let good = key.sign(&claims);
    let payload = good.split('.').nth(1).unwrap();
    let none_header = base64_simd::URL_SAFE_NO_PAD.encode_to_string(r#"{"alg":"none","kid":"k1"}"#);
    let why = refused(oidc.verify(&format!("{none_header}.{payload}.x")).await);
    assert!(why.contains("alg: none"), "{why}");
    // HS256 "signed" with the issuer's public key as the secret.
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("k1".into());
    let hs = jsonwebtoken::encode(
        &h,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&key.public),
    )
    .unwrap();
    let why = refused(oidc.verify(&hs).await);
    assert!(why.contains("`alg: HS256` is not accepted"), "{why}");
    // The key's algorithm is pinned to RS256: a PS256 token under its kid is refused.
    let mut ps = Header::new(Algorithm::PS256);
    ps.kid = Some("k1".into());
    let why = refused(oidc.verify(&key.sign_with(ps, &claims)).await);
    assert!(
        why.contains("algorithm is PS256") && why.contains("key `k1`"),
        "{why}"
    );
    // A tampered payload under a good signature.
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let mut c = claims.clone();
    c["sub"] = json!("repo:org/other:ref:refs/heads/main");
    parts[1] = base64_simd::URL_SAFE_NO_PAD.encode_to_string(c.to_string());
    let why = refused(oidc.verify(&parts.join(".")).await);
    assert!(why.starts_with("bad signature"), "{why}");
    // Nothing of the tokens is echoed.
    assert!(!why.contains(&parts[1]) && !why.contains(&parts[2]));
}

#[tokio::test]
async fn a_token_without_kid_uses_the_only_key_of_its_type() {
    let (rsa, ec) = (TestKey::rsa("r1"), TestKey::ec("e1"));
    let (server, oidc) = served(&[&rsa, &ec], "").await;
    let claims = github_claims(&server.issuer(), "ecr-proxy", 300);
    for key in [&rsa, &ec] {
        oidc.verify(&key.sign_with(Header::new(key.alg), &claims))
            .await
            .unwrap();
    }
    // Two RSA keys: a token without kid cannot pick one.
    let rsa2 = TestKey::rsa("r2");
    let (server, oidc) = served(&[&rsa, &rsa2], "").await;
    let claims = github_claims(&server.issuer(), "ecr-proxy", 300);
    let why = refused(
        oidc.verify(&rsa.sign_with(Header::new(Algorithm::RS256), &claims))
            .await,
    );
    assert!(
        why.contains("names no key") && why.contains("has 2 RS256 keys"),
        "{why}"
    );
}

#[test]
fn the_jwt_shape_is_recognised() {
    assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
    assert!(!looks_like_jwt("hunter2"));
    assert!(!looks_like_jwt("a.b"));
    assert!(!looks_like_jwt("a.b.c.d"));
    assert!(!looks_like_jwt("a.b.c=d"));
}

//! Tokens: what they carry, who signed them, how long they last.

use super::*;
use crate::auth::Action;

fn tokens(ttl: u64) -> Tokens {
    Tokens::new(None, "ecr-proxy", Duration::from_secs(ttl)).unwrap()
}

#[test]
fn a_token_carries_its_subject_and_exactly_its_access() {
    let t = tokens(300);
    let mut alice = Subject::new("alice", Kind::Password);
    alice.claims = Arc::new(BTreeMap::from([("ref".into(), "main".into())]));
    let issued = t.issue(
        &alice,
        vec![Access::repository("team-a/app", &[Action::Pull])],
    );
    assert_eq!(issued.expires_in, 300);
    let v = t.verify(&issued.token).unwrap();
    assert_eq!(
        (&v.subject.name, v.subject.kind, &v.subject.claims),
        (&alice.name, alice.kind, &alice.claims)
    );
    assert_eq!(v.subject.expires, Some(issued.issued_at + 300));
    assert!(v.access[0].allows("team-a/app", Action::Pull));
    assert!(!v.access[0].allows("team-a/app", Action::Push));
    // The cached answer is the same.
    assert_eq!(t.verify(&issued.token).unwrap().subject.name, alice.name);
}

#[test]
fn tokens_of_another_key_or_service_or_tampered_are_refused() {
    let t = tokens(300);
    let other = tokens(300);
    let issued = other.issue(&Subject::new("alice", Kind::Password), vec![]);
    assert!(matches!(
        t.verify(&issued.token),
        Err(Failure::BadCredentials(_))
    ));
    let other_service = Tokens::new(None, "elsewhere", Duration::from_secs(300)).unwrap();
    let issued = other_service.issue(&Subject::new("alice", Kind::Password), vec![]);
    assert!(t.verify(&issued.token).is_err());
    let good = t.issue(&Subject::new("bob", Kind::Password), vec![]).token;
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &serde_json::json!({"iss":"ecr-proxy","aud":"ecr-proxy","sub":"alice","exp": now() + 60}),
        &EncodingKey::from_secret(b"guessed"),
    )
    .unwrap();
    let forged_payload = forged.split('.').nth(1).unwrap().to_string();
    parts[1] = &forged_payload;
    assert!(t.verify(&parts.join(".")).is_err());
    assert!(t.verify("not-a-token").is_err());
}

#[test]
fn an_expired_token_is_refused_as_expired() {
    let t = tokens(300);
    let expired = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &serde_json::json!({"iss":"ecr-proxy","aud":"ecr-proxy","sub":"alice","exp": now() - 60,
            "nbf": now() - 120, "iat": now() - 120, "jti": "x", "access": [], "kind": "password"}),
        &t.encoding,
    )
    .unwrap();
    assert_eq!(t.verify(&expired).unwrap_err(), Failure::Expired);
}

#[test]
fn a_short_key_file_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("key");
    std::fs::write(&p, "short\n").unwrap();
    let e = Tokens::new(Some(&p), "ecr-proxy", Duration::from_secs(60))
        .err()
        .unwrap();
    assert!(e.to_string().contains("/dev/urandom"), "{e}");
    std::fs::write(&p, "0123456789abcdef0123456789abcdef\n").unwrap();
    let a = Tokens::new(Some(&p), "ecr-proxy", Duration::from_secs(60)).unwrap();
    let b = Tokens::new(Some(&p), "ecr-proxy", Duration::from_secs(60)).unwrap();
    let tok = a.issue(&Subject::new("x", Kind::Password), vec![]).token;
    assert!(
        b.verify(&tok).is_ok(),
        "replicas with one key file accept each other's tokens"
    );
}

#[test]
fn issued_at_is_rfc3339() {
    let at = |issued_at| {
        Issued {
            token: String::new(),
            expires_in: 0,
            issued_at,
        }
        .issued_at_rfc3339()
    };
    assert_eq!(at(0), "1970-01-01T00:00:00Z");
    assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(at(1_795_894_245), "2026-11-28T19:30:45Z");
}

#[test]
fn a_token_expires_no_later_than_the_credential_it_came_from() {
    let t = tokens(86_400);
    let mut oidc = Subject::new("repo:org/app", Kind::Oidc);
    oidc.expires = Some(now() + 120);
    let issued = t.issue(&oidc, vec![]);
    assert!(issued.expires_in <= 120, "{}", issued.expires_in);
    assert!(t.verify(&issued.token).unwrap().expires <= now() + 120);
}

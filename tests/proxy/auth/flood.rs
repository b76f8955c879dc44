//! An attacker guessing passwords: each bcrypt check costs CPU by design, so checks run a few at
//! a time (`auth.max_password_checks`). A flood of wrong passwords must not stop a signed-in
//! client (a token costs no bcrypt), and every guess still gets its 401.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[tokio::test]
async fn a_flood_of_wrong_passwords_does_not_stop_clients_with_tokens() {
    if !tool_on_path("htpasswd") {
        return;
    }
    // alice's hash at cost 10 (about 2^5 times htpasswd's default): each wrong guess costs
    // tens of milliseconds of CPU.
    let out = std::process::Command::new("htpasswd")
        .args(["-nbB", "-C", "10", "alice", "alice-pw"])
        .output()
        .unwrap();
    let alice_line = String::from_utf8(out.stdout).unwrap();
    let s = Stack::start_config(
        &EXAMPLE.replace("[auth]", "[auth]\nmax_password_checks = 1"),
        &[
            ("users.htpasswd", alice_line.as_bytes()),
            ("token.key", KEY),
        ],
        &[("ECR_PROXY_BLOB_MODE", "stream")],
    )
    .await;
    let alice = basic("alice", "alice-pw");
    let (m, _) = push_image(&s, "team-a/app", "v1", &alice, 40).await;
    let tok = bearer(&token(&s, Some(&alice), &["repository:team-a/app:pull"]).await);
    const GUESSES: usize = 40;
    let answered = Arc::new(AtomicUsize::new(0));
    let mut flood = Vec::new();
    for i in 0..GUESSES {
        let url = s.url("/v2/team-a/app/manifests/v1");
        let answered = answered.clone();
        flood.push(tokio::spawn(async move {
            let guess = basic("alice", &format!("guess-{i}"));
            let r = request("GET", &url, &[("Authorization", &guess)], Bytes::new()).await;
            answered.fetch_add(1, Ordering::SeqCst);
            r.status
        }));
    }
    // Wait until the guesses are queued behind the one bcrypt slot.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for _ in 0..20 {
        let r = request(
            "GET",
            &s.url("/v2/team-a/app/manifests/v1"),
            &[("Authorization", &tok), ("Accept", OCI)],
            Bytes::new(),
        )
        .await;
        assert_eq!((r.status, r.body.as_ref()), (200, m.as_bytes()));
    }
    let during = answered.load(Ordering::SeqCst);
    assert!(
        during < GUESSES,
        "alice's 20 pulls with a token finished only after all {GUESSES} guesses were checked"
    );
    for f in flood {
        assert_eq!(f.await.unwrap(), 401);
    }
    assert!(metric(&s, "ecr_proxy_auth_denials_total", "bad_credentials").await >= GUESSES as f64);
}

//! What a refusal leaves in the log of a real `ecr-proxy serve` process: a DEBUG line naming the
//! subject and the rule that decided, and the request's access line with the subject and the
//! code.

use super::*;
use crate::access_log::Served;

#[tokio::test]
async fn a_denial_is_logged_with_the_subject_and_the_rule() {
    let Some(bob) = htpasswd_line("bob", "bob-pw") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.htpasswd"), format!("{bob}\n")).unwrap();
    std::fs::write(dir.path().join("token.key"), KEY).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, EXAMPLE).unwrap();
    let mut p = Served::start_with(
        "warn,ecr_proxy=debug",
        &["--config".as_ref(), config.as_os_str()],
    );
    let r = request(
        "POST",
        &p.url("/v2/team-a/app/blobs/uploads/"),
        &[
            ("Authorization", &basic("bob", "bob-pw")),
            ("x-request-id", "denied-1"),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 403);
    let denial = p.wait_for("the denial's DEBUG line", |l| {
        l["fields"]["message"] == "denied by the access rules"
    });
    assert_eq!(denial["level"], "DEBUG");
    let f = &denial["fields"];
    assert_eq!(
        (
            f["subject"].as_str(),
            f["repository"].as_str(),
            f["action"].as_str(),
            f["rule"].as_str()
        ),
        (
            Some("bob"),
            Some("team-a/app"),
            Some("push"),
            Some("auth.rules #2")
        )
    );
    let access = p.access_lines("denied-1");
    let a = &access[0]["fields"];
    assert_eq!(
        (
            a["status"].as_u64(),
            a["code"].as_str(),
            a["subject"].as_str(),
            a["route"].as_str()
        ),
        (Some(403), Some("DENIED"), Some("bob"), Some("upload"))
    );
}

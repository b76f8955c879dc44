//! The issue's front-door configuration exactly as written (htpasswd, two rules, `[tls]` with
//! relative paths), with real clients: skopeo pushes as alice with `--dest-creds` over verified
//! TLS and pulls as bob with `--src-creds`; bob's push and a wrong password are refused; an
//! anonymous request gets the challenge with an `https://` realm.

use super::*;
use crate::auth::{basic, htpasswd_line};

const AS_WRITTEN: &str = r#"
[auth]
htpasswd = "users.htpasswd"
[[auth.rules]]
subjects = ["alice"]
repositories = ["team-a/*"]
actions = ["pull", "push", "delete"]
[[auth.rules]]
subjects = ["*"]
repositories = ["*"]
actions = ["pull"]
[tls]
cert = "server.crt"
key = "server.key"
"#;

#[tokio::test]
async fn the_issue_s_configuration_works_as_written_with_skopeo_over_tls() {
    if !tool_available("skopeo", "--version") {
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary directory");
    let Some(pki) = Pki::create(&tmp.path().join("pki")) else {
        return;
    };
    let (Some(alice), Some(bob)) = (
        htpasswd_line("alice", "alice-pw"),
        htpasswd_line("bob", "bob-pw"),
    ) else {
        return;
    };
    let users = format!("{alice}\n{bob}\n");
    let (crt, key) = (
        std::fs::read(pki.path("server.crt")).unwrap(),
        std::fs::read(pki.path("server.key")).unwrap(),
    );
    let s = Stack::start_config(
        AS_WRITTEN,
        &[
            ("users.htpasswd", users.as_bytes()),
            ("server.crt", &crt),
            ("server.key", &key),
        ],
        &[],
    )
    .await;
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(pki.path("ca.crt"), certs.join("ca.crt")).unwrap();
    let certs = certs.display().to_string();

    // Anonymous: 401 with the challenge pointing at this server's https token endpoint.
    let out = curl(&[
        "--cacert",
        &pki.arg("ca.crt"),
        "-D",
        "-",
        "-o",
        "/dev/null",
        &format!("https://{}/v2/", s.host()),
    ])
    .await;
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        head.starts_with("http/2 401") || head.starts_with("http/1.1 401"),
        "{head}"
    );
    assert!(
        head.contains(&format!(
            "www-authenticate: bearer realm=\"https://{}/token\",service=\"ecr-proxy\"",
            s.host()
        )),
        "{head}"
    );

    let src = OciLayout::create(&tmp.path().join("src"));
    let manifest = src.image("amd64", &[data(7, 300 * 1024)]);
    src.tag("v1", OCI_MANIFEST, &manifest);
    let remote = format!("docker://{}/team-a/app:v1", s.host());
    let from = format!("oci:{}:v1", src.dir.display());
    skopeo(
        tmp.path(),
        &[
            "copy",
            "--dest-cert-dir",
            &certs,
            "--dest-creds",
            "alice:alice-pw",
            "--preserve-digests",
            &from,
            &remote,
        ],
    )
    .await;
    let out = OciLayout {
        dir: tmp.path().join("out"),
    };
    skopeo(
        tmp.path(),
        &[
            "copy",
            "--src-cert-dir",
            &certs,
            "--src-creds",
            "bob:bob-pw",
            "--preserve-digests",
            &remote,
            &format!("oci:{}:v1", out.dir.display()),
        ],
    )
    .await;
    assert_eq!(
        out.tagged("v1").expect("pulled")["digest"],
        digest(&manifest).as_str()
    );
    assert!(
        out.blobs() == src.blobs(),
        "bob pulled alice's image byte for byte"
    );

    // bob may not push, and a wrong password is refused: skopeo fails, saying so.
    for (creds, want) in [("bob:bob-pw", "denied"), ("alice:wrong", "unauthorized")] {
        let dest = format!("docker://{}/team-a/app:v2", s.host());
        let run = skopeo_output(
            tmp.path(),
            &[
                "copy",
                "--dest-cert-dir",
                &certs,
                "--dest-creds",
                creds,
                &from,
                &dest,
            ],
        )
        .await;
        let err = String::from_utf8_lossy(&run.stderr).to_lowercase();
        assert!(
            !run.status.success() && err.contains(want),
            "{creds}: {err}"
        );
    }
    // The same with Basic credentials on a plain request over TLS.
    let status = curl_status(&[
        "--cacert",
        &pki.arg("ca.crt"),
        "-H",
        &format!("Authorization: {}", basic("bob", "bob-pw")),
        "-X",
        "POST",
        &format!("https://{}/v2/team-a/app/blobs/uploads/", s.host()),
    ])
    .await;
    assert!(status.starts_with("403"), "{status}");
}

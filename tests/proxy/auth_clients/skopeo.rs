//! skopeo against the authenticating proxy: an OCI layout copied in with `--dest-creds` as
//! alice and back out with `--src-creds` as bob, every blob byte for byte; bob pushing and
//! wrong passwords either way are refused with skopeo's own message.

use super::*;

/// `skopeo --insecure-policy ARGS` with its state in `home` (as `support::skopeo`), expected to
/// fail; what it printed.
async fn skopeo_refused(home: &std::path::Path, args: &[&str]) -> String {
    let out = skopeo_output(home, args).await;
    assert!(!out.status.success(), "skopeo {args:?}: {}", describe(&out));
    printed(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pushes_as_alice_and_pulls_as_bob_byte_for_byte() {
    if !tool_available("skopeo", "--version") {
        return;
    }
    let Some(s) = stack_with(EXAMPLE, &[]).await else {
        return;
    };
    let home = tempfile::tempdir().expect("temporary directory");
    let (layout, manifest, _) = image_layout(
        &home.path().join("in"),
        "v1",
        40,
        &[100 * 1024, 3 * MIB + 5],
    );
    let source = format!("oci:{}:v1", layout.dir.display());
    let remote = format!("docker://{}/team-a/app:v1", s.host());
    skopeo(
        home.path(),
        &[
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:alice-pw",
            &source,
            &remote,
        ],
    )
    .await;
    assert_eq!(
        ecr_manifest(&s, "team-a/app", "v1").await.as_ref(),
        manifest.as_slice(),
        "the manifest is stored byte for byte"
    );

    // `--preserve-digests`: an `oci:` destination would otherwise gzip the tar layers.
    let out = home.path().join("out");
    skopeo(
        home.path(),
        &[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--src-creds",
            "bob:bob-pw",
            &remote,
            &format!("oci:{}:v1", out.display()),
        ],
    )
    .await;
    let pulled = OciLayout { dir: out };
    assert_eq!(
        pulled.tagged("v1").expect("tagged v1")["digest"],
        digest(&manifest).as_str()
    );
    assert!(
        pulled.blobs() == layout.blobs(),
        "bob's copy holds exactly alice's blobs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_as_bob_may_not_push_and_wrong_passwords_are_refused() {
    if !tool_available("skopeo", "--version") {
        return;
    }
    let Some(s) = stack_with(EXAMPLE, &[]).await else {
        return;
    };
    let home = tempfile::tempdir().expect("temporary directory");
    let (layout, manifest, _) = image_layout(&home.path().join("in"), "v1", 50, &[64 * 1024]);
    let source = format!("oci:{}:v1", layout.dir.display());
    let remote = |repo: &str| format!("docker://{}/{repo}:v1", s.host());

    let said = skopeo_refused(
        home.path(),
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "bob:bob-pw",
            &source,
            &remote("team-a/app"),
        ],
    )
    .await;
    assert!(
        said.contains("denied: requested access to the resource is denied"),
        "{said}"
    );
    let said = skopeo_refused(
        home.path(),
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:wrong",
            &source,
            &remote("team-a/app"),
        ],
    )
    .await;
    assert!(said.contains("unauthorized"), "{said}");
    assert_eq!(
        ecr_image_count(&s, "team-a/app").await,
        0,
        "nothing reached ECR"
    );

    // Pulling with a wrong password is refused too, once there is something to pull.
    push_layout(
        &s,
        &layout,
        &manifest,
        "team-a/app",
        "v1",
        &basic("alice", "alice-pw"),
    )
    .await;
    let said = skopeo_refused(
        home.path(),
        &[
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            "bob:wrong",
            &remote("team-a/app"),
            &format!("oci:{}:v1", home.path().join("out").display()),
        ],
    )
    .await;
    assert!(said.contains("unauthorized"), "{said}");
    assert!(metric(&s, "ecr_proxy_auth_denials_total", "bad_credentials").await >= 2.0);
}

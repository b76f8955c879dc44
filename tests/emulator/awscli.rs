//! The AWS CLI v1 examples from the issue, run against the emulator: create-repository, the
//! three-step layer upload of an 8,323,315-byte file, then read commands. botocore signs and
//! serialises on its own, so these passing also proves the SigV4 verifier against a second signer.
//! Without `aws` on PATH the tests say SKIPPED and pass, except under CI=true where they fail.

use crate::support::{data, sha256, Env};
use serde_json::Value;
use std::process::{Command, Output};

/// Whether to run: `aws` must be on PATH; under CI=true its absence is a failure.
fn have_cli() -> bool {
    if Command::new("aws")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("the AWS CLI (`aws`) is not on PATH, and CI=true requires these tests to run: install it with `python3 -m pip install awscli` (tests/run does)");
    }
    crate::support::skipped(
        "aws (the AWS CLI) not installed: tests/run installs it into target/test-tools",
    );
    false
}

/// Run `aws --endpoint-url <emulator> ecr <args>` with test credentials and no user config.
async fn aws(env: &Env, args: &[&str]) -> Output {
    let mut cmd = Command::new("aws");
    cmd.arg("--endpoint-url")
        .arg(env.endpoint())
        .args(["--output", "json", "ecr"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", env.dir.path().join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            env.dir.path().join("no-aws-credentials"),
        )
        .env("AWS_MAX_ATTEMPTS", "1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_ECR");
    // The emulator runs on this test's runtime: wait for the CLI on a blocking thread.
    tokio::task::spawn_blocking(move || cmd.output().expect("run aws"))
        .await
        .expect("aws finished")
}

/// Run a command that must succeed; its JSON output.
async fn aws_ok(env: &Env, args: &[&str]) -> Value {
    let out = aws(env, args).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "aws ecr {args:?} failed: {stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("aws ecr {args:?} printed no JSON ({e}): {stderr}"))
}

#[tokio::test]
async fn cli_pushes_a_layer_with_the_documented_commands() {
    if !have_cli() {
        return;
    }
    let env = Env::start().await;
    let created = aws_ok(
        &env,
        &["create-repository", "--repository-name", "layer-test"],
    )
    .await;
    assert_eq!(created["repository"]["repositoryName"], "layer-test");
    assert_eq!(
        created["repository"]["repositoryUri"],
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/layer-test"
    );

    let initiated = aws_ok(
        &env,
        &["initiate-layer-upload", "--repository-name", "layer-test"],
    )
    .await;
    assert_eq!(initiated["partSize"], 10485760);
    let upload_id = initiated["uploadId"]
        .as_str()
        .expect("an uploadId")
        .to_string();

    let bytes = data(1, 8_323_315);
    let file = env.dir.path().join("layer.bin");
    std::fs::write(&file, &bytes).unwrap();
    let blob_arg = format!("fileb://{}", file.display());
    let uploaded = aws_ok(
        &env,
        &[
            "upload-layer-part",
            "--repository-name",
            "layer-test",
            "--upload-id",
            &upload_id,
            "--part-first-byte",
            "0",
            "--part-last-byte",
            "8323314",
            "--layer-part-blob",
            &blob_arg,
        ],
    )
    .await;
    assert_eq!(uploaded["lastByteReceived"], 8323314);
    assert_eq!(uploaded["uploadId"], upload_id.as_str());

    let digest = sha256(&bytes);
    let completed = aws_ok(
        &env,
        &[
            "complete-layer-upload",
            "--repository-name",
            "layer-test",
            "--upload-id",
            &upload_id,
            "--layer-digests",
            &digest,
        ],
    )
    .await;
    assert_eq!(completed["layerDigest"], digest.as_str());
    assert_eq!(
        env.emu.layer_parts("layer-test", &digest),
        Some(vec![8_323_315])
    );

    let checked = aws_ok(
        &env,
        &[
            "batch-check-layer-availability",
            "--repository-name",
            "layer-test",
            "--layer-digests",
            &digest,
        ],
    )
    .await;
    assert_eq!(checked["layers"][0]["layerDigest"], digest.as_str());
    assert_eq!(checked["layers"][0]["layerAvailability"], "AVAILABLE");
    assert_eq!(checked["layers"][0]["layerSize"], 8_323_315);
}

#[tokio::test]
async fn cli_reads_and_sees_errors() {
    if !have_cli() {
        return;
    }
    let env = Env::start().await;
    env.repo("team/app").await;
    env.repo("team/web").await;
    let described = aws_ok(&env, &["describe-repositories"]).await;
    let names: Vec<&str> = described["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repositoryName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["team/app", "team/web"]);
    let token = aws_ok(&env, &["get-authorization-token"]).await;
    assert_eq!(
        token["authorizationData"][0]["proxyEndpoint"],
        "https://123456789012.dkr.ecr.us-east-1.amazonaws.com"
    );

    let missing = aws(
        &env,
        &["describe-repositories", "--repository-names", "nope"],
    )
    .await;
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("RepositoryNotFoundException"), "{stderr}");
}

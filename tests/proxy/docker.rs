//! docker push through the proxy: an image built here `FROM scratch` (one layer per COPY, one of
//! them large and incompressible) is pushed, pushed again (every layer already exists), and found
//! in the emulator under its tag with the digest docker printed.

use crate::support::*;
use std::process::Output;

const PART: u64 = 10 * MIB as u64;

/// Sizes of the files copied into the image, one layer each; the last one is the large one.
const FILES: [usize; 4] = [1024, 3 * MIB + 7, 12 * MIB, 52 * MIB];

/// Removes the image from the local engine when the test ends, passed or failed.
struct RemoveImage(String);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", &self.0])
            .output();
    }
}

async fn docker(args: &[&str]) -> Output {
    tokio::process::Command::new("docker")
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("docker runs")
}

fn describe(out: &Output) -> String {
    format!(
        "exit {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `(digest, size)` of docker push's `TAG: digest: sha256:… size: N` line.
fn pushed_digest(stdout: &str) -> Option<(String, u64)> {
    stdout.lines().find_map(|line| {
        let rest = &line[line.find("digest: ")? + "digest: ".len()..];
        let (digest, size) = rest.split_once(" size: ")?;
        Some((digest.trim().to_string(), size.trim().parse().ok()?))
    })
}

/// The layer ids docker reports with `status` (`<id>: <status>` lines), deduplicated.
fn layers_with(stdout: &str, status: &str) -> Vec<String> {
    let mut ids: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.trim().strip_suffix(status)?.strip_suffix(": "))
        .map(str::to_string)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_push_then_push_again() {
    if !tool_available("docker", "version") {
        return;
    }
    let stack = Stack::start().await;
    let port = stack.proxy.addr().port();
    let repo = format!("dockertest/push-{port}");
    let tag = format!("t{}", std::process::id());
    let image = format!("{}/{repo}:{tag}", stack.host());

    let ctx = tempfile::tempdir().expect("temporary directory");
    let mut dockerfile = String::from("FROM scratch\n");
    for (i, &len) in FILES.iter().enumerate() {
        std::fs::write(ctx.path().join(format!("f{i}")), data(200 + i as u64, len)).unwrap();
        dockerfile.push_str(&format!("COPY f{i} /f{i}\n"));
    }
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();

    let _cleanup = RemoveImage(image.clone());
    let ctx_path = ctx.path().to_str().unwrap();
    let built = docker(&["build", "-t", &image, ctx_path]).await;
    assert!(built.status.success(), "docker build: {}", describe(&built));

    let first = docker(&["push", &image]).await;
    assert!(
        first.status.success(),
        "first docker push: {}",
        describe(&first)
    );
    let first_out = String::from_utf8_lossy(&first.stdout).to_string();
    let (pushed, size) = pushed_digest(&first_out)
        .unwrap_or_else(|| panic!("no digest line in docker push output: {}", describe(&first)));
    let layer_ids = layers_with(&first_out, "Pushed");
    assert_eq!(
        layer_ids.len(),
        FILES.len(),
        "every layer is pushed: {}",
        describe(&first)
    );

    let again = docker(&["push", &image]).await;
    assert!(
        again.status.success(),
        "second docker push: {}",
        describe(&again)
    );
    let again_out = String::from_utf8_lossy(&again.stdout).to_string();
    assert_eq!(
        layers_with(&again_out, "Layer already exists"),
        layer_ids,
        "every layer already exists on the second push: {}",
        describe(&again)
    );
    assert!(
        layers_with(&again_out, "Pushed").is_empty(),
        "{}",
        describe(&again)
    );
    assert_eq!(
        pushed_digest(&again_out),
        Some((pushed.clone(), size)),
        "{}",
        describe(&again)
    );

    // In ECR under the tag, with the digest docker printed.
    let listed = stack
        .ecr
        .list_images()
        .repository_name(&repo)
        .send()
        .await
        .expect("ListImages");
    assert!(
        listed
            .image_ids()
            .iter()
            .any(|id| id.image_tag() == Some(tag.as_str())
                && id.image_digest() == Some(pushed.as_str())),
        "ListImages: {:?}",
        listed.image_ids()
    );
    let got = stack
        .ecr
        .batch_get_image()
        .repository_name(&repo)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(&tag)
                .build(),
        )
        .send()
        .await
        .expect("BatchGetImage");
    assert!(got.failures().is_empty(), "failures: {:?}", got.failures());
    let stored = got.images().first().expect("the image is in ECR");
    let manifest = stored.image_manifest().unwrap_or_default();
    assert_eq!(
        stored.image_id().and_then(|id| id.image_digest()),
        Some(pushed.as_str())
    );
    assert_eq!(digest(manifest.as_bytes()), pushed);
    assert_eq!(manifest.len() as u64, size);

    // Every layer went up in exact 10 MiB parts and a shorter last one.
    let m: serde_json::Value = serde_json::from_str(manifest).expect("manifest is JSON");
    let layers = m["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), FILES.len());
    for l in layers {
        let d = l["digest"].as_str().unwrap();
        let parts = stack.emu.layer_parts(&repo, d).expect("layer in ECR");
        let (last, full) = parts.split_last().unwrap();
        assert!(
            full.iter().all(|&p| p == PART) && *last <= PART && *last > 0,
            "parts of {d}: {parts:?}"
        );
        assert_eq!(parts.iter().sum::<u64>(), l["size"].as_u64().unwrap());
    }
}

/// Removes a container from the local engine when the test ends, passed or failed.
struct RemoveContainer(String);

impl Drop for RemoveContainer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.0])
            .output();
    }
}

/// `docker image inspect --format FORMAT IMAGE`, trimmed; `None` when the engine lacks it.
async fn inspect(image: &str, format: &str) -> Option<String> {
    let out = docker(&["image", "inspect", "--format", format, image]).await;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_pull_after_push() {
    if !tool_available("docker", "version") {
        return;
    }
    let stack = Stack::start_with(&[("ECR_PROXY_BLOB_MODE", "stream")]).await;
    let port = stack.proxy.addr().port();
    let repo = format!("dockertest/pull-{port}");
    let tag = format!("t{}", std::process::id());
    let image = format!("{}/{repo}:{tag}", stack.host());

    // Every file starts with this run's name, so no layer is shared with another image in the
    // engine and the pull has to fetch them all.
    let files = [1024, 4 * MIB + 3, 150 * 1024];
    let ctx = scratch_build_context(&image, &files, 500);

    let _cleanup = RemoveImage(image.clone());
    let built = docker(&["build", "-t", &image, ctx.path().to_str().unwrap()]).await;
    assert!(built.status.success(), "docker build: {}", describe(&built));
    let id = inspect(&image, "{{.Id}}").await.expect("the built image");
    let _cleanup_id = RemoveImage(id.clone());
    let layers = inspect(&image, "{{json .RootFS.Layers}}")
        .await
        .expect("the built image");
    let layer_ids: Vec<String> = serde_json::from_str(&layers).expect("RootFS.Layers is JSON");
    assert_eq!(layer_ids.len(), files.len(), "one layer per COPY: {layers}");

    let pushed = docker(&["push", &image]).await;
    assert!(
        pushed.status.success(),
        "docker push: {}",
        describe(&pushed)
    );

    // Gone from the engine: every name, then the image itself.
    let removed = docker(&["rmi", "-f", &image]).await;
    assert!(
        removed.status.success(),
        "docker rmi: {}",
        describe(&removed)
    );
    let _ = docker(&["rmi", "-f", &id]).await;
    assert_eq!(inspect(&id, "{{.Id}}").await, None, "the image is removed");

    let pulled = docker(&["pull", &image]).await;
    assert!(
        pulled.status.success(),
        "docker pull: {}",
        describe(&pulled)
    );
    let pulled_out = String::from_utf8_lossy(&pulled.stdout).to_string();
    assert_eq!(
        layers_with(&pulled_out, "Pull complete").len(),
        files.len(),
        "every layer is downloaded: {}",
        describe(&pulled)
    );
    assert_eq!(
        inspect(&image, "{{.Id}}").await.as_deref(),
        Some(id.as_str()),
        "the pulled image id"
    );
    assert_eq!(
        inspect(&image, "{{json .RootFS.Layers}}").await.as_deref(),
        Some(layers.as_str()),
        "the pulled layers"
    );

    let created = docker(&["create", &image, "/nonexistent"]).await;
    assert!(
        created.status.success(),
        "docker create: {}",
        describe(&created)
    );
    let _container = RemoveContainer(String::from_utf8_lossy(&created.stdout).trim().to_string());
}

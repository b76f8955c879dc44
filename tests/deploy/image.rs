//! The container image, built and run here as a user would: `deploy/build-image` packages the
//! test binary (no registry reachable), the image is checked (non-root user, exec-form
//! ENTRYPOINT, CA certificates, size), then run with `--network host` and a read-only root in
//! front of an emulator this test starts on loopback, with an admin port as the Kubernetes
//! manifests open one (probed: ready there, and no registry path); skopeo pushes an image
//! through the container and pulls it back, and every blob is compared byte for byte. The container and the
//! image are removed at the end, passed or failed.

use crate::support::*;
use ecr_proxy::emulator::{self, EmulatorConfig};
use std::process::Output;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Removes a container, then an image, when the test ends (passed or failed).
struct Cleanup {
    container: String,
    image: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.container])
            .output();
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

async fn run(program: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program} runs: {e}"))
}

fn describe(out: &Output) -> String {
    format!(
        "exit {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn docker_ok(args: &[&str]) -> String {
    let out = run("docker", args).await;
    assert!(out.status.success(), "docker {args:?}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The status code of `GET path` on `addr`, or None if nothing answers.
async fn status(addr: &str, path: &str) -> Option<u16> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut head = vec![0u8; 64];
    let n = s.read(&mut head).await.ok()?;
    std::str::from_utf8(&head[..n])
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_builds_offline_runs_read_only_and_serves_push_and_pull() {
    if !tool_available("docker", "version") || !tool_available("skopeo", "--version") {
        return;
    }
    let id = format!("{}-{}", std::process::id(), free_port());
    let image = format!("ecr-proxy-deploy-test:{id}");
    let container = format!("ecr-proxy-deploy-test-{id}");
    let _cleanup = Cleanup {
        container: container.clone(),
        image: image.clone(),
    };

    // Built from the binary cargo built for the tests, with no base image pulled.
    let script = format!("{}/deploy/build-image", env!("CARGO_MANIFEST_DIR"));
    let built = run(
        &script,
        &["--binary", env!("CARGO_BIN_EXE_ecr-proxy"), "--tag", &image],
    )
    .await;
    assert!(
        built.status.success(),
        "deploy/build-image: {}",
        describe(&built)
    );

    let inspect = |f: &'static str| {
        let image = image.clone();
        async move { docker_ok(&["image", "inspect", "-f", f, &image]).await }
    };
    assert_eq!(inspect("{{.Config.User}}").await, "65532:65532");
    assert_eq!(
        inspect("{{json .Config.Entrypoint}}").await,
        r#"["/usr/local/bin/ecr-proxy"]"#
    );
    let size: u64 = inspect("{{.Size}}").await.parse().expect("image size");
    eprintln!("note: image {image} is {} MiB", size >> 20);
    assert!(size < 128 << 20, "image of {} MiB", size >> 20);

    // ECR: the emulator on loopback, with the repository (create-on-push is off in the image).
    let ecr_dir = tempfile::tempdir().expect("temporary directory");
    let emu = emulator::start(EmulatorConfig::new(ecr_dir.path()))
        .await
        .expect("emulator starts");
    let repo = "deploy/image-test";
    sdk_client(&emu.endpoint())
        .create_repository()
        .repository_name(repo)
        .send()
        .await
        .expect("CreateRepository");

    let addr = format!("127.0.0.1:{}", free_port());
    let endpoint = format!("AWS_ENDPOINT_URL_ECR={}", emu.endpoint());
    let listen = format!("ECR_PROXY_LISTEN={addr}");
    let admin = format!("127.0.0.1:{}", free_port());
    let admin_listen = format!("ECR_PROXY_ADMIN_LISTEN={admin}");
    #[rustfmt::skip]
    let args = [
        "run", "-d", "--name", &container, "--network", "host", "--read-only",
        "--tmpfs", "/var/spool/ecr-proxy",
        "-e", &endpoint, "-e", "AWS_REGION=us-east-1",
        "-e", "AWS_ACCESS_KEY_ID=test", "-e", "AWS_SECRET_ACCESS_KEY=test",
        "-e", &listen, "-e", &admin_listen, &image,
    ];
    docker_ok(&args).await;

    // Probed as the kubelet does in deploy/kubernetes: on the admin port.
    let mut ready = None;
    for _ in 0..120 {
        ready = status(&admin, "/readyz").await;
        if ready == Some(200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if ready != Some(200) {
        let logs = run("docker", &["logs", &container]).await;
        panic!(
            "the container never became ready on its admin port ({ready:?}): {}",
            describe(&logs)
        );
    }
    assert_eq!(status(&admin, "/healthz").await, Some(200));
    assert_eq!(status(&admin, "/metrics").await, Some(200));
    assert_eq!(
        status(&admin, "/v2/").await,
        Some(404),
        "no registry on the admin port"
    );
    assert_eq!(
        status(&addr, "/readyz").await,
        Some(200),
        "the registry port"
    );
    let top = docker_ok(&["top", &container, "-eo", "pid,uid,args"]).await;
    let uids: Vec<&str> = top
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(uids, ["65532"], "processes of the container: {top}");
    let certs = run(
        "docker",
        &[
            "cp",
            &format!("{container}:/etc/ssl/certs/ca-certificates.crt"),
            "-",
        ],
    )
    .await;
    assert!(
        String::from_utf8_lossy(&certs.stdout).contains("-----BEGIN CERTIFICATE-----"),
        "no CA bundle in the image: {}",
        describe(&certs)
    );

    // A push through the container, and a pull back.
    let work = tempfile::tempdir().expect("temporary directory");
    let layout = OciLayout::create(&work.path().join("src"));
    let layers = vec![data(1, 100 * 1024), data(2, 12 * MIB + 3), data(3, MIB)];
    let manifest = layout.image("amd64", &layers);
    layout.tag("v1", OCI_MANIFEST, &manifest);
    let remote = format!("docker://{addr}/{repo}:v1");
    let source = format!("oci:{}:v1", layout.dir.display());
    skopeo(
        work.path(),
        &[
            "copy",
            "--dest-tls-verify=false",
            "--preserve-digests",
            &source,
            &remote,
        ],
    )
    .await;
    let pulled = OciLayout::create(&work.path().join("pulled"));
    let target = format!("oci:{}:v1", pulled.dir.display());
    skopeo(
        work.path(),
        &[
            "copy",
            "--src-tls-verify=false",
            "--preserve-digests",
            &remote,
            &target,
        ],
    )
    .await;

    assert_eq!(
        pulled.tagged("v1").expect("the pulled tag")["digest"],
        digest(&manifest).as_str(),
        "the manifest came back under its digest"
    );
    let got = pulled.blobs();
    for (d, bytes) in layout.blobs() {
        assert!(
            got.get(&d) == Some(&bytes),
            "blob {d} ({} bytes) did not come back whole",
            bytes.len()
        );
    }
    let stored = sdk_client(&emu.endpoint())
        .batch_get_image()
        .repository_name(repo)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("v1")
                .build(),
        )
        .accepted_media_types(OCI_MANIFEST)
        .send()
        .await
        .expect("BatchGetImage");
    assert_eq!(
        stored.images().first().and_then(|i| i.image_manifest()),
        Some(std::str::from_utf8(&manifest).unwrap()),
        "the manifest is in ECR byte for byte"
    );
    emu.shutdown();
}

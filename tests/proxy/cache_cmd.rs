//! `ecr-proxy cache warm | stats | prune` as a user runs them: the real binary, against an
//! emulator given as `AWS_ENDPOINT_URL_ECR` with static credentials. A warmed image is pulled
//! with the emulator stopped (every byte equal); the progress names each image and ends with
//! the summary; a missing image fails the command, named; `--platform` warms one platform of an
//! index; `stats` counts what is there and `prune` empties it, without any AWS settings.

use crate::support::*;
use crate::uploads::push_blob;
use bytes::Bytes;
use ecr_proxy::config::{self, Flags};
use ecr_proxy::ecr::Upstream;
use ecr_proxy::proxy as registry;
use std::collections::HashMap;
use std::path::Path;

/// An image as pushed: its manifest and every blob (config first).
struct Pushed {
    manifest: String,
    blobs: Vec<(String, Vec<u8>)>,
}

/// Push an image of `layers` for `linux/<arch>` to `repo` (tagged `tag`, or untagged by
/// digest when `tag` is `None`).
async fn push_image(
    s: &Stack,
    repo: &str,
    tag: Option<&str>,
    arch: &str,
    layers: &[Vec<u8>],
) -> Pushed {
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","n":{}}}"#,
        layers.len()
    );
    let mut blobs = vec![(
        push_blob(s, repo, config.as_bytes()).await,
        config.into_bytes(),
    )];
    for l in layers {
        blobs.push((push_blob(s, repo, l).await, l.clone()));
    }
    let descs: Vec<String> = blobs[1..]
        .iter()
        .map(|(d, b)| {
            format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":{}}}"#, b.len())
        })
        .collect();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{}]}}"#,
        blobs[0].0,
        blobs[0].1.len(),
        descs.join(",")
    );
    let reference = tag.map_or_else(|| digest(manifest.as_bytes()), str::to_string);
    put_manifest(s, repo, &reference, OCI_MANIFEST, &manifest).await;
    Pushed { manifest, blobs }
}

async fn put_manifest(s: &Stack, repo: &str, reference: &str, media_type: &str, body: &str) {
    let r = request(
        "PUT",
        &s.url(&format!("/v2/{repo}/manifests/{reference}")),
        &[("Content-Type", media_type)],
        body.to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

/// A config file whose `[cache]` is `dir/cache`; returns its path.
fn config_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("ecr-proxy.toml");
    let toml = format!(
        "[cache]\ndir = {:?}\nmax_size = \"1GiB\"\n",
        dir.join("cache").to_str().unwrap()
    );
    std::fs::write(&path, toml).unwrap();
    path
}

/// What a finished command left.
struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// `ecr-proxy cache ARGS` in a clean environment plus `env`.
async fn cache_cmd(args: &[&str], env: &[(&str, &str)]) -> Ran {
    let home = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ecr-proxy"))
        .arg("cache")
        .args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("NO_COLOR", "1")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1")
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output()
        .await
        .expect("ecr-proxy runs");
    Ran {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `cache warm --config CONFIG ARGS` against the stack's emulator.
async fn warm(s: &Stack, config: &Path, args: &[&str]) -> Ran {
    let endpoint = s.emu.endpoint();
    let mut all = vec!["warm", "--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    cache_cmd(
        &all,
        &[
            ("AWS_ENDPOINT_URL_ECR", &endpoint),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ],
    )
    .await
}

/// `cache stats --config CONFIG`'s numbers: (blobs, manifests, bytes used).
async fn stats(config: &Path) -> (u64, u64, u64) {
    let r = cache_cmd(&["stats", "--config", config.to_str().unwrap()], &[]).await;
    assert!(r.ok, "cache stats failed:\n{}{}", r.stdout, r.stderr);
    let field = |name: &str| -> Vec<String> {
        let line = r
            .stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in:\n{}", r.stdout));
        line[name.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let used = field("used");
    let bytes = used[used.iter().position(|w| w == "bytes").unwrap() - 1].clone();
    (
        field("blobs")[0].parse().unwrap(),
        field("manifests")[0].parse().unwrap(),
        bytes.parse().unwrap(),
    )
}

#[tokio::test]
async fn warmed_images_are_pulled_with_ecr_stopped() {
    let s = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path());
    let image = push_image(
        &s,
        "warm/app",
        Some("v1"),
        "amd64",
        &[data(1, 21 * MIB), data(2, 300_000)],
    )
    .await;

    let r = warm(&s, &config, &["warm/app:v1"]).await;
    assert!(r.ok, "cache warm failed:\n{}", r.stderr);
    assert!(r.stderr.contains("[1/1] warm/app:v1"), "{}", r.stderr);
    let last = r.stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("cache warm: 1 of 1 images warmed: 3 blobs")
            && last.contains("0 already cached")
            && last.contains("3 fetched from ECR"),
        "the summary ends the output:\n{}",
        r.stderr
    );
    let again = warm(&s, &config, &["warm/app:v1"]).await;
    assert!(again.ok, "{}", again.stderr);
    assert!(
        again.stderr.contains("3 already cached") && again.stderr.contains("0 fetched from ECR"),
        "a second warm reads from the cache:\n{}",
        again.stderr
    );

    // ECR gone: a proxy on the same cache folder serves the image by tag, every byte.
    let Stack { proxy, emu, .. } = s;
    let (endpoint, addr) = (emu.endpoint(), emu.addr());
    drop(proxy);
    emu.shutdown();
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(refused, "the emulator still accepts connections");
    let vars: HashMap<String, String> =
        HashMap::from([("ECR_PROXY_LISTEN".to_string(), "127.0.0.1:0".to_string())]);
    let mut cfg = config::load(Some(&config), &vars, &Flags::default()).expect("valid config");
    cfg.upstream = Upstream {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint),
        static_credentials: Some(("test".into(), "test".into())),
        registry_id: None,
    };
    let offline = registry::start(cfg).await.expect("proxy starts");
    let url = |p: &str| format!("http://{}{p}", offline.addr());
    let m = request(
        "GET",
        &url("/v2/warm/app/manifests/v1"),
        &[("Accept", OCI_MANIFEST)],
        Bytes::new(),
    )
    .await;
    assert_eq!(m.status, 200, "{}", String::from_utf8_lossy(&m.body));
    assert_eq!(m.body, image.manifest.as_bytes());
    for (d, bytes) in &image.blobs {
        let b = request(
            "GET",
            &url(&format!("/v2/warm/app/blobs/{d}")),
            &[],
            Bytes::new(),
        )
        .await;
        assert_eq!(b.status, 200, "{d}: {}", String::from_utf8_lossy(&b.body));
        assert!(b.body == bytes.as_slice(), "{d}: other bytes served");
    }
}

#[tokio::test]
async fn a_missing_image_fails_the_warm_named() {
    let s = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path());
    push_image(&s, "warm/ok", Some("v1"), "amd64", &[data(3, 1000)]).await;
    let list = dir.path().join("images.txt");
    std::fs::write(
        &list,
        "# what the site needs\nwarm/ok:v1\nwarm/gone:v1  # never pushed\n",
    )
    .unwrap();

    let r = warm(&s, &config, &["--file", list.to_str().unwrap()]).await;
    assert!(
        !r.ok,
        "a missing image must fail the command:\n{}",
        r.stderr
    );
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("[1/2] warm/ok:v1: done")),
        "{}",
        r.stderr
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("failed: warm/gone:v1: 404 Not Found: NAME_UNKNOWN")),
        "the failure names the image and why:\n{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("cache warm: 1 of 2 images warmed, 1 failed")
            && lines
                .last()
                .unwrap()
                .contains("1 of 2 images could not be warmed"),
        "{}",
        r.stderr
    );
}

#[tokio::test]
async fn platform_narrows_an_index() {
    let s = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path());
    let amd = push_image(&s, "warm/multi", None, "amd64", &[data(4, 2000)]).await;
    let arm = push_image(
        &s,
        "warm/multi",
        None,
        "arm64",
        &[data(5, 3000), data(6, 4000)],
    )
    .await;
    let child = |m: &str, arch: &str| {
        format!(
            r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
            digest(m.as_bytes()),
            m.len()
        )
    };
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{},{}]}}"#,
        child(&amd.manifest, "amd64"),
        child(&arm.manifest, "arm64")
    );
    put_manifest(&s, "warm/multi", "latest", OCI_INDEX, &index).await;

    let r = warm(
        &s,
        &config,
        &["--platform", "linux/arm64", "warm/multi:latest"],
    )
    .await;
    assert!(r.ok, "{}", r.stderr);
    let (blobs, manifests, _) = stats(&config).await;
    assert_eq!(
        (blobs, manifests),
        (3, 2),
        "the index, arm64's manifest, its config and 2 layers"
    );
    let r = warm(
        &s,
        &config,
        &["--platform", "windows/amd64", "warm/multi:latest"],
    )
    .await;
    assert!(
        !r.ok && r.stderr.contains("no manifest for windows/amd64"),
        "{}",
        r.stderr
    );
}

#[tokio::test]
async fn stats_and_prune_work_without_ecr() {
    let s = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path());
    let image = push_image(
        &s,
        "warm/small",
        Some("v1"),
        "amd64",
        &[data(7, 5000), data(8, 70_000)],
    )
    .await;
    let r = warm(&s, &config, &["warm/small:v1"]).await;
    assert!(r.ok, "{}", r.stderr);
    drop(s);

    let (blobs, manifests, bytes) = stats(&config).await;
    let blob_bytes: u64 = image.blobs.iter().map(|(_, b)| b.len() as u64).sum();
    assert_eq!((blobs, manifests), (3, 1));
    assert!(
        bytes >= blob_bytes + image.manifest.len() as u64,
        "{bytes} bytes used"
    );

    let cfg = config.to_str().unwrap();
    let p = cache_cmd(&["prune", "--config", cfg, "--to", "0"], &[]).await;
    assert!(p.ok, "{}", p.stderr);
    assert!(
        p.stdout.starts_with("removed 3 blobs and 1 manifest"),
        "{}",
        p.stdout
    );
    assert_eq!(stats(&config).await, (0, 0, 0));
    let p = cache_cmd(&["prune", "--config", cfg, "--all"], &[]).await;
    assert!(
        p.ok && p.stdout.starts_with("nothing to remove"),
        "{}",
        p.stdout
    );
}

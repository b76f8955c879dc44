//! containerd's `ctr` against the authenticating proxy: `ctr images pull --user bob:…` of an
//! image alice pushed (containerd tries the OAuth POST to `/token` first), `ctr images push
//! --user alice:…`, and bob's push refused. The containerd socket is found as `pgrep -a
//! containerd` shows it (the `--address` flag, or the `[grpc] address` of its `--config` file,
//! as with Docker's own containerd), or `CONTAINERD_ADDRESS`. Each test works in a namespace of
//! its own and removes it, with its images, when it ends.

use super::*;
use std::path::Path;
use std::time::Duration;

/// The longest a `ctr` command may take before the test gives up on it.
const CTR_WAIT: Duration = Duration::from_secs(60);

/// The socket of each running `containerd`: its `--address`, the `[grpc] address` of its
/// `--config` file, or containerd's default.
fn running_containerd_sockets() -> Vec<String> {
    let mut found = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for p in procs.flatten() {
        let Ok(cmdline) = std::fs::read(p.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args
            .first()
            .map(|a| Path::new(a).file_name() == Some("containerd".as_ref()))
            != Some(true)
        {
            continue;
        }
        let flag = |names: &[&str]| {
            args.iter().enumerate().find_map(|(i, a)| {
                names.iter().find_map(|n| {
                    if a == n {
                        args.get(i + 1).cloned()
                    } else {
                        a.strip_prefix(&format!("{n}=")).map(str::to_string)
                    }
                })
            })
        };
        let from_config = || {
            let text = std::fs::read_to_string(flag(&["--config", "-c"])?).ok()?;
            let v: toml::Value = toml::from_str(&text).ok()?;
            Some(v.get("grpc")?.get("address")?.as_str()?.to_string())
        };
        found.push(
            flag(&["--address", "-a"])
                .or_else(from_config)
                .unwrap_or_else(|| "/run/containerd/containerd.sock".into()),
        );
    }
    found
}

/// The address `ctr` should use, when one answers `ctr version`. Under `CI=true` none fails
/// the test; elsewhere the test says SKIPPED.
fn containerd_address() -> Option<String> {
    if !tool_available("ctr", "--version") {
        return None;
    }
    let candidates = std::env::var("CONTAINERD_ADDRESS")
        .into_iter()
        .chain(running_containerd_sockets())
        .chain([
            "/run/containerd/containerd.sock".to_string(),
            "/var/run/docker/containerd/containerd.sock".to_string(),
        ]);
    for address in candidates {
        if !Path::new(&address).exists() {
            continue;
        }
        let answers = std::process::Command::new("ctr")
            .args(["--address", &address, "version"])
            .output()
            .is_ok_and(|o| o.status.success());
        if answers {
            return Some(address);
        }
    }
    let why = "no containerd answers `ctr version` (looked at CONTAINERD_ADDRESS, running \
               containerd processes, /run/containerd and /var/run/docker/containerd)";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why}: required under CI=true");
    }
    skipped(why);
    None
}

/// A containerd namespace of this test's own; removed with its images when dropped.
struct Ctr {
    address: String,
    namespace: String,
}

impl Ctr {
    fn new(address: String, port: u16) -> Ctr {
        let namespace = format!("ecr-proxy-test-{}-{port}", std::process::id());
        Ctr { address, namespace }
    }

    /// `ctr -n NAMESPACE ARGS`, ended (and its run reported) after `CTR_WAIT`.
    async fn run(&self, args: &[&str]) -> Result<Output, String> {
        let run = tokio::process::Command::new("ctr")
            .args(["--address", &self.address, "-n", &self.namespace])
            .args(args)
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(CTR_WAIT, run).await {
            Ok(out) => Ok(out.expect("ctr runs")),
            Err(_) => Err(format!(
                "`ctr {}` still ran after {CTR_WAIT:?}",
                args.join(" ")
            )),
        }
    }

    async fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(out.status.success(), "ctr {args:?}: {}", describe(&out));
        out
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let ctr = |args: &[&str]| {
            std::process::Command::new("ctr")
                .args(["--address", &self.address, "-n", &self.namespace])
                .args(args)
                .output()
        };
        if let Ok(listed) = ctr(&["images", "ls", "-q"]) {
            let listed = String::from_utf8_lossy(&listed.stdout).to_string();
            let refs: Vec<&str> = listed.split_whitespace().collect();
            if !refs.is_empty() {
                let _ = ctr(&[&["images", "rm", "--sync"], refs.as_slice()].concat());
            }
        }
        let _ = std::process::Command::new("ctr")
            .args([
                "--address",
                &self.address,
                "namespaces",
                "rm",
                &self.namespace,
            ])
            .output();
    }
}

/// A stack with alice's image pushed as `team-a/app:v1` (over plain HTTP), and a namespace
/// that has pulled it as bob; `None` when a tool is missing outside CI.
async fn pulled_by_bob() -> Option<(Stack, Ctr, Vec<u8>, Vec<Vec<u8>>)> {
    let address = containerd_address()?;
    let s = stack_with(EXAMPLE, &[]).await?;
    let dir = tempfile::tempdir().expect("temporary directory");
    let seed = 60 + u64::from(s.proxy.addr().port());
    let (layout, manifest, layers) = image_layout(dir.path(), "v1", seed, &[5000, MIB + 3]);
    push_layout(
        &s,
        &layout,
        &manifest,
        "team-a/app",
        "v1",
        &basic("alice", "alice-pw"),
    )
    .await;
    let ctr = Ctr::new(address, s.proxy.addr().port());
    let image = format!("{}/team-a/app:v1", s.host());
    ctr.ok(&[
        "images",
        "pull",
        "--plain-http",
        "--user",
        "bob:bob-pw",
        &image,
    ])
    .await;
    Some((s, ctr, manifest, layers))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctr_pulls_as_bob_and_pushes_as_alice() {
    let Some((s, ctr, manifest, layers)) = pulled_by_bob().await else {
        return;
    };
    let image = format!("{}/team-a/app:v1", s.host());
    let listed = ctr.ok(&["images", "ls"]).await;
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    let row = listed
        .lines()
        .find(|l| l.split_whitespace().next() == Some(image.as_str()))
        .unwrap_or_else(|| panic!("{image} is not listed:\n{listed}"));
    assert!(row.contains(&digest(&manifest)), "{row}");
    for layer in &layers {
        let got = ctr.ok(&["content", "get", &digest(layer)]).await;
        assert!(got.stdout == *layer, "layer {} differs", digest(layer));
    }
    assert!(
        metric(&s, "ecr_proxy_auth_tokens_issued_total", "").await >= 1.0,
        "containerd got its token from /token"
    );

    // alice pushes it under another name: every blob goes up again, and the manifest.
    let copy = format!("{}/team-a/copy:v2", s.host());
    ctr.ok(&["images", "tag", &image, &copy]).await;
    ctr.ok(&[
        "images",
        "push",
        "--plain-http",
        "--user",
        "alice:alice-pw",
        &copy,
    ])
    .await;
    assert_eq!(
        ecr_manifest(&s, "team-a/copy", "v2").await.as_ref(),
        manifest.as_slice()
    );
    for layer in &layers {
        let stored = layer_from_emulator(&s, "team-a/copy", &digest(layer)).await;
        assert!(
            stored == layer.as_slice(),
            "layer {} differs",
            digest(layer)
        );
    }
}

/// Bob's push must end, refused. containerd 1.6 (Debian's 1.6.20, as Docker Engine 20.10 runs
/// it) streams a manifest PUT's body through a pipe; the proxy answers 403 with `Connection:
/// close` before reading that body, the client stops reading the pipe, and ctr blocks forever
/// writing into it. Where the body is read before the answer (Go's net/http server reads up to
/// 256 KiB of it first, as distribution does; a relay buffering each request in front of this
/// proxy, tried by hand) ctr ends with `unexpected status: 403 Forbidden`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctr_push_as_bob_is_refused_and_ends() {
    let Some((s, ctr, _, _)) = pulled_by_bob().await else {
        return;
    };
    let image = format!("{}/team-a/app:v1", s.host());
    let other = format!("{}/team-a/app:bob", s.host());
    ctr.ok(&["images", "tag", &image, &other]).await;
    let out = ctr
        .run(&[
            "images",
            "push",
            "--plain-http",
            "--user",
            "bob:bob-pw",
            &other,
        ])
        .await
        .unwrap_or_else(|e| panic!("bob's refused push hangs: {e}"));
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        printed(&out).contains("403 Forbidden"),
        "{}",
        describe(&out)
    );
    assert_eq!(ecr_digest(&s, "team-a/app", "bob").await, None);
}

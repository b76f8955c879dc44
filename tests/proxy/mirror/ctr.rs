//! containerd through a `hosts.toml` mirror: `ctr images pull --hosts-dir` with a `docker.io`
//! entry whose first host is the proxy pulls `docker.io/library/app:v1`, which is stored in ECR
//! under `docker-hub/library/app`. The machine has no internet, so the pull succeeds from the
//! mirror alone. The image runs through the local containerd (its socket: `CONTAINERD_ADDRESS`,
//! containerd's own, or Docker's) in a namespace of the test's own, removed afterwards.

use super::{config, Image};
use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Output;

const REF: &str = "docker.io/library/app:v1";

/// The first containerd socket that answers `ctr version`; `None` (a skip, a failure under
/// CI=true) when there is none.
fn containerd_socket() -> Option<PathBuf> {
    let candidates = std::env::var_os("CONTAINERD_ADDRESS")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            [
                "/run/containerd/containerd.sock",
                "/var/run/docker/containerd/containerd.sock",
            ]
            .map(PathBuf::from),
        );
    // ctr waits 10 s for a socket that is not there: only existing ones are asked.
    for socket in candidates.filter(|s| s.exists()) {
        let answers = std::process::Command::new("ctr")
            .arg("-a")
            .arg(&socket)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if answers {
            return Some(socket);
        }
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("a running containerd is required under CI=true (Docker's serves one)");
    }
    skipped("no containerd answers on its socket (CONTAINERD_ADDRESS, /run/containerd, Docker's)");
    None
}

/// `ctr` against `socket` in namespace `ns`.
struct Ctr {
    socket: PathBuf,
    ns: String,
}

impl Ctr {
    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new("ctr");
        c.arg("-a")
            .arg(&self.socket)
            .args(["-n", &self.ns])
            .args(args);
        c
    }

    async fn run(&self, args: &[&str]) -> Output {
        tokio::process::Command::from(self.command(args))
            .kill_on_drop(true)
            .output()
            .await
            .expect("ctr runs")
    }

    /// `args`' output; panics with it unless ctr succeeds.
    async fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "ctr {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

/// Removes the image, then the namespace, when the test ends, passed or failed.
impl Drop for Ctr {
    fn drop(&mut self) {
        let _ = self.command(&["images", "rm", "--sync", REF]).output();
        let _ = std::process::Command::new("ctr")
            .arg("-a")
            .arg(&self.socket)
            .args(["namespaces", "rm", &self.ns])
            .output();
    }
}

/// `dir/docker.io/hosts.toml`: the proxy first, Docker Hub (unreachable here) as the server.
fn hosts_dir(dir: &Path, proxy: &str) {
    let d = dir.join("docker.io");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("hosts.toml"),
        format!(
            "server = \"https://registry-1.docker.io\"\n\n[host.\"http://{proxy}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        ),
    )
    .unwrap();
}

#[tokio::test]
async fn ctr_pulls_docker_hub_names_through_a_hosts_toml_mirror() {
    if !tool_available("ctr", "--version") {
        return;
    }
    let Some(socket) = containerd_socket() else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let s = Stack::start_config(&config(cache.path(), ""), &[], &[]).await;
    let img = Image::new(3);
    img.push(&s, "docker-hub/library/app", "v1").await;
    let hosts = tempfile::tempdir().unwrap();
    hosts_dir(hosts.path(), &s.host());

    let ctr = Ctr {
        socket,
        ns: format!("ecr-proxy-mirror-test-{}", std::process::id()),
    };
    let dir = hosts.path().to_str().unwrap();
    ctr.ok(&["images", "pull", "--hosts-dir", dir, REF]).await;

    // The image under its Docker Hub name, with the manifest digest that was pushed.
    let ls = ctr.ok(&["images", "ls"]).await;
    let ls = String::from_utf8_lossy(&ls.stdout);
    let line = ls
        .lines()
        .find(|l| l.starts_with(REF))
        .unwrap_or_else(|| panic!("{REF} not listed:\n{ls}"));
    assert!(line.contains(&digest(&img.manifest)), "{line}");
    // Its content, byte for byte.
    for blob in [&img.manifest, &img.config, &img.layer] {
        let got = ctr.ok(&["content", "get", &digest(blob)]).await;
        assert_eq!(got.stdout.len(), blob.len());
        assert!(got.stdout == *blob, "{} differs", digest(blob));
    }
}

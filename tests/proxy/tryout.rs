//! README's try-out, run as written: the commands between its `try-out` markers (read from
//! README.md, so the two cannot drift) against a real `ecr-proxy serve --local` process on a free
//! loopback port instead of 5000. The image docker pulls back is the one it pushed, its file has
//! the bytes written, and the tag is in the registry. Its "Against AWS" command must parse with
//! the real CLI parser and name a config file the checkout has.

use crate::support::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BEGIN: &str = "<!-- try-out: begin";
const END: &str = "<!-- try-out: end";

/// The shell lines of the fenced block between the markers.
fn tryout_lines(readme: &str) -> Vec<String> {
    let start = readme
        .find(BEGIN)
        .expect("README.md has a try-out begin marker");
    let end = readme[start..]
        .find(END)
        .map(|i| start + i)
        .expect("README.md has a try-out end marker");
    let lines: Vec<String> = readme[start..end]
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("```") && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    assert!(
        lines.iter().any(|l| l.starts_with("docker push")),
        "the try-out has no docker push: {lines:?}"
    );
    lines
}

/// Removes the image and the container from the local engine when the test ends.
struct Cleanup(Vec<Vec<String>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in &self.0 {
            let _ = Command::new("docker").args(args).output();
        }
    }
}

/// A `serve --local` process, killed on drop.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ok(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The digest after `prefix` on some line of `text`.
fn digest_after(text: &str, prefix: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = &l[l.find(prefix)? + prefix.len()..];
        Some(rest.split_whitespace().next()?.to_string())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_tryout_pushes_and_pulls_an_image_built_here() {
    if !tool_available("docker", "version") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let lines = tryout_lines(&readme);

    let dir = tempfile::tempdir().expect("temporary directory");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let registry = format!("127.0.0.1:{port}");
    let serve = Command::new(env!("CARGO_BIN_EXE_ecr-proxy"))
        .args(["serve", "--listen", &registry, "--local"])
        .arg(dir.path().join("ecr-data"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("ecr-proxy starts");
    let _serve = Serve(serve);
    let mut up = false;
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(&registry).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(up, "ecr-proxy serve --local did not listen on {registry}");

    let image = format!("{registry}/demo/app:1");
    let container = format!("ecr-proxy-tryout-{port}");
    let _cleanup = Cleanup(vec![
        vec!["rm".into(), "-f".into(), container.clone()],
        vec!["rmi".into(), "-f".into(), image.clone()],
    ]);
    let demo = dir.path().join("demo");
    let script = lines
        .join("\n")
        .replace("127.0.0.1:5000", &registry)
        .replace("/tmp/demo", &demo.to_string_lossy());
    assert!(script.contains(&image), "the try-out names {image}");
    let run = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-euxo", "pipefail", "-c", &script])
            .output()
            .expect("bash runs")
    })
    .await
    .expect("the try-out finished");
    let stdout = ok("the README try-out", &run);

    let pushed = digest_after(&stdout, "digest: ").expect("docker push printed a digest");
    let pulled = digest_after(&stdout, "Digest: ").expect("docker pull printed a digest");
    assert_eq!(
        pulled, pushed,
        "docker pulled another manifest than it pushed"
    );
    let tags = request(
        "GET",
        &format!("http://{registry}/v2/demo/app/tags/list"),
        &[],
        "",
    )
    .await;
    assert_eq!(tags.status, 200);
    let tags: serde_json::Value = serde_json::from_slice(&tags.body).expect("tags JSON");
    assert_eq!(tags["tags"], serde_json::json!(["1"]));

    // The pulled image's file holds what the try-out wrote.
    let docker = |args: Vec<String>| Command::new("docker").args(&args).output();
    ok(
        "docker create",
        &docker(vec![
            "create".into(),
            "--name".into(),
            container.clone(),
            image.clone(),
            "none".into(),
        ])
        .expect("docker runs"),
    );
    let copied = dir.path().join("hello.out");
    ok(
        "docker cp",
        &docker(vec![
            "cp".into(),
            format!("{container}:/hello.txt"),
            copied.to_string_lossy().into_owned(),
        ])
        .expect("docker runs"),
    );
    assert_eq!(std::fs::read(&copied).expect("copied file"), b"hello\n");
}

#[test]
fn the_tryout_block_is_found_between_its_markers() {
    let readme =
        format!("text\n{BEGIN} -->\n```sh\ndocker push x\n\ndocker pull x\n```\n{END} -->\n");
    assert_eq!(tryout_lines(&readme), ["docker push x", "docker pull x"]);
}

#[test]
fn the_against_aws_line_runs_from_a_checkout() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let start = readme
        .find("**Against AWS**")
        .expect("an Against AWS paragraph");
    let paragraph = readme[start..].split("\n\n").next().unwrap_or("");
    let words: Vec<&str> = paragraph.split_whitespace().collect();
    let text = words.join(" ");
    assert!(text.contains("`cargo build --release`"), "{text}");
    // The command after the build: the binary cargo builds, with a config file the checkout has.
    let command = text
        .split("target/release/ecr-proxy ")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("no target/release/ecr-proxy command in: {text}"));
    let mut args = vec!["ecr-proxy"];
    args.extend(command.split_whitespace());
    let cli = ecr_proxy::cli::Cli::parse_layered(&args)
        .unwrap_or_else(|e| panic!("`{command}` does not parse: {e}"));
    let ecr_proxy::cli::Command::Serve(serve) = cli.command else {
        panic!("`{command}` is not serve");
    };
    let file = root.join(serve.config.expect("the line names a config file"));
    let no_env: std::collections::HashMap<String, String> = Default::default();
    ecr_proxy::config::load(Some(&file), &no_env, &Default::default())
        .unwrap_or_else(|e| panic!("{} does not load: {e}", file.display()));
}

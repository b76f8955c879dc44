//! A docker image built here `FROM scratch` (one layer per COPY, one of them 64 MiB of random
//! bytes), pushed by the local engine to a registry name, and checked in ECR: the manifest
//! under the digest docker printed, the config byte for byte as the engine's image id says,
//! and every layer by digest and, uncompressed, against the diff ids the engine computed from
//! the files written here.

use super::verify::{assert_parts, describe, layer_bytes};
use crate::support::*;
use ecr_proxy::emulator::RunningEmulator;
use std::process::{Output, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sizes of the files copied into the image, one layer each.
const FILES: [usize; 3] = [4096, 64 * MIB, 1536 * 1024];

/// The image, removed from the local engine when dropped (passed or failed).
pub struct DockerImage {
    pub name: String,
    pub repo: String,
    pub tag: String,
    _ctx: tempfile::TempDir,
}

impl Drop for DockerImage {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", &self.name])
            .output();
    }
}

pub async fn docker(args: &[&str]) -> Output {
    tokio::process::Command::new("docker")
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("docker runs")
}

impl DockerImage {
    /// Build `host/repo:tag` from files that start with the image's name (no layer is shared
    /// with another image in the engine).
    pub async fn build(host: &str, repo: &str, tag: &str) -> DockerImage {
        let name = format!("{host}/{repo}:{tag}");
        let ctx = scratch_build_context(&name, &FILES, 700);
        let image = DockerImage {
            name,
            repo: repo.to_string(),
            tag: tag.to_string(),
            _ctx: ctx,
        };
        let ctx = image._ctx.path().to_str().unwrap();
        let built = docker(&["build", "-t", &image.name, ctx]).await;
        assert!(built.status.success(), "docker build: {}", describe(&built));
        image
    }

    /// `docker push`, asserted to succeed; the digest it printed.
    pub async fn push(&self) -> String {
        let out = docker(&["push", &self.name]).await;
        assert!(out.status.success(), "docker push: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| {
                let rest = &l[l.find("digest: ")? + "digest: ".len()..];
                Some(rest.split_once(" size: ")?.0.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no digest in docker push's output: {}", describe(&out)))
    }

    /// `docker image inspect --format FORMAT`, trimmed.
    async fn inspect(&self, format: &str) -> String {
        let out = docker(&["image", "inspect", "--format", format, &self.name]).await;
        assert!(out.status.success(), "docker inspect: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The image is in ECR under its tag with digest `pushed`, and ECR has its config and
    /// every layer with the bytes the engine built.
    pub async fn assert_in_ecr(
        &self,
        ecr: &aws_sdk_ecr::Client,
        emu: &RunningEmulator,
        pushed: &str,
    ) {
        let (manifest, d) = stored_manifest(ecr, &self.repo, &self.tag).await;
        assert_eq!(d, pushed, "the digest docker printed");
        assert_eq!(digest(manifest.as_bytes()), pushed);
        let m: serde_json::Value = serde_json::from_str(&manifest).expect("manifest is JSON");
        let config_digest = m["config"]["digest"].as_str().unwrap();
        assert_eq!(config_digest, self.inspect("{{.Id}}").await, "the image id");
        let config = layer_bytes(ecr, &self.repo, config_digest).await;
        assert_eq!(digest(&config), config_digest, "the config in ECR");
        let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
        let diff_ids = config["rootfs"]["diff_ids"].clone();
        let engine: serde_json::Value =
            serde_json::from_str(&self.inspect("{{json .RootFS.Layers}}").await).unwrap();
        assert_eq!(diff_ids, engine, "the layers the engine built");
        let layers = m["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), FILES.len(), "{manifest}");
        for (l, diff_id) in layers.iter().zip(diff_ids.as_array().unwrap()) {
            let d = l["digest"].as_str().unwrap();
            let bytes = layer_bytes(ecr, &self.repo, d).await;
            assert_eq!(digest(&bytes), d, "layer {d} in ECR");
            assert_eq!(bytes.len() as u64, l["size"].as_u64().unwrap(), "{d}");
            assert_parts(emu, &self.repo, d, bytes.len());
            let tar = if l["mediaType"].as_str().unwrap_or("").ends_with("gzip") {
                gunzip(&bytes).await
            } else {
                bytes.to_vec()
            };
            assert_eq!(
                digest(&tar),
                diff_id.as_str().unwrap(),
                "layer {d} unpacked"
            );
        }
    }
}

/// `bytes` through `gzip -dc`.
async fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = tokio::process::Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("gzip runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let input = bytes.to_vec();
    let writer = tokio::spawn(async move {
        stdin.write_all(&input).await.expect("write to gzip");
    });
    let mut out = Vec::new();
    stdout.read_to_end(&mut out).await.expect("read from gzip");
    writer.await.unwrap();
    assert!(child.wait().await.unwrap().success(), "gzip -dc");
    out
}

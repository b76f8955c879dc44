//! Memory bounds of the push path, measured on a real `ecr-proxy serve` process (its peak RSS,
//! `VmHWM` in /proc) in front of an in-test emulator: one 1 GiB layer streamed in one PATCH, and
//! eight concurrent 128 MiB pushes under a 64 MiB buffer budget.

use crate::support::*;
use bytes::Bytes;
use ecr_proxy::emulator::{self, EmulatorConfig};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use sha2::{Digest as _, Sha256};

const PART: u64 = 10 * MIB as u64;

/// The binary measured: `ECR_PROXY_BIN` (e.g. a release build) or this test build's.
fn binary() -> String {
    std::env::var("ECR_PROXY_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ecr-proxy").to_string())
}

/// A proxy process pointed at an emulator through the standard AWS variables.
pub struct ProxyProcess {
    child: std::process::Child,
    pub addr: String,
}

impl ProxyProcess {
    async fn start(endpoint: &str, budget: &str) -> ProxyProcess {
        ProxyProcess::start_with(endpoint, &[("ECR_PROXY_BUFFER_BUDGET", budget)]).await
    }

    /// Start with more `ECR_PROXY_*` settings.
    pub async fn start_with(endpoint: &str, env: &[(&str, &str)]) -> ProxyProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut child = serve_command(&binary(), endpoint, &addr)
            // These tests measure memory, not how long a push may wait for it: a slow, shared
            // machine must not turn a wait into a 429 (`hostage` tests the bounded wait).
            .env("ECR_PROXY_BUDGET_WAIT_SECS", "600")
            .envs(env.iter().copied())
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("ecr-proxy starts");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                return ProxyProcess { child, addr };
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("ecr-proxy did not listen on {addr}");
    }

    /// Peak resident set size so far, in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("proc status");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM");
        kb * 1024
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `len` deterministic bytes, generated chunk by chunk as the body is sent.
fn lazy_body(seed: u64, len: usize) -> LazyBody {
    let chunk = MIB;
    let frames = (0..len.div_ceil(chunk)).map(move |i| -> Result<Frame<Bytes>, std::io::Error> {
        let n = chunk.min(len - i * chunk);
        Ok(Frame::data(Bytes::from(data(seed * 100_000 + i as u64, n))))
    });
    StreamBody::new(futures_util::stream::iter(frames)).boxed()
}

fn lazy_digest(seed: u64, len: usize) -> String {
    let mut h = Sha256::new();
    for i in 0..len.div_ceil(MIB) {
        h.update(data(seed * 100_000 + i as u64, MIB.min(len - i * MIB)));
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// POST, one streamed PATCH of `len` bytes, PUT: as docker pushes a layer.
async fn push_streamed(addr: &str, repo: &str, seed: u64, len: usize) -> String {
    let d = lazy_digest(seed, len);
    push_body(addr, repo, "PATCH", lazy_body(seed, len), &d).await;
    d
}

type LazyBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// POST, then `body` streamed with no length: in one PATCH (then a PUT without a body) or on
/// the PUT itself (`method`). Asserts each answer; the blob's digest is `digest`.
pub async fn push_body(addr: &str, repo: &str, method: &str, body: LazyBody, digest: &str) {
    let r = request(
        "POST",
        &format!("http://{addr}/v2/{repo}/blobs/uploads/"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 202);
    let loc = r.header("location").to_string();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let url = match method {
        "PUT" => format!("http://{addr}{loc}?digest={digest}"),
        _ => format!("http://{addr}{loc}"),
    };
    let req = http::Request::builder()
        .method(method)
        .uri(url)
        .body(body)
        .unwrap();
    let resp = client.request(req).await.expect("body sent");
    if method == "PUT" {
        assert_eq!(resp.status(), 201, "PUT of {repo}");
        return;
    }
    assert_eq!(resp.status(), 202, "{method} of {repo}");
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    let r = request(
        "PUT",
        &format!("http://{addr}{loc}?digest={digest}"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(
        r.status,
        201,
        "PUT of {repo}: {}",
        String::from_utf8_lossy(&r.body)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_layer_stays_under_64_mib_plus_three_parts() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator::start(EmulatorConfig::new(dir.path()))
        .await
        .unwrap();
    let proxy = ProxyProcess::start(&emu.endpoint(), "512MiB").await;
    let len = 1024 * MIB;
    let d = push_streamed(&proxy.addr, "mem/big", 1, len).await;
    let parts = emu
        .layer_parts("mem/big", &d)
        .expect("layer completed in ECR");
    assert_eq!(parts.len(), 103);
    assert!(parts[..102].iter().all(|p| *p == PART));
    let peak = proxy.peak_rss();
    let limit = 64 * MIB as u64 + 3 * PART;
    eprintln!(
        "peak RSS pushing 1 GiB: {:.1} MiB (limit {} MiB)",
        peak as f64 / MIB as f64,
        limit / MIB as u64
    );
    assert!(peak < limit, "peak RSS {peak} bytes exceeds {limit}");
}

/// The fixed overhead above the budget that the proxy process may use: runtime, SDK, TLS and
/// HTTP buffers, allocator slack.
const OVERHEAD: u64 = 48 * MIB as u64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_pushes_stay_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator::start(EmulatorConfig::new(dir.path()))
        .await
        .unwrap();
    let proxy = ProxyProcess::start(&emu.endpoint(), "64MiB").await;
    let addr = proxy.addr.clone();
    let pushes: Vec<_> = (0..8u64)
        .map(|i| {
            let addr = addr.clone();
            tokio::spawn(async move {
                push_streamed(&addr, &format!("mem/c{i}"), 10 + i, 128 * MIB).await
            })
        })
        .collect();
    for (i, p) in pushes.into_iter().enumerate() {
        let d = p.await.expect("push task");
        let parts = emu
            .layer_parts(&format!("mem/c{i}"), &d)
            .expect("layer completed");
        assert_eq!(parts.iter().sum::<u64>(), 128 * MIB as u64);
    }
    let peak = proxy.peak_rss();
    let limit = 64 * MIB as u64 + OVERHEAD;
    eprintln!(
        "peak RSS, 8 x 128 MiB under a 64 MiB budget: {:.1} MiB (limit {} MiB)",
        peak as f64 / MIB as f64,
        limit / MIB as u64
    );
    assert!(peak < limit, "peak RSS {peak} bytes exceeds {limit}");
}

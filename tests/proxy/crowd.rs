//! Many uploads at once under a small buffer budget, on a real `ecr-proxy serve` process: every
//! form of upload mixed (one streamed PATCH, 5 MiB chunks, the whole body on the PUT), every one
//! must land with its bytes, and the process's peak RSS must stay within the budget plus a
//! fixed 64 MiB (hyper's buffers, the SDK, the runtime: whatever sits outside the budget).

use crate::memory::{push_body, ProxyProcess};
use crate::support::*;
use bytes::Bytes;
use ecr_proxy::emulator::{self, EmulatorConfig};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use sha2::{Digest as _, Sha256};
use std::sync::OnceLock;

const UPLOADS: u64 = 200;
const BUDGET: u64 = 128 * MIB as u64;

/// The size of upload `i`: 8–32 MiB, not a multiple of anything.
fn size(i: u64) -> usize {
    8 * MIB + ((i * 7_919_993) % (24 * MIB as u64)) as usize
}

/// Megabyte `i` of upload `seed`: one random block with the seed and index stamped in (a copy,
/// so 4 GiB of test data cost little CPU in a debug build).
fn megabyte(seed: u64, i: usize, len: usize) -> Bytes {
    static BLOCK: OnceLock<Vec<u8>> = OnceLock::new();
    let mut v = BLOCK.get_or_init(|| data(99, MIB))[..len].to_vec();
    v[..8].copy_from_slice(&seed.to_le_bytes());
    v[8..16].copy_from_slice(&(i as u64).to_le_bytes());
    Bytes::from(v)
}

/// The bytes `[at, at + n)` of upload `seed` (`at` and `n` whole megabytes, but the last).
fn range_of(seed: u64, at: usize, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    let mut pos = at;
    while pos < at + n {
        let m = MIB.min(at + n - pos);
        out.extend_from_slice(&megabyte(seed, pos / MIB, m));
        pos += m;
    }
    out
}

fn digest_of(seed: u64, len: usize) -> String {
    let mut h = Sha256::new();
    for i in 0..len.div_ceil(MIB) {
        h.update(megabyte(seed, i, MIB.min(len - i * MIB)));
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Upload `seed` as a body streamed in 1 MiB frames with no length.
fn body_of(seed: u64, len: usize) -> http_body_util::combinators::BoxBody<Bytes, std::io::Error> {
    let frames = (0..len.div_ceil(MIB)).map(move |i| {
        Ok::<_, std::io::Error>(Frame::data(megabyte(seed, i, MIB.min(len - i * MIB))))
    });
    StreamBody::new(futures_util::stream::iter(frames)).boxed()
}

/// POST, then PATCHes of 5 MiB (`Content-Range` each), then PUT: as crane and oras push.
async fn push_chunked(addr: &str, repo: &str, seed: u64, len: usize) -> String {
    let r = request(
        "POST",
        &format!("http://{addr}/v2/{repo}/blobs/uploads/"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 202);
    let mut loc = r.header("location").to_string();
    let mut at = 0;
    while at < len {
        let n = (5 * MIB).min(len - at);
        let range = format!("{at}-{}", at + n - 1);
        let url = format!("http://{addr}{loc}");
        let r = request(
            "PATCH",
            &url,
            &[("Content-Range", &range)],
            range_of(seed, at, n),
        )
        .await;
        assert_eq!(r.status, 202, "chunk at {at} of {repo}: {:?}", r.body);
        loc = r.header("location").to_string();
        at += n;
    }
    let d = digest_of(seed, len);
    let r = request(
        "PUT",
        &format!("http://{addr}{loc}?digest={d}"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 201, "PUT of {repo}: {:?}", r.body);
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_uploads_at_once_stay_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator::start(EmulatorConfig::new(dir.path()))
        .await
        .unwrap();
    let proxy =
        ProxyProcess::start_with(&emu.endpoint(), &[("ECR_PROXY_BUFFER_BUDGET", "128MiB")]).await;
    let tasks: Vec<_> = (0..UPLOADS)
        .map(|i| {
            let addr = proxy.addr.clone();
            tokio::spawn(async move {
                let repo = format!("crowd/u{}", i % 10);
                let (seed, len) = (1000 + i, size(i));
                let d = match i % 3 {
                    1 => push_chunked(&addr, &repo, seed, len).await,
                    // One streamed PATCH (as docker pushes), or the whole body on the PUT.
                    n => {
                        let d = digest_of(seed, len);
                        let method = if n == 0 { "PATCH" } else { "PUT" };
                        push_body(&addr, &repo, method, body_of(seed, len), &d).await;
                        d
                    }
                };
                (repo, d, len)
            })
        })
        .collect();
    let mut done = 0;
    for t in tasks {
        let (repo, d, len) = t.await.expect("every upload succeeds");
        let parts = emu
            .layer_parts(&repo, &d)
            .expect("layer completed in ECR, digest checked");
        assert_eq!(parts.iter().sum::<u64>(), len as u64, "{repo} {d}");
        assert!(
            parts[..parts.len() - 1]
                .iter()
                .all(|p| *p == 10 * MIB as u64),
            "{parts:?}"
        );
        done += 1;
        if done % 50 == 0 {
            eprintln!("{done}/{UPLOADS} uploads verified");
        }
    }
    let peak = proxy.peak_rss();
    let limit = BUDGET + 64 * MIB as u64;
    eprintln!(
        "peak RSS, {UPLOADS} uploads of 8–32 MiB under a 128 MiB budget: {:.1} MiB (limit {} MiB)",
        peak as f64 / MIB as f64,
        limit / MIB as u64
    );
    assert!(peak <= limit, "peak RSS {peak} bytes exceeds {limit}");
}

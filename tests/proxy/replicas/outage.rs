//! Issue 13, acceptance: Redis is stopped and started again (empty: it keeps nothing on disk)
//! while four clients upload blobs in 2 MiB chunks, every request on another replica than the
//! one before. Every request is answered — a success, 503 UNAVAILABLE with Retry-After while
//! Redis is down, or 404 BLOB_UPLOAD_UNKNOWN for an upload Redis lost, after which the client
//! begins again — never a reset connection, a hang, or anything else. Afterwards every blob is
//! a layer in ECR with exactly its bytes, and uploads begun after Redis is back succeed at once.

use super::client::{begin, patch, put, text, BOUND};
use super::cluster::Cluster;
use super::verify::{assert_parts, layer_bytes};
use crate::support::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

const REPO: &str = "replicas/outage";
const UPLOADERS: u64 = 4;
const BLOBS_EACH: u64 = 3;
const CHUNK: usize = 2 * MIB;
/// Times a client begins one blob's upload again before the test gives up on it.
const ATTEMPTS: usize = 100;

fn blob(uploader: u64, i: u64) -> Vec<u8> {
    data(
        3000 + 10 * uploader + i,
        12 * MIB + 1000 * uploader as usize + i as usize,
    )
}

/// Every answer the clients got, by Redis' state at the time and what was answered.
#[derive(Default)]
struct Log {
    /// 0: Redis up, 1: stopped, 2: started again.
    phase: AtomicUsize,
    successes: AtomicUsize,
    clean_failures: AtomicUsize,
    unavailable: AtomicUsize,
    counts: Mutex<BTreeMap<String, usize>>,
    violations: Mutex<Vec<String>>,
}

impl Log {
    /// Note `answer` to `what` (expected: `ok`); whether the client may go on with the upload.
    fn note(&self, what: &str, answer: &Result<Resp, String>, ok: u16, range: &str) -> Step {
        let phase = self.phase.load(Ordering::SeqCst);
        let r = match answer {
            Ok(r) => r,
            Err(e) => {
                self.violations
                    .lock()
                    .unwrap()
                    .push(format!("[{phase}] {e}"));
                return Step::Stop;
            }
        };
        let (code, retry) = (r.error_code(), r.header("retry-after"));
        let key = format!(
            "phase {phase} {} {} {code}",
            what.split(' ').next().unwrap(),
            r.status
        );
        *self.counts.lock().unwrap().entry(key).or_default() += 1;
        if r.status == ok && (range.is_empty() || r.header("range") == range) {
            self.successes.fetch_add(1, Ordering::SeqCst);
            return Step::Go;
        }
        let unavailable = r.status == 503 && code == "UNAVAILABLE" && !retry.is_empty();
        if unavailable || (r.status == 404 && code == "BLOB_UPLOAD_UNKNOWN") {
            self.clean_failures.fetch_add(1, Ordering::SeqCst);
            if unavailable {
                self.unavailable.fetch_add(1, Ordering::SeqCst);
            }
            return Step::Again;
        }
        let range = r.header("range");
        let msg = format!("[phase {phase}] {what}: {} (Range {range:?})", text(r));
        self.violations.lock().unwrap().push(msg);
        Step::Stop
    }
}

#[derive(PartialEq)]
enum Step {
    Go,
    Again,
    Stop,
}

/// One attempt at uploading `bytes`: POST, PATCHes, PUT, each on the next replica (`turn`).
async fn attempt(bases: &[String], bytes: &[u8], who: &str, turn: &mut usize, log: &Log) -> Step {
    let mut next = || {
        *turn += 1;
        (*turn % bases.len(), &bases[*turn % bases.len()])
    };
    let (i, base) = next();
    let r = begin(base, REPO).await;
    let step = log.note(&format!("POST {who} on replica {i}"), &r, 202, "");
    if step != Step::Go {
        return step;
    }
    let mut location = r.unwrap().header("location").to_string();
    for (n, c) in bytes.chunks(CHUNK).enumerate() {
        let (i, base) = next();
        let start = n * CHUNK;
        let r = patch(base, &location, start, c).await;
        let what = format!("PATCH {who} chunk {n} on replica {i}");
        let step = log.note(&what, &r, 202, &format!("0-{}", start + c.len() - 1));
        if step != Step::Go {
            return step;
        }
        location = r.unwrap().header("location").to_string();
    }
    let (i, base) = next();
    let d = digest(bytes);
    let r = put(base, &location, &d, &[]).await;
    let step = log.note(&format!("PUT {who} on replica {i}"), &r, 201, "");
    if step == Step::Go {
        let got = r.unwrap().header("docker-content-digest").to_string();
        if got != d {
            let msg = format!("PUT {who}: 201 with Docker-Content-Digest {got}, not {d}");
            log.violations.lock().unwrap().push(msg);
            return Step::Stop;
        }
    }
    step
}

/// Upload this client's blobs one after the other, beginning again after a clean failure;
/// the blobs that did not make it.
async fn uploader(u: u64, bases: Vec<String>, log: &Log) -> Vec<String> {
    let mut turn = u as usize;
    let mut failed = Vec::new();
    for b in 0..BLOBS_EACH {
        let bytes = blob(u, b);
        let who = format!("client {u} blob {b}");
        let mut step = Step::Again;
        for _ in 0..ATTEMPTS {
            step = attempt(&bases, &bytes, &who, &mut turn, log).await;
            if step != Step::Again {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if step != Step::Go {
            failed.push(who);
        }
    }
    failed
}

/// Wait until `enough`, or every client is done, or `BOUND` has passed.
async fn wait_until(enough: impl Fn() -> bool, done: &AtomicUsize) {
    for _ in 0..BOUND.as_millis() / 10 {
        if enough() || done.load(Ordering::SeqCst) == UPLOADERS as usize {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Stop Redis once the clients are under way, start it again once they have felt it.
async fn outage(c: &mut Cluster, log: &Log, done: &AtomicUsize) {
    wait_until(|| log.successes.load(Ordering::SeqCst) >= 12, done).await;
    c.redis.stop().await;
    log.phase.store(1, Ordering::SeqCst);
    let before = log.clean_failures.load(Ordering::SeqCst);
    wait_until(
        || log.clean_failures.load(Ordering::SeqCst) >= before + 8,
        done,
    )
    .await;
    c.redis.restart().await;
    log.phase.store(2, Ordering::SeqCst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_mid_load_leaves_clean_answers_and_exact_layers() {
    let Some(mut c) = Cluster::start(3, false).await else {
        return;
    };
    let bases = c.urls();
    let log = Log::default();
    let done = AtomicUsize::new(0);
    let clients = futures_util::future::join_all((0..UPLOADERS).map(|u| {
        let (bases, log, done) = (bases.clone(), &log, &done);
        async move {
            let failed = uploader(u, bases, log).await;
            done.fetch_add(1, Ordering::SeqCst);
            failed
        }
    }));
    let (failed, ()) = tokio::join!(clients, outage(&mut c, &log, &done));
    let failed: Vec<String> = failed.into_iter().flatten().collect();
    let counts = log.counts.lock().unwrap().clone();
    let violations = log.violations.lock().unwrap().clone();
    assert!(
        violations.is_empty(),
        "answers that are neither a success nor a clean failure:\n{}\nall answers: {counts:#?}",
        violations.join("\n")
    );
    assert!(
        failed.is_empty(),
        "not uploaded after {ATTEMPTS} attempts: {failed:?}\nall answers: {counts:#?}"
    );
    assert!(
        log.unavailable.load(Ordering::SeqCst) > 0,
        "no upload request was answered 503 while Redis was down: {counts:#?}"
    );

    // Begun now that Redis is back: every request succeeds the first time.
    let fresh: Vec<Vec<u8>> = (0..3)
        .map(|i| data(3900 + i, 11 * MIB + i as usize))
        .collect();
    let after = Log::default();
    after.phase.store(2, Ordering::SeqCst);
    for (i, bytes) in fresh.iter().enumerate() {
        let mut turn = i;
        let step = attempt(&bases, bytes, &format!("fresh blob {i}"), &mut turn, &after).await;
        let violations = after.violations.lock().unwrap().clone();
        assert!(
            step == Step::Go,
            "an upload begun after Redis came back: {violations:?} {:#?}",
            after.counts.lock().unwrap()
        );
    }

    // Every blob is a layer in ECR with exactly its bytes, in exact parts.
    let mut blobs: Vec<Vec<u8>> = (0..UPLOADERS)
        .flat_map(|u| (0..BLOBS_EACH).map(move |b| blob(u, b)))
        .collect();
    blobs.extend(fresh);
    assert_blobs_in_ecr(&c, &bases[0], &blobs).await;
}

/// Reference `blobs` from a manifest (ECR serves only referenced layers), then compare.
async fn assert_blobs_in_ecr(c: &Cluster, base: &str, blobs: &[Vec<u8>]) {
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let cd = digest(&config);
    let url = format!("{base}/v2/{REPO}/blobs/uploads/?digest={cd}");
    let r = request("POST", &url, &[], config.clone()).await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let layers: Vec<String> = blobs
        .iter()
        .map(|b| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}"#,
                digest(b),
                b.len()
            )
        })
        .collect();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{}]}}"#,
        config.len(),
        layers.join(",")
    );
    let url = format!("{base}/v2/{REPO}/manifests/all");
    let r = request("PUT", &url, &[("Content-Type", OCI_MANIFEST)], manifest).await;
    assert_eq!(r.status, 201, "{}", text(&r));
    for b in blobs {
        let d = digest(b);
        assert_parts(&c.emu, REPO, &d, b.len());
        let got = layer_bytes(&c.ecr, REPO, &d).await;
        assert!(got.as_ref() == b.as_slice(), "layer {d} differs in ECR");
    }
}

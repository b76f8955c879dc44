//! Issue 13, acceptance: Redis is stopped and started again (empty: it keeps nothing on disk)
//! while four clients upload blobs in 2 MiB chunks, every request on another replica than the
//! one before. Every request is answered — a success, 503 UNAVAILABLE with Retry-After while
//! Redis is down (the client sends it again, to the next replica, a moment later), or 404
//! BLOB_UPLOAD_UNKNOWN for an upload Redis lost (the client begins it again) — never a reset
//! connection, a hang, a 202 with another Range, or anything else. Afterwards every blob is a
//! layer in ECR with exactly its bytes, and uploads begun after Redis is back succeed at once.

use super::client::{begin, patch, put, text, BOUND};
use super::cluster::Cluster;
use super::verify::assert_blobs_in_ecr;
use crate::support::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

const REPO: &str = "replicas/outage";
const UPLOADERS: u64 = 4;
const BLOBS_EACH: u64 = 3;
const CHUNK: usize = 2 * MIB;
/// Times a client sends a request answered 503 again, or begins a lost upload again, before
/// the test gives up on that blob.
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
            return if unavailable { Step::Wait } else { Step::Lost };
        }
        let range = r.header("range");
        let msg = format!("[phase {phase}] {what}: {} (Range {range:?})", text(r));
        self.violations.lock().unwrap().push(msg);
        Step::Stop
    }
}

#[derive(PartialEq)]
enum Step {
    /// Answered as hoped: go on.
    Go,
    /// 503 UNAVAILABLE with Retry-After: send it again in a moment.
    Wait,
    /// 404 BLOB_UPLOAD_UNKNOWN: begin the upload again.
    Lost,
    /// Anything else (noted as a violation).
    Stop,
}

/// The requests of one upload.
#[derive(Clone, Copy)]
enum Req {
    Post,
    Patch(usize),
    Put,
}

/// Send `req` (for the upload at `location` of `bytes`) to the next replica (`turn`), and again
/// to the one after while it is answered 503, at most `ATTEMPTS` times; its answer.
async fn until_served(
    c: &Client<'_>,
    turn: &mut usize,
    req: Req,
    location: &str,
    bytes: &[u8],
) -> (Step, Option<Resp>) {
    let mut step = Step::Wait;
    for _ in 0..ATTEMPTS {
        *turn += 1;
        let (i, base) = (*turn % c.bases.len(), &c.bases[*turn % c.bases.len()]);
        let (r, what, ok, range) = match req {
            Req::Post => (
                begin(base, REPO).await,
                "POST".to_string(),
                202,
                String::new(),
            ),
            Req::Patch(n) => {
                let (start, chunk) = (n * CHUNK, bytes.chunks(CHUNK).nth(n).unwrap());
                let r = patch(base, location, start, chunk).await;
                let range = format!("0-{}", start + chunk.len() - 1);
                (r, format!("PATCH chunk {n}"), 202, range)
            }
            Req::Put => {
                let r = put(base, location, &digest(bytes), &[]).await;
                (r, "PUT".to_string(), 201, String::new())
            }
        };
        let what = format!("{what} of {} on replica {i}", c.who);
        step = c.log.note(&what, &r, ok, &range);
        if step != Step::Wait {
            return (step, r.ok());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (step, None)
}

/// One client's view: the replicas, which blob, and where answers are noted.
struct Client<'a> {
    bases: &'a [String],
    who: String,
    log: &'a Log,
}

/// One attempt at uploading `bytes`: POST, PATCHes, PUT, each request on the next replica
/// (`turn`), a request answered 503 sent again.
async fn attempt(c: &Client<'_>, bytes: &[u8], turn: &mut usize) -> Step {
    let (step, r) = until_served(c, turn, Req::Post, "", bytes).await;
    if step != Step::Go {
        return step;
    }
    let mut location = r.unwrap().header("location").to_string();
    for n in 0..bytes.len().div_ceil(CHUNK) {
        let (step, r) = until_served(c, turn, Req::Patch(n), &location, bytes).await;
        if step != Step::Go {
            return step;
        }
        location = r.unwrap().header("location").to_string();
    }
    let (step, r) = until_served(c, turn, Req::Put, &location, bytes).await;
    if step == Step::Go {
        let (got, d) = (
            r.unwrap().header("docker-content-digest").to_string(),
            digest(bytes),
        );
        if got != d {
            let msg = format!(
                "PUT of {}: 201 with Docker-Content-Digest {got}, not {d}",
                c.who
            );
            c.log.violations.lock().unwrap().push(msg);
            return Step::Stop;
        }
    }
    step
}

/// Upload this client's blobs one after the other, beginning again when an upload was lost;
/// the blobs that did not make it.
async fn uploader(u: u64, bases: Vec<String>, log: &Log) -> Vec<String> {
    let mut turn = u as usize;
    let mut failed = Vec::new();
    for b in 0..BLOBS_EACH {
        let bytes = blob(u, b);
        let c = Client {
            bases: &bases,
            who: format!("client {u} blob {b}"),
            log,
        };
        let mut step = Step::Lost;
        for _ in 0..ATTEMPTS {
            step = attempt(&c, &bytes, &mut turn).await;
            if step != Step::Lost {
                break;
            }
        }
        if step != Step::Go {
            failed.push(c.who);
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
        let c = Client {
            bases: &bases,
            who: format!("fresh blob {i}"),
            log: &after,
        };
        let step = attempt(&c, bytes, &mut i.clone()).await;
        let violations = after.violations.lock().unwrap().clone();
        assert!(
            step == Step::Go && after.clean_failures.load(Ordering::SeqCst) == 0,
            "an upload begun after Redis came back, every request the first time: \
             {violations:?} {:#?}",
            after.counts.lock().unwrap()
        );
    }

    // Every blob is a layer in ECR with exactly its bytes, in exact parts.
    let mut blobs: Vec<Vec<u8>> = (0..UPLOADERS)
        .flat_map(|u| (0..BLOBS_EACH).map(move |b| blob(u, b)))
        .collect();
    blobs.extend(fresh);
    assert_blobs_in_ecr(&c.ecr, &c.emu, &bases[0], REPO, &blobs).await;
}

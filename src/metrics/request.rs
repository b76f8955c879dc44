//! What one request caused, gathered while it runs for its access-log line: its route kind and
//! repository (noted by the dispatcher), its OCI error code (noted where errors become
//! responses), the request ids of the ECR calls it made (noted where calls are sent, in `ecr`),
//! and the body bytes it received (noted where bodies are read). A task-local `Record` holds
//! them: the access-log layer makes one per request and runs the request's future in `scope`,
//! so nothing is threaded through the handlers. Outside a scope every note is a no-op.
//!
//! What it misses: task-locals do not follow `tokio::spawn`. Work a request hands to another
//! task must be wrapped in `carry` (an upload's part sent while the next one fills is), and what
//! such a task notes after the request's line was written is lost: a part still in flight when
//! its request ended early (the client went away) lands in the next request of the upload, but
//! its ECR request id stays with the first. Owns no metric families (see `Metrics`) and no log
//! line (see `proxy::server`).

use super::Metrics;
use futures_util::future::Either;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::task::futures::TaskLocalFuture;

tokio::task_local! {
    static CURRENT: Arc<Record>;
}

/// The route kind of a request nothing has classified (an unknown path).
pub const UNKNOWN_ROUTE: &str = "unknown";

/// What one request caused so far.
pub struct Record {
    metrics: Metrics,
    bytes_in: AtomicU64,
    facts: Mutex<Facts>,
}

/// The notes that are not counters.
#[derive(Debug)]
pub struct Facts {
    pub route: &'static str,
    pub repository: Option<String>,
    /// The OCI error code and the error's text, when the answer was an error.
    pub error: Option<(&'static str, String)>,
    /// The request ids of the first `MAX_ECR_IDS` ECR calls (a long upload makes one call a
    /// part: the line and the memory it takes stay bounded); `ecr_calls` counts them all.
    pub ecr_request_ids: Vec<String>,
    pub ecr_calls: u64,
    /// Who the auth layer found the client to be (`[auth]` only).
    pub subject: Option<Arc<str>>,
}

/// ECR request ids kept per request for its access line.
pub const MAX_ECR_IDS: usize = 16;

impl Record {
    pub fn new(metrics: Metrics) -> Arc<Record> {
        Arc::new(Record {
            metrics,
            bytes_in: AtomicU64::new(0),
            facts: Mutex::new(Facts {
                route: UNKNOWN_ROUTE,
                repository: None,
                error: None,
                subject: None,
                ecr_request_ids: Vec::new(),
                ecr_calls: 0,
            }),
        })
    }

    /// Body bytes received from the client.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }

    pub fn facts(&self) -> MutexGuard<'_, Facts> {
        self.facts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Run `f` with `record` as the current request's.
pub fn scope<F: Future>(record: Arc<Record>, f: F) -> TaskLocalFuture<Arc<Record>, F> {
    CURRENT.scope(record, f)
}

/// `f`, to be spawned, noting into the current request's record (if there is one).
pub fn carry<F: Future>(f: F) -> Either<TaskLocalFuture<Arc<Record>, F>, F> {
    match CURRENT.try_with(Arc::clone) {
        Ok(record) => Either::Left(CURRENT.scope(record, f)),
        Err(_) => Either::Right(f),
    }
}

fn with(note: impl FnOnce(&Record)) {
    let _outside_a_request = CURRENT.try_with(|r| note(r));
}

/// The request's route kind (never a name a client chose) and repository.
pub fn set_route(kind: &'static str, repository: Option<&str>) {
    with(|r| {
        let mut f = r.facts();
        f.route = kind;
        f.repository = repository.map(str::to_string);
    });
}

/// The current request's route kind, `UNKNOWN_ROUTE` until the dispatcher set one.
pub fn route() -> &'static str {
    CURRENT
        .try_with(|r| r.facts().route)
        .unwrap_or(UNKNOWN_ROUTE)
}

/// The subject the request was authenticated as.
pub fn set_subject(name: &Arc<str>) {
    with(|r| r.facts().subject = Some(name.clone()));
}

/// The request is answered with an error.
pub fn note_error(code: &'static str, text: &str) {
    with(|r| r.facts().error = Some((code, text.to_string())));
}

/// An ECR call made for the request, successful or not.
pub fn note_ecr_request_id(id: &str) {
    with(|r| {
        let mut f = r.facts();
        f.ecr_calls += 1;
        if f.ecr_request_ids.len() < MAX_ECR_IDS {
            f.ecr_request_ids.push(id.to_string());
        }
    });
}

/// Blob bytes of an upload received from the client (also counted in the registry).
pub fn received_blob_bytes(n: u64) {
    with(|r| {
        r.bytes_in.fetch_add(n, Ordering::Relaxed);
        r.metrics.upload_bytes(n);
    });
}

/// Other body bytes received from the client (a manifest).
pub fn received_body_bytes(n: u64) {
    with(|r| {
        r.bytes_in.fetch_add(n, Ordering::Relaxed);
    });
}

//! One upload session. What never changes (ids, repository, part size, client), what anyone may
//! read without waiting (bytes received, last activity, cancellation), and `State`, the bytes and
//! byte counts only a `Writer` touches, behind the session's lock. No digest state: ECR computes
//! the layer's digest at CompleteLayerUpload and refuses a mismatch. Status and cancel requests never
//! take that lock, so a request stalled mid-body cannot hold them up.

use super::writer::{InFlight, Tail};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// One upload in progress.
pub struct Session {
    id: String,
    repo: String,
    ecr_upload_id: String,
    part_size: u64,
    /// The client's upload slot, given back when the session is dropped.
    slot: super::Slot,
    created: Instant,
    /// Bytes accepted from the client (a copy of `State::received`, readable without the lock).
    received: AtomicU64,
    /// Milliseconds after `created` of the last byte or request.
    last_active_ms: AtomicU64,
    cancel: CancellationToken,
    /// With a shared store: the version of the stored state this copy matches (0: none).
    version: AtomicU64,
    pub(super) state: Arc<Mutex<State>>,
}

/// The upload's bytes and parts: only `Writer` (and the reaper's parking) touch these.
pub(super) struct State {
    pub(super) received: u64,
    /// Bytes ECR has acknowledged.
    pub(super) committed: u64,
    pub(super) tail: Tail,
    pub(super) in_flight: Option<InFlight>,
    /// Where the request began whose CompleteLayerUpload failed in a way worth retrying: every
    /// byte is in ECR, and the same request sent again is a resend, not more bytes.
    pub(super) completing: Option<u64>,
}

impl State {
    /// Whether the tail holds part memory right now.
    pub(super) fn has_memory(&self) -> bool {
        matches!(self.tail, Tail::Filling(..))
    }
}

impl Session {
    pub(super) fn new(
        id: String,
        repo: &str,
        ecr_upload_id: String,
        part_size: u64,
        slot: super::Slot,
    ) -> Session {
        Session {
            id,
            repo: repo.to_string(),
            ecr_upload_id,
            part_size,
            slot,
            created: Instant::now(),
            received: AtomicU64::new(0),
            last_active_ms: AtomicU64::new(0),
            cancel: CancellationToken::new(),
            version: AtomicU64::new(0),
            state: Arc::new(Mutex::new(State {
                received: 0,
                committed: 0,
                tail: Tail::Empty,
                in_flight: None,
                completing: None,
            })),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn repo(&self) -> &str {
        &self.repo
    }

    pub fn ecr_upload_id(&self) -> &str {
        &self.ecr_upload_id
    }

    pub fn part_size(&self) -> u64 {
        self.part_size
    }

    /// The client the upload counts against (`None` for the proxy's own).
    pub fn client(&self) -> Option<&super::Client> {
        self.slot.client.as_ref()
    }

    /// Bytes accepted from the client so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Acquire)
    }

    pub(super) fn set_received(&self, n: u64) {
        self.received.store(n, Ordering::Release);
    }

    /// The `Range` header value for what has been received (distribution's convention: `0-0` when empty).
    pub fn range(&self) -> String {
        format!("0-{}", self.received().saturating_sub(1))
    }

    pub fn location(&self) -> String {
        format!("/v2/{}/blobs/uploads/{}", self.repo, self.id)
    }

    /// Record activity (a byte arrived, a request began or ended).
    pub fn touch(&self) {
        let ms = self.created.elapsed().as_millis() as u64;
        self.last_active_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// How long since the last activity.
    pub fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed));
        self.created.elapsed().saturating_sub(last)
    }

    /// Cancelled when the upload is cancelled or expires: a request using it stops.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The version of the shared store's state this copy matches (0: none).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn set_version(&self, v: u64) {
        self.version.store(v, Ordering::Release);
    }
}

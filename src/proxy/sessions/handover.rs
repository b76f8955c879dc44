//! Uploads shared between replicas (`[sessions] redis_url`): a request of an upload takes the
//! upload's lock in Redis, works on a local copy of its session (the copy this process kept from
//! its last request, when Redis says no other replica has changed the upload since; else one
//! rebuilt from the stored record and tail), and at its end saves where the upload stands (the
//! tail's new bytes only, when it can) and releases the lock. The body streams on the local fast
//! path in between; only the tail travels through Redis. The lease is renewed while the request
//! runs; a request whose lease cannot be renewed stops before another replica could take over.
//! A request dropped mid-way still saves (on a task of its own). Without a shared store, `Hold`
//! is just the local writer.
//!
//! Owns the order of those steps and what a failure of the store means (the request gets 503,
//! the upload is not resumed from a state that may not match ECR); `hold` owns a request's hold
//! and its end. Knows no HTTP.

mod hash_state;
mod hold;

pub use hold::Hold;

use super::writer::{SavedTail, WriteError, Writer, WriterCtx};
use super::{Client, Session, Sessions, Slot};
use crate::metrics::Metrics;
use crate::shared::{
    Begin, Invalidation, InvalidationKind, Lease, Position, Shared, SharedError, Status, TailWrite,
    UploadRecord,
};
use hold::Taken;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long a request's lock lasts without renewal: how long an upload whose replica died
/// mid-request stays locked.
pub const LEASE: Duration = Duration::from_secs(10);
const RENEW_EVERY: Duration = Duration::from_secs(3);
/// Without a successful renewal for this long the lease may run out unseen: the request stops.
const RENEW_GIVE_UP: Duration = Duration::from_secs(7);
/// How long a request waits for another request of the same upload to finish.
const BUSY_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error("the upload session store (Redis) cannot be used: {0}")]
    Store(#[from] SharedError),
    #[error("no upload `{0}` in this repository")]
    Unknown(String),
    #[error(
        "upload `{0}` ended: a request of it stopped without saving where it stood (its replica \
         stopped, or the session store failed it), so its state may not match ECR's; start the \
         upload again"
    )]
    Abandoned(String),
    #[error("another request of upload `{id}` held it for {secs} s; retry later", secs = BUSY_WAIT.as_secs())]
    Busy { id: String },
    #[error(
        "upload `{0}` was cancelled, completed or taken over elsewhere while this request ran"
    )]
    Fenced(String),
    #[error("the stored tail of upload `{0}` does not match its record; start the upload again")]
    Damaged(String),
    #[error(
        "where upload `{id}` stands could not be saved in the session store ({why}); it is as its \
         previous request left it: ask its status and send the rest again"
    )]
    NotSaved { id: String, why: String },
    #[error(
        "where upload `{id}` stands could not be saved in the session store ({why}) after some of \
         its bytes reached ECR; start the upload again"
    )]
    Lost { id: String, why: String },
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// What one attempt at an upload's lock got: the lock (held by its guard) or why not.
enum Begun {
    Locked(Taken, UploadRecord),
    Not(Begin),
}

/// The shared store and what it needs of this process.
#[derive(Clone)]
pub struct Store {
    pub shared: Shared,
    pub sessions: Arc<Sessions>,
    /// The session idle time: stored uploads expire after it, as local ones do.
    pub ttl: Duration,
    /// Where takeovers are counted.
    pub metrics: Metrics,
}

impl Store {
    /// Start a new upload: the local session and its stored record; with `lock`, a hold on it
    /// for the request that started it.
    pub async fn create(
        &self,
        ctx: WriterCtx,
        repo: &str,
        ecr_upload_id: String,
        part_size: u64,
        slot: Slot,
        lock: bool,
    ) -> Result<(Arc<Session>, Option<Hold>), HandoverError> {
        let session = self
            .sessions
            .create(repo, ecr_upload_id.clone(), part_size, slot);
        let record = UploadRecord {
            repository: repo.to_string(),
            ecr_upload_id,
            part_size,
            committed: 0,
            received: 0,
            version: 1,
            completing: None,
            hash_state: String::new(),
        };
        let lease = match self
            .shared
            .create_upload(session.id(), &record, self.ttl, lock.then_some(LEASE))
            .await
        {
            Ok(lease) => lease,
            Err(e) => {
                self.sessions.remove_exact(&session);
                return Err(e.into());
            }
        };
        session.set_version(1);
        let Some(lease) = lease else {
            return Ok((session, None));
        };
        let taken = Taken::new(self, lease);
        let w = Writer::lock(session.clone(), ctx).await;
        let hold = self.hold(w, taken, Position::default(), 1);
        Ok((session, Some(hold)))
    }

    /// Take upload `id` of `repo` for one request, waiting for another request of it to end.
    pub async fn begin(
        &self,
        ctx: WriterCtx,
        repo: &str,
        id: &str,
        client: Option<Client>,
    ) -> Result<Hold, HandoverError> {
        let deadline = Instant::now() + BUSY_WAIT;
        let mut pause = Duration::from_millis(2);
        let (taken, record) = loop {
            let begin = match self.try_begin(id).await? {
                Begun::Locked(taken, record) => break (taken, record),
                Begun::Not(begin) => begin,
            };
            match begin {
                Begin::Locked(..) => unreachable!("handed over as `Begun::Locked`"),
                Begin::Busy if Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Begin::Busy => return Err(HandoverError::Busy { id: id.into() }),
                Begin::Unknown => {
                    self.sessions.remove(id);
                    return Err(HandoverError::Unknown(id.into()));
                }
                Begin::Abandoned => {
                    self.sessions.remove(id);
                    self.ended(repo, id);
                    return Err(HandoverError::Abandoned(id.into()));
                }
            }
        };
        if record.repository != repo {
            return Err(HandoverError::Unknown(id.into())); // `taken` releases the lock
        }
        // A tail as long as a part is possible: a request dropped while its full part waited
        // for the one before saves it so (the next write ships it).
        let tail_len = record.received.checked_sub(record.committed);
        if tail_len.is_none_or(|t| t > record.part_size) {
            return Err(self.damaged(&taken).await);
        }
        let saved = Position {
            committed: record.committed,
            received: record.received,
            completing: record.completing,
        };
        // The copy this process kept is current when no one has saved the upload since.
        if let Some(s) = self.sessions.get(repo, id) {
            if s.version() == record.version && s.received() == record.received {
                let w = Writer::lock(s, ctx.clone()).await;
                // Dropped meanwhile (its tail may be gone): rebuilt below instead.
                let current = !w.session().is_cancelled()
                    && w.committed() == record.committed
                    && w.received() == record.received;
                if current {
                    return Ok(self.hold(w, taken, saved, record.version));
                }
            }
        }
        let slot = self.sessions.adopt_slot(client);
        let session = self.sessions.insert(
            id.to_string(),
            repo,
            record.ecr_upload_id.clone(),
            record.part_size,
            slot,
            record.version,
        );
        let mut w = Writer::lock(session.clone(), ctx).await;
        if let Err(e) = self.load_tail(&mut w, &record).await {
            self.sessions.remove_exact(&session);
            if matches!(e, HandoverError::Damaged(_)) {
                return Err(self.damaged(&taken).await);
            }
            return Err(e); // `taken` releases the lock
        }
        // Replicas holding an older copy drop it (this one's is held by this request).
        self.announce(repo, id, Some(record.version));
        Ok(self.hold(w, taken, saved, record.version))
    }

    /// One attempt at the lock, on a task of its own that hands a taken lock over as a `Taken`
    /// guard: if the request goes away meanwhile, the lock is released rather than left to
    /// expire (and the upload abandoned).
    async fn try_begin(&self, id: &str) -> Result<Begun, HandoverError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (store, upload) = (self.clone(), id.to_string());
        tokio::spawn(async move {
            let begun = match store.shared.begin_upload(&upload, LEASE, store.ttl).await {
                Ok(Begin::Locked(lease, record)) => {
                    Ok(Begun::Locked(Taken::new(&store, lease), record))
                }
                Ok(other) => Ok(Begun::Not(other)),
                Err(e) => Err(e),
            };
            let _ = tx.send(begun); // unreceived, a `Taken` releases its lock when dropped
        });
        match rx.await {
            Ok(begun) => Ok(begun?),
            Err(_) => Err(HandoverError::Busy { id: id.into() }),
        }
    }

    /// The stored upload held by `taken` does not add up: it is deleted, if the lock is still
    /// this request's (a request that lost its lease meanwhile must not delete an upload that
    /// another request may hold by now).
    async fn damaged(&self, taken: &Taken) -> HandoverError {
        let lease = taken.lease();
        match self.shared.delete_held_upload(lease).await {
            Ok(true) => HandoverError::Damaged(lease.upload.clone()),
            Ok(false) => HandoverError::Fenced(lease.upload.clone()),
            Err(e) => e.into(),
        }
    }

    /// Fill a new local copy with the stored state (memory for the tail taken first).
    async fn load_tail(&self, w: &mut Writer, record: &UploadRecord) -> Result<(), HandoverError> {
        let tail_len = record.received - record.committed;
        if tail_len == 0 {
            w.restore(record.committed, record.completing, None);
            self.metrics.upload_takeover("none");
            return Ok(());
        }
        let memory = w.part_memory().await?;
        let id = w.session().id().to_string();
        let segments = self.shared.upload_tail_segments(&id).await?;
        if segments.iter().map(|s| s.len() as u64).sum::<u64>() != tail_len {
            return Err(HandoverError::Damaged(id));
        }
        // The hash state saved with the tail, so its bytes need not be hashed again (a state
        // that does not fit them is not used: `PartBody::resume`).
        let saved = SavedTail {
            memory,
            segments: &segments,
            hash_state: hash_state::from_store(record),
        };
        let resumed = w.restore(record.committed, record.completing, Some(saved));
        self.metrics
            .upload_takeover(if resumed { "resumed" } else { "rehashed" });
        Ok(())
    }

    /// Bytes received by upload `id` of `repo`, as last saved.
    pub async fn status(&self, repo: &str, id: &str) -> Result<u64, HandoverError> {
        match self.shared.upload_status(id).await? {
            Status::Open(r) if r.repository == repo => Ok(r.received),
            Status::Abandoned => Err(HandoverError::Abandoned(id.into())),
            _ => Err(HandoverError::Unknown(id.into())),
        }
    }

    /// Cancel upload `id` of `repo`, wherever a request of it runs.
    pub async fn cancel(&self, repo: &str, id: &str) -> Result<(), HandoverError> {
        match self.status(repo, id).await {
            Ok(_) | Err(HandoverError::Abandoned(_)) => {}
            Err(e) => return Err(e),
        }
        self.shared.delete_upload(id).await?;
        self.ended(repo, id);
        Ok(())
    }

    /// The upload is over: this process's copy goes, and the other replicas are told to drop
    /// theirs (and stop a request still using one).
    pub(super) fn ended(&self, repo: &str, id: &str) {
        self.sessions.remove(id);
        self.announce(repo, id, None);
    }

    /// Tell the replicas that upload `id` ended (`None`) or moved on from `version`.
    fn announce(&self, repo: &str, id: &str, version: Option<u64>) {
        self.shared.invalidate(Invalidation {
            kind: InvalidationKind::Upload,
            repository: repo.to_string(),
            tag: None,
            digest: None,
            upload: Some(id.to_string()),
            version,
        });
    }

    /// Release a lock taken for nothing (the stored state is unchanged).
    pub(super) async fn release(&self, lease: &Lease) {
        let r = self
            .shared
            .end_upload(lease, Position::default(), TailWrite::Unchanged, self.ttl)
            .await;
        if let Err(e) = r {
            tracing::debug!(upload = %lease.upload, "releasing an upload's lock: {e}");
        }
    }

    fn hold(&self, w: Writer, taken: Taken, saved: Position, version: u64) -> Hold {
        Hold::shared(self.clone(), w, taken, saved, version)
    }
}

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
//! the upload is not resumed from a state that may not match ECR). Knows no HTTP.

use super::writer::{WriteError, Writer, WriterCtx};
use super::{Client, Session, Sessions, Slot};
use crate::shared::{
    Begin, End, Invalidation, InvalidationKind, Lease, Shared, SharedError, Status, TailWrite,
    UploadRecord,
};
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
        "upload `{0}` was ended: the replica serving it stopped in the middle of a request, so \
         its state may not match ECR's; start the upload again"
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
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// The shared store and what it needs of this process.
#[derive(Clone)]
pub struct Store {
    pub shared: Shared,
    pub sessions: Arc<Sessions>,
    /// The session idle time: stored uploads expire after it, as local ones do.
    pub ttl: Duration,
}

/// One request's hold on an upload: the local writer and, with a shared store, the lock.
pub struct Hold {
    writer: Option<Writer>,
    shared: Option<Held>,
}

struct Held {
    store: Store,
    lease: Lease,
    /// Committed and received bytes as stored when the request began, and that state's version.
    saved: (u64, u64),
    version: u64,
    renewer: tokio::task::AbortHandle,
}

impl std::ops::Deref for Hold {
    type Target = Writer;
    fn deref(&self) -> &Writer {
        self.writer.as_ref().expect("a hold keeps its writer")
    }
}

impl std::ops::DerefMut for Hold {
    fn deref_mut(&mut self) -> &mut Writer {
        self.writer.as_mut().expect("a hold keeps its writer")
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.shared.is_none() {
            return;
        }
        // The request was dropped (its client went away): save where the upload stands anyway.
        let mut rest = Hold {
            writer: self.writer.take(),
            shared: self.shared.take(),
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = rest.end(true).await {
                    tracing::warn!("saving an upload after its request was dropped: {e}");
                }
            });
        }
    }
}

impl Hold {
    /// A hold without a shared store.
    pub fn local(writer: Writer) -> Hold {
        Hold {
            writer: Some(writer),
            shared: None,
        }
    }

    /// End the request's hold. `keep`: save where the upload stands for its next request;
    /// else the upload is over (completed or failed for good) and is forgotten everywhere. On an
    /// error the local copy is dropped too: the upload cannot be resumed from it.
    pub async fn end(&mut self, keep: bool) -> Result<(), HandoverError> {
        let Some(held) = self.shared.take() else {
            return Ok(());
        };
        held.renewer.abort();
        let w = self.writer.as_mut().expect("a hold keeps its writer");
        let session = w.session().clone();
        let store = &held.store;
        if !keep {
            let deleted = store.shared.delete_upload(session.id()).await;
            store.ended(session.repo(), session.id());
            return deleted.map_err(Into::into);
        }
        // A part still in flight is waited for: what is saved must be what ECR holds.
        let _ = w.wait().await;
        let saved = save(&held, w).await;
        match saved {
            Ok(Some(version)) => {
                session.set_version(version);
                Ok(())
            }
            Ok(None) => {
                store.sessions.remove_exact(&session);
                Err(HandoverError::Fenced(session.id().into()))
            }
            Err(e) => {
                store.sessions.remove_exact(&session);
                Err(e)
            }
        }
    }
}

/// Save the writer's state under `held`'s lease and release it: the version now stored, or
/// `None` when fenced out.
async fn save(held: &Held, w: &mut Writer) -> Result<Option<u64>, HandoverError> {
    let (committed, received) = (w.committed(), w.received());
    let (saved_committed, saved_received) = held.saved;
    let shared = &held.store.shared;
    let ttl = held.store.ttl;
    if (committed, received) == held.saved {
        let end = shared
            .end_upload(&held.lease, committed, received, TailWrite::Unchanged, ttl)
            .await?;
        return Ok((end == End::Saved).then_some(held.version));
    }
    if committed == saved_committed && received > saved_received {
        let at = saved_received - committed;
        let bytes = w.tail_from(at).await?;
        let tail = TailWrite::Append { at, bytes: &bytes };
        match shared
            .end_upload(&held.lease, committed, received, tail, ttl)
            .await?
        {
            End::Saved => return Ok(Some(held.lease.token)),
            End::Fenced => return Ok(None),
            End::TailMismatch => {} // replaced whole below
        }
    }
    let bytes = w.tail_from(0).await?;
    let end = shared
        .end_upload(
            &held.lease,
            committed,
            received,
            TailWrite::Replace(&bytes),
            ttl,
        )
        .await?;
    Ok((end == End::Saved).then_some(held.lease.token))
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
        let renewer = spawn_renewer(self.clone(), lease.clone());
        let w = Writer::lock(session.clone(), ctx).await;
        let hold = self.hold(w, lease, (0, 0), 1, renewer);
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
        let (lease, record) = loop {
            match self.shared.begin_upload(id, LEASE, self.ttl).await? {
                Begin::Locked(lease, record) => break (lease, record),
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
        let tail_len = record.received.checked_sub(record.committed);
        let fits = tail_len.is_some_and(|t| t < record.part_size.max(1));
        if record.repository != repo || !fits {
            self.release(&lease).await;
            if record.repository != repo {
                return Err(HandoverError::Unknown(id.into()));
            }
            let _ = self.shared.delete_upload(id).await;
            return Err(HandoverError::Damaged(id.into()));
        }
        let saved = (record.committed, record.received);
        // Renewed from now on: loading the tail may wait for memory.
        let renewer = spawn_renewer(self.clone(), lease.clone());
        // The copy this process kept is current when no one has saved the upload since.
        if let Some(s) = self.sessions.get(repo, id) {
            if s.version() == record.version && s.received() == record.received {
                let w = Writer::lock(s, ctx.clone()).await;
                if w.committed() == record.committed && w.received() == record.received {
                    return Ok(self.hold(w, lease, saved, record.version, renewer));
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
        );
        session.set_version(record.version);
        let mut w = Writer::lock(session.clone(), ctx).await;
        match self.load_tail(&mut w, &record).await {
            Ok(()) => Ok(self.hold(w, lease, saved, record.version, renewer)),
            Err(e) => {
                renewer.abort();
                self.sessions.remove_exact(&session);
                if matches!(e, HandoverError::Damaged(_)) {
                    let _ = self.shared.delete_upload(id).await;
                } else {
                    self.release(&lease).await;
                }
                Err(e)
            }
        }
    }

    /// Fill a new local copy with the stored state (memory for the tail taken first).
    async fn load_tail(&self, w: &mut Writer, record: &UploadRecord) -> Result<(), HandoverError> {
        let tail_len = record.received - record.committed;
        if tail_len == 0 {
            w.restore(record.committed, None);
            return Ok(());
        }
        let memory = w.part_memory().await?;
        let id = w.session().id().to_string();
        let bytes = self.shared.upload_tail(&id).await?;
        if bytes.len() as u64 != tail_len {
            return Err(HandoverError::Damaged(id));
        }
        w.restore(record.committed, Some((memory, &bytes)));
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
    fn ended(&self, repo: &str, id: &str) {
        self.sessions.remove(id);
        self.shared.invalidate(Invalidation {
            kind: InvalidationKind::Upload,
            repository: repo.to_string(),
            tag: None,
            digest: None,
            upload: Some(id.to_string()),
        });
    }

    /// Release a lock taken for nothing (the stored state is unchanged).
    async fn release(&self, lease: &Lease) {
        let r = self
            .shared
            .end_upload(lease, 0, 0, TailWrite::Unchanged, self.ttl)
            .await;
        if let Err(e) = r {
            tracing::debug!(upload = %lease.upload, "releasing an upload's lock: {e}");
        }
    }

    fn hold(
        &self,
        w: Writer,
        lease: Lease,
        saved: (u64, u64),
        version: u64,
        renewer: tokio::task::AbortHandle,
    ) -> Hold {
        Hold {
            writer: Some(w),
            shared: Some(Held {
                store: self.clone(),
                lease,
                saved,
                version,
                renewer,
            }),
        }
    }
}

/// Keep the lease while the request runs; stop the request (this process's copy of the upload
/// dropped) when it is lost or cannot be renewed in time, before another replica could take the
/// upload over.
fn spawn_renewer(store: Store, lease: Lease) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        let mut last_ok = Instant::now();
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            match store.shared.renew_upload(&lease, LEASE, store.ttl).await {
                Ok(true) => last_ok = Instant::now(),
                Ok(false) => {
                    tracing::warn!(upload = %lease.upload, "lost an upload's lock mid-request: the request stops");
                    store.sessions.remove(&lease.upload);
                    return;
                }
                Err(e) if last_ok.elapsed() >= RENEW_GIVE_UP => {
                    tracing::warn!(upload = %lease.upload, "cannot renew an upload's lock ({e}): the request stops");
                    store.sessions.remove(&lease.upload);
                    return;
                }
                Err(_) => {}
            }
        }
    })
    .abort_handle()
}

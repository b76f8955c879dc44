//! A request's `Hold` on an upload: its writer and, with the shared store, its lease (renewed by
//! a task of its own until the save at the end), and what ending it means: saved for the next
//! request (only the tail's new bytes when it can, most of them sent in segments while the body
//! still arrives, so the transfer to Redis overlaps the client's), or forgotten everywhere. A hold dropped
//! before its end (the client went away) still saves, on a task of its own; a lock taken for a
//! request whose hold was never built (`Taken`) is released. Knows nothing of HTTP.

use super::{HandoverError, Store, LEASE, RENEW_EVERY, RENEW_GIVE_UP};
use crate::proxy::sessions::writer::Writer;
use crate::shared::{End, Lease, Position, TailWrite};
use tokio::time::Instant;

/// One request's hold on an upload: the local writer and, with a shared store, the lock.
pub struct Hold {
    writer: Option<Writer>,
    shared: Option<Held>,
}

pub(super) struct Held {
    store: Store,
    lease: Lease,
    /// Where the upload stood in the store when the request began, and that state's version.
    saved: Position,
    version: u64,
    renewer: Renewer,
    /// Whether the segments sent during the request are to be deleted after the save.
    presaved_dropped: bool,
    /// Tail segments sent to Redis while the body still arrives, in order (listed at the save).
    presaved: Vec<Presave>,
}

/// A segment of the tail sent while the request runs: its name, the upload offset its bytes
/// end at, and the write.
struct Presave {
    name: String,
    end: u64,
    task: tokio::task::JoinHandle<Result<(), crate::shared::SharedError>>,
}

/// Tail bytes are sent to Redis in segments of at least this while the body arrives, so the
/// save at the end carries only the last ones (the transfer overlaps the client's).
const PRESAVE: u64 = 1 << 20;
/// At most this many segments per request (the rest goes at the end).
const MAX_PRESAVES: usize = 8;

/// The task that renews a lease; stopped when dropped, however the request ends.
pub(super) struct Renewer(tokio::task::AbortHandle);

impl Renewer {
    fn stop(&self) {
        self.0.abort();
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A lock taken for a request whose hold is not built yet: released unchanged if the request
/// goes away (or fails) first.
pub(super) struct Taken {
    store: Store,
    lease: Option<Lease>,
    renewer: Option<Renewer>,
}

impl Taken {
    pub(super) fn new(store: &Store, lease: Lease) -> Taken {
        Taken {
            store: store.clone(),
            renewer: Some(spawn_renewer(store.clone(), lease.clone())),
            lease: Some(lease),
        }
    }

    pub(super) fn lease(&self) -> &Lease {
        self.lease.as_ref().expect("held until taken apart")
    }

    pub(super) fn into_parts(mut self) -> (Lease, Renewer) {
        let lease = self.lease.take().expect("taken once");
        (lease, self.renewer.take().expect("taken once"))
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        self.renewer.take();
        if let Some(lease) = self.lease.take() {
            let store = self.store.clone();
            spawn(async move { store.release(&lease).await });
        }
    }
}

/// Spawn `task` on the current runtime, if there is one (none while a runtime shuts down).
pub(super) fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(task);
    }
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
        spawn(async move {
            if let Err(e) = rest.end(true).await {
                tracing::warn!("saving an upload after its request was dropped: {e}");
            }
        });
    }
}

impl Hold {
    /// A hold through the shared store: `taken`'s lock, on state `saved` of version `version`.
    pub(super) fn shared(
        store: Store,
        w: Writer,
        taken: Taken,
        saved: Position,
        version: u64,
    ) -> Hold {
        let (lease, renewer) = taken.into_parts();
        Hold {
            writer: Some(w),
            shared: Some(Held {
                store,
                lease,
                saved,
                version,
                renewer,
                presaved: Vec::new(),
                presaved_dropped: false,
            }),
        }
    }

    /// After bytes were written: send the tail's new bytes to Redis in the background once
    /// they are `PRESAVE` long, while no part has shipped since the request began (a shipped
    /// part makes the save rewrite the tail whole).
    pub fn after_write(&mut self) {
        let (Some(held), Some(w)) = (self.shared.as_mut(), self.writer.as_ref()) else {
            return;
        };
        if w.committed() != held.saved.committed
            || w.part_in_flight()
            || held.presaved.len() >= MAX_PRESAVES
        {
            return;
        }
        let from = held.presaved.last().map_or(held.saved.received, |p| p.end);
        if w.received() < from + PRESAVE {
            return;
        }
        let Ok(bytes) = w.tail_from(from - w.committed()) else {
            return;
        };
        let name = format!("{}.{}", held.lease.token, held.presaved.len());
        let (shared, id, ttl) = (
            held.store.shared.clone(),
            held.lease.upload.clone(),
            held.store.ttl,
        );
        let task_name = name.clone();
        let task =
            tokio::spawn(async move { shared.put_segment(&id, &task_name, &bytes, ttl).await });
        held.presaved.push(Presave {
            name,
            end: w.received(),
            task,
        });
    }

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
        let Some(mut held) = self.shared.take() else {
            return Ok(());
        };
        let w = self.writer.as_mut().expect("a hold keeps its writer");
        let session = w.session().clone();
        let store = held.store.clone();
        if !keep {
            let presaved = std::mem::take(&mut held.presaved);
            drop(held);
            let names: Vec<String> = presaved.iter().map(|p| p.name.clone()).collect();
            for p in presaved {
                let _ = p.task.await;
            }
            let _ = store.shared.drop_segments(session.id(), &names).await;
            let deleted = store.shared.delete_upload(session.id()).await;
            store.ended(session.repo(), session.id());
            return deleted.map_err(Into::into);
        }
        // A part still in flight is waited for (the lease renewed meanwhile): what is saved
        // must be what ECR holds.
        let _ = w.wait().await;
        let id = session.id().to_string();
        match save(&mut held, w).await {
            Ok(Some(version)) => {
                session.set_version(version);
                Ok(())
            }
            Ok(None) => {
                store.sessions.remove_exact(&session);
                Err(HandoverError::Fenced(id))
            }
            Err(e) => {
                held.renewer.stop();
                store.sessions.remove_exact(&session);
                let why = e.to_string();
                // No part landed since the request began: the stored state still matches ECR.
                if w.committed() == held.saved.committed {
                    store.release(&held.lease).await;
                    return Err(HandoverError::NotSaved { id, why });
                }
                let _ = store.shared.delete_upload(&id).await;
                store.ended(session.repo(), &id);
                Err(HandoverError::Lost { id, why })
            }
        }
    }
}

/// Save the writer's state under `held`'s lease and release it: the version now stored, or
/// `None` when fenced out. The renewer stops just before (the save releases the lock).
async fn save(held: &mut Held, w: &Writer) -> Result<Option<u64>, HandoverError> {
    let presaved = std::mem::take(&mut held.presaved);
    let names: Vec<String> = presaved.iter().map(|p| p.name.clone()).collect();
    let end_of_presaved = presaved.last().map(|p| p.end);
    let mut sent = Ok(());
    for p in presaved {
        let r = p.task.await.unwrap_or_else(|e| {
            Err(crate::shared::SharedError::TimedOut {
                op: if e.is_cancelled() {
                    "set"
                } else {
                    "set (panicked)"
                },
            })
        });
        sent = sent.and(r);
    }
    let saved = save_listing(held, w, &names, end_of_presaved, sent).await;
    // After an error the save may have been carried out with its answer lost, and the segments
    // listed: they are left to expire with the upload rather than deleted from under it.
    let drop = match &saved {
        Ok(Some(_)) => held.presaved_dropped,
        Ok(None) => true,
        Err(_) => false,
    };
    if drop {
        let _ = held
            .store
            .shared
            .drop_segments(&held.lease.upload, &names)
            .await;
    }
    saved
}

/// The save proper, given the segments sent during the request (`names`, ending at upload
/// offset `presaved_end`, all written when `sent` is Ok): listed before the last bytes when the
/// save appends, else dropped (`held.presaved_dropped`).
async fn save_listing(
    held: &mut Held,
    w: &Writer,
    names: &[String],
    presaved_end: Option<u64>,
    sent: Result<(), crate::shared::SharedError>,
) -> Result<Option<u64>, HandoverError> {
    held.presaved_dropped = true;
    let now = Position {
        committed: w.committed(),
        received: w.received(),
        completing: w.completing(),
    };
    let before = held.saved;
    let shared = held.store.shared.clone();
    let ttl = held.store.ttl;
    if now == before {
        held.renewer.stop();
        let end = shared
            .end_upload(&held.lease, now, TailWrite::Unchanged, ttl)
            .await?;
        return Ok((end == End::Saved).then_some(held.version));
    }
    let appends = now.committed == before.committed && now.received > before.received;
    // Segments sent during the request count only if they all landed and the upload did not
    // go back before their end (a failed part rewinds it).
    let listed = match presaved_end {
        Some(end) if appends && sent.is_ok() && end <= now.received => names,
        _ => &[],
    };
    if appends {
        let at = before.received - now.committed;
        let from = presaved_end
            .filter(|_| !listed.is_empty())
            .unwrap_or(before.received);
        let bytes = w.tail_from(from - now.committed)?;
        held.renewer.stop();
        let tail = TailWrite::Append { at, bytes: &bytes };
        match shared
            .end_upload_after(
                &held.lease,
                now,
                listed,
                tail,
                &super::hash_state::to_store(w, held.lease.token),
                ttl,
            )
            .await?
        {
            End::Saved => {
                held.presaved_dropped = listed.is_empty();
                return Ok(Some(held.lease.token));
            }
            End::Fenced => return Ok(None),
            End::TailMismatch => {} // replaced whole below
        }
    }
    let bytes = w.tail_from(0)?;
    held.renewer.stop();
    let tail = TailWrite::Replace(&bytes);
    let end = shared
        .end_upload_after(
            &held.lease,
            now,
            &[],
            tail,
            &super::hash_state::to_store(w, held.lease.token),
            ttl,
        )
        .await?;
    Ok((end == End::Saved).then_some(held.lease.token))
}

/// Keep the lease while the request runs; stop the request (this process's copy of the upload
/// dropped) when it is lost or cannot be renewed in time, before another replica could take the
/// upload over.
fn spawn_renewer(store: Store, lease: Lease) -> Renewer {
    let task = tokio::spawn(async move {
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
    });
    Renewer(task.abort_handle())
}

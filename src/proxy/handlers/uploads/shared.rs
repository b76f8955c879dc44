//! Where an upload request gets its hold on the upload: from this process's session table, or
//! with `[sessions] redis_url` through the shared store (`sessions::handover`), so that any
//! replica serves any request of an upload. Also turns the store's failures into registry
//! errors: the store unreachable or busy is 503 with Retry-After (nothing was changed), an upload
//! it no longer has is BLOB_UPLOAD_UNKNOWN (the client starts again).

use super::{unknown, writer_ctx};
use crate::proxy::error::{RegistryError, RegistryResult};
use crate::proxy::sessions::handover::{HandoverError, Hold, Store};
use crate::proxy::sessions::writer::Writer;
use crate::proxy::sessions::{Client, Session, Slot};
use crate::proxy::App;
use std::sync::Arc;

/// The shared store, when `[sessions]` names one.
pub fn store(app: &App) -> Option<Store> {
    app.shared.as_ref().map(|shared| Store {
        shared: shared.clone(),
        sessions: app.sessions.clone(),
        ttl: app.config.session_idle,
        metrics: app.metrics.clone(),
    })
}

/// Open a session for a new ECR upload; with `lock`, hold it for this request. `shared`: the
/// upload may go on in later requests, so it goes into the shared store when there is one (a
/// one-request upload never leaves its request, and needs no store).
pub async fn create(
    app: &App,
    name: &str,
    ecr_upload_id: String,
    part_size: u64,
    slot: Slot,
    lock: bool,
    shared: bool,
) -> RegistryResult<(Arc<Session>, Option<Hold>)> {
    if let Some(store) = store(app).filter(|_| shared) {
        let ctx = writer_ctx(app);
        return store
            .create(ctx, name, ecr_upload_id, part_size, slot, lock)
            .await
            .map_err(handover_error);
    }
    let session = app.sessions.create(name, ecr_upload_id, part_size, slot);
    let hold = match lock {
        true => Some(Hold::local(
            Writer::lock(session.clone(), writer_ctx(app)).await,
        )),
        false => None,
    };
    Ok((session, hold))
}

/// Hold upload `id` of `name` for this request, once no other request holds it (or it is gone).
pub async fn lock(app: &App, name: &str, id: &str, client: Option<Client>) -> RegistryResult<Hold> {
    if let Some(store) = store(app) {
        return store
            .begin(writer_ctx(app), name, id, client)
            .await
            .map_err(handover_error);
    }
    let session = app
        .sessions
        .get(name, id)
        .ok_or_else(|| unknown(name, id))?;
    let cancel = session.cancellation().clone();
    let w = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(unknown(name, id)),
        w = Writer::lock(session, writer_ctx(app)) => w,
    };
    // Cancelled while this request waited (its tail may be gone): the upload is over.
    if w.session().is_cancelled() {
        return Err(unknown(name, id));
    }
    Ok(Hold::local(w))
}

/// Whether upload `id` of `name` exists (as last saved, with a shared store).
pub async fn exists(app: &App, name: &str, id: &str) -> RegistryResult<()> {
    match store(app) {
        Some(store) => store
            .status(name, id)
            .await
            .map(drop)
            .map_err(handover_error),
        None => app
            .sessions
            .get(name, id)
            .map(drop)
            .ok_or_else(|| unknown(name, id)),
    }
}

/// Refuse a request before any of its bytes were taken: the upload stays as it was.
pub async fn refuse(
    mut w: Hold,
    e: RegistryError,
) -> RegistryResult<http::Response<crate::body::Body>> {
    w.end(true).await.map_err(handover_error)?;
    Err(e)
}

/// What a client is told when the shared store fails it.
pub fn handover_error(e: HandoverError) -> RegistryError {
    match e {
        HandoverError::Store(_) | HandoverError::Busy { .. } => {
            RegistryError::Unavailable(format!("{e}; nothing of the upload was changed"))
        }
        HandoverError::NotSaved { .. } | HandoverError::Lost { .. } => {
            RegistryError::Unavailable(e.to_string())
        }
        HandoverError::Write(w) => super::Failure::from(w).error,
        HandoverError::Unknown(_)
        | HandoverError::Abandoned(_)
        | HandoverError::Fenced(_)
        | HandoverError::Damaged(_) => RegistryError::BlobUploadUnknown(e.to_string()),
    }
}

//! `/v2/<name>/blobs/uploads/…`: every upload form the spec allows (one-request POST, POST+PUT,
//! streamed or chunked PATCHes, final chunk on PUT, status, cancel, cross-repository mount with
//! a server-side copy), carried out as InitiateLayerUpload, UploadLayerPart per full part,
//! CompleteLayerUpload. Decides what a failed request leaves behind: a failure worth retrying
//! (throttling, ECR unavailable, memory busy, a broken or stalled body) keeps the upload where
//! the client can resume it (`Range`); one that cannot succeed ends it. The layer's digest is
//! ECR's to check: CompleteLayerUpload refuses bytes with another digest (DIGEST_INVALID, the
//! upload ends); the proxy checks only the digest's syntax, before any ECR call.

mod chunk;
mod feed;
mod outcome;
mod shared;

use super::blob_created;
use crate::body::{self, Body};
use crate::digest::Digest;
use crate::listener::Peer;
use crate::proxy::error::{RegistryError, RegistryResult};
use crate::proxy::route::query_param;
use crate::proxy::sessions::handover::Hold;
use crate::proxy::sessions::writer::{WriteError, Writer, WriterCtx};
use crate::proxy::sessions::Client;
use crate::proxy::{holder, repos, App};
use chunk::{check_content_range, is_resend};
use feed::feed;
use http::{Request, Response, StatusCode};
use hyper::body::{Body as _, Incoming};
use outcome::{accepted, respond, Failure};
use shared::{create, exists, handover_error, lock, refuse, store};

pub async fn start(
    app: &App,
    name: &str,
    req: Request<Incoming>,
) -> RegistryResult<Response<Body>> {
    let query = req.uri().query();
    let client = upload_client(&req);
    if let Some(mount) = query_param(query, "mount") {
        if let Ok(d) = Digest::parse(&mount) {
            if super::blobs::size(app, name, &d)
                .await
                .ok()
                .flatten()
                .is_some()
            {
                return Ok(blob_created(name, &d));
            }
            if let Some(from) = query_param(query, "from") {
                match copy_from(app, name, &d, &from, client.clone()).await {
                    Ok(true) => return Ok(blob_created(name, &d)),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(%from, digest = %d, "server-side mount failed, falling back to an upload: {e}")
                    }
                }
            }
        }
    }
    let digest = match query_param(query, "digest") {
        Some(d) => {
            Some(Digest::parse(&d).map_err(|e| RegistryError::DigestInvalid(e.to_string()))?)
        }
        None => None,
    };
    if let Some(d) = &digest {
        if req.body().is_end_stream() {
            // A one-request upload with no body: only the empty blob can match, and ECR cannot
            // store it (no parts), so the proxy answers for it.
            return if d.is_empty_blob() {
                // The repository must exist (or be created) for the blob to be readable there.
                let wanted = [d.to_string()];
                repos::creating(app, name, || app.ecr.check_layers(name, &wanted)).await?;
                Ok(blob_created(name, d))
            } else {
                Err(not_empty(d))
            };
        }
    }
    let slot = app
        .sessions
        .admit(client)
        .map_err(|e| RegistryError::TooManyRequests(e.to_string()))?;
    let (upload_id, ecr_part_size) =
        repos::creating(app, name, || app.ecr.initiate_upload(name)).await?;
    let part_size = crate::parts::choose(app.config.part_size, ecr_part_size);
    let bodiless = req.body().is_end_stream() && digest.is_none();
    let (session, hold) = create(
        app,
        name,
        upload_id,
        part_size,
        slot,
        !bodiless,
        digest.is_none(),
    )
    .await?;
    tracing::debug!(session = %session.id(), ecr_upload = %session.ecr_upload_id(), part_size, "upload started");
    let Some(mut w) = hold else {
        return Ok(accepted(session.location(), session.range(), session.id()));
    };
    let body = req.into_body();
    let outcome = async {
        feed(&mut w, body, app.config.uploads.body_read_timeout).await?;
        match &digest {
            Some(d) => complete(app, &mut w, d).await,
            None => w.wait().await.map(|_| None).map_err(Failure::from),
        }
    }
    .await;
    // A one-request upload is retried as a new POST, never resumed: nothing is kept for it.
    let outcome = outcome.map_err(|f| Failure {
        keep: f.keep && digest.is_none(),
        ..f
    });
    respond(app, w, outcome).await
}

pub async fn patch(
    app: &App,
    name: &str,
    id: &str,
    req: Request<Incoming>,
) -> RegistryResult<Response<Body>> {
    let mut w = lock(app, name, id, upload_client(&req)).await?;
    if let Err(e) = check_content_range(&w, &req) {
        return refuse(w, e).await;
    }
    let body = req.into_body();
    let outcome = async {
        feed(&mut w, body, app.config.uploads.body_read_timeout).await?;
        w.wait().await?;
        Ok(None)
    }
    .await;
    respond(app, w, outcome).await
}

pub async fn put(
    app: &App,
    name: &str,
    id: &str,
    req: Request<Incoming>,
) -> RegistryResult<Response<Body>> {
    // A digest the proxy cannot check leaves the upload as it was: the client may PUT again.
    // (An unknown upload is the first thing to say, as without the check.)
    let digest = query_param(req.uri().query(), "digest")
        .ok_or_else(|| {
            RegistryError::DigestInvalid("the digest query parameter is required".into())
        })
        .and_then(|d| Digest::parse(&d).map_err(|e| RegistryError::DigestInvalid(e.to_string())));
    let digest = match digest {
        Ok(d) => d,
        Err(e) => {
            exists(app, name, id).await?;
            return Err(e);
        }
    };
    let mut w = lock(app, name, id, upload_client(&req)).await?;
    if let Some(begun) = w.completing() {
        let resend = match is_resend(&w, &req, begun) {
            Ok(r) => r,
            Err(e) => return refuse(w, e).await,
        };
        if resend {
            // The same PUT again after its completion was throttled: its bytes are in ECR.
            let expected = w.received().saturating_sub(begun);
            let outcome = async {
                feed::discard(
                    req.into_body(),
                    expected,
                    app.config.uploads.body_read_timeout,
                )
                .await?;
                complete(app, &mut w, &digest).await
            }
            .await;
            return respond(app, w, outcome).await;
        }
    }
    if !req.body().is_end_stream() {
        if let Err(e) = check_content_range(&w, &req) {
            return refuse(w, e).await;
        }
    }
    let body = req.into_body();
    let outcome = async {
        feed(&mut w, body, app.config.uploads.body_read_timeout).await?;
        complete(app, &mut w, &digest).await
    }
    .await;
    respond(app, w, outcome).await
}

/// Status, without waiting for a request that is sending bytes to the upload (with a shared
/// store: where the upload stood when its last request ended).
pub async fn status(app: &App, name: &str, id: &str) -> RegistryResult<Response<Body>> {
    let received = match store(app) {
        Some(store) => store.status(name, id).await.map_err(handover_error)?,
        None => app
            .sessions
            .get(name, id)
            .ok_or_else(|| unknown(name, id))?
            .received(),
    };
    let range = format!("0-{}", received.saturating_sub(1));
    let location = format!("/v2/{name}/blobs/uploads/{id}");
    let mut r = accepted(location, range, id);
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

/// Cancel at once, even while a request is sending bytes to the upload (it stops, on whichever
/// replica it runs).
pub async fn cancel(app: &App, name: &str, id: &str) -> RegistryResult<Response<Body>> {
    match store(app) {
        Some(store) => store.cancel(name, id).await.map_err(handover_error)?,
        None => {
            app.sessions
                .get(name, id)
                .ok_or_else(|| unknown(name, id))?;
            // ECR has no abort: its upload expires by itself. Dropping the session frees its tail.
            app.sessions.remove(id);
        }
    }
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(body::empty())
        .expect("valid response"))
}

fn unknown(name: &str, id: &str) -> RegistryError {
    RegistryError::BlobUploadUnknown(format!("no upload `{id}` in repository `{name}`"))
}

fn writer_ctx(app: &App) -> WriterCtx {
    WriterCtx {
        ecr: app.ecr.clone(),
        budget: app.sessions.budget.clone(),
        spool: app.sessions.spool.clone(),
        budget_wait: app.config.uploads.budget_wait,
    }
}

/// Who the upload counts against (`uploads.max_uploads_per_client`): the signed-in subject,
/// else the client's address.
fn upload_client<B>(req: &Request<B>) -> Option<Client> {
    match req.extensions().get::<crate::auth::Subject>() {
        Some(s) if !s.is_anonymous() => Some(Client::Subject(s.name.clone())),
        _ => req
            .extensions()
            .get::<Peer>()
            .map(|p| Client::from(p.0.ip())),
    }
}

/// Mount without the client re-sending the bytes: copy the layer from repository `from` into
/// `name` inside the proxy (download from the source, upload into the target). `Ok(false)` when
/// the source does not have it.
async fn copy_from(
    app: &App,
    name: &str,
    digest: &Digest,
    from: &str,
    client: Option<Client>,
) -> RegistryResult<bool> {
    if from == name || !crate::names::is_repository_name(from) {
        return Ok(false);
    }
    if app
        .ecr
        .check_layers(from, &[digest.to_string()])
        .await?
        .pop()
        .flatten()
        .is_none()
    {
        return Ok(false);
    }
    let url = holder::download_url(app, from, digest).await?;
    let source = app.fetcher.get(&url, None).await?;
    if source.status() != StatusCode::OK {
        return Ok(false);
    }
    // The copy is an upload on the client's behalf: it takes one of the client's slots.
    let slot = app
        .sessions
        .admit(client)
        .map_err(|e| RegistryError::TooManyRequests(e.to_string()))?;
    let (upload_id, ecr_part_size) =
        repos::creating(app, name, || app.ecr.initiate_upload(name)).await?;
    let part_size = crate::parts::choose(app.config.part_size, ecr_part_size);
    // A copy never leaves this request, so it is never shared with other replicas.
    let session = app.sessions.create(name, upload_id, part_size, slot);
    let id = session.id().to_string();
    let mut w = Hold::local(Writer::lock(session, writer_ctx(app)).await);
    let copied = async {
        feed::copy(
            &mut w,
            source.into_body(),
            app.config.uploads.body_read_timeout,
        )
        .await?;
        complete(app, &mut w, digest).await
    }
    .await;
    app.sessions.remove(&id);
    if copied.is_ok() {
        tracing::info!(%from, to = name, %digest, "copied layer between repositories");
    }
    copied.map(|d| d.is_some()).map_err(|f| f.error)
}

/// Send the last part and complete the layer in ECR, which computes the layer's digest and
/// refuses one that differs from `digest` (InvalidLayerException → DIGEST_INVALID, the upload
/// ends). The proxy does not hash the bytes itself. An upload of no bytes never reaches ECR (it
/// cannot hold the empty blob): only the empty blob's digest matches it. `Some(digest)` on success.
async fn complete(app: &App, w: &mut Writer, digest: &Digest) -> Result<Option<Digest>, Failure> {
    if w.session().is_cancelled() {
        return Err(WriteError::Cancelled.into());
    }
    if w.received() == 0 {
        return if digest.is_empty_blob() {
            Ok(Some(digest.clone()))
        } else {
            Err(not_empty(digest).into())
        };
    }
    w.finish().await?;
    let s = w.session();
    let completed = app
        .ecr
        .complete_upload(s.repo(), s.ecr_upload_id(), digest.as_str())
        .await;
    if let Err(e) = completed {
        let failure = Failure::from(WriteError::from(e));
        if failure.keep {
            w.set_completing();
        }
        return Err(failure);
    }
    Ok(Some(digest.clone()))
}

/// An upload of no bytes given another digest than the empty blob's.
fn not_empty(given: &Digest) -> RegistryError {
    RegistryError::DigestInvalid(format!(
        "the upload is empty, so its digest is {}, not {given}",
        Digest::of(b"")
    ))
}

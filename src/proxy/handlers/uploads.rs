//! `/v2/<name>/blobs/uploads/…`: every upload form the spec allows (one-request POST, POST+PUT,
//! streamed or chunked PATCHes, final chunk on PUT, status, cancel, cross-repository mount with
//! a server-side copy),
//! carried out as InitiateLayerUpload, UploadLayerPart per full part, CompleteLayerUpload.

use super::blob_created;
use crate::body::{self, Body};
use crate::digest::Digest;
use crate::proxy::error::{RegistryError, RegistryResult};
use crate::proxy::route::query_param;
use crate::proxy::sessions::writer::Writer;
use crate::proxy::sessions::{Session, SessionRef};
use crate::proxy::{holder, repos, App};
use http::{header, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use sha2::Digest as _;
use std::time::Instant;

const DEFAULT_PART_SIZE: u64 = 10 * 1024 * 1024;

pub async fn start(
    app: &App,
    name: &str,
    req: Request<Incoming>,
) -> RegistryResult<Response<Body>> {
    let query = req.uri().query();
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
                match copy_from(app, name, &d, &from).await {
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
                Ok(blob_created(name, d))
            } else {
                Err(digest_mismatch(d, &Digest::of(b"")))
            };
        }
    }
    let (upload_id, ecr_part_size) =
        repos::creating(app, name, || app.ecr.initiate_upload(name)).await?;
    let part_size = part_size(app, ecr_part_size);
    let session_ref = app.sessions.create(name, upload_id, part_size);
    let mut session = session_ref.lock().await;
    tracing::debug!(session = %session.id, ecr_upload = %session.ecr_upload_id, part_size, "upload started");
    let body = req.into_body();
    let outcome = async {
        let mut w = Writer::new(&mut session, &app.ecr);
        stream(&mut w, body).await?;
        match &digest {
            Some(d) => complete(app, &mut w, d).await,
            None => w.wait().await.map_err(RegistryError::from).map(|_| None),
        }
    }
    .await;
    respond(app, &mut session, outcome)
}

pub async fn patch(
    app: &App,
    name: &str,
    id: &str,
    req: Request<Incoming>,
) -> RegistryResult<Response<Body>> {
    let session_ref = find(app, name, id).await?;
    let mut session = session_ref.lock().await;
    check_content_range(&session, &req)?;
    let body = req.into_body();
    let outcome = async {
        let mut w = Writer::new(&mut session, &app.ecr);
        stream(&mut w, body).await?;
        w.wait().await?;
        Ok(None)
    }
    .await;
    respond(app, &mut session, outcome)
}

pub async fn put(
    app: &App,
    name: &str,
    id: &str,
    req: Request<Incoming>,
) -> RegistryResult<Response<Body>> {
    let session_ref = find(app, name, id).await?;
    let digest = query_param(req.uri().query(), "digest").ok_or_else(|| {
        RegistryError::DigestInvalid("the digest query parameter is required".into())
    })?;
    let digest = Digest::parse(&digest).map_err(|e| RegistryError::DigestInvalid(e.to_string()))?;
    let mut session = session_ref.lock().await;
    if !req.body().is_end_stream() {
        check_content_range(&session, &req)?;
    }
    let body = req.into_body();
    let outcome = async {
        let mut w = Writer::new(&mut session, &app.ecr);
        stream(&mut w, body).await?;
        complete(app, &mut w, &digest).await
    }
    .await;
    respond(app, &mut session, outcome)
}

pub async fn status(app: &App, name: &str, id: &str) -> RegistryResult<Response<Body>> {
    let session_ref = find(app, name, id).await?;
    let session = session_ref.lock().await;
    Ok(accepted(&session, StatusCode::NO_CONTENT))
}

pub async fn cancel(app: &App, name: &str, id: &str) -> RegistryResult<Response<Body>> {
    find(app, name, id).await?;
    // ECR has no abort: its upload expires by itself. Dropping the session frees its buffer.
    app.sessions.remove(id);
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(body::empty())
        .expect("valid response"))
}

async fn find(app: &App, name: &str, id: &str) -> RegistryResult<SessionRef> {
    app.sessions.get(name, id).await.ok_or_else(|| {
        RegistryError::BlobUploadUnknown(format!("no upload `{id}` in repository `{name}`"))
    })
}

/// Mount without the client re-sending the bytes: copy the layer from repository `from` into
/// `name` inside the proxy (download from the source, upload into the target). `Ok(false)` when
/// the source does not have it.
async fn copy_from(app: &App, name: &str, digest: &Digest, from: &str) -> RegistryResult<bool> {
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
    let (upload_id, ecr_part_size) =
        repos::creating(app, name, || app.ecr.initiate_upload(name)).await?;
    let session_ref = app
        .sessions
        .create(name, upload_id, part_size(app, ecr_part_size));
    let mut session = session_ref.lock().await;
    let copied = async {
        let mut w = Writer::new(&mut session, &app.ecr);
        stream(&mut w, source.into_body()).await?;
        complete(app, &mut w, digest).await
    }
    .await;
    app.sessions.remove(&session.id);
    tracing::info!(%from, to = name, %digest, "copied layer between repositories");
    copied.map(|d| d.is_some())
}

fn part_size(app: &App, ecr_part_size: u64) -> u64 {
    app.config.part_size.unwrap_or(if ecr_part_size > 0 {
        ecr_part_size
    } else {
        DEFAULT_PART_SIZE
    })
}

/// Feed a body into the writer, frame by frame (each frame is read only when the writer has
/// room: that is the backpressure).
async fn stream<B>(w: &mut Writer<'_>, mut body: B) -> RegistryResult<()>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            RegistryError::BlobUploadInvalid(format!("reading the request body failed: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            w.write(data).await?;
        }
    }
    Ok(())
}

/// Check the digest, send the last part, and complete the layer in ECR. `Some(digest)` on success.
async fn complete(
    app: &App,
    w: &mut Writer<'_>,
    digest: &Digest,
) -> RegistryResult<Option<Digest>> {
    let (computed, received) = {
        let s = w.session();
        (
            Digest::from_sha256(s.hasher.clone().finalize().into()),
            s.received,
        )
    };
    if computed != *digest {
        return Err(digest_mismatch(digest, &computed));
    }
    if received > 0 {
        w.finish().await?;
        let s = w.session();
        app.ecr
            .complete_upload(&s.repo, &s.ecr_upload_id, digest.as_str())
            .await?;
    }
    Ok(Some(computed))
}

fn digest_mismatch(given: &Digest, computed: &Digest) -> RegistryError {
    RegistryError::DigestInvalid(format!(
        "the upload's content has digest {computed}, not {given}"
    ))
}

/// A `Content-Range` must start where the upload stands.
fn check_content_range(session: &Session, req: &Request<Incoming>) -> RegistryResult<()> {
    let Some(v) = req.headers().get(header::CONTENT_RANGE) else {
        return Ok(());
    };
    let text = v.to_str().unwrap_or("");
    let spec = text
        .trim()
        .trim_start_matches("bytes")
        .trim_start_matches(['=', ' ']);
    let parsed = spec
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?)));
    let Some((start, end)) = parsed else {
        return Err(RegistryError::BlobUploadInvalid(format!(
            "Content-Range `{text}` is not of the form <start>-<end>"
        )));
    };
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let consistent = end >= start && length.is_none_or(|l| l == end - start + 1);
    if start != session.received || !consistent {
        return Err(RegistryError::RangeInvalid {
            range: session.range(),
            location: session.location(),
            upload_id: session.id.clone(),
        });
    }
    Ok(())
}

/// Turn the outcome of a request into the answer, updating or forgetting the session.
fn respond(
    app: &App,
    session: &mut Session,
    outcome: RegistryResult<Option<Digest>>,
) -> RegistryResult<Response<Body>> {
    session.last_touched = Instant::now();
    match outcome {
        Ok(Some(digest)) => {
            app.sessions.remove(&session.id);
            Ok(blob_created(&session.repo, &digest))
        }
        Ok(None) => Ok(accepted(session, StatusCode::ACCEPTED)),
        Err(e) => {
            // ECR's upload is now in an unknown or failed state: this session cannot go on.
            app.sessions.remove(&session.id);
            session.tail = None;
            Err(e)
        }
    }
}

fn accepted(session: &Session, status: StatusCode) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::LOCATION, session.location())
        .header(header::RANGE, session.range())
        .header("Docker-Upload-UUID", session.id.as_str())
        .header(header::CONTENT_LENGTH, 0)
        .body(body::empty())
        .expect("valid response")
}

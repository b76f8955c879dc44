//! `/v2/<name>/blobs/<digest>`: HEAD via BatchCheckLayerAvailability; GET via
//! GetDownloadUrlForLayer, redirected or streamed (the streamed bytes counted in `Metrics` as
//! they go out). The empty blob (which ECR cannot store) is answered by the proxy, in
//! repositories that exist. A `Range` whose end lies before its start gets 416 here in both
//! modes (S3 would ignore it and send the whole blob).

use crate::body::{self, Body};
use crate::config::BlobMode;
use crate::digest::Digest;
use crate::proxy::error::{RegistryError, RegistryResult};
use crate::proxy::{holder, App};
use http::{header, Response, StatusCode};
use http_body_util::BodyExt;

/// The layer's size, if the repository has it. The empty blob is there in every repository that
/// exists: ECR cannot store it, so the proxy answers for it (after ECR has said the repository
/// exists; a missing one is NAME_UNKNOWN like for any other blob).
pub async fn size(app: &App, name: &str, digest: &Digest) -> RegistryResult<Option<u64>> {
    let found = app
        .ecr
        .check_layers(name, &[digest.to_string()])
        .await?
        .pop()
        .flatten();
    Ok(if digest.is_empty_blob() {
        Some(0)
    } else {
        found
    })
}

pub async fn head(app: &App, name: &str, digest: &Digest) -> RegistryResult<Response<Body>> {
    if let Some(cache) = &app.cache {
        if let Some(answer) = crate::proxy::cached::blobs::head(cache, name, digest).await {
            return Ok(answer);
        }
    }
    let size = size(app, name, digest)
        .await?
        .ok_or_else(|| RegistryError::BlobUnknown(digest.to_string()))?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_LENGTH, size)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header("Docker-Content-Digest", digest.as_str())
        .header(header::ACCEPT_RANGES, "bytes")
        .body(body::empty())
        .expect("valid response"))
}

/// GET a blob: 307 to ECR's download URL (`redirect`), or its bytes streamed through the proxy
/// (`stream`), honouring `Range`.
pub async fn get(
    app: &std::sync::Arc<App>,
    name: &str,
    digest: &Digest,
    range: Option<&str>,
) -> RegistryResult<Response<Body>> {
    if let (Some(cache), false) = (&app.cache, digest.is_empty_blob()) {
        return crate::proxy::cached::blobs::get(app, cache, name, digest, range).await;
    }
    if range.is_some_and(crate::range::reversed) {
        let size = size(app, name, digest)
            .await?
            .ok_or_else(|| RegistryError::BlobUnknown(digest.to_string()))?;
        return Ok(Response::builder()
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(header::CONTENT_RANGE, format!("bytes */{size}"))
            .header(header::CONTENT_LENGTH, 0)
            .header("Docker-Content-Digest", digest.as_str())
            .body(body::empty())
            .expect("valid response"));
    }
    if digest.is_empty_blob() {
        size(app, name, digest).await?;
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_LENGTH, 0)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header("Docker-Content-Digest", digest.as_str())
            .body(body::empty())
            .expect("valid response"));
    }
    let url = holder::download_url(app, name, digest).await?;
    if app.config.blob_mode == BlobMode::Redirect {
        return Ok(Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header(header::LOCATION, url)
            .header("Docker-Content-Digest", digest.as_str())
            .header(header::CONTENT_LENGTH, 0)
            .body(body::empty())
            .expect("valid response"));
    }
    let upstream = app.fetcher.get(&url, range).await?;
    let status = upstream.status();
    if !(status == StatusCode::OK
        || status == StatusCode::PARTIAL_CONTENT
        || status == StatusCode::RANGE_NOT_SATISFIABLE)
    {
        return Err(RegistryError::Unavailable(format!(
            "the layer store answered {status} for {digest}"
        )));
    }
    let mut resp = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header("Docker-Content-Digest", digest.as_str())
        .header(header::ACCEPT_RANGES, "bytes");
    for h in [header::CONTENT_LENGTH, header::CONTENT_RANGE, header::ETAG] {
        if let Some(v) = upstream.headers().get(&h) {
            resp = resp.header(h, v.clone());
        }
    }
    // Counted as hyper takes each frame to send it.
    let sent = app.metrics.download_bytes();
    let stream = upstream
        .into_body()
        .map_frame(move |frame| {
            if let Some(data) = frame.data_ref() {
                sent.inc_by(data.len() as u64);
            }
            frame
        })
        .map_err(std::io::Error::other)
        .boxed();
    Ok(resp.body(stream).expect("valid response"))
}

//! `/v2/<name>/blobs/<digest>`: HEAD via BatchCheckLayerAvailability.

use crate::body::{self, Body};
use crate::digest::Digest;
use crate::proxy::error::{RegistryError, RegistryResult};
use crate::proxy::App;
use http::{header, Response, StatusCode};

/// The layer's size, if the repository has it. The empty blob is always there: ECR cannot store
/// it, so the proxy answers for it.
pub async fn size(app: &App, name: &str, digest: &Digest) -> RegistryResult<Option<u64>> {
    if digest.is_empty_blob() {
        return Ok(Some(0));
    }
    Ok(app.ecr.check_layers(name, &[digest.to_string()]).await?.pop().flatten())
}

pub async fn head(app: &App, name: &str, digest: &Digest) -> RegistryResult<Response<Body>> {
    let size = size(app, name, digest).await?.ok_or_else(|| RegistryError::BlobUnknown(digest.to_string()))?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_LENGTH, size)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header("Docker-Content-Digest", digest.as_str())
        .header(header::ACCEPT_RANGES, "bytes")
        .body(body::empty())
        .expect("valid response"))
}

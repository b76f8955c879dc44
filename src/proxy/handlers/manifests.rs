//! `/v2/<name>/manifests/<reference>`: PUT via PutImage (the bytes forwarded unchanged), GET and
//! HEAD via BatchGetImage (the stored bytes and media type), DELETE via BatchDeleteImage.

use crate::body::{self, Body};
use crate::digest::Digest;
use crate::ecr::ErrorKind;
use crate::proxy::error::{RegistryError, RegistryResult};
use crate::proxy::manifest_cache::Cached;
use crate::proxy::route::Reference;
use crate::proxy::{repos, App};
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

/// ECR's `ImageManifest` limit.
pub const MAX_MANIFEST: usize = 4 * 1024 * 1024;

pub async fn put(
    app: &App,
    name: &str,
    reference: &Reference,
    req: Request<Incoming>,
) -> RegistryResult<Response<Body>> {
    let too_large =
        || RegistryError::TooLarge(format!("manifests are limited to {MAX_MANIFEST} bytes"));
    let declared_len = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared_len.is_some_and(|l| l > MAX_MANIFEST as u64) {
        return Err(too_large());
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
    let bytes = Limited::new(req.into_body(), MAX_MANIFEST)
        .collect()
        .await
        .map_err(|_| too_large())?
        .to_bytes();
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| RegistryError::ManifestInvalid("the manifest is not UTF-8 text".into()))?;
    let json: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| RegistryError::ManifestInvalid(format!("the manifest is not JSON: {e}")))?;
    let media_type = content_type
        .filter(|c| !c.is_empty() && c != "application/octet-stream")
        .or_else(|| {
            json.get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .ok_or_else(|| {
            RegistryError::ManifestInvalid(
                "no Content-Type and no mediaType in the manifest".into(),
            )
        })?;
    let digest = Digest::of(&bytes);
    let (tag, given) = match reference {
        Reference::Tag(t) => (Some(t.as_str()), None),
        Reference::Digest(d) if *d != digest => {
            return Err(RegistryError::DigestInvalid(format!(
                "the manifest's digest is {digest}, not {d}"
            )));
        }
        Reference::Digest(d) => (None, Some(d.as_str())),
    };
    let put = repos::creating(app, name, || {
        app.ecr.put_image(name, text, &media_type, tag, given)
    })
    .await;
    match put {
        Ok(stored) if !stored.is_empty() && stored != digest.as_str() => {
            return Err(RegistryError::Unavailable(format!(
                "ECR stored the manifest as {stored}, expected {digest}"
            )));
        }
        Ok(_) => {}
        Err(e) if e.kind == ErrorKind::ImageAlreadyExists => {}
        Err(e) if e.kind == ErrorKind::ImageTagAlreadyExists => {
            // Immutable tag: re-pushing the same manifest under it is still success.
            let current = app.ecr.get_image(name, tag, None, &[]).await?;
            if current.map(|i| i.digest) != Some(digest.to_string()) {
                return Err(e.into());
            }
        }
        Err(e) => return Err(e.into()),
    }
    let mut resp = Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{name}/manifests/{digest}"))
        .header("Docker-Content-Digest", digest.as_str())
        .header(header::CONTENT_LENGTH, 0);
    if let Some(subject) = json
        .get("subject")
        .and_then(|s| s.get("digest"))
        .and_then(|d| d.as_str())
    {
        resp = resp.header("OCI-Subject", subject);
    }
    Ok(resp.body(body::empty()).expect("valid response"))
}

/// The manifest types a client accepts, from its `Accept` headers (all five when it names none).
fn accepted(headers: &http::HeaderMap) -> Vec<String> {
    let mut out: Vec<String> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap_or("").trim().to_string())
        .filter(|t| MANIFEST_TYPES.contains(&t.as_str()) || t == SCHEMA1_SIGNED)
        .collect();
    out.dedup();
    if out.is_empty() {
        out = MANIFEST_TYPES.iter().map(|s| s.to_string()).collect();
    }
    out
}

const SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
const MANIFEST_TYPES: [&str; 5] = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v1+json",
];

/// GET or HEAD a manifest via BatchGetImage; by digest, from the cache when it has it.
pub async fn get(
    app: &App,
    name: &str,
    reference: &Reference,
    headers: &http::HeaderMap,
    head: bool,
) -> RegistryResult<Response<Body>> {
    let accepted = accepted(headers);
    let cached = match reference {
        Reference::Digest(d) => app
            .manifests
            .get(name, d.as_str())
            .filter(|c| accepted.contains(&c.media_type)),
        Reference::Tag(_) => None,
    };
    let (bytes, media_type) = match cached {
        Some(c) => (c.bytes, c.media_type),
        None => {
            let (tag, digest) = match reference {
                Reference::Tag(t) => (Some(t.as_str()), None),
                Reference::Digest(d) => (None, Some(d.as_str())),
            };
            let image = app
                .ecr
                .get_image(name, tag, digest, &accepted)
                .await?
                .ok_or_else(|| RegistryError::ManifestUnknown(format!("{name}:{reference}")))?;
            let bytes = bytes::Bytes::from(image.manifest);
            app.manifests.put(
                name,
                Digest::of(&bytes).as_str(),
                Cached {
                    bytes: bytes.clone(),
                    media_type: image.media_type.clone(),
                },
            );
            (bytes, image.media_type)
        }
    };
    let digest = Digest::of(&bytes);
    let resp = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, media_type)
        .header(header::CONTENT_LENGTH, bytes.len())
        .header("Docker-Content-Digest", digest.as_str());
    Ok(resp
        .body(if head {
            body::empty()
        } else {
            body::full(bytes)
        })
        .expect("valid response"))
}

/// DELETE via BatchDeleteImage: by tag the tag only, by digest the image.
pub async fn delete(
    app: &App,
    name: &str,
    reference: &Reference,
) -> RegistryResult<Response<Body>> {
    let (tag, digest) = match reference {
        Reference::Tag(t) => (Some(t.as_str()), None),
        Reference::Digest(d) => (None, Some(d.as_str())),
    };
    let removed = app.ecr.delete_image(name, tag, digest).await?;
    if removed.is_empty() {
        return Err(RegistryError::ManifestUnknown(format!(
            "{name}:{reference}"
        )));
    }
    for d in removed.iter().map(String::as_str).chain(digest) {
        app.manifests.remove(name, d);
    }
    Ok(Response::builder()
        .status(StatusCode::ACCEPTED)
        .header(header::CONTENT_LENGTH, 0)
        .body(body::empty())
        .expect("valid response"))
}

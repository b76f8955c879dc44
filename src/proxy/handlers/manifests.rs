//! `/v2/<name>/manifests/<reference>`: PUT via PutImage (the bytes forwarded unchanged; by digest
//! with `?tag=` parameters, once per tag, each answered with `OCI-Tag`), GET and HEAD via
//! BatchGetImage (the stored bytes and media type, by digest through the manifest cache), DELETE
//! via BatchDeleteImage (which the cache is told about). With `[sessions]`, other replicas are
//! told about tags pushed and manifests or tags deleted (`announce`), once ECR accepted them.

use crate::body::{self, Body};
use crate::digest::Digest;
use crate::ecr::ErrorKind;
use crate::proxy::error::{RegistryError, RegistryResult};
use crate::proxy::manifest_cache::Cached;
use crate::proxy::route::Reference;
use crate::proxy::{repos, App};
use crate::shared::{Invalidation, InvalidationKind};
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
    let tag_params = tag_params(req.uri().query())?;
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
    crate::metrics::request::received_body_bytes(bytes.len() as u64);
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
    if !servable(&media_type) {
        return Err(RegistryError::ManifestInvalid(format!(
            "`{media_type}` is not a manifest type this registry serves (one of {})",
            MANIFEST_TYPES.join(", ")
        )));
    }
    let digest = Digest::of(&bytes);
    let (tags, given): (Vec<&str>, _) = match reference {
        Reference::Tag(t) => (vec![t.as_str()], None),
        Reference::Digest(d) if *d != digest => {
            return Err(RegistryError::DigestInvalid(format!(
                "the manifest's digest is {digest}, not {d}"
            )));
        }
        Reference::Digest(d) => (
            tag_params.iter().map(String::as_str).collect(),
            Some(d.as_str()),
        ),
    };
    if tags.is_empty() {
        store(app, name, text, &media_type, None, given, &digest).await?;
    }
    for tag in &tags {
        store(app, name, text, &media_type, Some(tag), given, &digest).await?;
    }
    for tag in &tags {
        announce(
            app,
            InvalidationKind::Push,
            name,
            Some(tag),
            digest.as_str(),
        );
    }
    if let Some(cache) = &app.cache {
        use crate::proxy::cached::manifests::remember_push;
        remember_push(cache, name, None, &bytes, &media_type);
        for tag in &tags {
            remember_push(cache, name, Some(tag), &bytes, &media_type);
        }
    }
    let mut resp = Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{name}/manifests/{digest}"))
        .header("Docker-Content-Digest", digest.as_str())
        .header(header::CONTENT_LENGTH, 0);
    if given.is_some() {
        for tag in &tags {
            resp = resp.header("OCI-Tag", *tag);
        }
    }
    if let Some(subject) = json
        .get("subject")
        .and_then(|s| s.get("digest"))
        .and_then(|d| d.as_str())
    {
        resp = resp.header("OCI-Subject", subject);
    }
    Ok(resp.body(body::empty()).expect("valid response"))
}

/// The `tag` query parameters of a push by digest, each checked against the tag grammar.
fn tag_params(query: Option<&str>) -> RegistryResult<Vec<String>> {
    let mut tags: Vec<String> = Vec::new();
    for kv in query.unwrap_or("").split('&') {
        let Some(v) = kv.strip_prefix("tag=") else {
            continue;
        };
        let tag = percent_encoding::percent_decode_str(v)
            .decode_utf8_lossy()
            .into_owned();
        if !crate::names::is_oci_tag(&tag) {
            return Err(RegistryError::TagInvalid(format!(
                "`{tag}` is not a valid tag"
            )));
        }
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Ok(tags)
}

/// One PutImage (creating the repository on first push); an identical image already stored, or
/// an immutable tag already on this digest, is success.
async fn store(
    app: &App,
    name: &str,
    text: &str,
    media_type: &str,
    tag: Option<&str>,
    given: Option<&str>,
    digest: &Digest,
) -> RegistryResult<()> {
    let put = repos::creating(app, name, || {
        app.ecr.put_image(name, text, media_type, tag, given)
    })
    .await;
    match put {
        Ok(stored) if !stored.is_empty() && stored != digest.as_str() => {
            Err(RegistryError::Unavailable(format!(
                "ECR stored the manifest as {stored}, expected {digest}"
            )))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind == ErrorKind::ImageAlreadyExists => Ok(()),
        Err(e) if e.kind == ErrorKind::ImageTagAlreadyExists => {
            let current = app.ecr.get_image(name, tag, None, &[]).await?;
            if current.map(|i| i.digest) != Some(digest.to_string()) {
                return Err(e.into());
            }
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether `media_type` is one ECR's PutImage stores and this registry serves back: anything else
/// (`text/html`, a config or layer type) would be stored and then never be readable.
fn servable(media_type: &str) -> bool {
    MANIFEST_TYPES.contains(&media_type) || media_type == SCHEMA1_SIGNED
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
    if let Some(cache) = &app.cache {
        let found = crate::proxy::cached::manifests::get(
            app,
            cache,
            &app.flights,
            name,
            reference,
            &accepted,
        )
        .await?;
        return Ok(answer(found.bytes, found.media_type, head));
    }
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
            let seen = app.manifests.generation();
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
                seen,
            );
            (bytes, image.media_type)
        }
    };
    Ok(answer(bytes, media_type, head))
}

fn answer(bytes: bytes::Bytes, media_type: String, head: bool) -> Response<Body> {
    let digest = Digest::of(&bytes);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, media_type)
        .header(header::CONTENT_LENGTH, bytes.len())
        .header("Docker-Content-Digest", digest.as_str())
        .body(if head {
            body::empty()
        } else {
            body::full(bytes)
        })
        .expect("valid response")
}

/// DELETE via BatchDeleteImage: by tag the tag only (ECR deletes the image with its last tag),
/// by digest the image. The manifest cache forgets every digest ECR names as removed, and by
/// digest the requested one whatever ECR answers.
pub async fn delete(
    app: &App,
    name: &str,
    reference: &Reference,
) -> RegistryResult<Response<Body>> {
    let (tag, digest) = match reference {
        Reference::Tag(t) => (Some(t.as_str()), None),
        Reference::Digest(d) => (None, Some(d.as_str())),
    };
    let result = app.ecr.delete_image(name, tag, digest).await;
    if let Some(d) = digest {
        app.manifests.remove(name, d);
    }
    let removed = result?;
    for d in &removed {
        app.manifests.remove(name, d);
    }
    if let Some(cache) = &app.cache {
        let mut gone = removed.clone();
        gone.extend(digest.map(str::to_string));
        crate::proxy::cached::manifests::forget_delete(cache, name, reference, &gone);
    }
    for d in &removed {
        announce(app, InvalidationKind::Delete, name, tag, d);
    }
    if removed.is_empty() {
        return Err(RegistryError::ManifestUnknown(format!(
            "{name}:{reference}"
        )));
    }
    Ok(Response::builder()
        .status(StatusCode::ACCEPTED)
        .header(header::CONTENT_LENGTH, 0)
        .body(body::empty())
        .expect("valid response"))
}

/// Tell other replicas (with `[sessions]`) that ECR accepted a change: fire and forget, so Redis
/// being down neither fails nor slows the request.
fn announce(app: &App, kind: InvalidationKind, name: &str, tag: Option<&str>, digest: &str) {
    if let Some(shared) = &app.shared {
        shared.invalidate(Invalidation {
            kind,
            repository: name.to_string(),
            tag: tag.map(str::to_string),
            digest: Some(digest.to_string()),
            upload: None,
            version: None,
        });
    }
}

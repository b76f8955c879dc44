//! Blob GET and HEAD through the disk cache: a complete cached blob is served from its file
//! (ranges too, each 256 KiB checked; a bad chunk drops the entry and the rest comes from a new fill);
//! an uncached one joins the fill under way or starts one, and is streamed as the fill writes.
//! A digest is served for a repository only when the cache knows the repository holds it: the
//! fill it started proved it (ECR gave this repository's download URL), or ECR says so
//! (BatchCheckLayerAvailability) once; after that no ECR call is needed, so cached blobs are
//! served through an ECR outage.

use super::source::{to_registry, EcrSource};
use crate::body::Body;
use crate::cache::{Cache, Fallback};
use crate::digest::Digest;
use crate::proxy::error::{RegistryError, RegistryResult};
use crate::proxy::App;
use crate::range::{self, RangeRequest};
use futures_util::stream::{self, BoxStream, StreamExt};
use http::{header, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use std::sync::Arc;

type Bytestream = BoxStream<'static, std::io::Result<bytes::Bytes>>;

/// Make sure `name` holds `digest` before serving the cache's copy to it.
async fn ensure_linked(
    app: &App,
    cache: &Cache,
    name: &str,
    digest: &Digest,
) -> RegistryResult<()> {
    if cache.blob_linked(name, digest.hex()) {
        return Ok(());
    }
    let found = app
        .ecr
        .check_layers(name, &[digest.to_string()])
        .await?
        .pop()
        .flatten();
    if found.is_none() {
        return Err(RegistryError::BlobUnknown(digest.to_string()));
    }
    cache.link_blob(name, digest.hex());
    Ok(())
}

/// HEAD: the size from the cache when the repository is known to hold the blob; `None` to ask
/// ECR as usual.
pub async fn head(cache: &Cache, name: &str, digest: &Digest) -> Option<Response<Body>> {
    if !cache.blob_linked(name, digest.hex()) {
        return None;
    }
    let size = cache.blob_size(digest.hex())?;
    cache.metrics().cache_lookup("blob", "hit");
    Some(
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_LENGTH, size)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header("Docker-Content-Digest", digest.as_str())
            .header(header::ACCEPT_RANGES, "bytes")
            .body(crate::body::empty())
            .expect("valid response"),
    )
}

pub async fn get(
    app: &Arc<App>,
    cache: &Arc<Cache>,
    name: &str,
    digest: &Digest,
    range: Option<&str>,
) -> RegistryResult<Response<Body>> {
    let hex = digest.hex().to_string();
    let source = || -> Arc<dyn crate::cache::Source> {
        Arc::new(EcrSource {
            app: app.clone(),
            repository: name.to_string(),
            digest: digest.clone(),
        })
    };
    for _ in 0..3 {
        if cache.blob_linked(name, &hex) || cache.blob_size(&hex).is_some() {
            if let Some(stored) = cache.stored_blob(&hex).await {
                ensure_linked(app, cache, name, digest).await?;
                cache.metrics().cache_lookup("blob", "hit");
                let size = stored.size;
                let (status, start, end) = match slice(range, size, digest)? {
                    Ok(s) => s,
                    Err(unsatisfiable) => return Ok(unsatisfiable),
                };
                let c = cache.clone();
                let h = hex.clone();
                let on_corrupt =
                    Box::new(move || c.forget_blob(&h, "a chunk does not match its CRC"));
                let fallback = refill(cache.clone(), hex.clone(), source(), end);
                let bytes = stored.stream(start, end, on_corrupt, Some(fallback));
                let served = cache.metrics().cache_served_bytes();
                let counted = bytes.inspect(move |b| {
                    if let Ok(b) = b {
                        served.inc_by(b.len() as u64);
                    }
                });
                return Ok(respond(status, start, end, size, digest, counted.boxed()));
            }
        }
        let Some((fill, started)) = cache
            .fill(&hex, source())
            .map_err(|e| RegistryError::Unavailable(format!("cannot write to the cache: {e}")))?
        else {
            continue; // complete by now: serve the file
        };
        if !started {
            ensure_linked(app, cache, name, digest).await?;
        }
        let size = match fill.size().await {
            Ok(size) => size,
            // A fill another repository's request started failed at its source (that
            // repository may not hold the blob; its error is not this one's): start our own.
            Err(crate::cache::Failure::Source(_)) if !started => continue,
            Err(e) => return Err(to_registry(e)),
        };
        cache.link_blob(name, &hex);
        cache.metrics().cache_lookup("blob", "miss");
        let (status, start, end) = match slice(range, size, digest)? {
            Ok(s) => s,
            Err(unsatisfiable) => return Ok(unsatisfiable),
        };
        return Ok(respond(
            status,
            start,
            end,
            size,
            digest,
            fill.stream(start, end),
        ));
    }
    Err(RegistryError::Unavailable(format!(
        "{digest} kept leaving the cache while being read; try again"
    )))
}

/// The status and byte span `range` asks of a blob of `size` bytes, or the 416 answer.
#[allow(clippy::type_complexity)]
fn slice(
    range: Option<&str>,
    size: u64,
    digest: &Digest,
) -> RegistryResult<Result<(StatusCode, u64, u64), Response<Body>>> {
    let unsatisfiable = || {
        Response::builder()
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(header::CONTENT_RANGE, format!("bytes */{size}"))
            .header(header::CONTENT_LENGTH, 0)
            .header("Docker-Content-Digest", digest.as_str())
            .body(crate::body::empty())
            .expect("valid response")
    };
    if range.is_some_and(range::reversed) {
        return Ok(Err(unsatisfiable()));
    }
    Ok(match range::resolve(range, size) {
        RangeRequest::Full => Ok((StatusCode::OK, 0, size)),
        RangeRequest::Partial { start, end } => Ok((StatusCode::PARTIAL_CONTENT, start, end + 1)),
        RangeRequest::Unsatisfiable => Err(unsatisfiable()),
    })
}

fn respond(
    status: StatusCode,
    start: u64,
    end: u64,
    size: u64,
    digest: &Digest,
    bytes: Bytestream,
) -> Response<Body> {
    let mut r = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, end - start)
        .header("Docker-Content-Digest", digest.as_str())
        .header(header::ACCEPT_RANGES, "bytes");
    if status == StatusCode::PARTIAL_CONTENT {
        r = r.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", end - 1),
        );
    }
    let frames = sync_wrapper::SyncStream::new(bytes.map(|b| b.map(Frame::data)));
    let body = BodyExt::boxed(StreamBody::new(frames));
    r.body(body).expect("valid response")
}

/// After a bad chunk: the rest (from the offset, up to `end`) from a new fill of the blob.
fn refill(
    cache: Arc<Cache>,
    hex: String,
    source: Arc<dyn crate::cache::Source>,
    end: u64,
) -> Fallback {
    Box::new(move |from| {
        stream::once(async move {
            match cache.fill(&hex, source) {
                Ok(Some((fill, _))) => fill.stream(from, end),
                Ok(None) => match cache.stored_blob(&hex).await {
                    Some(s) => s.stream(from, end, Box::new(|| {}), None),
                    None => stream::iter([Err(std::io::Error::other("the blob left the cache"))])
                        .boxed(),
                },
                Err(e) => stream::iter([Err(e)]).boxed(),
            }
        })
        .flatten()
        .boxed()
    })
}

//! The headers of a chunk: its `Content-Range` (which must start where the upload stands) and
//! `Content-Length`, and whether a PUT is the resend of one whose completion was throttled.

use crate::proxy::error::{RegistryError, RegistryResult};
use crate::proxy::sessions::writer::Writer;
use http::{header, Request};
use hyper::body::{Body as _, Incoming};

/// Whether a PUT to an upload whose completion failed resends that request's body: its
/// `Content-Range` starts where that request began, or (without one) its length is what that
/// request sent. A PUT with no body is no resend (it completes as usual).
pub fn is_resend(w: &Writer, req: &Request<Incoming>, begun: u64) -> RegistryResult<bool> {
    if req.body().is_end_stream() {
        return Ok(false);
    }
    let sent = w.received().saturating_sub(begun);
    Ok(match content_range(req)? {
        Some((start, _)) => start == begun,
        None => content_length(req) == Some(sent),
    })
}

pub fn content_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
}

/// The `Content-Range` of a chunk, if it has one: `<start>-<end>` (also `bytes=` or `bytes `).
pub fn content_range(req: &Request<Incoming>) -> RegistryResult<Option<(u64, u64)>> {
    let Some(v) = req.headers().get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or("");
    let spec = text
        .trim()
        .trim_start_matches("bytes")
        .trim_start_matches(['=', ' ']);
    spec.split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?)))
        .map(Some)
        .ok_or_else(|| {
            RegistryError::BlobUploadInvalid(format!(
                "Content-Range `{text}` is not of the form <start>-<end>"
            ))
        })
}

/// A `Content-Range` must start where the upload stands (and agree with `Content-Length`).
pub fn check_content_range(w: &Writer, req: &Request<Incoming>) -> RegistryResult<()> {
    let Some((start, end)) = content_range(req)? else {
        return Ok(());
    };
    let span = end.checked_sub(start).and_then(|d| d.checked_add(1));
    let consistent = span.is_some_and(|n| content_length(req).is_none_or(|l| l == n));
    if start != w.received() || !consistent {
        let s = w.session();
        return Err(RegistryError::RangeInvalid {
            range: s.range(),
            location: s.location(),
            upload_id: s.id().to_string(),
        });
    }
    Ok(())
}

//! The layer download URLs GetDownloadUrlForLayer hands out, standing in for S3 presigned URLs:
//! `/__layers/<repo>/<digest>?X-Amz-Date=<unix>&X-Amz-Expires=3600&X-Amz-Signature=<hmac>`.
//! Signed with the store's secret so they cannot be forged or edited, valid for one hour, and
//! served here with `Range` (206) and `HEAD`. Errors are S3-style XML, as a client of S3 sees them.
//! This module must not touch the index: it serves blob files by digest.

use crate::body::{self, Body};
use crate::range::{self, RangeRequest};
use hmac::{Hmac, Mac};
use http::{header, Method, Request, Response, StatusCode};
use sha2::Sha256;
use std::path::Path;

pub const PREFIX: &str = "/__layers/";
const LIFETIME_SECS: i64 = 3600;

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn mac(key: &[u8], repo: &str, digest: &str, date: i64, expires: i64) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(format!("GET\n{repo}\n{digest}\n{date}\n{expires}").as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// A URL for `digest` in `repo`, valid for an hour from `now`.
pub fn sign(key: &[u8], base_url: &str, repo: &str, digest: &str, now: i64) -> String {
    let sig = mac(key, repo, digest, now, LIFETIME_SECS);
    format!("{base_url}{PREFIX}{repo}/{digest}?X-Amz-Date={now}&X-Amz-Expires={LIFETIME_SECS}&X-Amz-Signature={sig}")
}

/// Why a download URL was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("The request signature we calculated does not match the signature you provided.")]
    BadSignature,
    #[error("Request has expired")]
    Expired,
    #[error("The URL is not a layer download URL")]
    Malformed,
}

/// Check a URL's path and query; on success, the repository and digest it names.
pub fn verify(key: &[u8], path: &str, query: &str, now: i64) -> Result<(String, String), UrlError> {
    let rest = path.strip_prefix(PREFIX).ok_or(UrlError::Malformed)?;
    let (repo, digest) = rest.rsplit_once('/').ok_or(UrlError::Malformed)?;
    let param = |k: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
    };
    let date: i64 = param("X-Amz-Date")
        .and_then(|v| v.parse().ok())
        .ok_or(UrlError::Malformed)?;
    let expires: i64 = param("X-Amz-Expires")
        .and_then(|v| v.parse().ok())
        .ok_or(UrlError::Malformed)?;
    let sig = param("X-Amz-Signature").ok_or(UrlError::Malformed)?;
    let want = mac(key, repo, digest, date, expires);
    let same = want.len() == sig.len()
        && want
            .bytes()
            .zip(sig.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Err(UrlError::BadSignature);
    }
    if now > date + expires {
        return Err(UrlError::Expired);
    }
    Ok((repo.to_string(), digest.to_string()))
}

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let xml = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/xml")
        .body(body::full(xml))
        .expect("static response parts are valid")
}

/// Serve a download URL: the blob's bytes (or the requested range), or S3's refusal. `now` is
/// the clock the URL's expiry is checked against (seconds since the epoch).
pub async fn serve<B>(
    key: &[u8],
    blob_path: impl Fn(&str) -> std::path::PathBuf,
    req: &Request<B>,
    now: i64,
) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return s3_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        );
    }
    let (path, query) = (req.uri().path(), req.uri().query().unwrap_or(""));
    let (_repo, digest) = match verify(key, path, query, now) {
        Ok(ok) => ok,
        Err(UrlError::Expired) => {
            return s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired")
        }
        Err(e @ UrlError::BadSignature) => {
            return s3_error(
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                &e.to_string(),
            )
        }
        Err(e) => return s3_error(StatusCode::BAD_REQUEST, "InvalidRequest", &e.to_string()),
    };
    let range_header = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    match serve_file(
        &blob_path(&digest),
        range_header,
        req.method() == Method::HEAD,
    )
    .await
    {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        ),
        Err(e) => s3_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            &e.to_string(),
        ),
    }
}

async fn serve_file(
    path: &Path,
    range_header: Option<&str>,
    head: bool,
) -> std::io::Result<Response<Body>> {
    let file = tokio::fs::File::open(path).await?;
    let len = file.metadata().await?.len();
    let builder = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "application/octet-stream");
    let (status, start, count, builder) = match range::resolve(range_header, len) {
        RangeRequest::Full => (StatusCode::OK, 0, len, builder),
        RangeRequest::Partial { start, end } => {
            let b = builder.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1, b)
        }
        RangeRequest::Unsatisfiable => {
            return Ok(builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(body::empty())
                .expect("valid response"));
        }
    };
    let body = if head {
        body::empty()
    } else {
        body::file_range(file, start, count).await?
    };
    Ok(builder
        .status(status)
        .header(header::CONTENT_LENGTH, count)
        .body(body)
        .expect("valid response"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_urls_verify_and_edits_or_expiry_are_refused() {
        let key = b"k".repeat(32);
        let url = sign(&key, "http://h", "a/b", "sha256:00", 1000);
        let pq = url.strip_prefix("http://h").unwrap();
        let (path, query) = pq.split_once('?').unwrap();
        assert_eq!(
            verify(&key, path, query, 1000),
            Ok(("a/b".into(), "sha256:00".into()))
        );
        assert_eq!(
            verify(&key, path, query, 1000 + 3601),
            Err(UrlError::Expired)
        );
        assert_eq!(
            verify(&key, &path.replace("a/b", "a/c"), query, 1000),
            Err(UrlError::BadSignature)
        );
        assert_eq!(
            verify(
                &key,
                path,
                &query.replace("Expires=3600", "Expires=3601"),
                1000
            ),
            Err(UrlError::BadSignature)
        );
        assert_eq!(
            verify(b"other-key", path, query, 1000),
            Err(UrlError::BadSignature)
        );
    }
}

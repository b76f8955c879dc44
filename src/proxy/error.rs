//! Registry errors: the OCI distribution error codes with their statuses, and `into_response`,
//! the one place an error becomes the spec's JSON body `{"errors":[{"code","message","detail"}]}`.
//! `from_ecr` is the table that turns ECR's failures into them. Handlers return these; nothing
//! else writes an error response. The `message` is the variant's fixed text (before the first
//! `": "` of its Display), the `detail` the rest.

mod from_ecr;

use crate::body::{self, Body};
use http::{header, HeaderValue, Response, StatusCode};
use serde_json::json;

/// An error as a registry client sees it.
#[derive(Clone, Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("blob unknown to registry: {0}")]
    BlobUnknown(String),
    #[error("blob upload invalid: {0}")]
    BlobUploadInvalid(String),
    #[error("blob upload unknown to registry: {0}")]
    BlobUploadUnknown(String),
    #[error("provided digest did not match uploaded content: {0}")]
    DigestInvalid(String),
    #[error("blob unknown to registry: {0}")]
    ManifestBlobUnknown(String),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest unknown: {0}")]
    ManifestUnknown(String),
    #[error("invalid repository name: {0}")]
    NameInvalid(String),
    #[error("repository name not known to registry: {0}")]
    NameUnknown(String),
    #[error("provided length did not match content length: {0}")]
    SizeInvalid(String),
    #[error("content too large: {0}")]
    TooLarge(String),
    #[error("manifest tag did not match URI: {0}")]
    TagInvalid(String),
    #[error("the operation is unsupported: {0}")]
    Unsupported(String),
    #[error("the method is not allowed on this endpoint")]
    MethodNotAllowed,
    #[error("no such endpoint")]
    NotFound,
    /// A chunk that does not start where the upload stands.
    #[error("requested range not satisfiable: the upload holds bytes {range}")]
    RangeInvalid {
        range: String,
        location: String,
        upload_id: String,
    },
    #[error("invalid number of results requested: {0}")]
    PaginationInvalid(String),
    #[error("too many requests: {0}")]
    TooManyRequests(String),
    #[error("access to the resource was denied: {0}")]
    Denied(String),
    /// No credentials, or credentials that were not accepted (`auth`): 401 with a
    /// `WWW-Authenticate` challenge saying where to get a token and for what scope.
    #[error("authentication required: {why}")]
    Unauthorized { why: String, challenge: String },
    /// A known subject without the right (`auth`): 403 DENIED. For a token that lacks the
    /// scope, the challenge names the scope needed (RFC 6750 `insufficient_scope`).
    #[error("requested access to the resource is denied: {why}")]
    Forbidden {
        why: String,
        challenge: Option<String>,
    },
    #[error("the upstream registry is unavailable: {0}")]
    Unavailable(String),
    /// A request without a body had no answer within `server.request_timeout_secs` (ECR is too
    /// slow): 503 UNAVAILABLE, worth retrying.
    #[error("the request timed out: no answer within {} s", .0.as_secs())]
    TimedOut(std::time::Duration),
    /// ECR refused a request the client can only change, not retry (an unknown 4xx, a refused
    /// parameter that is not a name, tag, digest or manifest). The spec's UNSUPPORTED covers
    /// "an invalid set of parameters"; 400 says not to retry it as sent.
    #[error("ECR refused the request: {0}")]
    Refused(String),
    /// What the registry holds forbids the request (it already exists, a repository is not
    /// empty): 409, the HTTP status for "conflicts with the current state of the resource".
    #[error("the request conflicts with what the registry holds: {0}")]
    Conflict(String),
    /// A manifest delete ECR refused because an image index (manifest list) references it. 409
    /// Conflict: the request is well-formed and allowed, but the registry's state forbids it
    /// until the index is deleted or changed; it is not a retryable 503, not a 404 (the manifest
    /// is there), and not 403 (clients read 403 as "log in again"). The code is DENIED, the
    /// spec's code for a refused operation (UNSUPPORTED would read as "this registry cannot
    /// delete"), and the message says why, which skopeo, crane and docker print.
    #[error("the manifest is referenced by an image index (manifest list) and cannot be deleted; delete or update the index first: {0}")]
    ManifestReferenced(String),
    /// An upload request that failed but left its upload open: the answer is `error`'s, plus the
    /// upload's `Range`, `Location` and `Docker-Upload-UUID`, so the client can resume.
    #[error("{error}")]
    UploadKept {
        error: Box<RegistryError>,
        range: String,
        location: String,
        upload_id: String,
    },
}

impl RegistryError {
    /// The spec's error code and HTTP status.
    pub fn code_and_status(&self) -> (&'static str, StatusCode) {
        use RegistryError::*;
        match self {
            BlobUnknown(_) => ("BLOB_UNKNOWN", StatusCode::NOT_FOUND),
            BlobUploadInvalid(_) => ("BLOB_UPLOAD_INVALID", StatusCode::BAD_REQUEST),
            BlobUploadUnknown(_) => ("BLOB_UPLOAD_UNKNOWN", StatusCode::NOT_FOUND),
            DigestInvalid(_) => ("DIGEST_INVALID", StatusCode::BAD_REQUEST),
            ManifestBlobUnknown(_) => ("MANIFEST_BLOB_UNKNOWN", StatusCode::BAD_REQUEST),
            ManifestInvalid(_) => ("MANIFEST_INVALID", StatusCode::BAD_REQUEST),
            ManifestUnknown(_) => ("MANIFEST_UNKNOWN", StatusCode::NOT_FOUND),
            NameInvalid(_) => ("NAME_INVALID", StatusCode::BAD_REQUEST),
            NameUnknown(_) => ("NAME_UNKNOWN", StatusCode::NOT_FOUND),
            SizeInvalid(_) => ("SIZE_INVALID", StatusCode::BAD_REQUEST),
            TooLarge(_) => ("SIZE_INVALID", StatusCode::PAYLOAD_TOO_LARGE),
            TagInvalid(_) => ("TAG_INVALID", StatusCode::BAD_REQUEST),
            Unsupported(_) => ("UNSUPPORTED", StatusCode::METHOD_NOT_ALLOWED),
            MethodNotAllowed => ("UNSUPPORTED", StatusCode::METHOD_NOT_ALLOWED),
            NotFound => ("NOT_FOUND", StatusCode::NOT_FOUND),
            RangeInvalid { .. } => ("BLOB_UPLOAD_INVALID", StatusCode::RANGE_NOT_SATISFIABLE),
            PaginationInvalid(_) => ("PAGINATION_NUMBER_INVALID", StatusCode::BAD_REQUEST),
            TooManyRequests(_) => ("TOOMANYREQUESTS", StatusCode::TOO_MANY_REQUESTS),
            Denied(_) | Forbidden { .. } => ("DENIED", StatusCode::FORBIDDEN),
            Unauthorized { .. } => ("UNAUTHORIZED", StatusCode::UNAUTHORIZED),
            Unavailable(_) | TimedOut(_) => ("UNAVAILABLE", StatusCode::SERVICE_UNAVAILABLE),
            Refused(_) => ("UNSUPPORTED", StatusCode::BAD_REQUEST),
            Conflict(_) | ManifestReferenced(_) => ("DENIED", StatusCode::CONFLICT),
            UploadKept { error, .. } => error.code_and_status(),
        }
    }

    /// Seconds a client should wait before trying again, for errors that may succeed later.
    fn retry_after(&self) -> Option<&'static str> {
        match self {
            RegistryError::TooManyRequests(_) => Some("1"),
            RegistryError::Unavailable(_) | RegistryError::TimedOut(_) => Some("5"),
            RegistryError::UploadKept { error, .. } => error.retry_after(),
            _ => None,
        }
    }

    /// The one place an error becomes a response (and is noted for the request's access line).
    pub fn into_response(self, head: bool) -> Response<Body> {
        let (code, status) = self.code_and_status();
        let text = self.to_string();
        crate::metrics::request::note_error(code, &text);
        let (message, detail) = text.split_once(": ").unwrap_or((text.as_str(), ""));
        let payload = json!({ "errors": [{ "code": code, "message": message, "detail": detail }] })
            .to_string();
        let mut builder = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .header("Docker-Distribution-API-Version", "registry/2.0");
        if let Some(secs) = self.retry_after() {
            builder = builder.header(header::RETRY_AFTER, HeaderValue::from_static(secs));
        }
        match &self {
            RegistryError::RangeInvalid {
                range,
                location,
                upload_id,
            }
            | RegistryError::UploadKept {
                range,
                location,
                upload_id,
                ..
            } => {
                builder = builder
                    .header(header::RANGE, range)
                    .header(header::LOCATION, location)
                    .header("Docker-Upload-UUID", upload_id);
            }
            RegistryError::Unauthorized { challenge, .. }
            | RegistryError::Forbidden {
                challenge: Some(challenge),
                ..
            } => {
                builder = builder.header(header::WWW_AUTHENTICATE, challenge);
            }
            _ => {}
        }
        let len = payload.len();
        let b = if head {
            body::empty()
        } else {
            body::full(payload)
        };
        builder
            .header(header::CONTENT_LENGTH, len)
            .body(b)
            .expect("valid error response")
    }
}

pub type RegistryResult<T> = Result<T, RegistryError>;

#[cfg(test)]
mod tests;

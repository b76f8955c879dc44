//! Registry errors: the OCI distribution error codes with their statuses, the table that turns
//! ECR's failures into them, and `into_response`, the one place an error becomes the spec's JSON
//! body `{"errors":[{"code","message","detail"}]}`. Handlers return these; nothing else writes
//! an error response.

use crate::body::{self, Body};
use crate::ecr::{EcrError, ErrorKind};
use http::{header, HeaderValue, Response, StatusCode};
use serde_json::json;

/// An error as a registry client sees it.
#[derive(Debug, thiserror::Error)]
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
    #[error("the upstream registry is unavailable: {0}")]
    Unavailable(String),
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
            Denied(_) => ("DENIED", StatusCode::FORBIDDEN),
            Unavailable(_) => ("UNAVAILABLE", StatusCode::SERVICE_UNAVAILABLE),
            UploadKept { error, .. } => error.code_and_status(),
        }
    }

    /// Seconds a client should wait before trying again, for errors that may succeed later.
    fn retry_after(&self) -> Option<&'static str> {
        match self {
            RegistryError::TooManyRequests(_) => Some("1"),
            RegistryError::Unavailable(_) => Some("5"),
            _ => None,
        }
    }

    /// The one place an error becomes a response.
    pub fn into_response(self, head: bool) -> Response<Body> {
        let (code, status) = self.code_and_status();
        let text = self.to_string();
        let (message, detail) = text.split_once(": ").unwrap_or((text.as_str(), ""));
        let payload = json!({ "errors": [{ "code": code, "message": message, "detail": detail }] })
            .to_string();
        let mut builder = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .header("Docker-Distribution-API-Version", "registry/2.0");
        let retry_after = match &self {
            RegistryError::UploadKept { error, .. } => error.retry_after(),
            e => e.retry_after(),
        };
        if let Some(secs) = retry_after {
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

/// The table: what an ECR failure means to a registry client.
impl From<EcrError> for RegistryError {
    fn from(e: EcrError) -> Self {
        use ErrorKind::*;
        let detail = format!("{} ({} from {})", e.message, e.code, e.operation);
        match e.kind {
            RepositoryNotFound => RegistryError::NameUnknown(detail),
            ImageNotFound => RegistryError::ManifestUnknown(detail),
            LayersNotFound if e.operation == "PutImage" => {
                RegistryError::ManifestBlobUnknown(detail)
            }
            LayersNotFound | LayerInaccessible => RegistryError::BlobUnknown(detail),
            ReferencedImagesNotFound => RegistryError::ManifestBlobUnknown(detail),
            UploadNotFound => RegistryError::BlobUploadUnknown(detail),
            InvalidLayer | ImageDigestDoesNotMatch => RegistryError::DigestInvalid(detail),
            InvalidLayerPart | LayerPartTooSmall | EmptyUpload => {
                RegistryError::BlobUploadInvalid(detail)
            }
            ImageTagAlreadyExists => RegistryError::TagInvalid(detail),
            InvalidParameter if e.operation == "PutImage" => RegistryError::ManifestInvalid(detail),
            InvalidParameter => RegistryError::BlobUploadInvalid(detail),
            Throttled => RegistryError::TooManyRequests(detail),
            AccessDenied => RegistryError::Denied(detail),
            Credentials => {
                tracing::error!(code = %e.code, "ECR refused the proxy's AWS credentials: {}", e.message);
                RegistryError::Unavailable(format!(
                    "the proxy's AWS credentials were refused: {detail}"
                ))
            }
            Kms => RegistryError::Denied(detail),
            Unavailable
            | Other
            | RepositoryAlreadyExists
            | LayerAlreadyExists
            | ImageAlreadyExists => RegistryError::Unavailable(detail),
        }
    }
}

pub type RegistryResult<T> = Result<T, RegistryError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_failures_map_to_the_spec_codes() {
        let cases = [
            (
                ErrorKind::RepositoryNotFound,
                "InitiateLayerUpload",
                "NAME_UNKNOWN",
                404,
            ),
            (
                ErrorKind::LayersNotFound,
                "PutImage",
                "MANIFEST_BLOB_UNKNOWN",
                400,
            ),
            (
                ErrorKind::LayersNotFound,
                "GetDownloadUrlForLayer",
                "BLOB_UNKNOWN",
                404,
            ),
            (
                ErrorKind::UploadNotFound,
                "UploadLayerPart",
                "BLOB_UPLOAD_UNKNOWN",
                404,
            ),
            (
                ErrorKind::InvalidLayer,
                "CompleteLayerUpload",
                "DIGEST_INVALID",
                400,
            ),
            (
                ErrorKind::ImageTagAlreadyExists,
                "PutImage",
                "TAG_INVALID",
                400,
            ),
            (ErrorKind::Throttled, "PutImage", "TOOMANYREQUESTS", 429),
            (ErrorKind::Unavailable, "PutImage", "UNAVAILABLE", 503),
            (ErrorKind::Credentials, "PutImage", "UNAVAILABLE", 503),
        ];
        for (kind, op, code, status) in cases {
            let e: RegistryError = EcrError::new(kind, op, "X", "m").into();
            let (c, s) = e.code_and_status();
            assert_eq!((c, s.as_u16()), (code, status), "{kind:?} from {op}");
        }
    }

    #[test]
    fn responses_carry_the_json_body_and_headers() {
        let r = RegistryError::TooManyRequests("slow down".into()).into_response(false);
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "1");
        let r = RegistryError::RangeInvalid {
            range: "0-9".into(),
            location: "/v2/a/blobs/uploads/x".into(),
            upload_id: "x".into(),
        }
        .into_response(false);
        assert_eq!(r.status(), 416);
        assert_eq!(r.headers()["range"], "0-9");
    }
}

//! ECR's failures, sorted: every exception name and per-item failure code the proxy can meet
//! (the table lives in `errors::table`), plus transport failures, each becomes an `ErrorKind`,
//! and each kind has one `Meaning` for a registry client. Which OCI code and status a kind gets
//! is decided in `proxy::error`, nowhere else. SDK debug text stays in the log (DEBUG); an
//! `EcrError` carries only ECR's code, message and request id.

mod table;

pub use table::{codes, known, EXCEPTIONS, FAILURE_CODES};

use aws_sdk_ecr::config::http::HttpResponse;
use aws_sdk_ecr::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ecr::operation::RequestId;

/// What went wrong upstream, as far as the proxy cares. Kinds the proxy acts on one by one
/// (creating a repository, treating "already exists" as success, pushing a layer holder) are
/// their own variants; `meaning` says what each is to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    RepositoryNotFound,
    RepositoryAlreadyExists,
    RepositoryNotEmpty,
    ImageNotFound,
    ImageAlreadyExists,
    ImageTagAlreadyExists,
    ImageDigestDoesNotMatch,
    /// A manifest an index (manifest list) still references cannot be deleted.
    ImageReferencedByIndex,
    /// An archived image, not readable until restored.
    ImageInaccessible,
    LayersNotFound,
    LayerInaccessible,
    LayerAlreadyExists,
    ReferencedImagesNotFound,
    UploadNotFound,
    InvalidLayer,
    InvalidLayerPart,
    LayerPartTooSmall,
    EmptyUpload,
    /// A request member broke ECR's rules (InvalidParameterException, ValidationException, …).
    InvalidParameter,
    /// A per-item digest ECR cannot parse.
    InvalidDigest,
    /// A per-item tag ECR cannot parse.
    InvalidTag,
    MissingDigestAndTag,
    /// The settings for a repository created on push (its tags) were refused.
    RepositorySettingsRefused,
    /// The endpoint does not know the operation.
    UnsupportedOperation,
    /// Throttling or a quota (`LimitExceededException`): try again later.
    Throttled,
    /// ServerException, other 5xx, timeouts, connection failures, a pull-through upstream down.
    Unavailable,
    /// Missing, invalid or expired credentials, a bad signature, no region: the proxy's own setup.
    Credentials,
    /// IAM (or a pull-through upstream) said no.
    AccessDenied,
    /// The repository's KMS key refused.
    Kms,
    /// A 4xx code the table does not list.
    Unclassified,
}

/// What an ECR failure means for the registry client that caused the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// The request cannot succeed as sent: a 4xx that says why, never retried.
    ClientError,
    /// The repository, image, layer or upload is not there.
    NotFound,
    /// Not allowed: 403.
    Denied,
    /// Too many requests: 429 with Retry-After.
    Throttled,
    /// Upstream is failing (or the proxy's own credentials are): 503 with Retry-After.
    Transient,
}

impl ErrorKind {
    pub fn meaning(self) -> Meaning {
        use ErrorKind::*;
        match self {
            RepositoryNotFound
            | ImageNotFound
            | LayersNotFound
            | LayerInaccessible
            | ReferencedImagesNotFound
            | UploadNotFound => Meaning::NotFound,
            AccessDenied | Kms | ImageInaccessible => Meaning::Denied,
            Throttled => Meaning::Throttled,
            Unavailable | Credentials => Meaning::Transient,
            RepositoryAlreadyExists
            | RepositoryNotEmpty
            | ImageAlreadyExists
            | ImageTagAlreadyExists
            | ImageDigestDoesNotMatch
            | ImageReferencedByIndex
            | LayerAlreadyExists
            | InvalidLayer
            | InvalidLayerPart
            | LayerPartTooSmall
            | EmptyUpload
            | InvalidParameter
            | InvalidDigest
            | InvalidTag
            | MissingDigestAndTag
            | RepositorySettingsRefused
            | UnsupportedOperation
            | Unclassified => Meaning::ClientError,
        }
    }
}

/// The table: ECR's exception name or per-item failure code → kind. A code the table does not
/// list is a client error (a per-item failure has no status of its own; `classify_answer`
/// sorts unlisted exceptions by their HTTP status).
pub fn classify(code: &str) -> ErrorKind {
    known(code).unwrap_or(ErrorKind::Unclassified)
}

/// An exception ECR answered with `status`: by the table, else by the status (429 throttled,
/// 5xx transient, any other 4xx a client error). Never a blanket 503.
pub fn classify_answer(code: Option<&str>, status: u16) -> ErrorKind {
    match code.and_then(known) {
        Some(kind) => kind,
        None if status == 429 => ErrorKind::Throttled,
        None if status >= 500 => ErrorKind::Unavailable,
        None => ErrorKind::Unclassified,
    }
}

/// A failed ECR call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("ECR {operation} failed: {code}: {message}")]
pub struct EcrError {
    pub kind: ErrorKind,
    pub operation: &'static str,
    /// ECR's error code (or failure code), or the transport failure's name.
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
}

impl EcrError {
    pub fn new(
        kind: ErrorKind,
        operation: &'static str,
        code: &str,
        message: impl Into<String>,
    ) -> Self {
        EcrError {
            kind,
            operation,
            code: code.to_string(),
            message: message.into(),
            request_id: None,
        }
    }

    /// A per-item failure (`failureCode`, `failureReason`) of a batch call, sorted by the table.
    pub fn item_failure(
        operation: &'static str,
        code: &str,
        reason: &str,
        request_id: Option<&str>,
    ) -> Self {
        let mut e = EcrError::new(classify(code), operation, code, reason);
        e.request_id = request_id.map(str::to_string);
        e
    }

    /// Sort an SDK error by the table. The SDK's full error chain goes to the log at DEBUG;
    /// the error keeps ECR's own words only.
    pub fn from_sdk<E>(operation: &'static str, e: &SdkError<E, HttpResponse>) -> EcrError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        tracing::debug!(operation, error = %DisplayErrorContext(e), "ECR call failed");
        let out = match e {
            SdkError::ServiceError(se) => {
                let err = se.err();
                let status = se.raw().status().as_u16();
                let kind = classify_answer(err.code(), status);
                let code = err
                    .code()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("HTTP {status}"));
                let message = err
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("ECR answered HTTP {status} without a message"));
                let mut out = EcrError::new(kind, operation, &code, message);
                out.request_id = err.meta().request_id().map(str::to_string);
                out
            }
            SdkError::TimeoutError(_) => EcrError::new(
                ErrorKind::Unavailable,
                operation,
                "Timeout",
                "ECR did not answer in time",
            ),
            SdkError::DispatchFailure(_) if caused_by_credentials(e) => EcrError::new(
                ErrorKind::Credentials,
                operation,
                "CredentialsError",
                "the proxy could not load AWS credentials",
            ),
            SdkError::DispatchFailure(d) => {
                let message = if d.is_timeout() {
                    "connecting to ECR timed out"
                } else if d.is_io() {
                    "could not reach ECR (connection failed)"
                } else {
                    "the request could not be sent to ECR"
                };
                EcrError::new(
                    ErrorKind::Unavailable,
                    operation,
                    "DispatchFailure",
                    message,
                )
            }
            SdkError::ResponseError(_) => EcrError::new(
                ErrorKind::Unavailable,
                operation,
                "ResponseError",
                "ECR's answer could not be read",
            ),
            SdkError::ConstructionFailure(_) => EcrError::new(
                ErrorKind::Credentials,
                operation,
                "ConstructionFailure",
                "the request to ECR could not be built (AWS credentials or region)",
            ),
            _ => EcrError::new(
                ErrorKind::Unavailable,
                operation,
                "Unknown",
                "the call to ECR failed",
            ),
        };
        if out.kind == ErrorKind::Credentials {
            // One short line at ERROR; the SDK's whole context (raw response included) only
            // at DEBUG, as `/readyz` repeats this on every probe while credentials are missing.
            tracing::error!(
                operation,
                code = %out.code,
                error = %out.message.lines().map(str::trim).collect::<Vec<_>>().join("; "),
                "ECR cannot be called with the proxy's AWS credentials or settings"
            );
            tracing::debug!(operation, error = %DisplayErrorContext(e), "the SDK's error");
        }
        out
    }
}

/// Whether the causes of `e` include a credential provider's failure: the SDK reports a missing
/// or broken credential chain as a dispatch failure, which is not ECR being unreachable.
fn caused_by_credentials(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<aws_credential_types::provider::error::CredentialsError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
mod tests;

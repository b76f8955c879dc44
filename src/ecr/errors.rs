//! The one table that sorts ECR's answers into kinds the proxy acts on: every exception name the
//! proxy can meet, plus transport failures. What a kind means to a registry client is decided in
//! `proxy::error`, nowhere else.

use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecr::operation::RequestId;

/// What went wrong upstream, as far as the proxy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    RepositoryNotFound,
    RepositoryAlreadyExists,
    ImageNotFound,
    LayersNotFound,
    LayerInaccessible,
    ReferencedImagesNotFound,
    UploadNotFound,
    InvalidLayer,
    InvalidLayerPart,
    LayerPartTooSmall,
    EmptyUpload,
    LayerAlreadyExists,
    ImageAlreadyExists,
    ImageTagAlreadyExists,
    ImageDigestDoesNotMatch,
    InvalidParameter,
    /// Throttling or a quota (`LimitExceededException`): try again later.
    Throttled,
    /// ServerException, 5xx, timeouts, connection failures.
    Unavailable,
    /// Missing, invalid or expired credentials, or a bad signature: the proxy's own setup.
    Credentials,
    /// IAM said no.
    AccessDenied,
    Kms,
    /// Anything else ECR said.
    Other,
}

/// The table: ECR's error code → kind.
pub fn classify(code: &str) -> ErrorKind {
    use ErrorKind::*;
    match code {
        "RepositoryNotFoundException" => RepositoryNotFound,
        "RepositoryAlreadyExistsException" => RepositoryAlreadyExists,
        "ImageNotFoundException" => ImageNotFound,
        "LayersNotFoundException" => LayersNotFound,
        "LayerInaccessibleException" => LayerInaccessible,
        "ReferencedImagesNotFoundException" => ReferencedImagesNotFound,
        "UploadNotFoundException" => UploadNotFound,
        "InvalidLayerException" => InvalidLayer,
        "InvalidLayerPartException" => InvalidLayerPart,
        "LayerPartTooSmallException" => LayerPartTooSmall,
        "EmptyUploadException" => EmptyUpload,
        "LayerAlreadyExistsException" => LayerAlreadyExists,
        "ImageAlreadyExistsException" => ImageAlreadyExists,
        "ImageTagAlreadyExistsException" => ImageTagAlreadyExists,
        "ImageDigestDoesNotMatchException" => ImageDigestDoesNotMatch,
        "InvalidParameterException" | "ValidationException" | "SerializationException" => {
            InvalidParameter
        }
        "ThrottlingException"
        | "ThrottledException"
        | "TooManyRequestsException"
        | "LimitExceededException"
        | "RequestLimitExceeded"
        | "Throttling" => Throttled,
        "ServerException"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "ServiceUnavailableException" => Unavailable,
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "MissingAuthenticationTokenException"
        | "IncompleteSignatureException"
        | "ExpiredTokenException"
        | "InvalidClientTokenId"
        | "RequestExpired" => Credentials,
        "AccessDeniedException" | "NotAuthorized" => AccessDenied,
        "KmsException" => Kms,
        _ => Other,
    }
}

/// A failed ECR call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("ECR {operation} failed: {code}: {message}")]
pub struct EcrError {
    pub kind: ErrorKind,
    pub operation: &'static str,
    /// ECR's error code, or the transport failure's name.
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

    /// Sort an SDK error by the table.
    pub fn from_sdk<E, R>(operation: &'static str, e: &SdkError<E, R>) -> EcrError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let detail = aws_sdk_ecr::error::DisplayErrorContext(e).to_string();
        match e {
            SdkError::ServiceError(se) => {
                let err = se.err();
                let code = err.code().unwrap_or("Unknown");
                let mut out = EcrError::new(
                    classify(code),
                    operation,
                    code,
                    err.message().unwrap_or(&detail),
                );
                out.request_id = err.meta().request_id().map(str::to_string);
                out
            }
            SdkError::TimeoutError(_) => {
                EcrError::new(ErrorKind::Unavailable, operation, "Timeout", detail)
            }
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
                EcrError::new(ErrorKind::Unavailable, operation, "DispatchFailure", detail)
            }
            SdkError::ConstructionFailure(_) => {
                let kind = if detail.to_lowercase().contains("credential") {
                    ErrorKind::Credentials
                } else {
                    ErrorKind::Other
                };
                EcrError::new(kind, operation, "ConstructionFailure", detail)
            }
            _ => EcrError::new(ErrorKind::Other, operation, "Unknown", detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_sorts_every_exception_the_proxy_meets() {
        let cases = [
            ("RepositoryNotFoundException", ErrorKind::RepositoryNotFound),
            ("LayersNotFoundException", ErrorKind::LayersNotFound),
            ("LimitExceededException", ErrorKind::Throttled),
            ("ThrottlingException", ErrorKind::Throttled),
            ("ServerException", ErrorKind::Unavailable),
            ("InvalidSignatureException", ErrorKind::Credentials),
            ("ExpiredTokenException", ErrorKind::Credentials),
            ("AccessDeniedException", ErrorKind::AccessDenied),
            (
                "ImageTagAlreadyExistsException",
                ErrorKind::ImageTagAlreadyExists,
            ),
            ("SomethingNew", ErrorKind::Other),
        ];
        for (code, kind) in cases {
            assert_eq!(classify(code), kind, "{code}");
        }
    }
}

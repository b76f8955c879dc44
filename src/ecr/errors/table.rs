//! The table itself: every exception name and per-item failure code ECR (or AWS's common error
//! set, or the SDK's retry lists) can answer with, each sorted into an `ErrorKind`. Only data and
//! lookups here; what a kind means to a registry client is decided in `proxy::error`.
//! A code not listed is sorted by the HTTP status ECR answered with (`classify_answer`).

use super::ErrorKind::{self, *};

/// Exception names (`__type` / `x-amzn-errortype`), as the SDK reports them in `code()`.
pub const EXCEPTIONS: &[(&str, ErrorKind)] = &[
    // ECR's own exceptions (reference §3), the ones the proxy's operations raise.
    ("RepositoryNotFoundException", RepositoryNotFound),
    ("RepositoryAlreadyExistsException", RepositoryAlreadyExists),
    ("RepositoryNotEmptyException", RepositoryNotEmpty),
    ("ImageNotFoundException", ImageNotFound),
    ("ImageAlreadyExistsException", ImageAlreadyExists),
    ("ImageTagAlreadyExistsException", ImageTagAlreadyExists),
    ("ImageDigestDoesNotMatchException", ImageDigestDoesNotMatch),
    (
        "ReferencedImagesNotFoundException",
        ReferencedImagesNotFound,
    ),
    ("LayersNotFoundException", LayersNotFound),
    ("LayerInaccessibleException", LayerInaccessible),
    ("LayerAlreadyExistsException", LayerAlreadyExists),
    ("UploadNotFoundException", UploadNotFound),
    ("InvalidLayerException", InvalidLayer),
    ("InvalidLayerPartException", InvalidLayerPart),
    ("LayerPartTooSmallException", LayerPartTooSmall),
    ("EmptyUploadException", EmptyUpload),
    ("InvalidParameterException", InvalidParameter),
    ("InvalidTagParameterException", RepositorySettingsRefused),
    ("TooManyTagsException", RepositorySettingsRefused),
    ("KmsException", Kms),
    ("LimitExceededException", Throttled),
    ("ServerException", Unavailable),
    // Pull-through cache: the upstream registry behind ECR failed; it may answer later.
    ("UnableToGetUpstreamLayerException", Unavailable),
    ("UnableToGetUpstreamImageException", Unavailable),
    // AWS protocol and common errors (any operation).
    ("ValidationException", InvalidParameter),
    ("ValidationError", InvalidParameter),
    ("SerializationException", InvalidParameter),
    ("InvalidAction", UnsupportedOperation),
    ("UnknownOperationException", UnsupportedOperation),
    ("AccessDeniedException", AccessDenied),
    ("AccessDenied", AccessDenied),
    ("NotAuthorized", AccessDenied),
    ("OptInRequired", AccessDenied),
    ("UnrecognizedClientException", Credentials),
    ("InvalidSignatureException", Credentials),
    ("SignatureDoesNotMatch", Credentials),
    ("MissingAuthenticationToken", Credentials),
    ("MissingAuthenticationTokenException", Credentials),
    ("IncompleteSignature", Credentials),
    ("IncompleteSignatureException", Credentials),
    ("ExpiredToken", Credentials),
    ("ExpiredTokenException", Credentials),
    ("InvalidClientTokenId", Credentials),
    ("RequestExpired", Credentials),
    ("InternalFailure", Unavailable),
    ("InternalServerError", Unavailable),
    ("ServiceUnavailable", Unavailable),
    ("ServiceUnavailableException", Unavailable),
    ("RequestTimeout", Unavailable),
    ("RequestTimeoutException", Unavailable),
    // Throttling names: the SDK's retry list plus ECR's troubleshooting page.
    ("Throttling", Throttled),
    ("ThrottlingException", Throttled),
    ("ThrottledException", Throttled),
    ("ThrottleException", Throttled),
    ("RequestThrottled", Throttled),
    ("RequestThrottledException", Throttled),
    ("TooManyRequestsException", Throttled),
    ("ProvisionedThroughputExceededException", Throttled),
    ("TransactionInProgressException", Throttled),
    ("RequestLimitExceeded", Throttled),
    ("BandwidthLimitExceeded", Throttled),
    ("SlowDown", Throttled),
    ("PriorRequestNotComplete", Throttled),
    ("EC2ThrottledException", Throttled),
];

/// Per-item failure codes (`ImageFailure.failureCode`, `LayerFailure.failureCode`): answers
/// inside a 200 of BatchGetImage, BatchDeleteImage and BatchCheckLayerAvailability.
pub const FAILURE_CODES: &[(&str, ErrorKind)] = &[
    ("ImageNotFound", ImageNotFound),
    // Both given and they disagree: no such image under that tag.
    ("ImageTagDoesNotMatchDigest", ImageNotFound),
    ("InvalidImageDigest", InvalidDigest),
    ("InvalidImageTag", InvalidTag),
    ("MissingDigestAndTag", MissingDigestAndTag),
    ("ImageReferencedByManifestList", ImageReferencedByIndex),
    ("KmsError", Kms),
    // Archived images: readable only after ECR restores them.
    ("ImageInaccessible", ImageInaccessible),
    ("UpstreamAccessDenied", AccessDenied),
    ("UpstreamTooManyRequests", Throttled),
    ("UpstreamUnavailable", Unavailable),
    ("InvalidLayerDigest", InvalidDigest),
    ("MissingLayerDigest", LayersNotFound),
];

/// The kind the table gives `code` (an exception name or a failure code), if it lists it.
pub fn known(code: &str) -> Option<ErrorKind> {
    EXCEPTIONS
        .iter()
        .chain(FAILURE_CODES)
        .find(|(c, _)| *c == code)
        .map(|(_, k)| *k)
}

/// Every code the table lists.
pub fn codes() -> impl Iterator<Item = &'static str> {
    EXCEPTIONS.iter().chain(FAILURE_CODES).map(|(c, _)| *c)
}

//! ECR calls measured where they are sent: each call's duration (the SDK's retries included) and
//! outcome go to `Metrics`, and its request id (ECR's `x-amzn-RequestId`, for successes too) to
//! the current request's record for the access log (`metrics::request`). `sdk!` calls `observe`;
//! a call that reads the SDK's error itself (UploadLayerPart) calls `record`. Owns the outcome
//! labels (`label`); must not change what a call returns.

use super::{Ecr, EcrError, ErrorKind, Result};
use crate::metrics::{request, Metrics};
use aws_sdk_ecr::config::http::HttpResponse;
use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecr::operation::RequestId;
use std::time::Instant;

impl Ecr {
    /// Record into `metrics` from now on (a client starts with a registry of its own).
    pub fn with_metrics(mut self, metrics: Metrics) -> Ecr {
        self.metrics = metrics;
        self
    }

    /// A sent call: note its request id, sort its error, count and time it.
    pub(super) fn observe<O, E>(
        &self,
        operation: &'static str,
        started: Instant,
        sent: std::result::Result<O, SdkError<E, HttpResponse>>,
    ) -> Result<O>
    where
        O: RequestId,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        if let Some(id) = sent.request_id() {
            request::note_ecr_request_id(id);
        }
        let result = sent.map_err(|e| EcrError::from_sdk(operation, &e));
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => label(e.kind),
        };
        self.metrics.ecr_call(operation, outcome, started.elapsed());
        result
    }

    /// A call whose answer the caller sorted itself: its outcome and request id.
    pub(super) fn record(
        &self,
        operation: &'static str,
        started: Instant,
        outcome: &Result<()>,
        request_id: Option<&str>,
    ) {
        if let Some(id) = request_id {
            request::note_ecr_request_id(id);
        }
        let outcome = match outcome {
            Ok(()) => "ok",
            Err(e) => label(e.kind),
        };
        self.metrics.ecr_call(operation, outcome, started.elapsed());
    }
}

/// The `outcome` label of a failed call: its kind in snake case.
pub fn label(kind: ErrorKind) -> &'static str {
    use ErrorKind::*;
    match kind {
        RepositoryNotFound => "repository_not_found",
        RepositoryAlreadyExists => "repository_already_exists",
        RepositoryNotEmpty => "repository_not_empty",
        ImageNotFound => "image_not_found",
        ImageAlreadyExists => "image_already_exists",
        ImageTagAlreadyExists => "image_tag_already_exists",
        ImageDigestDoesNotMatch => "image_digest_does_not_match",
        ImageReferencedByIndex => "image_referenced_by_index",
        ImageInaccessible => "image_inaccessible",
        LayersNotFound => "layers_not_found",
        LayerInaccessible => "layer_inaccessible",
        LayerAlreadyExists => "layer_already_exists",
        ReferencedImagesNotFound => "referenced_images_not_found",
        UploadNotFound => "upload_not_found",
        InvalidLayer => "invalid_layer",
        InvalidLayerPart => "invalid_layer_part",
        LayerPartTooSmall => "layer_part_too_small",
        EmptyUpload => "empty_upload",
        InvalidParameter => "invalid_parameter",
        InvalidDigest => "invalid_digest",
        InvalidTag => "invalid_tag",
        MissingDigestAndTag => "missing_digest_and_tag",
        RepositorySettingsRefused => "repository_settings_refused",
        UnsupportedOperation => "unsupported_operation",
        Throttled => "throttled",
        Unavailable => "unavailable",
        Credentials => "credentials",
        AccessDenied => "access_denied",
        Kms => "kms",
        Unclassified => "unclassified",
    }
}

#[cfg(test)]
mod tests {
    use super::label;
    use crate::ecr::errors::{EXCEPTIONS, FAILURE_CODES};

    /// Every kind the table can give has a label of its own, in snake case.
    #[test]
    fn labels_are_distinct_snake_case() {
        let mut seen = std::collections::HashMap::new();
        for (code, kind) in EXCEPTIONS.iter().chain(FAILURE_CODES.iter()) {
            let l = label(*kind);
            assert!(
                l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{l}"
            );
            if let Some(other) = seen.insert(l, *kind) {
                assert_eq!(other, *kind, "{code}: `{l}` names two kinds");
            }
        }
    }
}

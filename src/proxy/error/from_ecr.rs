//! The table from ECR failures to registry errors: each `ErrorKind` (sorted by
//! `ecr::errors`) becomes one spec error, by what it means for the client, refined by the
//! operation where the same exception means different things (LayersNotFound on PutImage is a
//! manifest naming a missing blob; InvalidParameter is about whichever member it names).
//! The detail names ECR's exception, the operation and the request id (an InvalidLayer, ECR's
//! verdict that an upload's bytes have another digest, then says what that means). No logging here.

use super::RegistryError;
use crate::ecr::{EcrError, ErrorKind};

/// `ImageReferencedByManifestList from BatchDeleteImage (request id …): <ECR's message>`.
pub fn detail(e: &EcrError) -> String {
    match &e.request_id {
        Some(id) => format!(
            "{} from {} (request id {id}): {}",
            e.code, e.operation, e.message
        ),
        None => format!("{} from {}: {}", e.code, e.operation, e.message),
    }
}

/// The request member an InvalidParameterException / ValidationException names: ECR writes
/// `Invalid parameter at 'imageTag' failed to …` or `Value 'x' at 'imageIds.1.member.imageTag'
/// failed to …`; the last path segment, lowercased.
fn member(message: &str) -> Option<String> {
    let rest = &message[message.find(" at '")? + 5..];
    let path = &rest[..rest.find('\'')?];
    Some(path.rsplit('.').next()?.to_ascii_lowercase())
}

/// A refused parameter, by the member ECR names, else by the operation.
fn invalid_parameter(e: &EcrError, detail: String) -> RegistryError {
    match member(&e.message).as_deref() {
        Some("repositoryname") => return RegistryError::NameInvalid(detail),
        Some("imagetag") => return RegistryError::TagInvalid(detail),
        Some("imagedigest" | "layerdigest" | "layerdigests" | "subjectid") => {
            return RegistryError::DigestInvalid(detail)
        }
        Some("imagemanifest" | "imagemanifestmediatype") => {
            return RegistryError::ManifestInvalid(detail)
        }
        _ => {}
    }
    match e.operation {
        "PutImage" => RegistryError::ManifestInvalid(detail),
        "InitiateLayerUpload" | "UploadLayerPart" | "CompleteLayerUpload" => {
            RegistryError::BlobUploadInvalid(detail)
        }
        _ => RegistryError::Refused(detail),
    }
}

/// The table: what an ECR failure means to a registry client. Every kind is listed (no
/// wildcard), so a new kind cannot compile without a decision here.
impl From<EcrError> for RegistryError {
    fn from(e: EcrError) -> Self {
        use ErrorKind::*;
        let d = detail(&e);
        match e.kind {
            RepositoryNotFound => RegistryError::NameUnknown(d),
            ImageNotFound => RegistryError::ManifestUnknown(d),
            LayersNotFound if e.operation == "PutImage" => RegistryError::ManifestBlobUnknown(d),
            LayersNotFound | LayerInaccessible => RegistryError::BlobUnknown(d),
            ReferencedImagesNotFound => RegistryError::ManifestBlobUnknown(d),
            UploadNotFound => RegistryError::BlobUploadUnknown(d),
            // ECR is the one that checks an upload's digest: say what its verdict means.
            InvalidLayer => RegistryError::DigestInvalid(format!(
                "{d} (ECR computed another digest for the uploaded bytes than the one given; start the upload again)"
            )),
            ImageDigestDoesNotMatch | InvalidDigest => RegistryError::DigestInvalid(d),
            InvalidLayerPart | LayerPartTooSmall | EmptyUpload => {
                RegistryError::BlobUploadInvalid(d)
            }
            ImageTagAlreadyExists | InvalidTag => RegistryError::TagInvalid(d),
            InvalidParameter => invalid_parameter(&e, d),
            MissingDigestAndTag | RepositorySettingsRefused | UnsupportedOperation
            | Unclassified => RegistryError::Refused(d),
            RepositoryAlreadyExists | RepositoryNotEmpty | ImageAlreadyExists
            | LayerAlreadyExists => RegistryError::Conflict(d),
            ImageReferencedByIndex => RegistryError::ManifestReferenced(d),
            Throttled => RegistryError::TooManyRequests(d),
            AccessDenied | Kms | ImageInaccessible => RegistryError::Denied(d),
            Credentials => RegistryError::Unavailable(format!(
                "{d} (ECR refused the proxy's own AWS credentials or settings; its operator must fix them)"
            )),
            Unavailable => RegistryError::Unavailable(d),
        }
    }
}

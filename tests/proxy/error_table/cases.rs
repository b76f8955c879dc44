//! What a registry client must see for each ECR code (the test's own statement of the table, by
//! meaning), which operations to try each code on, and the registry request that makes the
//! proxy call each operation.

use super::sources::{Found, Reference};
use crate::support::*;

/// Stands for "depends on the operation" in `MUST_SEE` (InvalidParameter and its kin).
const BY_OP: &str = "";

/// Code → (OCI code, HTTP status) a client must see, grouped by meaning.
const MUST_SEE: &[(&str, &str, u16)] = &[
    // Not found.
    ("RepositoryNotFoundException", "NAME_UNKNOWN", 404),
    ("ImageNotFoundException", "MANIFEST_UNKNOWN", 404),
    ("ImageNotFound", "MANIFEST_UNKNOWN", 404),
    ("ImageTagDoesNotMatchDigest", "MANIFEST_UNKNOWN", 404),
    ("LayersNotFoundException", "BLOB_UNKNOWN", 404), // on PutImage: MANIFEST_BLOB_UNKNOWN 400
    ("LayerInaccessibleException", "BLOB_UNKNOWN", 404),
    ("MissingLayerDigest", "BLOB_UNKNOWN", 404),
    (
        "ReferencedImagesNotFoundException",
        "MANIFEST_BLOB_UNKNOWN",
        400,
    ),
    ("UploadNotFoundException", "BLOB_UPLOAD_UNKNOWN", 404),
    // Client errors: a 4xx that says why, never retried.
    ("InvalidLayerException", "DIGEST_INVALID", 400),
    ("ImageDigestDoesNotMatchException", "DIGEST_INVALID", 400),
    ("InvalidImageDigest", "DIGEST_INVALID", 400),
    ("InvalidLayerDigest", "DIGEST_INVALID", 400),
    ("InvalidLayerPartException", "BLOB_UPLOAD_INVALID", 400),
    ("LayerPartTooSmallException", "BLOB_UPLOAD_INVALID", 400),
    ("EmptyUploadException", "BLOB_UPLOAD_INVALID", 400),
    ("ImageTagAlreadyExistsException", "TAG_INVALID", 400),
    ("InvalidImageTag", "TAG_INVALID", 400),
    ("ImageReferencedByManifestList", "DENIED", 409),
    ("RepositoryAlreadyExistsException", "DENIED", 409),
    ("RepositoryNotEmptyException", "DENIED", 409),
    ("ImageAlreadyExistsException", "DENIED", 409),
    ("LayerAlreadyExistsException", "DENIED", 409),
    ("MissingDigestAndTag", "UNSUPPORTED", 400),
    ("InvalidTagParameterException", "UNSUPPORTED", 400),
    ("TooManyTagsException", "UNSUPPORTED", 400),
    ("InvalidAction", "UNSUPPORTED", 400),
    ("UnknownOperationException", "UNSUPPORTED", 400),
    ("InvalidParameterException", BY_OP, 400),
    ("ValidationException", BY_OP, 400),
    ("ValidationError", BY_OP, 400),
    ("SerializationException", BY_OP, 400),
    // Denied.
    ("AccessDeniedException", "DENIED", 403),
    ("NotAuthorized", "DENIED", 403),
    ("OptInRequired", "DENIED", 403),
    ("KmsException", "DENIED", 403),
    ("KmsError", "DENIED", 403),
    ("ImageInaccessible", "DENIED", 403),
    ("UpstreamAccessDenied", "DENIED", 403),
    // Throttled: 429 + Retry-After.
    ("LimitExceededException", "TOOMANYREQUESTS", 429),
    ("ThrottlingException", "TOOMANYREQUESTS", 429),
    ("Throttling", "TOOMANYREQUESTS", 429),
    ("ThrottledException", "TOOMANYREQUESTS", 429),
    ("ThrottleException", "TOOMANYREQUESTS", 429),
    ("RequestThrottled", "TOOMANYREQUESTS", 429),
    ("RequestThrottledException", "TOOMANYREQUESTS", 429),
    ("TooManyRequestsException", "TOOMANYREQUESTS", 429),
    (
        "ProvisionedThroughputExceededException",
        "TOOMANYREQUESTS",
        429,
    ),
    ("TransactionInProgressException", "TOOMANYREQUESTS", 429),
    ("RequestLimitExceeded", "TOOMANYREQUESTS", 429),
    ("BandwidthLimitExceeded", "TOOMANYREQUESTS", 429),
    ("SlowDown", "TOOMANYREQUESTS", 429),
    ("PriorRequestNotComplete", "TOOMANYREQUESTS", 429),
    ("EC2ThrottledException", "TOOMANYREQUESTS", 429),
    ("UpstreamTooManyRequests", "TOOMANYREQUESTS", 429),
    // Transient upstream: 503 + Retry-After.
    ("ServerException", "UNAVAILABLE", 503),
    ("InternalFailure", "UNAVAILABLE", 503),
    ("ServiceUnavailable", "UNAVAILABLE", 503),
    ("RequestTimeout", "UNAVAILABLE", 503),
    ("RequestTimeoutException", "UNAVAILABLE", 503),
    ("UnableToGetUpstreamLayerException", "UNAVAILABLE", 503),
    ("UnableToGetUpstreamImageException", "UNAVAILABLE", 503),
    ("UpstreamUnavailable", "UNAVAILABLE", 503),
    // The proxy's own credentials: 503 (its operator must act; logged at ERROR).
    ("UnrecognizedClientException", "UNAVAILABLE", 503),
    ("InvalidSignatureException", "UNAVAILABLE", 503),
    ("MissingAuthenticationToken", "UNAVAILABLE", 503),
    ("MissingAuthenticationTokenException", "UNAVAILABLE", 503),
    ("IncompleteSignature", "UNAVAILABLE", 503),
    ("IncompleteSignatureException", "UNAVAILABLE", 503),
    ("ExpiredTokenException", "UNAVAILABLE", 503),
    ("InvalidClientTokenId", "UNAVAILABLE", 503),
    ("RequestExpired", "UNAVAILABLE", 503),
];

/// What a client must see for `code` raised by `op`; `None` if this file does not say.
pub fn expected(code: &str, op: &str) -> Option<(&'static str, u16)> {
    let &(_, oci, status) = MUST_SEE.iter().find(|(c, _, _)| *c == code)?;
    Some(match (code, op) {
        ("LayersNotFoundException", "PutImage") => ("MANIFEST_BLOB_UNKNOWN", 400),
        (_, "PutImage") if oci == BY_OP => ("MANIFEST_INVALID", 400),
        (_, "InitiateLayerUpload" | "UploadLayerPart" | "CompleteLayerUpload") if oci == BY_OP => {
            ("BLOB_UPLOAD_INVALID", 400)
        }
        _ if oci == BY_OP => ("UNSUPPORTED", 400),
        _ => (oci, status),
    })
}

/// Through the proxy, where a handler acts on the exception instead of passing it on.
pub fn end_to_end(code: &str, op: &str) -> Option<(&'static str, u16)> {
    Some(match (code, op) {
        // Creating is done; the operation that needed the repository still says it is missing.
        ("RepositoryAlreadyExistsException", "CreateRepository") => ("NAME_UNKNOWN", 404),
        // Already there: success.
        ("ImageAlreadyExistsException", "PutImage") => ("", 201),
        ("LayerAlreadyExistsException", "CompleteLayerUpload") => ("", 201),
        _ => return expected(code, op),
    })
}

/// The HTTP status ECR uses for `code` (reference §1 and §3).
pub fn status_of(code: &str) -> u16 {
    match code {
        "ServerException" | "InternalFailure" => 500,
        "ServiceUnavailable" => 503,
        "InvalidClientTokenId"
        | "OptInRequired"
        | "UnrecognizedClientException"
        | "MissingAuthenticationToken"
        | "MissingAuthenticationTokenException"
        | "InvalidSignatureException" => 403,
        _ => 400,
    }
}

/// The operations the proxy calls.
const PROXY_OPS: [&str; 12] = [
    "InitiateLayerUpload",
    "UploadLayerPart",
    "CompleteLayerUpload",
    "BatchCheckLayerAvailability",
    "GetDownloadUrlForLayer",
    "PutImage",
    "BatchGetImage",
    "BatchDeleteImage",
    "ListImages",
    "DescribeRepositories",
    "CreateRepository",
    "ListImageReferrers",
];

/// Every code of both sources.
pub struct All {
    codes: Found,
    failure_codes: Found,
    raised_by: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
}

impl All {
    pub fn new(emulator: Found, reference: Reference) -> All {
        let mut codes = emulator;
        let mut failure_codes = reference.failure_codes;
        // The emulator's per-item codes are those without an exception's suffix that the
        // reference does not list as exceptions.
        for (c, s) in &codes {
            if !c.ends_with("Exception") && !reference.exceptions.contains_key(c) {
                failure_codes.entry(c.clone()).or_insert_with(|| s.clone());
            }
        }
        for (c, s) in reference
            .exceptions
            .into_iter()
            .chain(failure_codes.clone())
        {
            codes.entry(c).or_insert(s);
        }
        All {
            codes,
            failure_codes,
            raised_by: reference.raised_by,
        }
    }

    pub fn codes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.codes.iter().map(|(c, s)| (c.as_str(), s.as_str()))
    }

    pub fn is_failure_code(&self, code: &str) -> bool {
        self.failure_codes.contains_key(code)
    }
}

/// The proxy's operations that raise `code`: per the reference's `Errors:` lines; per-item
/// codes on BatchDeleteImage (the batch call that sorts them); anything else on ListImages.
pub fn ops_of(all: &All, code: &str) -> Vec<&'static str> {
    if all.is_failure_code(code) {
        return vec!["BatchDeleteImage"];
    }
    let ops: Vec<&'static str> = PROXY_OPS
        .into_iter()
        .filter(|op| all.raised_by.get(*op).is_some_and(|s| s.contains(code)))
        .collect();
    if ops.is_empty() {
        vec!["ListImages"]
    } else {
        ops
    }
}

pub fn is_head(op: &str) -> bool {
    op == "BatchCheckLayerAvailability"
}

/// The registry request that makes the proxy call `op` on repository `repo`.
pub async fn drive(base: &str, op: &str, repo: &str) -> Resp {
    let d = digest(b"x");
    let url = |p: &str| format!("{base}/v2/{repo}/{p}");
    let none = Bytes::new();
    match op {
        "InitiateLayerUpload" | "CreateRepository" => {
            request("POST", &url("blobs/uploads/"), &[], none).await
        }
        "UploadLayerPart" | "CompleteLayerUpload" => {
            let r = request("POST", &url("blobs/uploads/"), &[], none).await;
            assert_eq!(r.status, 202, "upload start for {op} on {repo}");
            let loc = r.header("location");
            let sep = if loc.contains('?') { '&' } else { '?' };
            let to = if loc.starts_with("http") {
                loc.to_string()
            } else {
                format!("{base}{loc}")
            };
            request("PUT", &format!("{to}{sep}digest={d}"), &[], b"x".to_vec()).await
        }
        "BatchCheckLayerAvailability" => {
            request("HEAD", &url(&format!("blobs/{d}")), &[], none).await
        }
        "GetDownloadUrlForLayer" => request("GET", &url(&format!("blobs/{d}")), &[], none).await,
        "PutImage" => {
            let m = format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{d}","size":1}},"layers":[]}}"#
            );
            request(
                "PUT",
                &url("manifests/v1"),
                &[("Content-Type", OCI_MANIFEST)],
                m,
            )
            .await
        }
        "BatchGetImage" => request("GET", &url("manifests/v1"), &[], none).await,
        "BatchDeleteImage" => request("DELETE", &url(&format!("manifests/{d}")), &[], none).await,
        "ListImages" => request("GET", &url("tags/list"), &[], none).await,
        "DescribeRepositories" => request("GET", &format!("{base}/v2/_catalog"), &[], none).await,
        "ListImageReferrers" => request("GET", &url(&format!("referrers/{d}")), &[], none).await,
        other => panic!("no registry request calls {other}"),
    }
}

use bytes::Bytes;
